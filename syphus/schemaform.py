"""Schema forms: how a request asks a server for a reply in a JSON schema, one small class each.

A form turns a schema (already strict: every property required, no extras) and its name into the
request-body fields a server family documents (``fields``, the one method a form must write). It
says too whether the server builds a grammar from the schema (``grammar``): a grammar takes
``minLength``, so every string is made non-empty there, which OpenAI's strict mode does not list.
The config's accepted ``reply.form`` values, the CLI's ``--schema_form`` choices and the unknown-form
error all come from ``FORMS``; a new form is one subclass and a ``register`` call.

>>> names()
('auto', 'openai', 'vllm', 'llamacpp')
>>> sorted(get("vllm").fields("pairs", {"type": "object"}))
['structured_outputs']
"""

from __future__ import annotations

from typing import Any

from syphus.errors import UserError

AUTO = "auto"  # not a form: "the endpoint kind's own" (EndpointKind.form)


class SchemaForm:
    """One way of sending a reply schema. Subclasses set ``name`` (and ``grammar`` when the server turns
    the schema into a grammar) and write ``fields``."""

    name: str = ""
    grammar: bool = False

    def fields(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        """The request-body fields that ask for a reply in ``schema`` (called ``name``)."""
        raise NotImplementedError


class OpenAIForm(SchemaForm):
    """OpenAI's structured outputs (also Azure OpenAI, vLLM and llama.cpp's server):
    ``response_format: {"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``."""

    name = "openai"

    def fields(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": name, "schema": schema, "strict": True}}}


class VLLMForm(SchemaForm):
    """vLLM's own field: ``structured_outputs: {"json": schema}``."""

    name = "vllm"
    grammar = True

    def fields(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"structured_outputs": {"json": schema}}


class LlamaCppForm(SchemaForm):
    """llama.cpp's server and llama-cpp-python (the bundled model's form):
    ``response_format: {"type": "json_object", "schema": schema}``."""

    name = "llamacpp"
    grammar = True

    def fields(self, name: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"response_format": {"type": "json_object", "schema": schema}}


FORMS: dict[str, SchemaForm] = {f.name: f for f in (OpenAIForm(), VLLMForm(), LlamaCppForm())}


def register(form: SchemaForm) -> SchemaForm:
    """Add ``form`` to the registry (its name must be new and not ``auto``); returns it."""
    if not form.name or form.name == AUTO or form.name in FORMS:
        raise ValueError(f"schema form name {form.name!r} is empty, reserved or taken")
    FORMS[form.name] = form
    return form


def names(auto: bool = True) -> tuple[str, ...]:
    """The forms a config or ``--schema_form`` may name, ``auto`` first unless ``auto=False``."""
    return ((AUTO,) if auto else ()) + tuple(FORMS)


def unknown(name: str, auto: bool = True) -> str:
    """The message for a form no class registers."""
    return f"unknown schema form {name!r}; use one of {', '.join(names(auto))}"


def get(name: str) -> SchemaForm:
    """The form called ``name``; a UserError listing the known ones otherwise."""
    try:
        return FORMS[name]
    except KeyError:
        raise UserError(unknown(name, auto=False)) from None
