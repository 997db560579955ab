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
import re
from collections.abc import Iterator, Sized
from contextvars import ContextVar
from typing import Any

from syphus.errors import SyphusError, UserError
from syphus.items import check_container, empty_input_error, validate_items  # noqa: F401  (imported from here too)
from syphus.jsonfile import NotUTF8, first_undecodable_line, iter_jsonl, load_json  # noqa: F401  (for plugins)
from syphus.parse import ParseResult, parse_pairs
from syphus.prompt import Prompt, check_prompt, load_prompt, render_content
from syphus.reply import NotJSON, Reply, example_json, pairs_model, parse_reply
from syphus.signals import requested_count

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


def _prepend(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``first``, then ``rest``; closing this closes ``rest``."""
    yield first
    yield from rest


def _failing(error: Exception) -> Iterator[dict[str, Any]]:
    """A stream whose first read raises ``error``."""
    raise error
    yield  # unreachable: makes this a generator
