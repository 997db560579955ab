"""Report page: the dataset report (``syphus.release.report``'s JSON) as one static HTML page.

Every figure is a plot drawn with matplotlib (the optional extra ``report``), inlined as SVG, with
its numbers in a table beside it; the largest duplicate clusters and the examples of each signal
are listed, each linked to the viewer's page for that pair when the viewer was built. The page
needs no network, no script and no other file: open it from disk.

``PLOTS`` names the plots; each is a ``<figure class="plot" data-plot="NAME">`` holding one ``<svg>``,
drawn even when its inputs have nothing to show (it then says why).

>>> page = render_page({"inputs": [], "sources": [], "duplicates": {}})  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syphus.release.reportdraw import html_table, plotting, shorten
from syphus.release.reportplots import (cluster_tables, examples, plot_diversity, plot_duplicates,
                                        plot_imperative_verbs, plot_lengths, plot_outcomes, plot_pairs_per_input,
                                        plot_question_types, plot_signals, plot_why)
from syphus.release.reportquality import (grounding_lowest, judge_lowest, plot_cost, plot_grounding, plot_judge,
                                          plot_language_checks, plot_translation)

__all__ = ["MARKER", "PLOTS", "cluster_tables", "examples", "plot_signals", "plot_why", "plotting", "render_page"]

MARKER = "syphus-report"
# Every plot the page draws, by name (each a <figure data-plot="NAME">), and what draws it.
_PLOTTERS: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "outcomes": plot_outcomes, "why": plot_why, "pairs_per_input": plot_pairs_per_input, "lengths": plot_lengths,
    "question_types": plot_question_types, "imperative_verbs": plot_imperative_verbs, "duplicates": plot_duplicates,
    "signals": plot_signals, "cost": plot_cost, "translation": plot_translation,
    "language_checks": plot_language_checks, "judge": plot_judge, "grounding": plot_grounding,
    "diversity": plot_diversity}
PLOTS = tuple(_PLOTTERS)


def _duplicate_settings(data: dict[str, Any]) -> str:
    d = data.get("duplicates") or {}
    settings = (f"threshold {d.get('threshold')}, shingles of {d.get('shingle_words')} words, "
                f"{d.get('num_perm')} permutations in {d.get('bands')} bands of {d.get('rows')}; "
                f"{d.get('clusters', 0):,} clusters holding {d.get('in_clusters', 0):,} instructions; "
                f"{d.get('compared_pairs', 0):,} candidate pairs compared")
    return f'<p class="note">{html.escape(settings)}</p>' + cluster_tables(d)


def _error_examples(data: dict[str, Any]) -> str:
    errors = [[s["label"], e["id"], e["kind"], shorten(e["message"], 200)]
              for s in data.get("sources") or [] for e in s["why"]["error_examples"]]
    return "<h3>Examples: errors</h3>" + html_table(["input", "query", "kind", "message"], errors, "clusters") \
        if errors else ""


@dataclass(frozen=True)
class PageSection:
    """One section of the page: its anchor, title, lead, plots (by name) and what follows them."""

    sid: str
    title: str
    plots: tuple[str, ...]
    lead: str
    after: Callable[[dict[str, Any]], str] | None = None


_SECTIONS = (
    PageSection("outcomes", "Queries, pairs, invalid replies and errors", ("outcomes", "why"),
                "Per input: how each query ended, and why replies gave no pairs (the parser's reasons), "
                "what the parser dropped from replies it kept, and the kinds of errors.", _error_examples),
    PageSection("pairs", "Pairs per query", ("pairs_per_input",),
                "How many pairs each query gave, against the number the system message asks for (dashed)."),
    PageSection("lengths", "Instruction and answer lengths", ("lengths",),
                "Words, and tokens by the run's estimator (about 4 characters a token in English, one a character "
                "in other scripts)."),
    PageSection("questions", "Question types", ("question_types", "imperative_verbs"),
                "The leading wh-word or auxiliary of each instruction (a lead-in such as \"In the video,\" is looked "
                "past), and the leading verbs of imperative instructions."),
    PageSection("duplicates", "Duplicate instructions", ("duplicates",),
                "Exact repeats (same text but for case and spacing) and near duplicates (Jaccard similarity of word "
                "shingles at or above the threshold), across all inputs together.", _duplicate_settings),
    PageSection("diversity", "Diversity", ("diversity",),
                "English instructions whose ROUGE-L (longest common word subsequence, F-measure) to an earlier "
                "instruction of the same input is 0.7 or more, Self-Instruct's threshold for dropping one; "
                "candidates from a MinHash index of word sets, each checked exactly. And how many openings the "
                "instructions effectively use (2 to the entropy of their leading question word or verb): "
                "10 openings used equally give 10."),
    PageSection("signals", "Answers that repeat, refuse or use forbidden words", ("signals",),
                "The cold start's signals, on every pair.", lambda data: examples(data.get("sources") or [])),
    PageSection("cost", "Tokens and cost", ("cost", "translation", "language_checks"),
                "Tokens and dollars per pair, per input; for translations, how much of the English was translated "
                "and why the rest failed, and per language the share of translations that passed the checks "
                "(script, language identified, not a copy, plausible length) and how many were asked again."),
    PageSection("judge", "The judge's scores", ("judge",),
                "For a run judged by syphus judge: how many pairs got each score (1-5) on each criterion of the "
                "rubric, and the lowest-scoring pairs with the judge's reasons.",
                lambda data: judge_lowest(data.get("sources") or [])),
    PageSection("grounding", "Grounding in the annotation", ("grounding",),
                "For a run folder: the share of each answer's objects, people, colours, counts, times and image "
                "references that its query's own annotation (or the question) supports, with no model; a pair is "
                "grounded when nothing is unsupported. It cannot see synonyms no caption uses or false claims made "
                "of the annotation's own words.", lambda data: grounding_lowest(data.get("sources") or [])),
)

_CSS = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #5f6368; --line: #e3e3e3; --bg: #fafafa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
header { padding: 18px 28px 10px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { margin: 0 0 4px; font-size: 22px; }
h2 { margin: 0 0 6px; font-size: 18px; }
h3 { margin: 18px 0 6px; font-size: 15px; }
.sub, .lead, figcaption, .note { color: var(--muted); }
nav a { margin-right: 14px; }
main { padding: 8px 28px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin: 18px 0; }
.row { display: grid; grid-template-columns: minmax(420px, 1.25fr) minmax(320px, 1fr); gap: 22px;
       align-items: start; margin-top: 10px; }
@media (max-width: 1100px) { .row { grid-template-columns: 1fr; } }
figure.plot { margin: 0; }
figure.plot svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
table.numbers td { font-variant-numeric: tabular-nums; }
th { background: #f3f4f6; font-weight: 600; }
.clusters td:first-child { white-space: nowrap; }
.members { margin: 0; padding-left: 18px; }
.members li.kept { font-weight: 600; }
.tag { color: var(--muted); font-size: 12px; }
"""


