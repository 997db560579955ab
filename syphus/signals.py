"""Signal: what the text of a generated pair (or the prompt that asked for it) says about its quality.

One implementation for the cold start's ranking and the dataset report: how many pairs the
system message asks for, the words it forbids, questions that repeat one another, answers
that repeat their instruction, refusals, and the kind of question an instruction asks.
Plain text in, plain values out; nothing here reads files.

>>> requested_pairs("Write three questions a person might ask about the image.")
3
>>> forbidden_words("Never mention captions, boxes or coordinates.")
['captions', 'boxes', 'coordinates']
>>> Forbidden(["captions", "boxes"]).found("The box on the left, the caption says.")
['captions', 'boxes']
>>> repeats_instruction("What colour is the car?", "What colour is the car? It is blue.")
True
>>> tuple(question_type("In the video, why does the man run?")), tuple(question_type("Describe the kitchen."))
(('wh', 'why'), ('imperative', 'describe'))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

WORD = re.compile(r"[\w']+")

_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
            "nine": 9, "ten": 10}
_N = r"(\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_REQUEST = re.compile(rf"\b{_N}(?:\s*(?:to|or|-|–)\s*{_N})?\s+(?:[\w-]+\s+){{0,2}}?"
                      r"(?:questions?|pairs?|conversations?|instructions?|requests?|turns?|exchanges?|rounds?)\b",
                      re.IGNORECASE)
_FORBID = re.compile(r"\b(?:never|do not|don't|must not|avoid)\s+(?:mention(?:ing)?|use|using|say(?:ing)?|"
                     r"refer(?:ring)? to)\s+(?:the\s+words?\s+)?([^.;:\n]+)", re.IGNORECASE)
_REFUSAL = re.compile(r"\b(?:I'?m sorry|I cannot|I can'?t|I am unable|as an AI)\b", re.IGNORECASE)

SIMILAR = 0.8  # word-set Jaccard at which two texts of one reply count as the same question
REPEAT_RUN = 4  # an answer holding this many of its instruction's words in a row repeats it

WH_WORDS = frozenset("what how why where when who whom whose which".split())
AUXILIARIES = frozenset("is are was were am do does did can could will would should shall may might must "
                        "have has had".split())
_LEAD_IN = frozenset("please now also so and but or then okay ok first next finally".split())
_NOT_VERBS = frozenset("the a an this that these those there here it its he she they i you we his her their our "
                       "my your in on at of for to from with by as if yes no "
                       "one two three four five six seven eight nine ten eleven twelve twenty hundred both several "
                       "many some most each every all any few".split())
# contractions whose first part is no word of its own: "can't" is "can not", "won't" "will not"
_CONTRACTED = {"can't": "can", "won't": "will", "shan't": "shall", "ain't": "is"}


def words(text: str) -> list[str]:
    """The words of ``text``, lower-cased (letters, digits, apostrophes).

    >>> words("Don't touch the RED ball!")
    ["don't", 'touch', 'the', 'red', 'ball']
    """
    return WORD.findall(text.lower()) if text else []


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def requested_count(system_message: str) -> tuple[int, int] | None:
    """How many pairs a system message asks for, as (fewest, most); None if it does not say.

    >>> requested_count("Write three questions."), requested_count("Ask four to six questions"), requested_count("Be kind.")
    ((3, 3), (4, 6), None)

    Counts of requests, turns, exchanges or rounds are pair counts too:

    >>> requested_count("Write one request a person might make"), requested_count("a conversation of four to six turns")
    ((1, 1), (4, 6))
    """
    m = _REQUEST.search(system_message or "")
    if not m:
        return None
    low = _number(m.group(1))
    high = _number(m.group(2)) if m.group(2) else low
    return (low, high) if low <= high else (high, low)


def requested_pairs(system_message: str) -> int | None:
    """How many pairs the system message asks for at the least, if it says."""
    count = requested_count(system_message)
    return count[0] if count else None


def forbidden_words(system_message: str) -> list[str]:
    """Words the system message tells the model not to use ("never mention captions, boxes ...")."""
    found: list[str] = []
    for m in _FORBID.finditer(system_message or ""):
        for part in re.split(r",|\bor\b|\band\b", m.group(1)):
            part = part.strip().strip("'\"").lower()
            if part and len(part.split()) <= 2:
                found.append(part)
    return found


def _stem(word: str) -> str:
    """``word`` without a plural ending, so that "boxes" also catches "box"."""
    if re.search(r"(x|ch|sh|ss)es$", word):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


class Forbidden:
    """Finds forbidden words in a text, singular or plural, in one regex pass.

    >>> f = Forbidden(["coordinates", "bounding box"])
    >>> f.found("Bounding boxes at coordinate 3"), f.found("A dog."), bool(Forbidden([]).found("x"))
    (['coordinates', 'bounding box'], [], False)
    """

    def __init__(self, banned: Iterable[str]):
        self.words = list(dict.fromkeys(w.lower() for w in banned if w.strip()))
        alternatives = [rf"(?P<w{i}>\b{re.escape(_stem(w))}(?:s|es)?\b)" for i, w in enumerate(self.words)]
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def found(self, text: str) -> list[str]:
        """The forbidden words ``text`` uses, each once, in the order of the list."""
        if self._pattern is None or not text:
            return []
        hits = {int(m.lastgroup[1:]) for m in self._pattern.finditer(text)}
        return [self.words[i] for i in sorted(hits)]


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """Jaccard similarity of two collections taken as sets (0 when either is empty).

    >>> jaccard(["a", "b"], ["b", "c"])
    0.3333333333333333
    """
    sa, sb = set(a), set(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


def similar(a: str, b: str, threshold: float = SIMILAR) -> bool:
    """Whether two texts share most of their words (word-set Jaccard at least ``threshold``)."""
    return jaccard(words(a), words(b)) >= threshold


def repeated_questions(questions: Sequence[str]) -> int:
    """How many of one reply's questions are ``similar`` to an earlier one of that reply.

    >>> repeated_questions(["What is in the box?", "What is in the box?", "Who is there?"])
    1
    """
    seen: list[set[str]] = []
    repeats = 0
    for q in questions:
        ws = set(words(q))
        if any(jaccard(ws, earlier) >= SIMILAR for earlier in seen):
            repeats += 1
        seen.append(ws)
    return repeats


def repeats_instruction(instruction: str, answer: str, instruction_words: Sequence[str] | None = None,
                        answer_words: Sequence[str] | None = None) -> bool:
    """Whether an answer repeats its instruction: mostly the same words, or the instruction's
    words (``REPEAT_RUN`` or more) in a row. Pass the words when they are at hand already."""
    iw = list(instruction_words) if instruction_words is not None else words(instruction)
    aw = list(answer_words) if answer_words is not None else words(answer)
    if not iw or not aw:
        return False
    if jaccard(iw, aw) >= SIMILAR:
        return True
    if len(iw) < REPEAT_RUN or len(aw) < len(iw):
        return False
    return f" {' '.join(iw)} " in f" {' '.join(aw)} "


def is_refusal(text: str | None) -> bool:
    """Whether a reply or an answer reads as a refusal ("I'm sorry, I cannot see the image")."""
    return bool(text) and _REFUSAL.search(text) is not None


class QuestionType(NamedTuple):
    """What an instruction asks: ``kind`` wh, aux, imperative, other or empty, and its leading ``word``."""

    kind: str
    word: str | None


def question_type(instruction: str, instruction_words: Sequence[str] | None = None) -> QuestionType:
    """The leading wh-word or auxiliary of a question, or the leading verb of an imperative.

    A lead-in clause ("In the video, what ...", "Based on the image, how ...") is looked past.
    Anything else ending in "?" is ``other``, as is a statement that starts with a pronoun or article.

    >>> question_type("Can you see a dog?")
    QuestionType(kind='aux', word='can')
    >>> [tuple(question_type(t)) for t in ("Please list the objects.", "The man is happy?", "")]
    [('imperative', 'list'), ('other', None), ('empty', None)]
    >>> [tuple(question_type(t)) for t in ("What's on the table?", "Describe the room, which has a bed.")]
    [('wh', 'what'), ('imperative', 'describe')]
    """
    ws = list(instruction_words) if instruction_words is not None else words(instruction)
    while ws and (ws[0] in _LEAD_IN or ws[0].isdigit()):
        ws = ws[1:]
    if not ws:
        return QuestionType("empty", None)
    first = _uncontracted(ws[0])
    kind = _lead_kind(first)
    if kind is not None:
        return QuestionType(kind, first)
    question = instruction.rstrip().endswith(("?", "？"))
    head, comma, rest = instruction.partition(",")
    # "In the video, which ..." is a question after a lead-in; "Describe the room, which ..." is no question
    after = [_uncontracted(w) for w in words(rest)[:1]] if question and comma and len(words(head)) <= 10 else []
    if after and _lead_kind(after[0]):
        return QuestionType(_lead_kind(after[0]), after[0])
    if question or first in _NOT_VERBS or not first.isalpha():
        return QuestionType("other", None)
    return QuestionType("imperative", first)


def _uncontracted(word: str) -> str:
    """The word a contraction starts with: "what's" -> "what", "isn't" -> "is", "can't" -> "can"."""
    if "'" not in word:
        return word
    if word in _CONTRACTED:
        return _CONTRACTED[word]
    if word.endswith("n't"):
        return word[:-3]
    return word.split("'", 1)[0]


def _lead_kind(word: str) -> str | None:
    if word in WH_WORDS:
        return "wh"
    if word in AUXILIARIES:
        return "aux"
    return None
