"""Fault injection with real processes: SIGKILL the CLI at an exact file-system step, then reopen the folder.

Each crash is a child process running ``tests.crashpoint`` (SPEC -- <syphus args>) that
dies by a real SIGKILL (no ``finally``, no flush, no lock release) before or after the
n-th ``os.write`` / ``os.fsync`` / ``os.replace`` on a file. The points are not guessed:
a clean run in count mode (``n`` = ``*``, ``CRASHPOINT_COUNTS``) lists them first. The
fake OpenAI server runs in this process; each case tags its requests with its own
``--model``, so one server tells the cases apart and counts what each query id cost.

What every case guards, once the folder is reopened and the run finished:

- each input id is in exactly one of pairs / invalid / errors (none lost, none in two files);
- no id whose record was on disk when the process died is requested (paid) again;
- no temp file is left behind (``*.reparse``, ``reparse.commit``, ``*.tmp``, ``*.torn``);
- meta.json agrees with the files.

Speed (the file runs in about 15-35 s on 2 busy cores): the crash children are forked from
a warm interpreter (``Forks``, tests/forkserver.py) instead of started cold (about 1 s each here), and
the resumes run in this process (the same ``syphus.cli.main`` as the console script, on a
watchdog thread, so a hang fails the test instead of stalling it).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pytest

from syphus import plugins
from syphus.cli import main
from tests.conftest import KEY, ROOT
from tests.fakeserver import Reply
from tests.forkserver import CHILD_TIMEOUT, Forks, child_env
from tests.helpers import lines, make_numbers, query_id

FILES = ("pairs", "invalid", "errors")
PARALLEL = 2  # crash children at once (the machine has 2 cores)

VALID = "Question: What is on the table?\nAnswer: A red ball."
REFUSAL = "I cannot help with that."  # no pairs: invalid.jsonl
BAD_REQUEST = Reply.status(400, body={"error": {"message": "bad", "code": "invalid_request"}})  # errors.jsonl, settled


# --- running syphus -------------------------------------------------------------------------------
# The crash children come from a fork server (tests/forkserver.py): a warm interpreter forks one child per
# job, which runs ``tests.crashpoint.main`` (crashpoint wraps ``os`` before syphus is imported).
@pytest.fixture(scope="module")
def forks():
    pool = Forks(PARALLEL)
    yield pool
    pool.close()


def cli_args(server, version: str, *extra: str) -> list[str]:
    """The run of ``Numbers.numbers`` into ``output/Numbers/<version>``, its requests tagged ``model=<version>``."""
    return ["--name", "Numbers.numbers", "--base_url", server.base_url, "--quiet",
            "--dataset_version", version, "--model", version, "--reply", "text", "--repairs", "0",
            *extra]  # the replies are scripted text; repairs have their kill tests in test_repair and test_batch


def start_child(project: Path, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=project, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_here(args: list[str], timeout: float = CHILD_TIMEOUT) -> tuple[int, str]:
    """``syphus.cli.main(args)`` in this process, on a watchdog thread: a hang fails instead of stalling."""
    out = io.StringIO()
    result: dict = {}

    def target() -> None:
        try:
            result["code"] = main(list(args), env={"OPENAI_API_KEY": KEY}, stream=out)
        except BaseException as e:  # noqa: BLE001 (re-raised below, in the test's thread)
            result["exc"] = e

    thread = threading.Thread(target=target, name="syphus-main", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise AssertionError(f"HANG: syphus {' '.join(args)} still running after {timeout}s\n{out.getvalue()}")
    if "exc" in result:
        raise result["exc"]
    return result["code"], out.getvalue()


def sent(server, tag: str) -> Counter:
    """Requests per query id the server received from the runs tagged ``tag``."""
    return Counter(query_id(r.body) for r in server.requests if r.body and r.body.get("model") == tag)


def count_points(forks: Forks, project: Path, base: Path | None, args_for, specs: list[str]) -> dict[str, int]:
    """Calls per ``op:file`` of clean runs, one per count spec, run side by side (``n`` = ``*``).

    ``base``: a finished run folder each count run starts from a copy of (None: an empty folder).
    ``args_for(version)``: the CLI arguments of that run.
    """
    def one(i: int, spec: str) -> dict[str, int]:
        version = f"count{i}"
        if base is not None:
            shutil.copytree(base, base.parent / version)
        counts = project / f"counts{i}.json"
        proc = forks.run(project, [spec], args_for(version), counts=counts)
        assert proc.returncode == 0, f"count run {spec}: exit {proc.returncode}\n{proc.stderr}"
        return json.loads(counts.read_text()) if counts.exists() else {}

    found: dict[str, int] = {}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for result in pool.map(lambda a: one(*a), enumerate(specs)):
            found.update(result)
    return found


# --- reading a run folder -------------------------------------------------------------------------
def on_disk(folder: Path) -> dict[str, list[str]]:
    """{file: [ids]} of the whole lines in pairs / invalid / errors.jsonl (an unterminated tail is not a record)."""
    out = {}
    for name in FILES:
        path = folder / f"{name}.jsonl"
        data = path.read_bytes() if path.exists() else b""
        out[name] = [str(json.loads(line)["id"]) for line in data.split(b"\n")[:-1] if line.strip()]
    return out


def torn_tails(folder: Path) -> list[str]:
    return [name for name in FILES if (p := folder / f"{name}.jsonl").exists()
            and p.stat().st_size and not p.read_bytes().endswith(b"\n")]


def leftovers(folder: Path, allow: tuple[str, ...] = ()) -> list[str]:
    """Temp files a finished run must not leave: swap files, the commit marker (and its temp), torn tails."""
    return sorted(p.name for p in folder.iterdir() if p.name not in allow
                  and (p.name.endswith((".reparse", ".tmp", ".torn")) or p.name.startswith("reparse.commit")))


def where_is(records: dict[str, list[str]]) -> dict[str, list[str]]:
    """{id: [files holding it]} (a file twice if the id is there twice)."""
    where: dict[str, list[str]] = {}
    for name, ids in records.items():
        for qid in ids:
            where.setdefault(qid, []).append(name)
    return where


def check_settled_once(folder: Path, ids: list[str], expected: dict[str, str] | None = None,
                       allow: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every id in exactly one file (the expected one, if given), no leftovers (but ``allow``), meta.json agreeing."""
    records = on_disk(folder)
    assert not torn_tails(folder), f"torn last line in {torn_tails(folder)}"
    where = where_is(records)
    twice = {qid: files for qid, files in where.items() if len(files) > 1}
    assert not twice, f"ids in two files (or twice in one): {twice}"
    assert sorted(where) == sorted(ids), \
        f"lost: {sorted(set(ids) - set(where))}, unknown: {sorted(set(where) - set(ids))}"
    if expected is not None:
        wrong = {qid: (files[0], expected[qid]) for qid, files in where.items() if files[0] != expected[qid]}
        assert not wrong, f"ids in the wrong file (found, expected): {wrong}"
    assert not leftovers(folder, allow), f"left behind: {leftovers(folder, allow)}"
    meta = json.loads((folder / "meta.json").read_text())
    counts = meta["counts"]
    assert (counts["queries_with_pairs"], counts["invalid"], counts["errors"]) == \
        tuple(len(records[name]) for name in FILES), f"meta.json counts {counts} disagree with the files"
    return records


