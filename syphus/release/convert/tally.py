"""Tally: the counts of one conversion, and the events that report them while it runs.

``convert`` never prints. It calls its ``on_event`` with ``Started``, ``Skipped``,
``Progress`` and ``Repeated`` events (``syphus convert`` prints them; by default they go to the
``syphus.convert`` logger), and an interrupted run raises ``Interrupted``.

>>> events = []
>>> tally = Tally(events.append, total=2, unit="images")
>>> tally.collect((3, [("b.png", "not an image OpenCV can decode")]), inputs=2)
>>> events
[Skipped(path='b.png', why='not an image OpenCV can decode'), Progress(inputs=2, total=2, unit='images', images=3, final=False)]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("syphus.convert")


@dataclass(frozen=True)
class Started:
    """The run has begun; ``resumed`` images were done by an earlier run, in ``parts``."""

    resumed: int
    parts: Path


@dataclass(frozen=True)
class Skipped:
    """An input that gave no image (unreadable, a duplicate id, ...), and why."""

    path: str
    why: str


@dataclass(frozen=True)
class Progress:
    """``inputs`` of ``total`` inputs (None: not known up front) done, ``images`` encoded in this
    run; ``final`` once every input is done, just before the outputs are written."""

    inputs: int
    total: int | None
    unit: str
    images: int
    final: bool = False


@dataclass(frozen=True)
class Repeated:
    """A video gave fewer distinct frames than ``asked``: ``repeated`` of its ``written`` samples repeat
    its last decodable frame (listed in the record ``record``)."""

    path: str
    asked: int
    written: int
    repeated: int
    record: Path


Event = Started | Skipped | Progress | Repeated


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a conversion at ``progress``; the same call again resumes from ``parts``."""

    def __init__(self, progress: Progress, parts: Path):
        super().__init__(f"interrupted at {progress.inputs} {progress.unit}; resume from {parts}")
        self.progress, self.parts = progress, parts


def log_event(event: Event) -> None:
    """The default ``on_event``: skips as warnings, the start and the final count as info, the rest as debug."""
    if isinstance(event, Skipped):
        log.warning("skipped %s: %s", event.path, event.why)
    elif isinstance(event, Started):
        if event.resumed:
            log.info("resuming, %d images already done in %s", event.resumed, event.parts)
    else:
        log.log(logging.INFO if event.final else logging.DEBUG, "%d/%s %s, %d images encoded",
                event.inputs, event.total or "?", event.unit, event.images)


@dataclass
class Tally:
    """Inputs done, images encoded and inputs skipped so far; each change goes to ``on_event``.

    ``on_skip`` also hears of each skip (to list it in a file as it happens).
    """

    on_event: Callable[[Event], None]
    total: int | None
    unit: str
    on_skip: Callable[[str, str], None] = lambda path, why: None
    inputs: int = 0
    images: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path, why: str) -> None:
        """An input gave no image."""
        self.skipped.append((str(path), why))
        self.on_skip(str(path), why)
        self.on_event(Skipped(str(path), why))

    def finished(self, inputs: int = 1) -> None:
        """Inputs done without a task (already done, skipped, nothing to take)."""
        self.inputs += inputs

    def collect(self, result: tuple[int, list[tuple[str, str]]], inputs: int) -> None:
        """A task's result: (images written, [(path, why) skipped]); it finished ``inputs`` inputs."""
        written, errors = result
        self.images += written
        for path, why in errors:
            self.skip(path, why)
        self.inputs += inputs
        self.tick()

    def snapshot(self, final: bool = False) -> Progress:
        total = (self.total or self.inputs) if final else self.total
        return Progress(self.inputs, total, self.unit, self.images, final)

    def tick(self, final: bool = False) -> None:
        """Report progress (also with nothing new: a heartbeat while tasks run)."""
        self.on_event(self.snapshot(final))
