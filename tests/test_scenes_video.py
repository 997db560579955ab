"""The built-in DC, TVC, VST and SD scene plugins on their samples, and end to end through the CLI."""

from __future__ import annotations

import inspect
import io
import json
import re
from pathlib import Path

import pytest

from syphus import plugins
from syphus.cli import main
from syphus.errors import UserError
from tests.helpers import lines

ROOT = Path(__file__).resolve().parent.parent

SAMPLES = {
    "DC": "datasets/samples/dc/train.json",
    "TVC": "datasets/samples/tvc/tvc_train_release.jsonl",
    "VST": "datasets/samples/vst/train.story-in-sequence.json",
    "SD": "datasets/samples/sd/train.json",
}


def dataset(code, path=None):
    """The scene's plugin, built as the CLI builds it, reading ``path`` (default: its sample)."""
    module = plugins.load_module(Path("datasets") / f"{code.lower()}.py")
    cls = getattr(module, code)
    return cls() if path is None else cls(query_inputs_path=str(path))


def items(code, path=None):
    return list(dataset(code, path).query_inputs)


def write_json(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- every plugin --------------------------------------------------------------------------

@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_plugin_contract(scenes, code):
    ds = dataset(code)
    assert ds.scene == code and ds.name == code
    assert ds.query_inputs_path == SAMPLES[code] and ds.prompt_path == f"prompts/{code.lower()}.json"
    assert inspect.isgenerator(ds._load_query_inputs(SAMPLES[code]))
    got = list(ds.iter_query_inputs())  # the engine's own checks: ids unique, sentences strings
    assert 5 <= len(got) <= 8
    assert all(item["sentences"].strip() and item["image_ids"] for item in got)
    prompt = json.loads((scenes / "prompts" / f"{code.lower()}.json").read_text())
    turns = prompt["in_context"]
    assert prompt["system_message"] and len(turns) >= 4
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2)
    assert all(set(pair) == {"Question", "Answer"} for t in turns[1::2] for pair in t["content"])


def test_missing_file_names_it(scenes):
    with pytest.raises(UserError, match=r"nope\.json: cannot read"):
        items("DC", "nope.json")


# --- DC -----------------------------------------------------------------------------------

def test_dc_sample(scenes):
    got = items("DC")
    assert [i["id"] for i in got] == list(json.loads(Path(SAMPLES["DC"]).read_text()))
    first = got[0]
    assert first["id"] == "v_Qk7rT2mXwLs"
    assert first["sentences"] == (
        "[0.0s - 9.4s] A woman in a green apron lays out flour, eggs and a bowl on a wooden counter.\n"
        "[8.7s - 31.2s] She cracks the eggs into the flour and kneads the mixture into a smooth dough.\n"
        "[29.9s - 48.6s] She rolls the dough flat, cuts it into thin strips and hangs them over a broom handle to dry.")
    assert first["image_prefix"] == "DC_IMG_v_Qk7rT2mXwLs_"
    # duration 48.62 s at one frame per second: frames 0 .. 48
    assert first["image_ids"] == [f"DC_IMG_v_Qk7rT2mXwLs_{n:04d}" for n in range(49)]
    whole = next(i for i in got if i["id"] == "v_3bHnP0cVy8E")  # duration 125.0: frames 0 .. 124
    assert whole["image_ids"][0] == "DC_IMG_v_3bHnP0cVy8E_0000"
    assert whole["image_ids"][-1] == "DC_IMG_v_3bHnP0cVy8E_0124" and len(whole["image_ids"]) == 125


