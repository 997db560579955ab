"""SD, TVC, SN and E4D on files in the exact shape of the public releases, warts included.

Each sample here is small invented content written in the real file's shape: Spot-the-Diff's repeated
``img_id``s and all-empty records, TVC's scattered and unsorted moments and its test release without
descriptions, ScanRefer's per-description records, Ego4D's two narration passes with ``#C``/``#O``
markers, ``#unsure`` and redacted videos. Queries are checked as built and as sent to the fake server.
"""

from __future__ import annotations

import inspect
import io
import json
import random
from pathlib import Path

import pytest

from syphus import plugins
from syphus.cli import main
from syphus.errors import UserError
from tests.fakeserver import Reply, default_answer
from tests.helpers import lines


def dataset(name: str, path: str | Path | None = None):
    """The scene's plugin, built as the CLI builds it, reading ``path`` (default: its sample)."""
    cls, module = plugins.resolve(name, "datasets")
    return plugins.instantiate(cls, module, query_inputs_path=str(path) if path else None)


def items(name: str, path: str | Path | None = None) -> list[dict]:
    return list(dataset(name, path).iter_query_inputs())


def error_of(name: str, path: Path) -> str:
    with pytest.raises(UserError) as e:
        items(name, path)
    return str(e.value)


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run(name: str, server, path: Path | None = None) -> tuple[int, str]:
    """``syphus --name <name>`` against the fake server: (exit code, what it printed)."""
    out = io.StringIO()
    argv = ["--name", name, "--base_url", server.base_url, "--quiet"] + (["-in", str(path)] if path else [])
    return main(argv, env={"OPENAI_API_KEY": "sk-x"}, stream=out), out.getvalue()


def sent(server) -> dict[str, str]:
    """The last user message of every request, by the query text itself (each test's texts are unique)."""
    return {r.body["messages"][-1]["content"]: r.body for r in server.requests}


def settled(scenes: Path, name: str) -> dict[str, dict]:
    folder = scenes / "output" / name / "v1"
    assert lines(folder / "invalid.jsonl") == [] and lines(folder / "errors.jsonl") == []
    return {r["id"]: r for r in lines(folder / "pairs.jsonl")}


# --- SD: Spot-the-Diff train.json ---------------------------------------------------------------

SD_FILE = [
    {"img_id": "2471", "sentences": ["the silver car is gone from the second row", "a man stands by the booth", ""]},
    {"img_id": "88", "sentences": ["", "", ""]},                       # all empty, and 88 has nothing else
    {"img_id": "503", "sentences": ["a bus has pulled up at the stop"]},
    {"img_id": "2471", "sentences": ["", "the silver car has left", "a man stands by the booth"]},  # 2nd annotator
    {"img_id": "12007", "sentences": ["", ""]},                        # empty; 12007 comes back later
    {"img_id": "503", "sentences": ["a bus is at the stop ", "a bus is at the stop", "the bench is empty now"]},
    {"img_id": "2471", "sentences": ["the barrier is up"]},            # a third annotator
    {"img_id": "12007", "sentences": ["two cones were added near the exit"]},
    {"img_id": "88", "sentences": [""]},
]


def test_sd_merges_repeated_img_ids_and_skips_empty_records(scenes):
    got = items("SD", write_json(scenes / "train.json", SD_FILE))
    assert [i["id"] for i in got] == ["2471", "503", "12007"]  # first appearance; 88 only ever empty
    by_id = {i["id"]: i for i in got}
    assert by_id["2471"]["sentences"] == ("the silver car is gone from the second row\n"
                                          "a man stands by the booth\n"
                                          "the silver car has left\n"
                                          "the barrier is up")  # three records, file order, each sentence once
    assert by_id["503"]["sentences"] == ("a bus has pulled up at the stop\na bus is at the stop\na bus is at the stop\n"
                                         "the bench is empty now")  # one record's own lines stay as written
    assert by_id["12007"]["sentences"] == "two cones were added near the exit"
    assert by_id["503"]["image_ids"] == ["SD_IMG_00503_1", "SD_IMG_00503_2"]
    assert by_id["12007"]["image_ids"] == ["SD_IMG_12007_1", "SD_IMG_12007_2"]
    assert all(i["sentences"].strip() and "\n\n" not in i["sentences"] for i in got)


