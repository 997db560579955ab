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
import re
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


# ---------------------------------------------------------------- a set generated from the annotations

_BOX_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\s*\[[-\d.,\s]+\]\s*$")
_STAMP = re.compile(r"\[[\d.]+s(?:\s*-\s*[\d.]+s)?\]\s*")
_HEAD = re.compile(r"^(?:image [ab]:|Album:.*|Description:\s*|Story \d+:\s*|Candidate activities:.*)", re.I)
NUMBERS = "two three four five six seven eight nine".split()
COLOURS = "red blue green yellow black white gray brown orange purple pink silver".split()
TIMED = {"dc.DC", "tvc.TVC", "e4d.E4D"}


def _sentences(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if _BOX_LINE.match(line):
            continue
        line = _HEAD.sub("", _STAMP.sub("", line)).strip()
        for part in re.split(r"(?<=[.!?])\s+| \. ", line):
            part = part.strip(" .")
            if len(part.split()) >= 4:
                out.append(part[0].upper() + part[1:] + ".")
    return out


def _absent(words: str, text: str) -> bool:
    low = text.lower()
    return all(w not in low for w in words.lower().split())


def generated(seed: int = 0) -> list[dict]:
    """Labelled answers built from the sample annotations themselves: grounded ones say an annotation's own
    sentences again (one, or two joined); ungrounded ones add one claim taken from another record: a COCO
    object or a TV character it never mentions, a changed count, a colour it never states, a moment past
    the clip, or 'the second image' of a single image. The absence of each added word is checked on the
    raw text (any substring), not by the checker's rules."""
    import random

    rng = random.Random(seed)
    notes = sample_annotations()
    seen_la: set[str] = set()
    keys = []
    for dataset, qid in sorted(notes):
        if dataset in ("sn.SN", "example.Example") or (dataset.startswith("la.") and qid in seen_la):
            continue
        seen_la.add(qid) if dataset.startswith("la.") else None
        keys.append((dataset, qid))
    # COCO's 'person' is left out: a person is supported by any man or woman the annotation has
    objects = sorted({m.group(1).lower() for text, _ in notes.values() for line in text.splitlines()
                      if (m := _BOX_LINE.match(line))} - {"person"})
    names = sorted({w for (d, _), (text, _) in notes.items() if d == "tvc.TVC"
                    for w in re.findall(r"\] ([A-Z][a-z]+) ", text)})
    rows = []
    for dataset, qid in keys:
        text, images = notes[(dataset, qid)]
        said = _sentences(text)
        if not said:
            continue
        times = [float(t) for t in re.findall(r"([\d.]+)s[\]\s-]", text)]

        def row(answer: str, label: str, kind: str, note: str = "") -> None:
            rows.append({"dataset": dataset, "id": qid, "question": "What can you tell about it?", "answer": answer,
                         "label": label, "kind": kind, "note": note})

        one = rng.choice(said)
        row(one, "grounded", "paraphrase")
        if len(said) > 1:
            a, b = rng.sample(said, 2)
            row(f"{a} {b}", "grounded", "paraphrase")
        lead = "In the video, " if dataset in TIMED else "In the image, "
        row(lead + one[0].lower() + one[1:], "grounded", "paraphrase")
        obj = rng.choice([o for o in objects if _absent(o, text)])
        row(f"{one} There is also a {obj} nearby.", "ungrounded", "object", obj)
        if dataset == "tvc.TVC":
            name = rng.choice([n for n in names if _absent(n, text)])
            row(f"{one} {name} watches from the doorway.", "ungrounded", "person", name)
        found = [n for n in NUMBERS if re.search(rf"\b{n}\b", one, re.I)]
        if found:
            plain = " ".join(said)
            boxes = Counter(m.group(1) for line in text.splitlines() if (m := _BOX_LINE.match(line)))
            taken = {n for n in NUMBERS if re.search(rf"\b({n}|{NUMBERS.index(n) + 2})\b", plain, re.I)
                     or NUMBERS.index(n) + 2 in boxes.values()}
            other = rng.choice([n for n in NUMBERS if n not in taken])
            row(re.sub(rf"\b{found[0]}\b", other, one, count=1, flags=re.I), "ungrounded", "count", other)
        colour = [c for c in COLOURS if re.search(rf"\b{c}\b", one, re.I)]
        if colour:
            other = rng.choice([c for c in COLOURS if _absent(c, text)])
            row(re.sub(rf"\b{colour[0]}\b", other, one, count=1, flags=re.I), "ungrounded", "colour", other)
        if dataset in TIMED and times:
            at = round(max(times) + rng.randint(15, 120))
            row(f"At {at} seconds, {one[0].lower()}{one[1:]}", "ungrounded", "time", f"{at} seconds")
        if images == 1:
            row(f"In the second image, {one[0].lower()}{one[1:]}", "ungrounded", "image", "second image")
    return rows


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
                "from syphus.release.rungrounding import grounding_figure\n"
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
    p.add_argument("--generated", type=Path, metavar="OUT",
                   help="write the set generated from the sample annotations to OUT (then measure it)")
    p.add_argument("--pairs", type=int, nargs="*", help="time a run folder of this many pairs (e.g. 100000 1000000)")
    a = p.parse_args()
    if a.pairs:
        for n in a.pairs:
            print(json.dumps({"pairs_asked": n, **scale(n, a.labels)}))
        return
    if a.generated:
        a.generated.write_text("".join(json.dumps(r) + "\n" for r in generated()), encoding="utf-8")
        a.labels = a.generated
    print(json.dumps(measure(a.labels, a.show), indent=1))


if __name__ == "__main__":
    main()
