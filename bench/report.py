"""Benchmark: `syphus report` and `syphus export --dedup` on 10^5 and 10^6 instructions; time and peak memory.

    .venv/bin/python bench/report.py                      # 10^5 and 10^6 instructions (5 pairs a query)
    .venv/bin/python bench/report.py --n 100000           # 10^5 only (~1 minute)

A synthetic run folder is generated first (not timed): pairs.jsonl with 5 pairs a query (instructions
from 40 templates over a vocabulary of ~3,000 made-up words, so that texts share their structure
the way real instructions do; answers of 12-40 words), 1% of queries invalid and 1% errors, and
planted duplicates: 2% of instructions repeat an earlier one (case changed), 2% are near copies
(one word added or swapped). Each command then runs as its own child process; its wall time and
peak RSS (the child's own ``ru_maxrss``, from ``os.wait4``) are reported next to the size of what
it read. Target: minutes at 10^6, memory well under the input's size.
Results go to bench/results/report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PY, ROOT, machine, write_json  # noqa: E402

PAIRS = 5
SYLLABLES = ["ka", "lo", "mi", "ren", "to", "va", "shi", "dor", "pel", "ny", "qua", "bri", "sten", "fa", "gu",
             "ho", "jel", "wen", "zu", "tri"]
TEMPLATES = [
    "What is the {adj} {noun} doing in the {place}?", "What is the {noun} holding near the {noun2}?",
    "What color is the {noun} next to the {noun2}?", "What happens after the {noun} {verb}s the {noun2}?",
    "How many {noun}s are in the {place}?", "How does the {noun} {verb} the {adj} {noun2}?",
    "How would you describe the {noun} in the {place}?", "Why is the {noun} {verb}ing the {noun2}?",
    "Why might the {adj} {noun} be in the {place}?", "Where is the {noun} relative to the {noun2}?",
    "Where does the {noun} go after the {place}?", "When does the {noun} start to {verb}?",
    "Who is {verb}ing the {adj} {noun}?", "Which {noun} is closer to the {noun2}?",
    "Is the {noun} {verb}ing the {noun2} in the {place}?", "Are there any {adj} {noun}s near the {noun2}?",
    "Can you see the {noun} in the {place}?", "Does the {noun} {verb} the {noun2} before leaving?",
    "Could the {noun} be {verb}ing for the {noun2}?", "Should the {noun} {verb} the {adj} {noun2}?",
    "Describe the {adj} {noun} and the {noun2} in the {place}.", "Describe what the {noun} does with the {noun2}.",
    "Explain why the {noun} {verb}s the {noun2}.", "Explain the role of the {adj} {noun} in the {place}.",
    "List the objects the {noun} uses in the {place}.", "Identify the {noun} that {verb}s the {noun2}.",
    "Summarize what happens to the {noun} in the {place}.", "Compare the {noun} with the {adj} {noun2}.",
    "Count the {noun}s near the {noun2}.", "Tell me what the {noun} is {verb}ing.",
    "Imagine the {noun} {verb}s the {noun2}; what happens next?", "Suggest why the {noun} left the {place}.",
    "In the video, what does the {noun} do with the {noun2}?", "Based on the scene, why is the {noun} {adj}?",
    "According to the clip, where is the {adj} {noun}?", "Given the {place}, how does the {noun} {verb}?",
    "Please describe the {noun} near the {adj} {noun2}.", "Point out the {noun} in the {place}.",
    "Estimate how long the {noun} {verb}s the {noun2}.", "Predict what the {noun} will {verb} next.",
]


def _words(rng: random.Random, n: int, parts: int) -> list[str]:
    return sorted({"".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, parts))) for _ in range(n)})


VOCAB = random.Random(7)
NOUNS, ADJS, VERBS, PLACES = (_words(VOCAB, 1600, 3), _words(VOCAB, 400, 3), _words(VOCAB, 400, 2),
                              _words(VOCAB, 600, 3))


def instruction(rng: random.Random, scene: list[str]) -> str:
    return rng.choice(TEMPLATES).format(noun=rng.choice(scene), noun2=rng.choice(scene), adj=rng.choice(ADJS),
                                        verb=rng.choice(VERBS), place=rng.choice(PLACES))


def answer(rng: random.Random, scene: list[str]) -> str:
    body = " ".join(rng.choice(scene + ADJS[:50] + ["the", "a", "and", "is", "near", "with", "then"])
                    for _ in range(rng.randint(10, 38)))
    return f"The {rng.choice(scene)} {body}."


def generate(folder: Path, queries: int) -> Path:
    run = folder / "output" / "Bench" / "v1"
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"dataset": {"name": "Bench", "scene": "BN"},
                                               "config": {"endpoint": {"model": "gpt-4o-mini"}, "mode": "online"}}))
    recent: list[str] = []
    with (run / "pairs.jsonl").open("w") as good, (run / "invalid.jsonl").open("w") as bad, \
            (run / "errors.jsonl").open("w") as errors:
        for q in range(queries):
            rng = random.Random(q)
            qid = f"v_{q:09d}"
            roll = rng.random()
            if roll < 0.01:
                bad.write(json.dumps({"id": qid, "pairs": [], "raw": "I'm sorry, I cannot help with that.",
                                      "reason": "no 'Question:'/'Answer:' labels found",
                                      "usage": {"prompt_tokens": 480, "completion_tokens": 12}}) + "\n")
                continue
            if roll < 0.02:
                errors.write(json.dumps({"id": qid, "kind": rng.choice(["timeout", "server_error", "too_large"]),
                                         "message": "no reply", "status": None, "attempts": 8}) + "\n")
                continue
            scene = [rng.choice(NOUNS) for _ in range(4)]
            pairs = []
            for _ in range(PAIRS):
                pick = rng.random()
                if pick < 0.02 and recent:
                    text = rng.choice(recent).upper() if rng.random() < 0.3 else rng.choice(recent)
                elif pick < 0.04 and recent:
                    text = rng.choice(recent).rstrip("?.") + " " + rng.choice(["now", "here", "again"]) + "?"
                else:
                    text = instruction(rng, scene)
                    if len(recent) < 5000:
                        recent.append(text)
                    else:
                        recent[rng.randrange(5000)] = text
                pairs.append({"instruction": text, "answer": answer(rng, scene)})
            good.write(json.dumps({"id": qid, "pairs": pairs, "raw": "x" * 200, "finish_reason": "stop",
                                   "usage": {"prompt_tokens": 500, "completion_tokens": 300},
                                   "model": "gpt-4o-mini", "problems": []}) + "\n")
    return run


def measure(cmd: list[str]) -> dict:
    """Run ``cmd`` as a child; its wall time and its own peak RSS (os.wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}")
    return {"seconds": round(elapsed, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "stdout_tail": out.strip().splitlines()[-3:]}


def run_size(n: int) -> dict:
    queries = n // PAIRS
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"generating {queries:,} queries x {PAIRS} pairs ...", flush=True)
        run = generate(folder, queries)
        result: dict = {"queries": queries, "pairs_jsonl_mb": round((run / "pairs.jsonl").stat().st_size / 2**20, 1)}
        print("report ...", flush=True)
        result["report"] = measure([PY, "main.py", "report", str(run), "--out", str(folder / "report")])
        data = json.loads((folder / "report" / "report.json").read_text())
        result["instructions"] = data["sources"][0]["counts"]["pairs"]
        result["duplicates"] = {k: data["duplicates"][k] for k in ("threshold", "bands", "rows", "clusters",
                                                                    "near_duplicates", "exact_duplicates",
                                                                    "compared_pairs")}
        result["report_html_kb"] = round((folder / "report" / "index.html").stat().st_size / 1024, 1)
        print("export --dedup ...", flush=True)
        result["export_dedup"] = measure([PY, "main.py", "export", str(run), "--out", str(folder / "export"),
                                          "--no-parquet", "--dedup", str(data["duplicates"]["threshold"])])
        result["instructions_json_mb"] = round((folder / "export" / "BN_instructions.json").stat().st_size / 2**20, 1)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="100000,1000000", help="instructions, comma-separated (default 10^5 and 10^6)")
    a = ap.parse_args()
    results = {"sizes": {}}
    for n in [int(x) for x in a.n.split(",")]:
        results["sizes"][str(n)] = run_size(n)
        print(json.dumps(results["sizes"][str(n)], indent=2), flush=True)
    results["command"] = f"python bench/report.py --n {a.n}"
    results["machine"] = machine()
    write_json("report.json", results)


if __name__ == "__main__":
    main()
