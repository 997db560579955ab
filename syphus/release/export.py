"""Export: a finished run folder -> the MIMIC-IT release files.

``XX_instructions.json`` ``{"meta": {...}, "data": {"XX_INS_00001": {"instruction", "answer",
"image_ids", "rel_ins_ids"}, ...}}``, ``XX_train.json`` ``{ins id: [related ids]}`` (by default one
entry per visual input, as Otter's authors make theirs; ``train_mode="per_instruction"``: one per
instruction), and
``XX_instructions.parquet`` (one row per instruction, keyed by the instruction id as the table's
pandas index: ``pandas.read_parquet(path).loc["XX_INS_00001"]["instruction"]``; ``datasets`` reads
it too). ``XX`` is the run's MIMIC-IT scene (``scene``, else the dataset's own), or ``prefix``, a
code of one's own for a dataset that is no MIMIC-IT scene (ids ``EX_INS_00001``, images ``EX_IMG_...``).

Image ids are what the plugin attached to each query (``image_ids``; with an image file, the
frames it has that start with ``image_prefix``). A query with neither (a plugin written for the
original Syphus) gets them from the scene's convention (``scenes.query_images``) and the ids
present in the image file; without an image file, ``ExportResult.no_images`` counts the
instructions left without images and ``no_images_hint`` says how to fix that.

Ids are given once and kept (``syphus.release.ledger``, ``<run>/instruction_ids.jsonl``): an
instruction id means one pair (query id, pair index) forever. The first export numbers queries
in the order of their ids and pairs in their order within the reply, so it does not depend on the
order results arrived in; a later export (after ``--retry_errors``, a resumed run, with or without
``--dedup``) gives every pair it gave before the same id and new pairs new ids after the highest.
Everything streams: (query id, file offset) per query and the ledger's numbers are held in memory.

With ``dedup`` (a Jaccard threshold, ``syphus export --dedup 0.8``) near-duplicate instructions
are dropped: of each cluster (``syphus.release.dedup``, over the whole run) only the first by id
is kept. The others leave the instructions file, the train file and the Parquet table, and
every ``rel_ins_ids`` list; the kept keep their ids (so the numbering has gaps), and ``meta.dedup`` records the threshold and how many were dropped.

With ``min_score`` (``syphus export --min_score 4``) only the pairs whose mean score in the run's
newest judge run (``syphus judge``, ``<run>/judge/<version>/``) is at least that are kept; pairs
never judged (or judged when their query's pairs were other) are left out too, and counted apart.
Like dedup, it keeps ids, ``rel_ins_ids``, the train file and the Parquet table consistent.

The release files change together or not at all: they are written as ``<name>.swap`` beside the
old ones and fsynced, then a commit marker (``export.commit``) is written, then each is swapped in
and the marker removed. A crash before the marker leaves the old set (the next export, or
``recover_release``, drops the ``.swap`` files); a crash after it is finished by the next one, as
``--reparse`` does in the run folder. Two exports of one run take turns (the ledger's lock is held
from start to commit).

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
from syphus.durable import commit_swaps, recover_swaps, sync_path
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.engine import parquet as parquet_file
from syphus.release import filters
from syphus.release.images import image_ids as read_image_ids
from syphus.release.jsonstream import ObjectWriter
from syphus.release.ledger import Ledger
from syphus.engine.scenes import (IMAGE_FAMILIES, QueryImages, image_family, is_code,
                                   query_images, split_frame)
from syphus.engine.store import PAIRS

REL_CHOICES = ("same-input", "none")
TRAIN_CHOICES = ("per_image", "per_instruction")  # the first, the default, is how Otter's authors make theirs
CONVERSATION_FIELDS = ("conversation", "round", "activity", "human_role", "reason")  # SN's, kept in the record
ROW_GROUP = 50_000  # instructions per Parquet row group
SWAP, COMMIT = ".swap", "export.commit"  # release files being written; the marker that they are all complete


def recover_release(out: str | Path) -> str | None:
    """Finish (commit marker present) or undo (absent) the swap of release files a crash interrupted."""
    out = Path(out)
    if not out.is_dir():
        return None
    return recover_swaps(out, COMMIT, sorted(out.glob("*" + SWAP)), SWAP,
                         debris=list(out.glob("*" + SWAP + ".tmp")))  # swap files killed while being written


def _commit(out: Path, finals: list[Path]) -> None:
    """Swap the complete ``<name>.swap`` files of ``finals`` in, under the commit marker."""
    for final in finals:
        sync_path(final.with_name(final.name + SWAP))
    commit_swaps(out, COMMIT, finals, SWAP, json.dumps([p.name for p in finals]) + "\n")


@dataclass
class ExportResult:
    """What ``export_run`` wrote, and what the caller should be told (``notes``, ``no_images_hint``)."""

    instructions: Path
    train: Path
    parquet: Path | None
    instructions_count: int = 0
    queries: int = 0
    images_missing: int = 0
    derived: int = 0  # queries whose image ids came from the scene's convention and the image file
    no_images: int = 0  # instructions exported with image_ids []
    no_images_hint: str | None = None  # how many, and the fix
    notes: list[str] = field(default_factory=list)
    dropped: int = 0  # near duplicates left out (dedup)
    dedup: dict[str, Any] | None = None  # the duplicate search's settings and counts
    judged: dict[str, Any] | None = None  # --min_score: the judge run read, and what it dropped
    grounding: dict[str, Any] | None = None  # --min_grounding / --drop_ungrounded: what it dropped


def _scene_from_meta(folder: Path) -> str | None:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (meta.get("dataset") or {}).get("scene")


def release_code(folder: Path, scene: str | None = None, prefix: str | None = None) -> str:
    """The code that names the release's files and ids: ``prefix``, else ``scene``, else the dataset's scene.

    >>> release_code(Path("output/Example/v1"), prefix="EX")
    'EX'
    """
    if scene and prefix:
        raise UserError("pass --scene (a MIMIC-IT scene) or --prefix (a code of your own), not both")
    if prefix:
        if not is_code(prefix):
            raise UserError(f"--prefix {prefix!r}: use capitals and digits, a capital first (e.g. --prefix EX "
                            "gives EX_INS_00001 and EX_IMG_...)")
        return prefix
    code = scene or _scene_from_meta(folder)
    if not code:
        raise UserError(f"{folder}: the dataset names no MIMIC-IT scene; pass --scene (e.g. --scene DC) for a "
                        "MIMIC-IT scene, or --prefix XX for a dataset of your own (ids XX_INS_00001, images "
                        "XX_IMG_...)")
    return code


@dataclass
class _Index:
    """The pairs file in query-id order (query id, offset), and what the image scan must collect."""

    entries: list[tuple[str, int]]
    pairs: int
    prefixes: set[str]  # frame prefixes whose frames are wanted
    need_present: bool  # whether the set of every image id is wanted (listed or derived still ids)
    notes: list[str]


def _wants(index: _Index, qid: str, meta: dict, code: str | None) -> None:
    """Note what the image scan must collect for one record (``code``: derive for bare records)."""
    if meta.get("image_prefix"):
        index.prefixes.add(meta["image_prefix"])
    elif meta.get("image_ids"):
        index.need_present = True
    elif code is not None:
        derived = query_images(code, qid)
        if derived is not None:
            index.need_present |= bool(derived.stills)
            if derived.prefix:
                index.prefixes.add(derived.prefix)


def _index(pairs_path: Path, code: str | None) -> _Index:
    """Read the pairs file once: offsets sorted by query id, each id once (a repeat is noted)."""
    index = _Index([], 0, set(), False, [])
    with pairs_path.open("rb") as f:
        offset = 0
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    qid = str(rec["id"])
                except (ValueError, KeyError, TypeError) as e:
                    raise UserError(f"{pairs_path}:{n}: not a pairs record ({e}); repair or remove that line") from e
                index.entries.append((qid, offset))
                index.pairs += len(rec.get("pairs") or [])
                _wants(index, qid, rec.get("meta") or {}, code)
            offset += len(line)
    index.entries.sort()
    unique: list[tuple[str, int]] = []
    for item in index.entries:
        if unique and unique[-1][0] == item[0]:
            index.notes.append(f"query {item[0]!r} appears twice in {pairs_path}; exported once")
            continue
        unique.append(item)
    index.entries = unique
    return index


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


class _Images:
    """Each query's image ids: what its plugin attached, else the scene's convention matched to the image file."""

    def __init__(self, code: str, images: Path | None, frames: _Frames, present: IdSet | None,
                 result: ExportResult):
        self.code, self.images, self.frames, self.present, self.result = code, images, frames, present, result
        self.unmatched: list[str] = []  # a few bare queries whose derived ids the image file does not have
        self.underivable: list[str] = []  # a few bare queries whose id the convention cannot turn into images
        self.by_prefix: list[str] = []  # a few frame prefixes of queries that name their frames only by prefix

    def of(self, qid: str, meta: dict) -> list[str]:
        prefix = meta.get("image_prefix")
        if self.images is not None and prefix:
            found = self.frames.get(prefix)
            if not found:
                self.result.notes.append(f"query {qid!r}: no frames with prefix {prefix!r} in {self.images}")
            return found
        listed = list(meta.get("image_ids") or [])
        if self.images is None and prefix and not listed and len(self.by_prefix) < 3:
            self.by_prefix.append(prefix)
        if self.present is not None:
            self.result.images_missing += sum(1 for i in listed if i not in self.present)
        if listed or prefix or self.images is None:
            return listed
        return self._derived(qid)

    def _derived(self, qid: str) -> list[str]:
        rule = query_images(self.code, qid)
        found = self._match(rule) if rule is not None else []
        if found:
            self.result.derived += 1
        else:
            examples = self.underivable if rule is None else self.unmatched
            if len(examples) < 3:
                examples.append(qid)
        return found

    def _match(self, rule: QueryImages) -> list[str]:
        present = self.present if self.present is not None else IdSet()
        stills = [next((i for i in alternatives if i in present), None) for alternatives in rule.stills]
        found = [i for i in stills if i is not None]
        if not found and rule.prefix:
            found = self.frames.get(rule.prefix)
        return found

    def hint(self, total: int) -> str | None:
        """How many instructions have no image ids, and the fix (None when all have some)."""
        n = self.result.no_images
        if not n:
            return None
        head = f"{n} of {total} instructions have no image_ids"
        if self.images is None:
            return f"{head}: {self._without_file()}"
        if self.underivable:
            return (f"{head}: {self.code} image ids cannot be derived from query ids such as "
                    f"{', '.join(map(repr, self.underivable))}; attach image_ids to each query in the plugin")
        if self.unmatched:
            return (f"{head}: {self.images} has no image for queries such as {', '.join(map(repr, self.unmatched))} "
                    f"by the {self.code} convention; check --scene and that the image file is this run's")
        return f"{head}: their frames are not in {self.images} (see the notes)"

    def _without_file(self) -> str:
        return _no_file_hint(self.code, self.by_prefix)


def _no_file_hint(code: str, by_prefix: list[str]) -> str:
    """Why instructions have no image ids when no image file was given, and the fix that fits the case.

    >>> _no_file_hint("SN", ["SN_IMG_scene0000_00_color_"])[:47]
    'their queries name their frames only by prefix '
    >>> "cannot be derived" in _no_file_hint("VST", [])
    True
    """
    family = image_family(code)
    if by_prefix:
        return (f"their queries name their frames only by prefix (such as {by_prefix[0]!r}; the {code} annotations "
                f"list no frames), so export lists them from the image file: export again with --images "
                f"{family}.parquet (syphus convert writes it{_LAYOUT_HINT.get(family, '')})")
    if family == "VST":
        return ("VST image ids (Flickr photo ids) cannot be derived from query ids, so an image file cannot add "
                "them: the queries must carry their photos' image_ids (the built-in VST plugin attaches each "
                "story's photo_flickr_id as VST_IMG_<id>; these queries came without)")
    return _plugin_hint(code, family)


_LAYOUT_HINT = {"SN": ": syphus convert --scene SN --images scannet/", "TVC": ", from videos or TVQA's frame folders"}


def _plugin_hint(code: str, family: str) -> str:
    """Queries with neither image ids nor a frame prefix: what a plugin written for the original Syphus sends."""
    if family in IMAGE_FAMILIES:
        return (f"no image ids came with their queries (a plugin written for the original Syphus attaches "
                f"none) and no image file was given. Export again with --images {family}.json (or .parquet) "
                f"to take them from the image file by the {code} convention, or attach image_ids to "
                "each query in the plugin")
    return (f"no image ids came with their queries. To link images, export again with --images {family}.json "
            f"(or .parquet) holding ids {family}_IMG_<query id> (or frames {family}_IMG_<query id>_<n>); "
            "a text-only dataset needs none")


def _train_entries(mode: str, kept: list[str], rel: str) -> list[tuple[str, list[str]]]:
    """The train file's entries for one query's kept instruction ids.

    ``per_image`` (the default): one entry per visual input, as Otter's own train-file maker writes
    them: the query's first instruction, its relatives the others (the trainer draws the in-context
    examples from them), so each image or video is seen once an epoch. ``per_instruction``: one entry
    per instruction, each with the others as relatives (a video with four pairs is seen four times).

    >>> _train_entries("per_image", ["A", "B", "C"], "same-input"), _train_entries("per_instruction", ["A", "B"], "none")
    ([('A', ['B', 'C'])], [('A', []), ('B', [])])
    """
    if not kept:
        return []
    if mode == "per_image":
        return [(kept[0], kept[1:] if rel == "same-input" else [])]
    return [(k, [j for j in kept if j != k] if rel == "same-input" else []) for k in kept]


def _conversation_fields(pair: dict[str, Any]) -> dict[str, Any]:
    """A pair's conversation fields (SN: which conversation and round, the activity, the human's role and the
    reason), kept in its instruction record; the trainer reads only the release's own keys."""
    return {k: pair[k] for k in CONVERSATION_FIELDS if pair.get(k) is not None}


