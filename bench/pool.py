"""Pool: one run over three endpoints with different limits; then the same with one killed mid-run.

Three fake servers (``python -m tests.fakeserver``, each its own process) answer after 0.8 s and
enforce 300, 500 and 1,000 requests a minute (per-minute buckets, full at the start; tpm high enough
never to bind). The engine runs the Bench dataset with ``endpoints:`` naming the three, each with
its rpm, ``num_threads`` 128 in all, ``max_tokens`` 128, for ``--duration`` seconds, then is stopped
the way Ctrl-C stops it.

    steady   all three up: completed / (sum of each server's admissible: rpm x (1 + D/60)), and the
             share of requests answered 429 (targets: >= 97%, < 1%)
    kill     the 1,000 RPM server is killed (SIGTERM) after ``--kill-after`` seconds: every query in the
             run folder exactly once, none lost or errored, the killed server's queries on the wire
             settled on the others, and the two survivors' completed / their own admissible over D
             (target >= 95%)

    .venv/bin/python bench/pool.py                      # 180 s a scenario, ~7 minutes
    .venv/bin/python bench/pool.py --duration 90 --kill-after 30    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

os.chdir(C.ROOT)

from syphus.config import load_config  # noqa: E402
from syphus.engine.job import run_job  # noqa: E402

RPMS = {"s300": 300, "s500": 500, "s1000": 1000}
KILLED = "s1000"


def records(folder: Path) -> list[dict]:
    out = []
    for name in ("pairs.jsonl", "invalid.jsonl", "errors.jsonl"):
        path = folder / name
        if path.exists():
            out += [dict(json.loads(x), _file=name) for x in path.read_text().splitlines() if x.strip()]
    return out


async def _run(cfg, duration: float, kill_at: float | None, servers: dict) -> tuple:
    job = asyncio.create_task(run_job(cfg, {}, install_signals=True))
    t0 = time.monotonic()
    killed_at = None
    while not job.done() and time.monotonic() - t0 < duration:
        wait = duration - (time.monotonic() - t0)
        if kill_at is not None and killed_at is None:
            wait = min(wait, kill_at - (time.monotonic() - t0))
        await asyncio.wait({job}, timeout=max(0.0, wait))
        if kill_at is not None and killed_at is None and time.monotonic() - t0 >= kill_at:
            await asyncio.to_thread(servers[KILLED].stop)
            killed_at = time.monotonic() - t0
            print(f"    t={killed_at:.1f}s killed {KILLED}", flush=True)
    if not job.done():
        os.kill(os.getpid(), signal.SIGINT)  # run_job's handler: no new requests, the ones on the wire finish
    result = await job
    return result, time.monotonic() - t0, killed_at


def scenario(name: str, args) -> dict:
    kill = name == "kill"
    os.environ["SYPHUS_BENCH_N"] = str(int(sum(RPMS.values()) / 60 * args.duration * 3) + 5000)
    tmp = tempfile.mkdtemp(prefix="syphus-pool-")
    servers = {n: C.FakeServer(latency=args.latency, rpm=rpm, tpm=10_000_000) for n, rpm in RPMS.items()}
    try:
        for s in servers.values():
            s.start()
        endpoints = [{"name": n, "kind": "compatible", "base_url": s.base_url, "model": "fake", "rpm": RPMS[n]}
                     for n, s in servers.items()]
        cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": args.threads, "output_dir": tmp,
                                 "endpoints": endpoints, "generation.max_tokens": 128, "reply.mode": "text"})
        print(f"  {name}: {args.duration:g}s over {', '.join(f'{n} ({r} RPM)' for n, r in RPMS.items())}"
              + (f", {KILLED} killed at {args.kill_after:g}s" if kill else ""), flush=True)
        result, span, killed_at = asyncio.run(_run(cfg, args.duration, args.kill_after if kill else None, servers))
        stats = {n: s.stats() for n, s in servers.items() if s.proc is not None}
        recs = records(result.folder)
        meta = json.loads((result.folder / "meta.json").read_text())
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ids = Counter(r["id"] for r in recs)
    answered = [r for r in recs if r["_file"] != "errors.jsonl"]
    by_endpoint = Counter(r.get("endpoint") for r in answered)
    d = args.duration
    admissible = {n: rpm * (1 + d / 60) for n, rpm in RPMS.items()}
    if kill:
        admissible[KILLED] = RPMS[KILLED] * (1 + killed_at / 60)
    requests = sum(s["requests"] for s in stats.values())
    r429 = sum(int(s["status_counts"].get("429", 0)) for s in stats.values())
    out = {
        "scenario": name, "duration_s": d, "span_s": round(span, 1), "status": str(result.status),
        "completed": len(answered), "errors": len(recs) - len(answered),
        "duplicates": sum(1 for c in ids.values() if c > 1),
        "per_endpoint": {n: {"completed": by_endpoint.get(n, 0), "admissible": round(admissible[n], 1),
                             "share": round(by_endpoint.get(n, 0) / admissible[n], 4)} for n in RPMS},
        "admissible": round(sum(admissible.values()), 1),
        "completed_over_admissible": round(len(answered) / sum(admissible.values()), 4),
        "requests_seen_by_live_servers": requests, "answered_429": r429,
        "rate_429": round(r429 / requests, 5) if requests else None,
        "endpoints_meta": [{k: e[k] for k in ("name", "state", "requests", "rate_limited", "errors")}
                           for e in meta["endpoints"]],
    }
    if kill:
        survivors = [n for n in RPMS if n != KILLED]
        done = sum(by_endpoint.get(n, 0) for n in survivors)
        out["killed_at_s"] = round(killed_at, 1)
        out["survivors_over_their_admissible"] = round(done / sum(admissible[n] for n in survivors), 4)
        out["moved_after_the_kill"] = sum(1 for r in answered if r.get("attempts", 1) > 1 and r.get("endpoint") != KILLED)
    print(f"  {name}: {json.dumps({k: v for k, v in out.items() if k != 'endpoints_meta'})}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=180.0, help="seconds a scenario (default 180)")
    ap.add_argument("--kill-after", type=float, default=60.0, help="when the kill scenario kills s1000 (default 60)")
    ap.add_argument("--latency", type=float, default=0.8)
    ap.add_argument("--threads", type=int, default=128)
    ap.add_argument("--scenarios", default="steady,kill")
    args = ap.parse_args(argv)
    rows = [scenario(name, args) for name in args.scenarios.split(",")]
    print()
    print("| scenario | D s | completed | admissible (sum) | completed/admissible | per endpoint (completed / admissible) "
          "| 429s | duplicates | errors |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        per = ", ".join(f"{n} {v['completed']}/{v['admissible']:.0f}" for n, v in r["per_endpoint"].items())
        print(f"| {r['scenario']} | {r['duration_s']:g} | {r['completed']} | {r['admissible']:.0f} | "
              f"{100 * r['completed_over_admissible']:.1f}% | {per} | {r['answered_429']} / "
              f"{r['requests_seen_by_live_servers']} | {r['duplicates']} | {r['errors']} |")
    for r in rows:
        if r["scenario"] == "kill":
            print(f"\nkill: survivors completed {100 * r['survivors_over_their_admissible']:.1f}% of their own "
                  f"admissible; {r['moved_after_the_kill']} queries settled elsewhere after a failed attempt; "
                  f"{r['duplicates']} duplicates, {r['errors']} errors")
    path = C.write_json("pool.json", {
        "benchmark": "pool", "machine": C.machine(), "rpms": RPMS, "latency": args.latency, "threads": args.threads,
        "max_tokens": 128, "rows": rows,
        "targets": {"steady": "completed/admissible >= 0.97, 429s < 1%",
                    "kill": "no loss or duplicate; survivors >= 0.95 of their own admissible"},
        "command": f".venv/bin/python bench/pool.py --duration {args.duration:g} --kill-after {args.kill_after:g}"})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
