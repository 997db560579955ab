"""syphus convert: ids per scene, sizes, padding, frame sampling, parquet, resume, skips, flat memory.

Everything is generated here with numpy + cv2 (no downloads).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")

from syphus.release import convert as conv  # noqa: E402
from syphus.release.convert import convert_main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str]:
    stream = io.StringIO()
    rc = convert_main([str(a) for a in argv], stream)
    return rc, stream.getvalue()


def decode(b64: str):
    return cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_COLOR)


def write_images(folder: Path, names_sizes: dict[str, tuple[int, int]], value: int | None = None) -> None:
    rng = np.random.default_rng(0)
    for name, (h, w) in names_sizes.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        img = np.full((h, w, 3), value, np.uint8) if value is not None else rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        assert cv2.imwrite(str(path), img)


def write_video(path: Path, fps: float = 10, n: int = 35, size=(64, 48)) -> None:
    """MJPG .avi, frame i filled with gray level 7*i (so a sampled frame tells its index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((size[1], size[0], 3), 7 * i, np.uint8))
    vw.release()


def test_image_ids_sizes_and_skip(tmp_path):
    write_images(tmp_path / "img", {"COCO_train2014_000000498792.jpg": (100, 200), "sub/42.png": (300, 150),
                                    "7.bmp": (20, 30)})
    (tmp_path / "img" / "broken.jpg").write_bytes(b"not an image at all")
    (tmp_path / "img" / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "LA.json"
    rc, log = run("--scene", "LA", "--images", tmp_path / "img", "--out", out, "--workers", "1")
    assert rc == 1  # one unreadable file
    data = json.loads(out.read_text())
    assert sorted(data) == ["LA_IMG_000000000007", "LA_IMG_000000000042", "LA_IMG_000000498792"]
    for b64 in data.values():
        assert decode(b64).shape == (224, 224, 3)
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    broken = tmp_path / "img" / "broken.jpg"
    assert f"skipped {broken}: " in log
    assert str(broken) in (tmp_path / "LA.json.skipped.txt").read_text()
    assert not (tmp_path / "LA.json.parts").exists()

    rc, _ = run("--scene", "VST", "--images", tmp_path / "img" / "sub", "--out", tmp_path / "VST.json",
                "--format", "jpeg", "--size", "64")
    assert rc == 0
    [(k, v)] = json.loads((tmp_path / "VST.json").read_text()).items()
    assert k == "VST_IMG_42" and base64.b64decode(v)[:2] == b"\xff\xd8" and decode(v).shape == (64, 64, 3)
    assert not (tmp_path / "VST.json.skipped.txt").exists()


def test_keep_aspect_pads(tmp_path):
    write_images(tmp_path / "img", {"wide.png": (100, 200)}, value=255)
    rc, _ = run("--scene", "CGD", "--images", tmp_path / "img", "--out", tmp_path / "a.json", "--keep-aspect")
    assert rc == 0
    img = decode(json.loads((tmp_path / "a.json").read_text())["CGD_IMG_wide"])
    assert img.shape == (224, 224, 3)
    assert img[:50].max() == 0 and img[-50:].max() == 0  # padded top and bottom (image is 224x112)
    assert img[60:160].min() == 255
    rc, _ = run("--scene", "CGD", "--images", tmp_path / "img", "--out", tmp_path / "b.json")
    assert decode(json.loads((tmp_path / "b.json").read_text())["CGD_IMG_wide"]).min() == 255  # stretched


def test_coco_and_pairs(tmp_path):
    write_images(tmp_path / "coco" / "val2017", {"000000000139.jpg": (40, 60), "000000000285.jpg": (60, 40)})
    ann = tmp_path / "instances_val2017.json"
    ann.write_text(json.dumps({"images": [{"id": 139, "file_name": "000000000139.jpg"},
                                          {"id": 285, "file_name": "000000000285.jpg"}], "annotations": []}))
    rc, _ = run("--scene", "LA", "--coco", tmp_path / "coco", "--annotations", ann, "--out", tmp_path / "LA.json")
    assert rc == 0
    assert sorted(json.loads((tmp_path / "LA.json").read_text())) == ["LA_IMG_000000000139", "LA_IMG_000000000285"]
    rc, _ = run("--scene", "CGD", "--coco", tmp_path / "coco", "--annotations", ann, "--out", tmp_path / "CGD.json")
    assert sorted(json.loads((tmp_path / "CGD.json").read_text())) == ["CGD_IMG_000000000139", "CGD_IMG_000000000285"]

    write_images(tmp_path / "sd", {"a1.png": (30, 30), "a2.png": (30, 40), "b1.png": (10, 10), "b2.png": (12, 9)})
    pairs = tmp_path / "sd" / "pairs.json"
    pairs.write_text(json.dumps([[12, "a1.png", "a2.png"], ["345", "b1.png", "b2.png"]]))
    rc, _ = run("--scene", "SD", "--pairs", pairs, "--out", tmp_path / "SD.json")
    assert rc == 0
    assert sorted(json.loads((tmp_path / "SD.json").read_text())) == [
        "SD_IMG_00012_1", "SD_IMG_00012_2", "SD_IMG_00345_1", "SD_IMG_00345_2"]


def test_user_errors(tmp_path):
    rc, log = run("--scene", "XX", "--images", tmp_path, "--out", tmp_path / "x.json")
    assert rc == 2 and log.startswith("error: ") and "--scene" in log
    rc, log = run("--scene", "DC", "--images", tmp_path / "nope", "--out", tmp_path / "x.json")
    assert rc == 2 and log.startswith("error: ") and "nope" in log
    (tmp_path / "d").mkdir()
    rc, log = run("--scene", "DC", "--images", tmp_path / "d")
    assert rc == 2 and "--out" in log
    rc, log = run("--scene", "LA", "--pairs", tmp_path / "p.json", "--out", tmp_path / "x.json")
    assert rc == 2 and "--scene SD" in log
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps([["x", "a", "b"]]))
    rc, log = run("--scene", "SD", "--pairs", bad, "--out", tmp_path / "x.json")
    assert rc == 2 and "entry 1 is" in log  # counted from 1


