"""Report quality plots: money, translations and the checks of what pairs say (cost, translation
coverage, the language checks' pass rates, the judge's scores, grounding), each ``plot_NAME(data)``
returning ``(svg, table html)``, and the lists of the lowest-scoring pairs.
"""

from __future__ import annotations

from typing import Any

from syphus.release.reportdraw import (COLOURS, Html, empty_plot, html_table, legend_above, new_figure, no_data, pct,
                                       shorten, stacked, style, to_svg)


def plot_cost(data: dict[str, Any]) -> tuple[str, str]:
    priced = [s for s in data["sources"] if s["cost"]]
    rows = [[s["label"], s["cost"]["model"] or "–", s["cost"]["prompt_tokens_per_pair"],
             s["cost"]["completion_tokens_per_pair"],
             Html(f"${s['cost']['cost_usd']:,.4f}") if s["cost"]["cost_usd"] is not None else "–",
             Html(f"${s['cost']['cost_per_1000_pairs_usd']:,.4f}") if s["cost"]["cost_per_1000_pairs_usd"] is not None
             else "–", s["cost"]["note"] or s["cost"]["basis"]] for s in priced]
    table = html_table(["input", "priced as", "prompt tokens / pair", "completion tokens / pair", "cost",
                        "cost / 1,000 pairs", "from"], rows)
    if not priced:
        return empty_plot("cost", "No run records among the inputs (tokens come from a run folder, or the run\n"
                          "an instructions file was exported into)."), table
    fig, (tok, usd) = new_figure(max(2.2, 0.6 + 0.45 * len(priced)), cols=2)
    labels = [s["label"] for s in priced]
    stacked(tok, labels, [("prompt", [s["cost"]["prompt_tokens_per_pair"] for s in priced], "#4c72b0"),
                          ("completion", [s["cost"]["completion_tokens_per_pair"] for s in priced], "#dd8452")],
            "tokens per pair")
    per_1000 = [s["cost"]["cost_per_1000_pairs_usd"] for s in priced]
    if not any(per_1000):  # no price (None) or a local model's zero price: nothing to draw
        free = [s["label"] for s, c in zip(priced, per_1000) if c == 0]
        no_data(usd, "USD per 1,000 pairs: " + ("$0 (priced at zero: " + ", ".join(free) + ")" if free
                                                else "no price in the pricing table"))
    else:
        usd.barh(labels, [c or 0 for c in per_1000], color="#55a868")
        usd.invert_yaxis()
        usd.set_xlabel("USD per 1,000 pairs")
        usd.set_yticks(range(len(labels)), [""] * len(labels))
        style(usd)
    return to_svg(fig, "cost"), table


def plot_translation(data: dict[str, Any]) -> tuple[str, str]:
    langs = [s for s in data["sources"] if s["translation"]]
    rows = []
    for s in langs:
        t = s["translation"]
        why = "; ".join(f"{r} ({n:,})" for r, n in t["failures"]["top"][:4]) or "–"
        rows.append([s["label"], t["pairs"], t["english_pairs"], pct(t["coverage"]), t["failures"]["total"], why])
    table = html_table(["translation", "pairs", "English pairs", "coverage", "failed", "why (most common)"], rows)
    if not langs:
        return empty_plot("translation", "No translation among the inputs (pass XX_instructions_<lang>.json files)."), table
    fig, (ax,) = new_figure(0.6 + 0.35 * len(langs))
    ax.barh([s["label"] for s in langs], [100 * (s["translation"]["coverage"] or 0) for s in langs], color="#64b5cd")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of the English pairs translated")
    style(ax)
    return to_svg(fig, "translation"), table


def plot_judge(data: dict[str, Any]) -> tuple[str, str]:
    judged = [s for s in data["sources"] if s.get("judge") and s["judge"]["judged_pairs"]]
    criteria = list(judged[0]["judge"]["histograms"]) if judged else []
    rows = [[s["label"], s["judge"]["judged_pairs"], s["judge"]["mean"]] + [s["judge"]["means"][c] for c in criteria]
            for s in judged]
    table = html_table(["input", "pairs judged", "mean score"] + [f"mean {c}" for c in criteria], rows)
    if not judged:
        return empty_plot("judge", "No judged run among the inputs (syphus judge <run folder> scores its pairs)."), table
    fig, axes = new_figure(2.0 + 0.3 * len(judged), cols=len(criteria))
    for ax, c in zip(axes, criteria):
        for k, s in enumerate(judged):
            counts = s["judge"]["histograms"][c]
            width = 0.8 / len(judged)
            ax.bar([x + k * width for x in range(1, 6)], counts, width=width, label=s["label"],
                   color=COLOURS[k % len(COLOURS)])
        ax.set_title(c, fontsize=9)
        ax.set_xticks(range(1, 6))
        ax.set_xlabel("score")
        style(ax)
    axes[0].set_ylabel("pairs")
    if len(judged) > 1:
        legend_above(axes[0], len(judged))
    return to_svg(fig, "judge"), table


