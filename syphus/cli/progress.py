"""Progress: a live status line on a terminal, plain log lines elsewhere, a summary at the end.

>>> print(render(Stats(total=10, answered=4, pairs=8), elapsed=2.0, done_before=0))
4/10 40.0% | 2.0/s | ETA 3s | pairs 8 | invalid 0 | errors 0 | retries 0 | 429s 0 | tokens 0 in / 0 out
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from syphus.engine.stats import Stats


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


def render(s: Stats, elapsed: float, done_before: int = 0, cost: str = "") -> str:
    """One status line for ``s`` after ``elapsed`` seconds of this session."""
    settled = s.settled
    rate = settled / elapsed if elapsed > 0 else 0.0
    if s.total is not None:
        done = done_before + s.skipped + settled
        left = max(0, s.total - done)
        pct = 100.0 * done / s.total if s.total else 100.0
        head = f"{done}/{s.total} {pct:.1f}%"
        eta = f" | ETA {_duration(left / rate)}" if rate > 0 else ""
    else:
        head, eta = f"{settled} done", ""
    return (f"{head} | {rate:.1f}/s{eta} | pairs {s.pairs} | invalid {s.invalid} | errors {s.errors} | "
            f"retries {s.retries} | 429s {s.rate_limited} | tokens {_count(s.prompt_tokens)} in / "
            f"{_count(s.completion_tokens)} out" + (f" | images {s.images} (~{_count(s.image_tokens)} tokens)"
                                                    if s.images else "") + cost)


def display(stream: TextIO, enabled: bool, log_interval: float):
    """A factory for ``run_job(display=...)``: the status line on ``stream`` (nothing when not ``enabled``)."""
    def make(stats: Stats, clock, extra=None) -> Progress:
        return Progress(stats, clock, stream=stream, enabled=enabled, log_interval=log_interval, extra=extra)
    return make


class Progress:
    """Redraws a status line every ``interval`` seconds (on a TTY) or logs one every ``log_interval``."""

    def __init__(self, stats: Stats, clock, stream: TextIO = sys.stderr, interval: float = 0.5,
                 log_interval: float = 30.0, done_before: int = 0, enabled: bool = True, extra=None):
        self.stats = stats
        self.clock = clock
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.done_before = done_before
        self.enabled = enabled
        self.extra = extra  # a callable giving more text for the line (the live cost)
        self._task: asyncio.Task | None = None

    def line(self) -> str:
        return render(self.stats, self.clock() - self.stats.started, self.done_before,
                      self.extra() if self.extra else "")

    def draw(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
        else:
            self.stream.write("progress: " + self.line() + "\n")
        self.stream.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.draw()

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.enabled and self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
