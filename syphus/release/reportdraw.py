"""Report drawing: the pieces every plot of the report page is made of (matplotlib SVG and HTML tables).

``plotting`` gives matplotlib (or a UserError naming the extra ``report``); ``new_figure`` a figure
of the page's width; ``to_svg`` turns it into inline SVG whose ids are unique to the plot, with "no
data" written on axes that hold nothing; ``html_table`` and ``Html`` build the tables beside the plots.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import Any

from syphus.errors import UserError

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


def no_data(ax: Any, why: str = "") -> None:
    """Axes that say "no data" (and why) instead of drawing empty axes."""
    title = ax.get_xlabel() or ax.get_title()
    ax.clear()
    ax.axis("off")
    ax.text(0.5, 0.5, f"{NO_DATA}" + (f": {why}" if why else "") + (f"\n({title})" if title else ""),
            ha="center", va="center", fontsize=9, color="#555555", transform=ax.transAxes, wrap=True)


def to_svg(fig: Any, name: str) -> str:
    """The figure as inline SVG: text kept as text, ids made unique to this plot, nothing external.
    Axes with nothing drawn on them say "no data" instead."""
    for ax in fig.axes:
        if ax.axison and _drew_nothing(ax):
            no_data(ax)
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


def new_figure(height: float, cols: int = 1) -> tuple[Any, list[Any]]:
    Figure, rc_context = plotting()
    with rc_context({"font.size": 9}):
        fig = Figure(figsize=(WIDTH, height), layout="constrained")
        axes = [fig.add_subplot(1, cols, i + 1) for i in range(cols)]
    return fig, axes


def empty_plot(name: str, why: str) -> str:
    fig, (ax,) = new_figure(1.0)
    ax.axis("off")
    ax.text(0.5, 0.5, why, ha="center", va="center", fontsize=10, color="#555555", wrap=True)
    return to_svg(fig, name)


def style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="both", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def hbars(ax: Any, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], xlabel: str) -> None:
    """Grouped horizontal bars: one group per label (top to bottom), one bar per series."""
    n = max(1, len(series))
    height = 0.8 / n
    for j, (name, values) in enumerate(series):
        ys = [i + (j - (n - 1) / 2) * height for i in range(len(labels))]
        ax.barh(ys, values, height=height, label=name, color=COLOURS[j % len(COLOURS)])
    ax.set_yticks(range(len(labels)), [shorten(x, 48) for x in labels])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    style(ax)
    if len(series) > 1:
        legend_above(ax, min(4, len(series)))


def stacked(ax: Any, labels: Sequence[str], parts: Sequence[tuple[str, Sequence[float], str]], xlabel: str) -> None:
    """Stacked horizontal bars, one per label (top to bottom): ``parts`` are (name, values, colour)."""
    left = [0.0] * len(labels)
    for name, values, colour in parts:
        ax.barh(labels, values, left=left, label=name, color=colour)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    legend_above(ax, len(parts))
    style(ax)


def legend_above(ax: Any, ncols: int) -> None:
    ax.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=ncols, borderaxespad=0.2)


def shorten(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.2f}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else html.escape(str(x))


def html_table(head: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "numbers") -> str:
    if not rows:
        rows = [["none"] + [""] * (len(head) - 1)]
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Html) else num(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


class Html(str):
    """Text already escaped for the page."""


def link(text: str, href: str | None) -> Html:
    label = html.escape(text)
    return Html(f'<a href="{html.escape(href)}">{label}</a>' if href else label)


def run_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in sources if s["kind"] == "run"]