# --- 1. every write point of a run ----------------------------------------------------------------
ONE_OF_EACH = {0: "pairs", 1: "invalid", 2: "pairs", 3: "errors", 4: "invalid", 5: "pairs"}


def one_of_each(body: dict, n: int) -> Reply:
    """Replies by query id: q0 q2 q5 have pairs, q1 q4 are refusals (invalid), q3 is a bad request (errors)."""
    kind = ONE_OF_EACH[int(query_id(body)[1:])]
    return {"pairs": Reply.ok(VALID), "invalid": Reply.ok(REFUSAL), "errors": BAD_REQUEST}[kind]


def test_sigkill_at_every_write_point_then_resume(forks, project, server):
    """SIGKILL before and after every step that puts a record or meta.json on disk, then resume.

    A 6-query run (3 with pairs, 2 invalid, 1 bad request) with one request in flight has
    25 write points: 6 ``os.write`` of a record (pairs 3, invalid 2, errors 1, one call per
    record: a record is never split over two writes), 12 of the write-ahead log (each request
    reserved before it is sent, released once its record is written), 5 ``os.fsync`` of the
    jsonl files at close, 2 ``os.replace`` of meta.json (start, end). Killed before and after
    each: 50 kills,
    each into a fresh run folder, each followed by a plain rerun that must exit 0 with every
    id in exactly its one file, send exactly the ids that were not on disk at the kill (so
    nothing on disk is paid twice), and leave no temp file.
    """
    make_numbers(project, len(ONE_OF_EACH))
    ids = [f"q{i:05d}" for i in range(len(ONE_OF_EACH))]
    expected = {f"q{i:05d}": kind for i, kind in ONE_OF_EACH.items()}
    server.responder = one_of_each
    args_for = lambda version: cli_args(server, version, "--num_threads", "1")  # noqa: E731

    counts = count_points(forks, project, None, args_for,
                          ["write:.jsonl:*:after", "fsync:.jsonl:*:after", "replace::*:after"])
    per_file = Counter(expected.values())
    assert {k: v for k, v in counts.items() if k.startswith("write:")} == \
        {**{f"write:{name}.jsonl": per_file[name] for name in FILES}, "write:inflight.jsonl": 2 * len(ids)}, \
        f"one os.write per record, and per request a reservation and its release, expected: {counts}"
    assert counts.get("replace:meta.json") and all(counts.get(f"fsync:{name}.jsonl") for name in FILES), counts
    points = [(key.split(":")[0], key.split(":")[1], n) for key, total in counts.items() for n in range(1, total + 1)]
    cases = [(op, name, n, when) for op, name, n in points for when in ("before", "after")]
    assert len(points) == 25 and len(cases) == 50, points  # the docstring's count; update both together

    def kill(op: str, name: str, n: int, when: str):
        version = f"{op}-{name.split('.')[0]}-{n}-{when}"
        proc = forks.run(project, [f"{op}:{name}:{n}:{when}"], args_for(version))
        return version, (op, name, n, when), proc

    failures = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for future in as_completed([pool.submit(kill, *case) for case in cases]):
            version, (op, name, n, when), proc = future.result()
            folder = project / "output" / "Numbers" / version
            try:
                assert proc.returncode == -signal.SIGKILL, \
                    f"the child was not killed at the point (exit {proc.returncode}):\n{proc.stderr}"
                assert not torn_tails(folder), f"SIGKILL left a torn line in {torn_tails(folder)}"
                before = on_disk(folder)
                if op == "write" and name.split(".")[0] in before:  # the kill fell where the spec says
                    assert len(before[name.split(".")[0]]) == n - (when == "before"), before
                at_kill = sent(server, version)
                code, out = run_here(args_for(version))
                assert code == 0, out
                check_settled_once(folder, ids, expected)
                resent = sent(server, version) - at_kill
                done = {qid for recs in before.values() for qid in recs}
                assert not set(resent) & done, f"PAID TWICE: on disk at the kill, requested again: " \
                                               f"{sorted(set(resent) & done)}"
                assert resent == Counter(set(ids) - done), f"the rerun sent {dict(resent)}; on disk were {before}"
                # every request the server received (and may bill) is counted by the run: in a record's attempts,
                # or charged as lost (a request reserved but killed before it left counts too: at most one)
                billed = sum(sent(server, version).values())
                counted = sum(r["attempts"] for name in FILES for r in lines(folder / f"{name}.jsonl")) + \
                    sum(r["requests"] for r in lines(folder / "lost.jsonl"))
                assert billed <= counted <= billed + 1, f"billed {billed}, counted {counted}"
            except AssertionError as e:
                failures.append(f"{op}:{name}:{n}:{when}: {e}")
    assert not failures, f"{len(failures)} of {len(cases)} kill points broke an invariant:\n" + "\n".join(failures)


