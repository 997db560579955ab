"""Ceiling: does the engine use the whole rate limit without getting 429s?

The fake server answers after 0.8 s and enforces rpm=500, tpm=200000, either as
per-minute buckets (``--enforce minute``: a full minute of budget may be spent at once)
or per-second buckets (``--enforce second``: at most 1/60 of the limit at a time).
The engine runs with the same limits configured (limits.rpm / limits.tpm), num_threads=64
and more inputs than it can finish, for DURATION seconds; then it is stopped the way
Ctrl-C stops it (SIGINT to this process, handled by run_job's own signal handler:
no new requests, the ones on the wire finish, files closed, meta.json written).

Measured per mode:
  completed   lines in pairs.jsonl + invalid.jsonl
  429s        server /stats status_counts["429"], over all chat requests the server saw
  admissible  min(rpm * D/60, tpm * D/60 / tokens_per_request), with tokens counted as the
              server counts them: ceil(message chars / 4) + max_tokens (server tokens_admitted
              divided by requests admitted)
Targets: completed/admissible >= 99%, 429s/requests < 1%.

max_tokens defaults to 128 (not the config default 1024): the Bench prompt costs ~178
tokens, so at 1024 a request costs ~1200 tokens and 200k TPM admits only ~165 requests a
minute (TPM binds); at 256 it is ~434 tokens -> ~460/min (still TPM). At 128, ~306 tokens
-> ~650/min, so RPM (500/min) binds. The script prints which limit binds.

    .venv/bin/python bench/ceiling.py --duration 30            # quick, both modes
    .venv/bin/python bench/ceiling.py                          # 180 s a mode
    .venv/bin/python bench/ceiling.py --modes second --max-tokens 1024
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

os.chdir(C.ROOT)

from syphus.config import load_config  # noqa: E402
from syphus.engine.job import load_dataset, run_job  # noqa: E402
from syphus.engine.limits import estimate_tokens  # noqa: E402


def server_tokens(messages: list[dict], max_tokens: int) -> int:
    """A request's cost the way tests/fakeserver.py counts it."""
    return math.ceil(sum(len(m["content"]) for m in messages) / 4) + max_tokens


def expected_costs(max_tokens: int, sample: int = 2000) -> tuple[float, float]:
    """Mean cost of the first ``sample`` Bench requests: (as the server counts, as the engine estimates)."""
    os.environ["SYPHUS_BENCH_N"] = str(sample)
    ds = load_dataset(load_config(None, dict(C.DATASET_OVERRIDES))).dataset
    srv = eng = 0
    for item in ds.iter_query_inputs():
        m = ds.build_messages(item)
        srv += server_tokens(m, max_tokens)
        eng += estimate_tokens(m) + max_tokens
    return srv / sample, eng / sample


async def _run(cfg, server: C.FakeServer, duration: float, poll: float) -> tuple:
    timeline = []
    job = asyncio.create_task(run_job(cfg, {"OPENAI_API_KEY": "x"}, install_signals=True))
    t0 = time.monotonic()
    next_poll = poll
    while time.monotonic() - t0 < duration and not job.done():
        await asyncio.sleep(min(poll, max(0.0, t0 + duration - time.monotonic()), max(0.0, t0 + next_poll - time.monotonic())))
        if time.monotonic() - t0 >= next_poll:
            s = await asyncio.to_thread(server.stats)
            sc = s["status_counts"]
            timeline.append({"t": round(time.monotonic() - t0, 1), "200": sc.get("200", 0), "429": sc.get("429", 0)})
            print(f"    t={timeline[-1]['t']:6.1f}s  200s {timeline[-1]['200']:6d}  429s {timeline[-1]['429']:5d}",
                  flush=True)
            next_poll += poll
    stopped_at = time.monotonic() - t0
    if not job.done():
        os.kill(os.getpid(), signal.SIGINT)  # run_job's handler: request_stop(), drain, close
    result = await job
    return result, stopped_at, time.monotonic() - t0, timeline