@pytest.mark.parametrize("video, message", [
    ({"duration": 10, "timestamps": [[0, 2], [2, 4], [4, 6]], "sentences": ["a", "b"]},
     "video 'v_x' has 3 timestamps but 2 sentences"),
    ({"timestamps": [[0, 2]], "sentences": ["a"]}, "video 'v_x' has no 'duration'"),
    ({"duration": "long", "timestamps": [[0, 2]], "sentences": ["a"]}, "video 'v_x' has duration 'long'"),
    ({"duration": 10, "timestamps": [[0]], "sentences": ["a"]}, "video 'v_x': timestamp 0 is [0]"),
    ({"duration": 10, "timestamps": [[0, 2]], "sentences": [7]}, "video 'v_x': sentence 0 is a int"),
    ({"duration": 10, "timestamps": [], "sentences": []}, "video 'v_x' has no events"),
    ([1, 2], "video 'v_x' is a list"),
])
def test_dc_malformed_video(scenes, video, message):
    path = write_json(scenes / "train.json", {"v_ok": {"duration": 3, "timestamps": [[0, 1]], "sentences": ["a"]},
                                              "v_x": video})
    gen = dataset("DC", path).query_inputs
    assert next(gen)["id"] == "v_ok"
    with pytest.raises(UserError) as e:
        next(gen)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_dc_not_json_or_not_a_mapping(scenes):
    bad = scenes / "train.json"
    bad.write_text('{"v_x": {"duration": 3,}}')
    with pytest.raises(UserError, match=r"train\.json:1:24: the ActivityNet Captions file is not valid JSON"):
        items("DC", bad)
    with pytest.raises(UserError, match="expected an object mapping video ids"):
        items("DC", write_json(bad, [{"duration": 3}]))


# --- TVC ----------------------------------------------------------------------------------

TVC_IDS = ["friends_s02e07_seg01_clip_03", "house_s03e11_seg02_clip_08", "met_s01e05_seg02_clip_14",
           "castle_s02e03_seg01_clip_21", "grey_s04e09_seg02_clip_05", "s03e16_seg02_clip_02"]


def test_tvc_sample_groups_moments_by_clip(scenes):
    got = items("TVC")
    assert [i["id"] for i in got] == TVC_IDS  # one query per vid_name, in order of first appearance
    friends = got[0]
    assert friends["sentences"] == (  # three lines of the file, in time order
        "[3.2s - 14.9s] Monica sets a tray of cookies on the coffee table.\n"
        "[3.2s - 14.9s] Monica tells everyone the cookies are still hot.\n"
        "[20.5s - 33.0s] Chandler bites a cookie and waves his hand in front of his mouth.\n"
        "[40.0s - 52.7s] Joey grabs two cookies and hides one behind his back.")
    for item in got:
        prefix = f"TVC_IMG_{item['id']}_"
        assert item["image_prefix"] == prefix
        assert item["image_ids"] == [f"{prefix}{n:04d}" for n in range(16)]
    assert got[-1]["image_ids"][-1] == "TVC_IMG_s03e16_seg02_clip_02_0015"


def test_tvc_grouped_file_gives_the_same_items(scenes):
    rows = [json.loads(line) for line in Path(SAMPLES["TVC"]).read_text().splitlines()]
    rows.sort(key=lambda r: TVC_IDS.index(r["vid_name"]))  # stable: file order within a clip
    grouped = scenes / "grouped.jsonl"
    grouped.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    assert items("TVC", grouped) == items("TVC")


def test_tvc_moment_without_ts_is_kept(scenes):
    path = scenes / "t.jsonl"
    path.write_text(json.dumps({"vid_name": "clip_a", "descs": [{"desc": " Ross waves. "}]}) + "\n")
    assert items("TVC", path)[0]["sentences"] == "Ross waves."


@pytest.mark.parametrize("line, message", [
    ('{"vid_name": "c1", "descs": [{"desc": "x"}]', "tvc_train_release.jsonl:2:44: the TVC file is not valid JSON"),
    ('{"descs": [{"desc": "x"}]}', "line 2 has vid_name None"),
    ('{"vid_name": "c1", "descs": []}', "line 2 (vid_name 'c1') has descs []"),
    ('{"vid_name": "c1", "descs": [{"text": "x"}]}', "line 2 (vid_name 'c1'): descs[0] has no 'desc' string"),
    ('{"vid_name": "c1", "ts": [1], "descs": [{"desc": "x"}]}', "line 2 (vid_name 'c1') has ts [1]"),
    ('["c1"]', "line 2 is a list"),
])
def test_tvc_malformed_line(scenes, line, message):
    path = scenes / "tvc_train_release.jsonl"
    path.write_text('{"vid_name": "c0", "ts": [0, 1], "descs": [{"desc": "a"}]}\n' + line + "\n")
    with pytest.raises(UserError) as e:
        items("TVC", path)
    assert str(e.value).startswith(f"{path}:") and message in str(e.value)


