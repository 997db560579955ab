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

Plugins must be deterministic: the same files give the same items in the same order.
A run reads the inputs twice, once to check every item before the first request
(``syphus.inputs``: bad items, repeated ids, blank sentences, counted for the ETA) and
once to send them; a plugin that yields its items is simply called again for the
second read, and one that returns a list is read once. ``--random_sample`` and
``--on_duplicate suffix`` rely on the order, and a resumed run on the ids.

Everything else has a default that a plugin may override:
``_load_prompt(path)`` (or ``_load_prefix``) returns
``{"system_message": str, "in_context": [...]}``; ``build_messages(query_input)``
returns the chat messages for one query; ``parse_response(text, finish_reason)``
turns the reply into pairs; ``merge_items(items)`` makes one query of the items that
share an id (``--on_duplicate merge``).

Structured replies (``--reply json``, and ``auto`` where the endpoint takes a schema): the
class attribute ``reply_model`` (a ``syphus.reply.Reply`` subclass) is the shape the server
must answer in, by default ``pairs_model(n)`` with the number of pairs the system message
asks for; ``reply_model_for(query_input)`` may choose one per query. The prompt's in-context
examples are then shown as that JSON (parsed with ``parse_response``, rendered with the
model's ``from_pairs``), so examples and schema agree; ``parse_response`` stays the
parser of text replies.
"""

from __future__ import annotations

import abc
import inspect
import json
import re
from collections.abc import Iterator, Sized
from contextvars import ContextVar
from typing import Any

from syphus.errors import SyphusError, UserError
from syphus.parse import ParseResult, parse_pairs
from syphus.prompt import Prompt, check_prompt, load_prompt, render_content
from syphus.reply import NotJSON, Reply, example_json, pairs_model, parse_reply
from syphus.signals import requested_count
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
    # The shape of a structured (JSON) reply; None: pairs_model(the count the system message asks for)
    reply_model: type[Reply] | None = None
    # What build_messages builds for: "text", or "json" (examples shown as the reply model's JSON).
    reply_format: str = "text"
    # Video scenes: seconds per frame number in image ids (frames at 1 a second: 1.0); attach_images
    # labels each frame sent with the second it shows. None: no labels.
    frame_seconds: float | None = None

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
        """The chat messages sent for one query input (for ``self.reply_format``)."""
        return self.prompt_for(query_input).messages(query_input["sentences"])

    def reply_model_for(self, query_input: dict[str, Any]) -> type[Reply]:
        """The reply model of one query: ``reply_model``, else pairs as many as the system message asks for."""
        if self.reply_model is not None:
            return self.reply_model
        model = self.__dict__.get("_default_reply_model")
        if model is None:
            count = self.requested_pairs() or (None, None)
            model = self.__dict__["_default_reply_model"] = pairs_model(*count)
        return model

    def requested_pairs(self) -> tuple[int, int] | None:
        """How many pairs the system message asks for, (fewest, most); None when it does not say in words
        the default reply model reads ("three questions", "four to six turns", "one request")."""
        return requested_count(self._prompt.system_message)

    def parse_response(self, text: str, finish_reason: str | None) -> ParseResult:
        """Turn one reply into instruction-response pairs.

        An override may take a third parameter, ``query_input``: the item the reply answers
        (its id and whatever else ``_load_query_inputs`` attached), e.g. to check a reply
        against its source.
        """
        return parse_pairs(text, finish_reason)

    def attach_images(self, query_input: dict[str, Any], messages: list[dict[str, Any]],
                      frames: list[Any]) -> list[dict[str, Any]]:
        """``messages`` with the query's images (``--images``) in them; by default the last user message
        becomes its text followed by each image, labelled ``Frame at 12 s:`` when ``frame_seconds`` is set
        (the time from the frame's ``seconds``, what convert recorded, else its number times ``frame_seconds``).

        ``frames`` are ``syphus.engine.attachment.Frame``: ``image_id``, ``part`` (the ``image_url``
        part to send), ``position`` among all the query's frames and ``total``. Override it to label
        or place them otherwise (SD labels its two images "first" and "second").
        """
        last = messages[-1]
        text = last["content"] if isinstance(last["content"], str) else ""
        parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for frame in frames:
            recorded = getattr(frame, "seconds", None)
            second = (recorded if recorded is not None and self.frame_seconds is not None
                      else frame_second(frame.image_id, self.frame_seconds))
            if second is not None:
                parts.append({"type": "text", "text": f"Frame at {second:g} s:"})
            parts.append(frame.part)
        return messages[:-1] + [{**last, "content": parts}]

    def merge_items(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """One query input from all the items that share an id, in stream order (``--on_duplicate merge``).

        The default joins their sentences with newlines and keeps the first item's other keys;
        override it to merge otherwise (e.g. to number the captions). ``items`` holds at least two
        items, and the result keeps their id.
        """
        merged = dict(items[0])
        merged["sentences"] = "\n".join(item["sentences"] for item in items)
        return merged

    def messages_for(self, query_input: dict[str, Any], reply_format: str = "text") -> list[dict[str, Any]]:
        """``build_messages`` for a reply in ``reply_format`` ("text" or "json")."""
        self.reply_format = reply_format
        return self.build_messages(query_input)

    def prompt_for(self, query_input: dict[str, Any]) -> Prompt:
        """The prompt of one query: as written, or (``reply_format == "json"``) with its examples as JSON."""
        if self.reply_format != "json":
            return self._prompt
        model = self.reply_model_for(query_input)
        cache = self.__dict__.setdefault("_json_prompts", {})
        prompt = cache.get(model)
        if prompt is None:
            prompt = cache[model] = self._json_prompt(model)
        return prompt

    def _json_prompt(self, model: type[Reply]) -> Prompt:
        """The prompt with each assistant example parsed by ``parse_response`` and shown as ``model``'s JSON."""
        examples = []
        for message in self._prompt.in_context:
            content = message["content"]
            if message["role"] == "assistant":
                text = render_content(content)
                try:
                    pairs = self.parse_for({"id": "example"}, text, "stop").pairs
                except Exception:
                    pairs = []
                content = example_json(model, pairs) or text
            examples.append({"role": message["role"], "content": content})
        # The system message goes as written: the schema, enforced by the server, says the format.
        return Prompt(self._prompt.system_message, examples, source=self._prompt.source)

    def parse_reply(self, query_input: dict[str, Any], text: str, finish_reason: str | None,
                    reply_format: str = "text") -> ParseResult:
        """Pairs from a reply in either format: JSON validated against the reply model, text by ``parse_response``.

        A JSON-mode reply with no JSON in it at all (a server that ignored the schema) is parsed
        as text, with a problem saying so.
        """
        if reply_format == "json":
            try:
                return parse_reply(self.reply_model_for(query_input), text, finish_reason, query_input)
            except NotJSON as e:
                result = self.parse_for(query_input, text, finish_reason)
                why = "cut off at max_tokens before its JSON was complete" if finish_reason == "length" else \
                    f"not JSON ({e})"
                result.problems.insert(0, f"JSON was asked for but the reply is {why}; parsed as text")
                result.truncated = result.truncated or finish_reason == "length"
                return result
        return self.parse_for(query_input, text, finish_reason)

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

    def open_query_inputs(self) -> Any:
        """What ``_load_query_inputs`` gives, fresh for one pass over the inputs.

        A list (or any collection) is read again as it is; a one-shot stream (a generator) is
        handed out once as built, and after that ``_load_query_inputs`` is called again, so the
        check before a run and the run itself each read every item (plugins are deterministic).
        """
        items = self.query_inputs
        if isinstance(items, Iterator):
            if items is self.__dict__.get("_handed_out"):
                items = self.query_inputs = self._load_query_inputs(self.query_inputs_path)
            self.__dict__["_handed_out"] = items
        return items

    def iter_query_inputs(self, source: str | None = None, unique: bool = True) -> Iterator[dict[str, Any]]:
        """The query inputs, checked one by one as they stream (ids repeated too, when ``unique``).

        Each call reads them afresh (``open_query_inputs``). With ``empty_is_error`` the first item
        is read now, so that an input giving none stops the run here, in one line, before a run
        folder is made or a request sent. Plugin code failing meanwhile fails on the first read
        instead, as it would have, for the reader to report.
        """
        source = source or type(self).__name__
        items = validate_items(self.open_query_inputs(), source, unique)
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
        """The number of query inputs when they are a list, else None (a run's check counts a stream)."""
        return len(self.query_inputs) if isinstance(self.query_inputs, Sized) else None


_FIX = "each item needs 'id' (a string) and 'sentences' (a string)"
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_second(image_id: str, frame_seconds: float | None) -> float | None:
    """The second a frame shows: the number its id ends with times ``frame_seconds`` (None without either).

    >>> frame_second("DC_IMG_v_x_0012", 1.0), frame_second("LA_IMG_000000000139", None)
    (12.0, None)
    """
    if frame_seconds is None:
        return None
    m = _TRAILING_NUMBER.search(image_id)
    return int(m.group(1)) * frame_seconds if m else None


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


# --- helpers for plugins: reading annotation files -----------------------------------------------

_KINDS = {dict: "a JSON object", list: "a JSON list"}


class NotUTF8(UserError):
    """An annotation file that is not UTF-8 text, with where: ``path`` and, when known, ``line`` (from 1).

    ``iter_jsonl`` raises it naming the line; the check before a run counts it as a non-UTF-8 input.
    """

    def __init__(self, message: str, path: Any = None, line: int | None = None):
        super().__init__(message)
        self.path, self.line = path, line


def _unreadable(path: Any, what: str, e: OSError | UnicodeDecodeError,
                at: tuple[int, int] | None = None) -> UserError:
    """The UserError for a file that cannot be read; ``at`` is (line, byte in the line) of a decoding error."""
    if isinstance(e, UnicodeDecodeError):
        where = f"{path}:{at[0]}" if at else f"{path}"
        byte = f" at byte {at[1]} of the line" if at else ""
        return NotUTF8(f"{where}: cannot read the {what} (not UTF-8 text: {e.reason}{byte}); save it as UTF-8, "
                       "or check query_inputs_path or pass -in", path, at[0] if at else None)
    return UserError(f"{path}: cannot read the {what} ({e.strerror or str(e)}); check query_inputs_path or pass -in")


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
    except OSError as e:
        raise _unreadable(path, what, e) from None
    except UnicodeDecodeError as e:
        raise _unreadable(path, what, e, first_undecodable_line(path)) from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}:{e.colno}: the {what} is not valid JSON ({e.msg})") from None
    if expect is not None and not isinstance(value, expect):
        kind = _KINDS.get(expect, f"a {expect.__name__}")
        raise UserError(f"{path}: expected {kind} in the {what}, found {type(value).__name__}")
    return value


def iter_jsonl(path: Any, what: str = "annotation file") -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line of the JSON-lines file at ``path``.

    Lines are read one at a time (the file never sits in memory whole) and numbered from 1, blank
    lines skipped; errors are UserErrors as in ``load_json``, a bad line named ``<path>:<line>:<column>``
    (a line that is not UTF-8 too: ``NotUTF8``, with ``path`` and ``line``).
    Use the line number in your own messages about a record::

        from syphus.dataset import AbstractDataset, iter_jsonl
        from syphus.errors import UserError

        def _load_query_inputs(self, path):
            for n, row in iter_jsonl(path, "captions file"):
                if not isinstance(row, dict) or "video_id" not in row:
                    raise UserError(f"{path}: line {n} has no 'video_id'")
                yield {"id": row["video_id"], "sentences": "\\n".join(row["captions"])}
    """
    for n, line in _utf8_lines(path, what):
        if not line.strip():
            continue
        try:
            value = json.loads(line.rstrip("\r\n"))  # without the newline, so a column stays on its line
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}:{e.colno}: the {what} is not valid JSON ({e.msg})") from None
        yield n, value


def _utf8_lines(path: Any, what: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of the file at ``path``, each decoded alone so a bad one is named."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise _unreadable(path, what, e) from None
    with f:
        numbered = enumerate(f, 1)
        while True:
            try:
                n, raw = next(numbered)
            except StopIteration:
                return
            except OSError as e:
                raise _unreadable(path, what, e) from None
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _unreadable(path, what, e, (n, e.start + 1)) from None


def first_undecodable_line(path: Any) -> tuple[int, int] | None:
    """``(line, byte)`` (both from 1) of the first line of the file at ``path`` that is not UTF-8, or None.

    Used to say where a plugin's bare ``UnicodeDecodeError`` came from when ``path`` is a file.
    """
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return n, e.start + 1
    except (OSError, TypeError, ValueError):
        return None
    return None
