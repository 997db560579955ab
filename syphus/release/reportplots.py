"""Report plots: the page's plots of each input's form (outcomes, why, pairs per input, lengths,
question types, leading verbs, duplicates, signals) and the lists beside them (clusters, examples).

Each ``plot_NAME(data)`` takes report.json's data and returns ``(svg, table html)``.
"""

from __future__ import annotations

import html
from typing import Any

from syphus.release.reportdraw import (COLOURS, NO_DATA, WIDTH, Html, empty_plot, hbars, html_table, legend_above,
                                       link, new_figure, no_data, pct, plotting, run_sources, shorten, stacked,
                                       style, to_svg)


def plot_outcomes(data: dict[str, Any]) -> tuple[str, str]:
    runs = run_sources(data["sources"])
    rows = [[s["label"], s["counts"]["queries"], s["counts"]["with_pairs"], s["counts"]["invalid"],
             s["counts"]["errors"], s["counts"]["pairs"], s["counts"]["truncated"], s["counts"]["refused_replies"]]
            if s["kind"] == "run" else [s["label"], "–", "–", "–", "–", s["counts"]["pairs"], "–", "–"]
            for s in data["sources"]]
    table = html_table(["input", "queries", "with pairs", "invalid", "errors", "pairs", "truncated", "refused"], rows)
    if not runs:
        return empty_plot("outcomes", "No run folder among the inputs: queries, invalid replies and errors\n"
                                  "are counted from a run's records (pass output/<dataset>/<version>)."), table
    fig, (ax,) = new_figure(0.6 + 0.45 * len(runs))
    stacked(ax, [s["label"] for s in runs],
            [(name, [s["counts"][key] for s in runs], colour) for key, name, colour in
              (("with_pairs", "with pairs", "#55a868"), ("invalid", "invalid", "#dd8452"),
               ("errors", "errors", "#c44e52"))], "queries")
    return to_svg(fig, "outcomes"), table


def plot_why(data: dict[str, Any]) -> tuple[str, str]:
    runs = run_sources(data["sources"])
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
    table = html_table(["why (invalid reply, problem in a kept reply, error kind)"] + [s["label"] for s in runs], rows)
    if not labels:
        return empty_plot("why", "No invalid reply, parser problem or error in the inputs' records."), table
    fig, (ax,) = new_figure(0.8 + 0.32 * len(labels) * max(1, len(runs)) ** 0.5)
    hbars(ax, labels, [(s["label"], [m.get(k, 0) for k in labels]) for s, m in zip(runs, per)], "records")
    return to_svg(fig, "why"), table


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
                     pct(counts[asked] / total) if asked is not None and total and asked < len(counts) else "–",
                     pct(counts[0] / total) if total and counts else "–"])
        if total:
            series.append((s["label"], [n / total for n in counts], asked))
    table = html_table(["input", "counted over", "n", "mean pairs", "asked for", "exactly as asked", "none"], rows)
    if not series:
        return empty_plot("pairs_per_input", "No pairs in the inputs."), table
    longest = max(len(v) for _, v, _ in series) - 1
    top = min(20, longest)  # past 20, the rest are shown together as "20+"
    fig, (ax,) = new_figure(2.6)
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
        legend_above(ax, min(4, n))
    style(ax)
    return to_svg(fig, "pairs_per_input"), table


_LENGTHS = (("instruction_words", "instruction, words"), ("answer_words", "answer, words"),
            ("instruction_tokens", "instruction, tokens (estimated)"), ("answer_tokens", "answer, tokens (estimated)"))


def plot_lengths(data: dict[str, Any]) -> tuple[str, str]:
    sources = [s for s in data["sources"] if s["counts"]["pairs"]]
    rows = [[s["label"], title] + [s["lengths"][key][k] for k in ("mean", "median", "p90", "p99", "max")]
            for s in sources for key, title in _LENGTHS]
    table = html_table(["input", "length", "mean", "median", "p90", "p99", "max"], rows)
    if not sources:
        return empty_plot("lengths", "No pairs in the inputs."), table
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
        style(ax)
    if len(sources) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, frameon=False, loc="outside upper center",
                   ncols=min(4, len(sources)))
    return to_svg(fig, "lengths"), table


def _english(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in data["sources"] if s["question_types"] and s["counts"]["pairs"]]


