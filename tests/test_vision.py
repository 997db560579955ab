"""Vision in the loop: each query's frames from a release image file, sent as image parts and counted.

The fake server records what it received; images are small real PNGs (OpenCV) in a JSON image file
as ``syphus convert`` writes it, so sizes, token counts and bytes can be checked exactly.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json

import cv2
import numpy as np
import pytest
import yaml

from syphus.cli import main
from syphus.cli.progress import render
from syphus.config import load_config
from syphus.engine.imagetokens import load_image_table
from syphus.engine.job import run_job
from syphus.engine.workload import load_dataset
from syphus.engine.stats import Stats
from tests.conftest import KEY, ROOT
from tests.fakebatch import FakeBatchAPI
from tests.helpers import lines, settled

TABLE = load_image_table(ROOT / "configs" / "image_tokens.yaml")


def png(width: int, height: int, seed: int, noise: bool = False) -> bytes:
    """A real PNG: noise (large files) or one flat colour per seed (tiny files of any size)."""
    if noise:
        pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    else:
        pixels = np.full((height, width, 3), seed % 256, dtype=np.uint8)
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


def items_of(name: str) -> list[dict]:
    loaded = load_dataset(load_config(None, {"name": name}))
    return list(loaded.dataset.iter_query_inputs())


def image_file(path, ids, sizes=((64, 48),), noise: bool = False) -> dict[str, bytes]:
    images = {i: png(*sizes[n % len(sizes)], seed=n, noise=noise) for n, i in enumerate(ids)}
    path.write_text(json.dumps({i: base64.b64encode(b).decode() for i, b in images.items()}))
    return images


def run(argv, server, env=None):
    out = io.StringIO()
    code = main(["--base_url", server.base_url, "--quiet", *argv], env=env or {"OPENAI_API_KEY": KEY}, stream=out)
    return code, out.getvalue()


def sent_images(body: dict) -> list[bytes]:
    parts = body["messages"][-1]["content"]
    return [base64.b64decode(p["image_url"]["url"].split(",", 1)[1]) for p in parts if p["type"] == "image_url"]


def test_video_frames_go_evenly_spaced_after_the_text_labelled_with_their_second(scenes, server):
    items = items_of("DC")[:2]
    ids = [i for item in items for i in item["image_ids"]]
    images = image_file(scenes / "DC.json", ids, sizes=((64, 48), (96, 96)))
    code, out = run(["--name", "DC", "--images", "DC.json", "--max_images", "4", "--image_detail", "low",
                     "--slice_end", "2", "--reply", "text"], server)
    assert code == 0, out
    for item in items:
        body = next(r.body for r in server.requests if r.body["messages"][-1]["content"][0]["text"] == item["sentences"])
        parts = body["messages"][-1]["content"]
        assert parts[0] == {"type": "text", "text": item["sentences"]}  # the annotations stay, first
        frames = item["image_ids"]
        chosen = [frames[round(k * (len(frames) - 1) / 3)] for k in range(4)]  # evenly spaced, first and last
        assert sent_images(body) == [images[i] for i in chosen]
        labels = [p["text"] for p in parts[1:] if p["type"] == "text"]
        assert labels == [f"Frame at {int(i[-4:])} s:" for i in chosen]
        assert all(p["image_url"]["detail"] == "low" for p in parts if p["type"] == "image_url")
        assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in parts if p["type"] == "image_url")
    records = {r["id"]: r for r in lines(scenes / "output" / "DC" / "v1" / "pairs.jsonl")}
    assert records[items[0]["id"]]["images"] == [items[0]["image_ids"][round(k * (len(items[0]["image_ids"]) - 1) / 3)]
                                                 for k in range(4)]


def test_the_two_spot_the_difference_images_are_labelled_first_and_second(scenes, server):
    item = items_of("SD")[0]
    images = image_file(scenes / "SD.json", item["image_ids"])
    code, out = run(["--name", "SD", "--images", "SD.json", "--slice_end", "1", "--reply", "text"], server)
    assert code == 0, out
    parts = server.requests[0].body["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "text", "image_url", "text", "image_url"]
    assert (parts[1]["text"], parts[3]["text"]) == ("The first image:", "The second image:")
    assert sent_images(server.requests[0].body) == [images[item["image_ids"][0]], images[item["image_ids"][1]]]


def test_image_tokens_count_in_the_estimate_and_the_dry_run(scenes, server):
    item = items_of("SD")[0]
    image_file(scenes / "SD.json", item["image_ids"], sizes=((1024, 1024), (2048, 4096)))
    out = io.StringIO()
    code = main(["--name", "SD", "--images", "SD.json", "--image_detail", "high", "--slice_end", "1", "--dry-run",
                 "--model", "gpt-4o", "--base_url", server.base_url], env={"OPENAI_API_KEY": KEY}, stream=out)
    assert code == 0, out.getvalue()
    assert server.request_count == 0
    # OpenAI's published examples for gpt-4o at high detail: 1024x1024 is 765 tokens, 2048x4096 is 1105
    assert "~2.0 a query, ~1870.0 tokens (as gpt-4o)" in out.getvalue()
    assert TABLE.tokens("gpt-4o", 1024, 1024, "high") + TABLE.tokens("gpt-4o", 2048, 4096, "high") == 1870


def test_a_query_whose_images_are_missing_is_an_error_naming_them_or_goes_text_only_when_allowed(scenes, server):
    items = items_of("SD")[:2]
    image_file(scenes / "SD.json", items[0]["image_ids"] + items[1]["image_ids"][:1])  # the second lacks _2
    code, out = run(["--name", "SD", "--images", "SD.json", "--slice_end", "2", "--reply", "text"], server)
    assert code == 0, out
    folder = scenes / "output" / "SD" / "v1"
    errors = lines(folder / "errors.jsonl")
    assert [e["id"] for e in errors] == [items[1]["id"]] and errors[0]["kind"] == "missing_images"
    assert items[1]["image_ids"][1] in errors[0]["message"] and errors[0]["attempts"] == 0  # nothing paid
    assert server.request_count == 1
    code, out = run(["--name", "SD", "--images", "SD.json", "--slice_end", "2", "--reply", "text",
                     "--allow_missing_images", "--dataset_version", "v2"], server)
    assert code == 0, out
    records = {r["id"]: r for r in lines(scenes / "output" / "SD" / "v2" / "pairs.jsonl")}
    assert records[items[1]["id"]]["images_missing"] == [items[1]["image_ids"][1]]
    assert records[items[1]["id"]]["images"] == [items[1]["image_ids"][0]]


def test_max_cost_stops_a_vision_run_in_time(scenes, server):
    items = items_of("SD")
    image_file(scenes / "SD.json", [i for item in items for i in item["image_ids"]], sizes=((2048, 2048),))
    (scenes / "prices.yaml").write_text(yaml.safe_dump({"gpt-4o": {"input": 2.5, "output": 10.0}}))
    # a query holds two 2048x2048 images at high detail (765 tokens each as gpt-4o) plus its text and
    # 100 completion tokens; $0.02 pays for about three of them at their worst case, not for all
    code, out = run(["--name", "SD", "--images", "SD.json", "--image_detail", "high", "--model", "gpt-4o",
                     "--pricing", "prices.yaml", "--max-cost", "0.02", "--max_tokens", "100", "--num_threads", "1",
                     "--reply", "text"], server)
    assert code == 4, out  # stopped before passing --max-cost
    meta = json.loads((scenes / "output" / "SD" / "v1" / "meta.json").read_text())
    assert meta["cost"]["spent_usd"] <= 0.02
    assert 1 <= server.request_count < len(items)
    assert meta["session"]["requests"] == server.request_count


def test_batch_lines_carry_the_images_and_files_split_by_bytes(scenes):
    items = items_of("SD")[:3]
    image_file(scenes / "SD.json", [i for item in items for i in item["image_ids"]], sizes=((64, 64),), noise=True)
    with FakeBatchAPI() as server:
        cfg = load_config(None, {"name": "SD", "endpoint.base_url": server.base_url, "mode": "batch",
                                 "batch.poll_interval": 0.01, "images.path": "SD.json", "slice_end": 3,
                                 "batch.max_bytes_per_file": 50_000, "reply.mode": "text"})

        async def no_sleep(_):
            await asyncio.sleep(0)

        result = asyncio.run(run_job(cfg, {"OPENAI_API_KEY": KEY}, install_signals=False, sleep=no_sleep))
        assert result.status == "complete"
        files = [[json.loads(x) for x in server.file_content(f["id"]).splitlines() if x] for f in server.uploads]
    assert [len(f) for f in files] == [1, 1, 1]  # a line with its two images is over half the byte limit
    body = files[0][0]["body"]
    assert sum(p["type"] == "image_url" for p in body["messages"][-1]["content"]) == 2
    assert sorted(settled(scenes / "output" / "SD" / "v1")["pairs"]) == sorted(i["id"] for i in items)


def test_an_unreadable_image_file_is_one_clear_error_before_anything_is_sent(scenes, server):
    (scenes / "DC.json").write_text("this is not an image file")
    code, out = run(["--name", "DC", "--images", "DC.json"], server)
    assert code == 2 and "DC.json" in out and server.request_count == 0


def test_the_progress_line_counts_images():
    s = Stats(total=4)
    s.images, s.image_tokens = 8, 12_000
    assert "images 8 (~12.0k tokens)" in render(s, 1.0)


def test_coldstart_compares_text_only_against_text_and_images_on_the_same_sample(scenes, server):
    items = items_of("SD")
    image_file(scenes / "SD.json", [i for item in items for i in item["image_ids"]])
    out = io.StringIO()
    code = main(["coldstart", "--name", "SD", "--base_url", server.base_url, "--quiet", "--sample", "3",
                 "--images", "SD.json", "--reply", "text", "--candidate", "current"], env={"OPENAI_API_KEY": KEY},
                stream=out)
    assert code == 0, out.getvalue()
    rows = {line.split()[0]: line for line in out.getvalue().splitlines() if line.startswith("current")}
    assert set(rows) == {"current", "current+images"}
    with_images = [r for r in server.requests if isinstance(r.body["messages"][-1]["content"], list)]
    text_only = [r for r in server.requests if isinstance(r.body["messages"][-1]["content"], str)]
    assert len(with_images) == len(text_only) == 3  # the same three queries, each way
    assert sorted(r.body["messages"][-1]["content"][0]["text"] for r in with_images) == \
        sorted(r.body["messages"][-1]["content"] for r in text_only)
    folders = {p.name: p for p in (scenes / "output" / "SD").iterdir() if p.name.startswith("coldstart-current")}
    plus = lines(next(p for n, p in folders.items() if "-images" in n) / "pairs.jsonl")
    plain = lines(next(p for n, p in folders.items() if "-images" not in n) / "pairs.jsonl")
    assert all(len(r["images"]) == 2 for r in plus) and all("images" not in r for r in plain)
    # the images' tokens show in what each query cost: two parts at the fake's 765 tokens each
    assert sum(r["usage"]["prompt_tokens"] for r in plus) - sum(r["usage"]["prompt_tokens"] for r in plain) \
        >= 3 * 2 * 765 - 30


@pytest.mark.parametrize("name", ["LACONV", "CGD", "SD", "DC", "TVC", "E4D", "SN", "VST"])
def test_every_scene_sends_its_images_in_order(scenes, server, name):
    """Each built-in scene's first query: its images (attached ids, or the frames its prefix names) in order."""
    item = items_of(name)[0]
    ids = list(item.get("image_ids") or []) or [f"{item['image_prefix']}{k:04d}" for k in range(3)]
    images = image_file(scenes / f"{name}.json", ids + ["OTHER_IMG_0001"])  # an id no query names
    code, out = run(["--name", name, "--images", f"{name}.json", "--slice_end", "1", "--reply", "text"], server)
    assert code == 0, out
    assert sent_images(server.requests[0].body) == [images[i] for i in ids]
    folder = scenes / "output" / name / "v1"
    record = (lines(folder / "pairs.jsonl") + lines(folder / "invalid.jsonl"))[0]  # SN parses conversations only
    assert record["images"] == ids


def test_frames_are_labelled_by_the_time_convert_recorded(scenes, server):
    """A file converted at --fps 0.5: frame k shows second 2k, and its label says so (the record beside it)."""
    from syphus.engine.samples import PARTS_NAME, Sample, finish, record_path
    [item] = items_of("DC")[:1]
    ids = item["image_ids"]
    image_file(scenes / "DC.json", ids)
    parts = scenes / PARTS_NAME
    parts.write_text("".join(json.dumps(Sample(i, "v", "v.mp4", len(ids), 2.0 * int(i[-4:]), 20 * int(i[-4:]),
                                               False).to_json()) + "\n" for i in ids))
    finish(parts, record_path(scenes / "DC.json"))
    code, out = run(["--name", "DC", "--images", "DC.json", "--max_images", "4", "--slice_end", "1",
                     "--reply", "text"], server)
    assert code == 0, out
    parts = server.requests[0].body["messages"][-1]["content"]
    chosen = [ids[round(k * (len(ids) - 1) / 3)] for k in range(4)]
    assert [p["text"] for p in parts[1:] if p["type"] == "text"] == [f"Frame at {2 * int(i[-4:])} s:" for i in chosen]
