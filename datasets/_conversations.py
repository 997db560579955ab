"""Scene navigation's replies: conversations instead of Question/Answer pairs, one pair per round.

The SN plugin (``datasets/sn.py``) alone uses it, so it lives beside it (a helper, not a plugin: its
name starts with ``_``). A reply holds ``Conversation 1`` ... each with its activity, the human's role,
rounds of ``Human:`` / ``AI assistant:`` turns and a reason (FORMATS.md §3); decorations, preambles
and a closing remark are forgiven.
"""

from __future__ import annotations

import re
from typing import Any

from syphus.parse import FENCE, ParseResult, clean_line

_CONV_HEAD = re.compile(r"^conversation\s*#?\s*(?P<n>\d{1,3})\b\s*(?P<rest>.*)$", re.IGNORECASE)
_CONV_ROUND = re.compile(r"^round\s*#?\s*(?P<n>\d{1,3})\b\s*[:：.)\-–—]?\s*(?P<rest>.*)$", re.IGNORECASE)
_CONV_ROLE = re.compile(r"^(?:human(?:'s)?\s*)?role\s*[:：]\s*(?P<rest>.*)$", re.IGNORECASE)
_CONV_REASON = re.compile(r"^reason(?:ing)?\s*[:：]\s*(?P<rest>.*)$", re.IGNORECASE)
_CONV_ACTIVITY = re.compile(r"^activity\s*[:：]\s*(?P<rest>.*)$", re.IGNORECASE)
_CONV_HUMAN = re.compile(r"^(?:human|user)\s*(?:\([^)]*\))?\s*[:：]\s*(?P<rest>.*)$", re.IGNORECASE)
_CONV_ASSISTANT = re.compile(r"^(?:ai\s+assistant|assistant|ai)\s*(?:\([^)]*\))?\s*[:：]\s*(?P<rest>.*)$",
                             re.IGNORECASE)
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|={3,})\s*$")


def _conv_clean(raw: str) -> str:
    """``clean_line`` plus single ``*``/``_`` emphasis around a leading label: ``*Human role*: x`` -> ``Human role: x``."""
    line = re.sub(r"^[*_]+(?=\w)", "", clean_line(raw))
    return re.sub(r"^([\w'() -]{1,40}?)[*_]+(?=\s*[:：])", r"\1", line)


def _activity(rest: str) -> str:
    """``- Cooking dinner``, ``: <Cooking dinner>``, ``(Activity: Cooking dinner)`` -> ``Cooking dinner``."""
    text = rest.strip().lstrip("-–—:：.) ").strip()
    if len(text) >= 2 and text[0] + text[-1] in ("()", "<>", "[]", '""', "''"):
        text = text[1:-1].strip()
    m = _CONV_ACTIVITY.match(text)
    return (m.group("rest") if m else text).strip()


_CLOSING = re.compile(r"^(?:i hope|hope (?:this|these)|these conversations|let me know|feel free|note:|this (?:set|covers))",
                      re.IGNORECASE)


def _text(lines: list[str]) -> str:
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines).strip())
    if len(text) >= 2 and text[0] == text[-1] == '"' and text.count('"') == 2:  # "a quoted turn"
        text = text[1:-1].strip()
    return text


def _drop_closing(lines: list[str]) -> None:
    """Remove a sign-off paragraph ("I hope these help!") that the reply's last turn swallowed."""
    text = "\n".join(lines).rstrip()
    head, sep, last = text.rpartition("\n\n")
    if sep and head.strip() and _CLOSING.match(clean_line(last.strip())):
        lines[:] = head.split("\n")


