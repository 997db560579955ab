"""The CLI as a real process: SIGKILL mid-run and resume, Ctrl-C drain, a second Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import KEY, ROOT
from tests.fakeserver import Reply
from tests.helpers import lines, make_numbers, query_id, settled


def start(project: Path, server, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "--name", "Numbers.numbers", "--base_url", server.base_url, *args],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_lines(path: Path, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def test_sigkill_mid_run_then_resume_loses_and_repeats_nothing(project, server):
    make_numbers(project, 120)
    server.responder = lambda body, n: Reply.ok(f"Question: {query_id(body)}?\nAnswer: yes.", delay=0.03)
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "8")
    wait_for_lines(folder / "pairs.jsonl", 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    answered_before = set(settled(folder)["pairs"])
    assert 30 <= len(answered_before) < 120
    sent_before = len(server.requests)

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
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.", delay=0.6)
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "10")
    wait_for_lines(folder / "pairs.jsonl", 10)
    time.sleep(0.2)  # let the next wave get on the wire
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert "stopping" in out and "resume" in out
    # every request the server answered was written down: nothing paid for is lost
    assert len(lines(folder / "pairs.jsonl")) == server.status_counts[200]
    assert server.status_counts[200] > 10
    meta = (folder / "meta.json").read_text()
    assert '"status": "interrupted"' in meta

    proc = start(project, server, "--num_threads", "20")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(200)]


def test_second_ctrl_c_quits_at_once_without_a_torn_file(project, server):
    make_numbers(project, 50)
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.", delay=0.05 if n < 10 else 20)
    folder = project / "output" / "Numbers" / "v1"
    proc = start(project, server, "--num_threads", "5")
    wait_for_lines(folder / "pairs.jsonl", 8)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode == 130, out
    assert "quitting now" in out
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
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.", delay=0.05)
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--name", "Numbers.numbers", "--base_url", server.base_url,
         "--num_threads", "2", "--log_interval", "0.2"],
        cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    progress_lines = [line for line in proc.stderr.splitlines() if line.startswith("progress: ")]
    assert progress_lines and " done | " in progress_lines[-1] and "errors 0" in progress_lines[-1]  # streamed: no total
    assert "\r" not in proc.stderr
    assert "30 queries with 30 pairs" in proc.stderr
