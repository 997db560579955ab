"""--mode batch against a fake Batch API on loopback: splitting, re-driving, crashes (and a real SIGKILL at every
state event), a torn state, --retry_errors, budget, status."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from syphus import plugins
from syphus.engine.batch import BatchAPI, BatchRunner, BatchState
from syphus.cli import main
from syphus.config import load_config
from syphus.engine.job import run_job
from syphus.engine.pricing import make_budget
from syphus.engine.workload import load_dataset, prepare_inputs, run_folder
from syphus.engine.endpoint import resolve_endpoint
from syphus.errors import FatalError, UserError
from syphus.engine.store import RunStore
from tests.conftest import KEY
from tests.fakebatch import FakeBatchAPI
from tests.fakeserver import Reply
from tests.forkserver import WARM, Forks
from tests.helpers import SkewLoop, lines, make_numbers, query_id, settled

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
    return asyncio.run(run_job(config(server, **flags), ENV, install_signals=False, sleep=no_sleep))


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
    assert run(bserver, **{"reply.repairs": 0}).status == "complete"  # no pairs stays invalid (tests/test_repair.py)
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
    inputs = prepare_inputs(loaded, cfg)
    inputs.check.close()
    items = inputs.items
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


class _CrashAtFirstPoll(BatchAPI):
    async def retrieve(self, batch_id):
        raise Crash


def crash_at_first_poll(cfg) -> None:
    """A run that submits its batches, then dies at the first poll."""
    with pytest.raises(Crash):
        asyncio.run(run_with(_CrashAtFirstPoll, cfg))


def test_interrupted_then_resumed_polls_the_same_batch(project, bserver):
    make_numbers(project, 3)
    cfg = config(bserver)
    crash_at_first_poll(cfg)
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


def test_batch_replies_without_usage_are_charged_at_their_worst_case(project, bserver):
    """--max-cost in batch mode holds whatever the results say: no usage is the worst case, estimated."""
    (project / "prices.yaml").write_text("toy: {input: 1000.0, output: 1000.0, batch_input: 1000.0, "
                                         "batch_output: 1000.0}\n")
    make_numbers(project, 6)
    bserver.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.", usage={})
    flags = {"endpoint.model": "toy", "cost.pricing": "prices.yaml", "cost.max_cost": 10,
             "generation.max_tokens": 20, "generation.extra": {"max_completion_tokens": 40}}
    result = run(bserver, **flags)
    assert result.status == "complete"
    assert uploaded_lines(bserver)[0][0]["body"]["max_completion_tokens"] == 40
    records = lines(project / "output" / "Numbers" / "v1" / "pairs.jsonl")
    assert all(r["estimated_usage"]["completion_tokens"] == 40 for r in records)  # the larger budget counts
    assert result.budget.estimated == pytest.approx(result.budget.spent) and result.budget.spent > 0
    again = make_budget(config(bserver, **flags), ENV, RunStore(project / "output" / "Numbers" / "v1").scan().totals)
    assert again.spent == pytest.approx(result.budget.spent)  # a restart still counts it


def test_meta_json_cannot_hold_is_an_error_before_anything_is_paid(project, bserver):
    make_numbers(project, 3)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace(
        'yield {"id"', 'yield {"tags": {1, 2}, "id"} if i == 1 else {"id"').replace(
        '"tags": {1, 2}, "id"}', '"tags": {1, 2}, "id": "q00001", "sentences": "<<q00001>>"}'))
    result = run(bserver)
    assert result.status == "complete"
    folder = project / "output" / "Numbers" / "v1"
    s = settled(folder)
    assert sorted(s["pairs"]) == ["q00000", "q00002"] and s["errors"] == ["q00001"]
    err = lines(folder / "errors.jsonl")[0]
    assert err["kind"] == "unencodable" and "tags is a set" in err["message"] and err["attempts"] == 0
    assert "q00001" not in [line["custom_id"] for f in uploaded_lines(bserver) for line in f]


def test_an_exception_at_any_stage_of_one_batch_query_ends_in_a_record(project, bserver):
    """build_messages raising, a parser bug: each is that query's record, never the run's end."""
    make_numbers(project, 4)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text() + """
    def build_messages(self, item):
        if item["id"] == "q00001":
            raise KeyError("caption")
        return super().build_messages(item)

    def parse_response(self, text, finish_reason):
        if "q00002" in text:
            raise ZeroDivisionError("parser bug")
        return super().parse_response(text, finish_reason)
