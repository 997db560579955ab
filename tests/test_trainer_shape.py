"""Release files as the public MIMIC-IT trainer loads them, and the paths that lead there.

The trainer reads an image file with ``pandas.read_parquet(path)`` and looks images up with
``.loc[image_id]["base64"]``; these tests do exactly that with pandas (the ``test`` extra). Also:
export of runs whose plugin attached no image ids (plugins written for the original Syphus),
export of a dataset that is no MIMIC-IT scene (``--prefix``), and ``configs/original.yaml``.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syphus.cli import main
from syphus.config import load_config
from syphus.errors import UserError
from syphus.release.export import export_run
from syphus.release.images import image_items
from syphus.release.validate import validate_files
from tests.conftest import KEY, ROOT
from tests.fakeserver import Reply
from tests.test_convert import run as convert, write_images as write_pngs

VIDEOS = {"v_alpha": 3, "v_beta": 2}  # video id -> frames in the image file

# A plugin as written for the original Syphus: video.DenseCaptions's shape, no scene, no image ids.
ORIGINAL_PLUGIN = '''
import json

from abstract_dataset import AbstractDataset


class DenseCaptions(AbstractDataset):
    def __init__(self, name="DenseCaptions", prompt_path="prompts/dense_captions.json",
                 query_inputs_path="annotations/train.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        with open(path) as f:
            data = json.load(f)
        return [{"id": vid, "sentences": "sentences: " + json.dumps(v["sentences"])} for vid, v in data.items()]
'''


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main([str(a) for a in argv], env={"OPENAI_API_KEY": KEY}, stream=out)
    return code, out.getvalue()


def generate(server, *argv: str) -> None:
    code, text = cli("--base_url", server.base_url, "--quiet", *argv)
    assert code == 0, text


def pixel(n: int) -> str:
    return base64.b64encode(b"\x89PNG fake %d" % n).decode()


@pytest.fixture
def original(tmp_path, monkeypatch):
    """A project with an original-style DC plugin, its annotation and an image file DC.json."""
    (tmp_path / "datasets").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "annotations").mkdir()
    (tmp_path / "datasets" / "video.py").write_text(ORIGINAL_PLUGIN)
    (tmp_path / "prompts" / "dense_captions.json").write_text(json.dumps({"system_message": "s", "in_context": []}))
    (tmp_path / "annotations" / "train.json").write_text(json.dumps(
        {vid: {"timestamps": [[0, n]], "sentences": [f"{vid} happens"]} for vid, n in VIDEOS.items()}))
    frames = {f"DC_IMG_{vid}_{k:04d}": pixel(k) for vid, n in VIDEOS.items() for k in range(n)}
    frames["DC_IMG_v_other_0000"] = pixel(99)
    (tmp_path / "DC.json").write_text(json.dumps(frames))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_converted_parquet_is_indexed_by_image_id(tmp_path):
    write_pngs(tmp_path / "img", {f"{i}.png": (12, 16) for i in range(5)})
    rc, log = convert("--scene", "VST", "--images", tmp_path / "img", "--out", tmp_path / "VST.json",
                      "--parquet", tmp_path / "VST.parquet", "--workers", "1")
    assert rc == 0, log
    expected = json.loads((tmp_path / "VST.json").read_text())
    images = pd.read_parquet(tmp_path / "VST.parquet")  # what the trainer does
    for image_id, b64 in expected.items():
        assert images.loc[image_id]["base64"] == b64
    assert list(images.columns) == ["base64"] and images.index.name == "id"
    assert pq.read_schema(tmp_path / "VST.parquet").pandas_metadata["index_columns"] == ["id"]
    assert list(image_items(tmp_path / "VST.parquet")) == list(expected.items())
    assert validate_files(_one_instruction(tmp_path, "VST", ["VST_IMG_3"]), images=tmp_path / "VST.parquet").ok


def _one_instruction(folder: Path, scene: str, image_ids: list[str]) -> Path:
    path = folder / f"{scene}_instructions.json"
    path.write_text(json.dumps({"meta": {}, "data": {f"{scene}_INS_00001": {
        "instruction": "q", "answer": "a", "image_ids": image_ids, "rel_ins_ids": []}}}))
    return path


def test_validate_fails_a_plain_column_parquet_and_names_the_fix(tmp_path):
    ids = ["SD_IMG_00012_1", "SD_IMG_00012_2"]
    old = tmp_path / "SD.parquet"
    pq.write_table(pa.table({"id": ids, "base64": [pixel(1), pixel(2)]}), old)  # an older syphus's shape
    with pytest.raises(KeyError):
        pd.read_parquet(old).loc[ids[0]]
    instructions = _one_instruction(tmp_path, "SD", ids)
    code, text = cli("validate", instructions, "--images", old)
    assert code == 1, text
    assert "error: image ids are not the Parquet table's index: 1" in text
    assert f"fix: syphus convert --rewrite {old} --parquet {old}" in text and "syphus convert ... --parquet" in text

    code, text = cli("convert", "--rewrite", old, "--parquet", old)  # the fix, in place
    assert code == 0 and "wrote 2 images" in text, text
    assert pd.read_parquet(old).loc[ids[1]]["base64"] == pixel(2)
    code, text = cli("validate", instructions, "--images", old)
    assert code == 0, text


def test_rewrite_turns_json_and_binary_columns_into_the_trainer_shape(tmp_path):
    (tmp_path / "VST.json").write_text(json.dumps({"VST_IMG_2": pixel(2), "VST_IMG_1": pixel(1)}))
    assert cli("convert", "--rewrite", tmp_path / "VST.json", "--parquet", tmp_path / "VST.parquet")[0] == 0
    assert pd.read_parquet(tmp_path / "VST.parquet").loc["VST_IMG_1"]["base64"] == pixel(1)
    raw = b"\x89PNG raw bytes"
    pq.write_table(pa.table({"image_id": ["VST_IMG_7"], "bytes": [raw]}), tmp_path / "other.parquet")
    assert cli("convert", "--rewrite", tmp_path / "other.parquet", "--parquet", tmp_path / "new.parquet")[0] == 0
    assert base64.b64decode(pd.read_parquet(tmp_path / "new.parquet").loc["VST_IMG_7"]["base64"]) == raw
    code, text = cli("convert", "--rewrite", tmp_path / "VST.json", "--out", tmp_path / "x.json")
    assert code == 2 and "--parquet" in text
    code, text = cli("convert", "--images", tmp_path, "--out", tmp_path / "x.json")
    assert code == 2 and "--scene is required" in text


def test_original_plugin_run_gets_image_ids_from_the_scene_and_the_image_file(original, server):
    generate(server, "--name", "video.DenseCaptions")
    run = original / "output" / "DenseCaptions" / "v1"
    assert cli("convert", "--rewrite", "DC.json", "--parquet", "DC.parquet")[0] == 0

    code, text = cli("export", run, "--scene", "DC", "--images", "DC.parquet", "--out", "release")
    assert code == 0, text
    assert "image ids of 2 queries taken from DC.parquet" in text and "warning" not in text
    data = json.loads((original / "release" / "DC_instructions.json").read_text())["data"]
    assert len(data) == 4  # the fake server answers two pairs a query
    first, last = data["DC_INS_00001"], data["DC_INS_00004"]  # queries in id order: v_alpha, then v_beta
    assert first["image_ids"] == [f"DC_IMG_v_alpha_{k:04d}" for k in range(3)]
    assert last["image_ids"] == [f"DC_IMG_v_beta_{k:04d}" for k in range(2)]

    images = pd.read_parquet("DC.parquet")
    frames = json.loads((original / "DC.json").read_text())
    for entry in data.values():
        assert [images.loc[i]["base64"] for i in entry["image_ids"]] == [frames[i] for i in entry["image_ids"]]
    table = pd.read_parquet(original / "release" / "DC_instructions.parquet")
    assert table.loc["DC_INS_00001"]["instruction"] == first["instruction"]
    assert list(table.loc["DC_INS_00004"]["image_ids"]) == last["image_ids"]
    assert table.index.name == "id" and table.index.is_unique
    code, text = cli("validate", "release/DC_instructions.json", "--train", "release/DC_train.json",
                     "--images", "DC.parquet")
    assert code == 0, text


def test_original_plugin_run_without_an_image_file_says_how_many_and_the_fix(original, server):
    generate(server, "--name", "video.DenseCaptions")
    run = original / "output" / "DenseCaptions" / "v1"
    result = export_run(run, scene="DC", parquet=False)
    assert result.no_images == result.instructions_count == 4 and result.derived == 0
    assert result.no_images_hint.startswith("4 of 4 instructions have no image_ids")
    assert "--images DC.json" in result.no_images_hint
    code, text = cli("export", run, "--scene", "DC", "--no-parquet")
    assert code == 0 and "warning: 4 of 4 instructions have no image_ids" in text, text

    release = run / "export"
    code, text = cli("validate", release / "DC_instructions.json")
    assert code == 1 and "error: no image_ids: 4" in text and "--allow-no-images" in text, text
    code, text = cli("validate", release / "DC_instructions.json", "--allow-no-images")
    assert code == 0 and "warning: no image_ids: 4" in text, text

    code, text = cli("export", run)  # no scene: the fix names both flags
    assert code == 2 and "pass --scene" in text and "--prefix XX" in text
    code, text = cli("export", run, "--scene", "MINE")
    assert code == 2 and "--prefix MINE" in text


def _pairs_file(folder: Path, queries: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "pairs.jsonl").open("w") as f:
        for qid in queries:
            f.write(json.dumps({"id": qid, "pairs": [{"instruction": f"what about {qid}?", "answer": "this."}],
                                "meta": {}}) + "\n")
    return folder


@pytest.mark.parametrize("scene,queries,present,expected", [
    ("SD", ["12", "345"], ["SD_IMG_00012_1", "SD_IMG_00012_2", "SD_IMG_00345_1"],
     [["SD_IMG_00012_1", "SD_IMG_00012_2"], ["SD_IMG_00345_1"]]),
    ("LACONV", ["139"], ["LA_IMG_000000000139"], [["LA_IMG_000000000139"]]),
    ("CGD", ["139_285"], ["CGD_IMG_000000000139", "CGD_IMG_COCO_val2014_000000000285"],
     [["CGD_IMG_000000000139", "CGD_IMG_COCO_val2014_000000000285"]]),
    ("E4D", ["uid1_clip000002"], ["E4D_IMG_uid1_00000004", "E4D_IMG_uid1_00000005"],
     [["E4D_IMG_uid1_00000004", "E4D_IMG_uid1_00000005"]]),
    ("SN", ["scene0000_00"], ["SN_IMG_scene0000_00_color_000000"], [["SN_IMG_scene0000_00_color_000000"]]),
])
def test_image_ids_derived_per_scene(tmp_path, scene, queries, present, expected):
    run = _pairs_file(tmp_path / "run", queries)
    (tmp_path / "images.json").write_text(json.dumps({i: pixel(0) for i in present + ["X_IMG_unrelated"]}))
    r = export_run(run, scene=scene, images=tmp_path / "images.json", parquet=False)
    data = json.loads(r.instructions.read_text())["data"]
    assert [e["image_ids"] for e in data.values()] == expected
    assert r.derived == len(queries) and r.no_images == 0 and r.no_images_hint is None


def test_underivable_and_unmatched_queries_are_reported(tmp_path):
    (tmp_path / "images.json").write_text(json.dumps({"VST_IMG_1": pixel(1), "SD_IMG_00001_1": pixel(1)}))
    r = export_run(_pairs_file(tmp_path / "vst", ["album9"]), scene="VST", images=tmp_path / "images.json",
                   parquet=False)
    assert r.no_images == 1 and "VST image ids cannot be derived" in r.no_images_hint
    assert "attach image_ids" in r.no_images_hint
    r = export_run(_pairs_file(tmp_path / "sd", ["7"]), scene="SD", images=tmp_path / "images.json", parquet=False)
    assert r.no_images == 1 and "has no image for queries such as '7'" in r.no_images_hint


def test_sn_conversation_fields_survive_export(tmp_path):
    run = tmp_path / "sn"
    run.mkdir()
    conv = {"conversation": 1, "activity": "make tea", "human_role": "a guest", "reason": "the kettle is here"}
    pairs = [{"instruction": f"step {k}?", "answer": "this.", **conv, "round": k} for k in (1, 2)]
    (run / "pairs.jsonl").write_text(json.dumps({"id": "scene0000_00", "pairs": pairs, "meta": {
        "image_ids": ["SN_IMG_scene0000_00_color_000000"]}}) + "\n")
    r = export_run(run, scene="SN", parquet=False)
    data = json.loads(r.instructions.read_text())["data"]
    assert data["SN_INS_00002"] == {"instruction": "step 2?", "answer": "this.",
                                    "image_ids": ["SN_IMG_scene0000_00_color_000000"], "rel_ins_ids": ["SN_INS_00001"],
                                    **conv, "round": 2}
    assert json.loads(r.train.read_text()) == {"SN_INS_00001": ["SN_INS_00002"]}
    assert validate_files(r.instructions, train=r.train).ok


def test_no_images_warning_fits_sn_and_vst(tmp_path):
    """SN queries name their frames by prefix; VST photo ids cannot be derived: neither is an original plugin."""
    sn = _pairs_file(tmp_path / "sn", ["scene0000_00"])
    lines = [json.loads(line) for line in (sn / "pairs.jsonl").read_text().splitlines()]
    lines[0]["meta"] = {"image_ids": [], "image_prefix": "SN_IMG_scene0000_00_color_"}
    (sn / "pairs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    hint = export_run(sn, scene="SN", parquet=False).no_images_hint
    assert "only by prefix" in hint and "--images SN.parquet" in hint and "--scene SN --images scannet/" in hint
    assert "original Syphus" not in hint
    hint = export_run(_pairs_file(tmp_path / "vst", ["album9"]), scene="VST", parquet=False).no_images_hint
    assert "cannot be derived" in hint and "--images" not in hint and "original Syphus" not in hint


def test_example_dataset_run_export_validate_view_with_a_prefix(project, server):
    generate(server, "--name", "Example.example")
    run = project / "output" / "Example" / "v1"
    code, text = cli("export", run, "--prefix", "EX")
    assert code == 0, text
    release = run / "export"
    data = json.loads((release / "EX_instructions.json").read_text())["data"]
    assert list(data)[:2] == ["EX_INS_00001", "EX_INS_00002"] and len(data) == 24  # 8 scenes, the 3 pairs a query the system message asks for
    assert "a text-only dataset needs none" in text
    assert pd.read_parquet(release / "EX_instructions.parquet").loc["EX_INS_00002"]["instruction"] == \
        data["EX_INS_00002"]["instruction"]

    code, text = cli("validate", release / "EX_instructions.json", "--train", release / "EX_train.json")
    assert code == 0 and "scene EX: 24 instructions" in text and "warning: no image_ids: 24" in text, text
    code, text = cli("view", release / "EX_instructions.json")
    assert code == 0 and (release / "EX_instructions_view" / "index.html").is_file(), text
    assert "wrote 24 pairs" in text

    # with an image file of EX_IMG_<query id>, the images are linked
    first_query = json.loads((project / "datasets/samples/example_scenes.jsonl").read_text().splitlines()[0])["id"]
    (project / "EX.json").write_text(json.dumps({f"EX_IMG_{first_query}": pixel(1)}))
    r = export_run(run, prefix="EX", images=project / "EX.json", parquet=False)
    assert json.loads(r.instructions.read_text())["data"]["EX_INS_00001"]["image_ids"] == [f"EX_IMG_{first_query}"]
    assert r.derived == 1 and r.no_images == 21  # the other 7 queries, 3 pairs each

    code, text = cli("export", run, "--prefix", "ex")
    assert code == 2 and "capitals and digits" in text
    with pytest.raises(UserError, match="not both"):
        export_run(run, scene="DC", prefix="EX")


def test_original_config_sends_the_original_request(project, server):
    cfg = load_config(ROOT / "configs" / "original.yaml")
    assert cfg.endpoint.model == "gpt-3.5-turbo" and cfg.cost.price_as == "gpt-3.5-turbo"
    assert (cfg.generation.temperature, cfg.generation.top_p, cfg.generation.max_tokens) == (0.7, 0.95, 3200)
    server.responder = lambda body, n: Reply.ok("Question: what?\nAnswer: that.")
    generate(server, "--config", ROOT / "configs" / "original.yaml", "--name", "Example.example",
             "--slice_end", "1")
    body = server.requests[0].body
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == ("gpt-3.5-turbo", 0.7, 0.95, 3200)
    assert body["frequency_penalty"] == 0 and body["presence_penalty"] == 0

    # What the original Syphus sent: the system message, each in-context turn (an assistant turn given as
    # pairs becomes "Prefix: text\n" per field), then the annotation; its settings; no schema.
    prompt = json.loads((project / "prompts" / "example.json").read_text())
    from syphus.engine.workload import load_dataset
    first = next(iter(load_dataset(load_config(None, {"name": "Example.example"})).dataset.iter_query_inputs()))
    turns = [{"role": "system", "content": prompt["system_message"]}]
    for turn in prompt["in_context"]:
        content = turn["content"]
        if turn["role"] == "assistant" and not isinstance(content, str):
            content = "".join(f"{prefix}: {text}\n" for pair in content for prefix, text in pair.items())
        turns.append({"role": turn["role"], "content": content})
    turns.append({"role": "user", "content": first["sentences"]})
    assert body == {"model": "gpt-3.5-turbo", "messages": turns, "temperature": 0.7, "max_tokens": 3200,
                    "top_p": 0.95, "frequency_penalty": 0, "presence_penalty": 0, "stop": None}
    assert json.dumps(body["messages"]) == json.dumps(turns)  # byte for byte, key order too
