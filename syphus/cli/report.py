"""``syphus report``: flags, the summary and the exit code around ``syphus.release.report``.

    syphus report output/DC/v1
    syphus report output/DC/v1/export/DC_instructions.json output/DC_translate/v1/export/DC_instructions_zh.json
    syphus report output/DC/v1 output/SD/v1 --threshold 0.8 --out reports/dc-sd

writes ``index.html`` (the plots, to open from disk) and ``report.json`` (their numbers) into
``<run folder>/report`` or ``XX_instructions_report`` beside the first input (``--out`` to
choose). Exit codes (``syphus.cli.exits``): 0 done, 2 a user error (printed as ``error: ...``).

>>> a = build_parser().parse_args(["output/DC/v1", "DC_instructions_zh.json", "--threshold", "0.9"])
>>> a.inputs, a.threshold, a.shingle, a.out
(['output/DC/v1', 'DC_instructions_zh.json'], 0.9, 2, None)
>>> import io
>>> out = io.StringIO()
>>> int(report_main(["missing_instructions.json"], out))
2
>>> print(out.getvalue(), end="")
error: missing_instructions.json: not found; pass a run folder (output/DC/v1) or an XX_instructions.json
"""

from __future__ import annotations

import argparse
from typing import TextIO

from syphus.cli.exits import Exit, guard
from syphus.cli.flags import Parser
from syphus.release.dedup import SHINGLE, THRESHOLD, minhash_module
from syphus.release.report import CLUSTERS, Report, build_report, default_folder, write_report
from syphus.release.reportpage import plotting


def summary(report: Report, html_path: object, json_path: object) -> str:
    """What ``syphus report`` says once the files are written."""
    lines = []
    for s in report.data["sources"]:
        c, d = s["counts"], s["duplicates"]
        head = (f"{c['queries']:,} queries, {c['pairs']:,} pairs, {c['invalid']:,} invalid, {c['errors']:,} errors"
                if s["kind"] == "run" else f"{c['pairs']:,} pairs")
        cost = s.get("cost") or {}
        money = f"; ${cost['cost_usd']:,.4f}" if cost.get("cost_usd") is not None else ""
        e, n = d["exact_duplicates"], d["near_duplicates"]
        lines.append(f"{s['label']}: {head}; {e:,} exact repeat{'s' * (e != 1)} and {n:,} near duplicate{'s' * (n != 1)} "
                     f"besides (--dedup drops {d['dropped_by_dedup']:,}){money}")
        g = s.get("grounding") or {}
        if g.get("pairs"):
            lines.append(f"  grounding: {g['grounded']:,} of {g['pairs']:,} pairs grounded ({g['grounded_share']:.1%}), "
                         f"mean score {g['mean_score']:.3f}; most frequent unsupported: "
                         + (", ".join(f"{t} ({n})" for t, n in g["top_unsupported"][:5]) or "none"))
        elif g.get("unavailable"):
            lines.append(f"  grounding not checked: {g['unavailable']}")
        v = s.get("diversity")
        if v and v["rouge_l"]["instructions"]:
            r = v["rouge_l"]
            lines.append(f"  diversity: {r['similar_to_earlier']:,} of {r['instructions']:,} instructions "
                         f"({r['share']:.1%}) at ROUGE-L >= {r['threshold']} to an earlier one; "
                         f"{v['openings']['effective_number']} effective openings")
        for lang, c in (s.get("language_checks") or {}).items():
            lines.append(f"  {lang}: {c['passed']:,} of {c['checked']:,} translations passed the checks"
                         + (f" ({c['pass_rate']:.1%})" if c["pass_rate"] is not None else "")
                         + f", {c['wrong_language']:,} in the wrong language; {c['asked_again']:,} asked again")
        lines += [f"  note: {n}" for n in s.get("notes") or []]
    dup = report.data["duplicates"]
    lines.append(f"near duplicates at {dup['threshold']}: {dup['clusters']:,} clusters holding {dup['in_clusters']:,} "
                 f"instructions; syphus export --dedup {dup['threshold']} would drop {dup['near_duplicates']:,}")
    lines.append(f"open {html_path} in a browser (works offline from disk); the numbers are in {json_path}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="syphus report",
        description="What a run produced, in plots: counts and why replies failed, pairs per query, lengths, "
                    "question types, duplicates, signals, tokens and cost. Writes a static HTML page (offline) "
                    "and the same figures as JSON.")
    p.add_argument("inputs", nargs="+", help="run folders (output/DC/v1) or XX_instructions.json files; several "
                                             "(scenes, languages) go side by side")
    p.add_argument("--out", help="output folder (default: <run folder>/report, or XX_instructions_report beside "
                                 "the first file)")
    p.add_argument("--threshold", type=float, default=THRESHOLD,
                   help=f"near duplicates: Jaccard similarity of word shingles at or above this (default {THRESHOLD})")
    p.add_argument("--shingle", type=int, default=SHINGLE,
                   help=f"words in a shingle (default {SHINGLE})")
    p.add_argument("--num-perm", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--prompt", help="the prompt file whose system message says how many pairs to ask for and which "
                                    "words to avoid (default: the run's own, from its meta.json)")
    p.add_argument("--pricing", help="the pricing table (default: the run's, else configs/pricing.yaml)")
    p.add_argument("--viewer", help="a viewer folder (syphus view --out) to link pairs to (default: the one beside "
                                    "each input, when built)")
    p.add_argument("--no_grounding", "--no-grounding", action="store_true",
                   help="skip the grounding check (it reads each query's annotation again from the run's plugin)")
    p.add_argument("--clusters", type=int, default=CLUSTERS, help=f"largest clusters listed (default {CLUSTERS})")
    return p


def report_main(argv: list[str], stream: TextIO) -> int:
    """``syphus report ...``: 0 done, 2 on a user error (printed as ``error: ...``)."""
    return guard(lambda: run(argv, stream), lambda text: stream.write(text + "\n"))


def run(argv: list[str], stream: TextIO) -> int:
    """Build the report and write its page and JSON; where they are goes to ``stream``. A UserError is
    raised, for the caller's guard."""
    a = build_parser().parse_args(argv)
    plotting()  # both optional libraries, checked before a long read
    minhash_module()
    out = a.out or default_folder(a.inputs[0])
    report = build_report(a.inputs, threshold=a.threshold, shingle=a.shingle, num_perm=a.num_perm,
                          grounding=not a.no_grounding,
                          prompt=a.prompt, pricing=a.pricing, viewer=a.viewer, out=out, clusters=a.clusters)
    json_path, html_path = write_report(report, out)
    stream.write(summary(report, html_path, json_path) + "\n")
    return Exit.OK
