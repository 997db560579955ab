"""engine/record: the JSON line a settled query leaves, built, tallied and strictly encoded."""

from __future__ import annotations

import json

import pytest

from syphus.engine.record import (checked_pairs, encode, encode_loose, error_record, query_meta, tally,
                                  usage_tokens)
from syphus.errors import ItemError


def test_usage_tokens_read_what_they_can():
    assert usage_tokens({"prompt_tokens": "12", "completion_tokens": 30}) == (12, 30)
    assert usage_tokens({"prompt_tokens": -4, "completion_tokens": "many"}) == (0, 0)
    assert usage_tokens(None) == (0, 0) and usage_tokens([1, 2]) == (0, 0)
    assert usage_tokens({"prompt_tokens": float("inf")}) == (0, 0)


def test_tally_counts_what_a_record_holds():
    assert tally({"id": "a"}) == (0, 0, 0, 0, 0, 0)
    assert tally({"pairs": "not a list", "truncated": 1}).truncated == 1


def test_checked_pairs_keeps_what_a_release_can_hold():
    kept, dropped = checked_pairs([{"instruction": "Q?", "answer": "A."}, {"instruction": " ", "answer": "A."},
                                   {"instruction": "Q?", "answer": 3}])
    assert kept == [{"instruction": "Q?", "answer": "A."}]
    assert dropped == ["pair 2: no string 'instruction' (dropped)", "pair 3: no string 'answer' (dropped)"]
    assert checked_pairs(None) == ([], ["the parser gave NoneType, not a list of pairs"])


def test_encode_is_strict_and_names_the_bad_field():
    assert encode({"id": "a", "pairs": [], "text": "é"}) == '{"id": "a", "pairs": [], "text": "é"}\n'.encode()
    with pytest.raises(ItemError, match=r"meta\.frames\[1\] is nan") as e:
        encode({"id": "a", "meta": {"frames": [1.0, float("nan")]}})
    assert e.value.kind == "unencodable"
    with pytest.raises(ItemError, match="lone surrogate"):
        encode({"id": "a", "raw": "\ud800"})
    with pytest.raises(ItemError, match="meta.when is a set"):
        query_meta({"id": "a", "sentences": "s", "when": {1}})


def test_encode_loose_always_gives_one_ascii_line():
    line = encode_loose({"id": "a", "raw": "\ud800", "x": float("inf"), "s": {1}})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"id": "a", "raw": "\ud800", "x": "inf", "s": "{1}"}


def test_error_record_keeps_the_reply_and_the_estimate_only_when_given():
    bare = error_record("q1", "http_400", "bad request", 400, 1)
    assert set(bare) == {"id", "kind", "message", "status", "attempts", "at"}
    full = error_record("q1", "parse", "no pairs", None, 2, raw="text", estimated={"prompt_tokens": 5})
    assert full["raw"] == "text" and full["estimated_usage"] == {"prompt_tokens": 5}
