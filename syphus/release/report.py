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
- for a translation run (or a file exported from one), per language, the checks' pass rate, why
  translations failed and how many were asked again;
- for a run judged by ``syphus judge``, the scores per criterion and the lowest-scoring pairs with reasons;
- for a run folder, the grounding check of every answer against its query's annotation;
- diversity (English): the share of instructions whose ROUGE-L to an earlier instruction of the same
  input is 0.7 or more, found among MinHash candidates in near-linear time, and the spread of the
  instructions' first words, openings and imperative verbs (entropy, effective number);

and, over all inputs together, exact and near-duplicate instructions (``syphus.release.dedup``),
with the largest clusters listed. ``write_report`` puts ``report.json`` (every figure's numbers)
and ``index.html`` (``syphus.release.reportpage``: the plots, offline) in a folder.

Each part is a section (``syphus.release.reportsection.Section``), listed once in ``SECTIONS``:
the inputs are read once, every pair handed to every section, and each section gives its keys of
each input's entry and of the report's top level. Adding a figure is one small class and one line
in ``SECTIONS``.

Memory stays flat in everything but the duplicate search (about 80 bytes an instruction) and the
diversity index (about 4 bytes a word of an instruction, plus 9): lengths are counted exactly up to ``HIST_LIMIT`` words or tokens, reasons and words in counters that keep
at most ``TopCounter.cap`` keys, and examples a few at a time. Cluster members are found again by
a second, partial read.

>>> report = build_report(["output/DC/v1", "output/DC/v1/export/DC_instructions_zh.json"])  # doctest: +SKIP
>>> write_report(report, "output/DC/v1/report")                                               # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from syphus import __version__
from syphus.engine.store import write_atomic
from syphus.errors import UserError
from syphus.release.dedup import SHINGLE, THRESHOLD
from syphus.release.reportcost import Cost, LanguageChecks, Translation
from syphus.release.reportdups import Duplicates
from syphus.release.reportform import Diversity, Lengths, Outcomes, Questions, Signals
from syphus.release.reportinput import Source, default_folder, iter_source, resolve, unique_labels
from syphus.release.reportsection import Dispatch, Grounding, Input, Judge, Options, Section
from syphus.signals import question_type, words

__all__ = ["CLUSTERS", "SECTIONS", "Report", "build_report", "default_folder", "write_report"]

CLUSTERS = 20  # largest clusters listed
# The report's sections, in the order of their keys in each input's entry (outcomes: counts, why,
# pairs_per_input). One line a section.
SECTIONS: tuple[type[Section], ...] = (Outcomes, Lengths, Questions, Signals, Duplicates, Cost, Translation, Judge,
                                       Grounding, LanguageChecks, Diversity)


@dataclass
class Report:
    """Everything ``build_report`` found: ``data`` is report.json; ``sources`` the inputs."""

    data: dict[str, Any]
    sources: list[Source]


def build_report(inputs: Sequence[str | Path], *, threshold: float = THRESHOLD, shingle: int = SHINGLE,
                 num_perm: int | None = None, prompt: str | Path | None = None, pricing: str | Path | None = None,
                 viewer: str | Path | None = None, out: str | Path | None = None,
                 clusters: int = CLUSTERS, grounding: bool = True,
                 sections: Sequence[type[Section]] = SECTIONS) -> Report:
    """Read every input once (and the members of the largest clusters again) into a ``Report``."""
    if not inputs:
        raise UserError("no input given: syphus report <run folder | XX_instructions.json> [more ...]")
    sources = [resolve(p, prompt, viewer) for p in inputs]
    unique_labels(sources)
    out_dir = Path(out) if out is not None else default_folder(inputs[0])
    options = Options(threshold, shingle, num_perm, pricing, clusters, grounding)
    parts = [cls(options) for cls in sections]
    read: list[Input] = []
    n = 0
    for i, source in enumerate(sources):
        inp = Input(i, source, out_dir, start=n, english=source.language.split("-")[0] == "en")
        for s in parts:
            s.start(inp)
        for pair in iter_source(source, Dispatch(parts, inp)):
            pair.iw, pair.aw = words(pair.instruction), words(pair.answer)
            if inp.english:
                pair.question = question_type(pair.instruction, pair.iw)
            inp.pairs += 1
            for s in parts:
                s.pair(inp, pair)
            n += 1
        inp.stop = n
        read.append(inp)
    for s in parts:
        s.finish(read)
    entries = []
    for inp in read:
        source = inp.source
        entry = {"label": source.label, "path": str(source.path), "kind": source.kind, "scene": source.scene,
                 "language": source.language, "run": str(source.run) if source.run else None,
                 "prompt": source.prompt, "viewer": str(source.viewer) if source.viewer else None,
                 "notes": source.notes}
        for s in parts:
            entry.update(s.figures(inp))
        entries.append(entry)
    data = {"generator": f"syphus {__version__}",
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "inputs": [str(p) for p in inputs], "sources": entries}
    for s in parts:
        data.update(s.overall(read))
    return Report(data, sources)


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
