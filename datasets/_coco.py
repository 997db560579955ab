"""COCO annotation files, read for the LA and CGD plugins (a helper, not a plugin: its name starts with ``_``).

The standard COCO 2017 download holds, per split, ``captions_<split>.json``::

    {"images": [{"id": 139, "file_name": "000000000139.jpg", "width": 640, "height": 426, ...}, ...],
     "annotations": [{"image_id": 139, "id": 1, "caption": "A living room with a couch."}, ...], ...}

and ``instances_<split>.json``::

    {"images": [...], "annotations": [{"image_id": 139, "category_id": 62, "bbox": [x, y, w, h], ...}, ...],
     "categories": [{"id": 62, "name": "chair", "supercategory": "furniture"}, ...], ...}

Each is one JSON document, so it is json.load-ed whole (instances_train2017.json needs a few GB of
memory while it loads); only the compact index below is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syphus.dataset import load_json
from syphus.errors import UserError


@dataclass
class CocoImage:
    id: int
    file_name: str
    captions: list[str] = field(default_factory=list)
    boxes: list[tuple[str, list[float]]] = field(default_factory=list)  # (category name, [x, y, w, h])

    @property
    def stem(self) -> str:
        """The file name without its extension: ``000000000139.jpg`` -> ``000000000139``."""
        return Path(self.file_name).stem

    def lines(self) -> list[str]:
        """The captions, one a line, then one ``category: [x, y, w, h]`` line per box."""
        return self.captions + [f"{name}: [{', '.join(number(v) for v in box)}]" for name, box in self.boxes]


def number(value: float) -> str:
    """A coordinate rounded to 2 decimals, written without trailing zeros: 12.0 -> '12', 3.456 -> '3.46'."""
    text = f"{round(float(value), 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def locate(path: Any, split: str, hint: str) -> tuple[Path, str]:
    """(folder, split) from a folder holding ``captions_<split>.json`` or from a path to one such file.

    ``hint`` ends the error message: what the plugin's ``query_inputs_path`` should be.
    """
    p = Path(path)
    if p.is_file() and p.name.startswith("captions_") and p.suffix == ".json":
        return p.parent, p.stem[len("captions_"):]
    if p.is_dir():
        if not (p / f"captions_{split}.json").is_file():
            found = sorted(f.name for f in p.glob("captions_*.json"))
            also = f" (found {', '.join(found)}; the split is the plugin's class attribute 'split')" if found else ""
            raise UserError(f"{p}: no captions_{split}.json in this folder{also}; {hint}")
        return p, split
    raise UserError(f"{p}: not found; {hint}")


def _load_json(path: Path) -> Any:
    if not path.exists():
        raise UserError(f"{path}: not found; the COCO folder needs captions_<split>.json and "
                        "instances_<split>.json side by side")
    return load_json(path, "COCO annotation file")


def _list(doc: Any, key: str, path: Path) -> list:
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise UserError(f"{path}: expected a JSON object with a list {key!r} (a COCO annotation file)")
    return doc[key]


def _image_id(value: Any, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{path}: {where} has image id {value!r}; COCO image ids are integers")
    return value


def load(folder: Path, split: str) -> dict[int, CocoImage]:
    """{image id: CocoImage} for every image of the captions file, in that file's order, with its boxes."""
    cap_path, inst_path = folder / f"captions_{split}.json", folder / f"instances_{split}.json"
    captions = _load_json(cap_path)
    images: dict[int, CocoImage] = {}
    for n, img in enumerate(_list(captions, "images", cap_path)):
        if not isinstance(img, dict) or not isinstance(img.get("file_name"), str):
            raise UserError(f"{cap_path}: images[{n}] has no 'file_name' string")
        iid = _image_id(img.get("id"), cap_path, f"images[{n}]")
        images[iid] = CocoImage(iid, img["file_name"])
    for n, ann in enumerate(_list(captions, "annotations", cap_path)):
        if not isinstance(ann, dict):
            raise UserError(f"{cap_path}: annotations[{n}] is a {type(ann).__name__}, not an object")
        iid = _image_id(ann.get("image_id"), cap_path, f"annotations[{n}]")
        if iid not in images:
            raise UserError(f"{cap_path}: annotations[{n}] refers to image {iid}, which is not in 'images'")
        caption = ann.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise UserError(f"{cap_path}: annotations[{n}] (image {iid}) has no 'caption' text")
        images[iid].captions.append(" ".join(caption.split()))
    del captions

    instances = _load_json(inst_path)
    names: dict[int, str] = {}
    for n, cat in enumerate(_list(instances, "categories", inst_path)):
        if not isinstance(cat, dict) or not isinstance(cat.get("name"), str) or not isinstance(cat.get("id"), int):
            raise UserError(f"{inst_path}: categories[{n}] needs an integer 'id' and a 'name'")
        names[cat["id"]] = cat["name"]
    for n, ann in enumerate(_list(instances, "annotations", inst_path)):
        if not isinstance(ann, dict):
            raise UserError(f"{inst_path}: annotations[{n}] is a {type(ann).__name__}, not an object")
        iid = _image_id(ann.get("image_id"), inst_path, f"annotations[{n}]")
        if iid not in images:
            continue  # an image without captions is not a query
        cid, box = ann.get("category_id"), ann.get("bbox")
        if cid not in names:
            raise UserError(f"{inst_path}: annotations[{n}] (image {iid}) has category_id {cid!r}, "
                            "which is not in 'categories'")
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            raise UserError(f"{inst_path}: annotations[{n}] (image {iid}) has bbox {box!r}; "
                            "expected [x, y, width, height] numbers")
        images[iid].boxes.append((names[cid], box))
    return images
