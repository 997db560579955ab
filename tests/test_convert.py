"""syphus convert: ids per scene, sizes, padding, frame sampling, parquet, resume, skips, flat memory.

Everything is generated here with numpy + cv2 (no downloads). Nothing waits on the wall clock:
slow or failing runs come from the deterministic encoders below (convert(..., encoder=...)),
and progress lines are timed by a fake clock.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")

from syphus.cli import convert as cli  # noqa: E402
from syphus.cli.convert import Printer, convert_main  # noqa: E402
from syphus.release.convert import (Encoder, Interrupted, Progress, Skipped, Started, convert,  # noqa: E402
                                    frames, parts as parts_module)

ROOT = Path(__file__).resolve().parent.parent


# Encoders that stand in for the default one. They are module-level, so they pickle into the
# worker processes (where each worker holds its own copy, and so its own call count).

@dataclass(frozen=True)
class FailOnWidth:
    """Encodes like the default, but fails (ValueError, as a real encoder would) on images ``width`` wide."""

    width: int

    def __call__(self, img) -> bytes:
        if img.shape[1] == self.width:
            raise ValueError(f"cannot encode a {self.width} px wide image")
        return Encoder()(img)


class StopAfter:
    """Encodes ``n`` images in its process, then stops it: "interrupt" raises KeyboardInterrupt (Ctrl-C),
    "kill" sends SIGKILL to the whole process group (the converter and all its workers)."""

    def __init__(self, n: int, how: str):
        self.n, self.how, self.calls = n, how, 0

    def __call__(self, img) -> bytes:
        self.calls += 1
        if self.calls > self.n:
            if self.how == "kill":
                os.killpg(os.getpgrp(), signal.SIGKILL)
            raise KeyboardInterrupt
        return Encoder()(img)


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
        assert [round(v / 7) for v in levels] == frames.even(35, 16)  # 0, 2, 5, ... 34 (two task groups)


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
    monkeypatch.setattr(frames, "probe", lambda path: (0.0, 0))
    for rate, n in ((["--fps", "1"], 4), (["--frames", "5"], 5)):
        out = tmp_path / "x.json"
        rc, _ = run("--scene", "DC", "--videos", tmp_path / "v", "--out", out, "--workers", "1", *rate)
        assert rc == 0
        assert list(json.loads(out.read_text())) == [f"DC_IMG_clip_{k:04d}" for k in range(n)]


def test_parquet_equals_json(tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    monkeypatch.setattr(parts_module, "SORT_CHUNK", 7)  # exercise the external merge sort of the assembly
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


KILLED_RUN = """
import sys
from pathlib import Path
from syphus.release.convert import convert
from tests.test_convert import StopAfter
convert("VST", images=Path(sys.argv[1]), out=Path(sys.argv[2]), workers=2, encoder=StopAfter(10, "kill"))
"""


def test_resume_after_sigkill(tmp_path):
    total = 60
    write_images(tmp_path / "img", {f"{i:03d}.png": (20, 20) for i in range(total)})
    out = tmp_path / "VST.json"
    parts = tmp_path / "VST.json.parts" / "parts.jsonl"
    # each of the 2 workers encodes 10 images, and the first to reach its 11th kills the group
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / "img"), str(out)], cwd=ROOT,
                          stdout=subprocess.DEVNULL, start_new_session=True)
    assert proc.returncode == -signal.SIGKILL
    before = _lines(parts)
    assert 10 <= before <= 20 and not out.exists()
    with parts.open("ab") as f:
        f.write(b'{"id": "VST_IMG_999", "base64": "iVBO')  # a torn last line
    rc, log = run("--scene", "VST", "--images", tmp_path / "img", "--out", out, "--workers", "2")
    assert rc == 0
    assert f"resuming, {before} images already done" in log
    assert f"({total - before} encoded in this run, {before} from an earlier run)" in log
    data = json.loads(out.read_text())
    assert sorted(data) == [f"VST_IMG_{i:03d}" for i in range(total)]
    assert not parts.parent.exists()


def test_interrupt_then_resume(tmp_path):
    write_images(tmp_path / "img", {f"{i:02d}.png": (12, 12) for i in range(9)})
    out = tmp_path / "VST.json"
    with pytest.raises(Interrupted) as stopped:
        convert("VST", images=tmp_path / "img", out=out, workers=1, encoder=StopAfter(5, "interrupt"),
                on_event=lambda event: None)
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert stopped.value.progress == Progress(inputs=4, total=9, unit="images", images=4)  # one task of 4 done
    assert stopped.value.parts == tmp_path / "VST.json.parts" / "parts.jsonl"
    assert _lines(stopped.value.parts) == 5 and not out.exists()
    rc, log = run("--scene", "VST", "--images", tmp_path / "img", "--out", out, "--workers", "1")
    assert rc == 0 and "resuming, 5 images already done" in log and "(4 encoded in this run, 5 from" in log
    assert sorted(json.loads(out.read_text())) == [f"VST_IMG_{i:02d}" for i in range(9)]


def test_cli_reports_an_interrupt(tmp_path, monkeypatch):
    parts = tmp_path / "DC.json.parts" / "parts.jsonl"

    def interrupted(*args, **kwargs):
        raise Interrupted(Progress(3, 10, "videos", 24), parts)

    monkeypatch.setattr(cli, "convert", interrupted)
    now = iter([0.0, 8.0])  # the printer's clock, read when it starts and for the line: 24 images in 8 s
    log = io.StringIO()
    rc = convert_main(["--scene", "DC", "--videos", str(tmp_path), "--out", str(tmp_path / "DC.json")], log,
                      clock=lambda: next(now))
    assert rc == 130
    assert log.getvalue() == (f"convert: interrupted (3/10 videos, 24 images encoded, 3.0 images/s); "
                              f"run the same command again to resume from {parts}\n")


def test_failing_encoder_skips_the_image_and_convert_never_prints(tmp_path, capsys):
    write_images(tmp_path / "img", {"a.png": (10, 10), "b.png": (10, 30), "c.png": (10, 10)})
    events = []
    result = convert("CGD", images=tmp_path / "img", out=tmp_path / "CGD.json", parquet=tmp_path / "CGD.parquet",
                     workers=2, encoder=FailOnWidth(30), on_event=events.append)
    broken = str(tmp_path / "img" / "b.png")
    assert result.skipped == [(broken, "cannot encode a 30 px wide image")]
    assert (result.written, result.encoded, result.resumed) == (2, 2, 0)
    assert result.outputs == (tmp_path / "CGD.json", tmp_path / "CGD.parquet")
    assert result.skipped_file.read_text() == f"{broken}\tcannot encode a 30 px wide image\n"
    assert sorted(json.loads((tmp_path / "CGD.json").read_text())) == ["CGD_IMG_a", "CGD_IMG_c"]
    assert events[0] == Started(0, tmp_path / "CGD.json.parts" / "parts.jsonl")
    assert Skipped(broken, "cannot encode a 30 px wide image") in events
    assert events[-1] == Progress(3, 3, "images", 2, final=True)
    assert capsys.readouterr() == ("", "")


def test_progress_lines_follow_the_clock():
    now = [100.0]
    out = io.StringIO()
    printer = Printer(out, every=5.0, clock=lambda: now[0])
    printer(Started(12, Path("x.parts/parts.jsonl")))
    for t, images in ((101.0, 4), (104.9, 8), (105.0, 10), (107.0, 12), (109.9, 14)):
        now[0] = t
        printer(Progress(images // 2, None, "images", images))
    printer(Skipped("a.png", "not an image OpenCV can decode"))
    now[0] = 110.0
    printer(Progress(8, 8, "images", 16, final=True))
    assert out.getvalue().splitlines() == [
        "convert: resuming, 12 images already done in x.parts/parts.jsonl",
        "convert: 5/? images, 10 images encoded, 2.0 images/s",  # 5 s after the start
        "skipped a.png: not an image OpenCV can decode",
        "convert: 8/8 images, 16 images encoded, 1.6 images/s",  # the final line, whenever it comes
    ]


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
from syphus.cli.convert import convert_main
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


def test_public_frame_layouts(tmp_path):
    """ScanNet's scene*/color/*.jpg and TVQA's *_frames/<clip>/*.jpg: two scans or clips never collide."""
    scans = {f"scannet/scene000{s}_00/color/{k:06d}.jpg": (48, 64) for s in (0, 1) for k in (0, 20)}
    write_images(tmp_path / "sn", {**scans, "scannet/scene0000_00/depth/000000.jpg": (48, 64)})
    rc, log = run("--scene", "SN", "--images", tmp_path / "sn", "--out", tmp_path / "SN.json", "--workers", "1")
    assert rc == 1 and "not in ScanNet's <scan>/color/<frame>.jpg" in log  # the depth image is named
    assert sorted(json.loads((tmp_path / "SN.json").read_text())) == [
        "SN_IMG_scene0000_00_color_000000", "SN_IMG_scene0000_00_color_000020",
        "SN_IMG_scene0001_00_color_000000", "SN_IMG_scene0001_00_color_000020"]
    clips = {f"friends_frames/{c}/{k:05d}.jpg": (48, 64) for c in ("friends_s01e01_seg02_clip_00",
                                                                   "friends_s01e01_seg02_clip_01") for k in (1, 2)}
    write_images(tmp_path / "tv", clips)
    rc, log = run("--scene", "TVC", "--images", tmp_path / "tv", "--out", tmp_path / "TVC.json", "--workers", "1")
    assert rc == 0, log
    ids = sorted(json.loads((tmp_path / "TVC.json").read_text()))
    assert ids == [f"TVC_IMG_friends_s01e01_seg02_clip_0{c}_000{k}" for c in (0, 1) for k in (1, 2)]
    from syphus.engine.scenes import image_id_problem
    assert all(image_id_problem(i, "TVC") is None for i in ids)


def overstate(path: Path, by: int = 1) -> None:
    """Make the AVI header claim ``by`` more frames than the file holds (its stream length, dwLength)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"strh") + 8 + 32
    data[at:at + 4] = (int.from_bytes(data[at:at + 4], "little") + by).to_bytes(4, "little")
    path.write_bytes(bytes(data))


def record(path: Path) -> tuple[list[dict], dict[str, dict]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted((r for r in rows if "id" in r), key=lambda r: r["id"]), {r["video"]: r for r in rows if "written" in r}


def test_a_header_that_overstates_the_length_loses_no_frame(tmp_path):
    write_video(tmp_path / "v" / "clip.avi", n=16)
    overstate(tmp_path / "v" / "clip.avi")
    assert frames.probe(tmp_path / "v" / "clip.avi") == (10.0, 17)  # the container claims 17, 16 decode
    rc, log = run("--scene", "TVC", "--videos", tmp_path / "v", "--frames", "16", "--out", tmp_path / "TVC.json")
    assert rc == 0, log
    data = json.loads((tmp_path / "TVC.json").read_text())
    assert list(data) == [f"TVC_IMG_clip_{k:04d}" for k in range(16)]  # _0015 is there
    planned = frames.even(17, 16)
    levels = [round(decode(b64).mean() / 7) for b64 in data.values()]
    assert levels == planned[:-1] + [15]  # the last sample repeats the last decodable frame
    rows, videos = record(tmp_path / "TVC.frames.jsonl")
    assert [r["repeat"] for r in rows][-2:] == [False, True] and rows[-1]["source_frame"] == 15
    assert rows[-1]["t"] == 1.5 and rows[3]["t"] == planned[3] / 10
    assert videos["clip"] == {"video": "clip", "path": str(tmp_path / "v" / "clip.avi"), "asked": 16,
                              "written": 16, "repeated": 1}
    assert f"short video {tmp_path / 'v' / 'clip.avi'}: 16 frames asked, 16 written, 1 of them repeat" in log
    assert "1 videos, 16 frames asked, 16 written (1 repeat" in log


@pytest.mark.parametrize("sequential", [False, True])
def test_a_short_video_asked_for_more_frames_gives_every_sample(tmp_path, monkeypatch, sequential):
    write_video(tmp_path / "v" / "short.avi", n=27)
    if sequential:  # no rate or length in the metadata: read in order
        monkeypatch.setattr(frames, "probe", lambda path: (0.0, 0))
    rc, log = run("--scene", "DC", "--videos", tmp_path / "v", "--frames", "64", "--out", tmp_path / "DC.json",
                  "--workers", "2")
    assert rc == 0, log
    data = json.loads((tmp_path / "DC.json").read_text())
    assert len(data) == 64
    assert [round(decode(b64).mean() / 7) for b64 in data.values()] == frames.even(27, 64)
    rows, videos = record(tmp_path / "DC.frames.jsonl")
    assert sorted(r["id"] for r in rows) == list(data)
    assert videos["short"]["written"] == 64 and videos["short"]["repeated"] == 64 - 27
    assert "64 frames asked, 64 written, 37 of them repeat" in log


def test_the_record_gives_each_frame_its_real_time(tmp_path):
    write_video(tmp_path / "v" / "v1.avi", n=36)  # 10 fps, 3.6 s
    rc, _ = run("--scene", "DC", "--videos", tmp_path / "v", "--fps", "0.5", "--parquet", tmp_path / "DC.parquet")
    assert rc == 0
    from syphus.engine.samples import frame_times
    assert frame_times(tmp_path / "DC.parquet") == {"DC_IMG_v1_0000": 0.0, "DC_IMG_v1_0001": 2.0}


def test_parquet_by_default(tmp_path, monkeypatch):
    pd = pytest.importorskip("pandas")
    write_images(tmp_path / "img", {"42.png": (20, 30)})
    monkeypatch.chdir(tmp_path)
    rc, log = run("--scene", "VST", "--images", tmp_path / "img", "--workers", "1")
    assert rc == 0 and f"to {tmp_path / 'VST.parquet'}" in log, log
    assert decode(pd.read_parquet(tmp_path / "VST.parquet").loc["VST_IMG_42"]["base64"]).shape == (224, 224, 3)
    assert not (tmp_path / "VST.json").exists()
