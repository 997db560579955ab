"""The grounding check over a run folder: each pair against the annotation its query was made from
(``grounding.check``), for the report's section, export's ``--min_grounding`` and the cold start."""

from __future__ import annotations

import heapq
import json
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from syphus.durable import atomic_file
from syphus.release.grounding import Grounding, Support, check, kind_of


class RunGrounding:
    """The pairs of one run folder checked against the annotation their query was made from.

    The annotation is read again from the plugin that made the run (``release/annotation``), so a run
    whose plugin or data is gone cannot be checked; an id the plugin no longer gives checks as None.
    """

    def __init__(self, run: Path):
        from syphus.engine.store import PAIRS, read_jsonl
        from syphus.idset import IdSet
        from syphus.release.annotation import Annotations

        self.run = Path(run)
        wanted = IdSet()
        for _, rec in read_jsonl(self.run / PAIRS, skip_torn=True):
            if rec.get("pairs"):
                wanted.add(str(rec["id"]))
        self._notes = Annotations(self.run, wanted)
        self._last: tuple[str, Support | None] | None = None

    def support(self, qid: str) -> Support | None:
        if self._last is None or self._last[0] != qid:
            text = self._notes.get(qid)
            self._last = (qid, None if text is None else Support.of(text, self._notes.images(qid)))
        return self._last[1]

    def grade(self, qid: str, pairs: list[Any]) -> list[Grounding | None]:
        """Each pair of query ``qid`` checked (None for all when the annotation is not known)."""
        support = self.support(qid)
        return [None if support is None or not isinstance(p, dict) else
                check(str(p.get("answer") or ""), str(p.get("instruction") or ""), support) for p in pairs]

    def close(self) -> None:
        self._notes.close()

    def __enter__(self) -> RunGrounding:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


BINS = 10


def grounding_figure(run: Path, lowest: int = 20, top: int = 30, listing: Path | None = None) -> dict[str, Any]:
    """What the grounding check says of a run folder's pairs, in one streaming pass: how many are grounded
    (no unsupported term), the score distribution (``BINS`` bins of 0.1, the last holding 1.0), the
    unsupported terms by kind and the most frequent ones, and the ``lowest`` pairs by score. With
    ``listing``, every pair's score and unsupported terms are written there, one JSON line a pair."""
    from syphus.engine.store import PAIRS, read_jsonl

    hist = [0] * BINS
    kinds: Counter[str] = Counter()
    terms: Counter[str] = Counter()
    worst: list[tuple[float, int, dict[str, Any]]] = []
    checked = grounded = unknown = 0
    total = 0.0
    with RunGrounding(run) as grader, ExitStack() as stack:
        if listing is not None:  # written whole or not at all: a pass that raises leaves no half file
            listing.parent.mkdir(parents=True, exist_ok=True)
            lines = stack.enter_context(atomic_file(listing, sync=False))
        for _, rec in read_jsonl(Path(run) / PAIRS, skip_torn=True):
            pairs = rec.get("pairs") or []
            qid = str(rec.get("id"))
            for i, (pair, g) in enumerate(zip(pairs, grader.grade(qid, pairs))):
                if g is None:
                    unknown += 1
                    continue
                if listing is not None:
                    lines.write(json.dumps({"id": qid, "pair": i, "score": g.score, "terms": g.terms,
                                            "unsupported": list(g.unsupported)}) + "\n")
                checked += 1
                grounded += g.grounded
                total += g.score
                hist[min(int(g.score * BINS), BINS - 1)] += 1
                for term in g.unsupported:
                    terms[term] += 1
                    kinds[kind_of(term)] += 1
                if not g.grounded:
                    entry = (-g.score, -checked, {"id": qid, "pair": i, "score": g.score,
                                                 "unsupported": list(g.unsupported),
                                                 "instruction": str(pair.get("instruction") or "")[:300],
                                                 "answer": str(pair.get("answer") or "")[:500]})
                    if len(worst) < lowest:
                        heapq.heappush(worst, entry)
                    elif entry[:2] > worst[0][:2]:
                        heapq.heapreplace(worst, entry)
    return {"pairs": checked, "grounded": grounded,
            "grounded_share": round(grounded / checked, 4) if checked else None,
            "mean_score": round(total / checked, 4) if checked else None,
            "histogram": {"bins": [round(i / BINS, 1) for i in range(BINS)], "counts": hist},
            "unsupported_by_kind": dict(kinds.most_common()),
            "top_unsupported": [[t, n] for t, n in terms.most_common(top)],
            "lowest": [e[2] for e in sorted(worst, key=lambda e: (e[0], e[1]), reverse=True)],
            "no_annotation": unknown, "listing": str(listing) if listing is not None else None}
