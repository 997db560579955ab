"""The check before spending: every query input read once before the first request, and what
``--on_duplicate`` does with repeated ids.

A run reads its plugin's inputs twice (plugins are deterministic, see ``AbstractDataset``).
The first read, ``check_inputs``, streams every item in flat memory and finds, before anything
is paid: items that are not dicts, missing or non-string ids, missing or non-string sentences,
text that is not UTF-8 (also a plugin's ``UnicodeDecodeError``, placed by file and line when it
can be), plugin code failing part way, and repeated ids. It counts the queries (the progress
line's total and ETA) and the blank items (sentences empty or whitespace only: not queries, they
are skipped and their ids listed in ``skipped_empty.txt``). Every problem goes into one UserError:
counts by kind, the first offending items by number (from 1) and id, the plugin file and the fix.

The second read, ``run_stream`` (``syphus.onduplicate``), drops the blank items and applies the
duplicate policy:

- ``error`` (the default): a repeated id is a problem, reported with the flag that accepts it;
- ``suffix``: later occurrences become ``id#2``, ``id#3``... in stream order (a name another
  item already has is passed over), so every resume makes the same ids;
- ``merge``: all items of an id become one query, the plugin's ``merge_items(items)``, sent
  where the id occurs last; items of repeated ids wait meanwhile (on disk past ``HeldItems.limit``);
- ``skip``: the first item of each id is kept.

Repeated ids are found exactly without keeping every id in memory (``syphus.repeats``).

>>> from syphus.dataset import AbstractDataset
>>> class Pairs(AbstractDataset):
...     def _load_prompt(self, path): return {"system_message": "s", "in_context": []}
...     def _load_query_inputs(self, path):
...         yield from ({"id": i, "sentences": s} for i, s in [("a", "x"), ("b", " "), ("a", "y")])
>>> check = check_inputs(Pairs(), "pairs.py (Pairs)", "suffix")
>>> check.items, check.queries, check.empty, check.duplicates
(3, 2, 1, 1)
>>> [item["id"] for item in run_stream(Pairs(), check, "pairs.py (Pairs)")]
['a', 'a#2']
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from syphus.dataset import AbstractDataset, NotUTF8, check_container, empty_input_error, first_undecodable_line
from syphus.durable import atomic_file
from syphus.errors import SyphusError, UserError
from syphus.onduplicate import HeldItems, merge_one, run_stream  # noqa: F401  (imported from here)
from syphus.repeats import EXAMPLES, DuplicateFinder, Offence, Repeats  # noqa: F401

POLICIES = ("error", "suffix", "merge", "skip")
SKIPPED_EMPTY = "skipped_empty.txt"  # in the run folder: the ids of blank items, one a line

KINDS = {  # kind -> how the report counts it: "2 items without 'id'"
    "not_dict": "not a dict",
    "no_id": "without 'id'",
    "bad_id": "with an id that is not a non-empty string",
    "no_sentences": "without 'sentences'",
    "bad_sentences": "with 'sentences' that is not a string",
    "not_utf8": "not UTF-8",
    "read_error": "unreadable (the plugin failed)",
    "missing_file": "not read: a file does not exist",
    "bad_json": "not read: the file is not valid JSON there",
    "duplicate": "repeating an earlier item's id",
}

_SHAPE_FIX = ("each item needs 'id' (a non-empty string) and 'sentences' (a string): correct "
              "_load_query_inputs in {plugin} (or the data it reads)")
_UTF8_FIX = "save the file as UTF-8, or open it in _load_query_inputs with the encoding it has"
_READ_FIX = "fix the plugin code or the file at the place named above"
_MISSING_FIX = "check the path: the plugin's query_inputs_path, or pass -in FILE"
_JSON_FIX = "correct the file at the line named above"
_DUPLICATE_FIX = ("make ids unique in _load_query_inputs, or say what to do with them: --on_duplicate suffix "
                  "(id, id#2, id#3 in order), merge (one query per id, the plugin's merge_items) or skip "
                  "(keep the first); on_duplicate in a --config file")


# --- the check --------------------------------------------------------------------------------------

class _Lines:
    """Lines of text spooled to a temporary file (the ids of blank items: any number, flat memory)."""

    def __init__(self) -> None:
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._buffer: list[str] = []

    def add(self, text: str) -> None:
        if "\n" in text or "\r" in text:
            text = json.dumps(text)  # one id a line, whatever it holds
        self._buffer.append(text)
        if len(self._buffer) >= 4096:
            self.flush()

    def flush(self) -> None:
        self._file.write("".join(f"{x}\n" for x in self._buffer))
        self._buffer.clear()

    def copy_to(self, out: IO[str]) -> None:
        self.flush()
        self._file.seek(0)
        while chunk := self._file.read(1 << 20):
            out.write(chunk)

    def close(self) -> None:
        self._file.close()


@dataclass
class InputCheck:
    """What the check before the run found in one plugin's inputs, and what the run will send.

    ``items`` were read; ``bad`` counts the problems by kind (``offences`` the first of each kind,
    ``stopped`` the failure that ended the read early); ``empty`` items are blank (ids in
    ``blank_ids``); ``repeats`` are the repeated ids. ``queries`` is what the run will send.
    """

    source: str
    path: Any
    policy: str
    items: int = 0
    bad_items: int = 0
    bad: Counter = field(default_factory=Counter)
    offences: list[Offence] = field(default_factory=list)
    stopped: Offence | None = None
    stop_error: Exception | None = None
    empty: int = 0
    blank_ids: _Lines = field(default_factory=_Lines)
    repeats: Repeats = field(default_factory=Repeats)
    disk_bytes: int = 0

    @property
    def duplicates(self) -> int:
        """Items whose id an earlier item already had."""
        return self.repeats.extra

    @property
    def queries(self) -> int:
        """How many queries the run has: good items, blank ones left out, repeats as the policy says."""
        good = self.items - self.bad_items - self.empty
        return good - self.duplicates if self.policy in ("merge", "skip") else good

    def note(self, offence: Offence) -> None:
        """Count a bad item, keeping the first few of its kind as examples."""
        self.bad_items += 1
        self.bad[offence.kind] += 1
        if self.bad[offence.kind] <= EXAMPLES:
            self.offences.append(offence)

    def blank(self, qid: str) -> None:
        """Note an item whose sentences are empty or whitespace: not a query, its id listed."""
        self.empty += 1
        self.blank_ids.add(qid)

    def stop(self, error: Exception) -> None:
        """Note the failure that ended the read after ``items`` items (counted by kind, not as an item)."""
        self.stop_error = error
        self.stopped = _read_failure(error, self.items + 1, self.path)
        self.bad[self.stopped.kind] += 1

    def summary(self) -> dict[str, Any]:
        """What meta.json keeps of the check."""
        return {"items": self.items, "queries": self.queries, "skipped_empty": self.empty,
                "repeated_ids": len(self.repeats.counts), "duplicates": self.duplicates,
                "on_duplicate": self.policy}

    def write_blank_ids(self, path: Path) -> None:
        """Write the blank items' ids to ``path``, one a line (replacing it whole)."""
        with atomic_file(path, sync=False) as out:
            self.blank_ids.copy_to(out)

    def close(self) -> None:
        self.blank_ids.close()

    # --- the one report ------------------------------------------------------------------------
    def problems(self) -> Counter:
        found = Counter(self.bad)
        if self.policy == "error" and self.duplicates:
            found["duplicate"] = self.duplicates
        return found

    def error(self) -> UserError | None:
        """The one UserError listing every problem found, or None when the run may start."""
        found = self.problems()
        if not found:
            return None
        if self._plugin_said_it(found):
            return self.stop_error  # type: ignore[return-value]
        if set(found) == {"missing_file"} and self.items == 0 and self.stopped is not None:
            missing = self.stopped.text.rsplit(": no such file", 1)[0]
            return UserError(f"{missing}: the annotation file does not exist ({self.source} reads it); "
                             f"{_MISSING_FIX}")
        read = f"{self.items:,} item{'s' * (self.items != 1)} read" + (f" from {self.path}" if self.path else "")
        counts = ", ".join(f"{n:,} item{'s' * (n != 1)} {KINDS[kind]}"
                           for kind, n in sorted(found.items(), key=lambda x: (-x[1], list(KINDS).index(x[0]))))
        lines = [f"{self.source}: bad query inputs, found before any request was sent ({read}): {counts}"]
        lines += [f"  {o.text}" for o in self._examples()]
        if self.stopped is not None:
            lines.append(f"  {self.stopped.text}; reading stopped there")
        lines += [f"  fix: {fix}" for fix in self._fixes(found)]
        return UserError("\n".join(lines))

    def _plugin_said_it(self, found: Counter) -> bool:
        """Whether the one problem is the plugin's own UserError on its first item (a missing file, said as it is)."""
        return (isinstance(self.stop_error, UserError) and not isinstance(self.stop_error, NotUTF8)
                and self.items == 0 and sum(found.values()) == 1)

    def _examples(self) -> list[Offence]:
        """The first offence of each kind, then the earliest others, up to EXAMPLES (or one a kind)."""
        pool = sorted(self.offences + (self.repeats.examples if self.policy == "error" else []))
        chosen = list({o.kind: o for o in reversed(pool)}.values())  # the first of each kind
        for o in pool:
            if len(chosen) >= EXAMPLES:
                break
            if o not in chosen:
                chosen.append(o)
        return sorted(chosen)

    def _fixes(self, found: Counter) -> list[str]:
        plugin = self.source.split(" (")[0]
        fixes = []
        if any(k in found for k in ("not_dict", "no_id", "bad_id", "no_sentences", "bad_sentences")):
            fixes.append(_SHAPE_FIX.format(plugin=plugin))
        if "not_utf8" in found:
            fixes.append(_UTF8_FIX)
        if "read_error" in found:
            fixes.append(_READ_FIX)
        if "missing_file" in found:
            fixes.append(_MISSING_FIX)
        if "bad_json" in found:
            fixes.append(_JSON_FIX)
        if "duplicate" in found:
            fixes.append(_DUPLICATE_FIX)
        fixes[-1] += "; then run again"
        return fixes