# --- 2. a crash between the swaps of --reparse ----------------------------------------------------
REPARSE_KINDS = {0: "pairs", 1: "ask", 2: "ask", 3: "errors", 4: "ask", 5: "invalid"}
BEFORE_REPARSE = {"pairs": ["q00000"], "invalid": ["q00001", "q00002", "q00004", "q00005"], "errors": ["q00003"]}
AFTER_REPARSE = {"pairs": ["q00000", "q00001", "q00002", "q00004"], "invalid": ["q00005"], "errors": ["q00003"]}

ASK_PARSER = '''
    def parse_response(self, text, finish_reason):
        from syphus.parse import parse_pairs
        return parse_pairs(text.replace("Ask >>", "Question:").replace("Say >>", "Answer:"), finish_reason)
'''


def ask_replies(body: dict, n: int) -> Reply:
    """q0 has pairs; q1 q2 q4 answer as "Ask >> / Say >>" (invalid until the parser learns it); q5 refuses; q3 400."""
    kind = REPARSE_KINDS[int(query_id(body)[1:])]
    return {"pairs": Reply.ok(VALID), "ask": Reply.ok("Ask >> What is on the table?\nSay >> A red ball."),
            "invalid": Reply.ok(REFUSAL), "errors": BAD_REQUEST}[kind]


