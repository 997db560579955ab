"""engine/retry: the one retry policy: transient errors retried with capped, jittered backoff, Retry-After
honoured up to the cap, everything else raised at once; sleep injected, so nothing waits."""

from __future__ import annotations

import pytest

from syphus.config import RetryConfig
from syphus.engine.retry import retry_policy
from syphus.errors import FatalError, ItemError, RateLimited, TransientError, UserError

class Sleeps:
    def __init__(self):
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


async def run_policy(cfg, errors):
    """Run the policy over a call that raises ``errors`` in turn, then returns "ok"; count the calls."""
    sleeps = Sleeps()
    calls = 0
    errors = list(errors)
    result = None
    async for attempt in retry_policy(cfg, sleep=sleeps):
        with attempt:
            calls += 1
            if errors:
                raise errors.pop(0)
            result = "ok"
    return result, calls, sleeps.delays


async def test_retry_transient_up_to_max_attempts_then_reraise():
    sleeps = Sleeps()
    calls = 0
    with pytest.raises(TransientError, match="boom 3"):
        async for attempt in retry_policy(RetryConfig(max_attempts=3), sleep=sleeps):
            with attempt:
                calls += 1
                raise TransientError(f"boom {calls}")
    assert calls == 3
    assert len(sleeps.delays) == 2


async def test_retry_succeeds_after_transient_failures():
    result, calls, delays = await run_policy(RetryConfig(max_attempts=5),
                                             [TransientError("a"), RateLimited("b")])
    assert result == "ok" and calls == 3 and len(delays) == 2


async def test_backoff_grows_and_is_capped():
    cfg = RetryConfig(max_attempts=8, initial_wait=1.0, max_wait=5.0)
    result, calls, delays = await run_policy(cfg, [TransientError("x")] * 7)
    assert result == "ok" and calls == 8
    assert all(0 < d <= 5.0 for d in delays)
    assert delays[-1] == 5.0  # 2**6 > max_wait
    assert delays[0] <= 2.0  # initial_wait + at most initial_wait of jitter


async def test_retry_after_is_the_exact_wait():
    result, calls, delays = await run_policy(
        RetryConfig(max_attempts=4), [RateLimited("429", retry_after=7.5), TransientError("503", retry_after=0.25),
                                      RateLimited("429", retry_after=0.0)])
    assert result == "ok" and calls == 4
    assert delays == [7.5, 0.25, 0.0]


async def test_retry_after_longer_than_max_seconds_waits_the_cap_and_tries_again():
    """The cap cuts the wait, not the query: an hour's Retry-After waits max_seconds, then retries."""
    sleeps = Sleeps()
    calls = 0
    async for attempt in retry_policy(RetryConfig(max_attempts=5, max_seconds=10), sleep=sleeps):
        with attempt:
            calls += 1
            if calls < 3:
                raise RateLimited("429", retry_after=3600)
    assert calls == 3 and sleeps.delays == [10, 10]


@pytest.mark.parametrize("exc", [ItemError("bad", kind="bad_request"), FatalError("401", status=401),
                                 ValueError("plugin bug"), UserError("fix it")])
async def test_non_transient_errors_are_not_retried(exc):
    sleeps = Sleeps()
    calls = 0
    with pytest.raises(type(exc)):
        async for attempt in retry_policy(RetryConfig(max_attempts=5), sleep=sleeps):
            with attempt:
                calls += 1
                raise exc
    assert calls == 1 and sleeps.delays == []


async def test_before_sleep_is_called_for_each_retry():
    seen = []
    sleeps = Sleeps()
    async for attempt in retry_policy(RetryConfig(max_attempts=3), sleep=sleeps,
                                      before_sleep=lambda st: seen.append(st.attempt_number)):
        with attempt:
            if attempt.retry_state.attempt_number < 3:
                raise TransientError("again")
    assert seen == [1, 2]