def _utf8(text: str) -> bool:
    """Whether ``text`` can be sent as UTF-8 (no lone surrogates from a file read with surrogateescape)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _classify(item: Any, n: int) -> tuple[str | None, Offence | None]:
    """``(id, None)`` for a good item (an int id as a string), ``(None, offence)`` for a bad one."""
    if not isinstance(item, dict):
        return None, Offence(n, "not_dict", f"item {n} is a {type(item).__name__}, not a dict")
    if "id" not in item:
        return None, Offence(n, "no_id", f"item {n} has no 'id' (its keys: {', '.join(map(str, item)) or 'none'})")
    qid = item["id"]
    if isinstance(qid, int) and not isinstance(qid, bool):
        qid = str(qid)
    if not isinstance(qid, str) or not qid:
        return None, Offence(n, "bad_id", f"item {n} has id {qid!r}; ids must be non-empty strings")
    text = item.get("sentences")
    if not isinstance(text, str):
        got = "no 'sentences'" if "sentences" not in item else f"'sentences' of type {type(text).__name__}"
        return None, Offence(n, "no_sentences" if "sentences" not in item else "bad_sentences",
                             f"item {n} (id {qid!r}) has {got}")
    if not (_utf8(qid) and _utf8(text)):
        return None, Offence(n, "not_utf8", f"item {n} (id {qid!r}) holds text that is not valid UTF-8 "
                                            "(a lone surrogate: was the file read with errors='surrogateescape'?)")
    return qid, None


def _json_line(path: Any, e: json.JSONDecodeError) -> int | None:
    """The line of the file at ``path`` where ``e`` is: the line whose text the plugin parsed when it parsed
    one line (``json.loads(line)`` says "line 1"), else ``e``'s own line of the whole file; None if unknown."""
    if "\n" in e.doc.strip():
        return e.lineno
    wanted = e.doc.strip()
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if line.strip() == wanted:
                    return number
    except (OSError, TypeError, ValueError):
        return None
    return None


