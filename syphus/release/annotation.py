"""Annotation: each query's annotation (its ``sentences``) for a run folder, read again from the plugin that
made it (the run's ``meta.json`` names the plugin file, its class and its paths). The judge sends it beside
the pairs; the viewer shows it beside each pair.

>>> notes = Annotations(Path("output/Example/v1"), wanted)   # doctest: +SKIP
>>> notes.get("scene_0001")                                 # doctest: +SKIP
'A kitchen with ...'
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

from syphus import plugins
from syphus.errors import UserError
from syphus.idset import IdSet


class Annotations:
    """Each query's annotation (its ``sentences``) for a run folder, read again from the plugin that made it.

    The run's ``meta.json`` names the plugin file, its class and its paths. Only the ids in
    ``wanted`` are kept, in a temporary SQLite file, so memory stays flat at 10^6 queries; an id
    the plugin gives more than once has its sentences joined, as ``--on_duplicate merge`` would.
    """

    def __init__(self, run: Path, wanted: IdSet):
        meta_path = run / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ds = meta["dataset"]
            plugin, class_name = Path(ds["plugin"]), ds["class"]
        except FileNotFoundError:
            raise UserError(f"{meta_path}: not found; pass a run folder made by syphus (e.g. output/DC/v1)") from None
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"{meta_path}: no readable 'dataset' entry ({e}); pass a run folder made by syphus") \
                from None
        if not plugin.exists():
            raise UserError(f"{meta_path}: the run was made by {plugin}, which is not there; work from the "
                            "project folder the run was made in")
        classes = plugins.classes_in(plugins.load_module(plugin))
        if class_name not in classes:
            raise UserError(f"{plugin} no longer defines {class_name!r} (named in {meta_path})")
        dataset = plugins.instantiate(classes[class_name], plugin, ds.get("prompt_path"), ds.get("query_inputs_path"))
        self._dir = tempfile.TemporaryDirectory(prefix="syphus-annotations-")
        self._db = sqlite3.connect(Path(self._dir.name) / "annotations.sqlite")
        self._db.execute("CREATE TABLE a (id TEXT PRIMARY KEY, sentences TEXT, images INTEGER)")
        batch: list[tuple[str, str, int | None]] = []
        for item in dataset.iter_query_inputs(f"{plugin} ({class_name})", unique=False):
            if item["id"] in wanted:
                image_ids = item.get("image_ids")
                batch.append((item["id"], item["sentences"],
                              len(image_ids) if isinstance(image_ids, list) and image_ids else None))
                if len(batch) >= 4096:
                    self._store(batch)
        self._store(batch)

    def _store(self, batch: list[tuple[str, str, int | None]]) -> None:
        self._db.executemany("INSERT INTO a VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                             "sentences = sentences || char(10) || excluded.sentences, "
                             "images = max(coalesce(images, 0), coalesce(excluded.images, 0))", batch)
        self._db.commit()
        batch.clear()

    def get(self, qid: str) -> str | None:
        row = self._db.execute("SELECT sentences FROM a WHERE id = ?", (qid,)).fetchone()
        return row[0] if row else None

    def images(self, qid: str) -> int | None:
        """How many images the plugin gives the query (None: none named, or not known)."""
        row = self._db.execute("SELECT images FROM a WHERE id = ?", (qid,)).fetchone()
        return row[0] or None if row else None

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()