# --- VST ----------------------------------------------------------------------------------

def test_vst_sample(scenes):
    got = items("VST")
    # albums in the order of "albums"; the sixth album has no story and is skipped
    assert [i["id"] for i in got] == [f"7215760000000{n}" for n in range(1, 6)]
    lake = got[0]
    assert lake["sentences"] == (
        "Album: Lake weekend\n"
        "Description: Two days at the cabin with the whole family.\n"
        "Story 1: the family drove up to the cabin on friday . [male] caught the first fish of the trip . "
        "we cooked it over the fire that night . the kids went swimming in the morning . "
        "it was sad to pack up and leave .\n"
        "Story 2: we arrived at the [location] after a long drive . the water was calm and clear . "
        "[male] was proud of his catch . the kids loved the cold water . dinner by the fire was the best part .")
    # story 1's photos, then the one new photo of story 2; each once
    assert lake["image_ids"] == [f"VST_IMG_334100{n}" for n in range(1, 7)]
    assert "image_prefix" not in lake
    assert got[1]["sentences"].splitlines()[0:2] == ["Album: Grandma's 80th", "Story 1: everyone came to "
                                                     "celebrate [female] 's birthday . the cake had eighty candles on "
                                                     "it . she needed help blowing them all out . her grandchildren "
                                                     "gave her a quilt they made . she said it was the best birthday "
                                                     "ever ."]  # an empty description is left out
    museum = got[4]  # its storylets are out of order in the file: sorted by worker_arranged_photo_order
    assert museum["sentences"].splitlines()[2].startswith(
        "Story 1: our class went to the science museum . the dinosaur skeleton was huge . we saw how")
    assert museum["image_ids"] == [f"VST_IMG_880100{n}" for n in range(1, 6)]


def _vist(storylet=None, albums=None):
    s = {"album_id": "a1", "story_id": "s1", "photo_flickr_id": "p1", "worker_arranged_photo_order": 0,
         "text": "we went out .", "storylet_id": "1"}
    s.update(storylet or {})
    return {"images": [], "albums": [{"id": "a1", "title": "T", "description": ""}] if albums is None else albums,
            "annotations": [[{k: v for k, v in s.items() if v is not None}]], "type": "story_in_sequence"}


