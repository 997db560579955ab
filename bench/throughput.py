"""Throughput at zero latency, no rate limits: requests/s of four clients against the same fake server.

    (a) openai  AsyncOpenAI(max_retries=0) (httpx transport) + asyncio.Semaphore(64)
    (b) openai  the same with http_client=DefaultAioHttpClient() (the SDK's aiohttp transport)
    (c) aiohttp a lean loop: one ClientSession, POST json, read body, json.loads; 64 in flight
    (d) engine  syphus.engine.job.run_job with num_threads=64 (everything: plugin, limiter, retries,
                parsing, JSONL writes, meta.json, fsync on close), replies in JSON (the default: the
                schema in every request, each reply validated against the reply model)
    (e) engine  the same with --reply text (no schema, replies parsed as text)

Every leg sends the same messages (the Bench plugin's, built from the same item stream) with the
same body fields (model, temperature 0.7, max_tokens 1024). The fake server is restarted before
every leg (fresh /stats, no state carried over) and pinned to its own core; this process uses the
other. Legs are interleaved a, b, c, d, a, b, ... for --repeat rounds; the table shows the median.

    .venv/bin/python bench/throughput.py                    # 5000 requests a leg, 3 rounds
    .venv/bin/python bench/throughput.py --n 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
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

MODEL = "gpt-4o-mini"
CONCURRENCY = 64
BODY = {"model": MODEL, "temperature": 0.7, "max_tokens": 1024}


def message_stream(n: int):
    """The engine's own messages for the first n Bench items (built lazily, as the engine does)."""
    os.environ["SYPHUS_BENCH_N"] = str(n)
    ds = load_dataset(load_config(None, dict(C.DATASET_OVERRIDES))).dataset
    for item in ds.iter_query_inputs():
        yield ds.build_messages(item)


async def _bounded(n: int, send) -> int:
    """Run ``send(messages)`` for n messages with CONCURRENCY in flight; returns how many succeeded."""
    sem = asyncio.Semaphore(CONCURRENCY)
    ok = 0
    errors: list[BaseException] = []
    tasks: set[asyncio.Task] = set()

    async def one(messages):
        nonlocal ok
        try:
            await send(messages)
            ok += 1
        except Exception as e:  # keep going; report below
            errors.append(e)
        finally:
            sem.release()

    for messages in message_stream(n):
        await sem.acquire()
        t = asyncio.create_task(one(messages))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    if errors:
        print(f"  {len(errors)} errors, first: {type(errors[0]).__name__}: {errors[0]}", file=sys.stderr)
    return ok


async def leg_openai(base_url: str, n: int, aiohttp_transport: bool) -> int:
    import openai
    kw = {}
    if aiohttp_transport:
        kw["http_client"] = openai.DefaultAioHttpClient()
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, **kw) as client:
        async def send(messages):
            r = await client.chat.completions.create(messages=messages, **BODY)
            _ = r.choices[0].message.content
        return await _bounded(n, send)


async def leg_aiohttp(base_url: str, n: int) -> int:
    import aiohttp
    url = base_url + "/chat/completions"
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer x"}) as session:
        async def send(messages):
            async with session.post(url, json={**BODY, "messages": messages}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}")
            _ = json.loads(body)["choices"][0]["message"]["content"]
        return await _bounded(n, send)


def leg_engine(base_url: str, n: int, reply: str = "auto") -> tuple[int, dict]:
    os.environ["SYPHUS_BENCH_N"] = str(n)
    tmp = tempfile.mkdtemp(prefix="syphus-bench-")
    try:
        cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": CONCURRENCY,
                                 "endpoint.base_url": base_url, "output_dir": tmp, "reply.mode": reply})
        cpu = time.process_time()
        result = asyncio.run(run_job(cfg, {"OPENAI_API_KEY": "x"}, install_signals=False))
        cpu = time.process_time() - cpu
        lines = {name: C.count_lines(result.folder / name) for name in ("pairs.jsonl", "invalid.jsonl", "errors.jsonl")}
        info = {"status": result.status, "lines": lines, "requests": result.stats.requests,
                "retries": result.stats.retries, "reply": reply, "pairs": result.stats.pairs,
                "cpu_us_per_request": round(cpu / n * 1e6, 1)}  # this process's CPU: what load hardly moves
        return lines["pairs.jsonl"] + lines["invalid.jsonl"], info
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


LEGS = {
    "a": "openai AsyncOpenAI (httpx) + Semaphore(64)",
    "b": "openai AsyncOpenAI + DefaultAioHttpClient + Semaphore(64)",
    "c": "raw aiohttp, one ClientSession, 64 in flight",
    "d": "syphus engine run_job, num_threads=64, JSON replies (default)",
    "e": "syphus engine run_job, num_threads=64, --reply text",
}


