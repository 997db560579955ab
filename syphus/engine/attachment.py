"""Attachment: a query's images, found by id in a release image file and put in its messages.

With ``--images XX.json|XX.parquet`` (what ``syphus convert`` writes) each query's image ids are
looked up in the file (``syphus.engine.imageindex``: an on-disk index, one value or one row group
read per lookup, so memory stays flat for files of many GB) and sent as ``image_url`` parts
(data URLs) after the text annotations, which stay. The ids are the query's ``image_ids`` when the
plugin attached them; else the frames that start with its ``image_prefix``; else what the scene's
convention derives from the query id (``syphus.engine.scenes.query_images``, as export does).

``--max_images N`` keeps N evenly spaced (deterministic), never more than the endpoint takes in one
request (``images.max_per_request``); ``--image_max_side`` resizes first; ``--image_detail`` is
sent with each part. Every image's tokens come from the provider's formula for the model of the
endpoint that takes the request (``syphus.engine.imagetokens``, ``configs/image_tokens.yaml``,
``Attacher.tokens_as``), from its size: they count in the rate limits, ``--max-cost``
reservations, ``--dry-run`` and the progress line like text tokens.

An image is prepared once and kept for the queries that share it (``PreparedImages``, bounded
in bytes by ``--image_cache_mb``, 64 by default: LA's COCO images serve LACONV, LADD and LACR
alike). An image stored as clean base64 that needs no resize (its size read from its header
alone) goes into the request as the very text it is stored as: never decoded, never encoded
again. Only an image over ``--image_max_side`` (or stored in another form) is decoded, resized
and encoded, in ``Attacher.read`` on a thread pool sized to the cores or ``--image_threads``
(OpenCV lets go of the GIL), so the event loop never waits on it.

A query whose images are missing from the file is an error record naming them (kind
``missing_images``: settled, it would fail the same way again), or with ``--allow_missing_images``
goes with the images that are there (text only if none), its record listing what was missing.
A request over the endpoint's size limit (``images.max_request_mb``) is that query's error
(``too_large``), naming the fix.

Where the images go is the plugin's ``attach_images`` (default: the last user message becomes its
text followed by the images; a video scene's frames are each labelled with the second they show:
from the record ``syphus convert`` keeps beside the image file, ``XX.frames.jsonl``, when there is one
(syphus.engine.samples), else from the frame's number).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from syphus.config import ImagesConfig
from syphus.engine.imagetokens import ImageTable, load_image_table
from syphus.errors import ItemError, UserError
from syphus.frames import MIME, DataUrl, image_part, resize, spread
from syphus.image import image_size, stored_size
from syphus.engine.imageindex import ImageIndex
from syphus.engine.samples import frame_times
from syphus.engine.scenes import query_images

log = logging.getLogger("syphus")


@dataclass(frozen=True)
class Frame:
    """One image sent with a query: its id, its chat part, where it falls among the query's frames, its tokens."""

    image_id: str
    part: dict[str, Any] = field(repr=False)
    position: int  # its place among all the query's frames (0-based), before any were left out
    total: int  # how many frames the query has in all
    tokens: int
    size: tuple[int, int] | None = None
    seconds: float | None = None  # the time it shows in its video, from convert's record (None: not recorded)


@dataclass
class Attached:
    """What a query carries: its frames (the parts already in ``messages``), and the ids the file lacked."""

    messages: list[dict[str, Any]]
    frames: list[Frame]
    missing: list[str]

    @property
    def tokens(self) -> int:
        return sum(f.tokens for f in self.frames)

    @property
    def image_ids(self) -> list[str]:
        return [f.image_id for f in self.frames]


# What an image costs when the editable table is not where the config says (a run outside the project
# folder): OpenAI's tile formula as for GPT-4o, low detail counted as high: never under-counts.
FALLBACK_ROW = {"method": "tiles", "base": 85, "tile": 170, "low": "high"}


def image_table(path: str) -> ImageTable:
    """The image token table at ``path``; the default path missing gives the conservative fallback, said once."""
    try:
        return load_image_table(path)
    except UserError:
        if path != ImagesConfig.model_fields["tokens"].default:
            raise
    log.warning("%s: no image token table here; every image is counted as GPT-4o counts it at high detail "
                "(set images.tokens to the table's path to count them for your model)", path)
    return ImageTable.from_mapping({"default": FALLBACK_ROW}, "<fallback>")