# One annotator writes each difference over two lines, so the second lines repeat inside the record
# (the shape of Spot-the-Diff's img_id 12733); a second record of the pair repeats one of them.
SD_TWO_LINES = [
    {"img_id": "12733", "sentences": ["the man in the black shirt by the stairs", "is not there in the after photo",
                                      "the woman with the stroller", "is not there in the after photo",
                                      "the person sitting at the table", "is not there in the before photo",
                                      "the two people by the railing", "is not there in the after photo"]},
    {"img_id": "12733", "sentences": ["is not there in the after photo", "the umbrella is closed"]},
]


def test_sd_keeps_lines_repeated_inside_one_record(scenes):
    [got] = items("SD", write_json(scenes / "train.json", SD_TWO_LINES))
    lines = got["sentences"].split("\n")
    assert lines == SD_TWO_LINES[0]["sentences"] + ["the umbrella is closed"]  # each person keeps its photo
    assert lines.count("is not there in the after photo") == 3


def test_sd_only_empty_records_is_an_empty_input(scenes):
    path = write_json(scenes / "train.json", [{"img_id": "1", "sentences": ["", ""]}])
    assert "gave no query inputs from" in error_of("SD", path)


def test_sd_end_to_end_one_request_per_pair(scenes, server):
    path = write_json(scenes / "train.json", SD_FILE)
    rc, out = run("SD", server, path)
    assert rc == 0, out
    expected = {i["id"]: i for i in items("SD", path)}
    assert len(server.requests) == 3 and set(sent(server)) == {i["sentences"] for i in expected.values()}
    records = settled(scenes, "SD")
    assert sorted(records) == sorted(expected)
    assert all(r["meta"]["image_ids"] == expected[q]["image_ids"] and r["pairs"] for q, r in records.items())


# --- TVC: tvc_train_release.jsonl ---------------------------------------------------------------

def _tvc(vid, ts, *descs, duration=60.0, clip_id=0):
    return {"vid_name": vid, "duration": duration, "ts": ts, "clip_id": clip_id,
            "descs": [{"desc": d, "type": "v", "from_retrieval": False, "desc_id": clip_id * 10 + k}
                      for k, d in enumerate(descs)]}


TVC_FILE = [
    _tvc("bbt_s02e04_seg01_clip_07", [30.2, 41.0], "Penny knocks on the door three times.", clip_id=1),
    _tvc("castle_s01e02_seg02_clip_11", [5.0, 12.5], "Castle hands Beckett a coffee.", clip_id=2),
    _tvc("bbt_s02e04_seg01_clip_07", [2.5, 9.0], "Sheldon sits in his spot on the couch.",
         "Sheldon tells Leonard not to sit there.", clip_id=3),
    _tvc("castle_s01e02_seg02_clip_11", [5.0, 8.0], "Beckett frowns at the whiteboard.", "", clip_id=4),
    _tvc("bbt_s02e04_seg01_clip_07", [15.75, 28.4], "Leonard opens the door for Penny.", clip_id=5),
]


def test_tvc_one_query_per_clip_moments_in_time_order(scenes):
    got = items("TVC", write_jsonl(scenes / "tvc_train_release.jsonl", TVC_FILE))
    assert [i["id"] for i in got] == ["bbt_s02e04_seg01_clip_07", "castle_s01e02_seg02_clip_11"]
    assert got[0]["sentences"] == ("[2.5s - 9.0s] Sheldon sits in his spot on the couch.\n"
                                   "[2.5s - 9.0s] Sheldon tells Leonard not to sit there.\n"
                                   "[15.8s - 28.4s] Leonard opens the door for Penny.\n"
                                   "[30.2s - 41.0s] Penny knocks on the door three times.")
    # equal starts keep file order; the empty description is left out
    assert got[1]["sentences"] == "[5.0s - 12.5s] Castle hands Beckett a coffee.\n[5.0s - 8.0s] Beckett frowns at the whiteboard."
    assert got[1]["image_ids"] == [f"TVC_IMG_castle_s01e02_seg02_clip_11_{k:04d}" for k in range(16)]


def test_tvc_clip_with_only_empty_descriptions_gives_no_query(scenes):
    rows = TVC_FILE + [_tvc("grey_s01e01_seg01_clip_00", [1.0, 2.0], " ", clip_id=6)]
    got = items("TVC", write_jsonl(scenes / "tvc_train_release.jsonl", rows))
    assert [i["id"] for i in got] == ["bbt_s02e04_seg01_clip_07", "castle_s01e02_seg02_clip_11"]