""")
    bserver.responder = lambda body, n: Reply.ok(f"Question: what is {query_id(body)}?\nAnswer: a ball.")
    assert run(bserver).status == "complete"
    folder = project / "output" / "Numbers" / "v1"
    s = settled(folder)
    assert sorted(s["pairs"]) == ["q00000", "q00003"] and s["invalid"] == ["q00002"] and s["errors"] == ["q00001"]
    err = lines(folder / "errors.jsonl")[0]
    assert err["kind"] == "plugin" and "KeyError" in err["message"] and err["attempts"] == 0
    assert "ZeroDivisionError" in lines(folder / "invalid.jsonl")[0]["reason"]


def test_azure_batch_paths(project, bserver):
    make_numbers(project, 2)
    env = {"AZURE_OPENAI_ENDPOINT": bserver.root_url, "AZURE_OPENAI_API_KEY": KEY,
           "AZURE_OPENAI_DEPLOYMENT": "gpt4o-batch"}
    cfg = load_config(None, {"name": "Numbers", "mode": "batch", "batch.poll_interval": 0.01})
    result = asyncio.run(run_job(cfg, env, install_signals=False, sleep=no_sleep))
    assert result.status == "complete"
    assert bserver.batches_created[0]["endpoint"] == "/chat/completions"
    assert uploaded_lines(bserver)[0][0]["body"]["model"] == "gpt4o-batch"
    assert all(path.startswith("/openai/") for _, path in bserver.calls)
    sent = control_plane(bserver)
    assert sent and all(r.query.get("api-version") == "2024-10-21" and r.headers["api-key"] == KEY
                        and "authorization" not in r.headers for r in sent)


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
    from syphus.release.export import export_run
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


# --- issue 11.5: batch mode keeps what it paid for ----------------------------------
def test_retry_errors_settles_the_answers_it_paid_for(project, bserver):
    """Fault: the answers to ids sent again by --retry_errors were dropped as "already failed"."""
    make_numbers(project, 4)
    broken = {"q00001", "q00003"}

    def responder(body, n):
        qid = query_id(body)
        if qid in broken:
            return Reply.status(400, body={"error": {"message": "bad request", "code": "invalid_value"}})
        return Reply.ok(f"Question: what is {qid}?\nAnswer: a ball.")

    bserver.responder = responder
    folder = project / "output" / "Numbers" / "v1"
    assert run(bserver).status == "complete"
    assert sorted(settled(folder)["errors"]) == ["q00001", "q00003"]
    broken.clear()
    result = asyncio.run(run_job(config(bserver), ENV, retry_errors=True, install_signals=False,
                                 sleep=no_sleep))
    assert result.status == "complete"
    assert [r["custom_id"] for r in uploaded_lines(bserver)[-1]] == ["q00001", "q00003"]
    s = settled(folder)
    assert sorted(s["pairs"]) == [f"q{i:05d}" for i in range(4)] and s["errors"] == [] and s["invalid"] == []
    sent = (len(bserver.uploads), len(bserver.batches_created), len(bserver.lines_run))
    assert run(bserver).status == "complete"
    assert (len(bserver.uploads), len(bserver.batches_created), len(bserver.lines_run)) == sent
    assert sorted(bserver.lines_run) == ["q00000", "q00001", "q00001", "q00002", "q00003", "q00003"]


def test_a_torn_last_state_event_is_moved_aside_and_the_run_resumes(project, bserver):
    """Fault: half an event (a crash mid-write) at the end of state.jsonl stopped every rerun."""
    make_numbers(project, 3)
    cfg = config(bserver)
    crash_at_first_poll(cfg)
    folder = project / "output" / "Numbers" / "v1"
    state = folder / "batch" / "state.jsonl"
    whole = state.read_bytes()
    torn = b'{"event": "polled", "n": 1, "status": "in_pro'
    with state.open("ab") as f:
        f.write(torn)
    assert asyncio.run(run_with(BatchAPI, cfg)) == "complete"
    assert (folder / "batch" / "state.jsonl.torn").read_bytes() == torn + b"\n"
    assert state.read_bytes().startswith(whole + b'{"event": "')
    assert all(json.loads(x) for x in state.read_bytes().splitlines())
    ids = settled(folder)["pairs"]
    assert sorted(ids) == ["q00000", "q00001", "q00002"] and len(ids) == 3
    assert len(bserver.uploads) == 1 and len(bserver.batches_created) == 1
    assert asyncio.run(run_with(BatchAPI, cfg)) == "complete"  # and the state stays readable


def test_an_unreadable_state_event_before_the_last_names_the_line_and_the_fix(tmp_path):
    """Fault: a damaged event in the middle (not a torn tail) must stop the run, saying where and what to do."""
    state = BatchState(tmp_path / "batch")
    path = state.path
    path.write_bytes(path.read_bytes() + b"{not json\n" + b'{"event": "run", "token": "abcd"}\n')
    with pytest.raises(UserError, match=r"state\.jsonl:2: unreadable batch state.*move .*batch away"):
        BatchState(tmp_path / "batch")


def test_a_short_write_of_a_state_event_is_continued(tmp_path, monkeypatch):
    """Fault: os.write may write part of an event; the rest must follow, or the event is lost."""
    state = BatchState(tmp_path / "batch")
    real_write, sizes = os.write, []

    def short_write(fd, data):
        sizes.append(len(data))
        return real_write(fd, bytes(data[:7]))

    with monkeypatch.context() as m:
        m.setattr(os, "write", short_write)
        state.record({"event": "chunk", "n": 1, "round": 1, "filename": "f.jsonl", "requests": 2, "tokens": 9})
    assert len(sizes) > 1 and sizes[1] == sizes[0] - 7
    again = BatchState(tmp_path / "batch")
    assert again.repaired == 0 and again.chunks[1].requests == 2 and again.run_token == state.run_token


def test_a_fake_that_finishes_on_the_first_poll_runs_each_line_once(project):
    """The fake's ``finish_on_retrieve`` (used below to keep the crash test short) and ``lines_run``."""
    make_numbers(project, 3)
    with FakeBatchAPI(finish_on_retrieve=True) as srv:
        assert run(srv).status == "complete"
        assert srv.lines_run == ["q00000", "q00001", "q00002"]
    state = lines(project / "output" / "Numbers" / "v1" / "batch" / "state.jsonl")
    assert [e["status"] for e in state if e["event"] == "polled"] == ["completed"]