CACHE_BYTES = 64 << 20  # prepared images kept for the queries that share them (images.cache_mb's default)


class Prepared(NamedTuple):
    """An image as it goes on the wire: its data URL (shared by every part that sends it; a ``DataUrl``,
    spliced into request bodies as it is) and its size."""

    url: str
    size: tuple[int, int] | None


class PreparedImages:
    """Prepared images by id, the least recently used dropped once they pass ``max_bytes`` (thread-safe).

    >>> cache = PreparedImages(10)
    >>> cache.put("a", Prepared("data:x", None)); cache.put("b", Prepared("data:yyyy", None))
    >>> cache.get("a"), cache.get("b").url, cache.bytes
    (None, 'data:yyyy', 9)
    """

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, Prepared] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, image_id: str) -> Prepared | None:
        with self._lock:
            hit = self._items.get(image_id)
            if hit is not None:
                self._items.move_to_end(image_id)
            return hit

    def put(self, image_id: str, prepared: Prepared) -> None:
        size = len(prepared.url)
        if size > self.max_bytes:
            return  # bigger than the whole cache: sent, not kept
        with self._lock:
            old = self._items.pop(image_id, None)
            if old is not None:
                self.bytes -= len(old.url)
            self._items[image_id] = prepared
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self.bytes -= len(dropped.url)

    def __len__(self) -> int:
        return len(self._items)