def parse_conversations(text: str | None, finish_reason: str | None = "stop") -> ParseResult:
    """Parse scene-navigation conversations (FORMATS.md §3) into one pair per round.

    The reply holds conversations headed ``Conversation N - <activity>``, each with a
    ``Human role: ...`` and a ``reason: ...`` line, then rounds ``Round k:`` with ``Human: ...`` and
    ``Assistant: ...`` turns. Every round becomes ``{"instruction", "answer", "conversation": N,
    "activity", "human_role", "reason", "round": k}`` (``None`` where the model left a field out).
    Markdown bold, ``###`` headers, bullets, rules and blank lines are tolerated; a turn may span
    lines; ``Round k:`` labels may be missing (rounds are then numbered in order); a closing remark
    ("I hope these help!") after the last turn is left out. A Human turn without
    an Assistant reply (or the reverse) is dropped and listed in ``problems``; with
    ``finish_reason == "length"`` the last round is dropped (it may be cut) and ``truncated`` is set.

    >>> r = parse_conversations("Conversation 1 - Cooking\\nHuman role: a cook\\nreason: a stove\\n"
    ...                         "Round 1:\\nHuman: Where is the pan?\\nAssistant: On the stove.")
    >>> [(p["conversation"], p["activity"], p["round"], p["instruction"], p["answer"]) for p in r.pairs]
    [(1, 'Cooking', 1, 'Where is the pan?', 'On the stove.')]
    """
    result = ParseResult()
    if not text or not text.strip():
        result.problems.append("empty response")
        return result

    conversations: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []  # every round in reply order, each pointing at its conversation
    target: list[str] | None = None  # the lines that continuation lines extend
    pending_round: int | None = None  # the number of a "Round k:" label waiting for its Human turn

    def conversation() -> dict[str, Any]:
        if not conversations:  # turns before any header: an unnamed first conversation
            conversations.append({"n": 1, "activity": None, "role": None, "reason": None, "rounds": 0})
        return conversations[-1]

    def handle(line: str, raw: str) -> None:
        nonlocal target, pending_round
        m = _CONV_HEAD.match(line)
        if m:
            conversations.append({"n": int(m.group("n")), "activity": _activity(m.group("rest")) or None,
                                  "role": None, "reason": None, "rounds": 0})
            target, pending_round = None, None
            return
        m = _CONV_ROUND.match(line)
        if m:
            pending_round, target = int(m.group("n")), None
            rest = m.group("rest").strip()
            if _CONV_HUMAN.match(rest) or _CONV_ASSISTANT.match(rest):  # "Round 1: Human: ..." on one line
                handle(rest, rest)
            return  # anything else after "Round k:" is a title
        m = _CONV_HUMAN.match(line)
        if m:
            conv = conversation()
            last = max((r["round"] for r in rounds if r["conv"] is conv), default=0)
            number = pending_round if pending_round is not None else last + 1
            rounds.append({"conv": conv, "round": number, "human": [m.group("rest")], "assistant": None})
            conv["rounds"] += 1
            target, pending_round = rounds[-1]["human"], None
            return
        m = _CONV_ASSISTANT.match(line)
        if m:
            current = rounds[-1] if rounds and rounds[-1]["conv"] is conversations[-1] else None
            if current is None or current["assistant"] is not None or pending_round is not None:
                result.problems.append(f"an Assistant turn without a Human turn: {m.group('rest')[:60]!r} (dropped)")
                target = None
                return
            current["assistant"] = [m.group("rest")]
            target = current["assistant"]
            return
        conv = conversations[-1] if conversations else None
        if conv is not None and conv["rounds"] == 0:  # a conversation's header lines, before its rounds
            for pattern, key in ((_CONV_ROLE, "role"), (_CONV_REASON, "reason"), (_CONV_ACTIVITY, "activity")):
                m = pattern.match(line)
                if m:
                    conv[key] = [m.group("rest")]
                    target = conv[key]
                    return
        if target is not None:
            target.append(raw.strip())

    for raw in text.splitlines():
        if FENCE.match(raw):
            continue
        if _RULE.match(raw):
            target = None
            continue
        handle(_conv_clean(raw), raw)

    if not rounds:
        if conversations:
            result.problems.append("conversation headers found but no 'Human:'/'Assistant:' turns")
        else:
            result.problems.append("no 'Conversation N'/'Human:'/'Assistant:' turns found")
        return result

    if rounds[-1]["assistant"]:
        _drop_closing(rounds[-1]["assistant"])
    if finish_reason == "length":
        result.truncated = True
        cut = rounds.pop()
        result.problems.append(f"reply cut off at max_tokens; conversation {cut['conv']['n']} round "
                               f"{cut['round']} was dropped")

    def field(value: Any) -> str | None:
        if isinstance(value, list):
            return _text(value) or None
        return value or None

    for r in rounds:
        conv, label = r["conv"], f"conversation {r['conv']['n']} round {r['round']}"
        human = _text(r["human"])
        answer = _text(r["assistant"]) if r["assistant"] is not None else ""
        if not human:
            result.problems.append(f"{label}: an empty Human turn (dropped)")
            continue
        if not answer:
            result.problems.append(f"{label}: a Human turn without an Assistant reply: {human[:60]!r} (dropped)")
            continue
        result.pairs.append({"instruction": human, "answer": answer, "conversation": conv["n"],
                             "activity": field(conv["activity"]), "human_role": field(conv["role"]),
                             "reason": field(conv["reason"]), "round": r["round"]})
    for conv in conversations:
        if conv["rounds"] == 0:
            result.problems.append(f"conversation {conv['n']} has no rounds")
    return result
