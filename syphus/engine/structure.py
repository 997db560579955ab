"""Structure: whether a run's requests carry the reply schema, and in which form.

Each endpoint kind takes a JSON schema in its own documented form: ``openai`` (OpenAI, Azure
OpenAI and most compatible servers), ``vllm`` (vLLM's own field) and ``llamacpp`` (llama.cpp's
server and llama-cpp-python, the bundled model's form), one class each in ``syphus.schemaform``;
``schema_fields`` asks the form for the request's fields.

``Structure`` decides once per endpoint, from its first answers. In ``text`` mode nothing is
sent. In ``json`` and ``auto`` mode requests carry the schema until an answer says whether
the endpoint takes it: the first reply to a JSON request settles JSON for that endpoint; a
400 or 422 before that (the endpoint refuses the schema) makes ``auto`` send that query
again as text (to the same endpoint when it can take it) and use text on that endpoint for
the rest of the run, said once in the log and kept in ``meta.json``, while ``json`` stops
the run with the fix (nothing settled, nothing paid: a refused request is not billed).
Requests already on the wire when the first refusal comes are each sent again as text the
same way. After JSON is settled a 400 is that query's own error.

A pool has one ``Structure`` per endpoint (``Structures``), each with the schema form of its
kind: one endpoint refusing the schema never turns another's replies to text, and never
settles a query as an error for its schema.

>>> s = Structure("auto", "openai")
>>> s.current(), s.describe()["used"]
('json', None)
>>> s.refused("HTTP 400: response_format is not supported"); s.current(), s.describe()["fallback"]
('text', 'HTTP 400: response_format is not supported')
>>> pool = Structures("auto", {"a": "openai", "b": "llamacpp"})
>>> pool["b"].refused("HTTP 400"); pool["a"].confirm(); pool.describe()["used"], pool.describe()["endpoints"]["b"]["used"]
('mixed', 'text')
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from syphus import kinds, schemaform
from syphus.errors import FatalError
from syphus.reply import Reply, schema_name, strict_schema

log = logging.getLogger("syphus")

def choose_form(kind: str, form: str = "auto") -> str:
    """The schema form for an endpoint kind: the configured one, else the kind's own (llama.cpp's for ``local``,
    OpenAI's for the others)."""
    if form != schemaform.AUTO:
        return form
    return kinds.get(kind).form


def schema_fields(form: str, model: type[Reply]) -> dict[str, Any]:
    """The request-body fields that ask for a reply in ``model``'s schema, in ``form`` (``syphus.schemaform``).

    >>> sorted(schema_fields("openai", __import__("syphus.reply").reply.pairs_model(3))["response_format"])
    ['json_schema', 'type']
    """
    how = schemaform.get(form)
    schema = strict_schema(model)
    return how.fields(schema_name(model), nonempty_strings(schema) if how.grammar else schema)


def nonempty_strings(schema: Any) -> Any:
    """``schema`` with ``minLength: 1`` on every string that sets no length: a grammar built from it cannot
    write an empty instruction or answer.

    >>> nonempty_strings({"type": "object", "properties": {"a": {"type": "string"}}})["properties"]["a"]
    {'type': 'string', 'minLength': 1}
    """
    if isinstance(schema, list):
        return [nonempty_strings(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k in ("enum", "const", "required") else nonempty_strings(v)) for k, v in schema.items()}
    if out.get("type") == "string" and "minLength" not in out and "enum" not in out and "const" not in out:
        out["minLength"] = 1
    return out


def field_tokens(fields: Mapping[str, Any]) -> int:
    """What the schema adds to a prompt, estimated like message text (about 4 characters a token)."""
    if not fields:
        return 0
    return math.ceil(len(json.dumps(fields, separators=(",", ":"))) / 4)


class Request(NamedTuple):
    """One query's request: its messages, the body fields beyond them (the schema), and the schema's tokens."""

    messages: list[dict[str, Any]]
    fields: dict[str, Any]
    schema_tokens: int


