"""Report inputs: what each input of ``syphus report`` is (a run folder or a release file), and its pairs.

``resolve`` says what a path is and what belongs with it (its run, prompt, viewer); ``iter_source``
streams its pairs, handing a run folder's records to whoever counts them; ``viewer_link`` links a
pair to the viewer's page.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from syphus.engine.store import ERRORS, INVALID, META, PAIRS, read_jsonl
from syphus.errors import UserError
from syphus.release.jsonstream import iter_members
from syphus.release.view import default_out, language_of
from syphus.signals import QuestionType


class Records(Protocol):
    """What takes a run folder's records as ``iter_source`` reads them."""

    def record(self, rec: dict[str, Any], valid: bool) -> None: ...

    def error(self, rec: dict[str, Any]) -> None: ...


@dataclass
class Source:
    """One input: what it is, what it is called in the report, and what belongs with it."""

    path: Path
    kind: str  # "run" or "instructions"
    label: str
    scene: str
    language: str
    run: Path | None = None  # the run folder whose records hold its tokens
    system_message: str | None = None
    prompt: str | None = None  # where the system message came from
    viewer: Path | None = None  # the viewer's index.html for its pairs, when built
    notes: list[str] = field(default_factory=list)


def read_meta(folder: Path) -> dict[str, Any]:
    """A run folder's meta.json ({} when it is missing or unreadable)."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _is_run(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).is_file() for name in (PAIRS, INVALID, ERRORS))


def _run_of(path: Path) -> Path | None:
    """The run folder an instructions file was exported into (``<run>/export/XX_instructions.json``)."""
    for folder in (path.parent, path.parent.parent):
        if _is_run(folder) and (folder / META).is_file():
            return folder
    return None


def _system_message(prompt: str | Path | None) -> tuple[str | None, str | None]:
    """(system message, note) of a prompt file; a file that cannot be read is a note, not an error."""
    if not prompt:
        return None, None
    from syphus.prompt import read_prompt_file

    try:
        data = read_prompt_file(prompt)
    except (UserError, OSError) as e:
        return None, f"no system message: {e}"
    message = data.get("system_message") if isinstance(data, dict) else None
    return (message, None) if isinstance(message, str) else (None, f"{prompt}: no system_message")


def resolve(path: str | Path, prompt: str | Path | None = None, viewer: str | Path | None = None) -> Source:
    """What ``path`` is (a run folder or an instructions file) and what belongs with it."""
    p = Path(path)
    if p.is_file() and p.name == PAIRS:
        p = p.parent
    if p.is_dir():
        if not _is_run(p):
            raise UserError(f"{p}: not a run folder (no {PAIRS}, {INVALID} or {ERRORS}); pass a run folder such "
                            "as output/DC/v1 or an XX_instructions.json")
        meta = read_meta(p)
        dataset = meta.get("dataset") or {}
        scene = str(dataset.get("scene") or dataset.get("name") or p.parent.name or p.name)
        source = Source(p, "run", f"{scene} ({p.name})", scene, "en", run=p)
        views = sorted((p / "export").glob("*_instructions_view/index.html"))
        source.viewer = Path(viewer) / "index.html" if viewer else (views[0] if views else None)
        prompt = prompt or dataset.get("prompt_path")
    elif p.is_file():
        language = language_of(p, default="en")
        scene = p.name.split("_instructions")[0] if "_instructions" in p.name else p.stem
        label = scene if language == "en" else f"{scene} {language}"
        source = Source(p, "instructions", label, scene, language, run=_run_of(p))
        own = default_out(p) / "index.html"
        source.viewer = Path(viewer) / "index.html" if viewer else (own if own.is_file() else None)
        if prompt is None and source.run is not None and language == "en":
            prompt = (read_meta(source.run).get("dataset") or {}).get("prompt_path")
    else:
        raise UserError(f"{p}: not found; pass a run folder (output/DC/v1) or an XX_instructions.json")
    if source.viewer is not None and not source.viewer.is_file():
        source.notes.append(f"{source.viewer}: no viewer page there; build it with syphus view")
        source.viewer = None
    if source.language == "en" or source.kind == "run":
        source.system_message, note = _system_message(prompt)
        source.prompt = str(prompt) if source.system_message is not None else None
        if note:
            source.notes.append(note)
    return source


def unique_labels(sources: Sequence[Source]) -> None:
    seen: dict[str, int] = {}
    for s in sources:
        n = seen[s.label] = seen.get(s.label, 0) + 1
        if n > 1:
            s.label = f"{s.label} #{n}"


@dataclass
class Pair:
    """One instruction-response pair as the report names it: ``key`` is the instruction id (for a run
    folder, ``<query id>#<n>``)."""

    key: str
    instruction: str
    answer: str
    related: int | None = None  # len(rel_ins_ids), for a release file
    # filled once by the report's reading loop, for every section to use
    iw: list[str] = field(default_factory=list)  # the instruction's words (syphus.signals.words)
    aw: list[str] = field(default_factory=list)  # the answer's words
    question: QuestionType | None = None  # the instruction's question type (English inputs only)


def iter_source(source: Source, records: Records | None = None) -> Iterator[Pair]:
    """The pairs of one input in order; with ``records``, a run folder's records are handed to it on the way
    (``record(rec, valid)`` for pairs.jsonl and invalid.jsonl, ``error(rec)`` for errors.jsonl)."""
    if source.kind == "instructions":
        for ins_id, entry in iter_members(source.path, within="data"):
            if not isinstance(entry, dict):
                raise UserError(f"{source.path}: entry {ins_id!r} is not an object; check the file with "
                                f"syphus validate {source.path}")
            rel = entry.get("rel_ins_ids")
            yield Pair(str(ins_id), _text(entry.get("instruction")), _text(entry.get("answer")),
                       len(rel) if isinstance(rel, list) else 0)
        return
    for _, rec in read_jsonl(source.path / PAIRS, skip_torn=True):
        if records is not None:
            records.record(rec, valid=True)
        qid = str(rec["id"])
        for n, p in enumerate(rec.get("pairs") or [], 1):
            if isinstance(p, dict):
                yield Pair(f"{qid}#{n}", _text(p.get("instruction")), _text(p.get("answer")))
    if records is not None:
        for _, rec in read_jsonl(source.path / INVALID, skip_torn=True):
            records.record(rec, valid=False)
        for _, rec in read_jsonl(source.path / ERRORS, skip_torn=True):
            records.error(rec)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def viewer_link(source: Source, pair_key: str, instruction: str, out: Path | None) -> str | None:
    """A link from the report folder ``out`` to the viewer's page for one pair (None without a viewer).

    The viewer searches ids and texts: a release pair is found by its id (in its language), a run's pair
    by its instruction's text.
    """
    if source.viewer is None or out is None:
        return None
    rel = Path(os.path.relpath(source.viewer, out)).as_posix()
    if source.kind == "instructions":
        query = "q=" + urllib.parse.quote(pair_key, safe="") + "&lang=" + urllib.parse.quote(source.language, safe="")
    else:
        query = "q=" + urllib.parse.quote(" ".join(instruction.split())[:200], safe="")
    return f"{rel}#{query}"


def default_folder(first: str | Path) -> Path:
    """Where a report goes by default: ``<run>/report``, or ``XX_instructions_report`` beside the file."""
    p = Path(first)
    if p.is_file() and p.name == PAIRS:
        p = p.parent
    return p / "report" if p.is_dir() else p.with_name(p.stem + "_report")
