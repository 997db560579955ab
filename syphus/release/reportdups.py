"""Report duplicates section: exact and near-duplicate instructions across all inputs together.

Every instruction of every input goes into one ``syphus.release.dedup.NearDuplicates`` (the same
search as ``export --dedup``); each input's entry says how many of its instructions are exact
repeats, near duplicates and in clusters, and the report's top level gives the settings, the
cluster sizes and the largest clusters, their members read again from the inputs (a second,
partial read).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from syphus.release.dedup import NearDuplicates
from syphus.release.reportinput import Pair, Source, iter_source, viewer_link
from syphus.release.reportsection import Input, Options, Section

try:
    import numpy as np
except ImportError:  # without the extra ``report``: NearDuplicates() says what to install
    np = None  # type: ignore[assignment]

MEMBERS = 8  # members listed for each cluster


class Duplicates(Section):
    """Exact and near-duplicate instructions, per input and across all inputs."""

    name = "duplicates"

    def __init__(self, options: Options):
        super().__init__(options)
        self.finder = NearDuplicates(options.threshold, options.shingle,
                                     **({"num_perm": options.num_perm} if options.num_perm else {}))

    def pair(self, inp: Input, pair: Pair) -> None:
        self.finder.add(pair.instruction, pair.iw)

    def finish(self, inputs: list[Input]) -> None:
        self.found = found = self.finder.clusters()
        self.dropped, self.exact = found.dropped(), found.exact_dropped()
        self.in_cluster = found.sizes()[found.root] > 1 if found.n else np.zeros(0, dtype=bool)

    def figures(self, inp: Input) -> dict[str, Any]:
        lo, hi = inp.start, inp.stop
        dropped, exact = self.dropped[lo:hi], self.exact[lo:hi]
        # each instruction --dedup drops is an exact repeat or a near duplicate (not exact), counted once
        return {"duplicates": {"near_duplicates": int((dropped & ~exact).sum()), "exact_duplicates": int(exact.sum()),
                               "dropped_by_dedup": int(dropped.sum()), "in_clusters": int(self.in_cluster[lo:hi].sum()),
                               "pairs": hi - lo}}

    def overall(self, inputs: list[Input]) -> dict[str, Any]:
        found = self.found
        starts = [i.start for i in inputs] + [inputs[-1].stop if inputs else 0]
        out = inputs[0].out if inputs else Path(".")
        listing = cluster_listing(found, [i.source for i in inputs], starts, out, self.options.clusters)
        return {"duplicates": {**found.summary(), "size_counts": found.size_counts(),
                               "exact_size_counts": found.size_counts(exact=True), **listing}}


def cluster_listing(found: Any, sources: Sequence[Source], starts: Sequence[int], out: Path,
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
