"""The engine with images: requests/s and MB/s sent, 8 frames a query, against the fake server at zero latency.

A JSON image file of ``--images`` PNGs (``--side`` px, smooth gradients as photos compress) is written
once; the Bench dataset then names 8 of them per query (``SYPHUS_BENCH_FRAMES``), and the engine runs
``--n`` queries with ``--images`` (64 in flight, ``--reply text``), interleaved with the same queries
without images, ``--repeat`` rounds; the fake server is restarted for every run. MB/s counts the image
bytes sent as base64 (what goes on the wire).

    .venv/bin/python bench/vision_run.py                 # 1,000 queries a run, 3 rounds, ~2 minutes
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


def run(n: int, images: Path | None, frames: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="syphus-vision-run-")
    try:
        with C.FakeServer() as server:
            flags = {**C.DATASET_OVERRIDES, "num_threads": 64, "endpoint.base_url": server.base_url, "output_dir": tmp,
                     "reply.mode": "text", "images.path": str(images) if images else None}
            cfg = load_config(None, flags)
            t0 = time.perf_counter()
            result = asyncio.run(run_job(cfg, {"OPENAI_API_KEY": "x"}, install_signals=False))
            elapsed = time.perf_counter() - t0
        sent = result.stats.images
        return {"images": bool(images), "status": str(result.status), "answered": result.stats.answered,
                "elapsed_s": round(elapsed, 3), "rps": round(result.stats.answered / elapsed, 1), "images_sent": sent,
                "image_tokens": result.stats.image_tokens}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="syphus-vision-images-"))
    try:
        path = work / "BN.json"
        total = C.write_images(path, args.images, args.side)
        per_image = total / args.images
        os.environ.update(SYPHUS_BENCH_N=str(args.n), SYPHUS_BENCH_FRAMES=str(args.frames),
                          SYPHUS_BENCH_IMAGES=str(args.images))
        rows = []
        for r in range(args.repeat):
            for with_images in (True, False):
                row = run(args.n, path if with_images else None, args.frames)
                row["mb_per_s"] = round(row["images_sent"] * per_image / 2**20 / row["elapsed_s"], 1)
                rows.append(row)
                print(f"  round {r + 1} {'images' if with_images else 'text  '}: {row}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for key in (True, False):
        rs = [x for x in rows if x["images"] == key]
        summary["images" if key else "text"] = {"median_rps": statistics.median(x["rps"] for x in rs),
                                                "median_mb_per_s": statistics.median(x["mb_per_s"] for x in rs)}
    print(f"\n| run | req/s (median of {args.repeat}) | image MB/s sent |\n|---|---:|---:|")
    for k, v in summary.items():
        print(f"| {k} | {v['median_rps']:.0f} | {v['median_mb_per_s']:.1f} |")
    print(f"(each query: {args.frames} PNGs of {args.side}x{args.side}, {per_image / 1024:.1f} KiB base64 each)")
    path = C.write_json("vision_run.json", {
        "benchmark": "vision_run", "machine": C.machine(), "n": args.n, "frames": args.frames, "images": args.images,
        "side": args.side, "image_kib_base64": round(per_image / 1024, 1), "rows": rows, "summary": summary,
        "command": f".venv/bin/python bench/vision_run.py --n {args.n} --images {args.images} --side {args.side}"})
    print(f"wrote {path.relative_to(C.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