@pytest.mark.parametrize("rate,expected", [(["--fps", "1"], [0, 10, 20, 30]), (["--fps", "0.5"], [0, 20]),
                                           (["--frames", "16"], None)])
def test_video_sampling(tmp_path, rate, expected):
    write_video(tmp_path / "v" / "clip1.avi")  # 10 fps, 3.5 s
    (tmp_path / "v" / "broken.mp4").write_bytes(b"\0" * 100)
    out = tmp_path / "DC.json"
    rc, log = run("--scene", "DC", "--videos", tmp_path / "v", "--out", out, "--workers", "2", *rate)
    assert rc == 1 and f"skipped {tmp_path / 'v' / 'broken.mp4'}" in log
    data = json.loads(out.read_text())
    n = len(expected) if expected else 16
    assert list(data) == [f"DC_IMG_clip1_{k:04d}" for k in range(n)]
    levels = [int(round(decode(b64).mean())) for b64 in data.values()]
    assert all(decode(b64).shape == (224, 224, 3) for b64 in data.values())
    if expected:  # frame k is the one at t = k / fps
        assert [round(v / 7) for v in levels] == expected
    else:
        assert [round(v / 7) for v in levels] == conv._even(35, 16)  # 0, 2, 5, ... 34 (two task groups)


def test_video_ids_per_scene_and_short_video(tmp_path):
    write_video(tmp_path / "v" / "scene0000_00.avi", n=3)  # 0.3 s: shorter than one sample
    ids = {}
    for scene in ("E4D", "TVC", "SN"):
        out = tmp_path / f"{scene}.json"
        assert run("--scene", scene, "--videos", tmp_path / "v", "--out", out)[0] == 0
        ids[scene] = list(json.loads(out.read_text()))
    assert ids == {"E4D": ["E4D_IMG_scene0000_00_00000000"], "TVC": ["TVC_IMG_scene0000_00_0000"],
                   "SN": ["SN_IMG_scene0000_00_color_000000"]}


def test_video_without_metadata_reads_sequentially(tmp_path, monkeypatch):
    write_video(tmp_path / "v" / "clip.avi")
    monkeypatch.setattr(conv, "_probe", lambda path: (0.0, 0))
    for rate, n in ((["--fps", "1"], 4), (["--frames", "5"], 5)):
        out = tmp_path / "x.json"
        rc, _ = run("--scene", "DC", "--videos", tmp_path / "v", "--out", out, "--workers", "1", *rate)
        assert rc == 0
        assert list(json.loads(out.read_text())) == [f"DC_IMG_clip_{k:04d}" for k in range(n)]