def _ranked_shares(name: str, head: str, sources: list[dict[str, Any]], shares: list[dict[str, float]], k: int,
                   nothing: str) -> tuple[str, str]:
    """Grouped bars of the ``k`` keys with the largest shares over all inputs, and their table."""
    keys = sorted({key for m in shares for key in m}, key=lambda key: -sum(m.get(key, 0) for m in shares))[:k]
    table = html_table([head] + [s["label"] for s in sources],
                       [[key] + [pct(m.get(key, 0.0)) for m in shares] for key in keys])
    if not keys:
        return empty_plot(name, nothing), table
    fig, (ax,) = new_figure(0.8 + 0.3 * len(keys) * max(1, len(sources)) ** 0.5)
    hbars(ax, keys, [(s["label"], [100 * m.get(key, 0) for key in keys]) for s, m in zip(sources, shares)],
          "% of instructions")
    return to_svg(fig, name), table


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
                     Html(f"{x['dropped_by_dedup']:,} ({pct(x['dropped_by_dedup'] / x['pairs'])})")])
    table = html_table(["input", "instructions", "exact repeats", f"near duplicates, not exact (≥ {d.get('threshold')})",
                        "in a cluster", "dropped by --dedup (the two together)"], rows)
    if not sources:
        return empty_plot("duplicates", "No instructions in the inputs."), table
    Figure, rc_context = plotting()
    with rc_context({"font.size": 9}):
        fig = Figure(figsize=(WIDTH, max(2.4, 0.8 + 0.4 * len(sources))), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=(3, 2))
    shares = [{k: 100 * v / s["duplicates"]["pairs"] for k, v in s["duplicates"].items()} for s in sources]
    stacked(left, [s["label"] for s in sources],
            [("unique", [x["pairs"] - x["dropped_by_dedup"] for x in shares], "#55a868"),
              ("exact repeat", [x["exact_duplicates"] for x in shares], "#c44e52"),
              ("near duplicate", [x["near_duplicates"] for x in shares], "#dd8452")],
            "% of instructions")
    sizes = {int(k): v for k, v in (d.get("size_counts") or {}).items()}
    counts = [sum(v for k, v in sizes.items() if k >= lo and (hi is None or k <= hi)) for lo, hi in _SIZE_BINS]
    names = [f"{lo}" if lo == hi else (f"{lo}+" if hi is None else f"{lo}–{hi}") for lo, hi in _SIZE_BINS]
    if not sum(counts):
        no_data(right, f"no near-duplicate clusters at {d.get('threshold')}")
        style(left)
        return to_svg(fig, "duplicates"), table
    bars = right.bar(names, counts, color="#8172b3")
    right.bar_label(bars, [f"{c:,}" if c else "" for c in counts], fontsize=7)
    right.tick_params(axis="x", labelsize=7)
    right.yaxis.get_major_locator().set_params(integer=True)
    right.set_xlabel("near-duplicate cluster size")
    right.set_ylabel("clusters")
    style(right)
    return to_svg(fig, "duplicates"), table


_SIGNALS = (("repeats", "answer repeats its instruction"), ("refusals", "answer refuses"),
            ("forbidden", "uses a word the system message forbids"))


def plot_signals(data: dict[str, Any]) -> tuple[str, str]:
    sources = [s for s in data["sources"] if s["counts"]["pairs"]]
    rows = [[s["label"]] + [Html(f"{s['signals'][k]['count']:,} ({pct(s['signals'][k]['share'])})")
                            for k, _ in _SIGNALS]
            + [", ".join(s["signals"]["forbidden_words"]) or "– (no system message, or it forbids nothing)"]
            for s in sources]
    table = html_table(["input"] + [t for _, t in _SIGNALS] + ["forbidden words"], rows)
    if not sources:
        return empty_plot("signals", "No pairs in the inputs."), table
    if not any(s["signals"][k]["count"] for s in sources for k, _ in _SIGNALS):
        return empty_plot("signals", f"{NO_DATA}: no answer repeats its instruction, refuses or uses a forbidden word "
                                 f"(0 of {sum(s['counts']['pairs'] for s in sources):,} pairs)"), table
    fig, (ax,) = new_figure(0.8 + 0.5 * len(_SIGNALS) * max(1, len(sources)) ** 0.5)
    hbars(ax, [t for _, t in _SIGNALS], [(s["label"], [100 * s["signals"][k]["share"] for k, _ in _SIGNALS])
                                         for s in sources], "% of pairs")
    return to_svg(fig, "signals"), table


