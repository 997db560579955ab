"""Prompts: a system message plus in-context examples, turned into chat messages.

A prompt file is JSON (or YAML, or a Python module exposing ``system_message``
and ``in_context``)::

    {"system_message": "...",
     "in_context": [{"role": "user", "content": "<annotation>"},
                    {"role": "assistant", "content": [{"Question": "q", "Answer": "a"}]}]}

>>> p = Prompt("Be brief.", [{"role": "user", "content": "x"},
...                          {"role": "assistant", "content": [{"Question": "q", "Answer": "a"}]}])
>>> p.messages("a dog")[2]["content"]
'Question: q\\nAnswer: a\\n'
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from syphus.errors import UserError
from syphus.textfile import read_text

_ROLES = ("user", "assistant")


def render_content(content: Any) -> str:
    """A message content as text: lists of dicts become ``"key: value\\n"`` lines."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        for key, value in block.items():
            parts.append(f"{key}: {value}\n")
    return "".join(parts)


@dataclass
class Prompt:
    """A validated system message and in-context examples, rendered once."""

    system_message: str
    in_context: list[dict[str, Any]]
    source: str = "<prompt>"
    _prefix: list[dict[str, str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_prompt({"system_message": self.system_message, "in_context": self.in_context}, self.source)
        self._prefix = [{"role": "system", "content": self.system_message}] + [
            {"role": m["role"], "content": render_content(m["content"])} for m in self.in_context
        ]

    def messages(self, sentences: str) -> list[dict[str, str]]:
        """The chat messages for one query: system, examples, then the query."""
        return self._prefix + [{"role": "user", "content": sentences}]

    def as_dict(self) -> dict[str, Any]:
        return {"system_message": self.system_message, "in_context": self.in_context}


def check_prompt(data: Any, source: str) -> None:
    """Raise a UserError naming ``source`` and the example index if ``data`` is not a prompt."""
    fix = 'a prompt is {"system_message": str, "in_context": [{"role": "user"|"assistant", "content": ...}]}'
    if not isinstance(data, dict):
        raise UserError(f"{source}: prompt must be a mapping, got {type(data).__name__}; {fix}")
    missing = [k for k in ("system_message", "in_context") if k not in data]
    if missing:
        raise UserError(f"{source}: prompt has no {', '.join(repr(m) for m in missing)}; {fix}")
    if not isinstance(data["system_message"], str):
        raise UserError(f"{source}: 'system_message' must be a string; {fix}")
    examples = data["in_context"]
    if not isinstance(examples, list):
        raise UserError(f"{source}: 'in_context' must be a list of messages; {fix}")
    for i, msg in enumerate(examples):
        where = f"{source}: in_context[{i}]"
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise UserError(f"{where} must be a mapping with 'role' and 'content'")
        expected = _ROLES[i % 2]
        if msg["role"] not in _ROLES:
            raise UserError(f"{where} has role {msg['role']!r}; only 'user' and 'assistant' are allowed "
                            "(the system message goes in 'system_message')")
        if msg["role"] != expected:
            raise UserError(f"{where} has role {msg['role']!r} but roles must alternate user, assistant, ... "
                            f"so this one should be {expected!r}")
        content = msg["content"]
        if isinstance(content, str):
            continue
        if msg["role"] == "assistant" and isinstance(content, list) and all(isinstance(b, dict) for b in content):
            continue
        raise UserError(f"{where}: content must be a string"
                        + (" or a list of {key: value} mappings" if msg["role"] == "assistant" else ""))
    if examples and examples[-1]["role"] != "assistant":
        raise UserError(f"{source}: in_context ends with a user message; each example needs its assistant answer")


def _load_module(path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(f"_syphus_prompt_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise UserError(f"{path}: prompt module failed to import: {type(e).__name__}: {e}") from e
    return {k: getattr(module, k) for k in ("system_message", "in_context") if hasattr(module, k)}


def read_prompt_file(path: str | Path) -> dict[str, Any]:
    """Read a prompt file as a dict; errors name the file and the line and column."""
    p = Path(path)
    if p.suffix == ".py":
        if not p.is_file():
            raise UserError(f"{p}: prompt module not found; check prompt_path (relative paths are from {Path.cwd()})")
        return _load_module(p)
    try:
        text = read_text(p, "prompt file")
    except FileNotFoundError:
        raise UserError(f"{p}: prompt file not found; check prompt_path "
                        f"(relative paths are from {Path.cwd()})") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read prompt file ({e.strerror})") from e
    if p.suffix in (".yaml", ".yml"):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
            raise UserError(f"{where}: not valid YAML ({getattr(e, 'problem', e)})") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{p}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}); "
                        "look for a trailing comma or an unescaped quote there") from e


def load_prompt(path: str | Path) -> Prompt:
    """Load and validate a prompt file."""
    data = read_prompt_file(path)
    check_prompt(data, str(path))
    return Prompt(data["system_message"], data["in_context"], source=str(path))