def _instructions_table(path: Path) -> parquet_file.RowGroupWriter:
    pa, _ = parquet_file.modules("the instructions table")
    schema = pa.schema([("id", pa.string()), ("instruction", pa.string()), ("answer", pa.string()),
                        ("image_ids", pa.list_(pa.string())), ("rel_ins_ids", pa.list_(pa.string())),
                        ("query_id", pa.string()), ("scene", pa.string())])
    return parquet_file.RowGroupWriter(path, schema, rows=ROW_GROUP, index="id")


def export_run(folder: str | Path, scene: str | None = None, out_dir: str | Path | None = None,
               images: str | Path | None = None, rel: str = "same-input", author: str = "syphus",
               version: str = "0.0.1", parquet: bool = True,
               extra_meta: dict[str, Any] | None = None, prefix: str | None = None,
               dedup: float | None = None, min_score: float | None = None,
               train_mode: str = "per_image", min_grounding: float | None = None) -> ExportResult:
    """Write the release files of the run in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    pairs_path = folder / PAIRS
    if not pairs_path.exists():
        raise UserError(f"{folder}: no {PAIRS} here; pass a run folder such as output/DC/v1")
    code = release_code(folder, scene, prefix)
    if rel not in REL_CHOICES:
        raise UserError(f"--rel must be one of {', '.join(REL_CHOICES)}")
    if train_mode not in TRAIN_CHOICES:
        raise UserError(f"--train must be one of {', '.join(TRAIN_CHOICES)}")
    out = Path(out_dir) if out_dir else folder / "export"
    out.mkdir(parents=True, exist_ok=True)
    with Ledger.open(folder, code) as ledger:
        recover_release(out)
        return _export(folder, pairs_path, code, out, ledger, images, rel, author, version, parquet, extra_meta,
                       dedup, min_score, train_mode, min_grounding)


def _export(folder: Path, pairs_path: Path, code: str, out: Path, ledger: Ledger, images: str | Path | None,
            rel: str, author: str, version: str, parquet: bool, extra_meta: dict[str, Any] | None,
            dedup: float | None, min_score: float | None, train_mode: str,
            min_grounding: float | None = None) -> ExportResult:
    images = Path(images) if images else None
    index = _index(pairs_path, code if images else None)
    frames, present = _scan_images(images, index.prefixes, index.need_present) if images else (_Frames(), None)
    width = max(5, len(str(index.pairs)))
    stamp = datetime.now(timezone.utc).strftime("%Y-%m")
    meta = {"version": version, "time": stamp, "author": author, "generator": f"syphus {__version__}",
            **(extra_meta or {})}
    result = ExportResult(out / f"{code}_instructions.json", out / f"{code}_train.json", None, notes=index.notes)
    drop = None
    if dedup is not None:
        drop, result.dedup = filters.near_duplicates(pairs_path, index.entries, dedup)
        result.dropped = int(drop.sum())
        meta["dedup"] = {**result.dedup, "dropped": result.dropped, "kept": "the first by id of each cluster"}
    if min_score is not None:
        drop, result.judged = filters.low_scores(folder, pairs_path, index.entries, min_score, drop)
        meta["judge"] = result.judged
    if min_grounding is not None:
        drop, result.grounding = filters.ungrounded(folder, pairs_path, index.entries, min_grounding, drop)
        meta["grounding"] = result.grounding
    resolver = _Images(code, images, frames, present, result)

    table = None
    if parquet and parquet_file.available():
        result.parquet = out / f"{code}_instructions.parquet"
        table = _instructions_table(result.parquet.with_name(result.parquet.name + SWAP))
    elif parquet:
        result.notes.append(f"no Parquet table written: {parquet_file.HINT}")

    instructions = ObjectWriter(result.instructions.with_name(result.instructions.name + SWAP), meta)
    train = ObjectWriter(result.train.with_name(result.train.name + SWAP), None)
    number = written = 0
    with pairs_path.open("rb") as f:
        for qid, offset in index.entries:
            f.seek(offset)
            rec = json.loads(f.readline())
            pairs = rec.get("pairs") or []
            kept = [i for i in range(len(pairs)) if drop is None or not drop[number + i]]
            ids = ledger.ids(qid, len(pairs), width)
            number += len(pairs)
            image_list = resolver.of(qid, rec.get("meta") or {})
            result.queries += 1
            if not image_list:
                result.no_images += len(kept)
            for i in kept:
                pair = pairs[i]
                related = [ids[j] for j in kept if j != i] if rel == "same-input" else []
                instructions.add(ids[i], {"instruction": pair["instruction"], "answer": pair["answer"],
                                          "image_ids": image_list, "rel_ins_ids": related,
                                          **_conversation_fields(pair)})
                if table is not None:
                    table.add(ids[i], pair["instruction"], pair["answer"], image_list, related, qid, code)
            for key, related in _train_entries(train_mode, [ids[i] for i in kept], rel):
                train.add(key, related)
            written += len(kept)
        ledger.sync()
    instructions.close()
    train.close()
    if table is not None:
        table.close()
    _commit(out, [result.instructions, result.train, *([result.parquet] if table is not None else [])])
    result.instructions_count = written
    result.no_images_hint = resolver.hint(written)
    if result.images_missing:
        result.notes.append(f"{result.images_missing} image ids are not in {images}; run syphus validate for details")
    return result
