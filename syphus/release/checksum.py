"""Checksums: verify downloaded MIMIC-IT archives against the published MD5 table.

>>> known_archive("DC.zip")
'DC'
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from syphus.errors import UserError

# archive -> MD5, as published in the MIMIC-IT README
PUBLISHED_MD5 = {
    "LA-In-Context": "fdc2427451bcfd8a04bab7a1c2305259",
    "DC": "0d373a5f511fd1d9f03ac81bb12e04fe",
    "TVC": "ea16ec0ef7f35e810e0920e85ed467af",
    "VST": "988569e39aaa24da0df547644514b0d4",
    "SN": "1c4751c5b2c0bcaaeb94dbc5fb39e7a6",
    "SD (General Diff)": "7fd998c10baaba9c6e39b66761a456a0",
    "SD (Subtle Diff)": "5175198daebb997672a21307e8b18a96",
    "E4D (1st Part)": "504b779dbc852c943adbe7862d6924d7",
}
_NAMES = [  # file name patterns -> archive, most specific first
    (re.compile(r"^LA(\b|_|-)", re.I), "LA-In-Context"),
    (re.compile(r"^(CGD|SD).*general", re.I), "SD (General Diff)"),
    (re.compile(r"^SD.*subtle", re.I), "SD (Subtle Diff)"),
    (re.compile(r"^E4D", re.I), "E4D (1st Part)"),
    (re.compile(r"^DC\b", re.I), "DC"),
    (re.compile(r"^TVC\b", re.I), "TVC"),
    (re.compile(r"^VST\b", re.I), "VST"),
    (re.compile(r"^SN\b", re.I), "SN"),
]


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
