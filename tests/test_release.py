"""The MIMIC-IT release format: export a run, validate files, check archives."""

from __future__ import annotations

import base64
import io
import json
import threading

import pytest

from syphus.cli import main
from syphus.engine.store import RunStore
from syphus.errors import UserError
from syphus.release.export import export_run
from syphus.release.images import image_ids, image_items
from syphus.release.validate import validate_files
from tests.conftest import KEY
from tests.fakeserver import Gate, Reply

VIDEOS = {f"v_video{i}": 3 + i for i in range(6)}  # video id -> duration in seconds

PLUGIN = '''
from syphus.dataset import AbstractDataset

VIDEOS = %r


class Clips(AbstractDataset):
    scene = "DC"

    def __init__(self, name="Clips", prompt_path="prompts/clips.json", query_inputs_path=None):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for vid, duration in VIDEOS.items():
            yield {"id": vid, "sentences": f"<<{vid}>> a person walks",
                   "image_ids": [f"DC_IMG_{vid}_{i:04d}" for i in range(duration)],
                   "image_prefix": f"DC_IMG_{vid}_"}
''' % (VIDEOS,)

PROMPT = {"system_message": "s", "in_context": []}


@pytest.fixture
def clips(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    (tmp_path / "prompts").mkdir()
    (tmp_path / "datasets" / "clips.py").write_text(PLUGIN)
    (tmp_path / "prompts" / "clips.json").write_text(json.dumps(PROMPT))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def reply_for(body):
    vid = body["messages"][-1]["content"].split(">>")[0][2:]
    n = 2 + int(vid[-1]) % 2
    return "\n".join(f"Question: what happens {k} in {vid}?\nAnswer: step {k} of {vid}." for k in range(n))


def run(server, *args):
    out = io.StringIO()
    code = main(["--name", "Clips", "--base_url", server.base_url, "--quiet", *args],
                env={"OPENAI_API_KEY": KEY}, stream=out)
    assert code == 0, out.getvalue()


def write_images(path, ids):
    pixel = base64.b64encode(b"\x89PNG fake").decode()
    path.write_text(json.dumps({i: pixel for i in ids}))


def test_run_export_validate_round_trip(clips, server):
    server.responder = lambda body, n: Reply.ok(reply_for(body))
    run(server)
    # the image file has 1 frame per second, except video 0 which was sampled at 2 frames only
    frames = [f"DC_IMG_{v}_{i:04d}" for v, d in VIDEOS.items() for i in range(d if v != "v_video0" else 2)]
    write_images(clips / "DC.json", frames)
    out = io.StringIO()
    assert main(["export", "output/Clips/v1", "--images", "DC.json", "--out", "release"], stream=out) == 0
    data = json.loads((clips / "release" / "DC_instructions.json").read_text())
    assert data["meta"]["author"] == "syphus" and set(data["meta"]) >= {"version", "time", "author"}
    entries = data["data"]
    assert list(entries)[:3] == ["DC_INS_00001", "DC_INS_00002", "DC_INS_00003"]
    assert len(entries) == sum(2 + int(v[-1]) % 2 for v in VIDEOS)
    first = entries["DC_INS_00001"]
    assert first["instruction"] == "what happens 0 in v_video0?"
    assert first["image_ids"] == ["DC_IMG_v_video0_0000", "DC_IMG_v_video0_0001"]  # frames present in the file
    assert first["rel_ins_ids"] == ["DC_INS_00002"]
    train = json.loads((clips / "release" / "DC_train.json").read_text())
    firsts = {k: v["rel_ins_ids"] for k, v in entries.items() if all(r > k for r in v["rel_ins_ids"])}
    assert train == firsts and len(train) == len(VIDEOS)  # by default one entry per visual input
    assert main(["export", "output/Clips/v1", "--images", "DC.json", "--out", "per_ins", "--train", "per_instruction",
                 "--no-parquet"], stream=io.StringIO()) == 0
    assert json.loads((clips / "per_ins" / "DC_train.json").read_text()) == {k: v["rel_ins_ids"]
                                                                              for k, v in entries.items()}

    import pyarrow.parquet as pq
    table = pq.read_table(clips / "release" / "DC_instructions.parquet").to_pylist()
    assert [r["id"] for r in table] == list(entries)
    assert table[0]["image_ids"] == first["image_ids"] and table[0]["query_id"] == "v_video0"

    out = io.StringIO()
    code = main(["validate", "release/DC_instructions.json", "--train", "release/DC_train.json",
                 "--images", "DC.json"], stream=out)
    assert code == 0, out.getvalue()
    assert "OK: no errors" in out.getvalue() and f"{len(entries)} instructions" in out.getvalue()


def test_export_without_image_file_uses_the_annotation(clips, server):
    server.responder = lambda body, n: Reply.ok(reply_for(body))
    run(server)
    r = export_run(clips / "output" / "Clips" / "v1", rel="none", parquet=False)
    entries = json.loads(r.instructions.read_text())["data"]
    assert entries["DC_INS_00001"]["image_ids"] == [f"DC_IMG_v_video0_{i:04d}" for i in range(3)]
    assert all(e["rel_ins_ids"] == [] for e in entries.values())
    assert r.parquet is None and r.instructions.parent.name == "export"


def test_ids_do_not_depend_on_completion_order(clips, server, monkeypatch):
    def video_of(body):
        return body["messages"][-1]["content"].split(">>")[0][2:]

    written = threading.Semaphore(0)  # one release per answer on disk (a spy: the real write runs first)
    write_answer = RunStore.write_answer

    def spy(self, record, valid):
        write_answer(self, record, valid)
        written.release()

    monkeypatch.setattr(RunStore, "write_answer", spy)

    def finish_in(order, gates, problems):
        """Once all six are held in flight, let one reply go at a time, each after the last is written."""
        try:
            if not server.wait_for(lambda: server.in_flight == len(VIDEOS), timeout=30):
                problems.append(f"only {server.in_flight} requests in flight at once")
                return
            for vid in order:
                gates[vid].open()
                if not written.acquire(timeout=30):
                    problems.append(f"the answer for {vid} was never written")
                    return
        finally:
            for gate in gates.values():  # a failure above must not leave the run hanging
                gate.open()

    orders = []
    for version, order in (("a", list(VIDEOS)), ("b", list(reversed(VIDEOS)))):  # video order, then reverse
        gates = {vid: Gate(timeout=60) for vid in VIDEOS}
        server.responder = lambda body, n, gates=gates: Reply.ok(reply_for(body)).after(gates[video_of(body)])
        problems: list[str] = []
        releaser = threading.Thread(target=finish_in, args=(order, gates, problems))
        releaser.start()
        run(server, "--dataset_version", version, "--num_threads", "6")
        releaser.join()
        assert problems == []
        lines = (clips / "output" / "Clips" / version / "pairs.jsonl").read_text().splitlines()
        orders.append([json.loads(line)["id"] for line in lines])
    assert orders[0] == list(VIDEOS) and orders[1] == list(reversed(VIDEOS))
    exported = [json.loads(export_run(clips / "output" / "Clips" / v, parquet=False).instructions.read_text())["data"]
                for v in ("a", "b")]
    assert exported[0] == exported[1]


def test_interrupted_and_resumed_run_exports_the_same_ids(clips, server):
    server.responder = lambda body, n: Reply.ok(reply_for(body))
    run(server, "--dataset_version", "whole")
    run(server, "--dataset_version", "split", "--slice_start", "3")
    run(server, "--dataset_version", "split")
    whole, split = (json.loads(export_run(clips / "output" / "Clips" / v, parquet=False).instructions.read_text())
                    for v in ("whole", "split"))
    assert whole["data"] == split["data"]


def test_export_needs_a_scene(tmp_path):
    (tmp_path / "pairs.jsonl").write_text('{"id": "a", "pairs": []}\n')
    with pytest.raises(UserError, match="pass --scene"):
        export_run(tmp_path)


def broken_release(tmp_path):
    text = """{"meta": {"version": "0.0.1", "time": "2023-06", "author": "x"}, "data": {
 "SD_INS_00001": {"instruction": "What changed?", "answer": "A car left.", "image_ids": ["SD_IMG_00012_1", "SD_IMG_12_2"], "rel_ins_ids": ["SD_INS_00002", "SD_INS_00009"]},
 "SD_INS_00002": {"instruction": "Anything else?", "answer": "  ", "image_ids": ["SD_IMG_00012_1"], "rel_ins_ids": []},
 "SD_INS_00002": {"instruction": "dup", "answer": "dup", "image_ids": [], "rel_ins_ids": []},
 "SD_INS_3": {"instruction": "x", "answer": "y", "image_ids": ["SD_IMG_00013_1"], "rel_ins_ids": []}
}}"""
    (tmp_path / "SD_instructions.json").write_text(text)
    (tmp_path / "SD_train.json").write_text(json.dumps({"SD_INS_00001": ["SD_INS_00002"], "SD_INS_00077": []}))
    write_images(tmp_path / "SD.json", ["SD_IMG_00012_1", "SD_IMG_00012_2"])


def test_validate_names_each_problem(tmp_path):
    broken_release(tmp_path)
    out = io.StringIO()
    code = main(["validate", str(tmp_path / "SD_instructions.json"), "--train", str(tmp_path / "SD_train.json"),
                 "--images", str(tmp_path / "SD.json")], stream=out)
    text = out.getvalue()
    assert code == 1, text
    assert "duplicate instruction id: 1" in text
    assert "unpadded SD id: 1" in text and "SD_IMG_00012_2" in text
    assert "image id missing from the image file: 2" in text and "(the file has SD_IMG_00012_2)" in text
    assert "rel_ins_ids pointing at a missing instruction: 1" in text and "SD_INS_00001 -> SD_INS_00009" in text
    assert "empty answer: 1" in text
    assert "instruction id off the convention: 1" in text and "SD_INS_3" in text
    assert "train entry for an unknown instruction: 1" in text and "SD_INS_00077" in text
    assert "FAILED" in text


@pytest.mark.parametrize("scene,image_id,kind", [
    ("TVC", "TVC_IMG_friends_s01e02_seg01_clip_03_friends_s01e02_seg01_clip_03_0004", "doubled TVC clip name"),
    ("SN", "SN_IMG_scene0000_color_000010", "SN scene id without its scan number"),
    ("SD", "SD_IMG_7_1", "unpadded SD id"),
])
def test_known_release_defects_are_named(tmp_path, scene, image_id, kind):
    path = tmp_path / f"{scene}_instructions.json"
    path.write_text(json.dumps({"meta": {}, "data": {f"{scene}_INS_00001": {
        "instruction": "q", "answer": "a", "image_ids": [image_id], "rel_ins_ids": []}}}))
    report = validate_files(path)
    assert not report.ok and report.counts[kind] == 1


def test_validate_warns_of_a_json_image_file_and_of_malformed_ids_inside_it(tmp_path):
    """SN_IMG_000000 (what convert made of ScanNet's color/000000.jpg before it read the layout)."""
    good = "SN_IMG_scene0000_00_color_000000"
    (tmp_path / "SN_instructions.json").write_text(json.dumps({"meta": {}, "data": {"SN_INS_00001": {
        "instruction": "q", "answer": "a", "image_ids": [good], "rel_ins_ids": []}}}))
    write_images(tmp_path / "SN.json", [good, "SN_IMG_000000"])
    out = io.StringIO()
    code = main(["validate", str(tmp_path / "SN_instructions.json"), "--images", str(tmp_path / "SN.json")], stream=out)
    text = out.getvalue()
    assert code == 0, text  # warnings: nothing referenced is missing
    assert "warning: a JSON image file loads only in older trainers: 1" in text
    assert f"fix: syphus convert --rewrite {tmp_path / 'SN.json'} --parquet {tmp_path / 'SN.parquet'}" in text
    assert "warning: image file ids off the scene's convention: 1" in text and "e.g. SN_IMG_000000:" in text
    assert good + ":" not in text
    assert main(["convert", "--rewrite", str(tmp_path / "SN.json"), "--parquet", str(tmp_path / "SN.parquet")],
                stream=io.StringIO()) == 0
    report = validate_files(tmp_path / "SN_instructions.json", images=tmp_path / "SN.parquet")
    assert report.ok and "a JSON image file loads only in older trainers" not in report.counts


def test_validate_reads_a_parquet_image_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    broken_release(tmp_path)
    pq.write_table(pa.table({"id": ["SD_IMG_00012_1", "SD_IMG_00012_2", "SD_IMG_00013_1"],
                             "base64": ["x", "y", "z"]}), tmp_path / "SD.parquet")
    report = validate_files(tmp_path / "SD_instructions.json", images=tmp_path / "SD.parquet")
    assert report.stats["images"] == 3
    assert report.counts["image id missing from the image file"] == 1


def test_one_reader_for_json_and_parquet_image_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    ids = ["SD_IMG_00012_1", "SD_IMG_00012_2"]
    write_images(tmp_path / "SD.json", ids)
    pixel = json.loads((tmp_path / "SD.json").read_text())[ids[0]]
    # a Parquet file from another tool: the id column named image_id
    pq.write_table(pa.table({"base64": [pixel, pixel], "image_id": ids}), tmp_path / "SD.parquet")
    assert list(image_items(tmp_path / "SD.json")) == list(image_items(tmp_path / "SD.parquet")) == \
        [(i, pixel) for i in ids]
    assert list(image_ids(tmp_path / "SD.parquet")) == ids
    pq.write_table(pa.table({"base64": [pixel]}), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match="no id column"):
        list(image_ids(tmp_path / "bad.parquet"))


def test_validate_names_the_line_of_broken_json(tmp_path):
    path = tmp_path / "DC_instructions.json"
    path.write_text('{"meta": {},\n "data": {\n  "DC_INS_00001": {"instruction": "q",}\n}}')
    out = io.StringIO()
    code = main(["validate", str(path)], stream=out)
    assert code == 2 and f"{path}:3:" in out.getvalue()