def test_sigkill_between_reparse_swaps_is_repaired_by_an_ordinary_open(forks, project, server):
    """SIGKILL ``--reparse`` at each of its swap points; a plain run then finishes or undoes the swap.

    The reparse moves q1 q2 q4 from invalid to pairs (both files change). Its points, from
    a count run: the ``os.replace`` of reparse.commit (the commit marker), of pairs.jsonl,
    of invalid.jsonl and of meta.json, and the ``os.fsync`` of the three jsonl files and the
    two write-ahead files at close: 9 points, killed before and after each = 18 kills. Two more kill the recovery
    itself (a plain run finishing a committed swap, killed after its first and after its
    second swap), then run plainly again. After each, a plain run (not --reparse) must
    exit 0, send nothing, leave every id in one file, all of the old sort (killed before
    the marker) or all of the new (killed after it), and leave no swap file or marker.

    The swap files themselves are written through file objects, which crashpoint does not
    see; a kill while they are written leaves what the kill before the marker leaves (swap
    files, no marker), which is covered.
    """
    make_numbers(project, len(REPARSE_KINDS))
    ids = [f"q{i:05d}" for i in range(len(REPARSE_KINDS))]
    server.responder = ask_replies
    base = project / "output" / "Numbers" / "base"
    code, out = run_here(cli_args(server, "base", "--num_threads", "1"))
    assert code == 0, out
    assert {k: sorted(v) for k, v in on_disk(base).items()} == BEFORE_REPARSE
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text() + ASK_PARSER)
    plugins._loaded.clear()
    reparse_args = lambda version: cli_args(server, version, "--reparse")  # noqa: E731

    counts = count_points(forks, project, base, reparse_args, ["replace::*:after", "fsync:.jsonl:*:after"])
    for must in ("replace:reparse.commit", "replace:pairs.jsonl", "replace:invalid.jsonl"):
        assert counts.get(must) == 1, f"{must} not seen once in a --reparse: {counts}"
    order = ["replace:reparse.commit", "replace:pairs.jsonl", "replace:invalid.jsonl"]  # the swap, in order
    points = [(key, n) for key, total in counts.items() for n in range(1, total + 1)]
    cases = [(f"{key}:{n}:{when}", None) for key, n in points for when in ("before", "after")]
    # the recovery killed: the reparse dies once the marker is down, the plain run finishing it dies mid-swap
    cases += [("replace:reparse.commit:1:after", recover) for recover in
              ("replace:pairs.jsonl:1:after", "replace:invalid.jsonl:1:after")]
    # (two of the fsyncs are of the write-ahead files, empty in a --reparse: killing there is harmless too)
    assert len(points) == 9 and len(cases) == 20, points  # the docstring's count; update both together

    def kill(i: int, spec: str, recover: str | None):
        version = f"case{i}"
        shutil.copytree(base, base.parent / version)
        procs = [forks.run(project, [spec], reparse_args(version))]
        if recover is not None:
            procs.append(forks.run(project, [recover], cli_args(server, version, "--num_threads", "1")))
        return version, spec, recover, procs

    failures = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(kill, i, spec, recover) for i, (spec, recover) in enumerate(cases)]
        for future in as_completed(futures):
            version, spec, recover, procs = future.result()
            folder = base.parent / version
            label = spec + (f" then the recovery at {recover}" if recover else "")
            try:
                for proc in procs:
                    assert proc.returncode == -signal.SIGKILL, \
                        f"the child was not killed at the point (exit {proc.returncode}):\n{proc.stderr}"
                key, n, when = spec.rsplit(":", 2)
                committed = key not in order or order.index(key) > 0 or when == "after"
                code, out = run_here(cli_args(server, version, "--num_threads", "1"))
                assert code == 0, out
                records = check_settled_once(folder, ids)
                assert not sent(server, version), f"requested again: {dict(sent(server, version))}"
                sort = {k: sorted(v) for k, v in records.items()}
                assert sort == (AFTER_REPARSE if committed else BEFORE_REPARSE), \
                    f"expected the {'new' if committed else 'old'} sort, found {sort}"
            except AssertionError as e:
                failures.append(f"{label}: {e}")
    assert not failures, f"{len(failures)} of {len(cases)} kill points broke an invariant:\n" + "\n".join(failures)


