"""Workload: a run's dataset loaded from its plugin, its folder, and its query inputs checked and streamed.

>>> _safe("DC/v1 (test)")
'DC_v1__test_'
"""

from __future__ import annotations

import contextlib
import itertools
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syphus import plugins
from syphus.config import RunConfig
from syphus.dataset import AbstractDataset
from syphus.errors import SyphusError, UserError
from syphus.inputs import SKIPPED_EMPTY, InputCheck, check_inputs, run_stream


@dataclass
class LoadedDataset:
    """A plugin's dataset built, and the file it came from (``source`` is how errors name it)."""

    dataset: AbstractDataset
    path: Path

    @property
    def source(self) -> str:
        return f"{self.path} ({type(self.dataset).__name__})"


def load_dataset(cfg: RunConfig) -> LoadedDataset:
    """Resolve ``cfg.name`` to a plugin class and build it."""
    if not cfg.name:
        raise UserError("no dataset given: pass --name module.Class (see the datasets/ folder)")
    cls, path = plugins.resolve(cfg.name, cfg.datasets_dir)
    return LoadedDataset(plugins.instantiate(cls, path, cfg.prompt_path, cfg.query_inputs_path), path)


def _safe(part: str) -> str:
    return re.sub(r"[^\w.-]", "_", part) or "_"


def run_folder(cfg: RunConfig, dataset: AbstractDataset) -> Path:
    """``<output_dir>/<dataset name>/<dataset_version>``."""
    return Path(cfg.output_dir) / _safe(str(dataset.name)) / _safe(cfg.dataset_version)


@dataclass
class Inputs:
    """A run's query inputs once checked: the stream to send, how many it holds, and the check."""

    items: Iterator[dict[str, Any]]
    total: int
    check: InputCheck


def prepare_inputs(loaded: LoadedDataset, cfg: RunConfig) -> Inputs:
    """Check every query input (a UserError before anything is sent), then the stream to send.

    The stream is read anew, blank items left out, repeated ids handled as ``cfg.on_duplicate``
    says, then ``--random_sample`` and slicing applied; ``total`` is its length. Close
    ``Inputs.check`` when done.
    """
    check = check_inputs(loaded.dataset, loaded.source, cfg.on_duplicate)
    items: Iterator[dict[str, Any]] = guarded(run_stream(loaded.dataset, check, loaded.source), loaded.source)
    items, total = _sampled(items, check.queries, cfg)
    return Inputs(items, total, check)


def _sampled(items: Iterator[dict[str, Any]], total: int, cfg: RunConfig) -> tuple[Iterator[dict[str, Any]], int]:
    """``items`` after ``--random_sample`` and slicing, and how many are left."""
    if cfg.random_sample:  # shuffling needs every item at once; the seed keeps resumes in the same order
        pool = list(items)
        random.Random(cfg.seed).shuffle(pool)
        items, total = iter(pool), len(pool)
    end = cfg.slice_end if cfg.slice_end > 0 else None
    if cfg.slice_start or end is not None:
        items = itertools.islice(items, cfg.slice_start, end)
        total = max(0, min(total, end if end is not None else total) - cfg.slice_start)
    return items, total


def guarded(items: Iterator[dict[str, Any]], source: str) -> Iterator[dict[str, Any]]:
    """``items``, with anything plugin code raises while they stream turned into one UserError."""
    try:
        yield from items
    except SyphusError:
        raise
    except Exception as e:
        raise UserError(f"{source}: reading query inputs failed: {type(e).__name__}: {e}") from e


def write_skipped_empty(folder: Path, check: InputCheck) -> None:
    """``<folder>/skipped_empty.txt``: the ids of the blank items, one a line (no file when there are none)."""
    path = folder / SKIPPED_EMPTY
    if check.empty:
        check.write_blank_ids(path)
    else:
        path.unlink(missing_ok=True)


def make_attacher(cfg: RunConfig, dataset: AbstractDataset, model: str) -> contextlib.AbstractContextManager:
    """``--images``: what finds and counts each query's images (their tokens as ``model`` counts them unless
    the endpoint that takes a request counts them otherwise, ``Attacher.tokens_as``); else nothing."""
    if not cfg.images.path:
        return contextlib.nullcontext(None)
    from syphus.engine.attachment import Attacher
    return Attacher(cfg.images, model, getattr(dataset, "scene", None))
