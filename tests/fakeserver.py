"""A fake OpenAI-compatible chat-completions server for tests and benchmarks.

It speaks HTTP over a real socket on 127.0.0.1, so clients exercise their
whole network stack.  Replies can be scripted (FIFO queue), computed by a
``responder`` callback, or left to a default that answers with two
question/answer pairs derived from the last user message.  Optional token
bucket rate limiting mimics OpenAI's ``x-ratelimit-*`` / ``retry-after``
behaviour.

In tests (the server runs its own event loop in a daemon thread)::

    from tests.fakeserver import FakeOpenAI, Reply

    with FakeOpenAI() as server:
        server.enqueue(Reply.status(500), Reply.ok("Question: a?\\nAnswer: b."))
        ...  # point the client at server.base_url ("http://127.0.0.1:PORT/v1")
        assert server.status_counts[500] == 1
        assert server.requests[0].body["model"] == "gpt-4o-mini"

Tests never sleep to let the server get somewhere: they wait on what it signals.
``server.wait_for(predicate)`` returns once ``predicate()`` holds (checked whenever a
request arrives or ends), and a reply held by a ``Gate`` stays in flight until the test
opens it (``Reply.ok(text).after(gate)``)::

    gate = Gate()
    server.responder = lambda body, n: Reply.ok("Question: a?\\nAnswer: b.").after(gate)
    ...  # start the client
    assert server.wait_for(lambda: server.in_flight == 4)
    gate.open()

For benchmarks, in a separate process (prints ``listening http://127.0.0.1:PORT``
once ready and runs until SIGTERM/SIGINT)::

    python -m tests.fakeserver --port 0 --latency 0.8 --rpm 500 --tpm 200000 --enforce second

Routes: ``POST .../chat/completions`` (any prefix, e.g. ``/v1`` or Azure's
``/openai/deployments/{name}``), ``GET /v1/models``, ``GET /stats``, ``GET /props`` (when ``props`` is set,
as llama.cpp's server says its slots); anything
else is a 404 JSON error.  ``/stats`` itself is not recorded or counted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import math
import signal
import sys
import threading
import time
from typing import Callable

from aiohttp import web

_ERRORS = {  # status -> (type, code, message) for the default error body
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_api_key", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", "permission_denied", "You are not allowed to do this."),
    404: ("not_found_error", "not_found", "Not found."),
    408: ("timeout", "timeout", "Request timed out."),
    429: ("rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached."),
    500: ("server_error", "server_error", "The server had an error processing your request."),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded."),
    504: ("server_error", "gateway_timeout", "Gateway timeout."),
}


def error_body(code: int, message: str | None = None) -> dict:
    """The OpenAI-style ``{"error": {...}}`` body for an HTTP status code."""
    etype, ecode, emsg = _ERRORS.get(code, ("api_error", None, f"HTTP {code}."))
    return {"error": {"message": message or emsg, "type": etype, "param": None, "code": ecode}}


class Gate:
    """A latch that holds replies in flight until a test opens it (from any thread).

    ``opens_at``: it opens by itself once that many replies wait on it (a barrier).
    ``timeout``: a reply waits at most that long, then goes anyway (a test that
    expected more requests in flight then fails on its assertion instead of hanging).
    """

    def __init__(self, opens_at: int | None = None, timeout: float | None = None) -> None:
        self.opens_at, self.timeout = opens_at, timeout
        self._lock = threading.Lock()
        self._open = False
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self.held = 0  # replies that had to wait

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._open

    def open(self) -> None:
        """Let every held reply go, and every later one pass at once."""
        with self._lock:
            self._open = True
            waiting, self._waiting = self._waiting, []
        for loop, fut in waiting:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits there any more
                loop.call_soon_threadsafe(_resolve, fut)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._open:
                return
            fut = loop.create_future()
            entry = (loop, fut)
            self._waiting.append(entry)
            self.held += 1
            full = self.opens_at is not None and len(self._waiting) >= self.opens_at
        if full:
            self.open()
        try:
            await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in self._waiting:
                    self._waiting.remove(entry)


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


@dataclasses.dataclass(frozen=True)
class Reply:
    """One scripted reply; build it with the classmethods, not directly."""

    kind: str  # "ok" | "status" | "hang" | "malformed" | "drop"
    text: str | None = None
    finish_reason: str = "stop"
    usage: dict | None = dataclasses.field(default=None, hash=False)
    headers: dict | None = dataclasses.field(default=None, hash=False)
    delay: float = 0.0
    model: str | None = None
    status_code: int = 200
    body: dict | None = dataclasses.field(default=None, hash=False)
    raw: bytes = b""
    content_type: str = "application/json"
    gate: Gate | None = dataclasses.field(default=None, hash=False, compare=False)

    @classmethod
    def ok(cls, text: str | None, finish_reason: str = "stop", usage: dict | None = None,
           headers: dict | None = None, delay: float = 0.0, model: str | None = None) -> Reply:
        """200 with a chat.completion body; ``text=None`` sends ``"content": null``."""
        return cls("ok", text=text, finish_reason=finish_reason, usage=usage,
                   headers=headers, delay=delay, model=model)

    @classmethod
    def status(cls, code: int, body: dict | None = None, headers: dict | None = None,
               delay: float = 0.0) -> Reply:
        """That status with a JSON error body (default chosen by code) and exactly ``headers``."""
        return cls("status", status_code=code, body=body, headers=headers, delay=delay)

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        """Wait ``seconds`` (non-blocking), then answer like the default responder."""
        return cls("hang", delay=seconds)

    @classmethod
    def malformed(cls, raw: bytes = b'{"choices": [', status: int = 200,
                  content_type: str = "application/json") -> Reply:
        """Send ``raw`` verbatim as the body."""
        return cls("malformed", raw=raw, status_code=status, content_type=content_type)

    @classmethod
    def drop(cls) -> Reply:
        """Send headers promising 1000 body bytes, a few bytes, then abort the connection."""
        return cls("drop")

    def after(self, gate: Gate) -> Reply:
        """This reply, held in flight until ``gate`` opens (then its own delay, if any, runs)."""
        return dataclasses.replace(self, gate=gate)


@dataclasses.dataclass(frozen=True)
class Recorded:
    """A request as received: ``headers`` has lower-case keys, ``body`` is the parsed JSON dict."""

    path: str
    query: dict
    headers: dict
    body: dict | None


def _content_chars(body: dict) -> int:
    """Total characters of all message contents (text parts of list contents included)."""
    total = 0
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return total


def schema_form(body: dict) -> str | None:
    """Which form of reply schema a request carries: "openai", "llamacpp", "vllm", "guided" (older vLLM's
    ``guided_json``, which Syphus does not ship; tests/test_schemaform.py adds it) or None."""
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        return "openai"
    if isinstance(rf, dict) and rf.get("type") == "json_object" and "schema" in rf:
        return "llamacpp"
    if isinstance(body.get("structured_outputs"), dict) and "json" in body["structured_outputs"]:
        return "vllm"
    if isinstance(body.get("guided_json"), dict):
        return "guided"
    return None


def requested_schema(body: dict) -> dict | None:
    """The JSON schema a request asks the reply to fit, in whichever form it came."""
    form = schema_form(body)
    if form == "openai":
        return body["response_format"].get("json_schema", {}).get("schema")
    if form == "llamacpp":
        return body["response_format"]["schema"]
    if form == "vllm":
        return body["structured_outputs"]["json"]
    if form == "guided":
        return body["guided_json"]
    return None


def instance(schema: dict, item: str, name: str = "value", index: int = 1):
    """A JSON value that fits ``schema`` (the subset strict schemas use), its strings about ``item``."""
    if "anyOf" in schema:
        return instance(schema["anyOf"][0], item, name, index)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        return {key: instance(sub, item, key, index) for key, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        low = schema.get("minItems") or 0
        count = min(max(low, 2), schema.get("maxItems", max(low, 2)))  # two, unless the schema says otherwise
        return [instance(schema.get("items") or {}, item, name, i) for i in range(1, count + 1)]
    if kind in ("integer", "number"):
        return index
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if name == "instruction":
        return f"What does item {item} show, point {index}?"
    if name == "answer":
        return f"It shows {item}, point {index}."
    return f"{name} {index} of {item}"


IMAGE_TOKENS = 765  # what the fake charges an image part: GPT-4o's price of a 1024x1024 image at high detail


def _image_parts(body: dict) -> int:
    """How many image parts the request's messages hold."""
    return sum(1 for msg in body.get("messages") or [] if isinstance(msg, dict) and isinstance(msg.get("content"), list)
               for p in msg["content"] if isinstance(p, dict) and p.get("type") == "image_url")


