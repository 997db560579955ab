"""The id space of a translation run: one key per English pair (its id and a digest of its text), one
per (pair, language); see ``syphus.workflows.translate``."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def text_key(ins_id: str, instruction: str, answer: str) -> str:
    """The key of one English pair: its instruction id and a digest of its text.

    >>> text_key("DC_INS_00001", "What?", "A dog.")
    'DC_INS_00001~262456f19a8c'
    """
    digest = hashlib.sha256(json.dumps([instruction, answer], ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"{ins_id}~{digest[:12]}"


def plain_id(key: str) -> str:
    """The instruction id of a pair's key (``text_key``)."""
    return key.rsplit("~", 1)[0]


def lang_key(ins_id: str, lang: str) -> str:
    """The key of one (instruction, language): also the id of the query that asks for it alone."""
    return f"{ins_id}@{lang}"


def ins_id_of(rec: dict[str, Any]) -> str:
    """The instruction a run record is about (error records carry no meta: read it off the id)."""
    meta = rec.get("meta") or {}
    return str(meta.get("ins_id") or str(rec["id"]).rsplit("@", 1)[0])
