"""What images cost the client: the engine against a bare aiohttp loop sending the same image requests.

The physical limit of this machine and this fake server for a payload is a bare loop: one aiohttp
session, 64 requests in flight, each the Bench query's own messages with its 8 frames appended as
base64 data URLs taken from memory (no limits, no retries, no storage, no file reads). The engine
sends the same queries with ``--images`` (the frames read from the image file, 64 in flight,
``--reply text``). For each leg and each query count, one child process (pinned to the client cores;
the fake server on its own core) runs the requests; reported are requests a second, client CPU a
request (the child's ``time.process_time`` around the run, so all its threads and no start-up) and
peak RSS (``ru_maxrss`` of the child, from ``os.wait4``). Legs without images (``--frames 0``) give
the same figures for text.

    .venv/bin/python bench/imagecost.py                          # 10^4 and 10^5 requests a leg
    .venv/bin/python bench/imagecost.py --n 2000,20000           # a quicker check

The image file holds ``--images`` PNGs of ``--side`` px (smooth gradients, as photos compress), the
form ``syphus convert`` writes (``XX.json``); query ``k`` names frames ``8k .. 8k+7`` modulo
``--images``, so every frame serves several queries. Results: ``bench/results/imagecost.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CONCURRENCY = 64
BODY = {"model": "gpt-4o-mini", "temperature": 0.7, "max_tokens": 1024}


def bench_env(n: int, frames: int, images: int) -> None:
    os.environ.update(SYPHUS_BENCH_N=str(n), SYPHUS_BENCH_FRAMES=str(frames), SYPHUS_BENCH_IMAGES=str(images))


async def bare(base_url: str, n: int, frames: int, images: int, image_file: Path | None) -> int:
    """The bare loop: the Bench messages plus the same frames as data URLs (from memory), 64 in flight."""
    import aiohttp

    from syphus.config import load_config
    from syphus.engine.job import load_dataset
    bench_env(n, frames, images)
    stored = json.loads(image_file.read_text()) if image_file else {}
    ds = load_dataset(load_config(None, dict(C.DATASET_OVERRIDES))).dataset
    url = base_url + "/chat/completions"
    sem = asyncio.Semaphore(CONCURRENCY)
    ok = 0
    tasks: set[asyncio.Task] = set()

    async def one(session, item):
        nonlocal ok
        try:
            messages = ds.build_messages(item)
            ids = item.get("image_ids") or []
            if ids:
                last = messages[-1]
                last["content"] = [{"type": "text", "text": last["content"]}] + [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + stored[i], "detail": "auto"}}
                    for i in ids]
            async with session.post(url, data=json.dumps({**BODY, "messages": messages}).encode(),
                                    headers={"Content-Type": "application/json"}) as resp:
                body = await resp.read()
                if resp.status == 200:
                    _ = json.loads(body)["choices"][0]["message"]["content"]
                    ok += 1
        finally:
            sem.release()

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer x"}) as session:
        for item in ds.iter_query_inputs():
            await sem.acquire()
            t = asyncio.create_task(one(session, item))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
    return ok


def engine(base_url: str, n: int, frames: int, images: int, image_file: Path | None) -> int:
    from syphus.config import load_config
    from syphus.engine.job import run_job
    bench_env(n, frames, images)
    tmp = tempfile.mkdtemp(prefix="syphus-imagecost-")
    try:
        cfg = load_config(None, {**C.DATASET_OVERRIDES, "num_threads": CONCURRENCY, "endpoint.base_url": base_url,
                                 "output_dir": tmp, "reply.mode": "text",
                                 "images.path": str(image_file) if image_file else None})
        result = asyncio.run(run_job(cfg, {"OPENAI_API_KEY": "x"}, install_signals=False))
        return result.stats.answered
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def child(args) -> None:
    os.chdir(C.ROOT)
    import aiohttp  # noqa: F401  (imports before the clock starts, for both legs)

    import syphus.engine.job  # noqa: F401
    image_file = Path(args.image_file) if args.frames else None
    cpu, t0 = time.process_time(), time.perf_counter()
    if args.child == "bare":
        ok = asyncio.run(bare(args.url, args.n, args.frames, args.images, image_file))
    else:
        ok = engine(args.url, args.n, args.frames, args.images, image_file)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu
    print(json.dumps({"ok": ok, "elapsed_s": round(elapsed, 3), "cpu_s": round(cpu, 3)}))


def run_child(leg: str, url: str, n: int, frames: int, images: int, image_file: Path, client_cpus) -> dict:
    pre = (lambda: os.sched_setaffinity(0, client_cpus)) if client_cpus else None
    proc = subprocess.Popen([C.PY, __file__, "--child", leg, "--url", url, "--n", str(n), "--frames", str(frames),
                             "--images", str(images), "--image-file", str(image_file)], cwd=C.ROOT,
                            stdout=subprocess.PIPE, text=True, preexec_fn=pre)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{leg} child failed ({proc.returncode}): {out[-500:]}")
    row = json.loads(out.strip().splitlines()[-1])
    return {"leg": leg, "n": n, "frames": frames, **row, "rps": round(row["ok"] / row["elapsed_s"], 1),
            "cpu_ms_per_request": round(row["cpu_s"] / n * 1e3, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="10000,100000", help="requests a leg, comma-separated (default 10^4 and 10^5)")
    ap.add_argument("--frames", type=int, default=8, help="frames a request (0: text only)")
    ap.add_argument("--images", type=int, default=2000, help="distinct images in the file")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--legs", default="bare,engine")
    ap.add_argument("--out", default="imagecost.json", help="file name under bench/results/")
    ap.add_argument("--child", choices=("bare", "engine"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--image-file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        args.n = int(args.n)
        child(args)
        return 0
    server_cpus, client_cpus = C.split_cpus(True)
    counts = [int(x) for x in args.n.split(",")]
    legs = args.legs.split(",")
    work = Path(tempfile.mkdtemp(prefix="syphus-imagecost-"))
    rows = []
    try:
        image_file = work / "BN.json"
        b64 = C.write_images(image_file, args.images, args.side) // args.images if args.frames else 0
        print(f"imagecost: {args.frames} frames of {args.side}x{args.side} a request ({b64 / 1024:.1f} KiB base64 "
              f"each), {args.images} images; server cpus {server_cpus or 'any'}, client cpus {client_cpus or 'any'}",
              flush=True)
        for n in counts:
            for leg in legs:
                with C.FakeServer(server_cpus=server_cpus) as server:
                    row = run_child(leg, server.base_url, n, args.frames, args.images, image_file, client_cpus)
                rows.append(row)
                print(f"  {leg:6} n={n}: {row['ok']}/{n} ok, {row['rps']:.0f} req/s, {row['cpu_ms_per_request']} ms CPU "
                      f"a request, peak RSS {row['peak_rss_mib']} MiB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| n | leg | req/s | CPU ms a request | peak RSS MiB |\n|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['leg']} | {r['rps']:.0f} | {r['cpu_ms_per_request']} | {r['peak_rss_mib']} |")
    shares = {}
    for n in counts:
        b = next((r for r in rows if r["n"] == n and r["leg"] == "bare"), None)
        e = next((r for r in rows if r["n"] == n and r["leg"] == "engine"), None)
        if b and e:
            shares[n] = {"rps_share": round(e["rps"] / b["rps"], 3), "cpu_ratio": round(e["cpu_ms_per_request"] /
                                                                                    b["cpu_ms_per_request"], 2)}
            print(f"n={n}: engine {shares[n]['rps_share']:.0%} of the bare loop's req/s, "
                  f"{shares[n]['cpu_ratio']}x its CPU a request")
    command = f".venv/bin/python bench/imagecost.py --n {args.n} --frames {args.frames} --images {args.images} --out {args.out}"
    path = C.write_json(args.out, {"benchmark": "imagecost", "machine": C.machine(), "side": args.side,
                                          "frames": args.frames, "images": args.images, "rows": rows,
                                          "shares": {str(k): v for k, v in shares.items()}, "command": command})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
