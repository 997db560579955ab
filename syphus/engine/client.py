"""The chat-completions client: one POST per call over aiohttp, errors mapped to the tree.

There are no retries here (``syphus.engine.retry`` owns them); every failure becomes
exactly one of ``TransientError`` / ``RateLimited`` (retry), ``ItemError``
(record it) or ``FatalError`` (stop the run).

This module is the one place that decides what a failure is, for every way a reply
comes back: ``classify`` (a non-200 response), ``content_filtered`` (a 200 reply the
filter withheld), ``classify_batch_line`` (a Batch API result line with an error and no
response) and ``classify_sdk_error`` (a failure of the ``openai`` SDK, which batch
mode's control plane goes through; its status errors go through ``classify`` too).

>>> async def main():                                   # doctest: +SKIP
...     async with ChatClient(endpoint, GenerationConfig()) as client:
...         reply = await client.complete([{"role": "user", "content": "hi"}])
...         print(reply.text, reply.usage)
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from syphus import kinds
from syphus.config import GenerationConfig
from syphus.engine.endpoint import Endpoint
from syphus.errors import FatalError, ItemError, RateLimited, TransientError
from syphus.frames import body_json
from syphus.redaction import Redactor

_CONTENT_FILTER = {"content_filter", "content_policy_violation", "ResponsibleAIPolicyViolation"}
PREFIXES = 16  # encoded body starts kept per client (one per reply schema in use; text requests share one)


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
    """The server's wait hint: ``retry-after-ms``, else ``retry-after`` in seconds or as an HTTP date.

    Whatever a server sends, the answer is None (no usable hint) or a number >= 0, possibly
    ``inf``; capping it is the retry policy's job. Garbage and ``nan`` are no hint.

    >>> retry_after_seconds({"retry-after": "inf"}), retry_after_seconds({"retry-after": "soon"})
    (inf, None)
    >>> retry_after_seconds({"retry-after-ms": "-5"}), retry_after_seconds({"retry-after": "nan"})
    (0.0, None)
    """
    ms = _seconds(headers.get("retry-after-ms"), scale=0.001)
    if ms is not None:
        return ms
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (now if now is not None else time.time()))


def _seconds(value: str | None, scale: float = 1.0) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value) * scale
    except ValueError:
        return None
    return None if math.isnan(seconds) else max(0.0, seconds)


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
    if status == 404:
        return ItemError(f"{detail}. The endpoint has no such model, deployment or path; check --model "
                         "(or the Azure deployment) and --base_url", kind="not_found", status=status)
    if code == "context_length_exceeded":
        return ItemError(detail, kind="too_large", status=status)
    kinds = {400: "bad_request", 404: "not_found", 413: "too_large", 422: "bad_request"}
    return ItemError(detail, kind=kinds.get(status, f"http_{status}"), status=status)


def content_filtered(finish_reason: str | None, text: str | None, status: int = 200) -> ItemError | None:
    """The error a reply stands for when the content filter withheld it (no text); None for any other reply.

    >>> content_filtered("content_filter", None).kind, content_filtered("content_filter", "part")
    ('content_filter', None)
    """
    if finish_reason == "content_filter" and not text:
        return ItemError("the reply was withheld by the content filter (finish_reason=content_filter)",
                         kind="content_filter", status=status, maybe_billed=True)
    return None


# error codes of Batch API result lines that say the request was not (or not fully) run: worth a new batch
_BATCH_LINE_TRANSIENT = {"batch_expired", "batch_cancelled", "server_error", "rate_limit_exceeded", "unknown"}


def classify_batch_line(code: str | None, message: str | None) -> Exception:
    """The error a Batch API result line stands for when it has an ``error`` object and no response.

    Expired, cancelled, rate-limited and server-side failures are ``TransientError`` (the
    request goes into a new batch); anything else is that request's ``ItemError``, with the
    content filter and over-long prompts named as ``classify`` names them.

    >>> [type(e).__name__ + ":" + e.kind for e in (classify_batch_line("batch_expired", "late"),
    ...  classify_batch_line(None, None), classify_batch_line("content_policy_violation", "no"),
    ...  classify_batch_line("invalid_value", "bad"))]
    ['TransientError:batch_expired', 'TransientError:unknown', 'ItemError:content_filter', 'ItemError:invalid_value']
    """
    code = str(code or "unknown")
    detail = f"{code}: {message or ''}".strip()
    if code in _BATCH_LINE_TRANSIENT:
        return TransientError(detail, kind=code)
    if code in _CONTENT_FILTER:
        return ItemError(detail, kind="content_filter")
    if code == "context_length_exceeded":
        return ItemError(detail, kind="too_large")
    return ItemError(detail, kind=code)


def classify_sdk_error(exc: BaseException, what: str, timeout: float | None = None) -> Exception | None:
    """The error a failure of an ``openai`` SDK call (``what``: the call, for the message) stands for.

    A status error goes through ``classify`` with the response's status, headers and body,
    exactly like a raw response; a timeout is ``TransientError`` "timeout", a connection
    that failed or dropped (also while a streamed body is read) "connection", a 200 body
    that is not the JSON object expected "malformed". None for anything else (a bug, to
    be raised as it is).
    """
    import httpx2  # what the SDK is built on; imported here so the hot path never loads the SDK
    import openai

    if isinstance(exc, openai.APIStatusError):
        return classify(exc.status_code, exc.response.headers, _sdk_body(exc))
    refused = _connector_error(exc)  # the SDK's aiohttp transport reports a refused connection as a timeout
    if refused is not None:
        return TransientError(f"{what}: connection failed: {type(refused).__name__}: {refused}", kind="connection")
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException, asyncio.TimeoutError)):
        limit = f" within {timeout:g}s" if timeout is not None else ""
        return TransientError(f"{what}: no answer{limit}", kind="timeout")
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError, aiohttp.ClientError)):
        cause = exc.__cause__ if isinstance(exc, openai.APIConnectionError) and exc.__cause__ else exc
        return TransientError(f"{what}: connection failed: {type(cause).__name__}: {cause}", kind="connection")
    if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError)):
        return TransientError(f"{what}: malformed response body", kind="malformed")
    return None


def _connector_error(exc: BaseException) -> aiohttp.ClientConnectorError | None:
    """The ``ClientConnectorError`` (no connection made) among ``exc``'s causes, if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, aiohttp.ClientConnectorError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _sdk_body(exc: Any) -> bytes:
    """The raw body of an SDK status error (the SDK keeps only the inner ``error`` object as ``.body``)."""
    try:
        return exc.response.content
    except Exception:  # a response closed before its body was read
        body = exc.body
        if isinstance(body, dict):
            return json.dumps({"error": body}).encode()
        return str(body or "").encode()


