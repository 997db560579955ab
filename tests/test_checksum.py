"""release/checksum: downloaded archives against the published MD5 table, through syphus checksum."""

from __future__ import annotations

import hashlib
import io

from syphus.cli import main
from syphus.release import checksum


def test_checksum_against_the_published_table(tmp_path, monkeypatch):
    archive = tmp_path / "DC.zip"
    archive.write_bytes(b"not the real archive")
    out = io.StringIO()
    assert main(["checksum", str(archive)], stream=out) == 1
    assert "MISMATCH" in out.getvalue() and "0d373a5f511fd1d9f03ac81bb12e04fe" in out.getvalue()
    digest = hashlib.md5(b"not the real archive").hexdigest()
    monkeypatch.setitem(checksum.PUBLISHED_MD5, "DC", digest)
    out = io.StringIO()
    assert main(["checksum", str(archive)], stream=out) == 0
    assert "OK" in out.getvalue()
    assert checksum.known_archive("SD_general_diff.zip") == "SD (General Diff)"
    assert checksum.known_archive("LA-In-Context.zip") == "LA-In-Context"