def _read_failure(e: Exception, n: int, path: Any) -> Offence:
    """The offence for plugin code raising ``e`` while producing item ``n``."""
    if isinstance(e, FileNotFoundError):  # the plugin's own open(): say which file is not there
        return Offence(n, "missing_file", f"{e.filename or path}: no such file")
    if isinstance(e, json.JSONDecodeError):  # the plugin's own json.loads(): place it in the file
        line = _json_line(path, e)
        if line is not None:
            one = "\n" not in e.doc.strip()  # one line parsed: its column, not past its newline
            col = min(e.pos, len(e.doc.rstrip("\r\n"))) + 1 if one else e.colno
            return Offence(n, "bad_json", f"{path}:{line}:{col}: not valid JSON ({e.msg}); item {n}")
        return Offence(n, "bad_json", f"item {n}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno} "
                                      "of the text the plugin parsed)")
    if isinstance(e, NotUTF8):
        return Offence(n, "not_utf8", str(e))
    if isinstance(e, UnicodeDecodeError):
        where = first_undecodable_line(path)
        at = f"{path}:{where[0]}: not UTF-8 text ({e.reason} at byte {where[1]} of the line)" if where else \
            f"item {n}: not UTF-8 text ({e.reason}): the plugin could not decode what it read there"
        return Offence(n, "not_utf8", at)
    if isinstance(e, SyphusError):
        return Offence(n, "read_error", f"item {n}: {e}")
    return Offence(n, "read_error", f"item {n}: reading query inputs failed: {type(e).__name__}: {e}")


