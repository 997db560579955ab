"""Judge: every pair of a run scored against the annotation it was made from, by a model, on the same engine.

``syphus judge output/DC/v1`` sends each answered query's annotation and its pairs to a
judge model with the rubric of ``prompts/judge.yaml`` and asks for one verdict per pair:
a score from 1 to 5 on each criterion (``CRITERIA``) and a short reason. It is a run like
any other (the endpoint pool, limits, retries, ``--max-cost``, ``--dry-run``, batch mode,
resume), whose run folder sits beside the pairs: ``<run>/judge/<version>/``. The judged
pairs are never touched.

A judge query's id is ``<query id>#<digest of its pairs>``: the pairs' lasting identity. A
rerun (after a crash, Ctrl-C or more pairs) skips every id that has a record, so each pair
is judged once; a query whose pairs changed (``--reparse``, ``--retry_errors``) gets a new
id and is judged again, and its old verdicts are no longer read (``verdicts``).

>>> pairs = [{"instruction": "What colour is the cap?", "answer": "Blue."}]
>>> judge_id("v1_q7", pairs) == judge_id("v1_q7", [dict(p) for p in pairs]), judge_id("v1_q7", pairs)[:6]
(True, 'v1_q7#')
>>> M = verdicts_model(1)
>>> r = M.model_validate({"verdicts": [{"pair": 1, "grounded": 5, "answerable": 4, "correct": 5, "useful": 3,
...                                     "reason": "The cap is in the caption."}]})
>>> [(p["pair"], p["mean"]) for p in r.to_pairs({"pairs": pairs}).pairs]
[(1, 4.25)]
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from syphus.dataset import AbstractDataset
from syphus.engine.store import PAIRS, read_jsonl
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.parse import ParseResult
from syphus.reply import Reply
from syphus.release.annotation import Annotations  # noqa: F401  (judge reads each query's annotation)

CRITERIA = ("grounded", "answerable", "correct", "useful")
PROMPT = "prompts/judge.yaml"
FOLDER = "judge"
_Score = Literal[1, 2, 3, 4, 5]


def judge_id(qid: str, pairs: list[Mapping[str, Any]]) -> str:
    """The id of the judge query for one query's pairs: the query id and a digest of the pairs' text."""
    text = json.dumps([[p.get("instruction"), p.get("answer")] for p in pairs], ensure_ascii=False)
    return f"{qid}#{hashlib.blake2b(text.encode('utf-8'), digest_size=6).hexdigest()}"


class Verdict(BaseModel):
    """The judge's word on one pair: its number, a score per criterion, and why."""

    model_config = ConfigDict(extra="forbid")
    pair: int
    grounded: _Score
    answerable: _Score
    correct: _Score
    useful: _Score
    reason: str


class Verdicts(Reply):
    """A judge reply: one verdict per pair, matched to the pairs by number."""

    verdicts: list[Verdict]

    def to_pairs(self, query_input: dict[str, Any]) -> ParseResult:
        judged = query_input.get("pairs") or []
        result = ParseResult()
        seen = set()
        for v in self.verdicts:
            if not 1 <= v.pair <= len(judged) or v.pair in seen:
                result.problems.append(f"verdict for pair {v.pair}: no such pair, or judged twice (ignored)")
                continue
            seen.add(v.pair)
            scores = {c: int(getattr(v, c)) for c in CRITERIA}
            pair = judged[v.pair - 1]
            result.pairs.append({"instruction": pair.get("instruction"), "answer": pair.get("answer"),
                                 "pair": v.pair, "scores": scores, "mean": sum(scores.values()) / len(scores),
                                 "reason": v.reason.strip()})
        missing = [i for i in range(1, len(judged) + 1) if i not in seen]
        if missing:
            result.problems.append(f"no verdict for pair(s) {', '.join(map(str, missing))}")
        result.pairs.sort(key=lambda p: p["pair"])
        return result


@functools.lru_cache(maxsize=64)
def verdicts_model(n: int) -> type[Verdicts]:
    """The reply model for a query of ``n`` pairs: exactly ``n`` verdicts (a reply with another count keeps
    what it has: ``uncounted``)."""
    model = create_model(f"Verdicts{n}", __base__=Verdicts,
                         verdicts=(list[Verdict], Field(min_length=n, max_length=n)))
    model.uncounted = Verdicts
    return model


def _extract_object(text: str) -> Any:
    """The outermost JSON object in a text reply (code fences and prose around it forgiven)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    return json.loads(text[start:end + 1], strict=False)


def render_query(sentences: str, pairs: list[Mapping[str, Any]]) -> str:
    """The judge's user message: the annotation, then the pairs numbered from 1."""
    lines = ["Annotation:", sentences.strip(), "", "Pairs:"]
    for i, p in enumerate(pairs, 1):
        lines += [f"[{i}] Instruction: {p.get('instruction')}", f"Answer: {p.get('answer')}"]
    return "\n".join(lines)


