"""Benchmark: `syphus export` and `syphus validate` on 10^6 instructions; time and peak memory.

    .venv/bin/python bench/release.py                 # 10^6 instructions (200,000 queries x 5 pairs)
    .venv/bin/python bench/release.py --queries 20000 # a quick check

A synthetic run folder (pairs.jsonl + meta.json, scene DC, 4 frames per video)
and an image file with every frame id are generated first (not timed). Each
command then runs as its own child process; its wall time and peak RSS
(``ru_maxrss`` of that child) are reported next to the size of the files it read.
Target: each under a minute, peak memory well under the instruction file's size.
Results go to bench/results/release.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, machine, write_json  # noqa: E402

FRAMES = 4  # frames per video; with 5 pairs per video the instruction file is ~0.35 KB an instruction


def generate(folder: Path, queries: int) -> tuple[Path, Path]:
    run = folder / "output" / "DC" / "v1"
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"dataset": {"name": "DC", "scene": "DC"}}))
    with (run / "pairs.jsonl").open("w") as f:
        for q in range(queries):
            vid = f"v_{q:09d}"
            pairs = [{"instruction": f"What does the person in video {vid} do at step {k}?",
                      "answer": f"At step {k} the person picks up a red cup and walks to the window, then puts "
                                "the cup down next to a plant."} for k in range(5)]
            f.write(json.dumps({"id": vid, "pairs": pairs, "raw": "x" * 200, "finish_reason": "stop",
                                "usage": {"prompt_tokens": 500, "completion_tokens": 300},
                                "meta": {"image_prefix": f"DC_IMG_{vid}_",
                                         "image_ids": [f"DC_IMG_{vid}_{i:04d}" for i in range(FRAMES)]}}) + "\n")
    images = folder / "DC.json"
    with images.open("w") as f:
        f.write("{")
        for q in range(queries):
            for i in range(FRAMES):
                f.write(("" if q == i == 0 else ",") + f'"DC_IMG_v_{q:09d}_{i:04d}": "iVBORw0KGgo="')
        f.write("}")
    return run, images


def measure(cmd: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    # ru_maxrss of children is the max over all children so far; each command runs once, largest last is fine
    return {"seconds": round(elapsed, 1), "peak_rss_mb": round(max(peak, before) / 1024, 1),
            "child_peak_rss_mb_is_max_so_far": True, "stdout_tail": proc.stdout.strip().splitlines()[-3:]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=200_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"generating {a.queries} queries x 5 pairs ...", flush=True)
        run, images = generate(folder, a.queries)
        out = folder / "release"
        results = {"instructions": a.queries * 5, "frames": a.queries * FRAMES,
                   "pairs_jsonl_mb": round((run / "pairs.jsonl").stat().st_size / 2**20, 1),
                   "image_file_mb": round(images.stat().st_size / 2**20, 1)}
        # validate runs first, in its own child, so its ru_maxrss is its own
        export_cmd = [PY, "main.py", "export", str(run), "--images", str(images), "--out", str(out), "--no-parquet"]
        results["export"] = measure(export_cmd)
        ins = out / "DC_instructions.json"
        results["instructions_json_mb"] = round(ins.stat().st_size / 2**20, 1)
        validate_cmd = [PY, "-c", "import resource, sys; from syphus.cli import main; code = main(sys.argv[1:]); "
                        "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)",
                        "validate", str(ins), "--train", str(out / "DC_train.json"), "--images", str(images)]
        v = measure(validate_cmd)
        own = [line for line in v["stdout_tail"] if line.startswith("peak_rss_kb")]
        if own:
            v["peak_rss_mb"] = round(int(own[0].split()[1]) / 1024, 1)
            v.pop("child_peak_rss_mb_is_max_so_far")
        results["validate"] = v
        results["export"]["peak_rss_mb_note"] = "ru_maxrss of the export child"
    results["command"] = "python bench/release.py --queries %d" % a.queries
    results["machine"] = machine()
    print(json.dumps(results, indent=2))
    write_json("release.json", results)


if __name__ == "__main__":
    main()
