"""Example: a small scene-description dataset, and the template for a plugin of your own.

Each line of the annotation file is one scene: ``{"id", "caption", "objects": [[name, [x, y, w, h]], ...]}``.
Run it with ``.venv/bin/syphus --name Example.example``.
"""

import json

from abstract_dataset import AbstractDataset


class Example(AbstractDataset):
    def __init__(self, name="Example", prompt_path="prompts/example.json",
                 query_inputs_path="datasets/samples/example_scenes.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        # A generator: inputs stream one at a time, so a file of any size fits in memory.
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                scene = json.loads(line)
                boxes = "\n".join(f"{name}: {box}" for name, box in scene.get("objects", []))
                yield {"id": scene["id"], "sentences": f"{scene['caption']}\n{boxes}".strip()}
