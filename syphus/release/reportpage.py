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
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

from syphus.errors import UserError

PLOTS = ("outcomes", "why", "pairs_per_input", "lengths", "question_types", "imperative_verbs", "duplicates",
         "signals", "cost", "translation", "judge", "grounding")
MARKER = "syphus-report"
HINT = "pip install 'syphus[report]' (or: pip install -e '.[report]')"
COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd")
WIDTH = 7.2  # inches; the SVG scales to its column
_STRIP = (re.compile(r"<\?xml.*?\?>\s*", re.S), re.compile(r"<!DOCTYPE.*?>\s*", re.S), re.compile(r"<!--.*?-->", re.S),
          re.compile(r"<metadata>.*?</metadata>\s*", re.S), re.compile(r'\s+xmlns(?::\w+)?="[^"]*"'),
          re.compile(r'\s(?:width|height)="[\d.]+pt"'))
_IDS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


def plotting() -> Any:
    """matplotlib's ``Figure`` and ``rc_context``, or a UserError naming the extra that installs them."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(f"the report's plots need matplotlib: {HINT}") from None
    return Figure, matplotlib.rc_context


NO_DATA = "no data"


def _drew_nothing(ax: Any) -> bool:
    """Whether a plot's axes hold nothing to see: no line with points, no marks, every bar of zero size
    (matplotlib would draw bare axes from -0.04 to 0.04)."""
    if any(len(line.get_xdata()) for line in ax.lines) or ax.collections or ax.images:
        return False
    for patch in ax.patches:
        if not hasattr(patch, "get_width"):  # a step or polygon: something is drawn
            return False
        if patch.get_width() != 0 and patch.get_height() != 0:
            return False
    return True


def _no_data(ax: Any, why: str = "") -> None:
    """Axes that say "no data" (and why) instead of drawing empty axes."""
    title = ax.get_xlabel() or ax.get_title()
    ax.clear()
    ax.axis("off")
    ax.text(0.5, 0.5, f"{NO_DATA}" + (f": {why}" if why else "") + (f"\n({title})" if title else ""),
            ha="center", va="center", fontsize=9, color="#555555", transform=ax.transAxes, wrap=True)


def _svg(fig: Any, name: str) -> str:
    """The figure as inline SVG: text kept as text, ids made unique to this plot, nothing external.
    Axes with nothing drawn on them say "no data" instead."""
    for ax in fig.axes:
        if ax.axison and _drew_nothing(ax):
            _no_data(ax)
    _, rc_context = plotting()
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": name, "text.parse_math": False}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    for pattern in _STRIP:
        text = pattern.sub("", text)
    text = text.replace("xlink:href=", "href=")
    text = _IDS.sub(lambda m: f"{m[1]}{name}-{m[2]}", text)
    return text.replace("<svg", f'<svg role="img" aria-label="{html.escape(name)}"', 1).strip()


def _new(height: float, cols: int = 1) -> tuple[Any, list[Any]]:
    Figure, rc_context = plotting()
    with rc_context({"font.size": 9}):
        fig = Figure(figsize=(WIDTH, height), layout="constrained")
        axes = [fig.add_subplot(1, cols, i + 1) for i in range(cols)]
    return fig, axes


def _empty(name: str, why: str) -> str:
    fig, (ax,) = _new(1.0)
    ax.axis("off")
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=10, color="#555555", wrap=True)
    return _svg(fig, name)


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="both", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def _hbars(ax: Any, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str) -> None:
    """Grouped horizontal bars: one group per label (top to bottom), one bar per series."""
    n = max(1, len(series))
    height = 0.8 / n
    for j, (name, values) in enumerate(series):
        ys = [i + (j - (n - 1) / 2) * height for i in range(len(labels))]
        ax.barh(ys, values, height=height, label=name, color=COLOURS[j % len(COLOURS)])
    ax.set_yticks(range(len(labels)), [_short(x, 48) for x in labels])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    _style(ax)
    if len(series) > 1:
        _legend_above(ax, min(4, len(series)))


def _stacked(ax: Any, labels: Sequence[str], parts: Sequence[tuple[str, Sequence[float], str]], xlabel: str) -> None:
    """Stacked horizontal bars, one per label (top to bottom): ``parts`` are (name, values, colour)."""
    left = [0.0] * len(labels)
    for name, values, colour in parts:
        ax.barh(labels, values, left=left, label=name, color=colour)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    _legend_above(ax, len(parts))
    _style(ax)


def _legend_above(ax: Any, ncols: int) -> None:
    ax.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=ncols, borderaxespad=0.2)


def _short(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _num(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.2f}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else html.escape(str(x))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "numbers") -> str:
    if not rows:
        rows = [["none"] + [""] * (len(head) - 1)]
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Html) else _num(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


class _Html(str):
    """Text already escaped for the page."""


def _link(text: str, href: str | None) -> _Html:
    label = html.escape(text)
    return _Html(f'<a href="{html.escape(href)}">{label}</a>' if href else label)


# ---------------------------------------------------------------- the plots, each (svg, table html)

def _runs(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in sources if s["kind"] == "run"]


def plot_outcomes(data: dict[str, Any]) -> tuple[str, str]:
    runs = _runs(data["sources"])
    rows = [[s["label"], s["counts"]["queries"], s["counts"]["with_pairs"], s["counts"]["invalid"],
             s["counts"]["errors"], s["counts"]["pairs"], s["counts"]["truncated"], s["counts"]["refused_replies"]]
            if s["kind"] == "run" else [s["label"], "–", "–", "–", "–", s["counts"]["pairs"], "–", "–"]
            for s in data["sources"]]
    table = _table(["input", "queries", "with pairs", "invalid", "errors", "pairs", "truncated", "refused"], rows)
    if not runs:
        return _empty("outcomes", "No run folder among the inputs: queries, invalid replies and errors\n"
                                  "are counted from a run's records (pass output/<dataset>/<version>)."), table
    fig, (ax,) = _new(0.6 + 0.45 * len(runs))
    _stacked(ax, [s["label"] for s in runs],
             [(name, [s["counts"][key] for s in runs], colour) for key, name, colour in
              (("with_pairs", "with pairs", "#55a868"), ("invalid", "invalid", "#dd8452"),
               ("errors", "errors", "#c44e52"))], "queries")
    return _svg(fig, "outcomes"), table


def plot_why(data: dict[str, Any]) -> tuple[str, str]:
    runs = _runs(data["sources"])
    totals: dict[str, int] = {}
    per: list[dict[str, int]] = []
    for s in runs:
        mine: dict[str, int] = {}
        for prefix, key in (("invalid", "invalid_reasons"), ("problem", "problems"), ("error", "error_kinds")):
            for reason, n in s["why"][key]["top"]:
                label = f"{prefix}: {reason}"
                mine[label] = n
                totals[label] = totals.get(label, 0) + n
        per.append(mine)
    labels = [k for k, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:12]]
    rows = [[k] + [m.get(k, 0) for m in per] for k in sorted(totals, key=lambda k: (-totals[k], k))]
    table = _table(["why (invalid reply, problem in a kept reply, error kind)"] + [s["label"] for s in runs], rows)
    if not labels:
        return _empty("why", "No invalid reply, parser problem or error in the inputs' records."), table
    fig, (ax,) = _new(0.8 + 0.32 * len(labels) * max(1, len(runs)) ** 0.5)
    _hbars(ax, labels, [(s["label"], [m.get(k, 0) for k in labels]) for s, m in zip(runs, per)], "records")
    return _svg(fig, "why"), table


def plot_pairs_per_input(data: dict[str, Any]) -> tuple[str, str]:
    sources = data["sources"]
    rows = []
    series = []
    for s in sources:
        ppi = s["pairs_per_input"]
        counts = ppi["counts"]
        total = sum(counts)
        asked = ppi["requested"]
        rows.append([s["label"], ppi["basis"], total, ppi["mean"], asked if asked is not None else "–",
                     _pct(counts[asked] / total) if asked is not None and total and asked < len(counts) else "–",
                     _pct(counts[0] / total) if total and counts else "–"])
        if total:
            series.append((s["label"], [n / total for n in counts], asked))
    table = _table(["input", "counted over", "n", "mean pairs", "asked for", "exactly as asked", "none"], rows)
    if not series:
        return _empty("pairs_per_input", "No pairs in the inputs."), table
    longest = max(len(v) for _, v, _ in series) - 1
    top = min(20, longest)  # past 20, the rest are shown together as "20+"
    fig, (ax,) = _new(2.6)
    n = len(series)
    width = 0.8 / n
    for j, (label, shares, asked) in enumerate(series):
        shares = shares + [0.0] * (longest + 1 - len(shares))
        values = shares[:top] + [sum(shares[top:])]
        xs = [x + (j - (n - 1) / 2) * width for x in range(top + 1)]
        ax.bar(xs, [100 * v for v in values], width=width, label=label, color=COLOURS[j % len(COLOURS)])
    for asked in sorted({a for _, _, a in series if a is not None}):
        ax.axvline(min(asked, top), color="#333333", linestyle="--", linewidth=1)
        ax.text(min(asked, top), ax.get_ylim()[1] * 0.97, f" asked for {asked}", fontsize=8, va="top")
    ax.set_xticks(range(top + 1), [str(x) for x in range(top)] + [f"{top}+" if longest > top else str(top)])
    ax.set_xlabel("pairs per query (release files: per visual input, from rel_ins_ids)")
    ax.set_ylabel("% of queries / inputs")
    if n > 1:
        _legend_above(ax, min(4, n))
    _style(ax)
    return _svg(fig, "pairs_per_input"), table


_LENGTHS = (("instruction_words", "instruction, words"), ("answer_words", "answer, words"),
            ("instruction_tokens", "instruction, tokens (estimated)"), ("answer_tokens", "answer, tokens (estimated)"))


def plot_lengths(data: dict[str, Any]) -> tuple[str, str]:
    sources = [s for s in data["sources"] if s["counts"]["pairs"]]
    rows = [[s["label"], title] + [s["lengths"][key][k] for k in ("mean", "median", "p90", "p99", "max")]
            for s in sources for key, title in _LENGTHS]
    table = _table(["input", "length", "mean", "median", "p90", "p99", "max"], rows)
    if not sources:
        return _empty("lengths", "No pairs in the inputs."), table
    Figure, rc_context = plotting()
    with rc_context({"font.size": 9}):
        fig = Figure(figsize=(WIDTH, 4.4), layout="constrained")
        axes = fig.subplots(2, 2).flatten()
    for ax, (key, title) in zip(axes, _LENGTHS):
        hists = [s["lengths"][key] for s in sources]
        xmax = max(max(1, h["p99"]) for h in hists)
        step = max(1, -(-xmax // 40))
        edges = list(range(0, xmax + step + 1, step))
        for j, (s, h) in enumerate(zip(sources, hists)):
            counts = h["counts"]
            binned = [sum(counts[a:a + step]) for a in edges[:-1]]
            total = max(1, h["n"])
            ax.stairs([100 * b / total for b in binned], edges, label=s["label"], color=COLOURS[j % len(COLOURS)],
                      linewidth=1.4)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("% of pairs")
        _style(ax)
    if len(sources) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, frameon=False, loc="outside upper center",
                   ncols=min(4, len(sources)))
    return _svg(fig, "lengths"), table


def _english(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in data["sources"] if s["question_types"] and s["counts"]["pairs"]]


def _ranked_shares(name: str, head: str, sources: list[dict[str, Any]], shares: list[dict[str, float]], k: int,
                   nothing: str) -> tuple[str, str]:
    """Grouped bars of the ``k`` keys with the largest shares over all inputs, and their table."""
    keys = sorted({key for m in shares for key in m}, key=lambda key: -sum(m.get(key, 0) for m in shares))[:k]
    table = _table([head] + [s["label"] for s in sources],
                   [[key] + [_pct(m.get(key, 0.0)) for m in shares] for key in keys])
    if not keys:
        return _empty(name, nothing), table
    fig, (ax,) = _new(0.8 + 0.3 * len(keys) * max(1, len(sources)) ** 0.5)
    _hbars(ax, keys, [(s["label"], [100 * m.get(key, 0) for key in keys]) for s, m in zip(sources, shares)],
           "% of instructions")
    return _svg(fig, name), table


def plot_question_types(data: dict[str, Any]) -> tuple[str, str]:
    sources = _english(data)
    shares: list[dict[str, float]] = []
    for s in sources:
        q = s["question_types"]
        total = max(1, q["kinds"]["total"])
        mine = {word: n / total for word, n in q["leading_words"]["top"]}
        for kind, n in q["kinds"]["top"]:
            if kind in ("imperative", "other", "empty"):
                mine[f"({kind})"] = n / total
        shares.append(mine)
    return _ranked_shares("question_types", "leading word", sources, shares, 14,
                          "No English pairs in the inputs (question types are read in English).")


def plot_imperative_verbs(data: dict[str, Any]) -> tuple[str, str]:
    sources = _english(data)
    shares = [{verb: n / max(1, s["question_types"]["kinds"]["total"])
               for verb, n in s["question_types"]["imperative_verbs"]["top"]} for s in sources]
    return _ranked_shares("imperative_verbs", "leading verb", sources, shares, 15,
                          "No imperative instruction (\"Describe ...\") in the English inputs.")


_SIZE_BINS = ((2, 2), (3, 3), (4, 5), (6, 10), (11, 100), (101, None))


def plot_duplicates(data: dict[str, Any]) -> tuple[str, str]:
    d = data["duplicates"]
    sources = [s for s in data["sources"] if s["duplicates"]["pairs"]]
    rows = []
    for s in sources:
        x = s["duplicates"]
        rows.append([s["label"], x["pairs"], x["exact_duplicates"], x["near_duplicates"], x["in_clusters"],
                     _Html(f"{x['dropped_by_dedup']:,} ({_pct(x['dropped_by_dedup'] / x['pairs'])})")])
    table = _table(["input", "instructions", "exact repeats", f"near duplicates, not exact (≥ {d.get('threshold')})",
                    "in a cluster", "dropped by --dedup (the two together)"], rows)
    if not sources:
        return _empty("duplicates", "No instructions in the inputs."), table
    Figure, rc_context = plotting()
    with rc_context({"font.size": 9}):
        fig = Figure(figsize=(WIDTH, max(2.4, 0.8 + 0.4 * len(sources))), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    shares = [{k: 100 * v / s["duplicates"]["pairs"] for k, v in s["duplicates"].items()} for s in sources]
    _stacked(left, [s["label"] for s in sources],
             [("unique", [x["pairs"] - x["dropped_by_dedup"] for x in shares], "#55a868"),
              ("exact repeat", [x["exact_duplicates"] for x in shares], "#c44e52"),
              ("near duplicate", [x["near_duplicates"] for x in shares], "#dd8452")],
             "% of instructions")
    sizes = {int(k): v for k, v in (d.get("size_counts") or {}).items()}
    counts = [sum(v for k, v in sizes.items() if k >= lo and (hi is None or k <= hi)) for lo, hi in _SIZE_BINS]
    names = [f"{lo}" if lo == hi else (f"{lo}+" if hi is None else f"{lo}–{hi}") for lo, hi in _SIZE_BINS]
    if not sum(counts):
        _no_data(right, f"no near-duplicate clusters at {d.get('threshold')}")
        _style(left)
        return _svg(fig, "duplicates"), table
    bars = right.bar(names, counts, color="#8172b3")
    right.bar_label(bars, [f"{c:,}" if c else "" for c in counts], fontsize=7)
    right.tick_params(axis="x", labelsize=7)
    right.yaxis.get_major_locator().set_params(integer=True)
    right.set_xlabel("near-duplicate cluster size")
    right.set_ylabel("clusters")
    _style(right)
    return _svg(fig, "duplicates"), table


_SIGNALS = (("repeats", "answer repeats its instruction"), ("refusals", "answer refuses"),
            ("forbidden", "uses a word the system message forbids"))


def plot_signals(data: dict[str, Any]) -> tuple[str, str]:
    sources = [s for s in data["sources"] if s["counts"]["pairs"]]
    rows = [[s["label"]] + [_Html(f"{s['signals'][k]['count']:,} ({_pct(s['signals'][k]['share'])})")
                            for k, _ in _SIGNALS]
            + [", ".join(s["signals"]["forbidden_words"]) or "– (no system message, or it forbids nothing)"]
            for s in sources]
    table = _table(["input"] + [t for _, t in _SIGNALS] + ["forbidden words"], rows)
    if not sources:
        return _empty("signals", "No pairs in the inputs."), table
    if not any(s["signals"][k]["count"] for s in sources for k, _ in _SIGNALS):
        return _empty("signals", f"{NO_DATA}: no answer repeats its instruction, refuses or uses a forbidden word "
                                 f"(0 of {sum(s['counts']['pairs'] for s in sources):,} pairs)"), table
    fig, (ax,) = _new(0.8 + 0.5 * len(_SIGNALS) * max(1, len(sources)) ** 0.5)
    _hbars(ax, [t for _, t in _SIGNALS], [(s["label"], [100 * s["signals"][k]["share"] for k, _ in _SIGNALS])
                                         for s in sources], "% of pairs")
    return _svg(fig, "signals"), table


def plot_cost(data: dict[str, Any]) -> tuple[str, str]:
    priced = [s for s in data["sources"] if s["cost"]]
    rows = [[s["label"], s["cost"]["model"] or "–", s["cost"]["prompt_tokens_per_pair"],
             s["cost"]["completion_tokens_per_pair"],
             _Html(f"${s['cost']['cost_usd']:,.4f}") if s["cost"]["cost_usd"] is not None else "–",
             _Html(f"${s['cost']['cost_per_1000_pairs_usd']:,.4f}") if s["cost"]["cost_per_1000_pairs_usd"] is not None
             else "–", s["cost"]["note"] or s["cost"]["basis"]] for s in priced]
    table = _table(["input", "priced as", "prompt tokens / pair", "completion tokens / pair", "cost",
                    "cost / 1,000 pairs", "from"], rows)
    if not priced:
        return _empty("cost", "No run records among the inputs (tokens come from a run folder, or the run\n"
                              "an instructions file was exported into)."), table
    fig, (tok, usd) = _new(max(2.2, 0.6 + 0.45 * len(priced)), cols=2)
    labels = [s["label"] for s in priced]
    _stacked(tok, labels, [("prompt", [s["cost"]["prompt_tokens_per_pair"] for s in priced], "#4c72b0"),
                           ("completion", [s["cost"]["completion_tokens_per_pair"] for s in priced], "#dd8452")],
             "tokens per pair")
    per_1000 = [s["cost"]["cost_per_1000_pairs_usd"] for s in priced]
    if not any(per_1000):  # no price (None) or a local model's zero price: nothing to draw
        free = [s["label"] for s, c in zip(priced, per_1000) if c == 0]
        _no_data(usd, "USD per 1,000 pairs: " + ("$0 (priced at zero: " + ", ".join(free) + ")" if free
                                                   else "no price in the pricing table"))
    else:
        usd.barh(labels, [c or 0 for c in per_1000], color="#55a868")
        usd.invert_yaxis()
        usd.set_xlabel("USD per 1,000 pairs")
        usd.set_yticks(range(len(labels)), [""] * len(labels))
        _style(usd)
    return _svg(fig, "cost"), table


def plot_translation(data: dict[str, Any]) -> tuple[str, str]:
    langs = [s for s in data["sources"] if s["translation"]]
    rows = []
    for s in langs:
        t = s["translation"]
        why = "; ".join(f"{r} ({n:,})" for r, n in t["failures"]["top"][:4]) or "–"
        rows.append([s["label"], t["pairs"], t["english_pairs"], _pct(t["coverage"]), t["failures"]["total"], why])
    table = _table(["translation", "pairs", "English pairs", "coverage", "failed", "why (most common)"], rows)
    if not langs:
        return _empty("translation", "No translation among the inputs (pass XX_instructions_<lang>.json files)."), table
    fig, (ax,) = _new(0.6 + 0.35 * len(langs))
    ax.barh([s["label"] for s in langs], [100 * (s["translation"]["coverage"] or 0) for s in langs], color="#64b5cd")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of the English pairs translated")
    _style(ax)
    return _svg(fig, "translation"), table


def plot_judge(data: dict[str, Any]) -> tuple[str, str]:
    judged = [s for s in data["sources"] if s.get("judge") and s["judge"]["judged_pairs"]]
    criteria = list(judged[0]["judge"]["histograms"]) if judged else []
    rows = [[s["label"], s["judge"]["judged_pairs"], s["judge"]["mean"]] + [s["judge"]["means"][c] for c in criteria]
            for s in judged]
    table = _table(["input", "pairs judged", "mean score"] + [f"mean {c}" for c in criteria], rows)
    if not judged:
        return _empty("judge", "No judged run among the inputs (syphus judge <run folder> scores its pairs)."), table
    fig, axes = _new(2.0 + 0.3 * len(judged), cols=len(criteria))
    for ax, c in zip(axes, criteria):
        for k, s in enumerate(judged):
            counts = s["judge"]["histograms"][c]
            width = 0.8 / len(judged)
            ax.bar([x + k * width for x in range(1, 6)], counts, width=width, label=s["label"],
                   color=COLOURS[k % len(COLOURS)])
        ax.set_title(c, fontsize=9)
        ax.set_xticks(range(1, 6))
        ax.set_xlabel("score")
        _style(ax)
    axes[0].set_ylabel("pairs")
    if len(judged) > 1:
        _legend_above(axes[0], len(judged))
    return _svg(fig, "judge"), table


def judge_lowest(sources: list[dict[str, Any]]) -> str:
    """The lowest-scoring pairs of each judged input, with the judge's reasons."""
    rows = [[s["label"], e["id"], e["pair"], e["mean"], _short(e["instruction"], 120), _short(e["answer"], 160),
             _short(e["reason"], 160)] for s in sources if s.get("judge") for e in s["judge"]["lowest"]]
    if not rows:
        return ""
    return "<h3>Lowest-scoring pairs</h3>" + _table(["input", "query", "pair", "mean", "instruction", "answer",
                                                      "the judge's reason"], rows, cls="text")


