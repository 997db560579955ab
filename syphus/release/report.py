"""Report: what a run or a release holds, as figures, gathered in one streaming pass.

The library behind ``syphus report`` (the command line is ``syphus.cli.report``). Each input is a
run folder (``pairs.jsonl``, ``invalid.jsonl``, ``errors.jsonl``, ``meta.json``) or a release
instructions file (``XX_instructions.json``, or a translation ``XX_instructions_<lang>.json``);
several go side by side (scenes, languages). ``build_report`` gathers, per input:

- queries, pairs, invalid replies and errors, and why (the parser's reasons and problems, error kinds);
- pairs per query (for a release file, per visual input, from ``rel_ins_ids``) against the number the
  system message asks for;
- instruction and answer lengths in words and in tokens (the run's own estimator,
  ``syphus.engine.limits.estimate_tokens``);
- question types: the leading wh-word or auxiliary, and the leading verbs of imperatives (English);
- answers that repeat their instruction, refusals and words the system message forbids (``syphus.signals``);
- tokens and cost per pair, from the records of the run (for a release file, the run folder it was
  exported into; for a translation, the translation run's tokens split over the languages each query
  asked for), priced with ``configs/pricing.yaml``; for translations, coverage and failure reasons;
- for a run judged by ``syphus judge``, the scores per criterion and the lowest-scoring pairs with reasons;

and, over all inputs together, exact and near-duplicate instructions (``syphus.release.dedup``),
with the largest clusters listed. ``write_report`` puts ``report.json`` (every figure's numbers)
and ``index.html`` (``syphus.release.reportpage``: the plots, offline) in a folder.

Memory stays flat in everything but the duplicate search (about 80 bytes an instruction): lengths
are counted exactly up to ``HIST_LIMIT`` words or tokens, reasons and words in counters that keep
at most ``TopCounter.cap`` keys, and examples a few at a time. Cluster members are found again by
a second, partial read.

>>> report = build_report(["output/DC/v1", "output/DC/v1/export/DC_instructions_zh.json"])  # doctest: +SKIP
>>> write_report(report, "output/DC/v1/report")                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from syphus import __version__
from syphus.engine.cost import DEFAULT_PRICING, Price, load_pricing, price_for
from syphus.engine.limits import estimate_tokens
from syphus.engine.record import tally
from syphus.engine.store import ERRORS, INVALID, META, PAIRS, read_jsonl, write_atomic
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.release.dedup import SHINGLE, THRESHOLD, NearDuplicates
from syphus.release.jsonstream import iter_members
from syphus.release.view import default_out, language_of
from syphus.signals import Forbidden, forbidden_words, is_refusal, question_type, repeats_instruction, \
    requested_pairs, words

try:
    import numpy as np
except ImportError:  # without the extra ``report``: NearDuplicates() says what to install
    np = None  # type: ignore[assignment]

HIST_LIMIT = 1024  # lengths counted one by one up to this; longer ones together (their maximum is kept)
PER_QUERY_LIMIT = 50  # pairs per query counted one by one up to this
EXAMPLES = 5  # examples kept for each signal
TOP = 15  # keys shown in each ranked list
CLUSTERS = 20  # largest clusters listed
MEMBERS = 8  # members listed for each cluster
FAILURES = "translation_failures.jsonl"
_FRAMING = estimate_tokens([{"role": "user", "content": ""}])
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'(?=$| \()|\"(?:[^\"\\]|\\.)*\"(?=$| \()")  # a quoted snippet of the reply
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LANG_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?:\s*")


def text_tokens(text: str) -> int:
    """Tokens of one text by the run's estimator (``estimate_tokens`` less a message's framing).

    >>> text_tokens("What is the dog doing?"), text_tokens("狗在做什么")
    (6, 5)
    """
    return estimate_tokens([{"role": "user", "content": text}]) - _FRAMING


def reason_key(text: str) -> str:
    """A reason, problem or failure with its particulars (quoted text, numbers, language) set aside,
    so that reasons of one kind count together.

    >>> reason_key("answer without a question: 'The dog.' (3 of 5)")
    "answer without a question: '…' (N of N)"
    >>> reason_key("no 'Question:'/'Answer:' labels found")
    "no 'Question:'/'Answer:' labels found"
    >>> reason_key("zh: implausible length (3 characters for 50 in English)")
    'implausible length (N characters for N in English)'
    """
    text = _LANG_PREFIX.sub("", str(text).strip())
    return _NUMBER.sub("N", _QUOTED.sub("'…'", text))[:160] or "(none given)"


class Histogram:
    """Counts of a non-negative whole number, exact up to ``limit`` (beyond: counted together)."""

    def __init__(self, limit: int = HIST_LIMIT):
        self.limit = limit
        self.counts = [0] * (limit + 1)
        self.over = self.n = self.total = self.max = 0

    def add(self, value: int) -> None:
        self.n += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value > self.limit:
            self.over += 1
        else:
            self.counts[value] += 1

    def quantile(self, q: float) -> int:
        """The smallest value with at least a share ``q`` of the counts at or below it."""
        if not self.n:
            return 0
        need, seen = q * self.n, 0
        for value, count in enumerate(self.counts):
            seen += count
            if seen >= need:
                return value
        return self.max

    def _at(self, rank: int) -> int:
        """The value at ``rank`` (from 0) in sorted order."""
        seen = 0
        for value, count in enumerate(self.counts):
            seen += count
            if seen > rank:
                return value
        return self.max

    def median(self) -> float:
        """The median: the middle value, or the mean of the two middle values when the count is even.

        >>> h = Histogram()
        >>> for v in (12, 14, 19, 21):
        ...     h.add(v)
        >>> h.median(), h.quantile(0.5)
        (16.5, 14)
        """
        if not self.n:
            return 0
        low, high = self._at((self.n - 1) // 2), self._at(self.n // 2)
        mid = (low + high) / 2
        return int(mid) if mid == int(mid) else mid

    def to_json(self) -> dict[str, Any]:
        last = max((i for i, c in enumerate(self.counts) if c), default=-1)
        return {"n": self.n, "mean": round(self.total / self.n, 2) if self.n else 0.0,
                "median": self.median(), "p90": self.quantile(0.9), "p99": self.quantile(0.99),
                "max": self.max, "counts": self.counts[:last + 1], "over_limit": self.over, "limit": self.limit}


class TopCounter:
    """A counter that holds at most ``cap`` keys: past that the rarest are dropped (``pruned`` says how
    many times), so the frequent keys stay exact and memory stays flat whatever the text holds."""

    def __init__(self, cap: int = 5000):
        self.cap = cap
        self.counts: dict[str, int] = {}
        self.total = 0
        self.pruned = 0

    def add(self, key: str, n: int = 1) -> None:
        self.total += n
        self.counts[key] = self.counts.get(key, 0) + n
        if len(self.counts) > self.cap:
            keep = sorted(self.counts.items(), key=lambda kv: -kv[1])[:self.cap // 2]
            self.counts = dict(keep)
            self.pruned += 1

    def top(self, k: int = TOP) -> list[list[Any]]:
        return [[key, n] for key, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]

    def to_json(self, k: int = TOP) -> dict[str, Any]:
        return {"total": self.total, "distinct": len(self.counts), "top": self.top(k),
                **({"approximate": True} if self.pruned else {})}


# ---------------------------------------------------------------- inputs

@dataclass
class Source:
    """One input: what it is, what it is called in the report, and what belongs with it."""

    path: Path
    kind: str  # "run" or "instructions"
    label: str
    scene: str
    language: str
    run: Path | None = None  # the run folder whose records hold its tokens
    system_message: str | None = None
    prompt: str | None = None  # where the system message came from
    viewer: Path | None = None  # the viewer's index.html for its pairs, when built
    notes: list[str] = field(default_factory=list)


def _meta(folder: Path) -> dict[str, Any]:
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _is_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in (PAIRS, INVALID, ERRORS))


def _run_of(path: Path) -> Path | None:
    """The run folder an instructions file was exported into (``<run>/export/XX_instructions.json``)."""
    for folder in (path.parent, path.parent.parent):
        if _is_run(folder) and (folder / META).is_file():
            return folder
    return None


def _system_message(prompt: str | Path | None) -> tuple[str | None, str | None]:
    """(system message, note) of a prompt file; a file that cannot be read is a note, not an error."""
    if not prompt:
        return None, None
    from syphus.prompt import read_prompt_file

    try:
        data = read_prompt_file(prompt)
    except (UserError, OSError) as e:
        return None, f"no system message: {e}"
    message = data.get("system_message") if isinstance(data, dict) else None
    return (message, None) if isinstance(message, str) else (None, f"{prompt}: no system_message")


def resolve(path: str | Path, prompt: str | Path | None = None, viewer: str | Path | None = None) -> Source:
    """What ``path`` is (a run folder or an instructions file) and what belongs with it."""
    p = Path(path)
    if p.is_file() and p.name == PAIRS:
        p = p.parent
    if p.is_dir():
        if not _is_run(p):
            raise UserError(f"{p}: not a run folder (no {PAIRS}, {INVALID} or {ERRORS}); pass a run folder such "
                            "as output/DC/v1 or an XX_instructions.json")
        meta = _meta(p)
        dataset = meta.get("dataset") or {}
        scene = str(dataset.get("scene") or dataset.get("name") or p.parent.name or p.name)
        source = Source(p, "run", f"{scene} ({p.name})", scene, "en", run=p)
        views = sorted((p / "export").glob("*_instructions_view/index.html"))
        source.viewer = Path(viewer) / "index.html" if viewer else (views[0] if views else None)
        prompt = prompt or dataset.get("prompt_path")
    elif p.is_file():
        language = language_of(p, default="en")
        scene = p.name.split("_instructions")[0] if "_instructions" in p.name else p.stem
        label = scene if language == "en" else f"{scene} {language}"
        source = Source(p, "instructions", label, scene, language, run=_run_of(p))
        own = default_out(p) / "index.html"
        source.viewer = Path(viewer) / "index.html" if viewer else (own if own.is_file() else None)
        if prompt is None and source.run is not None and language == "en":
            prompt = (_meta(source.run).get("dataset") or {}).get("prompt_path")
    else:
        raise UserError(f"{p}: not found; pass a run folder (output/DC/v1) or an XX_instructions.json")
    if source.viewer is not None and not source.viewer.is_file():
        source.notes.append(f"{source.viewer}: no viewer page there; build it with syphus view")
        source.viewer = None
    if source.language == "en" or source.kind == "run":
        source.system_message, note = _system_message(prompt)
        source.prompt = str(prompt) if source.system_message is not None else None
        if note:
            source.notes.append(note)
    return source


def _unique_labels(sources: Sequence[Source]) -> None:
    seen: dict[str, int] = {}
    for s in sources:
        n = seen[s.label] = seen.get(s.label, 0) + 1
        if n > 1:
            s.label = f"{s.label} #{n}"


# ---------------------------------------------------------------- one input's figures

@dataclass
class Pair:
    """One instruction-response pair as the report names it: ``key`` is the instruction id (for a run
    folder, ``<query id>#<n>``)."""

    key: str
    instruction: str
    answer: str
    related: int | None = None  # len(rel_ins_ids), for a release file


class Figures:
    """The numbers of one input, added to one record or pair at a time."""

    def __init__(self, source: Source, out: Path | None = None):
        self.source = source
        self.out = out  # the report's folder, which viewer links are relative to
        self.counts = {"queries": 0, "with_pairs": 0, "invalid": 0, "errors": 0, "pairs": 0, "truncated": 0,
                       "refused_replies": 0, "empty_instructions": 0, "empty_answers": 0}
        self.reasons = TopCounter()  # why a reply gave no pairs
        self.problems = TopCounter()  # what the parser dropped from replies that gave pairs
        self.error_kinds = TopCounter()
        self.error_examples: list[dict[str, Any]] = []
        self.per_query = [0] * (PER_QUERY_LIMIT + 1)  # queries (or inputs) by pairs
        self.related = [0] * (PER_QUERY_LIMIT + 1)  # instructions by 1 + len(rel_ins_ids)
        self.lengths = {name: Histogram() for name in ("instruction_words", "answer_words", "instruction_tokens",
                                                       "answer_tokens")}
        self.question_kinds = TopCounter(100)
        self.question_words = TopCounter(1000)
        self.verbs = TopCounter()
        self.english = source.language.split("-")[0] == "en"
        self.forbidden = Forbidden(forbidden_words(source.system_message or ""))
        self.requested = requested_pairs(source.system_message or "")
        self.forbidden_counts = TopCounter()
        self.signals = {"repeats": 0, "refusals": 0, "forbidden": 0}
        self.examples: dict[str, list[dict[str, Any]]] = {"repeats": [], "refusals": [], "forbidden": []}
        self.tokens = {"prompt_tokens": 0, "completion_tokens": 0, "estimated_prompt_tokens": 0,
                       "estimated_completion_tokens": 0}
        self.answered = IdSet()

    # --- records (run folders)
    def record(self, rec: dict[str, Any], valid: bool) -> None:
        c = self.counts
        c["queries"] += 1
        self.answered.add(str(rec["id"]))
        counted = tally(rec)
        self._tokens(counted)
        c["truncated"] += counted.truncated
        n = min(counted.pairs, PER_QUERY_LIMIT)
        self.per_query[n] += 1
        if valid:
            c["with_pairs"] += 1
            for problem in rec.get("problems") or []:
                self.problems.add(reason_key(problem))
        else:
            c["invalid"] += 1
            for part in str(rec.get("reason") or "no pairs found").split("; "):
                self.reasons.add(reason_key(part))
        if is_refusal(rec.get("raw")):
            c["refused_replies"] += 1

    def error(self, rec: dict[str, Any], seen: IdSet) -> None:
        qid = str(rec["id"])
        counted = tally(rec)
        self.tokens["estimated_prompt_tokens"] += counted.estimated_prompt_tokens
        self.tokens["estimated_completion_tokens"] += counted.estimated_completion_tokens
        if qid in self.answered or not seen.add(qid):
            return  # superseded by an answer, or a later line of the same id
        self.counts["queries"] += 1
        self.counts["errors"] += 1
        kind = str(rec.get("kind") or "unknown")
        self.error_kinds.add(kind)
        if len(self.error_examples) < EXAMPLES:
            self.error_examples.append({"id": qid, "kind": kind, "message": str(rec.get("message") or "")[:300]})

    def _tokens(self, counted: Any) -> None:
        for name in self.tokens:
            self.tokens[name] += getattr(counted, name)

    # --- pairs
    def pair(self, pair: Pair) -> list[str]:
        """Count one pair; returns its instruction's words (for the duplicate search)."""
        c = self.counts
        c["pairs"] += 1
        iw, aw = words(pair.instruction), words(pair.answer)
        if not pair.instruction.strip():
            c["empty_instructions"] += 1
        if not pair.answer.strip():
            c["empty_answers"] += 1
        h = self.lengths
        h["instruction_words"].add(len(iw))
        h["answer_words"].add(len(aw))
        h["instruction_tokens"].add(text_tokens(pair.instruction))
        h["answer_tokens"].add(text_tokens(pair.answer))
        if pair.related is not None:
            self.related[min(pair.related + 1, PER_QUERY_LIMIT)] += 1
        if self.english:
            kind, word = question_type(pair.instruction, iw)
            self.question_kinds.add(kind)
            if kind in ("wh", "aux"):
                self.question_words.add(word or "")
            elif kind == "imperative":
                self.verbs.add(word or "")
        if repeats_instruction(pair.instruction, pair.answer, iw, aw):
            self._signal("repeats", pair)
        if is_refusal(pair.answer):
            self._signal("refusals", pair)
        used = self.forbidden.found(f"{pair.instruction} {pair.answer}")
        if used:
            for word in used:
                self.forbidden_counts.add(word)
            self._signal("forbidden", pair, {"words": used})
        return iw

    def _signal(self, name: str, pair: Pair, extra: dict[str, Any] | None = None) -> None:
        self.signals[name] += 1
        if len(self.examples[name]) < EXAMPLES:
            self.examples[name].append({"id": pair.key, "instruction": pair.instruction[:300],
                                        "answer": pair.answer[:300],
                                        "link": viewer_link(self.source, pair.key, pair.instruction, self.out),
                                        **(extra or {})})

    # --- the figures
    def per_input(self) -> tuple[list[int], str]:
        """Queries (run) or visual inputs (release, from ``rel_ins_ids``) by their number of pairs."""
        if self.source.kind == "run":
            return self.per_query, "queries"
        # an input with k pairs gives k instructions whose rel_ins_ids hold the k - 1 others
        return [round(n / k) if k else 0 for k, n in enumerate(self.related)], "inputs (from rel_ins_ids)"

    def to_json(self) -> dict[str, Any]:
        per_input, basis = self.per_input()
        last = max((i for i, n in enumerate(per_input) if n), default=0)
        pairs = self.counts["pairs"]
        return {
            "counts": dict(self.counts),
            "why": {"invalid_reasons": self.reasons.to_json(), "problems": self.problems.to_json(),
                    "error_kinds": self.error_kinds.to_json(), "error_examples": self.error_examples},
            "pairs_per_input": {"basis": basis, "counts": per_input[:last + 1], "requested": self.requested,
                                "limit": PER_QUERY_LIMIT,
                                "mean": round(sum(k * n for k, n in enumerate(per_input)) / max(1, sum(per_input)),
                                              2)},
            "lengths": {name: h.to_json() for name, h in self.lengths.items()},
            "question_types": ({"kinds": self.question_kinds.to_json(), "leading_words": self.question_words.to_json(),
                                "imperative_verbs": self.verbs.to_json()} if self.english else None),
            "signals": {**{name: {"count": n, "share": round(n / pairs, 4) if pairs else 0.0,
                                  "examples": self.examples[name]} for name, n in self.signals.items()},
                        "forbidden_words": self.forbidden.words,
                        "forbidden_counts": self.forbidden_counts.to_json()},
        }


# ---------------------------------------------------------------- reading

def iter_source(source: Source, figures: Figures | None = None) -> Iterator[Pair]:
    """The pairs of one input in order; with ``figures``, its records are counted on the way."""
    if source.kind == "instructions":
        for ins_id, entry in iter_members(source.path, within="data"):
            if not isinstance(entry, dict):
                raise UserError(f"{source.path}: entry {ins_id!r} is not an object; check the file with "
                                f"syphus validate {source.path}")
            rel = entry.get("rel_ins_ids")
            yield Pair(str(ins_id), _text(entry.get("instruction")), _text(entry.get("answer")),
                       len(rel) if isinstance(rel, list) else 0)
        return
    for _, rec in read_jsonl(source.path / PAIRS, skip_torn=True):
        if figures is not None:
            figures.record(rec, valid=True)
        qid = str(rec["id"])
        for n, p in enumerate(rec.get("pairs") or [], 1):
            if isinstance(p, dict):
                yield Pair(f"{qid}#{n}", _text(p.get("instruction")), _text(p.get("answer")))
    if figures is not None:
        for _, rec in read_jsonl(source.path / INVALID, skip_torn=True):
            figures.record(rec, valid=False)
        seen = IdSet()
        for _, rec in read_jsonl(source.path / ERRORS, skip_torn=True):
            figures.error(rec, seen)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------- tokens and cost

def _price(meta: dict[str, Any], pricing: str | Path | None) -> tuple[Price | None, bool, str | None, str | None]:
    """(price, batch, model, note) of a run, from its meta.json and the pricing table."""
    config = meta.get("config") or {}
    cost, endpoint = config.get("cost") or {}, config.get("endpoint") or {}
    model = cost.get("price_as") or endpoint.get("model") or (meta.get("endpoint") or {}).get("model")
    batch = config.get("mode") == "batch"
    table_path = pricing or cost.get("pricing") or DEFAULT_PRICING
    if not model:
        return None, batch, None, "the run's meta.json names no model; cost not computed"
    try:
        table = load_pricing(table_path)
    except UserError as e:
        return None, batch, model, f"cost not computed: {e}"
    price = price_for(str(model), table)
    if price is None:
        return None, batch, model, f"no price for {model!r} in {table_path}; add it (or --pricing FILE)"
    return price, batch, model, None


def _langs_of(rec: dict[str, Any], langs_seen: set[str]) -> list[str]:
    meta = rec.get("meta") or {}
    asked = meta.get("langs")
    if isinstance(asked, list) and asked:
        return [str(x) for x in asked]
    qid = str(rec["id"])
    return [qid.rsplit("@", 1)[1]] if "@" in qid else sorted(langs_seen)


def tokens_by_language(folder: Path) -> dict[str, dict[str, float]]:
    """A translation run's tokens per language: each record's split evenly over the languages it asked for."""
    langs_seen: set[str] = set()
    for name in (PAIRS, INVALID):
        for _, rec in read_jsonl(folder / name, skip_torn=True):
            asked = (rec.get("meta") or {}).get("langs")
            if isinstance(asked, list):
                langs_seen.update(str(x) for x in asked)
    out: dict[str, dict[str, float]] = {}
    for name in (PAIRS, INVALID, ERRORS):
        for _, rec in read_jsonl(folder / name, skip_torn=True):
            langs = _langs_of(rec, langs_seen)
            if not langs:
                continue
            t = tally(rec)
            for lang in langs:
                into = out.setdefault(lang, {"prompt_tokens": 0.0, "completion_tokens": 0.0,
                                             "estimated_prompt_tokens": 0.0, "estimated_completion_tokens": 0.0})
                for key in into:
                    into[key] += getattr(t, key) / len(langs)
    return out


def run_tokens(folder: Path) -> dict[str, int]:
    """Every token a run's records count (reported and, where no usage came, charged at a guess)."""
    out = {"prompt_tokens": 0, "completion_tokens": 0, "estimated_prompt_tokens": 0, "estimated_completion_tokens": 0}
    for name in (PAIRS, INVALID, ERRORS):
        for _, rec in read_jsonl(folder / name, skip_torn=True):
            t = tally(rec)
            for key in out:
                out[key] += getattr(t, key)
    return out


def cost_figure(tokens: dict[str, float], pairs: int, meta: dict[str, Any], pricing: str | Path | None,
                basis: str) -> dict[str, Any]:
    """Tokens and dollars, in all and per pair."""
    price, batch, model, note = _price(meta, pricing)
    prompt = tokens["prompt_tokens"] + tokens["estimated_prompt_tokens"]
    completion = tokens["completion_tokens"] + tokens["estimated_completion_tokens"]
    usd = price.cost(prompt, completion, batch) if price is not None else None
    per = max(1, pairs)
    return {"basis": basis, "model": model, "batch": batch, "priced": price is not None, "note": note,
            **{k: round(v, 1) for k, v in tokens.items()},
            "cost_usd": round(usd, 9) if usd is not None else None,
            "prompt_tokens_per_pair": round(prompt / per, 1), "completion_tokens_per_pair": round(completion / per, 1),
            "cost_per_pair_usd": round(usd / per, 8) if usd is not None and pairs else None,
            "cost_per_1000_pairs_usd": round(1000 * usd / per, 4) if usd is not None and pairs else None}


def _cost(source: Source, figures: Figures, pricing: str | Path | None,
          by_language: dict[Path, dict[str, dict[str, float]]]) -> dict[str, Any] | None:
    pairs = figures.counts["pairs"]
    if source.kind == "run":
        return cost_figure({k: float(v) for k, v in figures.tokens.items()}, pairs, _meta(source.path), pricing,
                           "the run's records")
    if source.run is None:
        return None
    meta = _meta(source.run)
    if (meta.get("dataset") or {}).get("class") == "Translation":
        if source.run not in by_language:
            by_language[source.run] = tokens_by_language(source.run)
        tokens = by_language[source.run].get(source.language)
        if tokens is None:
            return None
        return cost_figure(tokens, pairs, meta, pricing, f"translation run {source.run}, split by language")
    tokens = {k: float(v) for k, v in run_tokens(source.run).items()}
    return cost_figure(tokens, pairs, meta, pricing, f"run {source.run}")


# ---------------------------------------------------------------- translations

def translation_figure(source: Source, figures: Figures, english: dict[str, int]) -> dict[str, Any] | None:
    """Coverage of a translation (its pairs against the English pairs) and why the rest failed."""
    if source.kind != "instructions" or source.language == "en":
        return None
    total = english.get(source.scene)
    train = source.path.with_name(f"{source.scene}_train.json")
    if total is None and train.is_file():
        total = sum(1 for _ in iter_members(train))
    reasons = TopCounter()
    failures = source.path.with_name(FAILURES)
    if failures.is_file():
        with failures.open(encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("lang") == source.language:
                    reasons.add(reason_key(row.get("reason") or ""))
    pairs = figures.counts["pairs"]
    return {"language": source.language, "pairs": pairs, "english_pairs": total,
            "coverage": round(pairs / total, 4) if total else None, "failures": reasons.to_json(),
            "failures_file": str(failures) if failures.is_file() else None}


# ---------------------------------------------------------------- the whole report

@dataclass
class Report:
    """Everything ``build_report`` found: ``data`` is report.json; ``sources`` the inputs."""

    data: dict[str, Any]
    sources: list[Source]


def viewer_link(source: Source, pair_key: str, instruction: str, out: Path | None) -> str | None:
    """A link from the report folder ``out`` to the viewer's page for one pair (None without a viewer).

    The viewer searches ids and texts: a release pair is found by its id (in its language), a run's pair
    by its instruction's text.
    """
    if source.viewer is None or out is None:
        return None
    rel = Path(os.path.relpath(source.viewer, out)).as_posix()
    if source.kind == "instructions":
        query = "q=" + urllib.parse.quote(pair_key, safe="") + "&lang=" + urllib.parse.quote(source.language, safe="")
    else:
        query = "q=" + urllib.parse.quote(" ".join(instruction.split())[:200], safe="")
    return f"{rel}#{query}"


def build_report(inputs: Sequence[str | Path], *, threshold: float = THRESHOLD, shingle: int = SHINGLE,
                 num_perm: int | None = None, prompt: str | Path | None = None, pricing: str | Path | None = None,
                 viewer: str | Path | None = None, out: str | Path | None = None,
                 clusters: int = CLUSTERS, grounding: bool = True) -> Report:
    """Read every input once (and the members of the largest clusters again) into a ``Report``."""
    if not inputs:
        raise UserError("no input given: syphus report <run folder | XX_instructions.json> [more ...]")
    sources = [resolve(p, prompt, viewer) for p in inputs]
    _unique_labels(sources)
    out_dir = Path(out) if out is not None else default_folder(inputs[0])
    finder = NearDuplicates(threshold, shingle, **({"num_perm": num_perm} if num_perm else {}))
    starts: list[int] = []
    all_figures: list[Figures] = []
    for source in sources:
        figures = Figures(source, out_dir)
        starts.append(finder.n)
        for pair in iter_source(source, figures):
            finder.add(pair.instruction, figures.pair(pair))
        all_figures.append(figures)
    starts.append(finder.n)
    found = finder.clusters()
    english = {s.scene: f.counts["pairs"] for s, f in zip(sources, all_figures) if s.language == "en"}
    by_language: dict[Path, dict[str, dict[str, float]]] = {}
    entries = []
    dropped, exact = found.dropped(), found.exact_dropped()
    in_cluster = found.sizes()[found.root] > 1 if found.n else np.zeros(0, dtype=bool)
    for i, (source, figures) in enumerate(zip(sources, all_figures)):
        lo, hi = starts[i], starts[i + 1]
        entry = {"label": source.label, "path": str(source.path), "kind": source.kind, "scene": source.scene,
                 "language": source.language, "run": str(source.run) if source.run else None,
                 "prompt": source.prompt, "viewer": str(source.viewer) if source.viewer else None,
                 "notes": source.notes, **figures.to_json()}
        # each instruction --dedup drops is an exact repeat or a near duplicate (not exact), counted once
        entry["duplicates"] = {"near_duplicates": int((dropped[lo:hi] & ~exact[lo:hi]).sum()),
                               "exact_duplicates": int(exact[lo:hi].sum()),
                               "dropped_by_dedup": int(dropped[lo:hi].sum()),
                               "in_clusters": int(in_cluster[lo:hi].sum()), "pairs": hi - lo}
        entry["cost"] = _cost(source, figures, pricing, by_language)
        entry["translation"] = translation_figure(source, figures, english)
        entry["judge"] = _judged(source)
        entry["grounding"] = _grounding(source, out_dir / f"grounding-{i + 1}.jsonl") if grounding else None
        entries.append(entry)
    listing = _cluster_listing(found, sources, starts, out_dir, clusters)
    data = {"generator": f"syphus {__version__}",
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": [str(p) for p in inputs], "sources": entries,
            "duplicates": {**found.summary(), "size_counts": found.size_counts(),
                           "exact_size_counts": found.size_counts(exact=True), **listing}}
    return Report(data, sources)


def _judged(source: Source) -> dict[str, Any] | None:
    """The judge's verdicts on a run folder's pairs (``syphus judge``), when it was judged."""
    if source.kind != "run":
        return None
    from syphus.release.verdicts import judge_figure  # read only where a run was judged

    return judge_figure(source.path)


def _grounding(source: Source, listing: Path) -> dict[str, Any] | None:
    """The grounding check of a run folder's pairs against their annotations (``release/grounding``), each
    pair's score and unsupported terms in ``listing``; a release file has no annotations beside it, and a
    run whose plugin is gone says why it was not checked."""
    if source.kind != "run":
        return None
    from syphus.release.grounding import grounding_figure

    try:
        return grounding_figure(source.path, listing=listing)
    except UserError as e:
        return {"unavailable": str(e)}


def _cluster_listing(found: Any, sources: Sequence[Source], starts: Sequence[int], out: Path,
                     k: int) -> dict[str, Any]:
    """The largest near-duplicate clusters and exact groups, their members read again from the inputs."""
    near = found.largest(k)
    exact = found.largest(k, exact=True)
    wanted: dict[int, dict[str, Any]] = {}
    for members in near + exact:
        for m in members[:MEMBERS].tolist():
            wanted[m] = {}
    _fetch(wanted, sources, starts, out)

    def listing(groups: list[np.ndarray]) -> list[dict[str, Any]]:
        rows = []
        for members in groups:
            where = np.searchsorted(np.asarray(starts), members, side="right") - 1
            by_source = np.bincount(where, minlength=len(sources))
            rows.append({"size": int(len(members)),
                         "sources": {sources[i].label: int(n) for i, n in enumerate(by_source) if n},
                         "members": [wanted[m] for m in members[:MEMBERS].tolist()]})
        return rows

    return {"largest_clusters": listing(near), "largest_exact_groups": listing(exact)}


def _fetch(wanted: dict[int, dict[str, Any]], sources: Sequence[Source], starts: Sequence[int], out: Path) -> None:
    """Fill in each wanted item (by its number across all inputs): its input, id, text and link."""
    for i, source in enumerate(sources):
        mine = [m for m in wanted if starts[i] <= m < starts[i + 1]]
        if not mine:
            continue
        last = max(mine)
        for n, pair in enumerate(iter_source(source), starts[i]):
            if n in wanted:
                wanted[n].update({"source": source.label, "id": pair.key, "instruction": pair.instruction[:300],
                                  "link": viewer_link(source, pair.key, pair.instruction, out)})
            if n >= last:
                break


def default_folder(first: str | Path) -> Path:
    """Where a report goes by default: ``<run>/report``, or ``XX_instructions_report`` beside the file."""
    p = Path(first)
    if p.is_file() and p.name == PAIRS:
        p = p.parent
    return p / "report" if p.is_dir() else p.with_name(p.stem + "_report")


def write_report(report: Report, out: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``index.html`` into ``out``; returns their paths."""
    from syphus.release.reportpage import render_page

    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder; choose another --out")
    page = render_page(report.data)  # before anything is written: a missing plotting library stops here
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "index.html"
    write_atomic(json_path, json.dumps(report.data, indent=1, ensure_ascii=False) + "\n")
    write_atomic(html_path, page)
    return json_path, html_path
