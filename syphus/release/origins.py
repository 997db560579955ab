"""What each pair of a release was made from: the annotation of its query, read back from the run the
release was exported from (``<run>/export/XX_instructions.json`` beside ``<run>/pairs.jsonl``), for the
viewer's annotation column. A pair is matched by its query and its text, so a translation (whose text
differs) is matched through its English original.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from syphus.engine.store import PAIRS, read_jsonl
from syphus.errors import UserError
from syphus.idset import IdSet


def pair_text(value: Any) -> str:
    """A pair's field as text: a string as it is, None as "", anything else as its JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def run_of(path: Path) -> Path | None:
    """The run folder a release file was exported into (``<run>/export/XX_instructions.json``), if it is one."""
    run = path.parent.parent
    if path.parent.name == "export" and (run / "meta.json").is_file() and (run / PAIRS).is_file():
        return run
    return None


def _pair_key(instruction: Any, answer: Any) -> str:
    return hashlib.blake2b(f"{pair_text(instruction)}\0{pair_text(answer)}".encode("utf-8", "surrogatepass"),
                           digest_size=12).hexdigest()


class Origins:
    """The query and annotation each pair of a release file came from.

    A release file exported into a run folder finds its pairs in the run's records (by their text),
    and their queries' annotations through the plugin that made the run (``Annotations``); a
    translation has the English file's ids. An entry that carries its own ``annotation`` (or
    ``sentences``) field shows that. Holds one short key per pair.
    """

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, str]] = {}  # instruction id -> {"query", "annotation"}
        self.notes: list[str] = []
        self._runs: dict[Path, tuple[dict[str, str], Any]] = {}

    def _run(self, run: Path) -> tuple[dict[str, str], Any]:
        if run not in self._runs:
            from syphus.release.annotation import Annotations
            queries: dict[str, str] = {}
            wanted = IdSet()
            for _, rec in read_jsonl(run / PAIRS, skip_torn=True):
                qid = str(rec.get("id"))
                for pair in rec.get("pairs") or []:
                    if isinstance(pair, dict):
                        queries.setdefault(_pair_key(pair.get("instruction"), pair.get("answer")), qid)
                wanted.add(qid)
            try:
                notes = Annotations(run, wanted)
                self.notes.append(f"annotations from the plugin that made {run}")
            except UserError as e:
                notes = None
                self.notes.append(f"no annotations for {run}: {e}")
            self._runs[run] = (queries, notes)
        return self._runs[run]

    def of(self, path: Path, ins_id: str, entry: dict[str, Any], english: bool) -> dict[str, str] | None:
        own = entry.get("annotation") if isinstance(entry.get("annotation"), str) else entry.get("sentences")
        if isinstance(own, str) and own.strip():
            return {"annotation": own}
        if not english:
            return self.by_id.get(ins_id)
        run = run_of(path)
        if run is None:
            return None
        queries, notes = self._run(run)
        qid = queries.get(_pair_key(entry.get("instruction"), entry.get("answer")))
        if qid is None:
            return None
        origin = {"query": qid}
        text = notes.get(qid) if notes is not None else None
        if text is not None:
            origin["annotation"] = text
        self.by_id[ins_id] = origin
        return origin

    def close(self) -> None:
        for _, notes in self._runs.values():
            if notes is not None:
                notes.close()