def plot_grounding(data: dict[str, Any]) -> tuple[str, str]:
    checked = [s for s in data["sources"] if (s.get("grounding") or {}).get("pairs")]
    rows = [[s["label"], g["pairs"], g["grounded"], f"{100 * g['grounded_share']:.1f}%", g["mean_score"],
             ", ".join(f"{t} ({n})" for t, n in g["top_unsupported"][:8])]
            for s in checked for g in [s["grounding"]]]
    table = _table(["input", "pairs checked", "grounded", "share", "mean score", "most frequent unsupported"], rows)
    if not checked:
        return _empty("grounding", "No run folder among the inputs whose plugin could be read (the check needs "
                                   "each query's annotation)."), table
    fig, (ax,) = _new(2.4)
    width = 0.08 / len(checked)   # the bins are 0.1 wide
    for k, s in enumerate(checked):
        g = s["grounding"]
        ax.bar([b + 0.01 + k * width for b in g["histogram"]["bins"]], g["histogram"]["counts"],
               width=width, align="edge", label=s["label"], color=COLOURS[k % len(COLOURS)])
    ax.set_xlim(0, 1)
    ax.set_xlabel("grounding score (share of the answer's terms its annotation supports)")
    ax.set_ylabel("pairs")
    _style(ax)
    if len(checked) > 1:
        _legend_above(ax, len(checked))
    return _svg(fig, "grounding"), table


