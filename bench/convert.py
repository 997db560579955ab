"""Benchmark of ``syphus convert``: 10^4 generated 640x480 JPEG images -> ``--out`` JSON (224x224 PNG).

Two legs, each a fresh child process running exactly::

    python -m syphus convert --scene VST --images DATA --out OUT.json --workers W

with W = os.cpu_count() (all cores) and W = 1. Reported: images/s (images / wall time of the
child, pool start-up and final assembly included) and peak RSS: ``ru_maxrss`` from ``os.wait4``
of the child (the largest of the child and its waited-for workers), plus the main process's own
VmHWM (reported by a wrapper). The benchmark parent imports neither numpy nor cv2 (images are
generated in a separate child), so the children do not inherit a large pre-exec ``ru_maxrss``.

    .venv/bin/python bench/convert.py                  # ~2.5 min on 2 cores
    .venv/bin/python bench/convert.py --n 2000 --keep  # quicker; keep the generated images

Images are smooth synthetic scenes (gradients, shapes, light noise), about 40-60 KB each as JPEG,
cached in ``--data`` (default /tmp/syphus-bench-convert-<n>) and reused when the count matches.
Results go to ``bench/results/convert.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, machine, write_json  # noqa: E402

GENERATE = r"""
import os, sys
from concurrent.futures import ProcessPoolExecutor
import numpy as np, cv2

def make(args):
    folder, start, stop = args
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        y, x = np.mgrid[0:480, 0:640].astype(np.float32)
        c = rng.uniform(0, 255, 3)
        img = np.stack([(c[k] + 80 * np.sin(x / rng.uniform(40, 200) + y / rng.uniform(40, 200) + k)) for k in range(3)], -1)
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(6):
            p = tuple(int(v) for v in rng.integers(0, 640, 2)); r = int(rng.integers(10, 120))
            cv2.circle(img, p, r, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
        cv2.imwrite(os.path.join(folder, f"{i:06d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])

folder, n = sys.argv[1], int(sys.argv[2])
step = 250
with ProcessPoolExecutor() as pool:
    list(pool.map(make, [(folder, s, min(n, s + step)) for s in range(0, n, step)]))
"""

WRAP = r"""
import runpy, sys, atexit
def hwm():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                sys.stderr.write("VMHWM_KB " + line.split()[1] + "\n")
    except OSError:
        pass
atexit.register(hwm)
sys.argv = ["syphus", "convert"] + sys.argv[1:]
runpy.run_module("syphus", run_name="__main__", alter_sys=True)
"""


def ensure_data(folder: Path, n: int) -> float:
    if folder.is_dir() and sum(1 for p in folder.iterdir() if p.suffix == ".jpg") == n:
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run([PY, "-c", GENERATE, str(folder), str(n)], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def leg(data: Path, workers: int, out_dir: Path, n: int) -> dict:
    out = out_dir / f"VST_w{workers}.json"
    args = ["--scene", "VST", "--images", str(data), "--out", str(out), "--workers", str(workers)]
    command = f"python -m syphus convert {' '.join(args)}"
    logs = out_dir / f"log_w{workers}"
    with open(logs.with_suffix(".out"), "w") as so, open(logs.with_suffix(".err"), "w") as se:
        t0 = time.perf_counter()
        proc = subprocess.Popen([PY, "-c", WRAP, *args], cwd=ROOT, stdout=so, stderr=se)
        _, status, rusage = os.wait4(proc.pid, 0)  # reap here to get the child's rusage
        elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = logs.with_suffix(".out").read_text(), logs.with_suffix(".err").read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"{command} exited {proc.returncode}: {stderr[-2000:]}")
    hwm = next((int(line.split()[1]) for line in stderr.splitlines() if line.startswith("VMHWM_KB")), None)
    lines = [line for line in stdout.splitlines() if line.startswith("convert:")]
    size = out.stat().st_size
    out.unlink()
    return {"workers": workers, "command": command, "images": n, "elapsed_s": round(elapsed, 2),
            "images_per_s": round(n / elapsed, 1), "ru_maxrss_kib": rusage.ru_maxrss, "main_vmhwm_kib": hwm,
            "out_bytes": size, "log_tail": lines[-2:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the generated images")
    a = ap.parse_args(argv)
    data = a.data or Path(tempfile.gettempdir()) / f"syphus-bench-convert-{a.n}"
    gen_s = ensure_data(data, a.n)
    jpeg_bytes = sum(p.stat().st_size for p in data.iterdir())
    cores = os.cpu_count() or 1
    results = []
    with tempfile.TemporaryDirectory(prefix="syphus-bench-out-") as tmp:
        for w in (cores, 1):
            r = leg(data, w, Path(tmp), a.n)
            results.append(r)
            print(f"workers={w}: {r['images_per_s']} images/s ({r['elapsed_s']} s), peak RSS ru_maxrss "
                  f"{r['ru_maxrss_kib'] / 1024:.1f} MiB, main VmHWM {(r['main_vmhwm_kib'] or 0) / 1024:.1f} MiB, "
                  f"out {r['out_bytes'] / 1e6:.0f} MB", flush=True)
    if not a.keep:
        shutil.rmtree(data, ignore_errors=True)
    payload = {"benchmark": "convert", "machine": machine(),
               "setup": (f"{a.n} generated 640x480 JPEG images (mean {jpeg_bytes / a.n / 1024:.0f} KiB) -> "
                         "--out JSON of 224x224 PNG, fresh child per leg"),
               "generate_s": round(gen_s, 1), "results": results,
               "speedup_all_cores": round(results[0]["images_per_s"] / results[1]["images_per_s"], 2)}
    path = write_json("convert.json", payload)
    print(f"| workers | images/s | time | peak RSS (ru_maxrss) | main VmHWM |\n|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['workers']} | {r['images_per_s']} | {r['elapsed_s']} s | {r['ru_maxrss_kib'] / 1024:.1f} MiB "
              f"| {(r['main_vmhwm_kib'] or 0) / 1024:.1f} MiB |")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
