"""Progress: a live status line on a terminal, plain log lines elsewhere, a summary at the end.

>>> print(render(Stats(total=10, answered=4, pairs=8), elapsed=2.0, done_before=0))
4/10 40.0% | ETA 3s | session: 2.0/s, pairs 8, invalid 0, errors 0, retries 0, 429s 0, tokens 0 in / 0 out
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections.abc import Callable
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


def _fields(s: Stats, elapsed: float, done_before: int, extra: str) -> list[tuple[int, str, bool]]:
    """The line's fields in display order: (rank, text, of this session); the higher the rank, the sooner a
    narrow terminal drops it."""
    settled = s.settled
    rate = settled / elapsed if elapsed > 0 else 0.0
    out: list[tuple[int, str, bool]] = []
    if s.total is not None:
        before = done_before + s.skipped
        done = before + settled
        left = max(0, s.total - done)
        pct = 100.0 * done / s.total if s.total else 100.0
        out.append((0, f"{done}/{s.total} {pct:.1f}%", False))
        if before:  # a resumed run: the total counts earlier sessions, the rest of the line this one
            out.append((3, f"{before} before", False))
        if s.stopping:
            out.append((0, f"stopping: {s.in_flight} on the wire", False))
        elif rate > 0:
            out.append((1, f"ETA {_duration(left / rate)}", False))
    else:
        if s.stopping:
            out.append((0, f"stopping: {s.in_flight} on the wire", False))
        out.append((0, f"{settled} done", True))
    out.append((4, f"{rate:.1f}/s", True))
    out += [(1, f"pairs {s.pairs}", True), (5, f"invalid {s.invalid}", True), (2, f"errors {s.errors}", True),
            (7, f"retries {s.retries}", True), (6, f"429s {s.rate_limited}", True),
            (8, f"tokens {_count(s.prompt_tokens)} in / {_count(s.completion_tokens)} out", True)]
    if s.images:
        out.append((9, f"images {s.images} (~{_count(s.image_tokens)} tokens)", True))
    for i, part in enumerate(p.strip() for p in extra.split(" | ") if p.strip()):  # cost, then the pool
        out.append((2 if part.startswith("$") else 10 + i, part, False))
    return out


def render(s: Stats, elapsed: float, done_before: int = 0, cost: str = "", width: int | None = None) -> str:
    """One status line for ``s`` after ``elapsed`` seconds of this session, at most ``width - 1`` characters
    (None: no limit). The run's figures come first; this session's are labelled "session:"."""
    fields = _fields(s, elapsed, done_before, cost)

    def join(kept: list[tuple[int, str, bool]]) -> str:
        parts, session = [], []
        for _, text, own in kept:
            if own:
                session.append(text)
                continue
            if session:
                parts.append("session: " + ", ".join(session))
                session = []
            parts.append(text)
        if session:
            parts.append("session: " + ", ".join(session))
        return " | ".join(parts)

    kept = list(fields)
    line = join(kept)
    while width is not None and len(line) > width - 1 and len(kept) > 1:
        worst = max(range(len(kept)), key=lambda i: (kept[i][0], i))  # the least useful goes first (the last of a tie)
        del kept[worst]
        line = join(kept)
    if width is not None and len(line) > width - 1:
        line = line[:max(0, width - 2)] + "…"
    return line


def display(stream: TextIO, enabled: bool, log_interval: float):
    """A factory for ``run_job(display=...)``: the status line on ``stream`` (nothing when not ``enabled``)."""
    def make(stats: Stats, clock, extra=None) -> Progress:
        return Progress(stats, clock, stream=stream, enabled=enabled, log_interval=log_interval, extra=extra)
    return make


class _ClearLine(logging.Filter):
    """Before a log message reaches the terminal, the status line is wiped: the message gets its own line,
    and the next redraw puts the status line back under it."""

    def __init__(self, progress: Progress):
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.clear()
        return True


class Progress:
    """Redraws a status line every ``interval`` seconds (on a TTY) or logs one every ``log_interval``.

    On a terminal the line is cut to its width (``columns()``, read at each redraw: a resized
    window is followed), dropping the least useful fields first, and log messages of the
    ``syphus`` logger written to the same stream come on lines of their own.
    """

    def __init__(self, stats: Stats, clock, stream: TextIO = sys.stderr, interval: float = 0.5,
                 log_interval: float = 30.0, done_before: int = 0, enabled: bool = True, extra=None,
                 columns: Callable[[], int] | None = None):
        self.stats = stats
        self.clock = clock
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.done_before = done_before
        self.enabled = enabled
        self.extra = extra  # a callable giving more text for the line (the live cost)
        self.columns = columns or (lambda: shutil.get_terminal_size((80, 24)).columns)
        self._task: asyncio.Task | None = None
        self._shown = False  # a status line is on the screen, not ended by a newline
        self._filter = _ClearLine(self)
        self._handlers: list[logging.Handler] = []

    def line(self) -> str:
        return render(self.stats, self.clock() - self.stats.started, self.done_before,
                      self.extra() if self.extra else "", self.columns() if self.tty else None)

    def draw(self) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
            self._shown = True
        else:
            self.stream.write("progress: " + self.line() + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Wipe the status line (a message is about to be written)."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.draw()

    def start(self) -> None:
        if self.enabled:
            if self.tty:
                self._handlers = [h for h in logging.getLogger("syphus").handlers
                                  if getattr(h, "stream", None) is self.stream]
                for h in self._handlers:
                    h.addFilter(self._filter)
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for h in self._handlers:
            h.removeFilter(self._filter)
        self._handlers = []
        self.clear()
