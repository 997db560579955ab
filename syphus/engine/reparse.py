"""Reparse: a run's raw replies parsed again with the dataset's current parser; no request is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from syphus.config import RunConfig
from syphus.engine.record import now_iso, parse_fields
from syphus.engine.store import INVALID, PAIRS, RunStore
from syphus.engine.workload import load_dataset, run_folder
from syphus.errors import UserError


def reparse(cfg: RunConfig) -> tuple[Path, dict[str, int]]:
    """Re-parse a run's raw replies with the dataset's current parser; no request is sent."""
    loaded = load_dataset(cfg)
    folder = run_folder(cfg, loaded.dataset)
    if not (folder / PAIRS).exists() and not (folder / INVALID).exists():
        raise UserError(f"{folder}: no finished run to re-parse here (no {PAIRS} or {INVALID}); "
                        "check --name, --dataset_version and --output_dir")
    dataset = loaded.dataset

    def transform(rec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        out = {k: v for k, v in rec.items() if k != "reason"}
        query_input = {**(rec.get("meta") or {}), "id": rec["id"]}
        out.update(parse_fields(dataset, query_input, rec.get("raw"), rec.get("finish_reason"),
                                rec.get("reply_format") or "text"))
        return out, bool(out["pairs"])

    with RunStore(folder) as store:
        counts = store.rewrite(transform)
        meta_path = folder / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta["counts"] = dict(store.totals)
            meta["reparsed_at"] = now_iso()
            store.write_meta(meta)
    return folder, counts
