"""SN: scene navigation, conversations that help a person do things in an indoor scene (ScanNet).

Reads ScanNet object descriptions (published as ``scan_info.json``), one JSON document::

    {"scene0000_00": {"description": [["office_chair", "this is a black office chair. it is at the desk."],
                                       ...]},
     ...}

Each scene is one query, id = the scene id. The plugin draws 3 of its ``activities`` per scene with
``random.Random(f"{seed}:{scene_id}")`` (``seed`` a class attribute, 0 by default), so every run
draws the same; set ``max_descriptions`` to keep a seeded sample of that many descriptions per scene.
An example item::

    {"id": "scene0000_00",
     "sentences": "office chair: this is a black office chair. it is at the desk.\\n...\\n"
                  "Candidate activities: making coffee, doing homework, watching a movie",
     "image_ids": [], "image_prefix": "SN_IMG_scene0000_00_color_", "activities": [...]}

ScanNet frames are not in the annotation, so ``image_ids`` is empty: export takes the frames that
start with ``image_prefix`` from the image file. The model writes conversations (FORMATS.md §3), parsed
by ``syphus.parse.parse_conversations`` into one pair per round.
Run it with ``python main.py --name SN``.
"""

import random

from syphus.dataset import AbstractDataset, load_json
from syphus.errors import UserError
from syphus.parse import parse_conversations

ACTIVITIES = (
    "making coffee", "cooking dinner", "washing the dishes", "doing homework", "reading a book",
    "watching a movie", "taking a nap", "doing laundry", "cleaning the room", "working on a laptop",
    "getting ready for work", "exercising at home", "hosting a small meeting", "playing a board game",
    "looking for a lost key", "watering the plants", "taking a shower", "packing for a trip",
    "having a video call", "tidying up before guests arrive",
)


class SN(AbstractDataset):
    scene = "SN"
    seed = 0
    activities = ACTIVITIES
    activities_per_scene = 3
    max_descriptions = None  # None keeps every description

    def __init__(self, name="SN", prompt_path="prompts/sn.json", query_inputs_path="datasets/samples/sn/scan_info.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        scenes = load_json(path, "ScanNet descriptions file")  # one JSON document
        if not isinstance(scenes, dict):
            raise UserError(f"{path}: expected a JSON object {{scene_id: {{\"description\": [[object, sentence], ...]}}}}")
        for scene_id, scene in scenes.items():
            descriptions = scene.get("description") if isinstance(scene, dict) else None
            if not isinstance(descriptions, list):
                raise UserError(f"{path}: scene {scene_id!r} has no 'description' list")
            for n, d in enumerate(descriptions):
                if not (isinstance(d, list) and len(d) == 2 and all(isinstance(s, str) for s in d)):
                    raise UserError(f"{path}: scene {scene_id!r} description {n} is {d!r}; "
                                    "expected [object name, sentence]")
            rng = random.Random(f"{self.seed}:{scene_id}")
            chosen = rng.sample(list(self.activities), self.activities_per_scene)
            if self.max_descriptions is not None and len(descriptions) > self.max_descriptions:
                keep = sorted(rng.sample(range(len(descriptions)), self.max_descriptions))
                descriptions = [descriptions[i] for i in keep]
            lines = [f"{obj.replace('_', ' ').strip()}: {' '.join(text.split())}" for obj, text in descriptions]
            lines.append(f"Candidate activities: {', '.join(chosen)}")
            yield {"id": scene_id, "sentences": "\n".join(lines), "image_ids": [],
                   "image_prefix": f"SN_IMG_{scene_id}_color_", "activities": chosen}

    def parse_response(self, text, finish_reason):
        return parse_conversations(text, finish_reason)
