"""The one retry policy, as tenacity values.

Transient failures (429, 408, 409, 5xx, timeouts, dropped connections,
malformed bodies) are retried with exponential backoff and jitter, or after
exactly the server's ``Retry-After`` when it gave one; attempts and total time
are both capped. Everything else is raised at once. The SDK's own retries are
never used, so this is the only layer.

The cap on time cuts waits, not queries: a ``Retry-After`` of a day (or ``inf``,
or a date next year) is waited for ``max_seconds`` at most (``capped_hint``, the
same cap the limiter's pause gets), then the query is tried again; it stops
only once ``max_seconds`` have passed since its first attempt or after
``max_attempts``.

>>> policy = retry_policy(RetryConfig(max_attempts=3), sleep=fake_sleep)   # doctest: +SKIP
>>> async for attempt in policy:                                            # doctest: +SKIP
...     with attempt:
...         reply = await client.complete(messages)

"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenacity import (AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt,
                      stop_after_delay, wait_exponential_jitter)
from tenacity.wait import wait_base

from syphus.config import RetryConfig
from syphus.errors import TransientError


def capped_hint(hint: float | None, cap: float) -> float | None:
    """A server's ``Retry-After`` bounded by ``cap`` seconds (None stays None).

    >>> capped_hint(86400.0, 600.0), capped_hint(float("inf"), 600.0), capped_hint(2.5, 600.0)
    (600.0, 600.0, 2.5)
    """
    return None if hint is None else min(max(0.0, float(hint)), cap)


class wait_server_hint(wait_base):
    """Wait what the server asked for (``Retry-After``), else fall back to ``fallback``."""

    def __init__(self, fallback: wait_base, ceiling: float):
        self.fallback = fallback
        self.ceiling = ceiling

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if hint is not None:
            return capped_hint(hint, self.ceiling)
        return min(self.fallback(retry_state), self.ceiling)


def retry_policy(cfg: RetryConfig, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 before_sleep: Callable[[RetryCallState], None] | None = None) -> AsyncRetrying:
    """A fresh AsyncRetrying for one query."""
    return AsyncRetrying(
        stop=stop_after_attempt(cfg.max_attempts) | stop_after_delay(cfg.max_seconds),
        wait=wait_server_hint(wait_exponential_jitter(multiplier=cfg.initial_wait, max=cfg.max_wait,
                                                      jitter=cfg.initial_wait),
                              ceiling=cfg.max_seconds),
        retry=retry_if_exception_type(TransientError),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
