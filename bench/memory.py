"""Memory: peak RSS of the engine for 10^5 and 10^6 streamed inputs (zero latency, no limits).

Each N runs in its own fresh child process (``python bench/memory.py --child N ...``) against
a fresh fake server (its own process, pinned to its own core). The child runs the whole engine
(run_job, num_threads=64, the Bench generator plugin with SYPHUS_BENCH_N=N, outputs in a temp
folder) and reports ``resource.getrusage(RUSAGE_SELF).ru_maxrss``; the parent cross-checks it
with the child's rusage from ``os.wait4``. The child also samples VmRSS every 10 s, so a slow
leak shows as a slope, not just a bigger peak. Results are merged into bench/results/memory.json
after every N, so a long 10^6 run that is stopped keeps the 10^5 result.

    .venv/bin/python bench/memory.py --n 100000
    .venv/bin/python bench/memory.py --n 100000,1000000      # 10^6 takes ~10-20 minutes here
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

os.chdir(C.ROOT)

SAMPLE_EVERY = 10.0


def vm_rss_kb() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def maxrss_kb() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r  # bytes on macOS, KiB on Linux


# ----------------------------------------------------------------------------- child
def child(n: int, base_url: str, out_dir: str, result_file: str) -> int:
    os.environ["SYPHUS_BENCH_N"] = str(n)
    from syphus.config import load_config
    from syphus.cli.progress import display
    from syphus.engine.job import run_job

    cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": 64, "endpoint.base_url": base_url,
                             "output_dir": out_dir})
    rss_after_import = vm_rss_kb()
    samples: list[dict] = []

    class Tagged:  # the engine's progress lines (every 30 s off a TTY), with the RSS appended
        def write(self, text: str) -> None:
            if text.startswith("progress:"):
                text = text.rstrip("\n") + f" | rss {vm_rss_kb() / 1024:.0f} MiB, peak {maxrss_kb() / 1024:.0f} MiB\n"
            sys.stderr.write(f"  [N={n}] " + text if text.strip() else text)

        def flush(self) -> None:
            sys.stderr.flush()

        def isatty(self) -> bool:
            return False

    async def main():
        t0 = time.monotonic()

        async def sampler():
            while True:
                samples.append({"t": round(time.monotonic() - t0, 1), "rss_kb": vm_rss_kb()})
                await asyncio.sleep(SAMPLE_EVERY)

        task = asyncio.create_task(sampler())
        try:
            return await run_job(cfg, {"OPENAI_API_KEY": "x"}, install_signals=True,
                                 display=display(Tagged(), True, cfg.log_interval))
        finally:
            task.cancel()

    t0 = time.perf_counter()
    result = asyncio.run(main())
    elapsed = time.perf_counter() - t0
    samples.append({"t": round(elapsed, 1), "rss_kb": vm_rss_kb()})
    out = {"n": n, "status": result.status, "elapsed_s": round(elapsed, 1),
           "rps": round(result.stats.settled / elapsed, 1), "settled": result.stats.settled,
           "requests": result.stats.requests, "errors": result.stats.errors,
           "maxrss_kb": maxrss_kb(), "rss_after_import_kb": rss_after_import, "rss_samples": samples}
    Path(result_file).write_text(json.dumps(out))
    return 0


# ----------------------------------------------------------------------------- parent
def run_one(n: int, server_cpus, client_cpus) -> dict:
    tmp = tempfile.mkdtemp(prefix="syphus-memory-")
    result_file = os.path.join(tmp, "result.json")
    out_dir = os.path.join(tmp, "out")
    try:
        with C.FakeServer(server_cpus=server_cpus) as server:
            pre = (lambda: os.sched_setaffinity(0, client_cpus)) if client_cpus else None
            cmd = [C.PY, str(Path(__file__).resolve()), "--child", str(n), "--base-url", server.base_url,
                   "--out-dir", out_dir, "--result-file", result_file]
            print(f"N={n}: child 'bench/memory.py --child {n}', server {server.url}", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=C.ROOT, preexec_fn=pre)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            wall = time.perf_counter() - t0
            stats = server.stats()
        if proc.returncode != 0 or not os.path.exists(result_file):
            return {"n": n, "error": f"child exited {proc.returncode}", "wall_s": round(wall, 1),
                    "maxrss_kb_wait4": usage.ru_maxrss, "server": stats}
        res = json.loads(Path(result_file).read_text())
        folder = Path(out_dir) / "Bench" / "v1"
        res["lines"] = {name: C.count_lines(folder / name) for name in ("pairs.jsonl", "invalid.jsonl", "errors.jsonl")}
        res["maxrss_kb_wait4"] = usage.ru_maxrss
        res["wall_s"] = round(wall, 1)
        res["server_status_counts"] = stats["status_counts"]
        rss = [s["rss_kb"] for s in res["rss_samples"]]
        res["rss_first_sample_kb"], res["rss_last_sample_kb"] = rss[0], rss[-1]
        print(f"N={n}: {res['status']} in {res['elapsed_s']:.0f}s ({res['rps']:.0f} req/s); peak RSS "
              f"{res['maxrss_kb'] / 1024:.1f} MiB (wait4 {usage.ru_maxrss / 1024:.1f} MiB); lines {res['lines']}",
              flush=True)
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save(results: dict[int, dict]) -> Path:
    path = C.RESULTS / "memory.json"
    ns = sorted(results)
    ratio = None
    ok = [k for k in ns if "maxrss_kb" in results[k]]
    if 100000 in ok and 1000000 in ok:
        ratio = round(results[1000000]["maxrss_kb"] / results[100000]["maxrss_kb"], 3)
    return C.write_json("memory.json", {
        "benchmark": "memory", "machine": C.machine(),
        "setup": "fresh child process per N: run_job, num_threads=64, Bench generator plugin, fake server "
                 "at zero latency and no limits in its own process",
        "results": {str(k): results[k] for k in ns},
        "peak_ratio_1e6_over_1e5": ratio, "target": "ratio <= 1.20"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="100000,1000000", help="comma-separated input counts")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", help=argparse.SUPPRESS)
    ap.add_argument("--result-file", help=argparse.SUPPRESS)
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args(argv)
    if args.child is not None:
        return child(args.child, args.base_url, args.out_dir, args.result_file)

    server_cpus, client_cpus = C.split_cpus(not args.no_pin)
    results: dict[int, dict] = {}
    old = C.RESULTS / "memory.json"
    if old.exists():  # keep results of other N from earlier invocations
        try:
            results = {int(k): v for k, v in json.loads(old.read_text())["results"].items()}
        except (ValueError, KeyError):
            results = {}
    for n in [int(x) for x in args.n.split(",") if x]:
        results[n] = run_one(n, server_cpus, client_cpus)
        path = save(results)
        print(f"wrote {path.relative_to(C.ROOT)}", flush=True)

    print("\n| N | status | time s | req/s | peak RSS MiB | RSS first / last sample MiB |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in sorted(results):
        r = results[n]
        if "maxrss_kb" not in r:
            print(f"| {n} | {r.get('error')} | | | | |")
            continue
        print(f"| {n} | {r['status']} | {r['elapsed_s']:.0f} | {r['rps']:.0f} | {r['maxrss_kb'] / 1024:.1f} | "
              f"{r['rss_first_sample_kb'] / 1024:.1f} / {r['rss_last_sample_kb'] / 1024:.1f} |")
    if 100000 in results and 1000000 in results and "maxrss_kb" in results[1000000] and "maxrss_kb" in results[100000]:
        ratio = results[1000000]["maxrss_kb"] / results[100000]["maxrss_kb"]
        print(f"\npeak RSS 10^6 / 10^5 = {ratio:.3f} ({'meets' if ratio <= 1.2 else 'MISSES'} the <= 1.20 target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
