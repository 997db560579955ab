"""Export: a finished run folder -> the MIMIC-IT release files.

``XX_instructions.json`` ``{"meta": {...}, "data": {"XX_INS_00001": {"instruction", "answer",
"image_ids", "rel_ins_ids"}, ...}}``, ``XX_train.json`` ``{ins id: [related ids]}``, and
``XX_instructions.parquet`` (one row per instruction; pandas and ``datasets`` read it).

Ids are deterministic: queries are numbered in the order of their ids and pairs in
their order within the reply, so the same settled run exports the same ids whatever
order its results arrived in, interrupted and resumed or not. Everything streams:
only (query id, file offset) per query is held in memory.

>>> result = export_run("output/DC/v1", images="DC.json")   # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from syphus import __version__
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.release import parquet as parquet_file
from syphus.release.images import image_ids as read_image_ids
from syphus.release.jsonstream import ObjectWriter
from syphus.release.scenes import instruction_id, split_frame
from syphus.engine.store import PAIRS

REL_CHOICES = ("same-input", "none")
ROW_GROUP = 50_000  # instructions per Parquet row group


@dataclass
class ExportResult:
    instructions: Path
    train: Path
    parquet: Path | None
    instructions_count: int = 0
    queries: int = 0
    images_missing: int = 0
    notes: list[str] = field(default_factory=list)


def _scene_from_meta(folder: Path) -> str | None:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (meta.get("dataset") or {}).get("scene")


def _index(pairs_path: Path) -> tuple[list[tuple[str, int]], int, set[str], bool, list[str]]:
    """(sorted (query id, offset), number of pairs, image prefixes, any listed image ids, notes)."""
    index: list[tuple[str, int]] = []
    total, prefixes, listed, notes = 0, set(), False, []
    with pairs_path.open("rb") as f:
        offset = 0
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    qid = str(rec["id"])
                except (ValueError, KeyError, TypeError) as e:
                    raise UserError(f"{pairs_path}:{n}: not a pairs record ({e}); repair or remove that line") from e
                index.append((qid, offset))
                total += len(rec.get("pairs") or [])
                meta = rec.get("meta") or {}
                if meta.get("image_prefix"):
                    prefixes.add(meta["image_prefix"])
                elif meta.get("image_ids"):
                    listed = True
            offset += len(line)
    index.sort()
    unique = []
    for item in index:
        if unique and unique[-1][0] == item[0]:
            notes.append(f"query {item[0]!r} appears twice in {pairs_path}; exported once")
            continue
        unique.append(item)
    return unique, total, prefixes, listed, notes


class _Frames:
    """Frame ids per prefix, held as their suffixes packed in one bytearray per prefix (~5 bytes a frame)."""

    def __init__(self) -> None:
        self._packed: dict[str, bytearray] = defaultdict(bytearray)

    def add(self, prefix: str, suffix: str) -> None:
        self._packed[prefix] += suffix.encode("utf-8") + b"\0"

    def get(self, prefix: str) -> list[str]:
        packed = self._packed.get(prefix)
        if not packed:
            return []
        return [prefix + s for s in sorted(packed[:-1].decode("utf-8").split("\0"))]


def _scan_images(images: Path, prefixes: set[str], want_all: bool) -> tuple[_Frames, IdSet | None]:
    """Frames of the wanted prefixes, and (only if ``want_all``) the set of every image id."""
    frames = _Frames()
    present = IdSet() if want_all else None
    for image_id in read_image_ids(images):
        if present is not None:
            present.add(image_id)
        prefix, number = split_frame(image_id)
        if prefix and prefix in prefixes:
            frames.add(prefix, number)
    return frames, present


def export_run(folder: str | Path, scene: str | None = None, out_dir: str | Path | None = None,
               images: str | Path | None = None, rel: str = "same-input", author: str = "syphus",
               version: str = "0.0.1", parquet: bool = True,
               extra_meta: dict[str, Any] | None = None) -> ExportResult:
    """Write the release files of the run in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    pairs_path = folder / PAIRS
    if not pairs_path.exists():
        raise UserError(f"{folder}: no {PAIRS} here; pass a run folder such as output/DC/v1")
    scene = scene or _scene_from_meta(folder)
    if not scene:
        raise UserError(f"{folder}: the dataset names no MIMIC-IT scene; pass --scene (e.g. --scene DC)")
    if rel not in REL_CHOICES:
        raise UserError(f"--rel must be one of {', '.join(REL_CHOICES)}")
    out = Path(out_dir) if out_dir else folder / "export"
    out.mkdir(parents=True, exist_ok=True)
    index, total, prefixes, listed, notes = _index(pairs_path)
    frames, present = _scan_images(Path(images), prefixes, listed) if images else (_Frames(), None)
    width = max(5, len(str(total)))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m")
    meta = {"version": version, "time": stamp, "author": author, "generator": f"syphus {__version__}",
            **(extra_meta or {})}
    result = ExportResult(out / f"{scene}_instructions.json", out / f"{scene}_train.json", None, notes=notes)

    table = None
    if parquet and parquet_file.available():
        pa, _ = parquet_file.modules("the instructions table")
        result.parquet = out / f"{scene}_instructions.parquet"
        schema = pa.schema([("id", pa.string()), ("instruction", pa.string()), ("answer", pa.string()),
                            ("image_ids", pa.list_(pa.string())), ("rel_ins_ids", pa.list_(pa.string())),
                            ("query_id", pa.string()), ("scene", pa.string())])
        table = parquet_file.RowGroupWriter(result.parquet, schema, rows=ROW_GROUP)
    elif parquet:
        result.notes.append(f"no Parquet table written: {parquet_file.HINT}")

    instructions = ObjectWriter(result.instructions, meta)
    train = ObjectWriter(result.train, None)
    number = 0
    with pairs_path.open("rb") as f:
        for qid, offset in index:
            f.seek(offset)
            rec = json.loads(f.readline())
            pairs = rec.get("pairs") or []
            ids = [instruction_id(scene, number + i + 1, width) for i in range(len(pairs))]
            number += len(pairs)
            record_meta = rec.get("meta") or {}
            prefix = record_meta.get("image_prefix")
            if images and prefix:
                image_list = frames.get(prefix)
                if not image_list:
                    result.notes.append(f"query {qid!r}: no frames with prefix {prefix!r} in {images}")
            else:
                image_list = list(record_meta.get("image_ids") or [])
                if present is not None:
                    result.images_missing += sum(1 for i in image_list if i not in present)
            result.queries += 1
            for i, pair in enumerate(pairs):
                related = [x for x in ids if x != ids[i]] if rel == "same-input" else []
                instructions.add(ids[i], {"instruction": pair["instruction"], "answer": pair["answer"],
                                          "image_ids": image_list, "rel_ins_ids": related})
                train.add(ids[i], related)
                if table is not None:
                    table.add(ids[i], pair["instruction"], pair["answer"], image_list, related, qid, scene)
    instructions.close()
    train.close()
    if table is not None:
        table.close()
    result.instructions_count = number
    if result.images_missing:
        result.notes.append(f"{result.images_missing} image ids are not in {images}; run syphus validate for details")
    return result
