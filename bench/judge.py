"""Judge: its throughput against an ordinary run on the fake server, and its dry run at scale in flat memory.

    .venv/bin/python bench/judge.py --n 2000                 # throughput legs, ~1 min
    .venv/bin/python bench/judge.py --n 2000 --scale 100000,1000000   # + judge --dry-run at 10^5, 10^6 pairs

Throughput: the Bench plugin's ``--n`` queries run through the engine at zero latency (leg
"generate"), then ``syphus judge`` judges that run folder on the same server (leg "judge"):
requests a second of each, and pairs judged a second. The fake server answers every judge
request with verdicts that fit the schema.

Scale: a synthetic run folder of N pairs (N/3 queries of three pairs, meta.json naming the Bench
plugin with SYPHUS_BENCH_N = N/3) is dry-run judged in a child process: the wall time, and the
child's peak RSS, which must not grow with N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DATASET_OVERRIDES, PY, ROOT, FakeServer, count_lines, machine, write_json  # noqa: E402


def _cfg(base_url: str, out: Path, n: int):
    from syphus.config import load_config
    return load_config(None, {**DATASET_OVERRIDES, "num_threads": 64, "output_dir": str(out),
                              "endpoint.base_url": base_url})


def throughput(n: int) -> dict:
    from syphus.engine.job import run_job
    from syphus.workflows.judge import Judging, run_judge

    os.environ["SYPHUS_BENCH_N"] = str(n)
    env = {"OPENAI_API_KEY": "x-bench-key-not-secret"}
    out = {}
    with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
        cfg = _cfg(server.base_url, Path(tmp), n)
        t0 = time.perf_counter()
        result = asyncio.run(run_job(cfg, env, install_signals=False))
        gen = time.perf_counter() - t0
        pairs = sum(len(json.loads(line)["pairs"]) for line in (result.folder / "pairs.jsonl").open())
        out["generate"] = {"queries": n, "pairs": pairs, "seconds": round(gen, 2), "requests_per_s": round(n / gen, 1)}
        judging = Judging(result.folder, ROOT / "prompts" / "judge.yaml")
        t0 = time.perf_counter()
        jr = asyncio.run(run_judge(cfg, env, judging, install_signals=False))
        took = time.perf_counter() - t0
        judged = count_lines(judging.folder / "pairs.jsonl")
        assert jr.status == "complete" and judged == n, (jr.status, judged)
        out["judge"] = {"queries": judged, "pairs": pairs, "seconds": round(took, 2),
                        "requests_per_s": round(judged / took, 1), "pairs_per_s": round(pairs / took, 1)}
        out["judge_over_generate"] = round(out["judge"]["requests_per_s"] / out["generate"]["requests_per_s"], 3)
    return out


CHILD = r"""
import io, json, resource, sys, time
from syphus.cli import main
t0 = time.perf_counter()
out = io.StringIO()
code = main(["judge", sys.argv[1], "--dry-run", "--base_url", "http://127.0.0.1:9/v1",
             "--datasets_dir", "bench/datasets"], env={"OPENAI_API_KEY": "x-bench-key-not-secret"}, stream=out)
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "out": out.getvalue(),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def synthetic_run(folder: Path, queries: int) -> None:
    """A run folder of ``queries`` Bench queries with three pairs each (as an ordinary run leaves it)."""
    folder.mkdir(parents=True)
    meta = {"dataset": {"name": "Bench", "class": "Bench", "plugin": str(ROOT / "bench" / "datasets" / "bench.py"),
                        "prompt_path": str(ROOT / "bench" / "prompts" / "bench.json"), "query_inputs_path": None}}
    (folder / "meta.json").write_text(json.dumps(meta))
    with (folder / "pairs.jsonl").open("w") as f:
        for i in range(queries):
            pairs = [{"instruction": f"What is happening in scene {i}, part {k}?",
                      "answer": f"A person walks past a wooden bench in scene {i}, part {k}."} for k in range(3)]
            f.write(json.dumps({"id": f"q{i:08d}", "pairs": pairs, "raw": "", "model": "bench"}) + "\n")


def scale(sizes: list[int]) -> dict:
    out = {}
    for pairs in sizes:
        queries = pairs // 3
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            synthetic_run(run, queries)
            env = {**os.environ, "SYPHUS_BENCH_N": str(queries), "PYTHONPATH": str(ROOT)}
            proc = subprocess.run([PY, "-c", CHILD, str(run)], cwd=ROOT, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr[-2000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            assert r["code"] == 0 and f"{queries} queries to go" in r["out"], r["out"]
            out[str(pairs)] = {"queries": queries, "seconds": round(r["seconds"], 1),
                               "peak_rss_mib": round(r["peak_rss_mib"], 1)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="queries in the throughput legs")
    ap.add_argument("--scale", default="", help="comma-separated pair counts for the dry-run scale check")
    a = ap.parse_args()
    result = {"command": " ".join(["bench/judge.py", *sys.argv[1:]]), "machine": machine(),
              "throughput": throughput(a.n)}
    if a.scale:
        result["dry_run_scale"] = scale([int(x) for x in a.scale.split(",")])
    path = write_json("judge.json", result)
    t = result["throughput"]
    print("| leg | queries | pairs | seconds | requests/s | pairs judged/s |\n|---|---|---|---|---|---|")
    for leg in ("generate", "judge"):
        r = t[leg]
        print(f"| {leg} | {r['queries']} | {r['pairs']} | {r['seconds']} | {r['requests_per_s']} | "
              f"{r.get('pairs_per_s', '–')} |")
    print(f"judge / generate requests a second: {t['judge_over_generate']}")
    for pairs, r in result.get("dry_run_scale", {}).items():
        print(f"judge --dry-run of {int(pairs):,} pairs: {r['seconds']} s, peak RSS {r['peak_rss_mib']} MiB")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
