"""Reply: the shape a structured (JSON) reply must take, as a pydantic model.

In JSON mode (``--reply json``, or ``auto`` where the endpoint takes it) the server is told
to answer in a JSON schema, so a reply cannot drop an answer, add a preamble or stop
mid-pair. The schema comes from a *reply model*: a subclass of ``Reply`` whose one
required method, ``to_pairs``, turns a validated reply into the pairs a record holds
(the same ``pairs`` as the text parser gives, so export, translate and the viewer see no
difference). ``from_pairs``, optional, renders the prompt's in-context examples in the
same shape, so the examples and the schema agree.

The default model is ``pairs_model(low, high)``: ``{"pairs": [{"instruction": ..., "answer": ...}]}``
with as many items as the system message asks for (``syphus.signals.requested_count``:
"three questions", "four to six questions", "one request", "four to six turns"). A plugin
declares its own with the class attribute ``reply_model`` (SN's conversations), or per query
with ``reply_model_for`` (translate's languages).

>>> M = pairs_model(2)
>>> strict_schema(M)["properties"]["pairs"]["minItems"]
2
>>> r = parse_reply(M, '{"pairs": [{"instruction": "Q?", "answer": "A."}, {"instruction": "R?", "answer": "B."}]}')
>>> [p["instruction"] for p in r.pairs], r.problems
(['Q?', 'R?'], [])
>>> parse_reply(M, '{"pairs": [{"instruction": "Q?"}]}').reason
'the reply does not fit the schema: pairs.0.answer: field required'
"""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from syphus.errors import UserError
from syphus.parse import ParseResult

_LABEL = re.compile(r"^\s*(?:\*\*)?(?:question|instruction|answer|response|q|a)\s*\d{0,3}\s*[:：]\s*(?:\*\*)?\s*",
                    re.IGNORECASE)
_LABEL_START = frozenset("*QqIiAaRr")
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$")


class NotJSON(ValueError):
    """A reply in JSON mode that holds no JSON value at all (a server that ignored the schema)."""


class Reply(BaseModel):
    """The base of every reply model: extra keys are refused, as strict schemas refuse them."""

    model_config = ConfigDict(extra="forbid")

    # The model to validate with when a reply breaks only the count (minItems/maxItems): the
    # count is a request, the structure a contract, so such a reply keeps its pairs, with a problem.
    uncounted: ClassVar[type[Reply] | None] = None

    def to_pairs(self, query_input: dict[str, Any]) -> list[dict[str, Any]] | ParseResult:
        """The pairs this reply holds: ``{"instruction": str, "answer": str, ...}`` each (or a ParseResult)."""
        raise NotImplementedError(f"{type(self).__name__} must define to_pairs(self, query_input)")

    @classmethod
    def from_pairs(cls, pairs: list[dict[str, Any]]) -> Reply | None:
        """This model holding ``pairs`` (to show an in-context example as JSON); None keeps examples as text."""
        return None

    @classmethod
    def salvage(cls, data: Any, error: ValidationError) -> Reply | None:
        """What to keep of a reply that does not fit the schema (``data``, refused with ``error``); None: nothing.

        A server that enforces the schema never sends one; one that ignores it may. By default
        a reply that misses only the count (``uncounted``) is kept; anything else is invalid.
        """
        if cls.uncounted is not None and all(err["type"] in ("too_short", "too_long") for err in error.errors()):
            try:
                return cls.uncounted.model_validate(data)
            except ValidationError:
                return None
        return None