def test_sigkill_before_the_commit_marker_leaves_no_marker_temp_file(forks, project, server):
    """Killed while the commit marker itself is written (``reparse.commit.tmp`` on disk, not yet
    renamed), the next ordinary open undoes the swap and removes the half-written marker too.
    """
    make_numbers(project, len(REPARSE_KINDS))
    server.responder = ask_replies
    folder = project / "output" / "Numbers" / "v1"
    code, out = run_here(cli_args(server, "v1", "--num_threads", "1"))
    if code != 0:
        pytest.fail(out)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text() + ASK_PARSER)
    plugins._loaded.clear()
    proc = forks.run(project, ["replace:reparse.commit:1:before"], cli_args(server, "v1", "--reparse"))
    if proc.returncode != -signal.SIGKILL or not (folder / "reparse.commit.tmp").exists():
        pytest.fail(f"not killed before the marker's rename (exit {proc.returncode}):\n{proc.stderr}")
    code, out = run_here(cli_args(server, "v1", "--num_threads", "1"))
    if code != 0 or (folder / "pairs.jsonl.reparse").exists():
        pytest.fail(f"the ordinary run did not undo the swap (exit {code}):\n{out}")
    assert not (folder / "reparse.commit.tmp").exists(), "the marker's temp file outlived the undone swap"


# --- 2b. a crash while --retry_errors supersedes error lines ---------------------------------------
RETRY_KINDS = {0: "pairs", 1: "server_error", 2: "bad_request", 3: "server_error", 4: "invalid", 5: "pairs"}


def first_try(body: dict, n: int) -> Reply:
    """q1 q3 get a 500 (an endpoint error, resent), q2 a 400 (settled), q4 a refusal, q0 q5 pairs."""
    kind = RETRY_KINDS[int(query_id(body)[1:])]
    return {"pairs": Reply.ok(VALID), "invalid": Reply.ok(REFUSAL), "bad_request": BAD_REQUEST,
            "server_error": Reply.status(500)}[kind]


