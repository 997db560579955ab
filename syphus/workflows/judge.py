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
import json
from collections.abc import Iterator, Mapping
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
from syphus.release.verdicts import CRITERIA, FOLDER, judge_id, verdicts  # noqa: F401  (imported from here too)

PROMPT = "prompts/judge.yaml"
_Score = Literal[1, 2, 3, 4, 5]


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
    from syphus.engine.job import run_job
    from syphus.engine.workload import LoadedDataset

    return await run_job(judge_config(cfg, judging), env, loaded=LoadedDataset(judging, Path("<judge>")),
                         retry_errors=retry_errors, display=display, install_signals=install_signals)


def judge_dry_run(cfg: Any, env: Any, judging: Judging) -> dict[str, Any]:
    """What judging would cost and take (``syphus judge --dry-run``); nothing is sent or written."""
    from syphus.engine.dryrun import dry_run
    from syphus.engine.workload import LoadedDataset

    return dry_run(judge_config(cfg, judging), env, loaded=LoadedDataset(judging, Path("<judge>")))