def test_tvc_test_release_is_refused(scenes, server):
    rows = [{k: v for k, v in r.items() if k != "descs"} for r in TVC_FILE]  # the public test release's shape
    path = write_jsonl(scenes / "tvc_test_public_release.jsonl", rows)
    msg = error_of("TVC", path)
    assert msg.startswith(f"{path}: line 1 (vid_name 'bbt_s02e04_seg01_clip_07') has no 'descs': this is the TVC "
                          "test release (tvc_test_public_release.jsonl), which has no descriptions")
    assert "pass tvc_train_release.jsonl" in msg
    rc, out = run("TVC", server, path)
    assert rc == 2 and "this is the TVC test release" in out and str(path) in out
    assert server.requests == []


def test_tvc_a_later_line_without_descs_is_named(scenes):
    rows = TVC_FILE[:2] + [{k: v for k, v in TVC_FILE[2].items() if k != "descs"}]
    path = write_jsonl(scenes / "tvc_train_release.jsonl", rows)
    assert f"{path}: line 3 (vid_name 'bbt_s02e04_seg01_clip_07') has no 'descs'; every line" in error_of("TVC", path)


def test_tvc_end_to_end(scenes, server):
    path = write_jsonl(scenes / "tvc_train_release.jsonl", TVC_FILE)
    rc, out = run("TVC", server, path)
    assert rc == 0, out
    expected = {i["id"]: i for i in items("TVC", path)}
    assert set(sent(server)) == {i["sentences"] for i in expected.values()} and len(server.requests) == 2
    assert sorted(settled(scenes, "TVC")) == sorted(expected)


# --- SN: ScanRefer's JSON -----------------------------------------------------------------------

def test_sn_reads_scanrefer_grouped_by_scene(scenes):
    ds = dataset("SN")  # the default sample is in ScanRefer's shape
    assert ds.query_inputs_path == "datasets/samples/sn/ScanRefer_filtered_train.json"
    got = {i["id"]: i for i in ds.iter_query_inputs()}
    # first appearance; scene0645_02 has only empty descriptions
    assert list(got) == ["scene0000_00", "scene0011_00", "scene0025_01"]
    descriptions, task = got["scene0000_00"]["sentences"].split("\n\n")
    assert descriptions.splitlines() == [  # records 0-3 and 6-8, the repeat of record 3 (record 7) dropped
        "bed: this is a large bed with a grey blanket. it is in the middle of the room against the wall.",
        "bed: the bed is against the wall opposite the wardrobe. it has two pillows on it.",
        "desk: a white desk sits under the window. there is a laptop on top of it.",
        "office chair: this is a black office chair with wheels. it is pushed in at the desk.",
        "wardrobe: a tall wardrobe with two doors stands in the corner opposite the bed.",
        "laundry basket: a plastic laundry basket is on the floor next to the wardrobe."]
    chosen = random.Random("0:scene0000_00").sample(list(type(ds).activities), 3)
    assert got["scene0000_00"]["activities"] == chosen and task == ds.task(chosen)
    assert "stove: a black stove with four burners is to the right of the sink." in got["scene0011_00"]["sentences"]
    assert "tv: a black flat tv hangs on the wall, facing the couch." in got["scene0025_01"]["sentences"]
    for qid, item in got.items():
        assert item["image_ids"] == [] and item["image_prefix"] == f"SN_IMG_{qid}_color_"


def test_sn_both_shapes_give_the_same_queries(scenes):
    records = [{"scene_id": "scene0101_02", "object_id": "3", "object_name": "kitchen_cabinets", "ann_id": "0",
                "description": "these are white cabinets .", "token": ["these", "are", "white", "cabinets", "."]},
               {"scene_id": "scene0007_00", "object_id": "1", "object_name": "sofa", "ann_id": "0",
                "description": "a red sofa by the wall .", "token": []},
               {"scene_id": "scene0101_02", "object_id": "5", "object_name": "sink", "ann_id": "2",
                "description": "the sink is under the window .", "token": []}]
    info = {"scene0101_02": {"description": [["kitchen_cabinets", "these are white cabinets."],
                                             ["sink", "the sink is under the window."]]},
            "scene0007_00": {"description": [["sofa", "a red sofa by the wall."]]}}
    scanrefer = items("SN", write_json(scenes / "ScanRefer_filtered_train.json", records))
    scan_info = items("SN", write_json(scenes / "scan_info.json", info))
    assert [i["id"] for i in scanrefer] == ["scene0101_02", "scene0007_00"]
    assert scanrefer == scan_info


