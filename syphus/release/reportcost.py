"""Report money and translation sections: tokens and cost per pair; a translation's coverage and checks.

- ``Cost``: tokens and cost per pair, from the records of the run (for a release file, the run folder it
  was exported into; for a translation, the translation run's tokens split over the languages each
  query asked for), priced with ``configs/pricing.yaml``;
- ``Translation``: for a translation file, the share of the English pairs translated and why the rest
  failed (``translation_failures.jsonl``);
- ``LanguageChecks``: for a translation run (or a file exported from one), per language, how many
  translations the checks saw (``syphus.workflows.language``: script, language, copy, length), how
  many passed, why the rest failed, and how many (pair, language) were asked again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from syphus.engine.cost import DEFAULT_PRICING, Price, load_pricing, price_for
from syphus.engine.record import tally
from syphus.engine.store import ERRORS, INVALID, PAIRS, read_jsonl
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.release.jsonstream import iter_members
from syphus.release.reportcount import TopCounter, reason_key
from syphus.release.reportinput import Source, read_meta
from syphus.release.reportsection import Input, Section

FAILURES = "translation_failures.jsonl"
_TOKENS = ("prompt_tokens", "completion_tokens", "estimated_prompt_tokens", "estimated_completion_tokens")


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


def translation_figure(source: Source, pairs: int, english: dict[str, int]) -> dict[str, Any] | None:
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
    return {"language": source.language, "pairs": pairs, "english_pairs": total,
            "coverage": round(pairs / total, 4) if total else None, "failures": reasons.to_json(),
            "failures_file": str(failures) if failures.is_file() else None}


def is_translation_run(folder: Path | None) -> bool:
    """Whether a run folder holds a ``syphus translate`` run."""
    return folder is not None and (read_meta(folder).get("dataset") or {}).get("class") == "Translation"


def language_checks(folder: Path, only: str | None = None) -> dict[str, dict[str, Any]]:
    """Per language of a translation run: translations checked (each language of each reply that came
    back), passed, failed and why, and (pair, language) asked again; ``only`` keeps one language."""
    out: dict[str, dict[str, Any]] = {}
    reasons: dict[str, TopCounter] = {}
    asked = IdSet()

    def into(lang: str) -> dict[str, Any]:
        if lang not in out:
            out[lang] = {"checked": 0, "passed": 0, "failed": 0, "wrong_language": 0, "asked": 0, "asked_again": 0}
            reasons[lang] = TopCounter(200)
        return out[lang]

    for name in (PAIRS, INVALID, ERRORS):
        for _, rec in read_jsonl(folder / name, skip_torn=True):
            meta = rec.get("meta") or {}
            qid = str(rec["id"])
            langs = meta.get("langs") if isinstance(meta.get("langs"), list) else \
                ([qid.rsplit("@", 1)[1]] if "@" in qid else [])
            ins_id = str(meta.get("ins_id") or qid.rsplit("@", 1)[0])
            passed = {str(p.get("lang")) for p in rec.get("pairs") or [] if isinstance(p, dict)}
            problems = [str(p) for p in rec.get("problems") or []] or \
                (str(rec.get("reason") or "").split("; ") if name == INVALID else [])
            for lang in (str(x) for x in langs):
                if only is not None and lang != only:
                    continue
                row = into(lang)
                row["asked"] += 1
                if not asked.add(f"{ins_id}@{lang}"):
                    row["asked_again"] += 1
                if name == ERRORS:
                    continue  # no reply came back: nothing was checked
                row["checked"] += 1
                if lang in passed:
                    row["passed"] += 1
                    continue
                row["failed"] += 1
                why = next((p.split(": ", 1)[1] for p in problems if p.startswith(f"{lang}: ")), "no reason given")
                if why.startswith("in ") and ", not " in why:
                    row["wrong_language"] += 1
                reasons[lang].add(reason_key(why))
    for lang, row in out.items():
        row["pass_rate"] = round(row["passed"] / row["checked"], 4) if row["checked"] else None
        row["reasons"] = reasons[lang].to_json(5)
    return dict(sorted(out.items()))


class Cost(Section):
    """Tokens and dollars per pair."""

    name = "cost"

    def __init__(self, options: Any):
        super().__init__(options)
        self.by_language: dict[Path, dict[str, dict[str, float]]] = {}

    def start(self, inp: Input) -> None:
        inp.state[self.name] = dict.fromkeys(_TOKENS, 0)

    def record(self, inp: Input, rec: dict[str, Any], counted: Any, valid: bool) -> None:
        tokens = inp.state[self.name]
        for key in _TOKENS:
            tokens[key] += getattr(counted, key)

    def error(self, inp: Input, rec: dict[str, Any], counted: Any) -> None:
        tokens = inp.state[self.name]
        tokens["estimated_prompt_tokens"] += counted.estimated_prompt_tokens
        tokens["estimated_completion_tokens"] += counted.estimated_completion_tokens

    def figures(self, inp: Input) -> dict[str, Any]:
        source, pairs, pricing = inp.source, inp.pairs, self.options.pricing
        if source.kind == "run":
            return {"cost": cost_figure({k: float(v) for k, v in inp.state[self.name].items()}, pairs,
                                        read_meta(source.path), pricing, "the run's records")}
        if source.run is None:
            return {"cost": None}
        meta = read_meta(source.run)
        if (meta.get("dataset") or {}).get("class") == "Translation":
            if source.run not in self.by_language:
                self.by_language[source.run] = tokens_by_language(source.run)
            tokens = self.by_language[source.run].get(source.language)
            if tokens is None:
                return {"cost": None}
            return {"cost": cost_figure(tokens, pairs, meta, pricing,
                                        f"translation run {source.run}, split by language")}
        tokens = {k: float(v) for k, v in run_tokens(source.run).items()}
        return {"cost": cost_figure(tokens, pairs, meta, pricing, f"run {source.run}")}


class Translation(Section):
    """A translation file's coverage of the English pairs, and why the rest failed."""

    name = "translation"

    def finish(self, inputs: list[Input]) -> None:
        self.english = {i.source.scene: i.pairs for i in inputs if i.source.language == "en"}

    def figures(self, inp: Input) -> dict[str, Any]:
        return {"translation": translation_figure(inp.source, inp.pairs, self.english)}


class LanguageChecks(Section):
    """Per language of a translation run: the checks' pass rate, why translations failed, what was asked again."""

    name = "language_checks"

    def figures(self, inp: Input) -> dict[str, Any]:
        source = inp.source
        if source.kind == "run" and is_translation_run(source.path):
            return {"language_checks": language_checks(source.path)}
        if source.kind == "instructions" and source.language != "en" and is_translation_run(source.run):
            return {"language_checks": language_checks(source.run, only=source.language)}
        return {"language_checks": None}
