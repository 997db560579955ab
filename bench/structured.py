"""Structured replies on the bundled local model: the Example dataset as text, then as JSON.

Both runs send the same queries with the same prompt, temperature (0.7) and seed (``generation.extra``
``{"seed": 0}``) to the bundled SmolLM2-135M-Instruct served by llama.cpp (``--endpoint local``, no key,
no network); the only difference is ``--reply text`` against ``--reply json`` (the schema in llama.cpp's
form, which the server turns into a grammar). The queries are the 8 scenes of
``datasets/samples/example_scenes.jsonl`` plus scenes made from them (each caption with another scene's
objects), ``--n`` in all.

For each mode: the share of queries whose reply holds the number of pairs the system message asks for
(three), and at least that many; pairs per query; invalid and error records; completion tokens per pair;
wall time of the run (the model server's start included, the same in both).

    .venv/bin/python bench/structured.py            # 32 queries a mode, ~8 minutes on 2 cores
    .venv/bin/python bench/structured.py --n 8      # the Example's own 8 scenes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

os.chdir(C.ROOT)

from syphus.config import load_config  # noqa: E402
from syphus.engine.job import run_job  # noqa: E402

ASKED = 3  # "Write three questions ..." in prompts/example.json


def scenes(n: int) -> list[dict]:
    """The Example's scenes, then each caption with the objects of the next scene, and so on, ``n`` in all."""
    base = [json.loads(x) for x in (C.ROOT / "datasets" / "samples" / "example_scenes.jsonl").read_text().splitlines()
            if x.strip()]
    out = []
    shift = 0
    while len(out) < n:
        for i, scene in enumerate(base):
            if len(out) == n:
                break
            other = base[(i + shift) % len(base)]
            out.append({"id": f"scene_{len(out) + 1:04d}", "caption": scene["caption"],
                        "objects": scene.get("objects", []) if shift == 0 else other.get("objects", [])})
        shift += 1
    return out


def measure(mode: str, inputs: Path, out_dir: Path, threads: int) -> dict:
    cfg = load_config(None, {"name": "Example.example", "query_inputs_path": str(inputs), "output_dir": str(out_dir),
                             "endpoint.kind": "local", "reply.mode": mode, "num_threads": threads,
                             "generation.extra": {"seed": 0}, "generation.max_tokens": 512})
    t0 = time.perf_counter()
    result = asyncio.run(run_job(cfg, {}, install_signals=False))
    wall = time.perf_counter() - t0
    folder = result.folder
    records = [json.loads(x) for name in ("pairs.jsonl", "invalid.jsonl")
               for x in (folder / name).read_text().splitlines() if x.strip()]
    errors = C.count_lines(folder / "errors.jsonl")
    counts = [len(r["pairs"]) for r in records]
    queries = len(records) + errors
    pairs = sum(counts)
    completion = sum(int((r.get("usage") or {}).get("completion_tokens") or 0) for r in records)
    return {
        "mode": mode, "status": str(result.status), "queries": queries,
        "exactly_asked": round(sum(c == ASKED for c in counts) / queries, 3),
        "at_least_asked": round(sum(c >= ASKED for c in counts) / queries, 3),
        "pairs_per_query": round(pairs / queries, 2), "invalid": sum(c == 0 for c in counts), "errors": errors,
        "records_with_problems": sum(bool(r.get("problems")) for r in records),
        "completion_tokens_per_pair": round(completion / pairs, 1) if pairs else None,
        "wall_s": round(wall, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="queries a mode (default 32)")
    ap.add_argument("--threads", type=int, default=2, help="num_threads (default 2)")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="syphus-structured-"))
    try:
        inputs = work / "scenes.jsonl"
        inputs.write_text("".join(json.dumps(s) + "\n" for s in scenes(args.n)))
        rows = []
        for mode in ("text", "json"):
            print(f"running {args.n} queries with --reply {mode} ...", flush=True)
            rows.append(measure(mode, inputs, work / mode, args.threads))
            print(f"  {rows[-1]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"| --reply | queries | exactly {ASKED} pairs | at least {ASKED} | pairs/query | invalid | errors | "
          "records with problems | completion tokens/pair | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['queries']} | {r['exactly_asked']:.0%} | {r['at_least_asked']:.0%} | "
              f"{r['pairs_per_query']} | {r['invalid']} | {r['errors']} | {r['records_with_problems']} | "
              f"{r['completion_tokens_per_pair']} | {r['wall_s']} |")
    json_row = rows[-1]
    verdict = "meets" if json_row["invalid"] == 0 and json_row["at_least_asked"] >= 0.95 else "MISSES"
    print(f"\njson: {json_row['at_least_asked']:.0%} of queries with at least {ASKED} pairs, {json_row['invalid']} "
          f"invalid ({verdict} the target: every record well formed, >= 95% with the asked number)")
    path = C.write_json("structured.json", {
        "benchmark": "structured", "machine": C.machine(), "model": "bundled SmolLM2-135M-Instruct (llama.cpp)",
        "dataset": "Example.example", "n": args.n, "threads": args.threads, "temperature": 0.7, "seed": 0,
        "max_tokens": 512, "asked": ASKED, "rows": rows,
        "command": f".venv/bin/python bench/structured.py --n {args.n} --threads {args.threads}"})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