class Structure:
    """The run's reply format: ``mode`` asked for (auto, json, text), ``form`` of the schema, and what was found."""

    def __init__(self, mode: str = "auto", form: str = "openai", endpoint: str | None = None):
        schemaform.get(form)  # a UserError naming the known forms
        self.mode = mode
        self.form = form
        self.endpoint = endpoint  # named in what the log says (a pool's member); None for a run's one endpoint
        self.state = "text" if mode == "text" else "unknown"  # "json" once a JSON request was answered
        self.fallback: str | None = None
        self._fields: dict[type, tuple[dict[str, Any], int]] = {}

    def current(self) -> str:
        """The format of the next request: "json" unless text was asked for or the endpoint refused the schema."""
        return "text" if self.state == "text" else "json"

    def undecided(self, fmt: str) -> bool:
        """Whether a 400 to a request in ``fmt`` may be the endpoint refusing the schema (JSON not yet answered)."""
        return fmt == "json" and self.state != "json"

    # --- requests --------------------------------------------------------------------
    def request(self, dataset: Any, item: dict[str, Any], fmt: str) -> Request:
        """The request for ``item`` in ``fmt`` ("json" or "text"), built by the dataset's hooks."""
        messages = dataset.messages_for(item, fmt)
        if fmt != "json":
            return Request(messages, {}, 0)
        model = dataset.reply_model_for(item)
        cached = self._fields.get(model)
        if cached is None:
            fields = schema_fields(self.form, model)
            cached = self._fields[model] = (fields, field_tokens(fields))
        return Request(messages, *cached)

    # --- what the answers said -------------------------------------------------------
    def confirm(self) -> None:
        """A JSON request was answered: JSON for the run."""
        if self.state == "unknown":
            self.state = "json"
            log.debug("%sreplies are JSON (the schema in %s form)", self._who(": "), self.form)

    def refused(self, why: str) -> None:
        """The endpoint refused the schema and took the same query as text: text for the run, or stop.

        In ``json`` mode this raises a FatalError naming the fix (nothing is settled).
        """
        if self.mode == "json":
            raise FatalError(f"{self._who(' ') or 'the endpoint '}refused the reply schema ({why}). Run with --reply text (or --reply "
                             "auto, which falls back to text by itself), or try --schema_form vllm or llamacpp "
                             "if the server is vLLM or llama.cpp; then run the same command again")
        if self.state == "unknown":
            self.state = "text"
            self.fallback = why
            log.warning("%srefused the reply schema (%s); %seplies are text for this run, parsed after the "
                        "fact (--reply text says so up front)", self._who(" ") or "the endpoint ", why,
                        "its r" if self.endpoint else "r")

    def _who(self, then: str) -> str:
        return f"endpoint {self.endpoint}{then}" if self.endpoint else ""

    def describe(self) -> dict[str, Any]:
        """For meta.json: what was asked, what is used (None while undecided), the form, and why it fell back."""
        return {"requested": self.mode, "used": None if self.state == "unknown" else self.state,
                "form": self.form, "fallback": self.fallback}


class Structures:
    """Each endpoint's ``Structure`` (by name), for a run over a pool; one endpoint is a pool of one.

    ``describe`` is the one endpoint's own description, or for several the run's (``used`` is
    ``mixed`` when they differ) with each endpoint's decision under ``endpoints``.
    """

    def __init__(self, mode: str, forms: Mapping[str, str]):
        self.mode = mode
        many = len(forms) > 1
        self.by_name = {name: Structure(mode, form, name if many else None) for name, form in forms.items()}

    def __getitem__(self, name: str) -> Structure:
        return self.by_name[name]

    def current(self) -> str:
        """The format a new query is built in first: JSON while any endpoint may take it."""
        return "json" if any(s.current() == "json" for s in self.by_name.values()) else "text"

    def describe(self) -> dict[str, Any]:
        each = {name: s.describe() for name, s in self.by_name.items()}
        if len(each) == 1:
            return next(iter(each.values()))
        used = {d["used"] for d in each.values() if d["used"] is not None}  # what the endpoints decided so far
        return {"requested": self.mode, "used": (used.pop() if len(used) == 1 else "mixed") if used else None,
                "form": None, "fallback": None, "endpoints": each}
