"""The CLI as a real process: SIGKILL mid-run and resume, Ctrl-C drain, a second Ctrl-C, progress lines.

Nothing here waits on the wall clock: the fake server holds replies on a ``Gate`` and the
test waits on what the server counts (``server.wait_for``) or on a line the child prints.
A worker sends its next request only after writing the record of its last one, so with
``t`` threads and every thread holding a request, ``requests - t`` records are on disk.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KEY, ROOT
from tests.fakeserver import Gate, Reply
from tests.helpers import Output, lines, make_numbers, query_id, settled, sigkill_when

OK = Reply.ok("Question: a?\nAnswer: b.")


def start(project: Path, server, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--name", "Numbers.numbers", "--base_url", server.base_url, *args],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def held_after(answered: int, gate: Gate, reply: Reply = OK):
    """A responder answering the first ``answered`` requests and holding every later one on ``gate``."""
    return lambda body, n: reply if n < answered else reply.after(gate)


def all_held(server, threads: int, answered: int) -> None:
    """Wait until every one of ``threads`` workers holds a request after ``answered`` were answered."""
    assert server.wait_for(lambda: server.request_count == answered + threads and server.in_flight == threads), \
        f"the child never had {threads} requests held after {answered} answered ({server.stats()})"


def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(project, server):
    make_numbers(project, 120)
    gate = Gate()
    server.responder = lambda body, n: (Reply.ok(f"Question: {query_id(body)}?\nAnswer: yes.") if n < 38
                                        else OK.after(gate))
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "8")
    # killed with 38 answered and on disk, 8 on the wire
    sigkill_when(proc, lambda: server.wait_for(lambda: server.request_count == 46 and server.in_flight == 8), gate,
                 f"the child never had 8 requests held after 38 answered ({server.stats()})")
    answered_before = set(settled(folder)["pairs"])
    assert len(answered_before) == 38
    sent_before = len(server.requests)

    server.responder = lambda body, n: Reply.ok(f"Question: {query_id(body)}?\nAnswer: yes.")
    proc = start(project, server, "--num_threads", "8")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    ids = settled(folder)["pairs"]
    assert sorted(ids) == [f"q{i:05d}" for i in range(120)]  # each exactly once
    resent = {query_id(r.body) for r in server.requests[sent_before:]}
    assert not resent & answered_before  # nothing received before the kill was requested again
    assert f"{len(answered_before)} skipped" in out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_drains_in_flight_requests_and_exits_resumable(project, server, sig):
    make_numbers(project, 200)
    gate = Gate()
    server.responder = held_after(10, gate)
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "10")
    out = Output(proc.stdout)
    try:
        all_held(server, 10, 10)  # the first 10 written, the next 10 on the wire
        proc.send_signal(sig)
        assert out.wait_for("stopping"), out.text()  # the child took the signal and sends nothing new
        gate.open()  # the 10 on the wire are answered now, while the child drains
        assert proc.wait(timeout=30) == 130, out.text()
    finally:
        gate.open()
        proc.kill()
        proc.wait()
    text = out.text()
    assert "stopping" in text and "resume" in text
    # every request the server answered was written down: nothing paid for is lost
    assert len(lines(folder / "pairs.jsonl")) == server.status_counts[200] == 20
    assert server.request_count == 20  # and nothing was sent after the signal
    meta = (folder / "meta.json").read_text()
    assert '"status": "interrupted"' in meta

    server.responder = None
    proc = start(project, server, "--num_threads", "20")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(200)]


def test_second_ctrl_c_quits_at_once_without_a_torn_file(project, server):
    make_numbers(project, 50)
    gate = Gate()  # opened only once the child is gone: its 5 requests on the wire never get an answer
    server.responder = held_after(10, gate)
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "5")
    out = Output(proc.stdout)
    try:
        all_held(server, 5, 10)
        proc.send_signal(signal.SIGINT)
        assert out.wait_for("stopping"), out.text()
        proc.send_signal(signal.SIGINT)
        # the drain would wait up to 60 s for replies that never come: only quitting at once ends the child
        assert proc.wait(timeout=10) == 130, out.text()
    finally:
        proc.kill()
        proc.wait()
        gate.open()
    assert "quitting now" in out.text()
    raw = (folder / "pairs.jsonl").read_bytes()
    assert raw.endswith(b"\n") and len(lines(folder / "pairs.jsonl")) == 10


def test_console_script_is_the_same_cli(project):
    script = Path(sys.executable).parent / "syphus"
    if not script.exists():
        pytest.skip("syphus is not installed as a console script in this environment")
    via_script = subprocess.run([str(script), "--list"], cwd=project, capture_output=True, text=True)
    via_main = subprocess.run([sys.executable, str(ROOT / "main.py"), "--list"], cwd=project,
                              capture_output=True, text=True)
    assert via_script.returncode == via_main.returncode == 0
    assert via_script.stdout == via_main.stdout == "example.Example\n"


def test_progress_lines_when_not_on_a_terminal(project, server):
    make_numbers(project, 30)
    gate = Gate()  # the run waits at the 20th reply until the child has printed a progress line
    server.responder = held_after(20, gate)
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--name", "Numbers.numbers", "--base_url", server.base_url,
         "--num_threads", "2", "--log_interval", "0.05"],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = Output(proc.stderr)
    try:
        all_held(server, 2, 20)
        assert out.wait_for("progress: "), out.text()
        gate.open()
        assert proc.wait(timeout=60) == 0, out.text()
    finally:
        gate.open()
        proc.kill()
        proc.wait()
    stderr = out.text()
    progress_lines = [line for line in stderr.splitlines() if line.startswith("progress: ")]
    last = progress_lines[-1] if progress_lines else ""
    assert re.match(r"progress: \d+/30 \d+\.\d% \| ETA .* \| session: .*errors 0", last), stderr  # a stream's total
    assert "\r" not in stderr
    assert "30 queries with 30 pairs" in stderr


def test_a_stop_mid_run_then_resume_counts_every_request_the_server_billed(project, server):
    """Ctrl-C with 8 held requests on the wire and no drain (--drain_timeout 0): those 8 are cancelled, yet
    the server received (and bills) them. The write-ahead log charges them on resume: requests the server
    received = requests the run counts (in records' attempts, and as lost), exactly."""
    make_numbers(project, 60)
    gate = Gate()
    server.responder = held_after(20, gate, Reply.ok("Question: a?\nAnswer: b.",
                                                     usage={"prompt_tokens": 10, "completion_tokens": 5}))
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "8", "--drain_timeout", "0", "--reply", "text")
    try:
        all_held(server, 8, 20)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        gate.open()
        proc.kill()
    assert proc.returncode == 130, out
    lost = lines(folder / "lost.jsonl")
    assert lost == []  # charged when the next run opens the folder, from the write-ahead log
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.",
                                                usage={"prompt_tokens": 10, "completion_tokens": 5})
    proc = start(project, server, "--num_threads", "8", "--reply", "text")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    lost = lines(folder / "lost.jsonl")
    assert sum(r["requests"] for r in lost) == 8  # the 8 cancelled on the wire
    counted = sum(r["attempts"] for r in lines(folder / "pairs.jsonl")) + sum(r["requests"] for r in lost)
    assert counted == server.request_count == 68  # billed by the server = counted by the run
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["counts"]["estimated_completion_tokens"] == 8 * 1024  # each lost request at its worst case