def test_sigkill_during_retry_errors_never_leaves_an_id_answered_and_failed(forks, project, server):
    """SIGKILL ``--retry_errors`` at each write point; resuming it leaves no id both answered and failed.

    A retried id's answer is appended to pairs.jsonl while its old line is still in
    errors.jsonl; the error lines are dropped at close by rewriting errors.jsonl (its
    ``os.replace``), and an open that finds them stale drops them first. Points, from a
    count run: 3 ``os.write`` to pairs.jsonl, 6 to the write-ahead log (a reservation and its
    release per request), 5 ``os.fsync`` at close, the ``os.replace`` of errors.jsonl and 2 of
    meta.json: 17 points, killed before and after = 34 kills, each
    resumed with ``--retry_errors`` to exit 0 with every id in exactly one file, nothing
    that reached pairs.jsonl sent again, and no temp file left.
    """
    make_numbers(project, len(RETRY_KINDS))
    ids = [f"q{i:05d}" for i in range(len(RETRY_KINDS))]
    failed = sorted(f"q{i:05d}" for i, kind in RETRY_KINDS.items() if kind.endswith("_error") or kind == "bad_request")
    expected = {qid: "invalid" if RETRY_KINDS[int(qid[1:])] == "invalid" else "pairs" for qid in ids}
    server.responder = first_try
    base = project / "output" / "Numbers" / "base"
    code, out = run_here(cli_args(server, "base", "--num_threads", "1", "--max_attempts", "1"))
    assert code == 0, out
    assert sorted(on_disk(base)["errors"]) == failed
    server.responder = lambda body, n: Reply.ok(VALID)  # the endpoint is fixed: every retry has pairs
    retry_args = lambda version: cli_args(server, version, "--num_threads", "1", "--retry_errors")  # noqa: E731

    counts = count_points(forks, project, base, retry_args,
                          ["write:.jsonl:*:after", "fsync:.jsonl:*:after", "replace::*:after"])
    assert counts.get("write:pairs.jsonl") == len(failed) and counts.get("replace:errors.jsonl") == 1, counts
    points = [(key.split(":")[0], key.split(":")[1], n) for key, total in counts.items() for n in range(1, total + 1)]
    cases = [f"{op}:{name}:{n}:{when}" for op, name, n in points for when in ("before", "after")]
    assert len(points) == 17 and len(cases) == 34, points  # the docstring's count; update both together

    def kill(i: int, spec: str):
        version = f"case{i}"
        shutil.copytree(base, base.parent / version)
        return version, spec, forks.run(project, [spec], retry_args(version))

    failures = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for future in as_completed([pool.submit(kill, i, spec) for i, spec in enumerate(cases)]):
            version, spec, proc = future.result()
            folder = base.parent / version
            try:
                assert proc.returncode == -signal.SIGKILL, \
                    f"the child was not killed at the point (exit {proc.returncode}):\n{proc.stderr}"
                before = on_disk(folder)
                answered = set(before["pairs"]) | set(before["invalid"])
                at_kill = sent(server, version)
                code, out = run_here(retry_args(version))
                assert code == 0, out
                check_settled_once(folder, ids, expected)
                resent = sent(server, version) - at_kill
                assert not set(resent) & answered, f"PAID TWICE: {sorted(set(resent) & answered)}"
                assert resent == Counter(set(failed) - answered), f"the resume sent {dict(resent)}; on disk {before}"
            except AssertionError as e:
                failures.append(f"{spec}: {e}")
    assert not failures, f"{len(failures)} of {len(cases)} kill points broke an invariant:\n" + "\n".join(failures)