class Judging(AbstractDataset):
    """The answered queries of a run folder as judge queries: annotation and pairs in, one verdict per pair out."""

    reply_model = None

    def __init__(self, run: str | Path, prompt_path: str | Path = PROMPT, version: str = "v1"):
        self.run = Path(run)
        if not (self.run / PAIRS).exists():
            raise UserError(f"{self.run}: no {PAIRS} here; judge a run folder with answered queries "
                            "(e.g. output/DC/v1)")
        self.version = version
        super().__init__(FOLDER, str(prompt_path), self.run / PAIRS)

    @property
    def folder(self) -> Path:
        """Where the judge's run folder is: beside the judged pairs."""
        return self.run / FOLDER / self.version

    def _load_query_inputs(self, path: Any) -> Iterator[dict[str, Any]]:
        wanted = IdSet()
        for _, rec in read_jsonl(self.run / PAIRS, skip_torn=True):
            if rec.get("pairs"):
                wanted.add(str(rec["id"]))
        annotations = Annotations(self.run, wanted)
        try:
            for _, rec in read_jsonl(self.run / PAIRS, skip_torn=True):
                pairs = [{"instruction": p.get("instruction"), "answer": p.get("answer")}
                         for p in rec.get("pairs") or [] if isinstance(p, dict)]
                if not pairs:
                    continue
                qid = str(rec["id"])
                sentences = annotations.get(qid)
                if sentences is None:
                    raise UserError(f"{self.run / PAIRS}: query {qid!r} is no longer in the plugin's query inputs; "
                                    "judge needs each query's annotation (restore the annotation file the run used)")
                yield {"id": judge_id(qid, pairs), "sentences": render_query(sentences, pairs), "qid": qid,
                       "pairs": pairs}
        finally:
            annotations.close()

    def build_messages(self, query_input: dict[str, Any]) -> list[dict[str, Any]]:
        return self._prompt.messages(query_input["sentences"])

    def reply_model_for(self, query_input: dict[str, Any]) -> type[Reply]:
        return verdicts_model(len(query_input.get("pairs") or []) or 1)

    def parse_response(self, text: str, finish_reason: str | None,
                       query_input: dict[str, Any] | None = None) -> ParseResult:
        """A text-mode reply: its JSON object read as the verdicts model."""
        qi = query_input or {}
        try:
            data = _extract_object(text or "")
            reply = self.reply_model_for(qi).model_validate(data)
        except ValidationError as e:
            salvaged = Verdicts.model_validate(data) if _only_count(e) else None
            if salvaged is None:
                return ParseResult(problems=[f"the verdicts do not fit the schema: {e.errors()[0]['msg']}"])
            reply = salvaged
        except ValueError as e:
            return ParseResult(problems=[f"no verdicts in the reply ({e})"])
        result = reply.to_pairs(qi)
        result.truncated = finish_reason == "length"
        return result


def _only_count(error: ValidationError) -> bool:
    return all(err["type"] in ("too_short", "too_long") for err in error.errors())


@dataclass
class PairVerdict:
    """One judged pair, as ``verdicts`` reads it from a judge run folder."""

    qid: str
    pair: int  # its index in the query's pairs, from 1
    instruction: str
    answer: str
    scores: dict[str, int]
    mean: float
    reason: str


def judge_folders(run: Path) -> list[Path]:
    """The judge run folders of a run (one per ``--judge_version``), newest name last."""
    return sorted(p for p in (run / FOLDER).glob("*") if (p / PAIRS).exists())


def verdicts(run: Path, folder: Path | None = None) -> Iterator[PairVerdict]:
    """Every verdict that still applies to ``run``'s pairs: judged pairs whose text has not changed since.

    ``folder``: the judge run folder (default: the newest of ``judge_folders``). A verdict on
    pairs a query no longer has (re-parsed, retried) is left out, so figures never mix.
    """
    folders = [folder] if folder is not None else judge_folders(run)[-1:]
    if not folders:
        return
    current = IdSet()
    for _, rec in read_jsonl(run / PAIRS, skip_torn=True):
        pairs = [p for p in rec.get("pairs") or [] if isinstance(p, dict)]
        if pairs:
            current.add(judge_id(str(rec["id"]), pairs))
    for _, rec in read_jsonl(folders[0] / PAIRS, skip_torn=True):
        jid = str(rec["id"])
        if jid not in current:
            continue
        qid = jid.rsplit("#", 1)[0]
        for p in rec.get("pairs") or []:
            if isinstance(p, dict) and isinstance(p.get("scores"), dict):
                yield PairVerdict(qid, int(p["pair"]), str(p.get("instruction")), str(p.get("answer")),
                                  p["scores"], float(p.get("mean") or 0.0), str(p.get("reason") or ""))


