"""Redaction: secrets taken out of text meant for people (logs, errors, messages), never out of data.

Two things can be secrets: a URL's ``user:password`` (its password is replaced wherever
a URL appears), and a key at least ``MIN_SECRET`` characters long (replaced wherever it
appears). Anything shorter is a placeholder (``none``, ``x``, ``EMPTY``, the keys local
servers take), not a secret: replacing it would rewrite ordinary words. Stored records
are never passed through a redactor; secrets are kept out of them by never putting them
there (headers and URLs carry them, and neither is stored).

>>> r = Redactor(["sk-live-0123456789", "x"])
>>> r("key sk-live-0123456789 at https://me:hunter2@example.com/v1, x marks the spot")
'key *** at https://me:***@example.com/v1, x marks the spot'
>>> without_credentials({"base_url": "http://u:p@127.0.0.1:8/v1", "n": 1})
{'base_url': 'http://u:***@127.0.0.1:8/v1', 'n': 1}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

MIN_SECRET = 8  # shorter values are placeholders: never replaced as substrings
MASK = "***"

# scheme://user:password@ ; the password runs to the netloc's last '@' (as urlsplit reads it)
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/?#\s:@\"'<>]*:)[^/?#\s\"'<>]*@")


def redact_urls(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (the user name is kept).

    >>> redact_urls("syphus --base_url http://user:secret@127.0.0.1:8000/v1 --quiet")
    'syphus --base_url http://user:***@127.0.0.1:8000/v1 --quiet'
    """
    return _USERINFO.sub(lambda m: m[1] + MASK + "@", text)


def url_password(url: str | None) -> str | None:
    """The password of ``url`` (None when it has none or is not a URL)."""
    if not url:
        return None
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


def without_credentials(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every URL password in its strings replaced."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {k: without_credentials(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_credentials(v) for v in value]
    return value


class Redactor:
    """Replaces URL passwords, and every known secret of at least ``MIN_SECRET`` characters, with ``***``.

    One instance serves a whole command: ``add`` the keys as they become known (the pool's
    are known once the config is read); it is a callable ``str -> str``.
    """

    def __init__(self, secrets: Iterable[str | None] = ()):
        self.secrets: list[str] = []
        self.add(*secrets)

    def add(self, *values: str | None) -> None:
        """Know these values too; those shorter than ``MIN_SECRET`` (placeholders) are left out."""
        for v in values:
            v = (v or "").strip()
            if len(v) >= MIN_SECRET and v not in self.secrets:
                self.secrets.append(v)
        self.secrets.sort(key=len, reverse=True)  # a key that contains another is replaced whole

    def __call__(self, text: str) -> str:
        text = redact_urls(text)
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text

    def exception(self, exc: BaseException) -> BaseException:
        """``exc`` with its message (``args[0]`` when text) redacted, in place; returns it."""
        if exc.args and isinstance(exc.args[0], str):
            exc.args = (self(exc.args[0]),) + exc.args[1:]
        return exc
