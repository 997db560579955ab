"""Checksums: verify downloaded MIMIC-IT archives against the published MD5 table.

>>> known_archive("DC.zip")
'DC'
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from syphus.errors import UserError
from syphus.families import FAMILIES

# archive -> MD5, as published in the MIMIC-IT README (each family declares its archives)
_ARCHIVES = sorted((a for f in FAMILIES for a in f.archives), key=lambda a: a.row)
PUBLISHED_MD5 = {a.name: a.md5 for a in _ARCHIVES}
_NAMES = [(re.compile(p, re.I), a.name) for a in _ARCHIVES for p in a.patterns]  # file name patterns -> archive


def md5_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    return digest.hexdigest()


def known_archive(name: str) -> str | None:
    """Which published archive a file name stands for, if it says."""
    for pattern, archive in _NAMES:
        if pattern.search(Path(name).name):
            return archive
    return None


def check_archive(path: str | Path, archive: str | None = None) -> tuple[bool, str]:
    """(ok, message) for one downloaded file."""
    digest = md5_of(path)
    by_digest = next((a for a, d in PUBLISHED_MD5.items() if d == digest), None)
    expected = archive or known_archive(str(path))
    if expected is not None and expected not in PUBLISHED_MD5:
        raise UserError(f"unknown archive {expected!r}; known: {', '.join(PUBLISHED_MD5)}")
    if by_digest and (expected is None or expected == by_digest):
        return True, f"OK {path}: matches {by_digest} (md5 {digest})"
    if expected is not None:
        return False, (f"MISMATCH {path}: md5 {digest}, but {expected} is published as {PUBLISHED_MD5[expected]}; "
                       "the download is incomplete or corrupt: download it again")
    return False, f"UNKNOWN {path}: md5 {digest} matches no published archive (pass --archive NAME to say which)"
