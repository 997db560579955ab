"""The chat-completions client: one POST per call over aiohttp, errors mapped to the tree.

There are no retries here (``syphus.retry`` owns them); every failure becomes
exactly one of ``TransientError`` / ``RateLimited`` (retry), ``ItemError``
(record it) or ``FatalError`` (stop the run).

>>> async def main():                                   # doctest: +SKIP
...     async with ChatClient(endpoint, GenerationConfig()) as client:
...         reply = await client.complete([{"role": "user", "content": "hi"}])
...         print(reply.text, reply.usage)

Imports: aiohttp, syphus.config, syphus.endpoint, syphus.errors.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from syphus.config import GenerationConfig
from syphus.endpoint import Endpoint
from syphus.errors import FatalError, ItemError, RateLimited, TransientError

_CONTENT_FILTER = {"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"}


@dataclass
class Completion:
    """One reply: its text and everything worth recording about it."""

    text: str | None
    finish_reason: str | None
    usage: dict[str, Any]
    model: str | None
    latency: float
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's wait hint: ``retry-after-ms``, else ``retry-after`` in seconds or as an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


def _error_info(body: bytes) -> tuple[str, str]:
    """(code, message) from an OpenAI-style error body, tolerant of anything."""
    try:
        data = json.loads(body)
    except ValueError:
        return "", body[:300].decode("utf-8", "replace").strip()
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or err.get("type") or "")
        inner = err.get("innererror")
        if isinstance(inner, dict) and inner.get("code"):
            code = str(inner["code"])
        return code, str(err.get("message") or "")[:300]
    if isinstance(err, str):
        return "", err[:300]
    return "", str(data)[:300]


def classify(status: int, headers: Mapping[str, str], body: bytes) -> Exception:
    """The error a non-200 response stands for."""
    code, message = _error_info(body)
    detail = f"HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    hint = retry_after_seconds(headers)
    if status == 429:
        if code == "insufficient_quota":
            return FatalError(f"{detail}. The account has no quota left; add credit or raise the limit, "
                              "then run the same command again to resume", status)
        return RateLimited(detail, kind="rate_limited", status=status, retry_after=hint)
    if status in (401, 403):
        return FatalError(f"{detail}. The endpoint refused the credentials; check OPENAI_API_KEY "
                          "(or AZURE_OPENAI_API_KEY) and the endpoint URL, then run again to resume", status)
    if status in (408, 409) or status >= 500:
        return TransientError(detail, kind="server_error" if status >= 500 else f"http_{status}",
                              status=status, retry_after=hint)
    if code in _CONTENT_FILTER:
        return ItemError(detail, kind="content_filter", status=status)
    if code == "context_length_exceeded":
        return ItemError(detail, kind="too_large", status=status)
    kinds = {400: "bad_request", 404: "not_found", 413: "too_large", 422: "bad_request"}
    return ItemError(detail, kind=kinds.get(status, f"http_{status}"), status=status)


def parse_completion(body: bytes) -> tuple[str | None, str | None, dict[str, Any], str | None]:
    """(text, finish_reason, usage, model) from a 200 body; TransientError if malformed."""
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"].get("content")
        finish = choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        snippet = body[:120].decode("utf-8", "replace")
        raise TransientError(f"malformed response body ({type(e).__name__}): {snippet!r}", kind="malformed") from None
    if text is not None and not isinstance(text, str):
        raise TransientError(f"malformed response body: content is {type(text).__name__}", kind="malformed")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return text, finish, usage, data.get("model")


def request_template(endpoint: Endpoint, generation: GenerationConfig, batch: bool = False) -> dict[str, Any]:
    """The request body every query shares (all but ``messages``).

    Azure takes the deployment from the URL online, but a batch line must name it as ``model``.
    """
    body: dict[str, Any] = {}
    if endpoint.model and (endpoint.kind != "azure" or batch):
        body["model"] = endpoint.model
    if generation.temperature is not None:
        body["temperature"] = generation.temperature
    if generation.top_p is not None:
        body["top_p"] = generation.top_p
    body["max_tokens"] = generation.max_tokens
    body.update(generation.extra)
    return body


class ChatClient:
    """Sends chat-completion requests to one endpoint over a pooled aiohttp session."""

    def __init__(self, endpoint: Endpoint, generation: GenerationConfig, timeout: float = 120.0,
                 connections: int = 64, on_headers: Callable[[Mapping[str, str]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.endpoint = endpoint
        self.timeout = timeout
        self.connections = connections
        self.on_headers = on_headers
        self.clock = clock
        self._template = request_template(endpoint, generation)
        self._headers = {"Content-Type": "application/json", **endpoint.headers}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ChatClient:
        connector = aiohttp.TCPConnector(limit=self.connections, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self._headers,
            trust_env=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One request; raises TransientError, RateLimited, ItemError or FatalError on failure."""
        assert self._session is not None, "use 'async with ChatClient(...)'"
        payload = json.dumps({**self._template, "messages": messages}, ensure_ascii=False).encode("utf-8")
        started = self.clock()
        try:
            async with self._session.post(self.endpoint.url, data=payload) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
        except asyncio.TimeoutError:
            raise TransientError(f"no complete response within {self.timeout:g}s (endpoint.timeout)",
                                 kind="timeout") from None
        except aiohttp.ClientError as e:
            raise TransientError(f"connection failed: {type(e).__name__}: {e}", kind="connection") from None
        if self.on_headers is not None:
            self.on_headers(headers)
        if status != 200:
            raise classify(status, headers, body)
        text, finish, usage, model = parse_completion(body)
        if finish == "content_filter" and not text:
            raise ItemError("the reply was withheld by the content filter (finish_reason=content_filter)",
                            kind="content_filter", status=status)
        return Completion(text, finish, usage, model, self.clock() - started, headers)
