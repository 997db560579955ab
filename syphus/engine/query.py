"""What one query sends, and what it has cost so far, for the worker pool (``engine/runner``).

A query's requests are built once per reply format and schema form and counted as each endpoint
of the pool counts them (``Requests``); a repair is the same requests followed by the broken reply
and a turn saying what was wrong (``RepairRequests``); ``Query`` keeps what was sent and charged;
``resumed`` reads a broken reply back from the run folder as if it had just come.

>>> q = Query(estimated_prompt=120, estimated_completion=1024)
>>> q.estimated()
{'prompt_tokens': 120, 'completion_tokens': 1024}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from syphus.engine.attachment import Attached
from syphus.engine.limits import estimate_tokens
from syphus.engine.pool import Member
from syphus.engine.record import usage_tokens
from syphus.engine.repair import repair_messages
from syphus.engine.structure import Request

if TYPE_CHECKING:
    from syphus.engine.runner import Runner


@dataclass
class Query:
    """What one query has cost so far: requests sent, and tokens charged at their worst case."""

    sent: int = 0
    estimated_prompt: int = 0
    estimated_completion: int = 0
    raw: str | None = None
    endpoint: str | None = None  # the pool member the last request went to
    member: Member | None = None  # the same member
    fmt: str = "text"  # the format the last request was sent in

    def estimated(self) -> dict[str, int] | None:
        if not (self.estimated_prompt or self.estimated_completion):
            return None
        return {"prompt_tokens": self.estimated_prompt, "completion_tokens": self.estimated_completion}


class Requests:
    """One query's requests, built once per format and schema form, and counted as each endpoint counts them.

    The text, the schema (in the endpoint's form, if it takes JSON) and the images (as the endpoint's
    model counts them) all come from the endpoint that takes the request: its limiter, the budget's
    reservation and the worst case charged are in its own terms.
    """

    def __init__(self, runner: Runner, item: dict[str, Any], attached: Attached | None):
        self.runner = runner
        self.item = item
        self.attached = attached
        self._built: dict[tuple[str, str], tuple[Request, int]] = {}  # (format, form): request, text + schema tokens
        self._images: dict[str | None, int] = {}  # model: the images' tokens

    def seed(self, fmt: str, form: str, req: Request) -> None:
        """The request ``_handle`` built first (its images placed and checked for size)."""
        self._built[(fmt, form if fmt == "json" else "")] = (req, estimate_tokens(req.messages) + req.schema_tokens)

    def format_for(self, member: Member, asked: str) -> str:
        """What ``member`` is sent: text when text is asked or it refused the schema, else JSON."""
        return "text" if asked == "text" else self.runner.structure[member.name].current()

    def request(self, member: Member, fmt: str) -> tuple[Request, int]:
        """The request ``member`` is sent in ``fmt`` and its prompt tokens as ``member`` counts them."""
        structure = self.runner.structure[member.name]
        key = (fmt, structure.form if fmt == "json" else "")
        built = self._built.get(key)
        if built is None:
            req = structure.request(self.runner.dataset, self.item, fmt)
            if self.attached is not None and self.attached.frames:
                req = req._replace(messages=self.runner.dataset.attach_images(self.item, req.messages,
                                                                              self.attached.frames))
            built = self._built[key] = (req, estimate_tokens(req.messages) + req.schema_tokens)
        return built[0], built[1] + self.image_tokens(member)

    def image_tokens(self, member: Member | None) -> int:
        """The images' tokens as ``member``'s model counts them."""
        if self.attached is None or not self.attached.frames:
            return 0
        model = member.model if member is not None else None
        count = self._images.get(model)
        if count is None:
            count = self._images[model] = self.runner.attacher.tokens_as(model, self.attached.frames)
        return count

    def tokens(self, asked: str) -> int | Callable[[Member], int]:
        """Each member's prompt tokens for this query (the pool chooses and waits with them); a number for one."""
        members = self.runner.pool.members
        if len(members) == 1:  # the common case, on the hot path: one count
            return self.request(members[0], self.format_for(members[0], asked))[1]
        return lambda member: self.request(member, self.format_for(member, asked))[1]

    def shape(self, fmt: str) -> str:
        """The request's shape as the limiter calibrates it: its reply format, with or without images."""
        return fmt + ("+images" if self.attached is not None and self.attached.frames else "")

    def paced(self, asked: str) -> Callable[[Member], int]:
        """Each member's prompt tokens as its limiter paces them (calibrated by what its server counted)."""
        def paced(member: Member) -> int:
            fmt = self.format_for(member, asked)
            return member.limiter.paced(self.shape(fmt), self.request(member, fmt)[1], member.completion_budget)
        return paced


class RepairRequests:
    """A repair's requests: each endpoint's request for the query, in the broken reply's format, followed by
    that reply and a user turn saying what was wrong (``syphus.engine.repair``)."""

    def __init__(self, plan: Requests, fmt: str, raw: str | None, why: str):
        self.plan, self.fmt, self.raw, self.why = plan, fmt, raw, why
        self.item = plan.item
        self._extra = estimate_tokens(repair_messages([], raw, why, fmt))
        self._built: dict[str, tuple[Request, int]] = {}

    def format_for(self, member: Member, asked: str) -> str:
        return self.fmt

    def request(self, member: Member, fmt: str) -> tuple[Request, int]:
        req, tokens = self.plan.request(member, self.fmt)
        built = self._built.get(member.name)
        if built is None or built[0].fields is not req.fields:
            built = self._built[member.name] = (
                req._replace(messages=repair_messages(req.messages, self.raw, self.why, self.fmt)), tokens + self._extra)
        return built

    def shape(self, fmt: str) -> str:
        return self.plan.shape(fmt)

    def paced(self, asked: str) -> Callable[[Member], int]:
        def paced(member: Member) -> int:
            return member.limiter.paced(self.shape(self.fmt), self.request(member, self.fmt)[1],
                                        member.completion_budget)
        return paced

    def tokens(self, asked: str) -> int | Callable[[Member], int]:
        base = self.plan.tokens(self.fmt)
        if isinstance(base, int):
            return base + self._extra
        return lambda member: base(member) + self._extra


@dataclass
class Stored:
    """A reply read back from the run folder (a broken reply whose repair a crash cut short)."""

    text: str | None
    finish_reason: str | None
    usage: Any
    model: str | None
    latency: float = 0.0


def resumed(entry: dict[str, Any], q: Query) -> Stored:
    """The broken reply of ``entry`` as if just received; ``q`` takes over its attempts, estimates and format."""
    q.sent = int(entry.get("attempts") or 0)
    q.endpoint = entry.get("endpoint")
    q.fmt = entry.get("reply_format") or "text"
    est = entry.get("estimated_usage") or {}
    q.estimated_prompt, q.estimated_completion = usage_tokens(est)
    return Stored(entry.get("raw"), entry.get("finish_reason"), entry.get("usage"), entry.get("model"))
