"""The Files and Batches routes of an endpoint, through the official ``openai`` SDK on aiohttp.

The SDK's own retries are off (``syphus.engine.retry`` is the one retry layer) and its failures
are mapped by ``syphus.engine.client`` like those of chat completions. ``engine/batch`` drives it.

>>> async with BatchAPI(endpoint) as api:             # doctest: +SKIP
...     f = await api.upload(path, "syphus-ab12-0001.jsonl")
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import openai

from syphus import kinds
from syphus.durable import atomic_file
from syphus.engine.client import classify_sdk_error
from syphus.engine.endpoint import Endpoint
from syphus.errors import TransientError
from syphus.redaction import Redactor


def sdk_client(endpoint: Endpoint, timeout: float) -> tuple[openai.AsyncOpenAI, dict[str, Any]]:
    """The SDK client for the Files and Batches routes of ``endpoint``, and the headers each call adds.

    It runs on aiohttp (``DefaultAioHttpClient``), takes proxies from the environment like the
    online session (``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY``), never retries by itself
    (``max_retries=0``), and signs requests with the endpoint's own headers: what the SDK
    would add from the process environment (``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``) is left
    out unless the endpoint sends it too.
    """
    query = dict(parse_qsl(endpoint.api_query.lstrip("?")))
    headers = {"OpenAI-Organization": openai.omit, "OpenAI-Project": openai.omit, **endpoint.headers}
    common: dict[str, Any] = {
        "base_url": endpoint.api_root, "timeout": timeout, "max_retries": 0, "default_headers": headers,
        "http_client": openai.DefaultAioHttpClient(timeout=timeout, trust_env=True)}
    return kinds.get(endpoint.kind).batch_client(endpoint, query, common)


class BatchAPI:
    """The Files and Batches routes of an endpoint; failures map to the same error tree as chat."""

    page_size = 100  # batches per page of a listing (the SDK reads every page)

    def __init__(self, endpoint: Endpoint, timeout: float = 600.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self.redact = Redactor(endpoint.secrets)  # what the server says may echo the key: never shown
        self._client: openai.AsyncOpenAI | None = None
        self._extra: dict[str, Any] = {}

    async def __aenter__(self) -> BatchAPI:
        self._client, self._extra = sdk_client(self.endpoint, self.timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> openai.AsyncOpenAI:
        assert self._client is not None, "use 'async with BatchAPI(...)'"
        return self._client

    @contextlib.contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Raise SDK and transport failures inside as the error tree's (``classify_sdk_error``)."""
        try:
            yield
        except Exception as e:
            mapped = classify_sdk_error(e, what, self.timeout)
            if mapped is None:
                raise
            raise self.redact.exception(mapped) from None

    def _object(self, what: str, result: Any) -> dict[str, Any]:
        """A file or batch object as the JSON it came as; TransientError ``malformed`` if it is not one."""
        data = result.to_dict(mode="json") if isinstance(result, openai.BaseModel) else None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise TransientError(f"{what}: malformed response body", kind="malformed")
        return data

    async def upload(self, path: Path, filename: str) -> dict[str, Any]:
        what = f"uploading {filename}"
        with self._mapped(what):
            f = await self.client.files.create(file=(filename, path.read_bytes(), "application/jsonl"),
                                               purpose="batch", extra_headers=self._extra)
        return self._object(what, f)

    async def files(self) -> list[dict[str, Any]]:
        """Every file of the account uploaded for batches (all pages)."""
        what = "listing files"
        with self._mapped(what):
            return [self._object(what, f)
                    async for f in self.client.files.list(purpose="batch", extra_headers=self._extra)]

    async def create(self, input_file_id: str, url: str, window: str, metadata: dict[str, str]) -> dict[str, Any]:
        what = f"creating the batch of {input_file_id}"
        with self._mapped(what):
            b = await self.client.batches.create(input_file_id=input_file_id, endpoint=url,  # type: ignore[arg-type]
                                                 completion_window=window,  # type: ignore[arg-type]
                                                 metadata=metadata, extra_headers=self._extra)
        return self._object(what, b)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        what = f"polling batch {batch_id}"
        with self._mapped(what):
            b = await self.client.batches.retrieve(batch_id, extra_headers=self._extra)
        return self._object(what, b)

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        what = f"cancelling batch {batch_id}"
        with self._mapped(what):
            b = await self.client.batches.cancel(batch_id, extra_headers=self._extra)
        return self._object(what, b)

    async def batches(self) -> Iterator[dict[str, Any]]:
        """Every batch of the account, newest first (all pages)."""
        what = "listing batches"
        with self._mapped(what):
            found = [self._object(what, b)
                     async for b in self.client.batches.list(limit=self.page_size, extra_headers=self._extra)]
        return iter(found)

    async def download(self, file_id: str, dest: Path) -> None:
        """Save a file's content at ``dest``, durably and whole (or not at all)."""
        with self._mapped(f"downloading file {file_id}"):
            async with self.client.files.with_streaming_response.content(file_id, extra_headers=self._extra) as resp:
                with atomic_file(dest, "wb") as f:
                    async for chunk in resp.iter_bytes():
                        f.write(chunk)
