"""Stats: how a run ended (``RunStatus``) and the live counters of one session (``Stats``).

Online and batch runs count the same way: a settled record is read once, by
``syphus.engine.record.tally``, whoever counts it (this session's counters, the
run folder's totals, a cold-start score).

>>> s = Stats(total=3)
>>> s.count_answer({"id": "a", "pairs": [{"instruction": "q", "answer": "a"}], "usage": {"prompt_tokens": 9}})
>>> s.settled, s.pairs, s.prompt_tokens, RunStatus.COMPLETE == "complete"
(1, 1, 9, True)
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any

from syphus.engine.record import tally


class RunStatus(str, enum.Enum):
    """How a run (or a session of it) ended; the value is what meta.json and the CLI say."""

    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    BUDGET = "budget"  # stopped before --max-cost would be passed
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass
class Stats:
    """Live counters of this session, read by the progress display."""

    total: int | None = None
    skipped: int = 0
    answered: int = 0
    pairs: int = 0
    invalid: int = 0
    errors: int = 0
    truncated: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    images: int = 0  # images sent with the queries settled (--images)
    image_tokens: int = 0  # their tokens, estimated from their sizes
    stopping: bool = False  # Ctrl-C or SIGTERM came: no new work, the requests on the wire drain
    repairs: int = 0  # repair requests sent for broken replies (syphus.engine.repair)
    repaired: int = 0  # replies a repair made whole
    started: float = field(default_factory=time.monotonic)

    @property
    def settled(self) -> int:
        return self.answered + self.errors

    def count_answer(self, record: dict[str, Any]) -> None:
        """Count one record written to pairs.jsonl or invalid.jsonl."""
        t = tally(record)
        self.answered += 1
        self.pairs += t.pairs
        self.invalid += not t.pairs
        self.truncated += t.truncated
        self.prompt_tokens += t.prompt_tokens
        self.completion_tokens += t.completion_tokens
