"""The registry every extension family shares (endpoint kinds, schema forms): names, lookups, one name each."""

from __future__ import annotations

import pytest

from syphus import kinds, schemaform
from syphus.errors import UserError
from syphus.registry import Registry


class Member:
    def __init__(self, name: str):
        self.name = name


def test_a_member_registers_once_under_a_free_name_and_auto_is_reserved():
    r = Registry("widget", "known:", [Member("a")])
    for taken in ("a", "auto", ""):
        with pytest.raises(ValueError, match=f"widget name {taken!r} is empty, reserved or taken"):
            r.register(Member(taken))
    with pytest.raises(ValueError, match="reserved or taken"):
        r.register(object())  # no name at all
    assert r.names() == ("auto", "a") and r.names(auto=False) == ("a",)


def test_an_unknown_name_is_one_user_error_listing_the_known_ones():
    r = Registry("widget", "use one of", [Member("a"), Member("b")])
    assert r.find("b").name == "b"
    with pytest.raises(UserError, match="unknown widget 'c'; use one of a, b$"):
        r.find("c")
    assert r.unknown("c") == "unknown widget 'c'; use one of auto, a, b"
    assert r.checked("auto") == "auto" and r.checked("a", auto=False) == "a"
    with pytest.raises(ValueError, match="unknown widget 'auto'; use one of a, b$"):
        r.checked("auto", auto=False)  # what a config validator raises


def test_a_scoped_registration_is_gone_after_the_block_even_when_it_raises():
    r = Registry("widget", "known:", [Member("a")])
    with pytest.raises(RuntimeError):
        with r.scoped():
            r.register(Member("b"))
            assert "b" in r
            raise RuntimeError("a failing test")
    assert list(r) == ["a"]


def test_the_families_are_registries_with_their_own_words():
    assert isinstance(kinds.KINDS, Registry) and isinstance(schemaform.FORMS, Registry)
    assert kinds.unknown("x", auto=False) == "unknown endpoint kind 'x'; known: openai, azure, compatible, local"
    assert schemaform.unknown("x") == "unknown schema form 'x'; use one of auto, openai, vllm, llamacpp"
