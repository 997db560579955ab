"""SN: scene navigation, conversations that help a person do things in an indoor room (ScanNet).

Reads ScanNet object descriptions in either of two shapes, told apart by the top-level value:

- ScanRefer's JSON (``ScanRefer_filtered_train.json``), a list with one record per description::

      [{"scene_id": "scene0000_00", "object_id": "5", "object_name": "office_chair", "ann_id": "0",
        "description": "this is a black office chair. it is at the desk.", "token": ["this", ...]}, ...]

  grouped by ``scene_id`` (records of one scene need not be adjacent; scenes come in the order of
  their first record, descriptions in file order);
- the MIMIC-IT preprocessed ``scan_info.json``, an object::

      {"scene0000_00": {"description": [["office_chair", "this is a black office chair. ..."], ...]}, ...}

Each scene is one query, id = the scene id. Whitespace is tidied (ScanRefer's ``the desk .`` becomes
``the desk.``); empty descriptions and exact repeats (same object, same text) are left out, and a scene
with none left gives no query. The plugin draws 3 of its ``activities``
per scene with ``random.Random(f"{seed}:{scene_id}")`` (``seed`` a class attribute, 0 by default), so
every run draws the same; set ``max_descriptions`` to keep a seeded sample of that many per scene.

As in the original Syphus, the query itself (the user message) carries the task for that scene: the
candidate activities and the request for one conversation each (``instruction``, a class attribute
you may change). An example item::

    {"id": "scene0000_00",
     "sentences": "office chair: this is a black office chair. it is at the desk.\\n...\\n\\n"
                  "Candidate activities: making coffee, doing homework, watching a movie\\n"
                  "Write three conversations ...",
     "image_ids": [], "image_prefix": "SN_IMG_scene0000_00_color_", "activities": [...]}

ScanNet frames are not in the annotation, so ``image_ids`` is empty: export takes the frames that
start with ``image_prefix`` from the image file. The model writes conversations (FORMATS.md §3), parsed
by ``parse_conversations`` (``datasets/_conversations.py``) into one pair per round; in JSON mode (``--reply``) the reply model
``Conversations`` (one per candidate activity, each with its rounds) gives the same pairs.
Run it with ``python main.py --name SN`` (``-in`` a ScanRefer file or a ``scan_info.json``).
"""

import functools
import random
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, create_model

from syphus.dataset import AbstractDataset, load_json
from syphus.reply import Reply
from syphus.errors import UserError
from syphus.engine.scenes import frame_prefix

from _conversations import parse_conversations  # beside this file (plugins may import their helpers)

ACTIVITIES = (
    "making coffee", "cooking dinner", "washing the dishes", "doing homework", "reading a book",
    "watching a movie", "taking a nap", "doing laundry", "cleaning the room", "working on a laptop",
    "getting ready for work", "exercising at home", "hosting a small meeting", "playing a board game",
    "looking for a lost key", "watering the plants", "taking a shower", "packing for a trip",
    "having a video call", "tidying up before guests arrive",
)

# The task sent with every scene, after its descriptions: {activities} joined by ", ", {count} in words.
INSTRUCTION = (
    "Candidate activities: {activities}\n"
    "Write {count} conversations between a person in this room and you, one for each candidate activity, "
    "in the order given. Begin each with a line 'Conversation N - <activity>', then a line 'Human role: ' "
    "(who the person is and what they want) and a line 'reason: ' (what in this room serves the activity). "
    "Then write two to four rounds, each a line 'Round N:' followed by a 'Human: ' line and an "
    "'Assistant: ' line. If the room lacks something the activity needs, say so and suggest what to use instead."
)
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_SCANREFER_KEYS = ("scene_id", "object_name", "description")
_SPACED_PUNCTUATION = re.compile(r" ([.,;:!?])")  # ScanRefer's "the desk ." -> "the desk."


class Round(BaseModel):
    model_config = ConfigDict(extra="forbid")
    human: str
    assistant: str


class Conversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    activity: str
    human_role: str
    reason: str
    rounds: Annotated[list[Round], Field(min_length=1)]


class Conversations(Reply):
    """A structured (JSON) reply: one conversation per candidate activity, mapped to one pair per round,
    exactly as ``parse_conversations`` maps the text form."""

    conversations: list[Conversation]

    def to_pairs(self, query_input):
        pairs = []
        for n, conv in enumerate(self.conversations, 1):
            for k, turn in enumerate(conv.rounds, 1):
                if turn.human.strip() and turn.assistant.strip():
                    pairs.append({"instruction": turn.human.strip(), "answer": turn.assistant.strip(),
                                  "conversation": n, "activity": conv.activity.strip() or None,
                                  "human_role": conv.human_role.strip() or None,
                                  "reason": conv.reason.strip() or None, "round": k})
        return pairs

    @classmethod
    def from_pairs(cls, pairs):
        convs = {}
        for p in pairs:
            conv = convs.setdefault(p.get("conversation"), {
                "activity": p.get("activity") or "", "human_role": p.get("human_role") or "",
                "reason": p.get("reason") or "", "rounds": []})
            conv["rounds"].append({"human": p["instruction"], "assistant": p["answer"]})
        return cls.model_validate({"conversations": list(convs.values())})


