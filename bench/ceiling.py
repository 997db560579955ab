"""Ceiling: does the engine use the whole rate limit without getting 429s?

The fake server answers after 0.8 s and enforces rpm=500, tpm=200000, either as
per-minute buckets (``--enforce minute``: they start full, so a whole minute of budget
may be spent at once, as OpenAI's limits are when a run begins) or per-second buckets
(``--enforce second``: at most 1/60 of the limit at a time, while the x-ratelimit-*
headers still report the minute). The engine runs with the same limits configured
(limits.rpm / limits.tpm) and num_threads=64, either for DURATION seconds with more
inputs than it can finish, then stopped the way Ctrl-C stops it (SIGINT to this process,
handled by run_job's own signal handler: no new requests, the ones on the wire finish,
files closed, meta.json written), or (``--requests N``) until N requests are done.

Measured per mode:
  completed   lines in pairs.jsonl + invalid.jsonl
  429s        server /stats status_counts["429"], over all chat requests the server saw
  admissible  what the server would admit in D seconds, its initial bucket included:
              min(rpm * (B + D/60), tpm * (B + D/60) / tokens_per_request), where B is the
              minutes' worth the buckets hold at the start (1 per minute, 1/60 per second)
              and D is DURATION, or the time until the N-th request was done; tokens are
              counted as the server counts them: ceil(message chars / 4) + max_tokens
              (server tokens_admitted divided by requests admitted)
Targets: completed/admissible >= 97% per minute, >= 99% per second; 429s/requests < 1%.
The engine's own account (meta.json "limits": how far it widened the burst, whether a 429
showed short windows) is printed and saved with each mode.

max_tokens defaults to 128 (not the config default 1024): the Bench prompt costs ~178
tokens, so at 1024 a request costs ~1200 tokens and 200k TPM admits only ~165 requests a
minute (TPM binds); at 256 it is ~434 tokens -> ~460/min (still TPM). At 128, ~306 tokens
-> ~650/min, so RPM (500/min) binds. The script prints which limit binds.

    .venv/bin/python bench/ceiling.py --requests 2000          # 2,000 requests a mode (~3 + ~4 min)
    .venv/bin/python bench/ceiling.py --duration 30            # quick, both modes
    .venv/bin/python bench/ceiling.py                          # 180 s a mode
    .venv/bin/python bench/ceiling.py --modes second --max-tokens 1024
    .venv/bin/python bench/ceiling.py --requests 2000 --no-follow-headers   # the fixed 1 s burst, for comparison
    .venv/bin/python bench/ceiling.py --requests 2000 --modes second --burst-seconds 0.9   # what a probe step costs
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

os.chdir(C.ROOT)

from syphus.config import load_config  # noqa: E402
from syphus.engine.job import run_job  # noqa: E402
from syphus.engine.workload import load_dataset  # noqa: E402
from syphus.engine.limits import estimate_tokens  # noqa: E402

KEY = "sk-ceiling-bench"  # any key will do; one as short as "x" would be masked inside every word of meta.json


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


async def _run(cfg, server: C.FakeServer, duration: float | None, poll: float) -> tuple:
    """Run the job until it ends by itself, or for ``duration`` seconds and then SIGINT."""
    timeline = []
    job = asyncio.create_task(run_job(cfg, {"OPENAI_API_KEY": KEY}, install_signals=True))
    t0 = time.monotonic()
    end = t0 + duration if duration else math.inf
    next_poll = t0 + poll
    while time.monotonic() < end and not job.done():
        await asyncio.wait({job}, timeout=max(0.0, min(end, next_poll) - time.monotonic()))
        if time.monotonic() >= next_poll:
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
    rpm, tpm, d = args.rpm, args.tpm, (None if args.requests else args.duration)
    n = args.requests or int(rpm / 60 * d * 3) + 5000  # a duration run never runs out, even at 3x the limit
    os.environ["SYPHUS_BENCH_N"] = str(n)
    tmp = tempfile.mkdtemp(prefix="syphus-ceiling-")
    try:
        with C.FakeServer(latency=args.latency, rpm=rpm, tpm=tpm, enforce=mode, server_cpus=server_cpus,
                          count_schema=args.count_schema) as server:
            cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": args.threads,
                                     "endpoint.base_url": server.base_url, "output_dir": tmp,
                                     "limits.rpm": rpm, "limits.tpm": tpm, "limits.follow_headers": args.follow_headers,
                                     "limits.burst_seconds": args.burst_seconds,
                                     "generation.max_tokens": args.max_tokens, "reply.mode": args.reply})
            print(f"  mode {mode}: server {server.url} {' '.join(server.args)}; engine rpm={rpm:g} tpm={tpm:g} "
                  f"max_tokens={args.max_tokens} num_threads={args.threads} follow_headers={args.follow_headers} "
                  f"burst_seconds={args.burst_seconds:g}; "
                  + (f"{n} requests" if d is None else f"{d:g}s"), flush=True)
            result, stopped_at, ended_at, timeline = asyncio.run(_run(cfg, server, d, args.poll))
            stats = server.stats()
        lines = {name: C.count_lines(result.folder / name) for name in ("pairs.jsonl", "invalid.jsonl", "errors.jsonl")}
        limits = json.loads((result.folder / "meta.json").read_text(encoding="utf-8")).get("limits")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sc = stats["status_counts"]
    completed = lines["pairs.jsonl"] + lines["invalid.jsonl"]
    ok = int(sc.get("200", 0))
    r429 = int(sc.get("429", 0))
    requests = int(stats["requests"])
    tok_per_req = stats["tokens_admitted"] / ok if ok else float("nan")
    span = ended_at if d is None else d  # D: until the last request was done, or the stop
    bucket = 1.0 if mode == "minute" else 1 / 60  # minutes' worth the server's buckets hold at the start
    by_rpm = rpm * (bucket + span / 60)
    by_tpm = tpm * (bucket + span / 60) / tok_per_req
    admissible = min(by_rpm, by_tpm)
    rate_only = min(rpm, tpm / tok_per_req) * span / 60  # the old yardstick: the initial bucket left out
    target = 0.97 if mode == "minute" else 0.99
    out = {
        "mode": mode, "duration_s": d, "requests_asked": args.requests, "span_s": round(span, 2),
        "stopped_at_s": round(stopped_at, 2), "ended_at_s": round(ended_at, 2),
        "status": result.status, "completed": completed, "lines": lines, "engine_limits": limits,
        "server": stats, "requests": requests, "answered_429": r429,
        "rate_429": round(r429 / requests, 5) if requests else None,
        "tokens_per_request_server": round(tok_per_req, 1),
        "admissible_by_rpm": round(by_rpm, 1), "admissible_by_tpm": round(by_tpm, 1),
        "binding_limit": "rpm" if by_rpm <= by_tpm else "tpm", "admissible": round(admissible, 1),
        "completed_over_admissible": round(completed / admissible, 4),
        "target": target, "admissible_rate_only": round(rate_only, 1),
        "completed_over_rate_only": round(completed / rate_only, 4),
        "engine": {"requests": result.stats.requests, "rate_limited": result.stats.rate_limited,
                   "retries": result.stats.retries, "errors": result.stats.errors,
                   "answered": result.stats.answered},
        "timeline": timeline,
    }
    ok_c = out["completed_over_admissible"] >= target
    ok_r = (out["rate_429"] or 0) < 0.01
    print(f"  mode {mode}: {result.status} after {span:.1f}s; completed {completed} / admissible {admissible:.0f} "
          f"({out['binding_limit']} binds, initial bucket included) = {100 * out['completed_over_admissible']:.1f}% "
          f"[{'ok' if ok_c else 'MISS'} >= {100 * target:g}%]; 429s {r429} / {requests} requests = "
          f"{100 * (out['rate_429'] or 0):.2f}% [{'ok' if ok_r else 'MISS'}]; server {sc}; engine limits {limits}",
          flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=180.0, help="seconds a mode (default 180)")
    ap.add_argument("--requests", type=int, default=None, help="run N requests to the end instead of DURATION")
    ap.add_argument("--no-follow-headers", dest="follow_headers", action="store_false",
                    help="limits.follow_headers=false: the fixed 1 s burst, no probing")
    ap.add_argument("--burst-seconds", type=float, default=1.0,
                    help="limits.burst_seconds, where the probe starts (default 1)")
    ap.add_argument("--modes", default="minute,second")
    ap.add_argument("--rpm", type=float, default=500)
    ap.add_argument("--tpm", type=float, default=200000)
    ap.add_argument("--latency", type=float, default=0.8)
    ap.add_argument("--max-tokens", type=int, default=128, help="generation.max_tokens (default 128, so RPM binds)")
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--reply", choices=("json", "text", "auto"), default="auto", help="reply.mode (default auto: JSON)")
    ap.add_argument("--count-schema", action="store_true", help="the fake server counts the reply schema in its tokens")
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
    print("| enforce | D s | completed | admissible with the initial bucket (binds) | completed/admissible | "
          "429s / requests | widest burst s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        widest = (r["engine_limits"] or {}).get("max_burst_seconds", "?")
        print(f"| {r['mode']} | {r['span_s']:g} | {r['completed']} | {r['admissible']:.0f} ({r['binding_limit']}) | "
              f"{100 * r['completed_over_admissible']:.1f}% | {r['answered_429']} / {r['requests']} = "
              f"{100 * (r['rate_429'] or 0):.2f}% | {widest} |")
    path = C.write_json(args.out, {
        "benchmark": "ceiling", "machine": C.machine(),
        "params": {"duration_s": None if args.requests else args.duration, "requests": args.requests,
                   "rpm": args.rpm, "tpm": args.tpm, "latency_s": args.latency,
                   "max_tokens": args.max_tokens, "num_threads": args.threads, "follow_headers": args.follow_headers,
                   "burst_seconds": args.burst_seconds},
        "expected_tokens_per_request": {"server": round(srv_cost, 1), "engine_estimate": round(eng_cost, 1)},
        "expected_binding_limit": binds,
        "targets": {"completed_over_admissible": {"minute": ">= 0.97", "second": ">= 0.99"}, "rate_429": "< 0.01",
                    "admissible": "initial bucket + rate x D"},
        "results": results})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
