"""Query inputs checked as a plugin gives them: each a dict with a non-empty string ``id`` and a
string ``sentences``, ids unique unless ``--on_duplicate`` deals with repeats; errors name the
plugin and the item (numbered from 1, as lines are).

>>> list(validate_items([{"id": 7, "sentences": "a red ball"}], "datasets/toys.py (Toys)"))
[{'id': '7', 'sentences': 'a red ball'}]
>>> next(validate_items([{"id": "a"}], "datasets/toys.py (Toys)"))
Traceback (most recent call last):
...
syphus.errors.UserError: datasets/toys.py (Toys): item 1 (id 'a') has no 'sentences'; each item needs 'id' (a string) and 'sentences' (a string)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from syphus.errors import UserError
from syphus.seen import SeenIds

_FIX = "each item needs 'id' (a string) and 'sentences' (a string)"


def empty_input_error(source: str, path: Any) -> UserError:
    """The error for a plugin whose ``_load_query_inputs`` gave no items at all."""
    if path is None:
        return UserError(f"{source}: _load_query_inputs gave no query inputs, and query_inputs_path is None; "
                         "pass one to super().__init__ or use --query_inputs_path")
    return UserError(f"{source}: _load_query_inputs gave no query inputs from {path}; "
                     "check the path and the file's format")


def check_container(items: Any, source: str) -> Any:
    """``items`` if it can hold query inputs; a UserError naming ``source`` for None, a string or a dict."""
    if items is None:
        raise UserError(f"{source}: _load_query_inputs returned None; return or yield items ({_FIX})")
    if isinstance(items, (str, bytes, dict)):
        raise UserError(f"{source}: _load_query_inputs returned a {type(items).__name__}; "
                        f"return a list or yield items ({_FIX})")
    return items


def validate_items(items: Any, source: str, unique: bool = True) -> Iterator[dict[str, Any]]:
    """Yield ``items``, raising a UserError at the first malformed one (numbered from 1, as lines are).

    With ``unique`` (the default) a repeated id is an error too; without, repeats pass through (for
    ``--on_duplicate``, which deals with them after the check before the run).
    """
    check_container(items, source)
    if not unique:
        return _checked(items, source, None)
    return _unique_checked(items, source)


def _unique_checked(items: Any, source: str) -> Iterator[dict[str, Any]]:
    seen = SeenIds()
    try:
        yield from _checked(items, source, seen)
    finally:
        seen.close()


def _checked(items: Any, source: str, seen: SeenIds | None) -> Iterator[dict[str, Any]]:
    """Yield each item once checked; messages call the first one ``item 1``."""
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise UserError(f"{source}: item {n} is a {type(item).__name__}, not a dict; {_FIX}")
        if "id" not in item:
            raise UserError(f"{source}: item {n} has no 'id'; {_FIX}")
        qid = item["id"]
        if isinstance(qid, int) and not isinstance(qid, bool):
            item["id"] = qid = str(qid)
        if not isinstance(qid, str) or not qid:
            raise UserError(f"{source}: item {n} has id {qid!r}; ids must be non-empty strings ({_FIX})")
        if not isinstance(item.get("sentences"), str):
            got = "no 'sentences'" if "sentences" not in item else f"'sentences' of type {type(item['sentences']).__name__}"
            raise UserError(f"{source}: item {n} (id {qid!r}) has {got}; {_FIX}")
        if seen is not None and not seen.add(qid):
            raise UserError(f"{source}: item {n} repeats id {qid!r}; ids must be unique (make them so in _load_query_inputs)")
        yield item