@pytest.mark.parametrize("data, message", [
    (_vist({"text": None}), "annotations[0] has no 'text'"),
    (_vist({"text": 3}), "annotations[0] (story 's1') has a int 'text'"),
    (_vist({"worker_arranged_photo_order": "first"}), "has worker_arranged_photo_order 'first'"),
    (_vist({"album_id": "a9"}), "annotations[0] (story 's1') names album 'a9', which is not in 'albums'"),
    (_vist(albums=[{"title": "no id"}]), "albums[0] has no 'id'"),
    ({"annotations": []}, "expected an object with 'albums' and 'annotations' lists"),
])
def test_vst_malformed(scenes, data, message):
    path = write_json(scenes / "train.story-in-sequence.json", data)
    with pytest.raises(UserError) as e:
        items("VST", path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def test_vst_numeric_ids_become_strings(scenes):
    path = write_json(scenes / "v.json", _vist({"album_id": 7, "photo_flickr_id": 42}, albums=[{"id": 7, "title": "T"}]))
    assert items("VST", path) == [{"id": "7", "sentences": "Album: T\nStory 1: we went out .",
                                   "image_ids": ["VST_IMG_42"]}]


# --- SD -----------------------------------------------------------------------------------

def test_sd_sample(scenes):
    got = items("SD")  # 11 records: 1018 and 355 twice, 2407 twice (once all empty), 9120 only empty
    assert [i["id"] for i in got] == ["1018", "2407", "355", "12764", "8830", "41"]
    assert got[0]["sentences"] == ("the white van parked by the gate is gone\n"
                                   "a man in a dark jacket is now standing near the fence\n"
                                   "the van by the gate has driven away\n"  # the second record, 8 records later
                                   "the gate is open")  # blank lines and the repeated sentence dropped
    assert got[1]["sentences"] == ("there are two more cars in the bottom row of the lot\n"
                                   "the red car on the left has moved forward")
    assert got[0]["image_ids"] == ["SD_IMG_01018_1", "SD_IMG_01018_2"]
    assert got[2]["image_ids"] == ["SD_IMG_00355_1", "SD_IMG_00355_2"]
    assert got[3]["image_ids"] == ["SD_IMG_12764_1", "SD_IMG_12764_2"]
    assert got[5]["image_ids"] == ["SD_IMG_00041_1", "SD_IMG_00041_2"]
    assert "image_prefix" not in got[0]


def test_sd_integer_img_id(scenes):
    path = write_json(scenes / "train.json", [{"img_id": 7, "sentences": ["a car left"]}])
    assert items("SD", path) == [{"id": "7", "sentences": "a car left", "image_ids": ["SD_IMG_00007_1", "SD_IMG_00007_2"]}]


@pytest.mark.parametrize("record, message", [
    ({"img_id": "abc", "sentences": ["x"]}, "record 1 has img_id 'abc'"),
    ({"sentences": ["x"]}, "record 1 has img_id None"),
    ({"img_id": "12", "sentences": "x"}, "record 1 (img_id '12') has sentences 'x'"),
    ("12", "record 1 is a str"),
])
def test_sd_malformed(scenes, record, message):
    path = write_json(scenes / "train.json", [{"img_id": "1", "sentences": ["ok"]}, record])
    with pytest.raises(UserError) as e:
        items("SD", path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)
    with pytest.raises(UserError, match="expected a list of"):
        items("SD", write_json(path, {"img_id": "1"}))


# --- end to end ---------------------------------------------------------------------------

IMAGE_ID = {
    "DC": re.compile(r"DC_IMG_v_[\w-]{11}_\d{4}"),
    "TVC": re.compile(r"TVC_IMG_\w+_clip_\d\d_\d{4}"),
    "VST": re.compile(r"VST_IMG_\d+"),
    "SD": re.compile(r"SD_IMG_\d{5}_[12]"),
}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_cli_runs_the_scene_on_its_sample(scenes, server, code):
    out = io.StringIO()
    rc = main(["--name", code, "--base_url", server.base_url, "--quiet"], env={"OPENAI_API_KEY": "sk-x"}, stream=out)
    assert rc == 0, out.getvalue()
    expected = {i["id"]: i for i in items(code)}
    records = lines(scenes / "output" / code / "v1" / "pairs.jsonl")
    assert sorted(r["id"] for r in records) == sorted(expected)
    for r in records:
        assert r["pairs"]
        image_ids = r["meta"]["image_ids"]
        assert image_ids == expected[r["id"]]["image_ids"]
        assert all(IMAGE_ID[code].fullmatch(i) for i in image_ids), image_ids
        if code in ("DC", "TVC"):
            prefix = r["meta"]["image_prefix"]
            assert prefix == f"{code}_IMG_{r['id']}_" and all(i.startswith(prefix) for i in image_ids)
            frames = [int(i[len(prefix):]) for i in image_ids]
            assert frames == list(range(len(frames))) and (code == "DC" or len(frames) == 16)
        else:
            assert "image_prefix" not in r["meta"] and len(set(image_ids)) == len(image_ids)
    sent = {req.body["messages"][-1]["content"] for req in server.requests}
    assert sent == {i["sentences"] for i in expected.values()}
    system = server.requests[0].body["messages"][0]
    assert system == {"role": "system", "content": json.loads(
        (scenes / "prompts" / f"{code.lower()}.json").read_text())["system_message"]}
