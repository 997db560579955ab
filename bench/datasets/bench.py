"""Bench: a synthetic, streaming dataset plugin for the benchmarks in bench/.

``_load_query_inputs`` is a generator yielding ``SYPHUS_BENCH_N`` items (default 5000),
``{"id": "q00000000", "sentences": <~300 characters of varied scene text>}``. The text
is deterministic (same N, same stream) and costs a few microseconds an item, so the
generator never holds more than one item and never dominates a benchmark.

Run it with ``datasets_dir="bench/datasets"`` and ``name="Bench.bench"``.
"""

import os
import random
from pathlib import Path

from syphus.dataset import AbstractDataset

_PROMPT = str(Path(__file__).resolve().parent.parent / "prompts" / "bench.json")

_SUBJECTS = ["A boy", "A woman in a red coat", "Two cyclists", "An old man", "A girl with a kite",
             "A chef", "Three students", "A street vendor", "A tabby cat", "A brown horse",
             "A delivery driver", "A toddler", "Two dogs", "A violinist", "A gardener", "A surfer"]
_VERBS = ["walks past", "leans against", "waits beside", "points at", "carries a box toward",
          "photographs", "runs around", "sits on", "paints", "cleans", "climbs onto", "looks at"]
_OBJECTS = ["a wooden bench", "a green bicycle", "a fruit stall", "a parked bus", "a stone fountain",
            "a glass door", "a yellow umbrella", "a picnic table", "a street lamp", "a tall cactus",
            "a red mailbox", "a small boat", "a market tent", "a brick wall", "a snowy fence"]
_PLACES = ["in a busy square", "near the harbor", "on a rainy afternoon", "at the edge of a forest",
           "under a bright sky", "inside a train station", "by a quiet river", "at dusk",
           "in a crowded market", "next to a school", "on a mountain trail", "in a small kitchen"]
_LABELS = ["person", "dog", "bicycle", "bench", "umbrella", "car", "cat", "boat", "chair", "bag"]


def _clauses(count: int = 2048, seed: int = 1234) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        clause = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}."
        if rng.random() < 0.5:
            x, y, w, h = (rng.randrange(0, 640), rng.randrange(0, 480), rng.randrange(20, 300), rng.randrange(20, 300))
            clause += f"\n{rng.choice(_LABELS)}: [{x}, {y}, {w}, {h}]"
        out.append(clause)
    return out


_CLAUSES = _clauses()


def sentences(rng: random.Random, target: int = 260) -> str:
    """At least ``target`` characters of scene text (at most one clause more: ~300 on average)."""
    parts, size, clauses = [], 0, _CLAUSES
    mask = len(clauses) - 1
    while size < target:
        c = clauses[rng.getrandbits(11) & mask]
        parts.append(c)
        size += len(c) + 1
    return " ".join(parts)


def bench_n() -> int:
    return int(os.environ.get("SYPHUS_BENCH_N", "5000"))


def generate(n: int, seed: int = 0):
    """The item stream, also used by the baselines in bench/throughput.py."""
    rng = random.Random(seed)
    for i in range(n):
        yield {"id": f"q{i:08d}", "sentences": sentences(rng)}


class Bench(AbstractDataset):
    def __init__(self, name="Bench", prompt_path=_PROMPT, query_inputs_path=None):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # A generator: N comes from SYPHUS_BENCH_N, read when the dataset is built. With
        # SYPHUS_BENCH_FRAMES=F and SYPHUS_BENCH_IMAGES=M each item names F frames BN_IMG_<k> of M.
        frames = int(os.environ.get("SYPHUS_BENCH_FRAMES", "0"))
        images = int(os.environ.get("SYPHUS_BENCH_IMAGES", "0"))
        for n, item in enumerate(generate(bench_n())):
            if frames and images:
                item["image_ids"] = [f"BN_IMG_{(n * frames + k) % images:06d}" for k in range(frames)]
            yield item