# --- a real SIGKILL at every state event ----------------------------------------------
CRASH_IDS = ["q00000", "q00001", "q00002", "q00003"]
CRASH_PARALLEL = 2  # cases at once (the machine has 2 cores)


def crash_project(root, base_url):
    """A project of four queries in two request files, and the CLI arguments that run it in batch mode."""
    root.mkdir()
    make_numbers(root, len(CRASH_IDS))
    (root / "run.yaml").write_text("batch:\n  max_requests_per_file: 2\n")
    return ["--config", "run.yaml", "--name", "Numbers", "--mode", "batch", "--base_url", base_url,
            "--poll_interval", "0.005", "--quiet"]


def crash_server():
    """A fake Batch API where q00001 fails once (re-driven), q00002 for good and q00003 has no pairs.

    Batches finish at their first poll, so a run makes few state events (and the test few processes).
    """
    srv = FakeBatchAPI(finish_on_retrieve=True)
    seen: dict[str, int] = {}

    def responder(body, n):
        qid = query_id(body)
        seen[qid] = seen.get(qid, 0) + 1
        if qid == "q00001" and seen[qid] == 1:
            return Reply.status(500)
        if qid == "q00002":
            return Reply.status(400, body={"error": {"message": "bad request", "code": "invalid_value"}})
        if qid == "q00003":
            return Reply.ok("no pairs here")
        return Reply.ok(f"Question: what is {qid}?\nAnswer: a ball.")

    srv.responder = responder
    return srv.start()


@pytest.fixture(scope="module")
def batch_forks():
    """Two fork servers with batch mode's imports (openai) warm: a child starts in ~0.3 s, not ~2.4 s."""
    pool = Forks(CRASH_PARALLEL, WARM + ("syphus.engine.batch",))
    yield pool
    pool.close()


def assert_kept_what_was_paid_for(root, srv):
    """Each id settled exactly once, in the file its answer belongs to; nothing uploaded, created or run twice.

    q00003's reply has no pairs: it goes out once more as a repair line (in a repair batch of its own),
    answers no pairs again and ends invalid, with both replies kept.
    """
    s = settled(root / "output" / "Numbers" / "v1")
    assert (sorted(s["pairs"]), s["errors"], s["invalid"]) == (["q00000", "q00001"], ["q00002"], ["q00003"])
    contents = [srv.file_content(f["id"]) for f in srv.uploads]
    assert len(set(contents)) == len(contents) == 4  # two chunks, the redrive of q00001, the repair of q00003
    inputs = [b["input_file_id"] for b in srv.batches_created]
    assert sorted(inputs) == sorted(f["id"] for f in srv.uploads)  # one batch per file, no file left unused
    assert sorted(srv.lines_run) == ["q00000", "q00001", "q00001", "q00002", "q00003", "q00003"]
    invalid = lines(root / "output" / "Numbers" / "v1" / "invalid.jsonl")[0]
    assert invalid["attempts"] == 2 and [r["raw"] for r in invalid["repairs"]] == ["no pairs here"]