def judge_lowest(sources: list[dict[str, Any]]) -> str:
    """The lowest-scoring pairs of each judged input, with the judge's reasons."""
    rows = [[s["label"], e["id"], e["pair"], e["mean"], shorten(e["instruction"], 120), shorten(e["answer"], 160),
             shorten(e["reason"], 160)] for s in sources if s.get("judge") for e in s["judge"]["lowest"]]
    if not rows:
        return ""
    return "<h3>Lowest-scoring pairs</h3>" + html_table(["input", "query", "pair", "mean", "instruction", "answer",
                                                         "the judge's reason"], rows, cls="text")


def plot_grounding(data: dict[str, Any]) -> tuple[str, str]:
    checked = [s for s in data["sources"] if (s.get("grounding") or {}).get("pairs")]
    rows = [[s["label"], g["pairs"], g["grounded"], f"{100 * g['grounded_share']:.1f}%", g["mean_score"],
             ", ".join(f"{t} ({n})" for t, n in g["top_unsupported"][:8])]
            for s in checked for g in [s["grounding"]]]
    table = html_table(["input", "pairs checked", "grounded", "share", "mean score", "most frequent unsupported"], rows)
    if not checked:
        return empty_plot("grounding", "No run folder among the inputs whose plugin could be read (the check needs "
                                   "each query's annotation)."), table
    fig, (ax,) = new_figure(2.4)
    width = 0.08 / len(checked)   # the bins are 0.1 wide
    for k, s in enumerate(checked):
        g = s["grounding"]
        ax.bar([b + 0.01 + k * width for b in g["histogram"]["bins"]], g["histogram"]["counts"],
               width=width, align="edge", label=s["label"], color=COLOURS[k % len(COLOURS)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("grounding score (share of the answer's terms its annotation supports)")
    ax.set_ylabel("pairs")
    style(ax)
    if len(checked) > 1:
        legend_above(ax, len(checked))
    return to_svg(fig, "grounding"), table


def grounding_lowest(sources: list[dict[str, Any]]) -> str:
    """The least grounded pairs of each input, with the terms their annotation does not support."""
    rows = [[s["label"], e["id"], e["pair"], e["score"], ", ".join(e["unsupported"]), shorten(e["instruction"], 120),
             shorten(e["answer"], 200)] for s in sources for e in (s.get("grounding") or {}).get("lowest") or []]
    if not rows:
        return ""
    return "<h3>Least grounded pairs</h3>" + html_table(["input", "query", "pair", "score", "unsupported", "instruction",
                                                         "answer"], rows, cls="text")


def plot_language_checks(data: dict[str, Any]) -> tuple[str, str]:
    """Per language of a translation run: the share of translations that passed the checks."""
    rows, bars = [], []
    for s in data["sources"]:
        for lang, c in (s.get("language_checks") or {}).items():
            why = "; ".join(f"{r} ({n:,})" for r, n in c["reasons"]["top"][:3]) or "–"
            rows.append([s["label"], lang, c["checked"], c["passed"], pct(c["pass_rate"]), c["wrong_language"],
                         c["asked_again"], why])
            bars.append((f"{s['label']} · {lang}", 100 * (c["pass_rate"] or 0)))
    table = html_table(["input", "language", "checked", "passed", "pass rate", "wrong language", "asked again",
                        "why the rest failed (most common)"], rows)
    if not bars:
        return empty_plot("language_checks", "No translation run among the inputs (pass its run folder, or a "
                                             "translation exported from it)."), table
    fig, (ax,) = new_figure(0.6 + 0.3 * len(bars))
    ax.barh([b[0] for b in bars], [b[1] for b in bars], color="#55a868")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of translations that passed the checks (script, language, copy, length)")
    style(ax)
    return to_svg(fig, "language_checks"), table
