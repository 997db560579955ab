"""Validate: check release files against each other and the format, streaming.

Checks an ``XX_instructions.json`` (and optionally ``XX_train.json`` and the image
file ``XX.json``/``.parquet``): structure, unknown or duplicate ids, ids off the
scene's convention, empty instructions or answers, ``image_ids`` missing from the
image file, ``rel_ins_ids`` and train entries pointing at missing instructions,
and the known defect classes of the public release (doubled TVC clip names,
``scene0000`` for ``scene0000_00``, unpadded SD ids). Memory holds ids only.

Two more things keep a release from training: an instruction with no ``image_ids`` in a
MIMIC-IT scene (an error unless ``allow_no_images``; a warning for a code of one's own), and a
Parquet image file whose ids are not the table's index (the trainer's ``pandas.read_parquet(path)
.loc[image_id]`` finds nothing). The image file holds one image per id: an id it repeats and an
image that cannot be decoded (bad base64, null) are errors, named by id (the repeats are found
through the image index, built next to the file as a run would). Two warnings: a JSON image file (the current trainer reads Parquet
only; the fix is ``syphus convert --rewrite``), and ids inside the image file that break the scene's
convention (``SN_IMG_000000``). Each kind of problem may carry its fix (``Report.fixes``).

>>> report = validate_files("DC_instructions.json", train="DC_train.json", images="DC.json")  # doctest: +SKIP
>>> print(report.render()); report.ok                                                          # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from syphus.engine import parquet
from syphus.release.diskjoin import DiskJoin
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.engine.imageindex import ImageIndex
from syphus.image import image_bytes
from syphus.release.images import image_items
from syphus.release.jsonstream import iter_members, read_first
from syphus.engine.scenes import (IMAGE_FAMILIES, SCENES, image_family, image_id_fixes, image_id_problem,
                                   scene_of_instruction)

EXAMPLES = 3
NO_IMAGES = "no image_ids"
NOT_INDEXED = "image ids are not the Parquet table's index"


@dataclass
class Report:
    """Problems by kind, with counts and a few examples; ``ok`` when there is no error."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    errors: set[str] = field(default_factory=set)
    fixes: dict[str, str] = field(default_factory=dict)  # kind -> how to fix it
    stats: dict[str, int] = field(default_factory=dict)
    scene: str | None = None
    ids: IdSet = field(default_factory=IdSet, repr=False)

    def add(self, kind: str, example: str, error: bool = True) -> None:
        self.counts[kind] += 1
        ex = self.examples.setdefault(kind, [])
        if len(ex) < EXAMPLES:
            ex.append(example)
        if error:
            self.errors.add(kind)

    @property
    def ok(self) -> bool:
        return not self.errors

    def render(self) -> str:
        head = ", ".join(f"{v} {k}" for k, v in self.stats.items())
        lines = [f"scene {self.scene or '?'}: {head}"]
        for kind, n in self.counts.most_common():
            level = "error" if kind in self.errors else "warning"
            lines.append(f"  {level}: {kind}: {n}")
            lines += [f"      e.g. {e}" for e in self.examples[kind]]
            if kind in self.fixes:
                lines.append(f"      fix: {self.fixes[kind]}")
        lines.append("OK: no errors" if self.ok else f"FAILED: {sum(self.counts[k] for k in self.errors)} errors")
        return "\n".join(lines)


def _infer_scene(path: Path) -> str | None:
    stem = path.name.split("_instructions")[0]
    return stem if stem and stem != path.name else None


def validate_files(instructions: str | Path, train: str | Path | None = None, images: str | Path | None = None,
                   scene: str | None = None, allow_no_images: bool = False) -> Report:
    """Validate release files; see the module docstring for what is checked."""
    ins_path = Path(instructions)
    report = Report(scene=scene or _infer_scene(ins_path))
    if not ins_path.exists():
        raise UserError(f"{ins_path}: file not found")
    if not isinstance(read_first(ins_path, "meta"), dict):
        report.add("no 'meta' object first in the file", str(ins_path), error=False)
    if images and Path(images).suffix == ".parquet" and Path(images).is_file():
        _check_parquet_index(Path(images), report)
    if images:
        _check_image_format(Path(images), report)

    join = None
    if images:  # image ids go to disk buckets: millions of frames, flat memory
        join = DiskJoin()
        n = 0
        for image_id, value in image_items(images):
            join.present(image_id)
            _check_image_file_id(image_id, report)
            _check_image_value(image_id, value, report)
            n += 1
        report.stats["images"] = n
        _check_repeated(Path(images), report)
    try:
        _check_instructions(ins_path, report, join, allow_no_images)
        if train:
            _check_train(Path(train), report)
    finally:
        if join is not None:
            join.close()
    return report


def _check_parquet_index(path: Path, report: Report) -> None:
    """An error, with the command that rewrites the file, when the ids are not the table's index."""
    problem = parquet.index_problem(path)
    if problem:
        report.add(NOT_INDEXED, f"{path}: {problem}")
        report.fixes[NOT_INDEXED] = (f"syphus convert --rewrite {path} --parquet {path} (rewrites it in place, "
                                     "nothing re-encoded), or re-run syphus convert ... --parquet")


JSON_IMAGES = "a JSON image file loads only in older trainers"
MALFORMED_IN_FILE = "image file ids off the scene's convention"


def _check_image_format(path: Path, report: Report) -> None:
    """A warning for a JSON image file: the current MIMIC-IT trainer reads images from Parquet only."""
    if path.suffix.lower() == ".json":
        report.add(JSON_IMAGES, f"{path}: the current MIMIC-IT trainer reads image files as Parquet "
                                "(pandas.read_parquet(path).loc[image_id]); a {id: base64} JSON file fails there",
                   error=False)
        report.fixes[JSON_IMAGES] = (f"syphus convert --rewrite {path} --parquet {path.with_suffix('.parquet')} "
                                     "(nothing re-encoded)")


