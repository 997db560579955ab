"""--mode batch against a fake Batch API on loopback: splitting, re-driving, crashes, budget, status."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import pytest

from syphus import plugins
from syphus.batch import BatchAPI, BatchRunner
from syphus.cli import main
from syphus.config import load_config
from syphus.job import load_dataset, make_budget, query_stream, run_folder, run_job
from syphus.endpoint import resolve_endpoint
from syphus.store import RunStore
from tests.conftest import KEY
from tests.fakebatch import FakeBatchAPI
from tests.fakeserver import Reply
from tests.helpers import lines, make_numbers, query_id, settled

ENV = {"OPENAI_API_KEY": KEY}


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
def bserver():
    with FakeBatchAPI() as srv:
        yield srv


def config(server, **flags):
    base = {"name": "Numbers", "endpoint.base_url": server.base_url, "mode": "batch",
            "batch.poll_interval": 0.01}
    return load_config(None, {**base, **flags})


def run(server, **flags):
    return asyncio.run(run_job(config(server, **flags), ENV, progress=False, install_signals=False, sleep=no_sleep))


def uploaded_lines(server):
    return [[json.loads(x) for x in server.file_content(f["id"]).splitlines() if x.strip()] for f in server.uploads]


def test_batches_split_by_request_count_and_settle_every_query(project, bserver):
    make_numbers(project, 7)
    result = run(bserver, **{"batch.max_requests_per_file": 3})
    assert result.status == "complete"
    files = uploaded_lines(bserver)
    assert [len(f) for f in files] == [3, 3, 1]
    assert files[0][0]["url"] == "/v1/chat/completions" and files[0][0]["body"]["model"] == "gpt-4o-mini"
    assert files[0][0]["custom_id"] == "q00000"
    assert len(bserver.batches_created) == 3
    folder = project / "output" / "Numbers" / "v1"
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(7)]
    assert all(r["batch"].startswith("batch_") and r["pairs"] for r in lines(folder / "pairs.jsonl"))
    assert [c for c in bserver.calls if c[0] == "POST" and c[1].endswith("/chat/completions")] == []


def test_split_by_bytes_and_enqueued_tokens(project, bserver):
    make_numbers(project, 12)
    result = run(bserver, **{"batch.max_bytes_per_file": 2048, "batch.max_enqueued_tokens": 1200,
                             "generation.max_tokens": 100})
    assert result.status == "complete"
    for f in bserver.uploads:
        assert f["bytes"] <= 2048
    state = [json.loads(x) for x in (project / "output" / "Numbers" / "v1" / "batch" / "state.jsonl").read_text()
             .splitlines()]
    assert all(e["tokens"] <= 1200 for e in state if e["event"] == "chunk")
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == [f"q{i:05d}" for i in range(12)]


def test_partial_failures_are_redriven_or_recorded(project, bserver):
    make_numbers(project, 6)
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def responder(body, n):
        qid = query_id(body)
        with lock:
            seen[qid] = seen.get(qid, 0) + 1
        if qid == "q00001" and seen[qid] == 1:
            return Reply.status(500)  # transient: into a second batch
        if qid == "q00002":
            return Reply.status(400, body={"error": {"message": "bad request", "code": "invalid_value"}})
        if qid == "q00003":
            return Reply.ok("no pairs here")
        return Reply.ok(f"Question: what is {qid}?\nAnswer: a ball.")

    bserver.responder = responder
    assert run(bserver).status == "complete"
    folder = project / "output" / "Numbers" / "v1"
    s = settled(folder)
    assert sorted(s["pairs"]) == ["q00000", "q00001", "q00004", "q00005"]
    assert s["invalid"] == ["q00003"] and s["errors"] == ["q00002"]
    assert lines(folder / "errors.jsonl")[0]["kind"] == "bad_request"
    assert [len(f) for f in uploaded_lines(bserver)] == [6, 1]  # only q00001 went again
    assert seen["q00001"] == 2 and seen["q00000"] == 1


def test_expired_batch_sends_the_rest_again(project, bserver):
    make_numbers(project, 5)
    bserver.expire_next_batch(after=2)
    assert run(bserver).status == "complete"
    assert [len(f) for f in uploaded_lines(bserver)] == [5, 3]
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == [f"q{i:05d}" for i in range(5)]


def test_failed_batch_goes_again_then_succeeds(project, bserver):
    make_numbers(project, 3)
    bserver.fail_next_batch(code="token_limit_exceeded")
    assert run(bserver).status == "complete"
    assert len(bserver.batches_created) == 2
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == ["q00000", "q00001", "q00002"]


def test_failed_batch_is_retried_a_bounded_number_of_times(project, bserver):
    make_numbers(project, 3)
    bserver.fail_next_batch(code="token_limit_exceeded")
    result = run(bserver, **{"batch.max_rounds": 1})
    assert result.status == "complete"
    folder = project / "output" / "Numbers" / "v1"
    s = settled(folder)
    assert sorted(s["errors"]) == ["q00000", "q00001", "q00002"] and s["pairs"] == []
    assert len(bserver.batches_created) == 1
    assert "after 1 batch rounds" in lines(folder / "errors.jsonl")[0]["message"]


class Crash(BaseException):
    """Stands for the process dying at a chosen instant."""


def crashing_api(where: str):
    class API(BatchAPI):
        async def upload(self, path, filename):
            result = await super().upload(path, filename)
            if where == "after upload":
                raise Crash
            return result

        async def create(self, *args):
            if where == "before create":
                raise Crash
            result = await super().create(*args)
            if where == "after create":
                raise Crash
            return result
    return API


async def run_with(api_class, cfg):
    loaded = load_dataset(cfg)
    items, _ = query_stream(loaded, cfg)
    store = RunStore(run_folder(cfg, loaded.dataset)).open()
    try:
        async with api_class(resolve_endpoint(cfg.endpoint, ENV)) as api:
            runner = BatchRunner(loaded.dataset, api, store, cfg, make_budget(cfg, ENV, store.totals),
                                 skip=lambda q: q in store.answered or q in store.failed, sleep=no_sleep)
            return await runner.run(items)
    finally:
        store.close()


@pytest.mark.parametrize("where", ["after upload", "before create", "after create"])
def test_a_crash_around_submission_never_submits_twice(project, bserver, where):
    make_numbers(project, 4)
    cfg = config(bserver)
    with pytest.raises(Crash):
        asyncio.run(run_with(crashing_api(where), cfg))
    plugins._loaded.clear()
    assert asyncio.run(run_with(BatchAPI, cfg)) == "complete"
    assert len(bserver.uploads) == 1
    assert len(bserver.batches_created) == 1
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == [f"q{i:05d}" for i in range(4)]


def test_a_crash_while_collecting_settles_each_query_once(project, bserver):
    make_numbers(project, 4)
    cfg = config(bserver)

    class API(BatchAPI):
        downloads = 0

        async def download(self, file_id, dest):
            await super().download(file_id, dest)
            raise Crash  # the output file is on disk, nothing recorded as collected

    with pytest.raises(Crash):
        asyncio.run(run_with(API, cfg))
    assert asyncio.run(run_with(BatchAPI, cfg)) == "complete"
    ids = settled(project / "output" / "Numbers" / "v1")["pairs"]
    assert sorted(ids) == [f"q{i:05d}" for i in range(4)] and len(ids) == 4


def test_interrupted_then_resumed_polls_the_same_batch(project, bserver):
    make_numbers(project, 3)
    cfg = config(bserver)

    class API(BatchAPI):
        async def retrieve(self, batch_id):
            raise Crash

    with pytest.raises(Crash):
        asyncio.run(run_with(API, cfg))
    assert asyncio.run(run_with(BatchAPI, cfg)) == "complete"
    assert len(bserver.batches_created) == 1


def test_budget_stops_batch_planning(project, bserver):
    (project / "prices.yaml").write_text("toy: {input: 1000.0, output: 1000.0, batch_input: 1000.0, "
                                         "batch_output: 1000.0}\n")
    make_numbers(project, 10)
    result = run(bserver, **{"endpoint.model": "toy", "cost.pricing": "prices.yaml", "cost.max_cost": 0.25,
                             "generation.max_tokens": 20})
    assert result.status == "budget"
    sent = sum(len(f) for f in uploaded_lines(bserver))
    assert 0 < sent < 10
    assert result.budget.spent <= 0.25
    result = run(bserver, **{"endpoint.model": "toy", "cost.pricing": "prices.yaml", "cost.max_cost": 10,
                             "generation.max_tokens": 20})
    assert result.status == "complete"
    assert sum(len(f) for f in uploaded_lines(bserver)) == 10  # the rest only, each once


def test_azure_batch_paths(project, bserver):
    make_numbers(project, 2)
    env = {"AZURE_OPENAI_ENDPOINT": bserver.root_url, "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "gpt4o-batch"}
    cfg = load_config(None, {"name": "Numbers", "mode": "batch", "batch.poll_interval": 0.01})
    result = asyncio.run(run_job(cfg, env, progress=False, install_signals=False, sleep=no_sleep))
    assert result.status == "complete"
    assert bserver.batches_created[0]["endpoint"] == "/chat/completions"
    assert uploaded_lines(bserver)[0][0]["body"]["model"] == "gpt4o-batch"
    assert all(path.startswith("/openai/") for _, path in bserver.calls)


def test_status_command_and_dry_run_send_nothing_new(project, bserver):
    make_numbers(project, 3)
    assert run(bserver).status == "complete"
    calls = len(bserver.calls)
    out = io.StringIO()
    code = main(["--name", "Numbers", "--mode", "batch", "--base_url", bserver.base_url, "--status"], env=ENV,
                stream=out)
    assert code == 0 and "chunk 0001 round 1 collected" in out.getvalue() and "3/3 done" in out.getvalue()
    out = io.StringIO()
    assert main(["--name", "Numbers", "--mode", "batch", "--base_url", bserver.base_url, "--dry-run"], env=ENV,
                stream=out) == 0
    assert len(bserver.calls) == calls


def test_batch_records_keep_the_query_meta_for_export(project, bserver):
    make_numbers(project, 3)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace(
        '"sentences": f"<<q{i:05d}>> a red ball on a table number {i}"}',
        '"sentences": f"<<q{i:05d}>> a red ball on a table number {i}", "image_ids": [f"SD_IMG_{i:05d}_1"]}')
        .replace("class Numbers(AbstractDataset):", "class Numbers(AbstractDataset):\n    scene = 'SD'"))
    bserver.enqueue(Reply.status(503))  # the first line fails and is re-driven: its meta must follow it
    assert run(bserver).status == "complete"
    records = lines(project / "output" / "Numbers" / "v1" / "pairs.jsonl")
    assert {r["id"]: r["meta"]["image_ids"] for r in records} == {f"q{i:05d}": [f"SD_IMG_{i:05d}_1"] for i in range(3)}
    from syphus.export import export_run
    data = json.loads(export_run(project / "output" / "Numbers" / "v1", parquet=False).instructions.read_text())
    assert data["data"]["SD_INS_00001"]["image_ids"] == ["SD_IMG_00000_1"]


def test_a_create_whose_answer_is_lost_is_not_sent_twice(project, bserver):
    from syphus.errors import TransientError
    make_numbers(project, 3)
    cfg = config(bserver)

    class API(BatchAPI):
        lost = 0

        async def create(self, *args):
            result = await super().create(*args)
            if API.lost == 0:
                API.lost += 1
                raise TransientError("connection dropped after the batch was made", kind="connection")
            return result

    assert asyncio.run(run_with(API, cfg)) == "complete"
    assert API.lost == 1
    assert len(bserver.batches_created) == 1
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == ["q00000", "q00001", "q00002"]


def test_without_an_enqueued_limit_every_chunk_is_submitted_at_once(project, bserver):
    make_numbers(project, 9)
    cfg = config(bserver, **{"batch.max_requests_per_file": 2})
    polls = []

    class API(BatchAPI):
        async def retrieve(self, batch_id):
            polls.append(len(bserver.batches_created))
            return await super().retrieve(batch_id)

    assert asyncio.run(run_with(API, cfg)) == "complete"
    assert polls[0] == 5  # all five batches were created before the first poll


def test_an_upload_whose_answer_is_lost_is_not_stored_twice(project, bserver):
    from syphus.errors import TransientError
    make_numbers(project, 2)
    cfg = config(bserver)

    class API(BatchAPI):
        lost = 0

        async def upload(self, path, filename):
            result = await super().upload(path, filename)
            if API.lost == 0:
                API.lost += 1
                raise TransientError("connection dropped after the upload", kind="connection")
            return result

    assert asyncio.run(run_with(API, cfg)) == "complete"
    assert API.lost == 1 and len(bserver.uploads) == 1 and len(bserver.batches_created) == 1