def test_sigkill_at_every_batch_state_event_then_resume(tmp_path, batch_forks):
    """Fault: a process killed between two state events sends something twice or loses what came back.

    The CLI runs in a child process that SIGKILLs itself just before or just after the n-th
    write to state.jsonl, for every n a clean run makes; a plain rerun (a child of its own)
    must then finish with every id settled once and nothing uploaded, created or answered twice.
    The children are forked from a warm interpreter (tests/forkserver.py: crashpoint wraps ``os``
    before syphus is imported, and the kill is a real SIGKILL); the cases, each with its own fake
    server and project, run two at a time.
    """
    with crash_server() as srv:
        root, counts = tmp_path / "clean", tmp_path / "counts.json"
        args = crash_project(root, srv.base_url)
        proc = batch_forks.run(root, ["write:state.jsonl:*:after"], args, counts=counts)
        assert proc.returncode == 0, proc.stderr
        events = json.loads(counts.read_text())["write:state.jsonl"]
        assert events == len((root / "output" / "Numbers" / "v1" / "batch" / "state.jsonl").read_bytes()
                             .splitlines())  # one write per event
        assert_kept_what_was_paid_for(root, srv)

    def case(point):
        n, when = point
        with crash_server() as srv:
            root = tmp_path / f"{when}-{n:02d}"
            args = crash_project(root, srv.base_url)
            proc = batch_forks.run(root, [f"write:state.jsonl:{n}:{when}"], args)
            assert proc.returncode == -signal.SIGKILL, \
                f"{when} write {n}: not killed ({proc.returncode}): {proc.stderr}"
            proc = batch_forks.run(root, [], args)
            assert proc.returncode == 0, f"{when} write {n}: the rerun failed ({proc.returncode}): {proc.stderr}"
            assert_kept_what_was_paid_for(root, srv)

    def checked(point):
        try:
            case(point)
        except AssertionError as e:
            return f"{point[1]} write {point[0]}: {e}"
        return None

    points = [(n, when) for n in range(1, events + 1) for when in ("before", "after")]
    with ThreadPoolExecutor(max_workers=CRASH_PARALLEL) as pool:
        failures = [f for f in pool.map(checked, points) if f]
    assert not failures, f"{len(failures)} of {len(points)} kill points broke an invariant:\n" + "\n".join(failures)


# --- the control plane through the openai SDK: one HTTP stack, one error mapping, one retry layer -----
def control_plane(server):
    """The Files and Batches requests the server received."""
    return [r for r in server.requests if r.path.split("/")[2:3] in (["files"], ["batches"])]


def test_control_plane_failures_are_retried_by_the_one_retry_layer_only(project, bserver):
    """A 500 on create is retried by tenacity (never by the SDK), after looking for what it may have made."""
    make_numbers(project, 2)
    bserver.fail_next("create", Reply.status(500), times=2)
    result = run(bserver)
    assert result.status == "complete" and result.stats.retries == 2
    assert bserver.calls.count(("POST", "/v1/batches")) == 3  # two refused, one made: no hidden retries
    assert len(bserver.batches_created) == 1 and len(bserver.uploads) == 1
    sent = control_plane(bserver)
    assert {r.headers["x-stainless-retry-count"] for r in sent} == {"0"}
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in sent)
    assert all(r.headers["user-agent"].startswith("AsyncOpenAI/Python") for r in sent)


def test_a_rate_limit_on_the_control_plane_waits_what_the_server_asks(project, bserver):
    make_numbers(project, 2)
    bserver.fail_next("retrieve", Reply.status(429, headers={"retry-after": "7"}))
    waits = []

    async def sleep(seconds):
        waits.append(seconds)
        await asyncio.sleep(0)

    result = asyncio.run(run_job(config(bserver), ENV, install_signals=False, sleep=sleep))
    assert result.status == "complete" and 7.0 in waits