def _check_image_file_id(image_id: str, report: Report) -> None:
    """A warning for an id in the image file that breaks the scene's convention (``SN_IMG_000000``)."""
    problem = image_id_problem(image_id, report.scene) if report.scene in SCENES else None
    if problem:
        report.add(MALFORMED_IN_FILE, f"{image_id}: {problem}", error=False)
        report.fixes[MALFORMED_IN_FILE] = ("no query finds an image by such an id; convert the images again "
                                           "(syphus convert reads each scene's public layout, e.g. ScanNet's "
                                           "scene0000_00/color/000000.jpg for SN)")


REPEATED = "image ids repeated in the image file"
UNDECODABLE = "images that cannot be decoded"


def _check_image_value(image_id: str, value, report: Report) -> None:
    """An error for an image whose value is no image: a lookup fails on it, it is not 'missing'."""
    try:
        image_bytes(value)
    except ValueError as e:
        report.add(UNDECODABLE, f"{image_id}: {e}")
        report.fixes[UNDECODABLE] = "convert these images again (syphus convert) or drop their ids"


def _check_repeated(path: Path, report: Report) -> None:
    """An error for each id the image file holds more than once (the image index refuses such a file)."""
    with ImageIndex.open(path, allow_repeats=True) as index:
        for image_id, copies in index.repeated():
            report.add(REPEATED, f"{image_id}: {copies} copies")
            report.fixes[REPEATED] = ("one image per id: keep one copy of each (convert the images again with "
                                      "syphus convert); the image index refuses the file until then")


def _no_images(report: Report, ins_id: str, allow: bool) -> None:
    """An instruction without images: an error in a MIMIC-IT scene (unless allowed), else a warning."""
    scene = report.scene or ""
    error = not allow and image_family(scene) in IMAGE_FAMILIES
    report.add(NO_IMAGES, ins_id, error=error)
    if error:
        report.fixes[NO_IMAGES] = (f"export again with --images {image_family(scene)}.json (or .parquet) so image "
                                   "ids are taken from the image file by the scene's convention, or pass "
                                   "--allow-no-images if these instructions are meant to have none")


def _check_instructions(ins_path: Path, report: Report, join: DiskJoin | None, allow_no_images: bool) -> None:
    # pass 1: entries, their own fields, image ids
    ids = IdSet()
    for ins_id, entry in iter_members(ins_path, within="data"):
        if not ids.add(ins_id):
            report.add("duplicate instruction id", ins_id)
            continue
        scene_of = scene_of_instruction(ins_id)
        if report.scene is None:
            report.scene = scene_of
        if scene_of is None or (report.scene and scene_of != report.scene):
            report.add("instruction id off the convention", f"{ins_id} (expected {report.scene or 'XX'}_INS_<n>)")
        if not isinstance(entry, dict):
            report.add("entry is not an object", ins_id)
            continue
        for key in ("instruction", "answer"):
            value = entry.get(key)
            if not isinstance(value, str):
                report.add(f"missing or non-string '{key}'", ins_id)
            elif not value.strip():
                report.add(f"empty {key}", ins_id)
        image_list = entry.get("image_ids")
        if not isinstance(image_list, list) or not all(isinstance(i, str) for i in image_list):
            report.add("'image_ids' is not a list of strings", ins_id)
            image_list = []
        elif not image_list:
            _no_images(report, ins_id, allow_no_images)
        for image_id in image_list:
            problem = image_id_problem(image_id, report.scene) if report.scene else None
            if problem:
                report.add(problem.split(" (")[0], f"{ins_id}: {image_id}: {problem}")
            if join is not None:
                join.reference(image_id)
                for fix in image_id_fixes(image_id):
                    join.reference(fix, group="fixes")
        if not isinstance(entry.get("rel_ins_ids", []), list):
            report.add("'rel_ins_ids' is not a list", ins_id)
    report.stats["instructions"] = len(ids)
    report.ids = ids

    # pass 2: references, now that every instruction id (and which images are missing) is known
    missing_images = join.missing() if join is not None else set()
    missing_fixes = join.missing("fixes") if join is not None else set()
    kind = "image id missing from the image file"
    key = DiskJoin.key
    for ins_id, entry in iter_members(ins_path, within="data"):
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("rel_ins_ids"), list):
            for rel in entry["rel_ins_ids"]:
                if rel not in ids:
                    report.add("rel_ins_ids pointing at a missing instruction", f"{ins_id} -> {rel}")
        if missing_images and isinstance(entry.get("image_ids"), list):
            for image_id in entry["image_ids"]:
                if isinstance(image_id, str) and key(image_id) in missing_images:
                    fixed = [f for f in image_id_fixes(image_id) if key(f) not in missing_fixes]
                    hint = f" (the file has {fixed[0]})" if fixed else ""
                    report.add(kind, f"{ins_id}: {image_id}{hint}")
    if join is not None and join.missing_counts["refs"]:
        report.counts[kind] = join.missing_counts["refs"]  # exact even past the example set's limit
        report.errors.add(kind)
    if not len(ids):
        report.add("no instructions", str(ins_path))


def _check_train(train: Path, report: Report) -> None:
    ids = report.ids
    n = 0
    for ins_id, related in iter_members(train):
        n += 1
        if ins_id not in ids:
            report.add("train entry for an unknown instruction", ins_id)
        if not isinstance(related, list):
            report.add("train entry is not a list", ins_id)
            continue
        for rel in related:
            if rel not in ids:
                report.add("train entry pointing at a missing instruction", f"{ins_id} -> {rel}")
    report.stats["train entries"] = n