def b_available() -> bool:
    try:
        import openai
        from openai._base_client import _DefaultAioHttpClient  # noqa: F401
        return type(openai.DefaultAioHttpClient).__name__ != "_MissingAioHttpClient" and \
            "Missing" not in openai.DefaultAioHttpClient.__name__
    except Exception:
        return False


def run_leg(key: str, n: int, server_cpus) -> dict:
    with C.FakeServer(server_cpus=server_cpus) as server:
        info: dict = {}
        t0 = time.perf_counter()
        if key == "a":
            ok = asyncio.run(leg_openai(server.base_url, n, aiohttp_transport=False))
        elif key == "b":
            ok = asyncio.run(leg_openai(server.base_url, n, aiohttp_transport=True))
        elif key == "c":
            ok = asyncio.run(leg_aiohttp(server.base_url, n))
        else:
            ok, info = leg_engine(server.base_url, n, "text" if key == "e" else "auto")
        elapsed = time.perf_counter() - t0
        stats = server.stats()
    return {"leg": key, "ok": ok, "elapsed_s": round(elapsed, 3), "rps": round(ok / elapsed, 1),
            "server": stats, **({"engine": info} if info else {})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="requests per leg (default 5000)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported (default 3)")
    ap.add_argument("--legs", default="abcde")
    ap.add_argument("--no-pin", action="store_true", help="do not pin server and client to separate cores")
    args = ap.parse_args(argv)

    server_cpus, client_cpus = C.split_cpus(not args.no_pin)
    C.pin_self(client_cpus)
    legs = [k for k in args.legs if k in LEGS]
    if "b" in legs and not b_available():
        print("(b) skipped: openai.DefaultAioHttpClient is not installed (pip install 'openai[aiohttp]')")
        legs.remove("b")
    print(f"throughput: {args.n} requests a leg, {args.repeat} round(s), legs {''.join(legs)}; "
          f"server cpus {server_cpus or 'any'}, client cpus {client_cpus or 'any'}", flush=True)

    runs: list[dict] = []
    for r in range(args.repeat):
        for key in legs:
            res = run_leg(key, args.n, server_cpus)
            res["round"] = r + 1
            runs.append(res)
            counts = res["server"]["status_counts"]
            print(f"  round {r + 1} ({key}) {res['ok']}/{args.n} ok in {res['elapsed_s']:.2f}s = "
                  f"{res['rps']:.0f} req/s; server {counts}, peak in flight {res['server']['peak_in_flight']}",
                  flush=True)
            if res["ok"] != args.n:
                print(f"  WARNING: leg {key} completed {res['ok']} of {args.n}", flush=True)

    summary = {}
    for key in legs:
        rates = [x["rps"] for x in runs if x["leg"] == key]
        summary[key] = {"client": LEGS[key], "median_rps": round(statistics.median(rates), 1),
                        "min_rps": min(rates), "max_rps": max(rates), "rps_runs": rates}
    ratio = None
    if "a" in summary and "d" in summary:
        ratio = round(summary["d"]["median_rps"] / summary["a"]["median_rps"], 2)

    print()
    print(f"| leg | client | req/s (median of {args.repeat}) | min | max | vs (a) |")
    print("|---|---|---:|---:|---:|---:|")
    for key, s in summary.items():
        vs = f"{s['median_rps'] / summary['a']['median_rps']:.2f}x" if "a" in summary else "-"
        print(f"| ({key}) | {s['client']} | {s['median_rps']:.0f} | {s['min_rps']:.0f} | {s['max_rps']:.0f} | {vs} |")
    if ratio is not None:
        verdict = "meets" if ratio >= 2 else "MISSES"
        print(f"\nengine/(a) = {ratio:.2f}x ({verdict} the >= 2x target)")
    json_over_text = None
    if "d" in summary and "e" in summary:
        json_over_text = round(summary["d"]["median_rps"] / summary["e"]["median_rps"], 3)
        verdict = "meets" if json_over_text >= 0.95 else "MISSES"
        print(f"engine JSON/text = {json_over_text:.3f} ({verdict} the within-5% target)")
        cpu = {k: statistics.median(x["engine"]["cpu_us_per_request"] for x in runs if x["leg"] == k) for k in "de"}
        summary["cpu_us_per_request"] = cpu
        print(f"engine CPU per request (median): JSON {cpu['d']:.0f} us, text {cpu['e']:.0f} us "
              f"(JSON/text {cpu['d'] / cpu['e']:.3f})")

    path = C.write_json("throughput.json", {
        "benchmark": "throughput", "machine": C.machine(), "n": args.n, "repeat": args.repeat,
        "concurrency": CONCURRENCY, "server": "python -m tests.fakeserver --port 0 --latency 0 (no limits), "
        "restarted before every leg", "pinning": {"server": sorted(server_cpus or []), "client": sorted(client_cpus or [])},
        "summary": summary, "engine_over_a": ratio, "target_engine_over_a": 2.0,
        "engine_json_over_text": json_over_text, "runs": runs})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