def test_parquet_equals_json(tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(conv, "SORT_CHUNK", 7)  # exercise the external merge sort of the assembly
    write_images(tmp_path / "img", {f"{i}.png": (10 + i, 30 - i) for i in range(20)})
    rc, _ = run("--scene", "VST", "--images", tmp_path / "img", "--out", tmp_path / "VST.json",
                "--parquet", tmp_path / "VST.parquet", "--workers", "2")
    assert rc == 0
    table = pq.read_table(tmp_path / "VST.parquet")
    assert table.column_names == ["id", "base64"]
    assert dict(zip(table.column("id").to_pylist(), table.column("base64").to_pylist())) == \
        json.loads((tmp_path / "VST.json").read_text())
    assert table.num_rows == 20
    assert table.column("id").to_pylist() == sorted(f"VST_IMG_{i}" for i in range(20))
    # parquet alone, small row groups
    rc, _ = run("--scene", "VST", "--images", tmp_path / "img", "--parquet", tmp_path / "only.parquet")
    assert rc == 0 and pq.read_table(tmp_path / "only.parquet").num_rows == 20


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_resume_after_sigkill(tmp_path):
    total = 60
    write_images(tmp_path / "img", {f"{i:03d}.png": (20, 20) for i in range(total)})
    out = tmp_path / "VST.json"
    parts = tmp_path / "VST.json.parts" / "parts.jsonl"
    cmd = [sys.executable, "-m", "syphus.release.convert", "--scene", "VST", "--images", str(tmp_path / "img"),
           "--out", str(out), "--workers", "2"]
    env = {**os.environ, conv._DELAY_ENV: "0.05"}  # test hook: slow each image so the kill lands mid-run
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while _lines(parts) < 15 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the converter and its workers
    proc.wait()
    before = _lines(parts)
    assert 15 <= before < total and not out.exists()
    with parts.open("ab") as f:
        f.write(b'{"id": "VST_IMG_999", "base64": "iVBO')  # a torn last line
    rc, log = run("--scene", "VST", "--images", tmp_path / "img", "--out", out, "--workers", "2")
    assert rc == 0
    assert f"resuming, {before} images already done" in log
    assert f"({total - before} encoded in this run, {before} from an earlier run)" in log
    data = json.loads(out.read_text())
    assert sorted(data) == [f"VST_IMG_{i:03d}" for i in range(total)]
    assert not parts.parent.exists()


def test_resume_refuses_other_settings(tmp_path):
    write_images(tmp_path / "img", {"1.png": (10, 10)})
    stale = tmp_path / "VST.json.parts"
    stale.mkdir()
    (stale / "settings.json").write_text(json.dumps({"scene": "VST", "size": 64}))
    rc, log = run("--scene", "VST", "--images", tmp_path / "img", "--out", tmp_path / "VST.json")
    assert rc == 2 and "other settings" in log and str(stale) in log


# The child reports its peak RSS. ru_maxrss survives execve on Linux (a child started from a
# big pytest process starts with the parent's peak), so the child reads VmHWM, the peak RSS of
# its own address space, and falls back to ru_maxrss where /proc is missing.
CHILD = """
import io, resource, sys
from syphus.release.convert import convert_main
rc = convert_main(sys.argv[1:], io.StringIO())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1])
except OSError:
    pass
print(rc, peak)
"""


def _peak(tmp_path: Path, n: int) -> int:
    folder = tmp_path / f"img{n}"
    rng = np.random.default_rng(n)
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:05d}.png"), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    res = subprocess.run([sys.executable, "-c", CHILD, "--scene", "VST", "--images", str(folder),
                          "--out", str(tmp_path / f"out{n}.json"), "--workers", "2"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    rc, peak = res.stdout.split()
    assert rc == "0"
    assert len(json.loads((tmp_path / f"out{n}.json").read_text())) == n
    return int(peak)


def test_memory_flat(tmp_path):
    small, big = _peak(tmp_path, 200), _peak(tmp_path, 2000)
    # peak RSS of the converting process (KiB), measured on the dev box (2 cores, --workers 2):
    # 200 images -> 53.2 MB, 2000 -> 54.1 MB: ratio 1.02 (20,000 -> 58.7 MB, 1.10)
    assert big <= 1.3 * small, (small, big)
