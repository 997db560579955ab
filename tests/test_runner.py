"""syphus.engine.runner: the worker pool's producer and workers, against the fake server on a real socket."""

from __future__ import annotations

import asyncio

from syphus.config import RetryConfig
from syphus.dataset import AbstractDataset
from syphus.engine.limits import RateLimiter
from syphus.engine.pool import Member, Pool
from syphus.engine.runner import Runner
from syphus.engine.store import RunStore


class _Dies(RunStore):
    """A store whose every write raises something nobody expects."""

    def write_answer(self, record, valid):
        raise RuntimeError("boom")

    def write_error(self, record):
        raise RuntimeError("boom too")


class _Echo(AbstractDataset):
    def __init__(self, n):
        self.n = n
        super().__init__("Echo", {"system_message": "s", "in_context": []}, None)

    def _load_prompt(self, path):
        return path

    def _load_query_inputs(self, path):
        return ({"id": f"q{i:05d}", "sentences": f"<<q{i:05d}>>"} for i in range(self.n))


async def test_a_dead_worker_never_leaves_the_producer_blocked(tmp_path, server):
    """Every worker dies on its first query; the producer, facing a full queue, must not hang."""
    from syphus.engine.client import ChatClient
    from syphus.config import GenerationConfig
    from syphus.engine.endpoint import Endpoint

    endpoint = Endpoint(kind="compatible", url=server.base_url + "/chat/completions", model="m", headers={})
    store = _Dies(tmp_path)
    store.open()
    async with ChatClient(endpoint, GenerationConfig()) as client:
        pool = Pool([Member("default", client, RateLimiter())])
        runner = Runner(_Echo(1000), pool, store, num_threads=2, retry=RetryConfig(max_attempts=1))
        status = await asyncio.wait_for(runner.run(_Echo(1000).iter_query_inputs()), timeout=30)
    store.close()
    assert status == "failed"
    assert isinstance(runner.crash, RuntimeError)
    assert len(server.requests) <= 2