def parse_completion(body: bytes) -> tuple[str | None, str | None, dict[str, Any], str | None]:
    """(text, finish_reason, usage, model) from a 200 body; TransientError if malformed."""
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"].get("content")
        finish = choice.get("finish_reason")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        snippet = body[:120].decode("utf-8", "replace")
        raise TransientError(f"malformed response body ({type(e).__name__}): {snippet!r}", kind="malformed",
                             maybe_billed=True) from None
    if text is not None and not isinstance(text, str):
        raise TransientError(f"malformed response body: content is {type(text).__name__}", kind="malformed",
                             maybe_billed=True)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return text, finish, usage, data.get("model")


def environment_routing(url: str, headers: Mapping[str, str]) -> tuple[Any, Any, Any]:
    """(proxy, proxy auth, auth) for ``url`` from the environment, as aiohttp's ``trust_env`` finds them:
    ``HTTP(S)_PROXY`` / ``NO_PROXY``, and a ``~/.netrc`` login when the endpoint sends no key of its own."""
    from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
    from yarl import URL

    target = URL(url)
    proxy = proxy_auth = auth = None
    try:
        proxy, proxy_auth = get_env_proxy_for_url(target)
    except LookupError:
        pass
    if target.host and not any(k.lower() in ("authorization", "api-key") for k in headers):
        try:
            auth = basicauth_from_netrc(netrc_from_env(), target.host)
        except LookupError:
            pass
    return proxy, proxy_auth, auth


def request_template(endpoint: Endpoint, generation: GenerationConfig, batch: bool = False) -> dict[str, Any]:
    """The request body every query shares (all but ``messages``).

    A kind may take the model from the URL online (Azure's deployment), but a batch line must name it as ``model``.
    """
    body: dict[str, Any] = {}
    if endpoint.model and (kinds.get(endpoint.kind).model_in_body or batch):
        body["model"] = endpoint.model
    if generation.temperature is not None:
        body["temperature"] = generation.temperature
    if generation.top_p is not None:
        body["top_p"] = generation.top_p
    body["max_tokens"] = generation.max_tokens
    body.update(generation.extra)
    return body


def completion_budget(template: Mapping[str, Any]) -> int:
    """The most completion tokens one request can be billed for: its token cap times ``n``.

    The generation extras may override ``max_tokens`` (or set ``max_completion_tokens``)
    and ask for ``n`` choices; limits and ``--max-cost`` must reserve what is really sent.

    >>> completion_budget({"max_tokens": 100, "n": 3}), completion_budget({"max_tokens": 9, "max_completion_tokens": 50})
    (300, 50)
    """
    cap = template.get("max_completion_tokens") or template.get("max_tokens") or 0
    n = template.get("n") or 1
    try:
        return max(0, int(cap)) * max(1, int(n))
    except (TypeError, ValueError):
        return 0