@functools.lru_cache(maxsize=None)
def conversations_model(count):
    """``Conversations`` asking for exactly ``count`` conversations."""
    model = create_model(f"Conversations{count}", __base__=Conversations,
                         conversations=(Annotated[list[Conversation], Field(min_length=count, max_length=count)], ...))
    model.uncounted = Conversations
    return model


class SN(AbstractDataset):
    scene = "SN"
    seed = 0
    activities = ACTIVITIES
    activities_per_scene = 3
    max_descriptions = None  # None keeps every description
    instruction = INSTRUCTION

    def __init__(self, name="SN", prompt_path="prompts/sn.json",
                 query_inputs_path="datasets/samples/sn/ScanRefer_filtered_train.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        doc = load_json(path, "ScanNet descriptions file")  # one JSON document (ScanRefer's train file is tens of MB)
        if isinstance(doc, list):
            scenes = self._scanrefer(path, doc)
        elif isinstance(doc, dict):
            scenes = self._scan_info(path, doc)
        else:
            raise UserError(f"{path}: expected ScanRefer's JSON list of {{'scene_id', 'object_name', "
                            "'description', ...}} records, or a JSON object {scene_id: {\"description\": "
                            f"[[object, sentence], ...]}}; found a {type(doc).__name__}")
        for scene_id, descriptions in scenes.items():
            if descriptions:
                yield self._item(scene_id, descriptions)

    @staticmethod
    def _scanrefer(path, records):
        """``{scene_id: {(object, description): None}}`` from ScanRefer records (dicts keep order, drop repeats)."""
        scenes = {}
        for n, record in enumerate(records):
            if not isinstance(record, dict):
                raise UserError(f"{path}: record {n} is a {type(record).__name__}, not an object; expected "
                                "ScanRefer records {'scene_id', 'object_name', 'description', ...}")
            missing = [k for k in _SCANREFER_KEYS if not isinstance(record.get(k), str)]
            if missing:
                raise UserError(f"{path}: record {n} has no {' or '.join(map(repr, missing))} string; "
                                f"ScanRefer records have {', '.join(_SCANREFER_KEYS)}")
            if not record["scene_id"]:
                raise UserError(f"{path}: record {n} has an empty scene_id; expected one like 'scene0000_00'")
            _add(scenes.setdefault(record["scene_id"], {}), record["object_name"], record["description"])
        return scenes

    @staticmethod
    def _scan_info(path, doc):
        """The same mapping from the MIMIC-IT ``scan_info.json`` shape."""
        scenes = {}
        for scene_id, scene in doc.items():
            descriptions = scene.get("description") if isinstance(scene, dict) else None
            if not isinstance(descriptions, list):
                raise UserError(f"{path}: scene {scene_id!r} has no 'description' list")
            kept = scenes.setdefault(scene_id, {})
            for n, d in enumerate(descriptions):
                if not (isinstance(d, list) and len(d) == 2 and all(isinstance(s, str) for s in d)):
                    raise UserError(f"{path}: scene {scene_id!r} description {n} is {d!r}; "
                                    "expected [object name, sentence]")
                _add(kept, *d)
        return scenes

    def _item(self, scene_id, descriptions):
        descriptions = list(descriptions)
        rng = random.Random(f"{self.seed}:{scene_id}")
        chosen = rng.sample(list(self.activities), self.activities_per_scene)
        if self.max_descriptions is not None and len(descriptions) > self.max_descriptions:
            keep = sorted(rng.sample(range(len(descriptions)), self.max_descriptions))
            descriptions = [descriptions[i] for i in keep]
        lines = [f"{obj}: {text}" if obj else text for obj, text in descriptions]
        return {"id": scene_id, "sentences": "\n".join(lines) + "\n\n" + self.task(chosen), "image_ids": [],
                "image_prefix": frame_prefix("SN", scene_id), "activities": chosen}

    def task(self, activities):
        """The per-scene request that ends the query: ``instruction`` filled with these activities,
        e.g. ``"Candidate activities: making coffee, reading a book\\nWrite two conversations ..."``."""
        count = len(activities)
        return self.instruction.format(activities=", ".join(activities),
                                       count=_WORDS[count] if count < len(_WORDS) else count)

    def parse_response(self, text, finish_reason):
        return parse_conversations(text, finish_reason)

    def reply_model_for(self, query_input):
        # one conversation per candidate activity drawn for the scene
        return conversations_model(len(query_input.get("activities") or ()) or self.activities_per_scene)


def _add(kept, obj, text):
    """Put ``(object name, description)`` in ``kept`` (an ordered set), whitespace tidied; skip an empty one."""
    obj, text = obj.replace("_", " ").strip(), _SPACED_PUNCTUATION.sub(r"\1", " ".join(text.split()))
    if text:
        kept[(obj, text)] = None
