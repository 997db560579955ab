"""Export's filters: which pairs of a run a release leaves out, and how many, for ``meta``.

Each filter reads the pairs in export order (query id order, the pairs of a query in reply order)
and returns a bool per pair (drop it) combined with the filters before it, and the counts that go to
the release's ``meta``: ``dedup`` (near-duplicate instructions), ``judge`` (a judge score below
``--min_score``, or never judged) and ``grounding`` (a grounding score below ``--min_grounding``, or
an annotation the plugin no longer gives). A pair dropped by an earlier filter is not counted again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

Entries = list[tuple[str, int]]  # (query id, offset of its record in the pairs file), in export order


def _records(pairs_path: Path, entries: Entries) -> Iterator[tuple[str, list[Any]]]:
    with pairs_path.open("rb") as f:
        for qid, offset in entries:
            f.seek(offset)
            yield qid, json.loads(f.readline()).get("pairs") or []


def near_duplicates(pairs_path: Path, entries: Entries, threshold: float) -> tuple[Any, dict[str, Any]]:
    """A bool per pair: whether it is a near duplicate of an earlier one (``release.dedup``); the counts."""
    from syphus.release.dedup import NearDuplicates

    finder = NearDuplicates(threshold)
    for _, pairs in _records(pairs_path, entries):
        for pair in pairs:
            finder.add(str(pair.get("instruction") or ""))
    clusters = finder.clusters()
    summary = clusters.summary()
    return clusters.dropped(), {k: summary[k] for k in ("threshold", "shingle_words", "clusters",
                                                        "near_duplicates", "exact_duplicates")}


def _below(scores: Callable[[str, list[Any]], Iterable[float | None]], pairs_path: Path, entries: Entries,
           threshold: float, drop: Any) -> tuple[list[bool], int, int]:
    """``drop`` with every pair scoring below ``threshold`` or unscored (None) added; how many of the pairs
    not dropped before were below, and how many unscored."""
    out: list[bool] = []
    low = unknown = 0
    for qid, pairs in _records(pairs_path, entries):
        for score in scores(qid, pairs):
            already = bool(drop is not None and drop[len(out)])
            out.append(already or score is None or score < threshold)
            if not already:
                low += score is not None and score < threshold
                unknown += score is None
    return out, low, unknown


def low_scores(folder: Path, pairs_path: Path, entries: Entries, min_score: float,
               drop: Any) -> tuple[list[bool], dict[str, Any]]:
    """Pairs whose mean score in the run's newest judge run is below ``min_score``, or never judged."""
    from syphus.release.verdicts import Scores  # the verdicts of syphus judge, beside the run

    scores = Scores(folder)
    try:
        out, low, unjudged = _below(scores.means, pairs_path, entries, min_score, drop)
    finally:
        scores.close()
    return out, {"file": str(scores.path), "min_score": min_score, "below": low, "unjudged": unjudged}


def ungrounded(folder: Path, pairs_path: Path, entries: Entries, min_grounding: float,
               drop: Any) -> tuple[list[bool], dict[str, Any]]:
    """Pairs whose grounding score is below ``min_grounding``, or whose annotation is not known."""
    from syphus.release.rungrounding import RunGrounding

    with RunGrounding(folder) as grader:
        def scores(qid: str, pairs: list[Any]) -> list[float | None]:
            return [None if g is None else g.score for g in grader.grade(qid, pairs)]

        out, low, unchecked = _below(scores, pairs_path, entries, min_grounding, drop)
    return out, {"min_grounding": min_grounding, "below": low, "no_annotation": unchecked}
