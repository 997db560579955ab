"""IdSet: a compact set of string ids (what a run folder remembers as settled)."""

from __future__ import annotations

import random
import string

import pytest

from syphus.idset import IdSet


def test_idset_basics():
    s = IdSet()
    assert len(s) == 0 and "a" not in s
    assert s.add("a") is True
    assert s.add("a") is False
    assert "a" in s and "b" not in s and len(s) == 1
    assert s.add("") is True and "" in s


def test_idset_from_iterable():
    s = IdSet(["x", "y", "x"])
    assert len(s) == 2 and "x" in s and "y" in s


@pytest.mark.parametrize("item", [1, None, b"a", ("a",), 1.0])
def test_idset_non_str_membership_is_false(item):
    s = IdSet(["a", "1", "None", "1.0"])
    assert (item in s) is False


def test_idset_across_growth():
    s = IdSet()
    n = 100_000
    ids = [f"v_{i:07d}" for i in range(n)]
    for i, x in enumerate(ids):
        assert s.add(x) is True
        if i in (1000, 50_000):  # spot checks while the table grows
            assert all(y in s for y in ids[: i + 1: 97])
    assert len(s) == n
    assert all(x in s for x in ids)
    assert all(f"w_{i:07d}" not in s for i in range(0, n, 7))
    assert not any(s.add(x) for x in ids[::13])
    assert len(s) == n


def test_idset_unicode_and_similar_ids():
    rnd = random.Random(0)
    ids = {"".join(rnd.choice(string.ascii_letters + "éß桌🙂") for _ in range(rnd.randint(1, 12)))
           for _ in range(5000)}
    s = IdSet(ids)
    assert len(s) == len(ids)
    assert all(x in s for x in ids)
    assert "v_1" not in IdSet(["v_10", "v_01", "V_1", "v_1 "])