def _members(members: list[dict[str, Any]], size: int) -> Html:
    items = []
    for i, m in enumerate(members):
        cls = ' class="kept"' if i == 0 else ""
        text = html.escape(shorten(m.get("instruction", ""), 160))
        ref = link(m.get("id", "?"), m.get("link"))
        items.append(f'<li{cls}>{text} <span class="tag">{html.escape(m.get("source", ""))} · {ref}</span></li>')
    more = f'<li class="tag">… and {size - len(members):,} more</li>' if size > len(members) else ""
    return Html(f'<ul class="members">{"".join(items)}{more}</ul>')


def cluster_tables(d: dict[str, Any]) -> str:
    """The largest near-duplicate clusters and exact groups, each member linked to the viewer."""
    out = []
    for key, title, note in (("largest_clusters", "Largest near-duplicate clusters",
                              "the first (bold) is the one syphus export --dedup keeps"),
                             ("largest_exact_groups", "Largest groups of exact repeats", "")):
        rows = [[c["size"], Html(html.escape(", ".join(f"{k}: {v:,}" for k, v in c["sources"].items()))),
                 _members(c["members"], c["size"])] for c in d.get(key) or []]
        body = html_table(["size", "inputs", "instructions"], rows, "clusters") if rows else \
            '<p class="note">None found.</p>'
        out.append(f"<h3>{html.escape(title)}</h3>" + (f'<p class="note">{html.escape(note)}</p>' if note and rows
                                                       else "") + body)
    return "".join(out)


def examples(sources: list[dict[str, Any]]) -> str:
    """A few pairs of each input that repeat, refuse or use a forbidden word, linked to the viewer."""
    out = []
    for key, title in _SIGNALS:
        rows = [[s["label"], link(e["id"], e.get("link")), shorten(e["instruction"], 140), shorten(e["answer"], 180)]
                + ([", ".join(e.get("words", []))] if key == "forbidden" else [])
                for s in sources for e in s["signals"][key]["examples"]]
        if rows:
            head = ["input", "id", "instruction", "answer"] + (["words"] if key == "forbidden" else [])
            out.append(f"<h3>Examples: {html.escape(title)}</h3>" + html_table(head, rows, "clusters"))
    return "".join(out)


def plot_diversity(data: dict[str, Any]) -> tuple[str, str]:
    """Per English input: the share of instructions close to an earlier one, and how many openings it
    effectively uses."""
    sources = [s for s in data["sources"] if s.get("diversity") and s["diversity"]["rouge_l"]["instructions"]]
    rows = []
    for s in sources:
        d = s["diversity"]
        r = d["rouge_l"]
        rows.append([s["label"], r["instructions"], Html(f"{r['similar_to_earlier']:,} ({pct(r['share'])})"),
                     d["first_words"]["effective_number"], d["openings"]["effective_number"],
                     ", ".join(f"{k} {pct(share)}" for k, _, share in d["openings"]["top"][:6]),
                     d["imperative_verbs"]["effective_number"], r["compared_pairs"]])
    threshold = sources[0]["diversity"]["rouge_l"]["threshold"] if sources else 0.7
    table = html_table(["input", "instructions", f"ROUGE-L ≥ {threshold} to an earlier one", "effective first words", "effective openings", "top openings",
                        "effective imperative verbs", "pairs compared"], rows)
    if not sources:
        return empty_plot("diversity", "No English instructions in the inputs (diversity is read in English)."), table
    fig, (left, right) = new_figure(max(1.8, 0.7 + 0.4 * len(sources)), cols=2)
    labels = [s["label"] for s in sources]
    left.barh(labels, [100 * s["diversity"]["rouge_l"]["share"] for s in sources], color="#c44e52")
    left.set_xlim(0, 100)
    left.invert_yaxis()
    left.set_xlabel("% close to an earlier instruction (ROUGE-L)")
    style(left)
    right.barh(labels, [s["diversity"]["openings"]["effective_number"] for s in sources], color="#4c72b0")
    right.invert_yaxis()
    right.set_yticks(range(len(labels)), [""] * len(labels))
    right.set_xlabel("effective number of openings (2^entropy)")
    style(right)
    return to_svg(fig, "diversity"), table