class Attacher:
    """Finds, chooses, sizes and counts the images of each query; see the module docstring."""

    def __init__(self, cfg: ImagesConfig, model: str, scene: str | None = None, index: ImageIndex | None = None,
                 table: ImageTable | None = None, *, cache_bytes: int | None = None,
                 resizer: Callable[[bytes, int], bytes] = resize, workers: int | None = None):
        self.cfg = cfg
        self.model = model
        self.scene = scene
        self.index = index if index is not None else ImageIndex.open(cfg.path)
        self.table = table if table is not None else image_table(cfg.tokens)
        self.limit = min(cfg.max_images or cfg.max_per_request, cfg.max_per_request)
        self.times = frame_times(cfg.path) if cfg.path else {}
        # ``cache_bytes`` and ``workers`` (tests) stand in for images.cache_mb and images.threads
        self.prepared = PreparedImages(cache_bytes if cache_bytes is not None else int(cfg.cache_mb * 2**20))
        self.resizer = resizer
        workers = workers or cfg.threads or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="syphus-images")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.index.close()

    def __enter__(self) -> Attacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def image_ids(self, item: dict[str, Any]) -> list[str]:
        """The query's image ids: attached by the plugin, its frame prefix, else the scene's convention."""
        ids = item.get("image_ids")
        if isinstance(ids, (list, tuple)) and ids:
            return [str(i) for i in ids]
        prefix = item.get("image_prefix")
        if isinstance(prefix, str) and prefix:
            return self.index.with_prefix(prefix)
        rule = query_images(self.scene, str(item["id"])) if self.scene else None
        if rule is None:
            return []
        found = [next((i for i in still if i in self.index), still[0]) for still in rule.stills]
        if found and all(i in self.index for i in found):
            return found
        if rule.prefix:
            frames = self.index.with_prefix(rule.prefix)
            if frames:
                return frames
        return found  # what the convention names, to be reported missing

    def frames(self, item: dict[str, Any]) -> tuple[list[Frame], list[str]]:
        """The frames to send with ``item`` and the ids the file lacks; ItemError if any lack and that is not allowed."""
        found = self._frames(item, cached_only=False)
        assert found is not None
        return found

    def _frames(self, item: dict[str, Any], cached_only: bool) -> tuple[list[Frame], list[str]] | None:
        """``frames``; with ``cached_only``, None unless the plugin named the ids and every image is
        prepared already (then nothing touches the file, and the event loop may call it)."""
        if cached_only and not (isinstance(item.get("image_ids"), (list, tuple)) and item["image_ids"]):
            return None
        ids = self.image_ids(item)
        if not ids:
            return [], []
        positions = spread(list(range(len(ids))), self.limit)
        chosen = [ids[p] for p in positions]
        hits = [self.prepared.get(i) for i in chosen]
        if cached_only and None in hits:
            return None
        read = self.index.get_many([i for i, hit in zip(chosen, hits) if hit is None], stored=True)
        it = iter(read)
        datas = [hit if hit is not None else next(it) for hit in hits]
        missing = [i for i, d in zip(chosen, datas) if d is None]
        if missing and not self.cfg.allow_missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ItemError(f"{len(missing)} of the query's {len(chosen)} images are not in {self.cfg.path}: {shown}; "
                            "check the image file (syphus convert) or the plugin's image_ids, or run with "
                            "--allow_missing_images to send the query without them", kind="missing_images")
        out = []
        for position, image_id, data in zip(positions, chosen, datas):
            if data is None:
                continue
            ready = data if isinstance(data, Prepared) else self.prepare(image_id, data)
            w, h = ready.size or (2048, 2048)  # an unknown size is counted as large: a budget never under-counts
            part = {"type": "image_url", "image_url": {"url": ready.url, "detail": self.cfg.detail}}
            out.append(Frame(image_id, part, position, len(ids), self.table.tokens(self.model, w, h, self.cfg.detail),
                             ready.size, self.times.get(image_id)))
        return out, missing

    async def read(self, item: dict[str, Any]) -> tuple[list[Frame], list[str]]:
        """``frames(item)``: at once when its images are all prepared already (frames that queries share),
        else on the attacher's thread pool, so file reads, decodes and resizes stay off the event loop."""
        ready = self._frames(item, cached_only=True)
        if ready is not None:
            return ready
        return await asyncio.get_running_loop().run_in_executor(self.pool, self.frames, item)

    def prepare(self, image_id: str, stored: bytes | str) -> Prepared:
        """The image ``image_id`` (its stored base64 text, or its bytes) made ready to send, and kept.

        Stored text that fits ``--image_max_side`` is sent as it is: only its first bytes are decoded,
        to tell its format and read its size from the header.
        """
        try:
            prepared = self._prepare(stored)
        except ItemError as e:
            raise ItemError(f"{self.cfg.path}: the image {image_id!r}: {e}", kind=e.kind) from None
        self.prepared.put(image_id, prepared)
        return prepared

    def _prepare(self, stored: bytes | str) -> Prepared:
        max_side = self.cfg.max_side
        if isinstance(stored, str):
            ext, size = stored_size(stored)
            if ext is not None and ext in MIME and size is not None and (not max_side or max(size) <= max_side):
                return Prepared(DataUrl(f"data:{MIME[ext]};base64,{stored}"), size)
            stored = base64.b64decode(stored)  # a header past the first bytes, or too large: decoded after all
        data = self.resizer(stored, max_side) if max_side else stored
        return Prepared(DataUrl(image_part(data)["image_url"]["url"]), image_size(data))

    def tokens_as(self, model: str | None, frames: list[Frame]) -> int:
        """What ``frames`` cost in tokens as ``model`` counts them (None: the attacher's own model)."""
        if model is None or model == self.model:
            return sum(f.tokens for f in frames)
        return sum(self.table.tokens(model, *(f.size or (2048, 2048)), self.cfg.detail) for f in frames)

    def attach(self, dataset: Any, item: dict[str, Any], messages: list[dict[str, Any]]) -> Attached:
        """``messages`` with the query's images placed by the plugin's ``attach_images``, checked for size."""
        return self.place(dataset, item, messages, *self.frames(item))

    def place(self, dataset: Any, item: dict[str, Any], messages: list[dict[str, Any]], frames: list[Frame],
              missing: list[str]) -> Attached:
        """``attach`` once the frames are read (``frames`` reads the file: call it off the event loop)."""
        if frames:
            messages = dataset.attach_images(item, messages, frames)
            size = sum(len(f.part["image_url"]["url"]) for f in frames)
            if size > self.cfg.max_request_mb * 2**20:
                raise ItemError(f"the query's {len(frames)} images take {size / 2**20:.1f} MB, over the endpoint's "
                                f"{self.cfg.max_request_mb:g} MB a request (images.max_request_mb); send fewer "
                                "(--max_images) or smaller ones (--image_max_side)", kind="too_large")
        return Attached(messages, frames, missing)

