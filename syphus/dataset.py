"""AbstractDataset: the plugin contract.

A plugin is a file in ``datasets/`` with a subclass that writes one method::

    from abstract_dataset import AbstractDataset   # or: from syphus.dataset import AbstractDataset

    class MyScenes(AbstractDataset):
        def __init__(self, name="MyScenes", prompt_path="prompts/my_scenes.json",
                     query_inputs_path="annotations/my_scenes.jsonl"):
            super().__init__(name, prompt_path, query_inputs_path)

        def _load_query_inputs(self, path):
            for line in open(path):
                row = json.loads(line)
                yield {"id": row["video"], "sentences": row["caption"]}

An item may carry more keys than ``id`` and ``sentences``: they are kept in the
record's ``meta`` (``image_ids`` and ``image_prefix`` are what ``syphus export``
uses to link pairs to images). A class attribute ``scene = "DC"`` names the
MIMIC-IT scene code used for exported ids.

A plugin that gives no items at all is an error naming its query_inputs_path (an
empty or misread file, a wrong path), and messages number items from 1.

Everything else has a default that a plugin may override:
``_load_prompt(path)`` (or ``_load_prefix``) returns
``{"system_message": str, "in_context": [...]}``; ``build_messages(query_input)``
returns the chat messages for one query; ``parse_response(text, finish_reason)``
turns the reply into pairs.
"""

from __future__ import annotations

import abc
import inspect
import json
from collections.abc import Iterator, Sized
from contextvars import ContextVar
from typing import Any

from syphus.errors import SyphusError, UserError
from syphus.parse import ParseResult, parse_pairs
from syphus.prompt import Prompt, check_prompt, load_prompt
from syphus.seen import SeenIds

# Paths given with --prompt_path / --query_inputs_path. The base constructor
# applies them, so they work whatever a subclass names its own parameters.
path_overrides: ContextVar[dict[str, str]] = ContextVar("path_overrides", default={})


