"""Repair: a reply that broke its schema (or could not be read) asked again once, on the same conversation.

A reply in JSON mode that does not fit the schema (a missing field, another number of pairs
than asked), and any reply no pair could be read from (no JSON, empty, text the parser found
nothing in), cost as much as a good one. (A server that ignores the schema but writes readable
pairs as text is not asked again: its pairs are kept, with a problem noted.) Instead of filing it under ``invalid.jsonl``, the runner sends one more request: the
same messages, the model's own reply as the assistant turn, and a user turn that says what was
wrong (``why``) and asks for the whole answer again. What comes back goes through the same
checks; ``--repairs N`` (default 1, at most 2) caps how many times. A repair is counted like any
request (attempts, tokens, cost) and the record keeps every earlier reply under ``repairs``.

>>> why_repair({"pairs": [], "problems": ["the reply does not fit the schema: pairs.0.answer: field required"],
...             "reason": None}, "json", "stop")
'the reply does not fit the schema: pairs.0.answer: field required'
>>> why_repair({"pairs": [{}], "problems": [], "reason": None}, "json", "stop") is None
True
>>> why_repair({"pairs": [], "problems": [], "reason": "cut off"}, "json", "length") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syphus.engine.record import usage_tokens

_MISFIT = ("the reply does not fit the schema",)
_UNREAD = ("JSON was asked for but the reply is", "empty response")


def why_repair(fields: Mapping[str, Any], reply_format: str, finish_reason: str | None) -> str | None:
    """What was wrong with a reply, to say in a repair request; None when it needs none.

    A reply cut off at ``max_tokens`` is not repaired (the same budget would cut it again).
    """
    if finish_reason == "length":
        return None
    problems = [p for p in fields.get("problems") or [] if isinstance(p, str)]
    misfit = [p for p in problems if p.startswith(_MISFIT)]
    if misfit:  # JSON that breaks the schema: a missing field, another number of pairs than asked
        return "; ".join(misfit)
    if not fields.get("pairs"):  # nothing usable: no JSON, an empty reply, or text with no pairs in it
        return "; ".join(p for p in problems if p.startswith(_UNREAD)) or fields.get("reason") \
            or "; ".join(problems) or "no instruction-response pairs could be read from it"
    return None  # pairs kept (a server that ignored the schema but wrote readable text costs no repair)


def repair_messages(messages: list[dict[str, Any]], raw: str | None, why: str, reply_format: str) -> list[dict[str, Any]]:
    """``messages`` with the broken reply and a request to answer again that says what was wrong."""
    if reply_format == "json":
        ask = ("Reply again with the whole answer as one JSON object that fits the required schema exactly "
               "(every field, the number of items asked for), and nothing else.")
    else:
        ask = "Reply again with the whole answer, in exactly the format the instructions ask for."
    return [*messages, {"role": "assistant", "content": raw or ""},
            {"role": "user", "content": f"Your reply could not be used: {why}. {ask}"}]


def add_usage(first: Any, second: Any) -> dict[str, int] | None:
    """The usage of two requests together (None when neither reported any)."""
    a, b = usage_tokens(first), usage_tokens(second)
    if not any(a + b):
        return second if isinstance(second, dict) else first if isinstance(first, dict) else None
    prompt, completion = a[0] + b[0], a[1] + b[1]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