def _scan(items: Any, check: InputCheck, finder: DuplicateFinder) -> None:
    """Read every item once, sorting each into good (to ``finder``), blank or bad (to ``check``).

    The loop is written out (the finder's append, a fast path for ASCII text) because it runs for
    every input: at 10^7 items each statement counts. Anything else goes through ``_classify``.
    """
    ids, positions, mask, block, flush = finder.ids, finder.positions, finder.mask, finder.block, finder.flush
    n = 0
    try:
        for n, item in enumerate(items, 1):
            if type(item) is dict:
                qid, text = item.get("id"), item.get("sentences")
                if type(qid) is str and type(text) is str and qid and text.isascii() and qid.isascii():
                    if text and not text.isspace():
                        b = hash(qid) & mask
                        bucket = ids[b]
                        bucket.append(qid)
                        positions[b].append(n)
                        if len(bucket) >= block:
                            flush(b)
                    else:
                        check.blank(qid)
                    continue
            qid, offence = _classify(item, n)
            if offence is not None:
                check.note(offence)
            elif item["sentences"] and not item["sentences"].isspace():
                finder.add(qid, n)
            else:
                check.blank(qid)
    finally:
        check.items = n


def check_inputs(dataset: AbstractDataset, source: str, policy: str = "error") -> InputCheck:
    """Read every query input of ``dataset`` once; raise the one UserError for whatever is wrong.

    ``source`` names the plugin in messages (``datasets/x.py (Class)``); ``policy`` is
    ``--on_duplicate``. Returns the check (close it when done) for ``run_stream``.
    """
    if policy not in POLICIES:
        raise UserError(f"on_duplicate {policy!r}: use one of {', '.join(POLICIES)}")
    items = _open(dataset, source)
    check = InputCheck(source, dataset.query_inputs_path, policy)
    finder = DuplicateFinder()
    try:
        try:
            _scan(items, check, finder)
        except Exception as e:  # plugin code failing part way: the rest of the stream is gone
            check.stop(e)
        check.repeats = finder.finish(suffix_names=policy == "suffix")
        check.disk_bytes = finder.disk_bytes
    except BaseException:
        check.close()
        raise
    finally:
        finder.close()
    _raise_if_bad(check, dataset)
    return check


def _open(dataset: AbstractDataset, source: str) -> Any:
    """A fresh read of the plugin's inputs; a container that cannot hold items (None, a string) is a UserError."""
    try:
        return check_container(dataset.open_query_inputs(), source)
    except SyphusError:
        raise
    except Exception as e:
        raise UserError(f"{source}: reading query inputs failed: {type(e).__name__}: {e}") from e


def _raise_if_bad(check: InputCheck, dataset: AbstractDataset) -> None:
    error = check.error()
    if error is None and check.items == 0 and dataset.empty_is_error:
        error = empty_input_error(check.source, check.path)
    if error is not None:
        check.close()
        raise error
