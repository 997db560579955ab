"""Report sections: one part of ``syphus report`` each, fed the pair stream, giving its figures.

A section is a small class (``Section``): the report reads every input once, in order, and hands
each section every record of a run folder (``record``, ``error``) and every pair (``pair``, its
words and question type already found); once all inputs are read it calls ``finish`` (for work
across inputs, such as clustering), then ``figures`` for each input (the keys it adds to that
input's entry in report.json) and ``overall`` (keys at the report's top level). Every hook has a
default that does nothing, so a section writes only what it needs. The registry is
``syphus.release.report.SECTIONS``: adding a section is one class and one line there (and, for
the page, one entry in ``syphus.release.reportpage``).

>>> class Questions(Section):
...     name = "questions"
...     def start(self, inp): inp.state[self.name] = 0
...     def pair(self, inp, pair): inp.state[self.name] += pair.instruction.endswith("?")
...     def figures(self, inp): return {"questions": inp.state[self.name]}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syphus.engine.record import tally
from syphus.errors import UserError
from syphus.release.reportinput import Pair, Source


@dataclass
class Options:
    """What the report was asked for (``build_report``'s keyword arguments)."""

    threshold: float
    shingle: int
    num_perm: int | None = None
    pricing: str | Path | None = None
    clusters: int = 20
    grounding: bool = True


@dataclass
class Input:
    """One input as the sections see it: its source, its number, its items' numbers across all inputs
    (``start`` to ``stop``, as the duplicate search counts them), its pairs so far, and ``state``: a
    place for each section to keep what it counts for this input (by the section's name)."""

    index: int
    source: Source
    out: Path  # the report's folder (viewer links are relative to it)
    start: int = 0
    stop: int = 0
    pairs: int = 0
    english: bool = False
    state: dict[str, Any] = field(default_factory=dict)


class Section:
    """One part of the report. ``name`` names it; every hook may be left as it is."""

    name = "section"

    def __init__(self, options: Options):
        self.options = options

    def start(self, inp: Input) -> None:
        """An input begins."""

    def record(self, inp: Input, rec: dict[str, Any], counted: Any, valid: bool) -> None:
        """A record of a run folder's pairs.jsonl (``valid``) or invalid.jsonl; ``counted`` is its ``tally``."""

    def error(self, inp: Input, rec: dict[str, Any], counted: Any) -> None:
        """A line of a run folder's errors.jsonl; ``counted`` is its ``tally``."""

    def pair(self, inp: Input, pair: Pair) -> None:
        """A pair of the input (``pair.iw``, ``pair.aw`` and, in English, ``pair.question`` are filled in)."""

    def finish(self, inputs: list[Input]) -> None:
        """Every input has been read."""

    def figures(self, inp: Input) -> dict[str, Any]:
        """The keys this section adds to an input's entry."""
        return {}

    def overall(self, inputs: list[Input]) -> dict[str, Any]:
        """The keys this section adds to the report's top level."""
        return {}


class Dispatch:
    """Hands one input's records to every section (each record tallied once)."""

    def __init__(self, sections: list[Section], inp: Input):
        self.sections, self.inp = sections, inp

    def record(self, rec: dict[str, Any], valid: bool) -> None:
        counted = tally(rec)
        for s in self.sections:
            s.record(self.inp, rec, counted, valid)

    def error(self, rec: dict[str, Any]) -> None:
        counted = tally(rec)
        for s in self.sections:
            s.error(self.inp, rec, counted)


class Judge(Section):
    """The judge's verdicts on a run folder's pairs (``syphus judge``), when it was judged."""

    name = "judge"

    def figures(self, inp: Input) -> dict[str, Any]:
        if inp.source.kind != "run":
            return {"judge": None}
        from syphus.release.verdicts import judge_figure  # read only where a run was judged

        return {"judge": judge_figure(inp.source.path)}


class Grounding(Section):
    """The grounding check of a run folder's pairs against their annotations (``release/grounding``), each
    pair's score and unsupported terms in ``<report>/grounding-N.jsonl``; a release file has no annotations
    beside it, and a run whose plugin is gone says why it was not checked."""

    name = "grounding"

    def figures(self, inp: Input) -> dict[str, Any]:
        if not self.options.grounding or inp.source.kind != "run":
            return {"grounding": None}
        from syphus.release.rungrounding import grounding_figure

        try:
            listing = inp.out / f"grounding-{inp.index + 1}.jsonl"
            return {"grounding": grounding_figure(inp.source.path, listing=listing)}
        except UserError as e:
            return {"grounding": {"unavailable": str(e)}}
