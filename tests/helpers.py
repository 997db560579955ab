"""Test helpers: a small plugin written into a temp project, and readers for run folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

PLUGIN = '''
from abstract_dataset import AbstractDataset


class Numbers(AbstractDataset):
    def __init__(self, name="Numbers", prompt_path="prompts/numbers.json", query_inputs_path="{n}"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for i in range(int(path)):
            yield {{"id": f"q{{i:05d}}", "sentences": f"<<q{{i:05d}}>> a red ball on a table number {{i}}"}}
'''

PROMPT = {
    "system_message": "Write questions and answers.",
    "in_context": [
        {"role": "user", "content": "a cat"},
        {"role": "assistant", "content": [{"Question": "What animal?", "Answer": "A cat."}]},
    ],
}


def make_numbers(root: Path, n: int) -> None:
    """datasets/numbers.py yielding ``n`` queries whose text carries their id as ``<<qNNNNN>>``."""
    (root / "datasets").mkdir(exist_ok=True)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "datasets" / "numbers.py").write_text(PLUGIN.format(n=n))
    (root / "prompts" / "numbers.json").write_text(json.dumps(PROMPT))


_ID = re.compile(r"<<(q\d{5})>>")


def query_id(body: dict) -> str:
    """The query id a request body was sent for."""
    return _ID.search(body["messages"][-1]["content"]).group(1)


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def settled(folder: Path) -> dict[str, list[str]]:
    """{file: [ids]} for pairs, invalid and errors."""
    return {name: [r["id"] for r in lines(folder / f"{name}.jsonl")] for name in ("pairs", "invalid", "errors")}
