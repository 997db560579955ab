"""Language: whether a translated field is in the language asked for (script, identified language, copy, length).

``check_translation(lang, text, english)`` says why ``text`` is not an acceptable ``lang``
translation of ``english``, or None. Besides the script (zh, ja, ko, ar), a copy of the English and
a plausible length, it identifies the text's language with py3langid (its model ships in the
wheel: no download), choosing among ``NEIGHBOURS`` (the seven default targets, English and the
Latin-script languages a Spanish, German or French translation is most often confused with) plus
the language asked for. A field of at least ``MIN_WORDS`` words (``MIN_WIDE`` characters in
Chinese or Japanese) identified as another language, with the asked language's probability under
``MAX_TARGET_P``, fails: so an English "translation" into German, or a Spanish one asked as French,
is asked again. Shorter fields (a name, a number, "Ja.") are not identified: on them no
identifier is right often enough (``bench/langid.py`` measures it). For the same reason a field of
fewer than ``MIN_WORDS`` words may equal its English ("Anna", "Coca-Cola", "3.5 km"), and a field
with no letters (a number) has no script to check.

>>> en = "The cat sleeps on a cushion by the fire."
>>> check_translation("de", "The cat is sleeping next to the warm fireplace.", en)
'in English, not German (de)'
>>> check_translation("es", "Le chat dort sur un coussin à côté de la cheminée.", en)
'in French, not Spanish (es)'
>>> check_translation("fr", "Le chat dort sur un coussin à côté de la cheminée.", en) is None
True
>>> check_translation("de", "Ja.", "Yes.") is None  # too short to tell: not failed
True
>>> check_translation("zh", "42", "42"), check_translation("fr", "Coca-Cola", "Coca-Cola")
(None, None)
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

NEIGHBOURS = ("en", "zh", "ja", "ko", "es", "de", "fr", "ar", "it", "pt", "nl")
NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "es": "Spanish", "de": "German",
         "fr": "French", "ar": "Arabic", "it": "Italian", "pt": "Portuguese", "nl": "Dutch"}
MIN_WORDS = 3  # a field of fewer words is not identified
MIN_WIDE = 6  # nor one of fewer Chinese or Japanese characters
MAX_TARGET_P = 0.2  # another language wins and the asked one has less than this: wrong language

SCRIPTS = {  # languages whose script is checked: the character ranges that count
    "zh": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)),
    "ja": ((0x3040, 0x30FF), (0x4E00, 0x9FFF), (0x31F0, 0x31FF)),
    "ko": ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)),
    "ar": ((0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
}
_KANA = ((0x3040, 0x30FF),)
_WIDE = {"zh", "ja", "ko"}  # a character carries a word's worth: lengths shrink
_HAN_KANA = ((0x3040, 0x30FF), (0x4E00, 0x9FFF), (0x3400, 0x4DBF))


def _share(text: str, ranges: tuple[tuple[int, int], ...]) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(any(lo <= ord(c) <= hi for lo, hi in ranges) for c in letters) / len(letters)


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@functools.lru_cache(maxsize=32)
def _identifier(candidates: tuple[str, ...]) -> Any:
    """A py3langid identifier choosing among ``candidates`` (one per set: ``set_languages`` narrows it)."""
    import copy

    ident = copy.copy(_model())  # the model's tables are shared; set_languages replaces, never edits, them
    ident.set_languages(list(candidates))
    return ident


def candidates_for(lang: str) -> tuple[str, ...] | None:
    """The languages a ``lang`` field is told apart from; None when py3langid does not know ``lang``."""
    if lang not in _model().nb_classes:
        return None
    return tuple(sorted(set(NEIGHBOURS) | {lang}))


def _words(text: str) -> int:
    return sum(1 for w in text.split() if any(c.isalpha() for c in w))


def long_enough(text: str) -> bool:
    """Whether ``text`` is long enough to identify: ``MIN_WORDS`` words, or ``MIN_WIDE`` Chinese/Japanese characters."""
    wide = sum(1 for c in text if any(lo <= ord(c) <= hi for lo, hi in _HAN_KANA))
    if wide >= MIN_WIDE:
        return True
    return _words(text) >= MIN_WORDS


def identify(text: str, lang: str) -> tuple[str, float, float] | None:
    """(identified language, its probability, ``lang``'s probability) among ``lang``'s candidates;
    None when the text is too short or ``lang`` unknown to the identifier."""
    candidates = candidates_for(lang)
    if candidates is None or not long_enough(text):
        return None
    ranked = _identifier(candidates).rank(text)
    best, p = ranked[0]
    return str(best), float(p), float(dict(ranked).get(lang, 0.0))


def wrong_language(lang: str, text: str) -> str | None:
    """Why ``text`` is not in ``lang`` by its identified language (None if it is, or if it cannot be told)."""
    found = identify(text, lang)
    if found is None:
        return None
    best, _, p_lang = found
    if best == lang or p_lang >= MAX_TARGET_P:
        return None
    return f"in {NAMES.get(best, best)}, not {NAMES.get(lang, lang)} ({lang})"


def check_translation(lang: str, text: str, english: str) -> str | None:
    """Why ``text`` is not an acceptable ``lang`` translation of ``english`` (None if it is)."""
    if not isinstance(text, str) or not text.strip():
        return "empty"
    if lang in SCRIPTS and any(c.isalpha() for c in text):  # a number or a measure has no script
        if _share(text, SCRIPTS[lang]) < 0.5:
            return f"not in the {lang} script"
        if lang == "ja" and _share(text, _KANA) == 0 and len(text) > 12:
            return "no kana: looks like Chinese, not Japanese"
    elif any(_share(text, r) > 0.3 for r in SCRIPTS.values()) and not any(_share(english, r) > 0.3
                                                                        for r in SCRIPTS.values()):
        return f"written in another script than {lang}'s"
    if len(_plain(english)) >= 4 and _plain(text) == _plain(english) and _words(english) >= MIN_WORDS:
        return "an untranslated copy of the English"
    if len(english) >= 20:
        ratio = len(text) / len(english)
        low, high = (0.08, 3.0) if lang in _WIDE else (0.3, 3.5)
        if not low <= ratio <= high:
            return f"implausible length ({len(text)} characters for {len(english)} in English)"
    return wrong_language(lang, text)
