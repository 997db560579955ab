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
FENCE = re.compile(r"^\s*```")


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


def clean_line(line: str) -> str:
    """A reply line without its decoration: bold, a heading mark, a bullet, a number (``**1. Q:**`` -> ``Q:``)."""
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
        if FENCE.match(raw):
            continue
        line = clean_line(raw)
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