@pytest.mark.parametrize("record, expected", [
    ({"scene_id": "scene0000_00", "object_name": "bed"}, "record 1 has no 'description' string"),
    ({"scene_id": 7, "object_name": "bed", "description": "x"}, "record 1 has no 'scene_id' string"),
    ({"scene_id": "", "object_name": "bed", "description": "x"}, "record 1 has an empty scene_id"),
    ("scene0000_00", "record 1 is a str, not an object; expected ScanRefer records"),
])
def test_sn_scanrefer_errors_name_the_record(scenes, record, expected):
    ok = {"scene_id": "scene0000_00", "object_id": "1", "object_name": "bed", "ann_id": "0", "description": "a bed ."}
    path = write_json(scenes / "ScanRefer_filtered_train.json", [ok, record])
    assert error_of("SN", path).startswith(f"{path}: {expected}")


def test_sn_prompt_examples_end_with_the_same_per_scene_task(scenes):
    ds = dataset("SN")
    prompt = json.loads((scenes / "prompts" / "sn.json").read_text())
    assert "Candidate activities" not in prompt["system_message"]
    for turn in prompt["in_context"][0::2]:
        descriptions, task = turn["content"].split("\n\n")
        activities = task.splitlines()[0].removeprefix("Candidate activities: ").split(", ")
        assert len(activities) == 3 and task == ds.task(activities)


SN_REPLY = """Conversation 1 - {0}
Human role: a student sharing the flat
reason: the room has what it takes.
Round 1:
Human: Where should I begin?
Assistant: Start by the window.
Round 2:
Human: What next?
Assistant: Move to the desk.

Conversation 2 - {1}
Human role: a visiting parent
reason: there is space for it.
Round 1:
Human: Is there room for this?
Assistant: Yes, in the middle of the room.

Conversation 3 - {2}
Human role: a tired worker
reason: the bed is near.
Round 1:
Human: Where can I rest?
Assistant: On the bed against the wall."""


def sn_responder(body, n):
    task = body["messages"][-1]["content"].split("\n\n")[-1]
    activities = task.splitlines()[0].removeprefix("Candidate activities: ").split(", ")
    return Reply.ok(SN_REPLY.format(*activities)) if len(activities) == 3 else Reply.ok(default_answer(body))


def test_sn_end_to_end_sends_the_task_with_every_scene(scenes, server):
    server.responder = sn_responder
    rc, out = run("SN", server)
    assert rc == 0, out
    expected = {i["id"]: i for i in items("SN")}
    bodies = sent(server)
    assert set(bodies) == {i["sentences"] for i in expected.values()} and len(server.requests) == 3
    system = json.loads((scenes / "prompts" / "sn.json").read_text())["system_message"]
    for item in expected.values():
        messages = bodies[item["sentences"]]["messages"]
        assert messages[0] == {"role": "system", "content": system}
        user = messages[-1]
        assert user["role"] == "user"
        assert user["content"].endswith(
            f"\n\nCandidate activities: {', '.join(item['activities'])}\nWrite three conversations between a person "
            "in this room and you, one for each candidate activity, in the order given. Begin each with a line "
            "'Conversation N - <activity>', then a line 'Human role: ' (who the person is and what they want) and a "
            "line 'reason: ' (what in this room serves the activity). Then write two to four rounds, each a line "
            "'Round N:' followed by a 'Human: ' line and an 'Assistant: ' line. If the room lacks something the "
            "activity needs, say so and suggest what to use instead.")
    records = settled(scenes, "SN")
    assert sorted(records) == sorted(expected)
    for qid, r in records.items():
        assert [(p["conversation"], p["round"]) for p in r["pairs"]] == [(1, 1), (1, 2), (2, 1), (3, 1)]
        a = r["meta"]["activities"]
        assert [p["activity"] for p in r["pairs"]] == [a[0], a[0], a[1], a[2]]
        assert r["pairs"][0]["human_role"] == "a student sharing the flat" and r["pairs"][0]["reason"]


