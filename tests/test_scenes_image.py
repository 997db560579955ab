"""Built-in scene plugins LA (LACONV, LADD, LACR), CGD, SN and E4D on their samples, and SN's conversation parser."""

from __future__ import annotations

import copy
import inspect
import io
import json
import random
import shutil
from pathlib import Path

import pytest

from syphus import plugins
from syphus.cli import main
from syphus.errors import UserError
from tests.fakeserver import Reply, default_answer
from tests.helpers import lines

ROOT = Path(__file__).resolve().parent.parent
parse_conversations = plugins.load_module(ROOT / "datasets" / "_conversations.py").parse_conversations  # beside sn.py


def load(name: str, query_inputs_path: str | Path | None = None):
    cls, path = plugins.resolve(name, "datasets")
    return plugins.instantiate(cls, path, query_inputs_path=str(query_inputs_path) if query_inputs_path else None)


def items(name: str, query_inputs_path: str | Path | None = None) -> list[dict]:
    return list(load(name, query_inputs_path).iter_query_inputs())


def write_json(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def error_of(name: str, query_inputs_path: Path) -> str:
    with pytest.raises(UserError) as e:
        items(name, query_inputs_path)
    return str(e.value)


# --- LA ---------------------------------------------------------------------------------------

LA_502 = ("A gray cat sleeps curled up on a blue couch.\n"
          "A cat naps on the cushion of a sofa.\n"
          "A small grey cat is lying on a couch next to a book.\n"
          "The cat is asleep on the living room sofa.\n"
          "A sofa with a sleeping cat and an open book on it.\n"
          "cat: [180.66, 140.2, 120.45, 80.3]\n"
          "couch: [10, 90, 480, 260.5]\n"
          "book: [330.2, 170.85, 70.4, 40.16]")


@pytest.mark.parametrize("name", ["LACONV", "LADD", "LACR"])
def test_la_variants_read_the_coco_sample(scenes, name):
    dataset = load(name)
    assert type(dataset).scene == name and dataset.name == name
    assert dataset.prompt_path == f"prompts/{name.lower()}.json"
    assert inspect.isgenerator(dataset.query_inputs)
    got = list(dataset.iter_query_inputs())
    assert [i["id"] for i in got] == ["501", "502", "503", "504", "505", "506"]
    by_id = {i["id"]: i for i in got}
    assert by_id["502"]["sentences"] == LA_502
    assert all(i["image_ids"] == [f"LA_IMG_{int(i['id']):012d}"] for i in got)
    assert by_id["502"]["image_ids"] == ["LA_IMG_000000000502"]


def test_la_cleans_captions_and_accepts_a_captions_file_path(scenes):
    first = items("LACONV", "datasets/samples/la/captions_train2017.json")[0]
    assert first["sentences"].splitlines()[3] == "A man on a bicycle passes a row of parked cars in the rain."
    assert "bicycle: [198, 250.75, 180.5, 170.25]" in first["sentences"].splitlines()


def _coco_copy(scenes: Path) -> tuple[Path, dict, dict]:
    folder = scenes / "bad"
    caps = json.loads((scenes / "datasets/samples/la/captions_train2017.json").read_text())
    inst = json.loads((scenes / "datasets/samples/la/instances_train2017.json").read_text())
    return folder, caps, inst


def test_la_errors_name_the_file_and_the_record(scenes):
    folder, caps, inst = _coco_copy(scenes)
    write_json(folder / "captions_train2017.json", caps)

    bad = copy.deepcopy(inst)
    bad["annotations"][2]["bbox"] = [1, 2, 3]
    write_json(folder / "instances_train2017.json", bad)
    msg = error_of("LACONV", folder)
    assert "instances_train2017.json: annotations[2] (image 501) has bbox [1, 2, 3]" in msg

    bad = copy.deepcopy(inst)
    bad["annotations"][0]["category_id"] = 999
    write_json(folder / "instances_train2017.json", bad)
    assert "annotations[0] (image 501) has category_id 999, which is not in 'categories'" in error_of("LACONV", folder)

    write_json(folder / "instances_train2017.json", inst)
    bad = copy.deepcopy(caps)
    del bad["annotations"][7]["caption"]
    write_json(folder / "captions_train2017.json", bad)
    assert "captions_train2017.json: annotations[7] (image 502) has no 'caption' text" in error_of("LACONV", folder)

    bad = copy.deepcopy(caps)
    bad["annotations"][0]["image_id"] = 77
    write_json(folder / "captions_train2017.json", bad)
    assert "annotations[0] refers to image 77, which is not in 'images'" in error_of("LACONV", folder)

    (folder / "captions_train2017.json").rename(folder / "captions_val2017.json")
    msg = error_of("LACONV", folder)
    assert "no captions_train2017.json in this folder (found captions_val2017.json" in msg

    write_json(folder / "captions_val2017.json", caps)
    msg = error_of("LACONV", folder / "captions_val2017.json")  # its instances file is missing
    assert "instances_val2017.json: not found" in msg


# --- CGD --------------------------------------------------------------------------------------

CGD_605_606 = ("image a:\n"
               "A bedroom with a large bed and a television on the wall.\n"
               "A neat hotel room with a bed and a TV.\n"
               "A made bed facing a flat screen television.\n"
               "A bedroom with white sheets and a TV.\n"
               "A room with a double bed and a television.\n"
               "bed: [40, 220, 420, 250]\n"
               "tv: [480, 90, 140, 85]\n"
               "image b:\n"
               "A bedroom with a bed, a chair and a lamp.\n"
               "A small bedroom with a single bed and a wooden chair.\n"
               "A bed by the window with a chair in the corner.\n"
               "A cozy bedroom with a chair next to the bed.\n"
               "A tidy bedroom with a bed and a chair.\n"
               "bed: [100, 240, 350, 220]\n"
               "chair: [500, 250, 110, 180]")


def test_cgd_reads_pairs_of_coco_images(scenes):
    dataset = load("CGD")
    assert type(dataset).scene == "CGD" and inspect.isgenerator(dataset.query_inputs)
    got = {i["id"]: i for i in dataset.iter_query_inputs()}
    assert list(got) == ["601_602", "603_604", "605_606", "607_608", "602_601", "606_605"]
    assert got["605_606"]["sentences"] == CGD_605_606
    assert got["605_606"]["image_ids"] == ["CGD_IMG_000000000605", "CGD_IMG_000000000606"]
    assert got["602_601"]["image_ids"] == ["CGD_IMG_000000000602", "CGD_IMG_000000000601"]
    # the pair list's own path works too, with the COCO files beside it
    assert len(items("CGD", "datasets/samples/cgd/cgd_pairs.json")) == 6


def test_cgd_image_ids_use_the_coco_file_stem(scenes):
    folder = scenes / "stem"
    caps = json.loads((scenes / "datasets/samples/cgd/captions_train2017.json").read_text())
    for img in caps["images"]:
        img["file_name"] = f"COCO_train2014_{img['id']:012d}.jpg"
    write_json(folder / "captions_train2017.json", caps)
    shutil.copy(scenes / "datasets/samples/cgd/instances_train2017.json", folder)
    write_json(folder / "cgd_pairs.json", [[601, 602]])
    assert items("CGD", folder)[0]["image_ids"] == ["CGD_IMG_COCO_train2014_000000000601",
                                                     "CGD_IMG_COCO_train2014_000000000602"]


@pytest.mark.parametrize("pairs, expected", [
    ([[601, 602], [603, 999]], "cgd_pairs.json: pair 1 [603, 999] names image 999, which is not in captions_train2017.json"),
    ([[601, 602], [601]], "cgd_pairs.json: pair 1 is [601]; expected [image_id_a, image_id_b]"),
    ([[601, 602], ["603", 604]], "pair 1 is ['603', 604]; expected [image_id_a, image_id_b] (integers)"),
    ([[601, 602], [601, 602]], "cgd_pairs.json: pair 1 [601, 602] is listed twice"),
    ({"601": 602}, "cgd_pairs.json: expected a JSON list of [image_id_a, image_id_b] pairs"),
])
def test_cgd_errors_name_the_pair(scenes, pairs, expected):
    folder = scenes / "bad"
    shutil.copytree(scenes / "datasets/samples/cgd", folder)
    write_json(folder / "cgd_pairs.json", pairs)
    assert expected in error_of("CGD", folder)


def test_cgd_without_a_pair_list(scenes):
    folder = scenes / "bad"
    shutil.copytree(scenes / "datasets/samples/cgd", folder)
    (folder / "cgd_pairs.json").unlink()
    assert "cgd_pairs.json: not found; CGD needs a pair list" in error_of("CGD", folder)


# --- SN ---------------------------------------------------------------------------------------
# (ScanRefer's file, SN's default, is tested in tests/test_scenes_public.py; here the MIMIC-IT scan_info.json)

SN_INFO = "datasets/samples/sn/scan_info.json"


def test_sn_reads_scene_descriptions_with_seeded_activities(scenes):
    dataset = load("SN", SN_INFO)
    assert type(dataset).scene == "SN" and inspect.isgenerator(dataset.query_inputs)
    got = {i["id"]: i for i in dataset.iter_query_inputs()}
    assert list(got) == ["scene0000_00", "scene0011_00", "scene0025_01", "scene0040_00", "scene0101_02"]
    activities = type(dataset).activities
    chosen = random.Random("0:scene0025_01").sample(list(activities), 3)
    assert got["scene0025_01"]["activities"] == chosen
    descriptions, task = got["scene0025_01"]["sentences"].split("\n\n")
    assert descriptions == (
        "couch: a long brown couch faces the television. it has three cushions.\n"
        "tv: the tv is mounted on the wall across from the couch.\n"
        "coffee table: a low glass coffee table is between the couch and the tv. there are magazines on it.\n"
        "bookshelf: a tall bookshelf full of books is to the right of the tv.\n"
        "plant: a potted plant stands in the corner by the window.")
    assert task == dataset.task(chosen) and task.startswith(
        f"Candidate activities: {', '.join(chosen)}\nWrite three conversations between a person in this room and you, "
        "one for each candidate activity, in the order given.")
    for qid, item in got.items():
        assert item["image_ids"] == [] and item["image_prefix"] == f"SN_IMG_{qid}_color_"
        assert len(set(item["activities"])) == 3 and set(item["activities"]) <= set(activities)
    # the same every run; another seed draws differently (somewhere)
    assert [i["activities"] for i in items("SN", SN_INFO)] == [i["activities"] for i in got.values()]
    cls = type(dataset)
    try:
        cls.seed = 7
        assert [i["activities"] for i in items("SN", SN_INFO)] != [i["activities"] for i in got.values()]
    finally:
        cls.seed = 0


def test_sn_max_descriptions_keeps_a_seeded_sample_in_order(scenes):
    cls = type(load("SN", SN_INFO))
    try:
        cls.max_descriptions = 3
        first, again = items("SN", SN_INFO)[0], items("SN", SN_INFO)[0]
    finally:
        cls.max_descriptions = None
    kept = first["sentences"].split("\n\n")[0].splitlines()
    assert len(kept) == 3 and first["sentences"] == again["sentences"]
    order = [line.split(":")[0] for line in items("SN", SN_INFO)[0]["sentences"].split("\n\n")[0].splitlines()]
    assert len(order) == 6
    assert [line.split(":")[0] for line in kept] == [o for o in order if o in {k.split(":")[0] for k in kept}]


@pytest.mark.parametrize("doc, expected", [
    ({"scene0000_00": {"objects": []}}, "scan_info.json: scene 'scene0000_00' has no 'description' list"),
    ({"scene0000_00": {"description": [["chair", "a chair."], ["table"]]}},
     "scan_info.json: scene 'scene0000_00' description 1 is ['table']; expected [object name, sentence]"),
    ([["scene0000_00"]], "scan_info.json: record 0 is a list, not an object; expected ScanRefer records"),
    ("scene0000_00", "scan_info.json: expected ScanRefer's JSON list"),
])
def test_sn_errors_name_the_scene(scenes, doc, expected):
    assert expected in error_of("SN", write_json(scenes / "bad" / "scan_info.json", doc))


# --- E4D --------------------------------------------------------------------------------------
# (Ego4D's narration.json, E4D's default, is tested in tests/test_scenes_public.py; here MIMIC-IT's processed file)

E4D_PRE = "datasets/samples/e4d/processed_all_anns.json"

UID = "2f5c9a1e-7b3d-4c8e-9a61-0d2e4f6b8c10"


def test_e4d_one_query_per_clip_with_frames_at_one_per_second(scenes):
    dataset = load("E4D", E4D_PRE)
    assert type(dataset).scene == "E4D" and inspect.isgenerator(dataset.query_inputs)
    got = {i["id"]: i for i in dataset.iter_query_inputs()}
    assert list(got)[:2] == [f"{UID}_clip000000", f"{UID}_clip000001"] and len(got) == 6
    first = got[f"{UID}_clip000000"]
    assert first["sentences"] == (
        "[3.21s] The camera wearer opens the fridge (objects: fridge, milk carton, eggs)\n"
        "[5.8s] The camera wearer takes out a carton of eggs (objects: egg carton)\n"
        "[9s] The camera wearer closes the fridge door\n"
        "[12.47s] The camera wearer places the eggs on the counter (objects: egg carton, kitchen counter, frying pan)")
    assert "A man X hands C a new bracket" in got["8d1e0b44-52aa-4f0b-b7c3-91e6a2d4f5a7_clip000000"]["sentences"]
    assert first["image_ids"] == [f"E4D_IMG_{UID}_{s:08d}" for s in range(3, 13)]
    assert first["image_ids"][0] == f"E4D_IMG_{UID}_00000003"
    assert got[f"{UID}_clip000001"]["image_ids"] == [f"E4D_IMG_{UID}_{s:08d}" for s in range(40, 48)]
    for item in got.values():
        assert item["image_prefix"] == f"E4D_IMG_{item['id'].rsplit('_clip', 1)[0]}_"
        assert all(i.startswith(item["image_prefix"]) for i in item["image_ids"])


def test_e4d_skips_empty_clips_but_keeps_their_index(scenes):
    doc = {"v1": {"clips": [{"narrations": []},
                            {"narrations": [{"time": 7, "text": "#C C sits down", "object_description": ["chair"]},
                                            {"time": 8, "text": "#C C holds #unsure", "object_description": []}]},
                            {"narrations": [{"time": 9, "text": "#Unsure", "object_description": ["cup"]},
                                            {"time": 9.5, "text": " ", "object_description": []}]}]}}
    got = items("E4D", write_json(scenes / "e4d.json", doc))
    assert [i["id"] for i in got] == ["v1_clip000001"]  # clip 2 has only an #unsure and an empty narration
    assert got[0]["sentences"] == "[7s] The camera wearer sits down (objects: chair)"
    assert got[0]["image_ids"] == ["E4D_IMG_v1_00000007"]


@pytest.mark.parametrize("doc, expected", [
    ({"v1": {"clips": [{"narrations": [{"time": "3.2", "text": "#C C waves", "object_description": []}]}]}},
     "e4d.json: video 'v1' clip 0 narration 0 has time '3.2'; expected seconds (a number)"),
    ({"v1": {"clips": [{"narrations": [{"time": 1, "text": "a", "object_description": []}]},
                       {"narrations": [{"time": 2, "object_description": []}]}]}},
     "e4d.json: video 'v1' clip 1 narration 0 has no 'text' string"),
    ({"v1": {"clips": [{"narrations": [{"time": 1, "text": "a", "object_description": "cup"}]}]}},
     "video 'v1' clip 0 narration 0 has object_description 'cup'; expected a list of strings"),
    ({"v1": {"videos": []}}, "e4d.json: video 'v1' has no 'clips' list"),
    ({"v1": {"clips": [{"text": "x"}]}}, "e4d.json: video 'v1' clip 0 has no 'narrations' list"),
])
def test_e4d_errors_name_the_clip(scenes, doc, expected):
    assert expected in error_of("E4D", write_json(scenes / "e4d.json", doc))


# --- parse_conversations ----------------------------------------------------------------------

CLEAN = """Conversation 1 - making coffee
Human role: a guest who woke up early
reason: the kitchen has a coffee maker on the counter.
Round 1:
Human: Is there a way to make coffee here?
Assistant: Yes, the red coffee maker is on the counter next to the stove.
Round 2:
Human: Where are the cups?
Assistant: Try the white cabinets above the counter.

Conversation 2 - washing the dishes
Human role: a roommate after dinner
reason: there is a sink under the window.
Round 1:
Human: Where do I wash the plates?
Assistant: In the sink under the window."""


def test_conversations_clean_reply():
    r = parse_conversations(CLEAN, "stop")
    assert r.ok and not r.truncated and r.problems == []
    assert [(p["conversation"], p["round"]) for p in r.pairs] == [(1, 1), (1, 2), (2, 1)]
    assert r.pairs[0] == {"instruction": "Is there a way to make coffee here?",
                          "answer": "Yes, the red coffee maker is on the counter next to the stove.",
                          "conversation": 1, "activity": "making coffee", "human_role": "a guest who woke up early",
                          "reason": "the kitchen has a coffee maker on the counter.", "round": 1}
    assert r.pairs[2]["activity"] == "washing the dishes" and r.pairs[2]["human_role"] == "a roommate after dinner"


def test_conversations_markdown_headers_and_bold():
    text = """Sure! Here are the conversations.

### **Conversation 1: Doing homework**

**Human role:** a student with an essay due

**Reason:** there is a desk and a lamp.

---

#### Round 1

**Human:** Where can I sit and write?

**Assistant:** At the desk under the window.

It has a lamp, too.

#### Round 2
- **Human:** Is there a charger?
- **Assistant:** I don't see one; check near the bed.

---

**Conversation 2 – "Taking a nap"**
*Human role*: a tired student
**Round 1:**
**Human (student):** Where can I lie down?
**Assistant:** On the bed against the wall.
"""
    r = parse_conversations(text, "stop")
    assert r.ok and r.problems == []
    assert [(p["conversation"], p["activity"], p["round"]) for p in r.pairs] == [
        (1, "Doing homework", 1), (1, "Doing homework", 2), (2, "Taking a nap", 1)]
    assert r.pairs[0]["answer"] == "At the desk under the window.\n\nIt has a lamp, too."
    assert r.pairs[0]["human_role"] == "a student with an essay due" and r.pairs[0]["reason"] == "there is a desk and a lamp."
    assert r.pairs[1]["instruction"] == "Is there a charger?"
    assert r.pairs[2]["human_role"] == "a tired student"


def test_conversations_missing_reason_and_round_labels():
    text = ("Conversation 1 - watching a movie\nHuman role: a teenager\n"
            "Human: Where is the remote?\nAssistant: On the coffee table.\n"
            "Human: And the light switch?\nAssistant: By the door.")
    r = parse_conversations(text, "stop")
    assert r.ok and r.problems == []
    assert [(p["round"], p["reason"], p["human_role"]) for p in r.pairs] == [(1, None, "a teenager"), (2, None, "a teenager")]


def test_conversations_human_without_assistant_is_dropped_and_reported():
    text = ("Conversation 1 - cooking dinner\nHuman role: a cook\nreason: a stove\n"
            "Round 1:\nHuman: Where are the pans?\n"
            "Round 2:\nHuman: Where is the salt?\nAssistant: On the spice shelf.\n"
            "Round 3:\nAssistant: The fridge is by the door.")
    r = parse_conversations(text, "stop")
    assert [(p["round"], p["instruction"]) for p in r.pairs] == [(2, "Where is the salt?")]
    assert any("conversation 1 round 1: a Human turn without an Assistant reply" in p for p in r.problems)
    assert any("an Assistant turn without a Human turn" in p for p in r.problems)
    assert not r.truncated


def test_conversations_cut_off_at_max_tokens_drops_the_last_round():
    text = CLEAN.rsplit("\n", 1)[0] + "\nAssistant: In the si"
    r = parse_conversations(text, "length")
    assert r.truncated and [(p["conversation"], p["round"]) for p in r.pairs] == [(1, 1), (1, 2)]
    assert any("cut off" in p and "conversation 2 round 1" in p for p in r.problems)
    # cut right after a Human turn: that round goes, the rest stays
    r = parse_conversations(CLEAN + "\nRound 2:\nHuman: And the soap?", "length")
    assert r.truncated and len(r.pairs) == 3


def test_conversations_one_line_rounds_and_header_variants():
    text = ("1. Conversation 1 (Activity: packing for a trip)\n"
            "Role: a traveller\nReasoning: there is a wardrobe and a suitcase.\n"
            "Round 1: Human: Where is my suitcase?\nAssistant: Under the bed.\n"
            "Round 2 - User: Where are my shirts?\nAI: In the wardrobe.\n"
            "```\n")
    r = parse_conversations(text, "stop")
    assert r.ok and r.problems == []
    assert [(p["activity"], p["human_role"], p["reason"], p["round"], p["instruction"], p["answer"]) for p in r.pairs] == [
        ("packing for a trip", "a traveller", "there is a wardrobe and a suitcase.", 1, "Where is my suitcase?", "Under the bed."),
        ("packing for a trip", "a traveller", "there is a wardrobe and a suitcase.", 2, "Where are my shirts?", "In the wardrobe."),
    ]


def test_conversations_turns_on_the_next_line_quotes_and_a_sign_off():
    text = """Here are the conversations you asked for.

**Conversation 1:**
Activity: cooking dinner
Human role: a father of two

**Round 1 (finding the pot)**
Human:
Where is the big pot?
Assistant:
In the cabinet
under the sink.

1. Human: "Thanks. And the lid?"
2. Assistant: Same place, on the left.

I hope these conversations are helpful!
"""
    r = parse_conversations(text, "stop")
    assert r.ok and r.problems == []
    assert [(p["instruction"], p["answer"], p["round"]) for p in r.pairs] == [
        ("Where is the big pot?", "In the cabinet\nunder the sink.", 1),
        ("Thanks. And the lid?", "Same place, on the left.", 2)]
    assert r.pairs[0]["activity"] == "cooking dinner" and r.pairs[0]["human_role"] == "a father of two"


def test_conversations_turns_without_a_header_form_one_conversation():
    r = parse_conversations("Round 1:\nHuman: Where is the lamp?\nAssistant: On the desk.", "stop")
    assert r.ok and r.pairs[0]["conversation"] == 1 and r.pairs[0]["activity"] is None


@pytest.mark.parametrize("text, reason", [
    ("", "empty response"),
    ("   \n", "empty response"),
    ("I'm sorry, but I can't help with that request.", "no 'Conversation N'/'Human:'/'Assistant:' turns found"),
    ("Question: Where is the bed?\nAnswer: By the wall.", "no 'Conversation N'/'Human:'/'Assistant:' turns found"),
    ("Conversation 1 - cooking\nHuman role: a cook\nreason: a stove", "conversation headers found but no"),
    ("Conversation 1 - cooking\nRound 1:\nHuman: Where is the pan?", "a Human turn without an Assistant reply"),
])
def test_conversations_nothing_parseable_is_not_ok(text, reason):
    r = parse_conversations(text, "stop")
    assert not r.ok and reason in r.reason


def test_conversations_reply_of_the_sn_prompt_example_parses(scenes):
    prompt = json.loads((scenes / "prompts" / "sn.json").read_text())
    examples = [m["content"] for m in prompt["in_context"] if m["role"] == "assistant"]
    for text in examples:
        r = parse_conversations(text, "stop")
        assert r.ok and r.problems == [] and all(p["reason"] and p["human_role"] and p["activity"] for p in r.pairs)
    assert [p["round"] for p in parse_conversations(examples[1], "stop").pairs] == [1, 2, 3, 1, 2, 1, 2]


# --- end to end through the CLI ---------------------------------------------------------------

SN_REPLY = ("Conversation 1 - {a}\nHuman role: a resident\nreason: the room fits.\n"
            "Round 1:\nHuman: Where do I start?\nAssistant: Next to the door.\n"
            "Round 2:\nHuman: And then?\nAssistant: Go to the window.")


def sn_responder(body, n):
    user = body["messages"][-1]["content"]
    if "Candidate activities:" not in user:
        return Reply.ok(default_answer(body))
    activity = user.rsplit("Candidate activities:", 1)[1].split(",")[0].strip()
    return Reply.ok(SN_REPLY.format(a=activity))


@pytest.mark.parametrize("name, prefix", [
    ("LACONV", "LA_IMG_"), ("LADD", "LA_IMG_"), ("LACR", "LA_IMG_"), ("CGD", "CGD_IMG_"), ("SN", None), ("E4D", "E4D_IMG_"),
])
def test_cli_run_per_scene(scenes, server, name, prefix):
    if name == "SN":
        server.responder = sn_responder
    expected = items(name)
    plugins._loaded.clear()
    out = io.StringIO()
    code = main(["--name", name, "--base_url", server.base_url, "--quiet"], env={"OPENAI_API_KEY": "sk-x"}, stream=out)
    assert code == 0, out.getvalue()
    folder = scenes / "output" / name / "v1"
    records = lines(folder / "pairs.jsonl")
    assert sorted(r["id"] for r in records) == sorted(i["id"] for i in expected)
    assert lines(folder / "invalid.jsonl") == [] and lines(folder / "errors.jsonl") == []
    by_id = {i["id"]: i for i in expected}
    for r in records:
        meta = r["meta"]
        assert meta["image_ids"] == by_id[r["id"]]["image_ids"]
        if name in ("LACONV", "LADD", "LACR"):
            assert meta["image_ids"] == [f"LA_IMG_{int(r['id']):012d}"]
        elif name == "CGD":
            a, b = r["id"].split("_")
            assert meta["image_ids"] == [f"CGD_IMG_{int(a):012d}", f"CGD_IMG_{int(b):012d}"]
        elif name == "SN":
            assert meta["image_ids"] == [] and meta["image_prefix"] == f"SN_IMG_{r['id']}_color_"
            assert [(p["conversation"], p["round"]) for p in r["pairs"]] == [(1, 1), (1, 2)]
            assert r["pairs"][0]["activity"] == meta["activities"][0]
        else:
            assert meta["image_prefix"] == f"E4D_IMG_{r['id'].rsplit('_clip', 1)[0]}_"
            assert meta["image_ids"] and all(i.startswith(meta["image_prefix"]) and len(i) == len(meta["image_prefix"]) + 8
                                             for i in meta["image_ids"])
        if prefix:
            assert all(i.startswith(prefix) for i in meta["image_ids"])
    body = server.requests[0].body
    assert body["messages"][0]["content"] == json.loads((scenes / "prompts" / f"{name.lower()}.json").read_text())["system_message"]
    assert len(body["messages"]) == 6
