"""Repair: the share of broken replies a repair saves, when every reply breaks the schema with probability p.

    .venv/bin/python bench/repair.py --n 2000 --p 0.1

The fake server (in this process, on loopback) answers each request, first asks and repairs
alike, with a reply that misses a field (breaks the schema) with probability ``p``, independently;
otherwise with one whole pair. A run with ``--repairs 0`` and one with ``--repairs 1`` over the
same ``n`` queries: broken first replies, replies saved by repair, requests sent, pairs kept.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from syphus.cli import main as cli  # noqa: E402
from tests.fakeserver import FakeOpenAI, Reply  # noqa: E402
from tests.helpers import lines, make_numbers, query_id  # noqa: E402

BROKEN = json.dumps({"pairs": [{"instruction": "What is it?"}]})


def leg(n: int, p: float, repairs: int, seed: int) -> dict:
    rng, lock = random.Random(seed), threading.Lock()

    def flaky(body, _n):
        with lock:
            broken = rng.random() < p
        if broken:
            return Reply.ok(BROKEN)
        return Reply.ok(json.dumps({"pairs": [{"instruction": f"What is in {query_id(body)}?", "answer": "A ball."}]}))

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as server:
        server.responder = flaky
        os.chdir(tmp)
        make_numbers(Path(tmp), n)
        code = cli(["--name", "Numbers.numbers", "--base_url", server.base_url, "-q", "--num_threads", "32",
                    "--repairs", str(repairs)], env={"OPENAI_API_KEY": "x-bench-key-not-secret"}, stream=io.StringIO())
        folder = Path(tmp) / "output" / "Numbers" / "v1"
        good, bad = lines(folder / "pairs.jsonl"), lines(folder / "invalid.jsonl")
        repaired = [r for r in good if r.get("repairs")]
        broke = len(repaired) + len(bad)
        return {"exit": int(code), "queries": n, "broken_first_replies": broke, "saved_by_repair": len(repaired),
                "saved_share": round(len(repaired) / broke, 3) if broke else None, "invalid": len(bad),
                "requests": server.request_count, "pairs": sum(len(r["pairs"]) for r in good)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    print("| --repairs | queries | broken first replies | saved by repair | share saved | invalid | requests | pairs |")
    print("|---|---|---|---|---|---|---|---|")
    for repairs in (0, 1):
        r = leg(a.n, a.p, repairs, a.seed)
        print(f"| {repairs} | {r['queries']} | {r['broken_first_replies']} | {r['saved_by_repair']} | "
              f"{r['saved_share']} | {r['invalid']} | {r['requests']} | {r['pairs']} |")


if __name__ == "__main__":
    main()
