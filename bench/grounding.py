"""The grounding check measured: precision and recall on a labelled set, and time and memory at scale.

    .venv/bin/python bench/grounding.py                    # precision / recall on tests/data/grounding_labels.jsonl
    .venv/bin/python bench/grounding.py --show             # ... and every miss and false flag
    .venv/bin/python bench/grounding.py --pairs 1000000    # a run folder of 10^6 pairs: time and peak memory

The labelled set: real-shape annotations (the repository's public-format samples, read by their plugins)
with answers written to be grounded (paraphrases) or ungrounded (one or two claims taken from other
records: objects, people, counts, colours, times, image references); see tests/data/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LABELS = ROOT / "tests" / "data" / "grounding_labels.jsonl"


def sample_annotations() -> dict[tuple[str, str], tuple[str, int | None]]:
    """{(dataset, id): (sentences, images)} for every sample query the repository's plugins read."""
    from syphus import plugins

    os.chdir(ROOT)
    out: dict[tuple[str, str], tuple[str, int | None]] = {}
    for name in plugins.available("datasets"):
        cls, path = plugins.resolve(name, "datasets")
        dataset = plugins.instantiate(cls, path)
        for item in dataset.iter_query_inputs(name, unique=False):
            key = (name, item["id"])
            text = item["sentences"] if key not in out else out[key][0] + "\n" + item["sentences"]
            out[key] = (text, len(item.get("image_ids") or []) or None)
    return out


def measure(labels: Path, show: bool = False) -> dict:
    """Precision and recall of 'ungrounded' (any unsupported term) on the labelled set, overall and by kind."""
    from syphus.release.grounding import Support, check

    notes = sample_annotations()
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    by_dataset: dict[str, Counter[str]] = defaultdict(Counter)
    misses, false_flags = [], []
    for row in rows:
        sentences, images = notes[(row["dataset"], row["id"])]
        g = check(row["answer"], row["question"], Support.of(sentences, images))
        flagged = not g.grounded
        kind = row["kind"]
        totals[kind] += 1
        hits[kind] += flagged
        by_dataset[row["dataset"]][row["label"]] += 1
        by_dataset[row["dataset"]][row["label"] + "_flagged"] += flagged
        if row["label"] == "ungrounded" and not flagged:
            misses.append((row, g))
        if row["label"] == "grounded" and flagged:
            false_flags.append((row, g))
    ungrounded = sum(1 for r in rows if r["label"] == "ungrounded")
    grounded = len(rows) - ungrounded
    caught = ungrounded - len(misses)
    flagged = caught + len(false_flags)
    result = {"rows": len(rows), "ungrounded": ungrounded, "grounded": grounded,
              "recall": round(caught / ungrounded, 4) if ungrounded else None,
              "false_flag_rate": round(len(false_flags) / grounded, 4) if grounded else None,
              "precision": round(caught / flagged, 4) if flagged else None,
              "flagged_by_kind": {k: f"{hits[k]}/{totals[k]}" for k in sorted(totals)},
              "by_dataset": {d: dict(c) for d, c in sorted(by_dataset.items())}}
    if show:
        for title, items in (("missed (ungrounded, not flagged)", misses), ("false flags (grounded, flagged)", false_flags)):
            print(f"-- {title}: {len(items)}")
            for row, g in items:
                print(f"  [{row['dataset']} {row['id']} {row['kind']}] {row['answer']!r} -> {list(g.unsupported)}"
                      f"  (note: {row.get('note') or ''})")
    return result


PLUGIN = '''
import json
from abstract_dataset import AbstractDataset


class BenchGrounding(AbstractDataset):
    def __init__(self, name="BenchGrounding", prompt_path="prompt.json", query_inputs_path="notes.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        notes = [json.loads(line) for line in open(path, encoding="utf-8")]
        for i in range({queries}):
            note = notes[i % len(notes)]
            yield {{"id": f"q{{i:08d}}", "sentences": note["sentences"], "image_ids": note["image_ids"]}}
'''


def build_run(folder: Path, pairs: int, labels: Path = LABELS) -> Path:
    """A project folder with a plugin of ``pairs // 4`` queries (the sample annotations cycled) and a run
    folder holding four answers per query (the labelled answers of the same annotation, cycled)."""
    notes = sample_annotations()
    rows = [json.loads(line) for line in labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_note: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        by_note[(row["dataset"], row["id"])].append({"instruction": row["question"], "answer": row["answer"]})
    keys = [k for k in by_note if k in notes]
    queries = pairs // 4
    (folder / "datasets").mkdir(parents=True)
    (folder / "datasets" / "benchg.py").write_text(PLUGIN.format(queries=queries))
    (folder / "prompt.json").write_text(json.dumps({"system_message": "Write pairs.", "in_context": []}))
    with (folder / "notes.jsonl").open("w") as f:
        for key in keys:
            text, images = notes[key]
            f.write(json.dumps({"sentences": text, "image_ids": [f"img{i}" for i in range(images or 0)]}) + "\n")
    run = folder / "output" / "BenchGrounding" / "v1"
    run.mkdir(parents=True)
    (run / "meta.json").write_text(json.dumps({"dataset": {
        "name": "BenchGrounding", "class": "BenchGrounding", "plugin": "datasets/benchg.py",
        "prompt_path": "prompt.json", "query_inputs_path": "notes.jsonl"}}))
    with (run / "pairs.jsonl").open("w") as f:
        for i in range(queries):
            answers = by_note[keys[i % len(keys)]]
            chosen = [answers[(i + j) % len(answers)] for j in range(4)]
            f.write(json.dumps({"id": f"q{i:08d}", "pairs": chosen}) + "\n")
    return run


def scale(pairs: int, labels: Path = LABELS) -> dict:
    """Time and peak memory of the report's grounding pass over a run folder of ``pairs`` pairs, in a fresh
    process (so the peak is this pass's own)."""
    with tempfile.TemporaryDirectory(prefix="syphus-bench-grounding-") as tmp:
        t0 = time.perf_counter()
        build_run(Path(tmp), pairs, labels)
        built = time.perf_counter() - t0
        code = ("import json, resource, sys, time; sys.path.insert(0, %r)\n"
                "from syphus.release.grounding import grounding_figure\n"
                "t = time.perf_counter(); g = grounding_figure(__import__('pathlib').Path('output/BenchGrounding/v1'), listing=__import__('pathlib').Path('grounding.jsonl'))\n"
                "print(json.dumps({'seconds': round(time.perf_counter() - t, 1), 'pairs': g['pairs'], "
                "'grounded_share': g['grounded_share'], "
                "'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))" % str(ROOT))
        out = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, check=True)
        return {"built_in_seconds": round(built, 1), **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", type=Path, default=LABELS)
    p.add_argument("--show", action="store_true", help="list every miss and false flag")
    p.add_argument("--pairs", type=int, nargs="*", help="time a run folder of this many pairs (e.g. 100000 1000000)")
    a = p.parse_args()
    if a.pairs:
        for n in a.pairs:
            print(json.dumps({"pairs_asked": n, **scale(n, a.labels)}))
        return
    print(json.dumps(measure(a.labels, a.show), indent=1))


if __name__ == "__main__":
    main()