def test_a_refused_key_on_the_control_plane_stops_the_run_at_once(project, bserver):
    make_numbers(project, 2)
    bserver.fail_next("upload", Reply.status(401, body={"error": {"message": "Incorrect API key provided",
                                                                   "code": "invalid_api_key"}}))
    result = run(bserver)
    assert result.status == "failed"
    assert isinstance(result.error, FatalError) and "refused the credentials" in str(result.error)
    assert bserver.calls.count(("POST", "/v1/files")) == 1 and bserver.batches_created == []


@pytest.mark.parametrize("route", ["upload", "create"])
def test_an_answer_dropped_by_the_network_is_looked_for_before_retrying(project, bserver, route):
    """The real SDK on a real socket: the file is stored (or the batch made), then the connection drops."""
    make_numbers(project, 3)
    bserver.fail_next(route, Reply.drop(), after=True)
    result = run(bserver)
    assert result.status == "complete" and result.stats.retries == 1
    path = "/v1/files" if route == "upload" else "/v1/batches"
    assert bserver.calls.count(("POST", path)) == 1  # found by its name (or input file), not sent again
    assert len(bserver.uploads) == 1 and len(bserver.batches_created) == 1
    assert sorted(settled(project / "output" / "Numbers" / "v1")["pairs"]) == ["q00000", "q00001", "q00002"]


@pytest.mark.parametrize("reply", [Reply.malformed(b"<html>busy</html>", content_type="text/html"),
                                   Reply.malformed(b'{"id": "batch_'), Reply.malformed(b"[]")],
                         ids=["html", "torn-json", "not-an-object"])
def test_a_malformed_control_plane_answer_is_retried(project, bserver, reply):
    make_numbers(project, 2)
    bserver.fail_next("retrieve", reply)
    result = run(bserver)
    assert result.status == "complete" and result.stats.retries == 1
    assert len(bserver.batches_created) == 1


def test_a_control_plane_timeout_is_retried(project, bserver):
    """The SDK's own timeout (BatchAPI's 600 s) cuts a hung retrieve; the loop's clock jumps past it."""
    make_numbers(project, 2)
    cfg = config(bserver)
    bserver.fail_next("retrieve", Reply.hang(3600.0))
    loop = SkewLoop()

    def expire() -> None:
        if bserver.wait_for(lambda: bserver.hanging == 1, timeout=30):
            loop.advance(BatchAPI(resolve_endpoint(cfg.endpoint, ENV)).timeout + 1)

    clock_mover = threading.Thread(target=expire)
    clock_mover.start()
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        assert runner.run(run_with(BatchAPI, cfg)) == "complete"
    clock_mover.join()
    assert bserver.status_counts["hang"] == 1  # cut short by the client, not waited out
    assert bserver.calls.count(("GET", "/v1/batches/batch_0")) >= 2 and len(bserver.batches_created) == 1