def default_answer(body: dict) -> str:
    """Two question/answer pairs about the last user message (JSON fitting the schema, if one was asked for)."""
    last = ""
    for msg in body.get("messages") or []:
        if isinstance(msg, dict) and msg.get("role") == "user":
            last = msg["content"] if isinstance(msg.get("content"), str) else last
    item = " ".join(last[:20].split()) or "nothing"
    schema = requested_schema(body)
    if schema is not None:
        return json.dumps(instance(schema, item))
    return (f"Question: What does item {item} show?\nAnswer: It shows {item}.\n\n"
            f"Question: Why does item {item} matter?\nAnswer: Because it is {item}.")


def format_duration(seconds: float) -> str:
    """OpenAI's reset duration format: "120ms", "1s", "1.5s", "6m0s", "1h2m3s"."""
    ms = max(0, math.ceil(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return out + f"{secs}s"


class _Bucket:
    """A token bucket that starts full and refills continuously."""

    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity, self.rate, self.level = capacity, per_second, capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, cost: float) -> float:
        """Seconds until ``cost`` would fit (0 if it fits now)."""
        return 0.0 if self.level >= cost else (cost - self.level) / self.rate

    def reset_in(self) -> float:
        return (self.capacity - self.level) / self.rate


class FakeOpenAI:
    """The fake server.  Use as a context manager (thread) or via the CLI (foreground)."""

    client_max_size = 1024 ** 2  # largest request body accepted (aiohttp's default)

    def __init__(self, rpm: float | None = None, tpm: float | None = None, enforce: str = "minute",
                 latency: float = 0.0, record_bodies: bool = True, host: str = "127.0.0.1",
                 port: int = 0, schema_forms: tuple[str, ...] = ("openai", "llamacpp", "vllm"),
                 props: dict | None = None, count_schema: bool = False,
                 clock: Callable[[], float] = time.monotonic, require_headers: dict | None = None) -> None:
        if enforce not in ("minute", "second"):
            raise ValueError("enforce must be 'minute' or 'second'")
        self.rpm, self.tpm, self.enforce = rpm, tpm, enforce
        self.latency, self.record_bodies = latency, record_bodies
        self.props = props  # what GET /props answers (llama.cpp's server: {"total_slots": N, ...}); None: 404
        self.schema_forms = schema_forms  # the reply-schema forms it takes; others get a 400 like a real server
        self.count_schema = count_schema  # the reply schema counts in the prompt's tokens (limits and usage)
        self.host, self.port = host, port
        self.clock = clock  # what the rate-limit buckets refill by (a test's clock makes them exact)
        # headers every request must carry with exactly these values (a key); else a 401 like a real server
        self.require_headers = {k.lower(): v for k, v in (require_headers or {}).items()}
        self.responder: Callable[[dict, int], Reply] | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified when a request arrives or ends
        self._queue: collections.deque[Reply] = collections.deque()
        self._requests: list[Recorded] = []
        self._request_count = self._chat_count = self._tokens_admitted = 0
        self._in_flight = self._peak = 0
        self._hanging = 0  # hang replies held right now
        self._status: collections.Counter = collections.Counter()
        # Enforcing buckets, and per-minute buckets used only for reporting headers.
        div = 60.0 if enforce == "second" else 1.0
        self._limits: dict[str, tuple[_Bucket, _Bucket]] = {}
        for name, limit in (("requests", rpm), ("tokens", tpm)):
            if limit:
                enforcing = _Bucket(limit / div, limit / 60.0, clock())
                report = _Bucket(limit, limit / 60.0, clock()) if div > 1 else enforcing
                self._limits[name] = (enforcing, report)
        self._runner: web.ServerRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------- test-side API
    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def enqueue(self, *replies: Reply) -> None:
        """Script replies, consumed FIFO, one per admitted chat-completion request."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def requests(self) -> list[Recorded]:
        """Every request received (empty when ``record_bodies=False``)."""
        with self._lock:
            return list(self._requests)

    @property
    def peak_in_flight(self) -> int:
        with self._lock:
            return self._peak

    @property
    def in_flight(self) -> int:
        """Requests received and not yet answered (held by a Gate, delayed, or being handled)."""
        with self._lock:
            return self._in_flight

    @property
    def hanging(self) -> int:
        """Hang replies held right now: a test waits for its hang to be held, then moves the client's clock
        past its timeout (``tests.helpers.SkewLoop``) instead of waiting the timeout out."""
        with self._lock:
            return self._hanging

    @contextlib.contextmanager
    def _hang(self):
        """Count a hang reply as held (``wait_for`` callers are told) while the block runs."""
        with self._lock:
            self._hanging += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._hanging -= 1
                self._changed.notify_all()

    @property
    def request_count(self) -> int:
        """Requests received so far (all routes but /stats, recorded or not)."""
        with self._lock:
            return self._request_count

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Block until ``predicate()`` holds, re-checked whenever a request arrives or ends; False after ``timeout``.

        ``predicate`` may read the server (``requests``, ``status_counts``, ``in_flight``, ...).
        """
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def wake(self) -> None:
        """Make ``wait_for`` callers check their predicate now (for one that reads more than the server)."""
        with self._changed:
            self._changed.notify_all()

    @property
    def status_counts(self) -> collections.Counter:
        """A copy: status code -> count, plus "drop" and "hang" (and "abandoned")."""
        with self._lock:
            return collections.Counter(self._status)

    def stats(self) -> dict:
        """What GET /stats returns (``requests`` counts all but /stats, even unrecorded)."""
        with self._lock:
            return {"status_counts": {str(k): v for k, v in self._status.items()},
                    "peak_in_flight": self._peak, "requests": self._request_count,
                    "tokens_admitted": self._tokens_admitted}

    # --------------------------------------------------------------- lifecycle
    async def astart(self) -> None:
        """Bind and start serving on the running loop."""
        loop = asyncio.get_running_loop()

        def make_request(message, payload, protocol, writer, task) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop,
                                   client_max_size=self.client_max_size)

        server = web.Server(self._handle, request_factory=make_request,
                            handler_cancellation=True, access_log=None)
        self._runner = web.ServerRunner(server, shutdown_timeout=0.2)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start(self) -> FakeOpenAI:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        if self._thread is not None:
            return self
        ready, failure = threading.Event(), []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.astart())
            except BaseException as exc:  # report bind errors to start()
                failure.append(exc)
            ready.set()
            if not failure:
                loop.run_forever()
            loop.run_until_complete(self.astop())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="FakeOpenAI", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:  # the thread has already cleaned up and is finishing
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def close(self) -> None:
        """Stop the loop and join the thread."""
        if self._thread is None:
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- serving
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and request.path == "/stats":
            return web.json_response(self.stats())
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else None
        with self._lock:
            self._request_count += 1
            if self.record_bodies:
                self._requests.append(Recorded(
                    request.path, dict(request.query),
                    {k.lower(): v for k, v in request.headers.items()}, body))
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)
            self._changed.notify_all()
        outcome: int | str = 500
        label: dict[str, str] = {}  # _route may set "done" (e.g. "drop") or "cancelled" ("hang")
        try:
            resp = await self._route(request, body, label)
            outcome = label.get("done", resp.status)
            return resp
        except asyncio.CancelledError:  # the client went away (handler_cancellation)
            outcome = label.get("cancelled", "abandoned")
            raise
        finally:
            with self._lock:
                self._in_flight -= 1
                self._status[outcome] += 1
                self._changed.notify_all()

    async def _route(self, request: web.BaseRequest, body: dict | None,
                     label: dict[str, str]) -> web.StreamResponse:
        path = request.path
        if any(request.headers.get(k) != v for k, v in self.require_headers.items()):
            return web.json_response(error_body(401), status=401)
        if request.method == "GET" and path == "/props" and self.props is not None:
            return web.json_response(self.props)
        if request.method == "GET" and path.rstrip("/") in ("/v1/models", "/models"):
            return web.json_response({"object": "list", "data": [
                {"id": "fake", "object": "model", "created": 0, "owned_by": "fakeserver"}]})
        if request.method != "POST" or not path.endswith("/chat/completions"):
            return web.json_response(error_body(404, f"No route for {request.method} {path}"),
                                     status=404)
        if body is None:
            return web.json_response(error_body(400, "Request body is not a JSON object."),
                                     status=400)
        form = schema_form(body)
        if form is not None and form not in self.schema_forms:
            what = {"vllm": "structured_outputs", "guided": "guided_json"}.get(form) or \
                f"response_format of type {body['response_format']['type']!r}"
            return web.json_response(error_body(400, f"Invalid parameter: {what} is not supported by this server."),
                                     status=400)
        with self._lock:
            n = self._chat_count
            self._chat_count += 1
        cost = self._prompt_chars_tokens(body) + int(
            body.get("max_tokens") or body.get("max_completion_tokens") or 0)
        limited, rl_headers = self._admit(cost)
        if limited is not None:
            return limited
        with self._lock:
            self._tokens_admitted += cost
        reply = self._pick_reply(body, n)
        if reply.kind == "hang":
            label["cancelled"] = "hang"
        with self._hang() if reply.kind == "hang" else contextlib.nullcontext():
            if reply.gate is not None:
                await reply.gate.wait()
            delay = self.latency + reply.delay
            if delay > 0:
                await asyncio.sleep(delay)
        if reply.kind in ("ok", "hang"):
            return self._ok_response(reply, body, n, rl_headers)
        if reply.kind == "status":
            payload = reply.body if reply.body is not None else error_body(reply.status_code)
            headers = {**(reply.headers or {}), "Content-Type": "application/json"}
            return web.Response(status=reply.status_code, body=json.dumps(payload).encode(),
                                headers=headers)
        if reply.kind == "malformed":
            return web.Response(status=reply.status_code, body=reply.raw,
                                headers={"Content-Type": reply.content_type})
        label["done"] = "drop"
        return await self._drop(request)

    def _prompt_chars_tokens(self, body: dict) -> int:
        """The prompt's text as this server counts it: a token per 4 characters (the schema's too if counted)."""
        chars = _content_chars(body)
        if self.count_schema and schema_form(body) is not None:
            chars += len(json.dumps(requested_schema(body) or {}))
        return math.ceil(chars / 4)

    def _pick_reply(self, body: dict, n: int) -> Reply:
        """The next scripted reply, else the responder's, else the default answer."""
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        if reply is None:
            reply = self.responder(body, n) if self.responder else Reply.ok(default_answer(body))
        return reply

    def _ok_response(self, reply: Reply, body: dict, n: int, rl_headers: dict) -> web.Response:
        return web.json_response(self._completion(reply, body, n),
                                 headers={**rl_headers, **(reply.headers or {})})

    def _completion(self, reply: Reply, body: dict, n: int) -> dict:
        """The chat.completion JSON for an "ok" (or "hang") reply to request number ``n``."""
        text = default_answer(body) if reply.kind == "hang" else reply.text
        usage = reply.usage
        if usage is None:
            prompt = self._prompt_chars_tokens(body) + IMAGE_TOKENS * _image_parts(body)
            completion = math.ceil(len(text or "") / 4)
            usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}
        payload = {
            "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": reply.model or body.get("model") or "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": reply.finish_reason}],
            "usage": usage,
        }
        return payload

    async def _drop(self, request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.content_length = 1000
        await resp.prepare(request)
        await resp.write(b'{"id": "chatcmpl-')
        if request.transport is not None:
            request.transport.abort()
        return resp

    def _admit(self, cost: int) -> tuple[web.Response | None, dict]:
        """Check and charge the rate limits; returns (429 response or None, headers)."""
        if not self._limits:
            return None, {}
        costs = {"requests": 1, "tokens": cost}
        with self._lock:
            now = self.clock()
            for enforcing, report in self._limits.values():
                enforcing.refill(now)
                report.refill(now)
            waits = {k: b[0].wait(costs[k]) for k, b in self._limits.items()}
            blocked = max(waits, key=lambda k: waits[k])
            if waits[blocked] <= 0:
                for name, (enforcing, report) in self._limits.items():
                    enforcing.level -= costs[name]
                    if report is not enforcing:
                        report.level -= costs[name]
            headers = {}
            for name, (enforcing, report) in self._limits.items():
                limit = self.rpm if name == "requests" else self.tpm
                headers[f"x-ratelimit-limit-{name}"] = str(int(limit))
                headers[f"x-ratelimit-remaining-{name}"] = str(max(0, math.floor(report.level)))
                headers[f"x-ratelimit-reset-{name}"] = format_duration(report.reset_in())
        wait = waits[blocked]
        if wait <= 0:
            return None, headers
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        headers["retry-after-ms"] = str(math.ceil(wait * 1000))
        capacity = self._limits[blocked][0].capacity
        msg = (f"Request too large for {blocked}: needs {costs[blocked]}, limit {capacity:g}."
               if costs[blocked] > capacity else
               f"Rate limit reached for {blocked}. Please try again in {format_duration(wait)}.")
        payload = {"error": {"message": msg, "type": blocked, "param": None,
                             "code": "rate_limit_exceeded"}}
        return web.json_response(payload, status=429, headers=headers), headers


async def _serve(args: argparse.Namespace) -> None:
    server = FakeOpenAI(rpm=args.rpm, tpm=args.tpm, enforce=args.enforce, latency=args.latency,
                        record_bodies=False, host=args.host, port=args.port, count_schema=args.count_schema)
    await server.astart()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening {server.root_url}", flush=True)
    await stop.wait()
    await server.astop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeserver",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    parser.add_argument("--rpm", type=float, default=None, help="requests per minute limit")
    parser.add_argument("--tpm", type=float, default=None, help="tokens per minute limit")
    parser.add_argument("--enforce", choices=("minute", "second"), default="minute")
    parser.add_argument("--count-schema", action="store_true",
                        help="count the reply schema in a request's tokens (rate limits and usage)")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