# --- 3. two processes on one folder ---------------------------------------------------------------
def wait_for_server(server, condition, what: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until ``condition`` holds, checked whenever a request arrives or ends; fail after ``timeout`` s,
    or as soon as ``proc`` exits (a thread waits on it, then wakes the server's waiters)."""
    gone = threading.Event()

    def watch() -> None:
        proc.wait()
        gone.set()
        server.wake()

    threading.Thread(target=watch, name="child-exit", daemon=True).start()
    if not server.wait_for(lambda: gone.is_set() or condition(), timeout):
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    if not condition():
        raise AssertionError(f"the child exited ({proc.returncode}) before {what}:\n{proc.stdout.read()}")


def lock_holder(folder: Path) -> dict:
    try:
        return json.loads((folder / "syphus.lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}


def test_second_process_on_the_same_folder_is_refused_and_the_lock_dies_with_it(project, server):
    """A second writer on a busy folder is refused (exit 2, naming the holder's pid) and changes nothing;
    ``--dry-run`` still reads it; once the holder is SIGKILLed the kernel's lock is gone and the next
    run takes the folder and finishes, paying nothing twice.
    """
    n = 8
    make_numbers(project, n)
    ids = [f"q{i:05d}" for i in range(n)]
    release = threading.Event()
    server.responder = lambda body, k: Reply.ok(VALID) if release.is_set() or query_id(body) in ("q00000", "q00001") \
        else Reply.hang(60)  # q0 q1 answered, then both workers hang
    folder = project / "output" / "Numbers" / "v1"
    args = cli_args(server, "v1", "--num_threads", "2")
    proc = start_child(project, args)
    try:
        # the 3rd and 4th requests go out only after their workers wrote q0 and q1
        wait_for_server(server, lambda: lock_holder(folder).get("pid") == proc.pid
                        and sum(sent(server, "v1").values()) == 4 and len(on_disk(folder)["pairs"]) == 2,
                        "the child to hold the folder with 2 requests hung", proc)
        snapshot = {p.name: p.read_bytes() for p in folder.glob("*.jsonl")}

        for extra in ([], ["--reparse"], ["--retry_errors"]):
            code, out = run_here(args + extra, timeout=15)  # a run let in would hang on the server
            assert code == 2, (extra, out)
            assert f"pid {proc.pid}" in out and "another Syphus process" in out, (extra, out)
        code, out = run_here(args + ["--dry-run"], timeout=15)
        assert code == 0 and "dry run of" in out and f"{n - 2} queries to go (2 already settled" in out, out
        assert sum(sent(server, "v1").values()) == 4, "a refused run sent requests"
        assert {p.name: p.read_bytes() for p in folder.glob("*.jsonl")} == snapshot, "a refused run wrote"

        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
    before = on_disk(folder)
    assert lock_holder(folder).get("pid") == proc.pid  # the dead child's name stays; only the flock counted
    at_kill = sent(server, "v1")
    release.set()
    code, out = run_here(args)
    assert code == 0, out
    check_settled_once(folder, ids, {qid: "pairs" for qid in ids})
    resent = sent(server, "v1") - at_kill
    assert not set(resent) & set(before["pairs"]), f"PAID TWICE: {sorted(set(resent) & set(before['pairs']))}"
    assert resent == Counter(set(ids) - set(before["pairs"]))
    assert lock_holder(folder).get("pid") == os.getpid()


# --- 4. a kill under load -------------------------------------------------------------------------
def under_load(i: int) -> str:
    return "invalid" if i % 5 == 1 else "errors" if i % 13 == 7 else "pairs"


def kill_twice_then_resume(forks, project, server, args: list[str], tag: str, expected: dict[str, str]) -> tuple:
    """SIGKILL the run of ``args`` at a random record write, twice, then resume it to the end; checks that every
    id is settled once and nothing on disk at a kill is requested again. Returns (folder, seed, kills)."""
    ids = sorted(expected)
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    folder = project / "output" / "Numbers" / "v1"
    total = Counter(expected.values())
    kills = []
    for _ in range(2):
        left = total - Counter({name: len(recs) for name, recs in on_disk(folder).items()} if folder.exists() else {})
        if not left:
            break
        name = rng.choice(sorted(left))
        spec = f"write:{name}.jsonl:{rng.randint(1, left[name])}:{rng.choice(('before', 'after'))}"
        kills.append(spec)
        at_start = sent(server, tag)
        done_at_start = {qid for recs in on_disk(folder).values() for qid in recs} if folder.exists() else set()
        proc = forks.run(project, [spec], args)
        assert proc.returncode == -signal.SIGKILL, f"seed {seed} {spec}: exit {proc.returncode}\n{proc.stderr}"
        assert not torn_tails(folder), f"seed {seed} {spec}: torn line in {torn_tails(folder)}"
        again = set(sent(server, tag) - at_start) & done_at_start
        assert not again, f"seed {seed}, kills {kills}: PAID TWICE {sorted(again)}"
    before = {qid for recs in on_disk(folder).values() for qid in recs}
    at_kill = sent(server, tag)
    code, out = run_here(args)
    assert code == 0, f"seed {seed}, kills {kills}: {out}"
    check_settled_once(folder, ids, expected)
    resent = set(sent(server, tag) - at_kill)
    assert not resent & before, f"seed {seed}, kills {kills}: PAID TWICE {sorted(resent & before)}"
    assert resent == set(ids) - before, f"seed {seed}, kills {kills}"
    return folder, seed, kills


def test_kill_mid_run_under_load_then_resume_pays_nothing_twice(forks, project, server):
    """SIGKILL a run with 8 requests in flight at a random record write, kill its resume the same way,
    then resume to the end: every id once, and no id on disk at a kill requested again.

    The points are drawn from a seed printed on failure (set CRASH_SEED to replay one).
    Requests in flight at a kill are lost and sent again: only what reached the disk is safe.
    """
    n = 40
    make_numbers(project, n)
    expected = {f"q{i:05d}": under_load(i) for i in range(n)}
    server.responder = lambda body, k: {"pairs": Reply.ok(VALID, delay=0.02), "invalid": Reply.ok(REFUSAL, delay=0.02),
                                        "errors": BAD_REQUEST}[expected[query_id(body)]]
    folder, seed, kills = kill_twice_then_resume(forks, project, server, cli_args(server, "v1", "--num_threads", "8"),
                                                 "v1", expected)
    assert {qid for recs in on_disk(folder).values() for qid in recs} == set(expected), f"seed {seed}, kills {kills}"


def test_kill_mid_run_with_a_pool_and_json_replies_pays_nothing_twice(forks, project, server):
    """The kill under load, with two endpoints and JSON replies (the default): every id once, nothing on disk at
    a kill requested again, and every request the server received counted by the run (records' attempts and
    lost.jsonl, the write-ahead log's charge), never less; more only by requests a kill caught reserved and
    not yet sent."""
    n = 40
    make_numbers(project, n)
    expected = {f"q{i:05d}": under_load(i) for i in range(n)}
    good = json.dumps({"pairs": [{"instruction": "What is on the table?", "answer": "A red ball."}]})
    server.responder = lambda body, k: {"pairs": Reply.ok(good, delay=0.02),
                                        "invalid": Reply.ok(json.dumps({"pairs": []}), delay=0.02),
                                        "errors": BAD_REQUEST}[expected[query_id(body)]]
    (project / "pool.yaml").write_text(json.dumps({"endpoints": [
        {"name": "a", "kind": "compatible", "base_url": server.base_url, "model": "pool"},
        {"name": "b", "kind": "compatible", "base_url": server.base_url, "model": "pool", "weight": 2}]}))
    args = ["--name", "Numbers.numbers", "--config", "pool.yaml", "--quiet", "--num_threads", "8", "--repairs", "0"]
    folder, seed, kills = kill_twice_then_resume(forks, project, server, args, "pool", expected)
    records = [r for name in FILES for r in lines(folder / f"{name}.jsonl")]
    assert {r["endpoint"] for r in records if r.get("endpoint")} == {"a", "b"}  # both endpoints served
    assert all(r.get("reply_format") == "json" for r in lines(folder / "pairs.jsonl"))
    billed = sum(sent(server, "pool").values())
    counted = sum(r["attempts"] for r in records) + sum(r["requests"] for r in lines(folder / "lost.jsonl"))
    # never less than billed; more only by requests a kill caught reserved but not yet out (8 threads a kill)
    assert billed <= counted <= billed + 8 * len(kills), f"seed {seed}, kills {kills}: billed {billed}, counted {counted}"
