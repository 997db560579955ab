"""The bundled model used as it can be used: as many requests in flight as the local server has slots,
a timeout from its measured speed, and JSON replies read as the grammar lets the model write them
(issue 26, item 3). The servers here are stand-ins (the fake OpenAI server as the local command);
the bundled model itself runs in tests/test_local.py."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import urllib.request

import pytest

from syphus.cli.main import main
from syphus.engine.client import ChatClient
from syphus.engine.endpoint import resolve_endpoint
from syphus.engine.local import LocalServer, Pace
from syphus.config import EndpointConfig, GenerationConfig

from tests.conftest import ROOT
from tests.fakeserver import FakeOpenAI, Reply
from tests.helpers import SkewLoop, lines

STAND_IN = """
import asyncio, json, sys
from tests.fakeserver import FakeOpenAI

async def serve():
    props = json.loads(sys.argv[2])
    server = FakeOpenAI(port=int(sys.argv[1]), latency=0.05, props=props or None)
    await server.astart()
    await asyncio.Event().wait()

asyncio.run(serve())
"""


def run_local(project, monkeypatch, props: dict, *flags: str) -> tuple[int, str, int]:
    """The Example on a stand-in local server saying ``props``; exit code, output, the server's peak in flight
    (read from its /stats just before the run stops it)."""
    config = project / "local.yaml"
    config.write_text(json.dumps({"endpoint": {"kind": "local", "local_command": [
        sys.executable, "-c", STAND_IN, "{port}", json.dumps(props)]}}))
    peak = {}
    stop = LocalServer._stop

    async def read_then_stop(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=5) as resp:
            peak["n"] = json.loads(resp.read())["peak_in_flight"]
        await stop(self)

    monkeypatch.setattr(LocalServer, "_stop", read_then_stop)
    out = io.StringIO()
    code = main(["--config", str(config), "--name", "Example.example", "--verbose", *flags], env={}, stream=out)
    return code, out.getvalue(), peak.get("n", -1)


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_in_flight_follows_the_local_servers_slots_not_num_threads(project, on_path, monkeypatch):
    code, out, peak = run_local(project, monkeypatch, {"total_slots": 2}, "--num_threads", "64")
    assert code == 0, out
    assert peak == 2  # 8 queries, 64 threads asked for: never more than the 2 slots at once
    assert "answers 2 requests at a time: 2 in flight, not --num_threads 64" in out
    assert len(lines(project / "output" / "Example" / "v1" / "pairs.jsonl")) == 8


def test_a_server_that_does_not_say_its_slots_gets_num_threads(project, on_path, monkeypatch):
    code, out, peak = run_local(project, monkeypatch, {}, "--num_threads", "3")
    assert code == 0, out
    assert 1 <= peak <= 3 and "at a time" not in out


def test_the_timeout_follows_measured_speed():
    pace = Pace(floor=120.0, budget=1000)
    assert pace.timeout() == 120.0  # nothing measured yet: the configured timeout
    pace.observe(10.0, 100)  # 0.1 s a token: a 1,000-token reply takes 100 s; twice that
    assert pace.timeout() == pytest.approx(200.0)
    pace.observe(50.0, 100)  # slower now: the mean is 0.3 s a token
    assert pace.timeout() == pytest.approx(600.0)
    fast = Pace(floor=120.0, budget=100)
    fast.observe(1.0, 100)
    assert fast.timeout() == 120.0  # never under the configured timeout


def test_the_client_times_out_at_the_paces_limit_and_measures_each_reply():
    with FakeOpenAI() as server:
        server.enqueue(Reply.ok("x", usage={"prompt_tokens": 5, "completion_tokens": 40}), Reply.hang(3600))
        pace = Pace(floor=30.0, budget=1)

        async def go():
            endpoint = resolve_endpoint(EndpointConfig(base_url=server.base_url, model="local"), {})
            async with ChatClient(endpoint, GenerationConfig(), timeout=600.0, pace=pace) as client:
                await client.complete([{"role": "user", "content": "a"}])
                assert pace.tokens == 40
                slow = asyncio.ensure_future(client.complete([{"role": "user", "content": "b"}]))
                assert await asyncio.to_thread(server.wait_for, lambda: server.hanging == 1, 30)
                asyncio.get_running_loop().advance(31)  # past the pace's 30 s, far below the client's 600 s
                with pytest.raises(Exception, match=r"within 30s"):
                    await slow

        with asyncio.Runner(loop_factory=SkewLoop) as runner:
            runner.run(go())


def test_the_grammar_forms_ask_for_non_empty_strings(project, server):
    code = main(["--name", "Example.example", "--base_url", server.base_url, "--schema_form", "llamacpp",
                 "--quiet"], env={}, stream=io.StringIO())
    assert code == 0
    schema = server.requests[0].body["response_format"]["schema"]
    item = schema["properties"]["pairs"]["items"]["properties"]
    assert item["instruction"]["minLength"] == 1 and item["answer"]["minLength"] == 1
