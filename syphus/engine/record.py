"""Record: the JSON line a settled query leaves in the run folder, built and encoded in one place.

An answered query becomes an *answer record* (pairs.jsonl when it has pairs,
invalid.jsonl otherwise, with the reason); a query that failed for good becomes
an *error record* (errors.jsonl). Both carry ``attempts`` (requests actually
sent) and, when the server did not report usage for a request that may have been
billed, ``estimated_usage``: the worst case charged for it, so ``--max-cost``
and the spend survive a restart.

Encoding is strict: every value must be JSON (no sets, no NaN) and every string
UTF-8, or ``encode`` raises an ItemError (kind ``unencodable``) naming the field,
so a plugin's bad value becomes an error record, not a dead worker.
``encode_loose`` never fails (ASCII escapes, ``repr`` for the rest): error
records use it, so the raw reply is always kept.

>>> rec = error_record("q1", "timeout", "no reply", None, attempts=2, raw=None)
>>> rec["id"], rec["attempts"], "raw" in rec
('q1', 2, False)
>>> encode({"id": "q", "meta": {"x": {1, 2}}})
Traceback (most recent call last):
...
syphus.errors.ItemError: the record of 'q' is not JSON: meta.x is a set; every value a plugin attaches must be a string, number, bool, None, list or dict
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

from syphus.errors import ItemError


def now_iso() -> str:
    """The current UTC time as records carry it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def usage_tokens(usage: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of a ``usage`` mapping, 0 for anything missing or not a number."""
    if not isinstance(usage, Mapping):
        return 0, 0
    out = []
    for key in ("prompt_tokens", "completion_tokens"):
        try:
            out.append(max(0, int(usage.get(key) or 0)))
        except (TypeError, ValueError, OverflowError):
            out.append(0)
    return out[0], out[1]


class Tally(NamedTuple):
    """What one record counts for: its pairs, truncation, reported tokens and tokens charged at a guess."""

    pairs: int
    truncated: int
    prompt_tokens: int
    completion_tokens: int
    estimated_prompt_tokens: int
    estimated_completion_tokens: int


def tally(record: Mapping[str, Any]) -> Tally:
    """The one reading of a record's countable facts (every counter of records uses it).

    >>> tally({"id": "a", "pairs": [{}, {}], "truncated": True, "usage": {"prompt_tokens": "7"},
    ...        "estimated_usage": {"completion_tokens": 40}})
    Tally(pairs=2, truncated=1, prompt_tokens=7, completion_tokens=0, estimated_prompt_tokens=0, estimated_completion_tokens=40)
    """
    prompt, completion = usage_tokens(record.get("usage"))
    est_prompt, est_completion = usage_tokens(record.get("estimated_usage"))
    pairs = record.get("pairs")
    return Tally(len(pairs) if isinstance(pairs, list) else 0, int(bool(record.get("truncated"))), prompt,
                 completion, est_prompt, est_completion)


def error_record(qid: str, kind: str, message: str, status: int | None, attempts: int, raw: str | None = None,
                 estimated: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The errors.jsonl record of a query that failed for good (``raw``: the reply, when one arrived)."""
    rec: dict[str, Any] = {"id": qid, "kind": kind, "message": message, "status": status, "attempts": attempts,
                           "at": now_iso()}
    if raw is not None:
        rec["raw"] = raw
    if estimated:
        rec["estimated_usage"] = dict(estimated)
    return rec


def answer_record(dataset: Any, item: dict[str, Any], text: str | None, finish_reason: str | None,
                  usage: dict[str, Any], model: str | None, attempts: int,
                  estimated: Mapping[str, int] | None = None,
                  reply_format: str = "text") -> tuple[dict[str, Any], bool]:
    """The record of one answered query, parsed by its dataset, and whether it has pairs.

    The raw text is always kept; a parser that raises leaves the record invalid with the
    reason, to be fixed and re-parsed with ``--reparse`` without paying again. A reply asked
    for as JSON says so (``"reply_format": "json"``), so a re-parse reads it the same way.
    """
    fields = parse_fields(dataset, item, text, finish_reason, reply_format)
    record: dict[str, Any] = {
        "id": item["id"], "pairs": fields["pairs"], "raw": text, "finish_reason": finish_reason,
        "truncated": fields["truncated"], "problems": fields["problems"], "model": model, "usage": usage,
        "attempts": attempts, "at": now_iso()}
    if "reason" in fields:
        record["reason"] = fields["reason"]
    if reply_format != "text":
        record["reply_format"] = reply_format
    if estimated:
        record["estimated_usage"] = dict(estimated)
    extras = {k: v for k, v in item.items() if k not in ("id", "sentences")}
    if extras:  # what the plugin attached to the query (image_ids, ...), kept for export
        record["meta"] = extras
    return record, bool(record["pairs"])


def parse_fields(dataset: Any, item: dict[str, Any], text: str | None, finish_reason: str | None,
                 reply_format: str = "text") -> dict[str, Any]:
    """``pairs``, ``problems``, ``truncated`` and (when there are no pairs) ``reason`` of one reply."""
    try:
        result = dataset.parse_reply(item, text or "", finish_reason, reply_format)
        pairs, dropped = checked_pairs(result.pairs)
        fields = {"pairs": pairs, "problems": list(result.problems) + dropped, "truncated": result.truncated}
        reason = result.reason or ("; ".join(dropped) if dropped and not pairs else None)
    except Exception as e:
        fields = {"pairs": [], "problems": [], "truncated": finish_reason == "length"}
        where = "the reply model's to_pairs" if reply_format == "json" else "parse_response"
        reason = f"{where} raised {type(e).__name__}: {e} (fix it, then run with --reparse)"
    if not fields["pairs"]:
        fields["reason"] = reason
    return fields


def checked_pairs(pairs: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The pairs a parser gave that a release can hold (a dict with a non-empty string ``instruction`` and
    ``answer``), and a problem for each one dropped: any parser's pairs are held to what JSON mode's are.

    >>> checked_pairs([{"instruction": "Q?", "answer": "A."}, {"instruction": "Q?"}, "x"])[1]
    ["pair 2: no string 'answer' (dropped)", 'pair 3: not a mapping (dropped)']
    """
    if not isinstance(pairs, list):
        return [], [f"the parser gave {type(pairs).__name__}, not a list of pairs"]
    kept, dropped = [], []
    for i, pair in enumerate(pairs, 1):
        if not isinstance(pair, Mapping):
            dropped.append(f"pair {i}: not a mapping (dropped)")
            continue
        missing = [k for k in ("instruction", "answer") if not isinstance(pair.get(k), str) or not pair[k].strip()]
        if missing:
            dropped.append(f"pair {i}: no string {' or '.join(repr(k) for k in missing)} (dropped)")
            continue
        kept.append(pair)
    return kept, dropped


def query_meta(item: Mapping[str, Any]) -> dict[str, Any]:
    """What a plugin attached to a query beyond id and sentences; ItemError if JSON cannot hold it.

    Checked before the query is sent, so a plugin's bad value costs nothing.
    """
    extras = {k: v for k, v in item.items() if k not in ("id", "sentences")}
    if extras:
        encode({"id": item.get("id"), "meta": extras})
    return extras


def encode(record: Mapping[str, Any]) -> bytes:
    """One strict JSON line (UTF-8, newline included); ItemError ``unencodable`` naming the bad field."""
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError) as e:
        raise ItemError(f"the record of {record.get('id')!r} is not JSON: {_culprit(record) or e}; every value "
                        "a plugin attaches must be a string, number, bool, None, list or dict",
                        kind="unencodable") from None


def encode_loose(record: Mapping[str, Any]) -> bytes:
    """One JSON line that always encodes: ASCII escapes for any string, ``repr`` for any other value."""
    text = json.dumps(_plain(record), ensure_ascii=True, allow_nan=False, default=repr)
    return text.encode("ascii", "backslashreplace") + b"\n"


def _plain(value: Any, depth: int = 0) -> Any:
    if depth > 50:
        return repr(value)[:200]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return value


def _culprit(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The dotted path of the first value JSON cannot hold, with what it is."""
    where = path or "the record"
    if depth > 50:
        return f"{where} is nested too deeply"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} has text that is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r} (not JSON)"
    if value is None or isinstance(value, (bool, int)):
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                return f"{where} has a {type(k).__name__} key"
            found = _culprit(v, f"{path}.{k}" if path else str(k), depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _culprit(v, f"{where}[{i}]", depth + 1)
            if found:
                return found
        return None
    return f"{where} is a {type(value).__name__}"
