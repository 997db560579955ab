"""Grounding: whether an answer asserts what its query's annotation never said, checked without a model.

The answer's content terms (objects and people: nouns and names; colours; counts; moments in a clip;
which image of a pair) are compared with the query's own annotation (its ``sentences``) and the
question. A term is supported when one of its lemmas (``lemminflect``) occurs there; very common words
(``wordfreq``: Zipf frequency 6 or more) and the words every answer uses (the image, the video, the
scene) are not claims. A general word is supported by any of its instances (a person by a man, a
vehicle by a van). A count of an object the annotation counts must be one of its counts (a number said
of it, or its boxes, each image of a pair apart); any other number needs the same number in the
annotation. A time (``at 95 seconds``, ``1:35``) is checked against the clip's last annotated moment; ``the second
image`` only where the query has two images.

>>> support = Support.of("[0.0s - 9.4s] A woman in a green apron lays out flour.", images=8)
>>> check("The woman wears a green apron.", "What is she wearing?", support).unsupported
()
>>> check("At 95 seconds a man brings a red umbrella.", "What happens?", support).unsupported
('95s', 'man', 'red', 'umbrella')

What it cannot see: synonyms no caption uses (a sofa where every caption says couch), paraphrased
hallucinations made of words the annotation has (the dog is on the sofa, when the cat is), verbs and
relations (who does what), and a denial of what the annotation shows (a denial of what it lacks claims
nothing: ``_denied``). The word lists are data in ``syphus.release.groundingwords``. Reasoning answers (LACR) score lower by design: they say more
than the annotation.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from syphus.release.groundingwords import (ALIASES, COLOURS, DENIAL_ENDS, DENIAL_REACH, FUNCTION, GENERAL, GENRE,
                                            NEGATORS, NOT_NEGATING, NOUN_CUES, NUMBER_WORDS, OBJECT_PRONOUN,
                                            ONE_PRONOUN, ORDINALS, OWN_PARTS, PLACEHOLDERS, PLURAL_PRONOUN,
                                            PARTICLES, PREDICATE_CUES, STANDING_ADVERBS, DETERMINERS)

COMMON_ZIPF = 6.0   # a word at least this frequent in English (wordfreq) is not a claim
RARE_ZIPF = 5.0     # a word lemminflect does not know is a claim only when rarer than this (names, rare nouns)
TIME_SLACK = 1.0    # seconds past the last annotated moment still taken as inside the clip

_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?|\d+(?:\.\d+)?")
_BOX = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?):\s*\[[-\d.,\s]+\]\s*$", re.M)
_SECTION = re.compile(r"^image \w+:\s*$", re.M | re.I)  # 'image a:' opens one image of a pair (CGD)
_STAMP = re.compile(r"\[(\d+(?:\.\d+)?)s(?:\s*-\s*(\d+(?:\.\d+)?)s)?\]")
_MINSEC = re.compile(r"\b(\d{1,2}):([0-5]\d)\b")
_UNIT_S = r"(?:s|sec|secs|second|seconds)\b"
_RANGE_S = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:-|\u2013|to|and|until|till)\s*(\d+(?:\.\d+)?)\s*" + _UNIT_S, re.I)
_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:-\s*)?" + _UNIT_S, re.I)
_MIN_AND_S = re.compile(r"\b(\d+)\s*(?:min|mins|minute|minutes)\s*(?:and\s*)?(\d+(?:\.\d+)?)\s*" + _UNIT_S, re.I)
_MINUTES = re.compile(r"\b(\d+(?:\.\d+)?|" + "|".join(k for k in NUMBER_WORDS if NUMBER_WORDS[k] > 0) +
                      r")\s*(?:-\s*)?(?:min|mins|minute|minutes)\b", re.I)
_IDIOM = re.compile(r"\b(?:close at hand|at hand|on hand)\b", re.I)  # nothing held: 'a cup close at hand'
_ANY_DIGIT = re.compile(r"\d")
_IMAGE_HINT = re.compile(r"imag|pictur|photo", re.I)
# CGD's 'image a' and 'image b' (not 'the image a man is in': the label is followed by a stop or a verb)
_IMAGE_LABEL = re.compile(r"\b(image|picture|photo)\s+[ab]\b(?=\s*(?:[,.;:)!?]|$|(?:shows?|has|is|was|contains?|"
                          r"features?|depicts?|looks?)\b))", re.I)
_LIST_MARK = re.compile(r"(?:^|(?<=\n)|(?<=[.!?:;]\s))\s*\d{1,2}[.)](?=\s)")  # '1. ...  2. ...': no count
_IMAGE_REF = re.compile(r"\b(" + "|".join(ORDINALS) + r"|last|next|other|both|two|left|right)\s+"
                        r"(image|images|picture|pictures|photo|photos)\b", re.I)


def _words(text: str) -> list[str]:
    """The words and numbers of ``text``; a clitic is taken off (office's -> office, they'll -> they) and a
    negated auxiliary (don't) read as 'not'."""
    tokens = _WORD.findall(text)
    if "'" not in text and "\u2019" not in text:
        return tokens
    out = []
    for token in tokens:
        base, _, clitic = token.replace("\u2019", "'").partition("'")
        if clitic.lower() == "t" and base.lower().endswith("n"):
            out.append("not")
        else:
            out.append(base if clitic else token)
    return out


def _lemmas_by_pos(word: str) -> dict[str, tuple[str, ...]]:
    """lemminflect's lemmas of ``word`` (lower case) by part of speech; imported on first use."""
    from lemminflect import getAllLemmas

    return getAllLemmas(word.lower())


@lru_cache(maxsize=1 << 16)
def lemmas(word: str) -> frozenset[str]:
    """Every lemma ``word`` may have (any part of speech), lower case, aliases applied."""
    w = word.lower()
    out = {w, ALIASES.get(w, w)}
    for forms in _lemmas_by_pos(w).values():
        out.update(forms)
    out.update(ALIASES[x] for x in list(out) if x in ALIASES)
    return frozenset(out)


@lru_cache(maxsize=1 << 16)
def _kind(word: str) -> str | None:
    """What an answer word claims: 'colour', 'number', 'term' (an object, a person, a name), or None."""
    from wordfreq import zipf_frequency

    w = word.lower()
    if w in COLOURS:
        return "colour"
    if w in NUMBER_WORDS or w[0].isdigit():
        return "number"
    if (len(w) < 3 and w not in ALIASES) or w in GENRE or w in ORDINALS or w in FUNCTION:
        return None
    if w in ALIASES:
        return "term"  # the nouns given another spelling (tv, fridge, people)
    pos = _lemmas_by_pos(w)
    general = ALIASES.get(w, w) in GENERAL or w in GENERAL
    if not general and zipf_frequency(w, "en") >= COMMON_ZIPF:
        return None
    if pos:
        if "NOUN" not in pos and "PROPN" not in pos:
            return None
        return "either" if ("VERB" in pos or "ADJ" in pos or "ADV" in pos) and not general else "term"
    return "term" if zipf_frequency(w, "en") < RARE_ZIPF else None


@lru_cache(maxsize=1 << 16)
def _cues_noun(word: str, token: str) -> bool:
    """Whether ``word`` just before the noun-or-verb ``token`` makes it a noun: a determiner, a number, a
    colour or an adjective (the watch, two rides, a wooden counter); or a singular noun before a token with
    no verb ending (a coffee table, but a giraffe walks, the cars move)."""
    w = word.lower()
    if w in NOUN_CUES or w in NUMBER_WORDS or w in COLOURS or w[:1].isdigit():
        return True
    if w in FUNCTION or w in STANDING_ADVERBS:
        return False  # are now standing: an adverb cues a verb
    pos = _lemmas_by_pos(w)
    if "VERB" in pos or not pos:
        return False
    if "NOUN" not in pos:
        return "ADJ" in pos
    singular = w in pos["NOUN"]
    return singular and not token.lower().endswith(("s", "ed"))


@lru_cache(maxsize=1 << 16)
def _modifies(word: str) -> bool:
    """Whether ``word`` may stand between a determiner and its noun (a rolling pin, the parked car)."""
    w = word.lower()
    return w.endswith(("ing", "ed")) or "ADJ" in _lemmas_by_pos(w) or w in COLOURS


def _head(tokens: list[str], i: int) -> int | None:
    """The index of the noun the number ``tokens[i]`` counts (two cars, 3 parked red cars), or None (two of
    them, at 20): up to three modifiers may stand between."""
    for j in range(i + 1, min(i + 5, len(tokens))):
        token = tokens[j]
        if _modifies(token) and j < i + 4:
            continue
        return j if _kind(token) in ("term", "either") else None
    return None


def _number(token: str) -> float | None:
    if token[0].isdigit():
        return float(token)  # a digit token of _WORD: digits with at most one point
    t = token.lower()
    return float(NUMBER_WORDS[t]) if t in NUMBER_WORDS else None


@dataclass(frozen=True)
class Support:
    """What one query's annotation (and nothing else) supports."""

    words: frozenset[str]       # every lemma of every annotation word
    numbers: frozenset[float]   # numbers said in the text, and each object's box count
    last_time: float | None     # the clip's last annotated moment, when the annotation has times
    images: int | None          # how many images the query sends (None: not known)
    counts: dict[str, frozenset[float]] = field(default_factory=dict)  # lemma: the numbers said of it, box counts

    @classmethod
    def of(cls, annotation: str, images: int | None = None) -> Support:
        boxes: Counter[tuple[int, str]] = Counter()  # (section, object): boxes; a pair's images count apart
        times: list[float] = []
        text = annotation
        if "[" in annotation:  # object boxes and timestamps
            starts = [m.start() for m in _SECTION.finditer(annotation)]
            for m in _BOX.finditer(annotation):
                boxes[(bisect.bisect(starts, m.start()), m.group(1).lower())] += 1
            times = [float(t) for m in _STAMP.finditer(annotation) for t in m.groups() if t is not None]
            text = _STAMP.sub(" ", _BOX.sub(lambda m: m.group(1), annotation))
        words: set[str] = set()
        numbers: set[float] = {1.0, *map(float, boxes.values())}
        counts: dict[str, set[float]] = {}
        tokens = _words(text)
        for i, token in enumerate(tokens):
            words.update(lemmas(token))
            value = _number(token)
            if value is not None:
                numbers.add(value)
                head = _head(tokens, i)
                for form in lemmas(tokens[head]) if head is not None else ():
                    counts.setdefault(form, set()).add(value)
        for (_, name), n in boxes.items():
            for token in name.split():
                words.update(lemmas(token))
            for form in lemmas(name.split()[-1]):
                counts.setdefault(form, set()).add(float(n))
        if "[" in annotation:
            for mark, stands_for in PLACEHOLDERS.items():
                if mark in annotation:
                    words.update(stands_for.split())
        words.update(general for general, members in GENERAL.items() if members & words)
        return cls(frozenset(words), frozenset(numbers), max(times) if times else None, images,
                   {form: frozenset(values) for form, values in counts.items()})


@dataclass(frozen=True)
class Grounding:
    """One answer checked: the share of its content terms the annotation supports, and the rest."""

    score: float                  # supported / content terms; 1.0 with no content terms
    terms: int                    # content terms found in the answer
    unsupported: tuple[str, ...]  # sorted, each once (times as '95s', images as 'second image')

    @property
    def grounded(self) -> bool:
        return not self.unsupported


def _times(answer: str) -> tuple[list[float], str]:
    """The moments an answer names, in seconds, and the answer with them blanked out."""
    found: list[float] = []
    if not _ANY_DIGIT.search(answer) and "min" not in answer.lower():
        return found, answer

    def take(value: float):
        found.append(value)
        return " "

    text = _MINSEC.sub(lambda m: take(int(m.group(1)) * 60 + int(m.group(2))), answer)
    text = _MIN_AND_S.sub(lambda m: take(int(m.group(1)) * 60 + float(m.group(2))), text)  # 1 minute 15 seconds
    text = _MINUTES.sub(lambda m: take(60 * (_number(m.group(1)) or 0)), text)
    text = _RANGE_S.sub(lambda m: take(float(m.group(1))) + take(float(m.group(2))), text)
    text = _SECONDS.sub(lambda m: take(float(m.group(1))), text)
    return found, text


def check(answer: str, question_text: str, support: Support) -> Grounding:
    """``answer`` checked against ``support`` (one query's annotation) and its ``question``."""
    asked: list[Support | None] = []  # an answer may repeat what its question says (read only when needed)

    def question() -> Support | None:
        if not asked:
            asked.append(Support.of(question_text) if question_text else None)
        return asked[0]
    unsupported: set[str] = set()
    terms = bad = 0
    if _ANY_DIGIT.search(answer):
        answer = _LIST_MARK.sub(" ", answer)
    if "Assistant:" in answer and "Human" in answer:  # a whole conversation (SN's form): its answers are the claims
        answer = "\n".join(line.split(":", 1)[1] for line in answer.splitlines() if line.startswith("Assistant:"))
    times, text = _times(answer)
    if support.last_time is not None:
        for t in times:
            terms += 1
            if t > support.last_time + TIME_SLACK:
                bad += 1
                unsupported.add(f"{t:g}s")
    if support.images is not None and _IMAGE_HINT.search(text):
        for m in _IMAGE_REF.finditer(text):
            which = m.group(1).lower()
            need = 2 if which in ("other", "both", "two", "left", "right", "last", "next") else ORDINALS[which]
            terms += 1
            if need > support.images:
                bad += 1
                unsupported.add(f"{which} {m.group(2).lower()}")
        text = _IMAGE_REF.sub(lambda m: m.group(2), text)  # 'the second image shows': 'shows' follows a noun
    if _IMAGE_HINT.search(text):
        text = _IMAGE_LABEL.sub(lambda m: m.group(1), text)  # 'image a shows': a verb after the image's label
    before, previous, noun_before = "", "", False
    text = _IDIOM.sub(" ", text)
    tokens = _words(text)
    denied = _denied(text)
    for i, token in enumerate(tokens):
        kind = _kind(token)
        if kind == "either":   # a noun-or-verb: a noun after a cue, or after 'and' that follows a noun
            if previous.lower() in ("and", "or"):
                cued = noun_before
            else:
                cued = not _stands_for_noun(before, previous, token) and (
                    _cues_noun(previous, token) or (before.lower() in NOUN_CUES and _modifies(previous)))
            after = tokens[i + 1] if i + 1 < len(tokens) else ""
            if cued and _is_verb_or_modifier(token, after):
                cued = False
            kind = "term" if cued else None
        elif kind == "term" and token[:1].islower() and (previous.lower() in PREDICATE_CUES or (
                before.lower() in PREDICATE_CUES and _adverb(previous))):  # is visible, are now standing
            kind = None
        if token.lower() not in ("and", "or"):
            noun_before = kind == "term"
        before, previous = previous, token
        if kind is None:
            continue
        if kind == "number":
            value = _number(token)
            if value is None or value == 1.0 or token.lower() == "both":  # 'both' takes up two things named
                continue
            terms += 1
            if not _counted(value, tokens, i, support) and ((q := question()) is None or value not in q.numbers):
                bad += 1
                unsupported.add(token.lower())
            continue
        forms = lemmas(token)
        if not (forms & support.words) and ((q := question()) is None or not (forms & q.words)):
            if i in denied:
                continue  # 'there is no dog', 'without a helmet': saying a thing is absent claims no thing
            bad += 1
            unsupported.add(ALIASES.get(token.lower(), token.lower()))
        terms += 1
    score = 1.0 if terms == 0 else (terms - bad) / terms
    return Grounding(round(max(score, 0.0), 4), terms, tuple(sorted(unsupported)))


_NEGATION_HINT = re.compile(r"\b(?:no|not|without|nor|neither|never)\b|n['\u2019]t\b", re.I)
_CLAUSE = re.compile(r"[,.;:!?()\u2014](?=\s|$)|\s[-\u2013]\s")


def _denied(text: str) -> frozenset[int]:
    """The indices (in ``_words(text)``) of the words a negator denies: up to ``DENIAL_REACH`` words after
    'no', 'without', 'not', 'never', 'nor' in the same clause, until 'but' or the like ('no umbrellas or
    pedestrians', 'not wearing a helmet'; but not 'no one', 'no longer')."""
    if not _NEGATION_HINT.search(text):
        return frozenset()
    out: list[int] = []
    start = 0
    for clause in _CLAUSE.split(text):
        words = _words(clause)
        reach = -1
        for j, word in enumerate(words):
            w = word.lower()
            if w in DENIAL_ENDS:
                reach = -1
            elif w in NEGATORS and (j + 1 >= len(words) or words[j + 1].lower() not in NOT_NEGATING):
                reach = j + DENIAL_REACH
            elif j <= reach:
                out.append(start + j)
        start += len(words)
    return frozenset(out)


def _stands_for_noun(before: str, previous: str, token: str) -> bool:
    """Whether ``previous`` stands for a noun, so that ``token`` is its verb: 'one' after a determiner or an
    ordinal (the second one shows, each one holds), or an ordinal after 'the' before a verb's -s (the second
    shows)."""
    p, b = previous.lower(), before.lower()
    if p == "one":
        return b in ORDINALS or b in ONE_PRONOUN
    if p in PLURAL_PRONOUN and not token.lower().endswith("s"):
        return b not in NOUN_CUES  # 'both show' (a verb), but 'both shows' and 'of these watch' are read as nouns
    return p in ORDINALS and b == "the" and token.endswith("s") and not token.endswith("ss")




def _adverb(word: str) -> bool:
    """Whether ``word`` is an adverb that may stand between a verb 'be' and its predicate (now, still, -ly)."""
    w = word.lower()
    return w in STANDING_ADVERBS or (w.endswith("ly") and len(w) > 4)


@lru_cache(maxsize=1 << 16)
def _is_verb_or_modifier(token: str, after: str) -> bool:
    """Whether the noun-or-verb ``token`` is, by the word ``after`` it, a verb with a pronoun object (set it
    down) or an adjective before a noun (the old shelf bracket)."""
    a = after.lower()
    if a in OBJECT_PRONOUN or a in DETERMINERS or a in PARTICLES:
        return True  # set it down, set the eggs down, set up: a noun is not followed by its own determiner
    if a in GENRE:
        return "ADJ" in _lemmas_by_pos(token)  # a long day: an adjective before a noun that claims nothing
    if not a or a in FUNCTION or _kind(after) not in ("term", "either"):
        return False
    if _kind(after) == "either" and a.endswith("s"):
        return False  # her daughter helps: a verb follows, so the word before it is its subject
    return "ADJ" in _lemmas_by_pos(token)


def _counted(value: float, tokens: list[str], i: int, support: Support) -> bool:
    """Whether the number ``tokens[i]`` (``value``) is supported: when it counts a noun the annotation
    counts (a number said of it, or its boxes), by one of those counts; otherwise by the same number said
    anywhere in the annotation."""
    if i + 1 < len(tokens) and tokens[i + 1].lower() in OWN_PARTS:
        return True  # three things changed, two steps: the answer counts its own parts
    head = _head(tokens, i)
    if head is not None:
        said = [support.counts[form] for form in lemmas(tokens[head]) if form in support.counts]
        if said:
            return any(value in values for values in said)
    return value in support.numbers


def kind_of(term: str) -> str:
    """Which kind of claim an unsupported term is: 'time', 'image', 'count', 'colour' or 'object'
    (objects, people and names)."""
    if term.endswith("s") and term[:-1].replace(".", "", 1).isdigit():
        return "time"
    if " " in term:
        return "image"
    if term in NUMBER_WORDS or term[:1].isdigit():
        return "count"
    return "colour" if term in COLOURS else "object"