def judge_dataset(run: str | Path, prompt_path: str | Path | None = None, version: str = "v1") -> Judging:
    """The Judging of ``run`` (checked: a run folder with pairs and a readable prompt)."""
    return Judging(run, prompt_path or PROMPT, version)


def judge_config(cfg: Any, judging: Judging) -> Any:
    """``cfg`` with its run folder moved beside the judged pairs: ``<run>/judge/<version>``."""
    return cfg.model_copy(update={"output_dir": str(judging.run), "dataset_version": judging.version,
                                  "name": FOLDER})


async def run_judge(cfg: Any, env: Any, judging: Judging, display: Any = None, retry_errors: bool = False,
                    install_signals: bool = True) -> Any:
    """Judge every answered query of ``judging.run`` not judged yet; the engine's JobResult."""
    from syphus.engine.job import LoadedDataset, run_job

    return await run_job(judge_config(cfg, judging), env, loaded=LoadedDataset(judging, Path("<judge>")),
                         retry_errors=retry_errors, display=display, install_signals=install_signals)


def judge_dry_run(cfg: Any, env: Any, judging: Judging) -> dict[str, Any]:
    """What judging would cost and take (``syphus judge --dry-run``); nothing is sent or written."""
    from syphus.engine.job import LoadedDataset, dry_run

    return dry_run(judge_config(cfg, judging), env, loaded=LoadedDataset(judging, Path("<judge>")))


def judge_figure(run: Path, lowest: int = 20) -> dict[str, Any] | None:
    """What the newest judge run says of ``run``'s pairs (None when it was never judged).

    Per criterion, how many pairs got each score 1-5; the mean of each and of all; how many
    pairs are judged, and the ``lowest`` pairs by mean score with their reasons (``syphus report``).
    """
    import heapq

    folders = judge_folders(run)
    if not folders:
        return None
    hist = {c: [0] * 5 for c in CRITERIA}
    sums = dict.fromkeys(CRITERIA, 0)
    n = 0
    worst: list[tuple[float, int, dict[str, Any]]] = []
    for v in verdicts(run, folders[-1]):
        n += 1
        for c in CRITERIA:
            score = min(5, max(1, int(v.scores.get(c, 1))))
            hist[c][score - 1] += 1
            sums[c] += score
        entry = (-v.mean, n, {"id": v.qid, "pair": v.pair, "mean": round(v.mean, 2), "scores": v.scores,
                              "instruction": v.instruction, "answer": v.answer, "reason": v.reason})
        if len(worst) < lowest:
            heapq.heappush(worst, entry)
        elif entry > worst[0]:
            heapq.heapreplace(worst, entry)
    means = {c: round(sums[c] / n, 3) if n else None for c in CRITERIA}
    return {"folder": str(folders[-1]), "judged_pairs": n, "histograms": hist, "means": means,
            "mean": round(sum(sums.values()) / (n * len(CRITERIA)), 3) if n else None,
            "lowest": [e for _, _, e in sorted(worst, key=lambda t: (-t[0], t[1]))]}


class Scores:
    """The newest judge run's mean score of each pair of a run, looked up by the query's current pairs.

    Holds the judge file's offsets by judge id (as export holds the pairs file's), reading one
    verdict record when asked. A query whose pairs changed since it was judged has no scores.
    """

    def __init__(self, run: Path):
        folders = judge_folders(run)
        if not folders:
            raise UserError(f"{run}: never judged (no {FOLDER}/<version>/{PAIRS}); run syphus judge {run} first")
        self.path = folders[-1] / PAIRS
        self._offsets: dict[str, int] = {}
        with self.path.open("rb") as f:
            offset = 0
            for line in f:
                if line.endswith(b"\n") and line.strip():
                    try:
                        self._offsets.setdefault(str(json.loads(line)["id"]), offset)
                    except (ValueError, KeyError, TypeError):
                        pass
                offset += len(line)
        self._file = self.path.open("rb")

    def means(self, qid: str, pairs: list[Mapping[str, Any]]) -> list[float | None]:
        """The mean score of each of ``pairs`` (None: not judged, or judged when the pairs were other)."""
        out: list[float | None] = [None] * len(pairs)
        offset = self._offsets.get(judge_id(qid, pairs))
        if offset is None:
            return out
        self._file.seek(offset)
        for p in json.loads(self._file.readline()).get("pairs") or []:
            i = p.get("pair") if isinstance(p, dict) else None
            if isinstance(i, int) and 1 <= i <= len(pairs) and isinstance(p.get("mean"), (int, float)):
                out[i - 1] = float(p["mean"])
        return out

    def close(self) -> None:
        self._file.close()