class ChatClient:
    """Sends chat-completion requests to one endpoint over a pooled aiohttp session."""

    def __init__(self, endpoint: Endpoint, generation: GenerationConfig, timeout: float = 120.0,
                 connections: int = 64, on_headers: Callable[[Mapping[str, str]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, pace: Any = None):
        self.endpoint = endpoint
        self.timeout = timeout
        # the local model's timeout follows its measured speed (syphus.engine.local.Pace); else ``timeout``
        self.pace = pace
        self.connections = connections
        self.on_headers = on_headers
        self.clock = clock
        self._template = request_template(endpoint, generation)
        self.completion_budget = completion_budget(self._template)
        self._headers = {"Content-Type": "application/json", **endpoint.headers}
        self._redact = Redactor(endpoint.secrets)  # error text may echo the key or the URL: never shown
        self._prefixes: dict[int, tuple[Mapping[str, Any] | None, bytes]] = {}  # the body's start, per schema
        self._session: aiohttp.ClientSession | None = None
        self._proxy: Any = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        self._auth: aiohttp.BasicAuth | None = None

    async def __aenter__(self) -> ChatClient:
        connector = aiohttp.TCPConnector(limit=self.connections, ttl_dns_cache=300, enable_cleanup_closed=True)
        self._proxy, self._proxy_auth, self._auth = environment_routing(self.endpoint.url, self._headers)
        # The environment is read once, here: aiohttp's trust_env would read it (proxy, netrc) in a thread
        # twice for every request, which costs the hot path about a tenth of its throughput.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout), headers=self._headers,
            trust_env=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def body(self, messages: list[dict[str, Any]], fields: Mapping[str, Any] | None = None) -> bytes:
        """The request body for ``messages`` (plus ``fields``: the reply schema); ItemError ``unencodable``
        if they are not JSON (nothing is sent).

        The template and the schema are encoded once (per schema, at most ``PREFIXES`` kept): only the
        messages are encoded per query.
        """
        fields = fields or None  # no fields (a text request): one prefix, however many empty dicts come
        try:
            prefix = self._prefixes.get(id(fields))
            if prefix is None or prefix[0] is not fields:
                if len(self._prefixes) >= PREFIXES:  # a caller building fresh fields each time: bounded still
                    self._prefixes.clear()
                head = json.dumps({**self._template, **(fields or {})}, ensure_ascii=False, allow_nan=False)
                start = head[:-1] + (", " if len(head) > 2 else "") + '"messages": '
                prefix = self._prefixes[id(fields)] = (fields, start.encode("utf-8"))
            return body_json(messages, prefix[1], b"}")  # images spliced in as they are (syphus.frames)
        except (TypeError, ValueError, UnicodeEncodeError) as e:
            raise ItemError(f"the request cannot be encoded as JSON ({type(e).__name__}: {e}); build_messages "
                            "must return messages whose contents are strings or lists of parts",
                            kind="unencodable") from None

    async def complete(self, messages: list[dict[str, Any]], body: bytes | None = None) -> Completion:
        """One request (``body``: from ``self.body(messages)``, to encode once for all attempts).

        Raises TransientError, RateLimited, ItemError or FatalError on failure.
        """
        assert self._session is not None, "use 'async with ChatClient(...)'"
        payload = body if body is not None else self.body(messages)
        started = self.clock()
        limit = self.timeout if self.pace is None else self.pace.timeout()
        per_request = {} if self.pace is None else {"timeout": aiohttp.ClientTimeout(total=limit)}
        try:
            async with self._session.post(self.endpoint.url, data=payload, proxy=self._proxy,
                                          proxy_auth=self._proxy_auth, auth=self._auth, **per_request) as resp:
                body = await resp.read()
                status, headers = resp.status, resp.headers
        except asyncio.TimeoutError:
            raise TransientError(f"no complete response within {limit:g}s (endpoint.timeout)",
                                 kind="timeout", maybe_billed=True) from None
        except aiohttp.ClientConnectorError as e:  # never reached the server: nothing to pay for
            raise TransientError(self._redact(f"connection failed: {type(e).__name__}: {e}"),
                                 kind="connection") from None
        except aiohttp.ClientError as e:  # sent, then the reply was lost: the server may bill it
            raise TransientError(self._redact(f"connection failed: {type(e).__name__}: {e}"), kind="connection",
                                 maybe_billed=True) from None
        except (ValueError, TypeError, UnicodeError) as e:  # aiohttp refused to build it: nothing left the machine
            raise FatalError(self._redact(f"the request could not be built, so nothing was sent ({type(e).__name__}: "
                                          f"{e}); fix the endpoint's URL, key or headers, then run again")) from None
        if self.on_headers is not None:
            self.on_headers(headers)
        if status != 200:
            raise self._redact.exception(classify(status, headers, body))
        text, finish, usage, model = parse_completion(body)
        withheld = content_filtered(finish, text, status)
        if withheld is not None:
            raise withheld
        latency = self.clock() - started
        if self.pace is not None:
            self.pace.observe(latency, usage.get("completion_tokens") or 0)
        return Completion(text, finish, usage, model, latency, headers)
