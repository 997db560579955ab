"""Helpers shared by the benchmarks (not a benchmark, not a plugin).

The fake server always runs in its own process (``python -m tests.fakeserver``,
cwd = the project root). On a machine with 2+ cores the server is pinned to the
last core and the benchmark process to the others, so the two never compete.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PY = sys.executable
DATASET_OVERRIDES = {"name": "Bench.bench", "datasets_dir": "bench/datasets",
                     "prompt_path": "bench/prompts/bench.json"}


def cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


_CPUS_AT_START = cpus()  # before pin_self() narrows this process to the client cores


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(server cpus, client cpus), or (None, None) when not pinning."""
    cs = _CPUS_AT_START
    if not pin or len(cs) < 2 or not hasattr(os, "sched_setaffinity"):
        return None, None
    return {cs[-1]}, set(cs[:-1])


def pin_self(client_cpus: set[int] | None) -> None:
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)


class FakeServer:
    """``python -m tests.fakeserver ...`` as a subprocess; ``url`` is the root, ``base_url`` ends in /v1."""

    def __init__(self, *, latency: float = 0.0, rpm: float | None = None, tpm: float | None = None,
                 enforce: str = "minute", server_cpus: set[int] | None = None, count_schema: bool = False):
        self.args = ["--port", "0", "--latency", str(latency), "--enforce", enforce]
        if count_schema:
            self.args.append("--count-schema")
        if rpm:
            self.args += ["--rpm", str(rpm)]
        if tpm:
            self.args += ["--tpm", str(tpm)]
        self.server_cpus = server_cpus
        self.proc: subprocess.Popen | None = None
        self.url = ""

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> "FakeServer":
        cpus = self.server_cpus
        pre = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.proc = subprocess.Popen([PY, "-m", "tests.fakeserver", *self.args], cwd=ROOT,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=pre)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"fake server did not start (said {line!r})")
        self.url = line.split(" ", 1)[1]
        return self

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    n = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def engine_fingerprint() -> dict:
    """Which engine code ran (the tree changes under the benchmarks): a hash of syphus/*.py and the newest mtime."""
    import hashlib
    files = sorted((ROOT / "syphus").glob("*.py"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    newest = max(files, key=lambda f: f.stat().st_mtime)
    return {"syphus_sha256": h.hexdigest()[:16], "newest_file": newest.name,
            "newest_mtime": datetime.fromtimestamp(newest.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")}


_ENGINE_AT_START = engine_fingerprint()


def machine() -> dict:
    end = engine_fingerprint()
    return {"engine_at_start": _ENGINE_AT_START, "engine_changed_during_run": end != _ENGINE_AT_START,
            **({"engine_at_end": end} if end != _ENGINE_AT_START else {}), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cpus": len(_CPUS_AT_START), "cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_json(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def timer():
    box = {}
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - t0


def write_images(path: Path, count: int, side: int) -> int:
    """``count`` distinct PNGs of ``side`` px written to ``path`` as ``{"BN_IMG_000000": base64, ...}``;
    the total base64 characters."""
    import base64

    import cv2
    import numpy as np

    y, x = np.mgrid[0:side, 0:side]
    total = 0
    with path.open("w") as f:
        f.write("{")
        for k in range(count):
            pixels = np.dstack([(x + k) % 256, (y * 2 + k) % 256, (x + y + 3 * k) % 256]).astype(np.uint8)
            data = base64.b64encode(cv2.imencode(".png", pixels)[1].tobytes()).decode()
            total += len(data)
            f.write(("," if k else "") + json.dumps(f"BN_IMG_{k:06d}") + ":" + json.dumps(data))
        f.write("}")
    return total