# --- E4D: Ego4D narration.json ------------------------------------------------------------------

V1 = "2f5c9a1e-7b3d-4c8e-9a61-0d2e4f6b8c10"
V3 = "8d1e0b44-52aa-4f0b-b7c3-91e6a2d4f5a7"

E4D_SAMPLE = {
    f"{V1}_clip000000": ("[3.21s] The camera wearer opens the fridge\n"          # pass 1
                         "[4.02s] The camera wearer opens the refrigerator\n"    # pass 2, "#c c"
                         "[5.8s] The camera wearer takes out a carton of eggs\n"
                         "[9s] The camera wearer closes the fridge door\n"       # out of order in pass 1
                         "[10.5s] The camera wearer shuts the fridge\n"
                         "[12.47s] The camera wearer places the eggs on the counter"),  # 14.0 "#Unsure" dropped
    f"{V1}_clip000001": ("[17.3s] Woman X walks into the kitchen\n"
                         "[18s] The woman X hands C a frying pan\n"
                         "[20.1s] The camera wearer cracks an egg into the pan\n"  # pass 1 before pass 2 at 20.1
                         "[20.1s] The camera wearer breaks the egg over the pan"),  # 21.6 "... #unsure ..." dropped
    f"{V1}_clip000002": ("[40.5s] The camera wearer turns on the stove\n"
                         "[44.9s] The camera wearer stirs the egg with a spatula"),
    # window 3 (48-64 s) has only "#unsure" and an empty narration: no query
    f"{V3}_clip000007": ("[120s] The camera wearer picks up a screwdriver from the table\n"
                         "[122.6s] The camera wearer loosens a screw on the shelf bracket\n"
                         "[126.1s] A man X hands C a new bracket"),
    f"{V3}_clip000008": ("[129.9s] The camera wearer holds the bracket against the wall\n"
                         "[131s] The camera wearer fixes a C-clamp to the shelf\n"
                         "[133.4s] The camera wearer marks the wall with C's pencil"),
    # the redacted video and the one with an empty pass give no query
}


def test_e4d_reads_narration_json_in_windows(scenes):
    ds = dataset("E4D")  # the default sample is in narration.json's shape
    assert ds.query_inputs_path == "datasets/samples/e4d/narration.json" and inspect.isgenerator(ds.query_inputs)
    got = {i["id"]: i for i in ds.iter_query_inputs()}
    assert list(got) == list(E4D_SAMPLE)
    assert {q: i["sentences"] for q, i in got.items()} == E4D_SAMPLE
    assert got[f"{V1}_clip000000"]["image_ids"] == [f"E4D_IMG_{V1}_{s:08d}" for s in range(3, 13)]
    assert got[f"{V1}_clip000002"]["image_ids"] == [f"E4D_IMG_{V1}_{s:08d}" for s in range(40, 45)]
    assert all(i["image_prefix"] == f"E4D_IMG_{q.rsplit('_clip', 1)[0]}_" for q, i in got.items())
    assert not any("#" in i["sentences"] for i in got.values())


@pytest.mark.parametrize("text, expected", [
    ("#C C opens the door", "The camera wearer opens the door"),
    ("#c c picks up the knife ", "The camera wearer picks up the knife"),
    ("#C picks up the knife", "The camera wearer picks up the knife"),
    ("#O man X gives C a cup", "Man X gives C a cup"),  # only markers and a leading subject C are rewritten
    ("#O The woman Y talks to #C C", "The woman Y talks to the camera wearer"),
    ("#o person A waves at C.", "Person A waves at C."),
    ("#C C takes C's phone from #O man B", "The camera wearer takes C's phone from man B"),
    ("C's hand holds the cup", "The camera wearer's hand holds the cup"),
    ("#C C takes a vitamin C tablet", "The camera wearer takes a vitamin C tablet"),
    ("#C C plugs in the type C cable", "The camera wearer plugs in the type C cable"),
    ("#C C picks the A.C remote", "The camera wearer picks the A.C remote"),
    ("C. Ronaldo poster on the wall", "C. Ronaldo poster on the wall"),
    ("#C C tightens the C-clamp #", "The camera wearer tightens the C-clamp"),
    ("#unsure", None), ("#C C holds #Unsure", None), ("#C C looks at # unsure", None), ("  ", None), ("#", None),
])
def test_e4d_markers_become_plain_words(scenes, text, expected):
    module = inspect.getmodule(type(dataset("E4D")))
    assert module.plain(text) == expected