def grounding_lowest(sources: list[dict[str, Any]]) -> str:
    """The least grounded pairs of each input, with the terms their annotation does not support."""
    rows = [[s["label"], e["id"], e["pair"], e["score"], ", ".join(e["unsupported"]), _short(e["instruction"], 120),
             _short(e["answer"], 200)] for s in sources for e in (s.get("grounding") or {}).get("lowest") or []]
    if not rows:
        return ""
    return "<h3>Least grounded pairs</h3>" + _table(["input", "query", "pair", "score", "unsupported", "instruction",
                                                     "answer"], rows, cls="text")


_PLOTTERS: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "outcomes": plot_outcomes, "why": plot_why, "pairs_per_input": plot_pairs_per_input, "lengths": plot_lengths,
    "question_types": plot_question_types, "imperative_verbs": plot_imperative_verbs, "duplicates": plot_duplicates,
    "signals": plot_signals, "cost": plot_cost, "translation": plot_translation, "judge": plot_judge,
    "grounding": plot_grounding}

_SECTIONS = (
    ("outcomes", "Queries, pairs, invalid replies and errors",
     ("outcomes", "why"), "Per input: how each query ended, and why replies gave no pairs (the parser's reasons), "
                          "what the parser dropped from replies it kept, and the kinds of errors."),
    ("pairs", "Pairs per query", ("pairs_per_input",),
     "How many pairs each query gave, against the number the system message asks for (dashed)."),
    ("lengths", "Instruction and answer lengths", ("lengths",),
     "Words, and tokens by the run's estimator (about 4 characters a token in English, one a character "
     "in other scripts)."),
    ("questions", "Question types", ("question_types", "imperative_verbs"),
     "The leading wh-word or auxiliary of each instruction (a lead-in such as \"In the video,\" is looked past), "
     "and the leading verbs of imperative instructions."),
    ("duplicates", "Duplicate instructions", ("duplicates",),
     "Exact repeats (same text but for case and spacing) and near duplicates (Jaccard similarity of word "
     "shingles at or above the threshold), across all inputs together."),
    ("signals", "Answers that repeat, refuse or use forbidden words", ("signals",),
     "The cold start's signals, on every pair."),
    ("cost", "Tokens and cost", ("cost", "translation"),
     "Tokens and dollars per pair, per input; for translations, how much of the English was translated and why "
     "the rest failed."),
    ("judge", "The judge's scores", ("judge",),
     "For a run judged by syphus judge: how many pairs got each score (1-5) on each criterion of the rubric, "
     "and the lowest-scoring pairs with the judge's reasons."),
    ("grounding", "Grounding in the annotation", ("grounding",),
     "For a run folder: the share of each answer's objects, people, colours, counts, times and image references "
     "that its query's own annotation (or the question) supports, with no model; a pair is grounded when "
     "nothing is unsupported. It cannot see synonyms no caption uses or false claims made of the annotation's "
     "own words."),
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


def _members(members: list[dict[str, Any]], size: int) -> _Html:
    items = []
    for i, m in enumerate(members):
        cls = ' class="kept"' if i == 0 else ""
        text = html.escape(_short(m.get("instruction", ""), 160))
        ref = _link(m.get("id", "?"), m.get("link"))
        items.append(f'<li{cls}>{text} <span class="tag">{html.escape(m.get("source", ""))} · {ref}</span></li>')
    more = f'<li class="tag">… and {size - len(members):,} more</li>' if size > len(members) else ""
    return _Html(f'<ul class="members">{"".join(items)}{more}</ul>')


def cluster_tables(d: dict[str, Any]) -> str:
    """The largest near-duplicate clusters and exact groups, each member linked to the viewer."""
    out = []
    for key, title, note in (("largest_clusters", "Largest near-duplicate clusters",
                              "the first (bold) is the one syphus export --dedup keeps"),
                             ("largest_exact_groups", "Largest groups of exact repeats", "")):
        rows = [[c["size"], _Html(html.escape(", ".join(f"{k}: {v:,}" for k, v in c["sources"].items()))),
                 _members(c["members"], c["size"])] for c in d.get(key) or []]
        body = _table(["size", "inputs", "instructions"], rows, "clusters") if rows else \
            '<p class="note">None found.</p>'
        out.append(f"<h3>{html.escape(title)}</h3>" + (f'<p class="note">{html.escape(note)}</p>' if note and rows
                                                       else "") + body)
    return "".join(out)


def examples(sources: list[dict[str, Any]]) -> str:
    """A few pairs of each input that repeat, refuse or use a forbidden word, linked to the viewer."""
    out = []
    for key, title in _SIGNALS:
        rows = [[s["label"], _link(e["id"], e.get("link")), _short(e["instruction"], 140), _short(e["answer"], 180)]
                + ([", ".join(e.get("words", []))] if key == "forbidden" else [])
                for s in sources for e in s["signals"][key]["examples"]]
        if rows:
            head = ["input", "id", "instruction", "answer"] + (["words"] if key == "forbidden" else [])
            out.append(f"<h3>Examples: {html.escape(title)}</h3>" + _table(head, rows, "clusters"))
    return "".join(out)


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
             + "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _, _ in _SECTIONS)
             + "</nav>" + _notes(sources) + "</header>\n<main>\n"]
    d = data.get("duplicates") or {}
    for sid, title, plots, lead in _SECTIONS:
        parts.append(f'<section id="{sid}"><h2>{html.escape(title)}</h2><p class="lead">{html.escape(lead)}</p>')
        for name in plots:
            svg, table = drawn[name]
            parts.append(f'<div class="row"><figure class="plot" id="plot-{name}" data-plot="{name}">{svg}'
                         f"</figure><div>{table}</div></div>")
        if sid == "duplicates":
            settings = (f"threshold {d.get('threshold')}, shingles of {d.get('shingle_words')} words, "
                        f"{d.get('num_perm')} permutations in {d.get('bands')} bands of {d.get('rows')}; "
                        f"{d.get('clusters', 0):,} clusters holding {d.get('in_clusters', 0):,} instructions; "
                        f"{d.get('compared_pairs', 0):,} candidate pairs compared")
            parts.append(f'<p class="note">{html.escape(settings)}</p>' + cluster_tables(d))
        if sid == "signals":
            parts.append(examples(sources))
        if sid == "judge":
            parts.append(judge_lowest(sources))
        if sid == "grounding":
            parts.append(grounding_lowest(sources))
        if sid == "outcomes":
            errors = [[s["label"], e["id"], e["kind"], _short(e["message"], 200)]
                      for s in sources for e in s["why"]["error_examples"]]
            if errors:
                parts.append("<h3>Examples: errors</h3>" + _table(["input", "query", "kind", "message"], errors,
                                                                   "clusters"))
        parts.append("</section>\n")
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)