class AbstractDataset(abc.ABC):
    """A source of query inputs plus the prompt that turns each into messages."""

    scene: str | None = None  # the MIMIC-IT scene code (DC, TVC, ...) for export
    # Whether ``_load_query_inputs`` giving nothing is a mistake to report (a wrong path, an empty
    # or misread file) rather than nothing to do. plugins.instantiate sets it for every plugin
    # file; a dataset for which no queries is normal (translate's retry pass) leaves it False.
    empty_is_error: bool = False

    def __init__(self, name: str = "AbstractDataset", prompt_path: Any = None, query_inputs_path: Any = None):
        overrides = path_overrides.get()
        prompt_path = overrides.get("prompt_path") or prompt_path
        query_inputs_path = overrides.get("query_inputs_path") or query_inputs_path
        self.name = name
        self.prompt_path = prompt_path
        self.query_inputs_path = query_inputs_path
        self.prompt = self._call_prompt_hook(prompt_path)
        self._prompt = self._as_prompt(self.prompt)
        self.query_inputs = self._load_query_inputs(query_inputs_path)

    # --- the one required method -------------------------------------------------
    @abc.abstractmethod
    def _load_query_inputs(self, path: Any):
        """Return or yield ``{"id": str, "sentences": str}`` items."""

    # --- hooks with defaults -----------------------------------------------------
    def _load_prompt(self, path: Any) -> dict[str, Any]:
        """Load the prompt file (JSON, YAML or a Python module) at ``path``."""
        if path is None:
            raise UserError(f"{type(self).__name__}: no prompt_path; pass one to super().__init__ "
                            "or use --prompt_path")
        return load_prompt(path).as_dict()

    def _load_prefix(self, path: Any) -> dict[str, Any]:
        """The public README's name for ``_load_prompt``; override either one."""
        return self._load_prompt(path)

    def build_messages(self, query_input: dict[str, Any]) -> list[dict[str, str]]:
        """The chat messages sent for one query input."""
        return self._prompt.messages(query_input["sentences"])

    def parse_response(self, text: str, finish_reason: str | None) -> ParseResult:
        """Turn one reply into instruction-response pairs.

        An override may take a third parameter, ``query_input``: the item the reply answers
        (its id and whatever else ``_load_query_inputs`` attached), e.g. to check a reply
        against its source.
        """
        return parse_pairs(text, finish_reason)

    def parse_for(self, query_input: dict[str, Any], text: str, finish_reason: str | None) -> ParseResult:
        """Call ``parse_response``, passing the query input when the override takes it."""
        takes = self.__dict__.get("_parse_takes_input")
        if takes is None:
            takes = len(inspect.signature(self.parse_response).parameters) >= 3
            self.__dict__["_parse_takes_input"] = takes
        if takes:
            return self.parse_response(text, finish_reason, query_input)
        return self.parse_response(text, finish_reason)

    # --- the rest ----------------------------------------------------------------
    def _call_prompt_hook(self, path: Any) -> Any:
        hook = self._load_prefix
        if len(inspect.signature(hook).parameters) == 0:
            return hook()
        return hook(path)

    def _as_prompt(self, prompt: Any) -> Prompt:
        if isinstance(prompt, Prompt):
            return prompt
        source = f"{type(self).__name__} prompt ({self.prompt_path})"
        check_prompt(prompt, source)
        return Prompt(prompt["system_message"], prompt["in_context"], source=source)

    def iter_query_inputs(self, source: str | None = None) -> Iterator[dict[str, Any]]:
        """The query inputs, checked one by one as they stream.

        With ``empty_is_error`` the first item is read now, so that an input giving none stops the
        run here, in one line, before a run folder is made or a request sent. Plugin code failing
        meanwhile fails on the first read instead, as it would have, for the reader to report.
        """
        source = source or type(self).__name__
        items = validate_items(self.query_inputs, source)
        if not self.empty_is_error:
            return items
        try:
            first = next(items, None)
        except SyphusError:
            raise
        except Exception as e:
            return _failing(e)
        if first is None:
            raise empty_input_error(source, self.query_inputs_path)
        return _prepend(first, items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self.iter_query_inputs():
            yield {"system_messages": self._prompt.system_message,
                   "in_context": self._prompt.in_context,
                   "query_input": item}

    def __len__(self) -> int:
        if isinstance(self.query_inputs, Sized):
            return len(self.query_inputs)
        raise TypeError(f"{type(self).__name__} streams its query inputs; their number is not known in advance")

    def count(self) -> int | None:
        """The number of query inputs, or None when they stream (override it to get an ETA for a stream)."""
        return len(self.query_inputs) if isinstance(self.query_inputs, Sized) else None


_FIX = "each item needs 'id' (a string) and 'sentences' (a string)"


def empty_input_error(source: str, path: Any) -> UserError:
    """The error for a plugin whose ``_load_query_inputs`` gave no items at all."""
    if path is None:
        return UserError(f"{source}: _load_query_inputs gave no query inputs, and query_inputs_path is None; "
                         "pass one to super().__init__ or use --query_inputs_path")
    return UserError(f"{source}: _load_query_inputs gave no query inputs from {path}; "
                     "check the path and the file's format")


def _prepend(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``first``, then ``rest``; closing this closes ``rest``."""
    yield first
    yield from rest


def _failing(error: Exception) -> Iterator[dict[str, Any]]:
    """A stream whose first read raises ``error``."""
    raise error
    yield  # unreachable: makes this a generator


def validate_items(items: Any, source: str) -> Iterator[dict[str, Any]]:
    """Yield ``items``, raising a UserError at the first malformed or repeated one (numbered from 1, as lines are)."""
    if items is None:
        raise UserError(f"{source}: _load_query_inputs returned None; return or yield items ({_FIX})")
    if isinstance(items, (str, bytes, dict)):
        raise UserError(f"{source}: _load_query_inputs returned a {type(items).__name__}; "
                        f"return a list or yield items ({_FIX})")
    seen = SeenIds()
    try:
        yield from _checked(items, source, seen)
    finally:
        seen.close()


def _checked(items: Any, source: str, seen: SeenIds) -> Iterator[dict[str, Any]]:
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
        if not seen.add(qid):
            raise UserError(f"{source}: item {n} repeats id {qid!r}; ids must be unique (make them so in _load_query_inputs)")
        yield item


# --- helpers for plugins: reading annotation files -----------------------------------------------

_KINDS = {dict: "a JSON object", list: "a JSON list"}


def _unreadable(path: Any, what: str, e: OSError | UnicodeDecodeError) -> UserError:
    reason = f"not UTF-8 text: {e.reason}" if isinstance(e, UnicodeDecodeError) else (e.strerror or str(e))
    return UserError(f"{path}: cannot read the {what} ({reason}); check query_inputs_path or pass -in")


def load_json(path: Any, what: str = "annotation file", expect: type | None = None) -> Any:
    """Read the whole JSON document at ``path``; any problem becomes a UserError naming the file.

    ``what`` names the file in messages; ``expect`` (``dict`` or ``list``), when given, is the type the
    top-level value must have. For use in ``_load_query_inputs``::

        from syphus.dataset import AbstractDataset, load_json

        def _load_query_inputs(self, path):
            videos = load_json(path, "captions file", expect=dict)  # {video id: [caption, ...]}
            for video_id, captions in videos.items():
                yield {"id": video_id, "sentences": "\\n".join(captions)}

    A missing file gives ``<path>: cannot read the captions file (No such file or directory); ...``,
    a syntax error ``<path>:<line>:<column>: the captions file is not valid JSON (<why>)``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise _unreadable(path, what, e) from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}:{e.colno}: the {what} is not valid JSON ({e.msg})") from None
    if expect is not None and not isinstance(value, expect):
        kind = _KINDS.get(expect, f"a {expect.__name__}")
        raise UserError(f"{path}: expected {kind} in the {what}, found {type(value).__name__}")
    return value


def iter_jsonl(path: Any, what: str = "annotation file") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line of the JSON-lines file at ``path``.

    Lines are read one at a time (the file never sits in memory whole) and numbered from 1, blank
    lines skipped; errors are UserErrors as in ``load_json``, a bad line named ``<path>:<line>:<column>``.
    Use the line number in your own messages about a record::

        from syphus.dataset import AbstractDataset, iter_jsonl
        from syphus.errors import UserError

        def _load_query_inputs(self, path):
            for n, row in iter_jsonl(path, "captions file"):
                if not isinstance(row, dict) or "video_id" not in row:
                    raise UserError(f"{path}: line {n} has no 'video_id'")
                yield {"id": row["video_id"], "sentences": "\\n".join(row["captions"])}
    """
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise _unreadable(path, what, e) from None
    with f:
        numbered = enumerate(f, 1)
        while True:
            try:
                n, line = next(numbered)
            except StopIteration:
                return
            except (OSError, UnicodeDecodeError) as e:
                raise _unreadable(path, what, e) from None
            if not line.strip():
                continue
            try:
                value = json.loads(line.rstrip("\n"))  # without the newline, so a column stays on its line
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{n}:{e.colno}: the {what} is not valid JSON ({e.msg})") from None
            yield n, value