def run_mode(mode: str, args, server_cpus) -> dict:
    rpm, tpm, d = args.rpm, args.tpm, args.duration
    n = int(rpm / 60 * d * 3) + 5000  # never runs out, even at 3x the limit
    os.environ["SYPHUS_BENCH_N"] = str(n)
    tmp = tempfile.mkdtemp(prefix="syphus-ceiling-")
    try:
        with C.FakeServer(latency=args.latency, rpm=rpm, tpm=tpm, enforce=mode, server_cpus=server_cpus) as server:
            cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": args.threads,
                                     "endpoint.base_url": server.base_url, "output_dir": tmp,
                                     "limits.rpm": rpm, "limits.tpm": tpm,
                                     "generation.max_tokens": args.max_tokens})
            print(f"  mode {mode}: server {server.url} {' '.join(server.args)}; engine rpm={rpm:g} tpm={tpm:g} "
                  f"max_tokens={args.max_tokens} num_threads={args.threads}; {d:g}s", flush=True)
            result, stopped_at, ended_at, timeline = asyncio.run(_run(cfg, server, d, args.poll))
            stats = server.stats()
        lines = {name: C.count_lines(result.folder / name) for name in ("pairs.jsonl", "invalid.jsonl", "errors.jsonl")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sc = stats["status_counts"]
    completed = lines["pairs.jsonl"] + lines["invalid.jsonl"]
    ok = int(sc.get("200", 0))
    r429 = int(sc.get("429", 0))
    requests = int(stats["requests"])
    tok_per_req = stats["tokens_admitted"] / ok if ok else float("nan")
    by_rpm = rpm * d / 60
    by_tpm = tpm * d / 60 / tok_per_req
    admissible = min(by_rpm, by_tpm)
    out = {
        "mode": mode, "duration_s": d, "stopped_at_s": round(stopped_at, 2), "ended_at_s": round(ended_at, 2),
        "status": result.status, "completed": completed, "lines": lines,
        "server": stats, "requests": requests, "answered_429": r429,
        "rate_429": round(r429 / requests, 5) if requests else None,
        "tokens_per_request_server": round(tok_per_req, 1),
        "admissible_by_rpm": round(by_rpm, 1), "admissible_by_tpm": round(by_tpm, 1),
        "binding_limit": "rpm" if by_rpm <= by_tpm else "tpm", "admissible": round(admissible, 1),
        "completed_over_admissible": round(completed / admissible, 4),
        "engine": {"requests": result.stats.requests, "rate_limited": result.stats.rate_limited,
                   "retries": result.stats.retries, "errors": result.stats.errors,
                   "answered": result.stats.answered},
        "timeline": timeline,
    }
    ok_c = out["completed_over_admissible"] >= 0.99
    ok_r = (out["rate_429"] or 0) < 0.01
    print(f"  mode {mode}: {result.status}; completed {completed} / admissible {admissible:.0f} "
          f"({out['binding_limit']} binds) = {100 * out['completed_over_admissible']:.1f}% "
          f"[{'ok' if ok_c else 'MISS'}]; 429s {r429} / {requests} requests = {100 * (out['rate_429'] or 0):.2f}% "
          f"[{'ok' if ok_r else 'MISS'}]; server {sc}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=180.0, help="seconds a mode (default 180)")
    ap.add_argument("--modes", default="minute,second")
    ap.add_argument("--rpm", type=float, default=500)
    ap.add_argument("--tpm", type=float, default=200000)
    ap.add_argument("--latency", type=float, default=0.8)
    ap.add_argument("--max-tokens", type=int, default=128, help="generation.max_tokens (default 128, so RPM binds)")
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--poll", type=float, default=10.0, help="seconds between /stats samples")
    ap.add_argument("--out", default="ceiling.json", help="file name under bench/results/")
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args(argv)

    server_cpus, client_cpus = C.split_cpus(not args.no_pin)
    C.pin_self(client_cpus)
    srv_cost, eng_cost = expected_costs(args.max_tokens)
    by_tpm = args.tpm / srv_cost
    binds = "rpm" if args.rpm <= by_tpm else "tpm"
    print(f"ceiling: rpm={args.rpm:g} tpm={args.tpm:g} max_tokens={args.max_tokens}: a request costs ~{srv_cost:.0f} "
          f"tokens as the server counts (~{eng_cost:.0f} as the engine estimates), so TPM admits ~{by_tpm:.0f}/min "
          f"vs RPM {args.rpm:g}/min: {binds.upper()} binds", flush=True)
    modes = [m for m in args.modes.split(",") if m]
    results = [run_mode(m, args, server_cpus) for m in modes]

    print()
    print("| enforce | duration s | completed | admissible (binds) | completed/admissible | 429s / requests |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['mode']} | {r['duration_s']:g} | {r['completed']} | {r['admissible']:.0f} ({r['binding_limit']}) | "
              f"{100 * r['completed_over_admissible']:.1f}% | {r['answered_429']} / {r['requests']} = "
              f"{100 * (r['rate_429'] or 0):.2f}% |")
    path = C.write_json(args.out, {
        "benchmark": "ceiling", "machine": C.machine(),
        "params": {"duration_s": args.duration, "rpm": args.rpm, "tpm": args.tpm, "latency_s": args.latency,
                   "max_tokens": args.max_tokens, "num_threads": args.threads, "follow_headers": True},
        "expected_tokens_per_request": {"server": round(srv_cost, 1), "engine_estimate": round(eng_cost, 1)},
        "expected_binding_limit": binds,
        "targets": {"completed_over_admissible": ">= 0.99", "rate_429": "< 0.01"},
        "results": results})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