def test_batch_mode_goes_through_the_proxy_of_the_environment(project, bserver, monkeypatch):
    """Like the online session (aiohttp, trust_env): HTTP_PROXY is honoured. The fake is the proxy here,
    and the endpoint's host does not even resolve, so only a request sent through the proxy arrives."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", bserver.root_url)
    make_numbers(project, 2)
    cfg = load_config(None, {"name": "Numbers", "endpoint.base_url": "http://batch-api.invalid/v1", "mode": "batch",
                             "batch.poll_interval": 0.01})
    result = asyncio.run(run_job(cfg, ENV, install_signals=False, sleep=no_sleep))
    assert result.status == "complete"
    sent = control_plane(bserver)
    assert sent and {r.headers["host"] for r in sent} == {"batch-api.invalid"}


@pytest.mark.parametrize("reply", [Reply.ok(None, finish_reason="content_filter"),
                                   Reply.status(400, body={"error": {"message": "flagged",
                                                                     "code": "content_policy_violation"}})],
                         ids=["withheld-reply", "refused-request"])
def test_the_content_filter_in_a_batch_is_that_querys_error_as_online(project, bserver, reply):
    make_numbers(project, 2)
    bserver.responder = lambda body, n: reply if query_id(body) == "q00001" else Reply.ok("Question: a?\nAnswer: b.")
    assert run(bserver).status == "complete"
    folder = project / "output" / "Numbers" / "v1"
    s = settled(folder)
    assert s["pairs"] == ["q00000"] and s["errors"] == ["q00001"]
    assert lines(folder / "errors.jsonl")[0]["kind"] == "content_filter"
    assert len(bserver.batches_created) == 1  # settled, not sent again


def test_listings_read_every_page(project, bserver):
    """Looking for a lost batch reads the whole account, page after page (the SDK encodes ``after``)."""
    make_numbers(project, 5)
    cfg = config(bserver, **{"batch.max_requests_per_file": 1})

    class API(BatchAPI):
        page_size = 2

    assert asyncio.run(run_with(API, cfg)) == "complete"

    async def listed():
        async with API(resolve_endpoint(cfg.endpoint, ENV)) as api:
            return [b["id"] for b in await api.batches()]

    assert asyncio.run(listed()) == [b["id"] for b in reversed(bserver.batches)]
    pages = [r.query for r in bserver.requests if r.path == "/v1/batches" and r.query]
    assert pages[-3:] == [{"limit": "2"}, {"limit": "2", "after": "batch_3"}, {"limit": "2", "after": "batch_1"}]


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_batch_mode_survives_a_vanished_file(project, bserver):
    """An output file that answers 404 is no traceback: its requests go into a new batch and the billed ones are
    counted at their worst case, for good; a result for a custom_id the batch never held is ignored with a
    warning; --status shows the recorded state when the Batch API cannot be reached, and works with a pool."""
    (project / "prices.yaml").write_text("toy: {input: 1.0, output: 1.0, batch_input: 1.0, batch_output: 1.0}\n")
    priced = {"endpoint.model": "toy", "cost.pricing": "prices.yaml"}
    make_numbers(project, 6)
    ids = [f"q{i:05d}" for i in range(6)]
    logs = _Records()
    logging.getLogger("syphus").addHandler(logs)
    try:
        # 1. the output file is gone when the batch is collected
        bserver.lose_files_of_next_batch()
        result = run(bserver, **priced)
        assert result.status == "complete" and result.error is None
        folder = project / "output" / "Numbers" / "v1"
        assert sorted(settled(folder)["pairs"]) == ids and settled(folder)["errors"] == []
        assert sorted(bserver.lines_run) == sorted(ids * 2)  # the lost answers were paid, then asked again
        lost = [m for m in logs.messages if "could not be downloaded" in m]
        assert len(lost) == 1 and "HTTP 404" in lost[0] and "new batch" in lost[0], logs.messages
        events = [json.loads(x) for x in (folder / "batch" / "state.jsonl").read_text().splitlines()]
        lost_cost = next(e["lost_cost"] for e in events if e["event"] == "collected" and e["n"] == 1)
        assert lost_cost > 0 and result.budget.estimated == pytest.approx(lost_cost)
        spent = result.budget.spent
        again = run(bserver, **priced)  # resumed with nothing to do: the lost answers still count
        assert again.status == "complete" and again.budget.spent == pytest.approx(spent)
        # 2. an answer to a custom_id the batch never held
        bserver.stray_lines_in_next_batch(["ghost", "q99999"])
        result = run(bserver, dataset_version="v2")
        assert result.status == "complete"
        v2 = project / "output" / "Numbers" / "v2"
        assert sorted(settled(v2)["pairs"]) == ids and settled(v2)["errors"] == []
        assert any("never held" in m and "'ghost'" in m for m in logs.messages), logs.messages
    finally:
        logging.getLogger("syphus").removeHandler(logs)
    # 3. --status with the Batch API out of reach shows the recorded state and says it could not refresh
    crash_at_first_poll(config(bserver, dataset_version="v3"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    out = io.StringIO()
    code = main(["--name", "Numbers", "--mode", "batch", "--dataset_version", "v3", "--base_url", dead, "--status"],
                env=ENV, stream=out)
    assert code == 0, out.getvalue()
    assert "chunk 0001 round 1 validating" in out.getvalue() and "could not refresh" in out.getvalue()
    assert "connection failed" in out.getvalue()
    assert "Traceback" not in out.getvalue()
    # 4. --status of a run on a pool asks the pool's batch endpoint (no local endpoint is looked for)
    (project / "pool.yaml").write_text(json.dumps({"endpoints": [
        {"name": "a", "kind": "compatible", "base_url": bserver.base_url, "key_env": "KEY_A"}]}))
    out = io.StringIO()
    code = main(["--name", "Numbers", "--mode", "batch", "--dataset_version", "v3", "--config", "pool.yaml",
                 "--status"], env={"KEY_A": KEY}, stream=out)
    assert code == 0, out.getvalue()
    assert "chunk 0001 round 1 in_progress" in out.getvalue() and "could not refresh" not in out.getvalue()
