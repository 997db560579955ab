"""Parsing: a model's reply text -> instruction-response pairs.

Models write ``Question:``/``Answer:`` lines, but also ``Q1:``, ``**Question:**``,
``1. Question:``, ``Instruction:``/``Response:``, blank lines or none, answers
over several lines, a preamble, or stop mid-pair. ``parse_pairs`` keeps every
complete pair and lists what it dropped in ``problems``.

>>> r = parse_pairs("Sure! Here they are.\\n**Q1:** What is it?\\n**A1:** A dog.\\n\\n2. Question: Where?\\nAnswer: In a park,\\nnear a lake.")
>>> [(p["instruction"], p["answer"]) for p in r.pairs]
[('What is it?', 'A dog.'), ('Where?', 'In a park,\\nnear a lake.')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_DECOR = re.compile(r"^\s*(?:#{1,6}\s*|[-*•>]\s+|\(?\d{1,3}[.)]\s*)*")
_LABEL = re.compile(
    r"^(?:(?P<q>question|instruction|query|q)|(?P<a>answer|response|a))\s*#?\d{0,3}\s*[:：]\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_INLINE_ANSWER = re.compile(r"\s(?:answer|a)\s*\d{0,3}\s*[:：]\s+", re.IGNORECASE)
_FENCE = re.compile(r"^\s*```")


@dataclass
class ParseResult:
    """Pairs kept from one reply, what was dropped, and whether the reply was cut off."""

    pairs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.pairs)

    @property
    def reason(self) -> str:
        """Why nothing was kept (for ``invalid.jsonl``)."""
        if self.pairs:
            return ""
        return "; ".join(self.problems) or "no pairs found"


def _clean(line: str) -> str:
    line = line.replace("**", "").replace("__", "")
    return _DECOR.sub("", line, count=1).strip()


def parse_pairs(text: str | None, finish_reason: str | None = "stop") -> ParseResult:
    """Parse ``Question:``/``Answer:`` style text into ``{"instruction", "answer"}`` pairs."""
    result = ParseResult()
    if not text or not text.strip():
        result.problems.append("empty response")
        return result

    # (question lines, answer lines or None); question lines are None for an answer without a question
    pairs: list[tuple[list[str] | None, list[str] | None]] = []
    inline: list[str] | None = None  # the whole question text, while its "A: ..." split may be options
    unlabelled = 0
    for raw in text.splitlines():
        if _FENCE.match(raw):
            continue
        line = _clean(raw)
        m = _LABEL.match(line)
        if m and m.group("q") is not None:
            rest = m.group("rest")
            split = _INLINE_ANSWER.search(rest)
            if split:
                pairs.append(([rest[: split.start()]], [rest[split.end():]]))
                inline = [rest]
            else:
                pairs.append(([rest], None))
                inline = None
        elif m and m.group("a") is not None:
            if inline is not None:  # "Q: which? A: x B: y" then "Answer: B": those were options
                pairs[-1] = (inline, [m.group("rest")])
                inline = None
            elif not pairs or pairs[-1][1] is not None:
                result.problems.append(f"answer without a question: {m.group('rest')[:60]!r}")
                pairs.append((None, [m.group("rest")]))
            else:
                pairs[-1] = (pairs[-1][0], [m.group("rest")])
        elif pairs:
            q, a = pairs[-1]
            target = a if a is not None else q
            if target is not None:
                target.append(raw.strip())
            if inline is not None:
                inline.append(raw.strip())
        elif line:
            unlabelled += 1  # a preamble before the first label

    if finish_reason == "length" and pairs:
        result.truncated = True
        pairs.pop()
        result.problems.append("reply cut off at max_tokens; the last pair was dropped")

    for q_lines, a_lines in pairs:
        if q_lines is None:
            continue  # already reported as an answer without a question
        question = "\n".join(q_lines).strip()
        answer = "\n".join(a_lines).strip() if a_lines is not None else ""
        if not question:
            result.problems.append(f"empty question before the answer {answer[:60]!r}")
            continue
        if a_lines is None or not answer:
            result.problems.append(f"question without an answer: {question[:60]!r}")
            continue
        result.pairs.append({"instruction": question, "answer": answer})
    if not pairs and unlabelled:
        result.problems.append("no 'Question:'/'Answer:' labels found")
    return result


# --- scene navigation: conversations instead of Question/Answer pairs --------------------------

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
    """``_clean`` plus single ``*``/``_`` emphasis around a leading label: ``*Human role*: x`` -> ``Human role: x``."""
    line = re.sub(r"^[*_]+(?=\w)", "", _clean(raw))
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
    if sep and head.strip() and _CLOSING.match(_clean(last.strip())):
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
        if _FENCE.match(raw):
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
