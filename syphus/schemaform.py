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

from syphus.registry import AUTO, Registry  # noqa: F401  (AUTO: not a form, "the endpoint kind's own")



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


FORMS: Registry[SchemaForm] = Registry("schema form", "use one of", (OpenAIForm(), VLLMForm(), LlamaCppForm()))
# the registry's lookups under the names callers use: schemaform.get(name), schemaform.names(), ...
register, names, unknown, get = FORMS.register, FORMS.names, FORMS.unknown, FORMS.find