class Pair(BaseModel):
    """One instruction and its answer."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    answer: str


def unlabel(text: str) -> str:
    """``text`` without a leading ``Question:``/``Answer:`` label a model may carry over from the prompt.

    >>> unlabel("**Question:** Where is it?"), unlabel("A dog.")
    ('Where is it?', 'A dog.')
    """
    text = text.strip()
    if not text or text[0] not in _LABEL_START:  # most strings: no label, no regex
        return text
    return _LABEL.sub("", text, count=1).strip()


class Pairs(Reply):
    """The default reply: a list of instruction-answer pairs."""

    pairs: list[Pair]

    def to_pairs(self, query_input: dict[str, Any]) -> ParseResult:
        result = ParseResult()
        for i, pair in enumerate(self.pairs, 1):
            question, answer = unlabel(pair.instruction), unlabel(pair.answer)
            if not question or not answer:
                result.problems.append(f"pair {i}: an empty {'instruction' if not question else 'answer'} (dropped)")
                continue
            result.pairs.append({"instruction": question, "answer": answer})
        return result

    @classmethod
    def from_pairs(cls, pairs: list[dict[str, Any]]) -> Pairs:
        return cls(pairs=[Pair(instruction=p["instruction"], answer=p["answer"]) for p in pairs])


@functools.lru_cache(maxsize=64)
def pairs_model(low: int | None = None, high: int | None = None) -> type[Pairs]:
    """The default reply model, asking for ``low`` to ``high`` pairs (``high`` None: exactly ``low``;
    both None: any number, at least one)."""
    if low is None:
        return create_model("Pairs", __base__=Pairs, pairs=(Annotated[list[Pair], Field(min_length=1)], ...))
    high = low if high is None else high
    name = f"Pairs{low}" if low == high else f"Pairs{low}to{high}"
    model = create_model(name, __base__=Pairs,
                         pairs=(Annotated[list[Pair], Field(min_length=low, max_length=high)], ...))
    model.uncounted = Pairs
    return model


# --- the schema sent to the server ------------------------------------------------------------------

_DROP = {"title", "default", "description"}


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` in the form strict servers take.

    References are inlined, every object lists all its properties as required and refuses
    others (``additionalProperties: false``), titles and defaults are left out. A recursive
    model cannot be inlined: a UserError says so.
    """
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})

    def walk(node: Any, depth: int) -> Any:
        if depth > 40:
            raise UserError(f"reply model {model.__name__}: nested too deeply (or recursive); strict "
                            "schemas must be inlined, so give it a fixed depth")
        if isinstance(node, list):
            return [walk(v, depth + 1) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = defs.get(node["$ref"].rsplit("/", 1)[-1])
            if target is None:
                raise UserError(f"reply model {model.__name__}: unresolved reference {node['$ref']}")
            return walk(target, depth + 1)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROP:
                continue
            if key == "properties":
                out[key] = {name: walk(v, depth + 1) for name, v in value.items()}
            else:
                out[key] = walk(value, depth + 1)
        if out.get("type") == "object":
            out["additionalProperties"] = False
            if "properties" in out:
                out["required"] = list(out["properties"])
        return out

    return walk(raw, 0)


def schema_name(model: type[BaseModel]) -> str:
    """A name for the schema as OpenAI wants it: letters, digits, ``_`` and ``-``, at most 64."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", model.__name__)[:64] or "reply"


# --- a reply, validated --------------------------------------------------------------------------------

def load_json(text: str) -> Any:
    """The JSON value of a reply, tolerating a code fence around it; NotJSON, with the true reason, if there is none.

    Control characters inside strings are read (``strict=False``): a grammar-constrained model
    (llama.cpp) may write a raw newline in an answer, which is the answer all the same.

    >>> load_json('{"answer": "line one' + chr(10) + 'line two"}')  # a raw newline inside the string
    {'answer': 'line one\\nline two'}
    """
    try:
        return json.loads(text, strict=False)  # what a server that enforces the schema sends
    except ValueError:
        pass
    body = _FENCE.sub("", text.strip())
    try:
        return json.loads(body, strict=False)
    except ValueError as e:
        whole = first = e
        start, end = body.find("{"), body.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(body[start:end + 1], strict=False)
            except ValueError as inner:
                first = inner
    if "{" not in body:
        raise NotJSON("no JSON object in the reply")
    if isinstance(whole, json.JSONDecodeError) and whole.pos >= len(body.rstrip()):
        raise NotJSON(f"unfinished JSON: the reply ends before its JSON closes ({whole.msg})")
    at = f" at line {first.lineno} column {first.colno}" if isinstance(first, json.JSONDecodeError) else ""
    raise NotJSON(f"broken JSON: {getattr(first, 'msg', None) or first}{at}")


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc) or "the reply"


def _explain(e: ValidationError) -> str:
    parts = [f"{_where(err['loc'])}: {err['msg'].lower()}" for err in e.errors()[:3]]
    more = e.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def parse_reply(model: type[Reply], text: str | None, finish_reason: str | None = "stop",
                query_input: dict[str, Any] | None = None) -> ParseResult:
    """Validate a JSON-mode reply against ``model`` and turn it into pairs.

    A reply that breaks the schema keeps no pairs and says why (``reason``), unless the model's
    ``salvage`` keeps part of it (by default: a reply with another number of pairs than asked),
    with the problem recorded. NotJSON when
    the reply holds no JSON at all (the caller may parse it as text instead).
    """
    result = ParseResult()
    if not text or not text.strip():
        result.problems.append("empty response")
        return result
    data = load_json(text)
    try:
        reply = model.model_validate(data)
    except ValidationError as e:
        result.problems.append(f"the reply does not fit the schema: {_explain(e)}")
        kept = model.salvage(data, e)
        if kept is None:
            return result
        reply = kept
    out = reply.to_pairs(query_input or {})
    if isinstance(out, ParseResult):
        result.pairs, result.problems = out.pairs, result.problems + out.problems
        result.truncated = result.truncated or out.truncated
    else:
        result.pairs = list(out)
    for i, pair in enumerate(result.pairs):
        if not (isinstance(pair, dict) and isinstance(pair.get("instruction"), str)
                and isinstance(pair.get("answer"), str)):
            raise TypeError(f"{type(reply).__name__}.to_pairs gave {pair!r} as pair {i + 1}; each pair must be "
                            "a dict with string 'instruction' and 'answer'")
    if finish_reason == "length":
        result.truncated = True
    return result


def example_json(model: type[Reply], pairs: list[dict[str, Any]]) -> str | None:
    """An in-context example's pairs as the JSON a reply of ``model`` would be; None when it cannot say."""
    if not pairs:
        return None
    reply = None
    for candidate in (model, model.uncounted):  # an example may hold another number of pairs than asked
        if candidate is None:
            continue
        try:
            reply = candidate.from_pairs(pairs)
            break
        except (ValidationError, KeyError, TypeError, ValueError):
            continue
    if reply is None:
        return None
    return json.dumps(reply.model_dump(mode="json"), ensure_ascii=False)