def test_e4d_window_seconds_is_configurable(scenes):
    cls = type(dataset("E4D"))
    try:
        cls.window_seconds = 60
        got = {i["id"]: i for i in items("E4D")}
    finally:
        cls.window_seconds = 16
    assert list(got) == [f"{V1}_clip000000", f"{V3}_clip000002"]
    assert got[f"{V1}_clip000000"]["sentences"].splitlines()[-1] == "[44.9s] The camera wearer stirs the egg with a spatula"
    assert len(got[f"{V1}_clip000000"]["sentences"].splitlines()) == 12
    assert got[f"{V1}_clip000000"]["image_ids"][0] == f"E4D_IMG_{V1}_00000003"
    assert got[f"{V1}_clip000000"]["image_ids"][-1] == f"E4D_IMG_{V1}_00000044"


def test_e4d_large_file_streams_one_video_at_a_time(scenes, monkeypatch):
    ds = dataset("E4D")
    whole = list(ds.iter_query_inputs())
    module = inspect.getmodule(type(ds))

    def no_whole_load(*args, **kwargs):
        raise AssertionError("a large narrations file must not be json.load-ed")

    monkeypatch.setattr(module, "load_json", no_whole_load)
    monkeypatch.setattr(type(ds), "stream_above_bytes", 100)
    assert items("E4D") == whole
    broken = scenes / "narration.json"
    broken.write_text(Path("datasets/samples/e4d/narration.json").read_text()[:900])
    msg = error_of("E4D", broken)
    assert msg.startswith(f"{broken}:") and "not valid JSON" in msg


def test_e4d_both_shapes_in_one_file(scenes):
    doc = {"v_pre": {"clips": [{"narrations": [{"time": 2, "text": "#C C waves", "object_description": ["hand"]}]}]},
           "v_pub": {"status": "complete",
                     "narration_pass_1": {"narrations": [{"timestamp_sec": 33.5, "timestamp_frame": 1005,
                                                          "narration_text": "#O woman Y sits", "annotation_uid": "a"}],
                                          "summaries": []}}}
    got = items("E4D", write_json(scenes / "e4d.json", doc))
    assert [(i["id"], i["sentences"]) for i in got] == [
        ("v_pre_clip000000", "[2s] The camera wearer waves (objects: hand)"),
        ("v_pub_clip000002", "[33.5s] Woman Y sits")]


@pytest.mark.parametrize("video, expected", [
    ({"narration_pass_1": {"narrations": [{"timestamp_sec": "3", "narration_text": "#C C sits"}]}},
     "video 'v1' narration_pass_1 narration 0 has timestamp_sec '3'; expected seconds (a number)"),
    ({"narration_pass_2": {"narrations": [{"timestamp_sec": 3}]}},
     "video 'v1' narration_pass_2 narration 0 has no 'narration_text' string"),
    ({"narration_pass_1": {"narrations": {"0": {}}}}, "video 'v1' narration_pass_1 has no 'narrations' list"),
    ({"narration_pass_1": []}, "video 'v1' narration_pass_1 has no 'narrations' list"),
    ({"summaries": []}, "video 'v1' has no 'clips' list (MIMIC-IT processed_all_anns.json) nor 'narration_pass_1'"),
])
def test_e4d_narration_json_errors_name_the_narration(scenes, video, expected):
    path = write_json(scenes / "narration.json", {"v0": {"status": "redacted"}, "v1": video})
    assert error_of("E4D", path).startswith(f"{path}: {expected}")


def test_e4d_end_to_end_on_narration_json(scenes, server):
    rc, out = run("E4D", server)
    assert rc == 0, out
    assert set(sent(server)) == set(E4D_SAMPLE.values()) and len(server.requests) == len(E4D_SAMPLE)
    records = settled(scenes, "E4D")
    assert sorted(records) == sorted(E4D_SAMPLE)
    expected = {i["id"]: i for i in items("E4D")}
    assert all(r["meta"]["image_ids"] == expected[q]["image_ids"] and r["pairs"] for q, r in records.items())
