"""The report's diversity figure: recall of its candidates against an exact scan, and its time and memory at scale.

``syphus.release.diversity.EarlierSimilar`` says which instructions have an earlier one at ROUGE-L
0.7 or more, comparing only MinHash candidates. This bench:

1. ``--recall N`` (default 5000): N templated instructions (``bench/report.py``'s 40 templates and
   vocabulary, plus 10% copies of an earlier instruction with one to three words changed, added or
   dropped) checked exactly against every earlier one (N^2/2 pairs, bit-parallel LCS) and by the
   candidates, for several (permutations, rows, nearest) settings: the share of the instructions
   the exact scan finds that the candidates find too, the pairs compared and the time;
2. ``--scale 100000,1000000``: the same generator at each size, in a child process: time to add
   and to find, pairs compared, peak RSS.

    .venv/bin/python bench/diversity.py --recall 5000 --scale 100000,1000000     # ~10 min

Writes ``bench/results/diversity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from report import ADJS, NOUNS, instruction  # noqa: E402  (bench/report.py: its templates)
from syphus.release.diversity import EarlierSimilar, lcs_lengths  # noqa: E402
from syphus.signals import words  # noqa: E402

SETTINGS = [(64, 2, 4), (64, 3, 4), (128, 3, 4), (128, 4, 8), (64, 2, 8), (64, 2, 16), (128, 2, 8)]


def instructions(n: int, seed: int = 11) -> list[str]:
    """``n`` templated instructions, 10% of them an earlier one with one to three words changed."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(n):
        if out and rng.random() < 0.1:
            ws = rng.choice(out[-5000:]).split()
            for _ in range(rng.randint(1, 3)):
                k, op = rng.randrange(len(ws)), rng.random()
                if op < 0.5:
                    ws[k] = rng.choice(ADJS)
                elif op < 0.75:
                    ws.insert(k, rng.choice(NOUNS))
                elif len(ws) > 3:
                    del ws[k]
            out.append(" ".join(ws))
        else:
            out.append(instruction(rng, [rng.choice(NOUNS) for _ in range(4)]))
    return out


def exact_scan(tokens: list[list[str]], threshold: float = 0.7) -> np.ndarray:
    """Which instructions have an earlier one at ROUGE-L >= threshold, by comparing every pair."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(w, len(vocab)) for w in t] for t in tokens]
    flat = np.array([x for t in ids for x in t], dtype=np.uint32)
    lengths = np.array([len(t) for t in ids], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    found = np.zeros(len(ids), dtype=bool)
    for i in range(1, len(ids)):
        if not lengths[i]:
            continue
        j = np.arange(i)
        lcs = lcs_lengths(flat, starts, lengths, np.full(i, i), j)
        found[i] = bool((2 * lcs >= threshold * (lengths[i] + lengths[j]) - 1e-9).any())
    return found


def recall(n: int) -> dict:
    texts = instructions(n)
    tokens = [words(t) for t in texts]
    start = time.perf_counter()
    exact = exact_scan(tokens)
    scan_s = time.perf_counter() - start
    print(f"exact scan of {n:,} instructions ({n * (n - 1) // 2:,} pairs): {scan_s:.1f} s, "
          f"{int(exact.sum()):,} similar to an earlier one ({exact.mean():.1%})", flush=True)
    rows = []
    print("| permutations | rows | nearest | found / exact | recall | pairs compared | s |")
    print("|---|---|---|---|---|---|---|")
    for num_perm, r, nearest in SETTINGS:
        start = time.perf_counter()
        index = EarlierSimilar(num_perm=num_perm, rows=r, nearest=nearest)
        for t in tokens:
            index.add(t)
        found = index.similar()
        took = time.perf_counter() - start
        assert not (found & ~exact).any(), "a pair below the threshold was counted"
        row = {"num_perm": num_perm, "rows": r, "nearest": nearest, "found": int(found.sum()),
               "exact": int(exact.sum()), "recall": round(float((found & exact).sum() / max(1, exact.sum())), 4),
               "compared_pairs": index.compared, "seconds": round(took, 2)}
        rows.append(row)
        print(f"| {num_perm} | {r} | {nearest} | {row['found']:,} / {row['exact']:,} | {row['recall']:.2%} | "
              f"{row['compared_pairs']:,} | {row['seconds']} |", flush=True)
    return {"n": n, "exact_scan_seconds": round(scan_s, 1), "exact_share": round(float(exact.mean()), 4),
            "settings": rows}


def child(n: int) -> None:
    """One scale run (in its own process, so its peak RSS is its own): prints a JSON line."""
    start = time.perf_counter()
    index = EarlierSimilar()
    rng = random.Random(11)
    recent: list[str] = []
    for _ in range(n):  # the generator of instructions(), streamed: nothing but the index is kept
        if recent and rng.random() < 0.1:
            ws = rng.choice(recent).split()
            ws[rng.randrange(len(ws))] = rng.choice(ADJS)
            text = " ".join(ws)
        else:
            text = instruction(rng, [rng.choice(NOUNS) for _ in range(4)])
            if len(recent) < 5000:
                recent.append(text)
            else:
                recent[rng.randrange(5000)] = text
        index.add(words(text))
    added = time.perf_counter() - start
    found = index.similar()
    total = time.perf_counter() - start
    print(json.dumps({"n": n, "add_seconds": round(added, 1), "find_seconds": round(total - added, 1),
                      "seconds": round(total, 1), "similar_share": round(float(found.mean()), 4),
                      "compared_pairs": index.compared}))


def scale(n: int) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(n)], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"the run at {n:,} failed")
    row = json.loads(out.strip().splitlines()[-1])
    row["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    print(f"| {n:,} | {row['add_seconds']} | {row['find_seconds']} | {row['compared_pairs']:,} | "
          f"{row['similar_share']:.1%} | {row['peak_rss_mb']} |", flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recall", type=int, default=5000, help="instructions in the exact-scan sample (0: skip)")
    p.add_argument("--scale", default="", help="comma-separated sizes, e.g. 100000,1000000")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child)
        return
    result: dict = {"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count()}
    if a.recall:
        result["recall"] = recall(a.recall)
    if a.scale:
        print("\n| instructions | add s | find s | pairs compared | similar share | peak RSS MB |")
        print("|---|---|---|---|---|---|")
        result["scale"] = [scale(int(x)) for x in a.scale.split(",")]
    out = ROOT / "bench" / "results" / "diversity.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
