"""The judge's verdicts read back: which still apply to a run's pairs, the report's figure, export's scores.

``syphus judge`` (``workflows/judge``) writes one verdict record per judged query into
``<run>/judge/<version>/pairs.jsonl``, keyed by ``judge_id`` (the query id and a digest of
its pairs). The release reads them here, without the workflow: the report's judge section
(``judge_figure``) and export's ``--min_score`` (``Scores``).

>>> pairs = [{"instruction": "What colour is the cap?", "answer": "Blue."}]
>>> judge_id("v1_q7", pairs) == judge_id("v1_q7", [dict(p) for p in pairs])
True
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syphus.engine.store import PAIRS, read_jsonl
from syphus.errors import UserError
from syphus.idset import IdSet

CRITERIA = ("grounded", "answerable", "correct", "useful")
FOLDER = "judge"


def judge_id(qid: str, pairs: list[Mapping[str, Any]]) -> str:
    """The id of the judge query for one query's pairs: the query id and a digest of the pairs' text."""
    text = json.dumps([[p.get("instruction"), p.get("answer")] for p in pairs], ensure_ascii=False)
    return f"{qid}#{hashlib.blake2b(text.encode('utf-8'), digest_size=6).hexdigest()}"


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


def judge_figure(run: Path, lowest: int = 20) -> dict[str, Any] | None:
    """What the newest judge run says of ``run``'s pairs (None when it was never judged).

    Per criterion, how many pairs got each score 1-5; the mean of each and of all; how many
    pairs are judged, and the ``lowest`` pairs by mean score with their reasons (``syphus report``).
    """
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
