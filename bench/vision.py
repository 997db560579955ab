"""Benchmark of ``syphus.engine.imageindex``: the frames of 10^4 vs 10^5 queries looked up in a
Parquet image file of 10^5 small images; peak RSS (flat?) and lookup rate.

    .venv/bin/python bench/vision.py                                  # 10^5 images; 10^4 and 10^5 queries
    .venv/bin/python bench/vision.py --images 20000 --queries 2000,20000   # a quick check

The image file is the trainer's form as ``syphus convert --parquet`` writes it (``id`` the pandas
index, a ``base64`` column, row groups of 512 rows), made of ``--side`` x ``--side`` PNGs of noise
(they do not compress), grouped as clips of 16 frames (``DC_IMG_v<clip>_<frame>``). A query is a
clip drawn at random (so queries come in random order and their frames from all over the file);
its 8 frames are ``spread(clip, 8)``, fetched with one ``get_many``. The same lookups then run
on the same images as ``XX.json`` (``--no-json`` skips them).

Every step is a fresh child process: generating the file (not timed), building the index, then
one child per query count, which opens the (reused) index and looks the frames up. Peak RSS is
``ru_maxrss`` of that child from ``os.wait4`` (the parent imports neither numpy nor pyarrow, and
children are spawned, so none starts from a copy of a bigger parent); the child also reports its
RSS after imports and after opening the index. Results go to ``bench/results/vision.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, machine, write_json  # noqa: E402

CLIP = 16  # frames a clip
FRAMES = 8  # frames a query


def image_id(i: int) -> str:
    return f"DC_IMG_v{i // CLIP:06d}_{i % CLIP:04d}"


def vm(field: str) -> float:
    """VmRSS or VmHWM of this process, MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def child_generate(path: Path, n: int, side: int, json_path: Path | None) -> None:
    import base64

    import cv2
    import numpy as np

    from syphus.engine import parquet
    from syphus.release.convert.writers import ROW_GROUP_BYTES, ROW_GROUP_ROWS
    from syphus.release.jsonstream import ObjectWriter

    pa, _ = parquet.modules("the benchmark")
    table = parquet.RowGroupWriter(path, pa.schema([("id", pa.string()), ("base64", pa.string())]),
                                   rows=ROW_GROUP_ROWS, max_bytes=ROW_GROUP_BYTES, index="id")
    js = ObjectWriter(json_path, None) if json_path else None
    rng = np.random.default_rng(0)
    for i in range(n):
        ok, png = cv2.imencode(".png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        b64 = base64.b64encode(png.tobytes()).decode("ascii")
        table.add(image_id(i), b64, nbytes=len(b64))
        if js:
            js.add(image_id(i), b64)
    table.close()
    if js:
        js.close()


def child_index(path: Path) -> dict:
    from syphus.engine.imageindex import ImageIndex
    t0 = time.perf_counter()
    with ImageIndex.open(path) as index:
        seconds = time.perf_counter() - t0
        assert index.built
        result = {"seconds": round(seconds, 2), "ids": len(index),
                  "index_mb": round(index.index_path.stat().st_size / 2**20, 1)}
    if index.kind == "parquet":
        import pyarrow.parquet as pq
        result["row_groups"] = pq.ParquetFile(path).num_row_groups
    return result


def child_lookup(path: Path, images: int, queries: int, seed: int) -> dict:
    import random

    from syphus.frames import spread
    from syphus.engine.imageindex import ImageIndex
    after_import = vm("VmRSS")
    rng = random.Random(seed)
    clips = images // CLIP
    found = missing = nbytes = 0
    t0 = time.perf_counter()
    with ImageIndex.open(path) as index:
        opened = time.perf_counter() - t0
        assert not index.built
        after_open = vm("VmRSS")
        t1 = time.perf_counter()
        for _ in range(queries):  # queries are drawn as they go: nothing a query is kept
            clip = rng.randrange(clips)
            frames = spread([image_id(clip * CLIP + k) for k in range(CLIP)], FRAMES)
            for data in index.get_many(frames):
                if data is None:
                    missing += 1
                else:
                    found += 1
                    nbytes += len(data)
        seconds = time.perf_counter() - t1
        groups = index.groups_read
    return {"queries": queries, "images": found, "missing": missing, "seconds": round(seconds, 2),
            "images_per_s": round(found / seconds), "mb_per_s": round(nbytes / 2**20 / seconds, 1),  # MiB of images
            "image_mb": round(nbytes / 2**20, 1), "row_groups_read": groups, "open_seconds": round(opened, 3),
            "rss_after_import_mb": round(after_import, 1), "rss_after_open_mb": round(after_open, 1),
            "vmhwm_mb": round(vm("VmHWM"), 1)}


def run_child(args: list[str]) -> dict:
    """Run ``bench/vision.py --child ...`` in a fresh process; its JSON line plus ``peak_rss_mb`` (wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([PY, str(Path(__file__).resolve()), *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    result["wall_seconds"] = round(time.perf_counter() - t0, 2)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--queries", default="10000,100000", help="query counts, comma-separated")
    ap.add_argument("--side", type=int, default=24, help="image side in pixels (PNG of noise)")
    ap.add_argument("--no-json", dest="json", action="store_false", help="skip the same lookups in XX.json")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--child", choices=["generate", "index", "lookup"])
    ap.add_argument("--path")
    ap.add_argument("--json-path")
    a = ap.parse_args(argv)
    if a.child == "generate":
        child_generate(Path(a.path), a.images, a.side, Path(a.json_path) if a.json_path else None)
        return 0
    if a.child:
        result = child_index(Path(a.path)) if a.child == "index" else \
            child_lookup(Path(a.path), a.images, int(a.queries), a.seed)
        print(json.dumps(result))
        return 0

    counts = [int(x) for x in a.queries.split(",")]
    results: dict = {"images": a.images, "side": a.side, "frames_per_query": FRAMES, "clip_frames": CLIP,
                     "command": "python bench/vision.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    with tempfile.TemporaryDirectory(prefix="syphus-bench-vision-") as tmp:
        pq_path, json_path = Path(tmp) / "DC.parquet", Path(tmp) / "DC.json"
        print(f"generating {a.images} images of {a.side}x{a.side} ...", flush=True)
        gen = [f"--images={a.images}", f"--side={a.side}", f"--path={pq_path}"]
        run_child(["--child=generate", *gen, *([f"--json-path={json_path}"] if a.json else [])])
        forms = {"parquet": pq_path, **({"json": json_path} if a.json else {})}
        for form, path in forms.items():
            entry = {"file_mb": round(path.stat().st_size / 2**20, 1)}
            entry["index"] = run_child(["--child=index", f"--path={path}"])
            print(f"{form}: {entry['file_mb']} MiB, index built in {entry['index']['seconds']} s, "
                  f"peak RSS {entry['index']['peak_rss_mb']} MiB", flush=True)
            entry["lookups"] = []
            for n in counts:
                r = run_child(["--child=lookup", f"--path={path}", f"--images={a.images}", f"--queries={n}",
                               f"--seed={a.seed}"])
                entry["lookups"].append(r)
                print(f"  {n} queries: {r['images']} images in {r['seconds']} s = {r['images_per_s']} images/s, "
                      f"{r['mb_per_s']} MiB/s; {r['row_groups_read']} row groups read; peak RSS {r['peak_rss_mb']} "
                      f"MiB (after import {r['rss_after_import_mb']}, after open {r['rss_after_open_mb']})",
                      flush=True)
            peaks = [r["peak_rss_mb"] for r in entry["lookups"]]
            entry["peak_ratio_largest_to_smallest"] = round(peaks[-1] / peaks[0], 3)
            results[form] = entry
    results["machine"] = machine()
    path = write_json("vision.json", results)
    print(f"peak ratio (parquet) {results['parquet']['peak_ratio_largest_to_smallest']} (target <= 1.2); "
          f"results in {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