def _notes(sources: list[dict[str, Any]]) -> str:
    notes = [f"<li>{html.escape(s['label'])}: {html.escape(n)}</li>" for s in sources for n in s.get("notes") or []]
    return f'<ul class="note">{"".join(notes)}</ul>' if notes else ""


def render_page(data: dict[str, Any]) -> str:
    """The report as one HTML page (plots inline as SVG, tables beside them, no external resource)."""
    plotting()
    drawn = {name: _PLOTTERS[name](data) for name in PLOTS}
    sources = data.get("sources") or []
    labels = ", ".join(s["label"] for s in sources)
    parts = [f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
             f'<meta name="generator" content="{MARKER}">\n'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
             f"<title>{html.escape('Syphus report: ' + labels)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
             f"<header><h1>Dataset report</h1>"
             f'<p class="sub">{html.escape(labels)} · {html.escape(str(data.get("generated", "")))} · '
             f'{html.escape(str(data.get("generator", "")))}</p><nav>'
             + "".join(f'<a href="#{sec.sid}">{html.escape(sec.title)}</a>' for sec in _SECTIONS)
             + "</nav>" + _notes(sources) + "</header>\n<main>\n"]
    for sec in _SECTIONS:
        parts.append(f'<section id="{sec.sid}"><h2>{html.escape(sec.title)}</h2>'
                     f'<p class="lead">{html.escape(sec.lead)}</p>')
        for name in sec.plots:
            svg, table = drawn[name]
            parts.append(f'<div class="row"><figure class="plot" id="plot-{name}" data-plot="{name}">{svg}'
                         f"</figure><div>{table}</div></div>")
        if sec.after is not None:
            parts.append(sec.after(data))
        parts.append("</section>\n")
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)
