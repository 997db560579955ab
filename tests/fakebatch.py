"""The fake OpenAI server plus the Batch and Files APIs, for tests.

``FakeBatchAPI`` serves everything ``FakeOpenAI`` serves, and also (under ``/v1/...`` or
Azure's ``/openai/...?api-version=...``; the shapes the ``openai`` SDK sends)::

    POST /files                  multipart: purpose, file (JSONL)  -> file object
    GET  /files[?purpose=batch]                                    -> list of file objects
    GET  /files/{id}             GET /files/{id}/content           DELETE /files/{id}
    POST /batches                {"input_file_id", "endpoint", "completion_window", "metadata"}
    GET  /batches/{id}           (moves the batch one step, see below)
    GET  /batches[?limit=&after=]   POST /batches/{id}/cancel

Azure paths (``/openai/...``) answer 404 without an ``api-version`` query, like the real
service. Control-plane calls can be made to fail by route name (``upload``, ``list_files``,
``file``, ``content``, ``delete_file``, ``create``, ``list_batches``, ``retrieve``,
``cancel``), before the work is done or after it (the work done, its answer lost)::

    server.fail_next("create", Reply.status(500), times=2)
    server.fail_next("upload", Reply.drop(), after=True)   # stored, then the connection drops

Batches are deterministic: each retrieve moves a batch one step
(validating -> in_progress -> finalizing -> completed; a cancelled one
cancelling -> cancelled), or straight to its end with ``finish_on_retrieve=True``,
or the test moves them with ``advance(id)`` / ``finish_all()``.  Lines are answered
on the in_progress -> finalizing step by the same machinery as online chat
completions (scripted queue, then ``responder``, then the default answer), so
``server.enqueue(...)`` scripts batch lines too::

    with FakeBatchAPI(enqueued_token_limit=90_000) as server:
        server.enqueue(Reply.status(500))          # the first line answered gets a 500
        server.expire_next_batch(after=2)          # or server.fail_next_batch()
        server.lose_files_of_next_batch()          # its output file answers 404 when downloaded
        server.stray_lines_in_next_batch(["ghost"])  # its output answers an id it never held
        ...  # upload, create, poll via server.base_url
        server.finish_all()
        assert server.batches_created[0]["endpoint"] == "/v1/chat/completions"
        assert server.lines_run == ["q00000", ...]  # each line run (and paid for), in order
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.message
import email.parser
import json
import math
import threading
import time

from aiohttp import web

from tests.fakeserver import FakeOpenAI, Reply, _content_chars, error_body

ACTIVE = ("validating", "in_progress", "finalizing")
TERMINAL = ("completed", "failed", "expired", "cancelled")
CHAT_ENDPOINTS = ("/v1/chat/completions", "/chat/completions")
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


def _error(status: int, message: str, code: str | None = None,
           param: str | None = None) -> web.Response:
    payload = error_body(status, message)
    if code is not None:
        payload["error"]["code"] = code
    payload["error"]["param"] = param
    return web.json_response(payload, status=status)


def parse_multipart(content_type: str, raw: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``{field name: (filename or None, data)}`` of a multipart/form-data body."""
    ctype = email.message.Message()
    ctype["content-type"] = content_type
    boundary = ctype.get_param("boundary")
    if ctype.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise ValueError("Content-Type must be multipart/form-data with a boundary.")
    fields: dict[str, tuple[str | None, bytes]] = {}
    chunks = raw.split(b"--" + boundary.encode("latin-1"))
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("The multipart body is truncated.")
    for chunk in chunks[1:-1]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep or not head.startswith(b"\r\n") or not data.endswith(b"\r\n"):
            raise ValueError("A multipart part is malformed.")
        headers = email.parser.HeaderParser().parsestr(head[2:].decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = (headers.get_filename(), data[:-2])
    return fields


@dataclasses.dataclass
class _Batch:
    obj: dict  # the public batch object
    lines: list[tuple[str, dict]]  # (custom_id, body) of each input line
    tokens: int
    model: str | None
    fail: tuple[str, str] | None = None  # injected (code, message) at validation
    expire_after: int | None = None
    outputs: list[dict] = dataclasses.field(default_factory=list)
    errors: list[dict] = dataclasses.field(default_factory=list)
    lose_files: bool = False  # its output and error files are gone when it finishes (GET content: 404)
    strays: list[str] = dataclasses.field(default_factory=list)  # custom_ids answered that it never held


class FakeBatchAPI(FakeOpenAI):
    """``FakeOpenAI`` plus the Files and Batch APIs (see the module docstring)."""

    def __init__(self, *args, max_file_bytes: int = 200 * 1024 ** 2,
                 max_requests_per_file: int = 50_000, enqueued_token_limit: int | None = None,
                 finish_on_retrieve: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.finish_on_retrieve = finish_on_retrieve
        self.max_file_bytes = max_file_bytes
        self.max_requests_per_file = max_requests_per_file
        self.enqueued_token_limit = enqueued_token_limit
        self.client_max_size = max(self.client_max_size, max_file_bytes + 1024 ** 2)
        self._block = threading.RLock()  # batch/file state; may take self._lock inside
        self._files: dict[str, dict] = {}  # id -> file object, in creation order
        self._contents: dict[str, bytes] = {}
        self._file_lines: dict[str, list[tuple[str, dict]]] = {}
        self._batches: dict[str, _Batch] = {}
        self._uploads: list[dict] = []
        self._created: list[dict] = []
        self._calls: list[tuple[str, str]] = []
        self._lines_run: list[str] = []
        self._next = {"file": 0, "batch": 0, "req": 0}
        self._fail_next: tuple[str, str] | None = None
        self._expire_next: int | None = None
        self._lose_next = False
        self._strays_next: list[str] = []
        self._faults: list[list] = []  # [route, reply, after, times left]

    # ----------------------------------------------------------- test-side API
    @property
    def uploads(self) -> list[dict]:
        """File objects of every accepted upload (not batch output/error files)."""
        with self._block:
            return [dict(f) for f in self._uploads]

    @property
    def batches_created(self) -> list[dict]:
        """The JSON bodies of every accepted ``POST /batches``."""
        with self._block:
            return json.loads(json.dumps(self._created))

    @property
    def calls(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request routed (chat completions too; not /stats)."""
        with self._block:
            return list(self._calls)

    @property
    def lines_run(self) -> list[str]:
        """The ``custom_id`` of every batch line answered (what an account pays for), in order."""
        with self._block:
            return list(self._lines_run)

    @property
    def batches(self) -> list[dict]:
        """Current batch objects, oldest first, without moving them."""
        with self._block:
            return [self._copy(b) for b in self._batches.values()]

    def file_content(self, file_id: str) -> bytes:
        with self._block:
            return self._contents[file_id]

    def fail_next_batch(self, code: str = "token_limit_exceeded",
                        message: str | None = None) -> None:
        """The next created batch fails at validation with this error."""
        with self._block:
            self._fail_next = (code, message or (
                "Enqueued token limit reached (injected by the fake server)."
                if code == "token_limit_exceeded" else f"Batch failed: {code}."))

    def expire_next_batch(self, after: int = 0) -> None:
        """The next created batch answers its first ``after`` lines, then expires."""
        with self._block:
            self._expire_next = after

    def lose_files_of_next_batch(self) -> None:
        """The next created batch finishes with output and error file ids whose content is gone (404), as
        when the files expired or were deleted before the client downloaded them."""
        with self._block:
            self._lose_next = True

    def stray_lines_in_next_batch(self, custom_ids: list[str]) -> None:
        """The next created batch's output also answers these ``custom_id``s, which it never held."""
        with self._block:
            self._strays_next = list(custom_ids)

    def fail_next(self, route: str, reply: Reply, *, after: bool = False, times: int = 1) -> None:
        """The next ``times`` calls of ``route`` get ``reply`` (a status, ``malformed`` or ``drop``).

        With ``after=True`` the call's work is done first (the file stored, the batch made)
        and only its answer is replaced: what a client sees when a reply is lost. A ``hang``
        waits its seconds first, then does the call as usual (an answer that comes too late).
        """
        if reply.kind not in ("status", "malformed", "drop", "hang"):
            raise ValueError(f"a control-plane fault is a status, malformed, drop or hang reply, not {reply.kind!r}")
        with self._block:
            self._faults.append([route, reply, after, times])

    def _take_fault(self, route: str) -> tuple[Reply, bool] | None:
        with self._block:
            for fault in self._faults:
                if fault[0] == route:
                    fault[3] -= 1
                    if fault[3] <= 0:
                        self._faults.remove(fault)
                    return fault[1], fault[2]
        return None

    async def _fault_response(self, request: web.BaseRequest, reply: Reply,
                              label: dict[str, str]) -> web.StreamResponse:
        if reply.kind == "status":
            payload = reply.body if reply.body is not None else error_body(reply.status_code)
            return web.Response(status=reply.status_code, body=json.dumps(payload).encode(),
                                headers={**(reply.headers or {}), "Content-Type": "application/json"})
        if reply.kind == "malformed":
            return web.Response(status=reply.status_code, body=reply.raw,
                                headers={"Content-Type": reply.content_type})
        label["done"] = "drop"
        return await self._drop(request)

    def advance(self, batch_id: str) -> dict:
        """Move one batch one step (no-op when finished); returns its batch object."""
        with self._block:
            batch = self._batches[batch_id]
            self._step(batch)
            return self._copy(batch)

    def finish_all(self) -> list[dict]:
        """Step every batch until it is finished; returns all batch objects."""
        with self._block:
            for batch in self._batches.values():
                while batch.obj["status"] not in TERMINAL:
                    self._step(batch)
            return [self._copy(b) for b in self._batches.values()]

    # ---------------------------------------------------------------- serving
    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await super()._handle(request)
        except web.HTTPRequestEntityTooLarge:  # raised by request.read() before routing
            with self._block:
                self._calls.append((request.method, request.path))
            with self._lock:
                self._request_count += 1
                self._status[400] += 1
            return _error(400, f"File exceeds the maximum size of {self.max_file_bytes} bytes.",
                          "file_too_large", "file")

    async def _route(self, request: web.BaseRequest, body: dict | None,
                     label: dict[str, str]) -> web.StreamResponse:
        method, path = request.method, request.path
        with self._block:
            self._calls.append((method, path))
        rest = prefix = None
        for prefix in ("/v1/", "/openai/"):
            if path.startswith(prefix):
                rest = path[len(prefix):].strip("/").split("/")
                break
        if rest is None or rest[0] not in ("files", "batches"):
            return await super()._route(request, body, label)
        query = request.query
        if prefix == "/openai/" and "api-version" not in query:
            return _error(404, "Resource not found (Azure paths need an api-version query).")
        found = self._handler(method, rest[0], rest[1:], request, body)
        if found is None:
            return _error(404, f"No route for {method} {path}")
        route, handler = found
        fault = self._take_fault(route)
        if fault is not None and fault[0].kind == "hang":
            label["cancelled"] = "hang"
            with self._hang():
                await asyncio.sleep(fault[0].delay)
            fault = None
        if fault is not None and not fault[1]:
            return await self._fault_response(request, fault[0], label)
        resp = await handler()
        if fault is not None:
            return await self._fault_response(request, fault[0], label)
        return resp

    def _handler(self, method: str, kind: str, tail: list[str], request: web.BaseRequest,
                 body: dict | None):
        """``(route name, async handler)`` of a Files or Batches call, or None for no such route."""
        query = request.query

        def now(response):
            async def handler():
                return response()
            return handler

        if kind == "files":
            if not tail and method == "POST":
                async def upload():
                    return self._upload(request.headers.get("Content-Type", ""), await request.read())
                return "upload", upload
            if not tail and method == "GET":
                return "list_files", now(lambda: self._list_files(query))
            if len(tail) == 1 and method in ("GET", "DELETE"):
                return ("delete_file" if method == "DELETE" else "file",
                        now(lambda: self._file(tail[0], delete=method == "DELETE")))
            if len(tail) == 2 and tail[1] == "content" and method == "GET":
                return "content", now(lambda: self._content(tail[0]))
        else:
            if not tail and method == "POST":
                return "create", now(lambda: self._create(body))
            if not tail and method == "GET":
                return "list_batches", now(lambda: self._list_batches(query))
            if len(tail) == 1 and method == "GET":
                return "retrieve", now(lambda: self._retrieve(tail[0]))
            if len(tail) == 2 and tail[1] == "cancel" and method == "POST":
                return "cancel", now(lambda: self._cancel(tail[0]))
        return None

    # ------------------------------------------------------------------ files
    def _new_file(self, filename: str, purpose: str, data: bytes) -> dict:
        with self._block:
            fid = f"file-{self._next['file']}"
            self._next["file"] += 1
            obj = {"id": fid, "object": "file", "bytes": len(data),
                   "created_at": int(time.time()), "filename": filename, "purpose": purpose,
                   "status": "processed"}
            self._files[fid] = obj
            self._contents[fid] = data
            return obj

    def _upload(self, content_type: str, raw: bytes) -> web.Response:
        try:
            fields = parse_multipart(content_type, raw)
        except ValueError as exc:
            return _error(400, str(exc))
        for key in ("purpose", "file"):
            if key not in fields:
                return _error(400, f"Missing required parameter: '{key}'.",
                              "missing_required_parameter", key)
        purpose = fields["purpose"][1].decode("utf-8", "replace")
        filename, data = fields["file"]
        if len(data) > self.max_file_bytes:
            return _error(400, f"File exceeds the maximum size of {self.max_file_bytes} bytes.",
                          "file_too_large", "file")
        lines: list[tuple[str, dict]] = []
        if purpose == "batch":
            try:
                lines = self._parse_batch_file(data)
            except ValueError as exc:
                return _error(400, str(exc), "invalid_file", "file")
        obj = self._new_file(filename or "upload", purpose, data)
        with self._block:
            self._file_lines[obj["id"]] = lines
            self._uploads.append(dict(obj))
        return web.json_response(obj)

    def _parse_batch_file(self, data: bytes) -> list[tuple[str, dict]]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("The file is not UTF-8 text.") from None
        numbered = [(i, s) for i, s in enumerate(text.split("\n"), 1) if s.strip()]
        if not numbered:
            raise ValueError("The file contains no requests.")
        if len(numbered) > self.max_requests_per_file:
            raise ValueError(f"The file has {len(numbered)} requests; the maximum is "
                             f"{self.max_requests_per_file}.")
        lines, seen = [], set()
        for i, line in numbered:
            try:
                obj = json.loads(line)
            except ValueError:
                raise ValueError(f"Line {i} is not valid JSON.") from None
            if not isinstance(obj, dict) or set(obj) != {"custom_id", "method", "url", "body"}:
                raise ValueError(f"Line {i} must be an object with exactly the keys "
                                 "custom_id, method, url and body.")
            cid = obj["custom_id"]
            if not isinstance(cid, str) or not cid:
                raise ValueError(f"Line {i}: custom_id must be a non-empty string.")
            if obj["method"] != "POST":
                raise ValueError(f"Line {i}: method must be POST.")
            if not isinstance(obj["url"], str) or not isinstance(obj["body"], dict):
                raise ValueError(f"Line {i}: url must be a string and body an object.")
            if cid in seen:
                raise ValueError(f"Line {i}: the custom_id {cid!r} is a duplicate of another "
                                 "request. The custom_id must be unique in a batch.")
            seen.add(cid)
            lines.append((cid, obj["body"]))
        return lines

    def _list_files(self, query) -> web.Response:
        purpose = query.get("purpose")
        with self._block:
            data = [dict(f) for f in reversed(self._files.values())
                    if purpose is None or f["purpose"] == purpose]
        if query.get("order") == "asc":
            data.reverse()
        return web.json_response(self._page(data, query, 10_000))

    def _file(self, file_id: str, delete: bool) -> web.Response:
        with self._block:
            obj = self._files.get(file_id)
            if obj is None:
                return _error(404, f"No such File object: {file_id}", param="id")
            if not delete:
                return web.json_response(dict(obj))
            del self._files[file_id], self._contents[file_id]
            self._file_lines.pop(file_id, None)
        return web.json_response({"id": file_id, "object": "file", "deleted": True})

    def _content(self, file_id: str) -> web.Response:
        with self._block:
            data = self._contents.get(file_id)
        if data is None:
            return _error(404, f"No such File object: {file_id}", param="id")
        return web.Response(body=data, content_type="application/octet-stream")

    # ---------------------------------------------------------------- batches
    def _create(self, body: dict | None) -> web.Response:
        if body is None:
            return _error(400, "Request body is not a JSON object.")
        for key in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(key), str):
                return _error(400, f"Missing required parameter: '{key}'.",
                              "missing_required_parameter", key)
        if body["endpoint"] not in CHAT_ENDPOINTS:
            return _error(400, f"Unsupported endpoint {body['endpoint']!r} (the fake serves "
                          "only chat completions).", "invalid_value", "endpoint")
        if body["completion_window"] != "24h":
            return _error(400, "completion_window must be '24h'.", "invalid_value",
                          "completion_window")
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            return _error(400, "metadata must be an object.", "invalid_type", "metadata")
        fid = body["input_file_id"]
        with self._block:
            if fid not in self._files:
                return _error(404, f"No such File object: {fid}", param="input_file_id")
            if self._files[fid]["purpose"] != "batch":
                return _error(400, f"File {fid} was not uploaded with purpose 'batch'.",
                              "invalid_value", "input_file_id")
            lines = self._file_lines[fid]
            bid = f"batch_{self._next['batch']}"
            self._next["batch"] += 1
            now = int(time.time())
            obj = {"id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                   "input_file_id": fid, "completion_window": "24h", "status": "validating",
                   "output_file_id": None, "error_file_id": None, "created_at": now,
                   "in_progress_at": None, "expires_at": now + 86_400, "finalizing_at": None,
                   "completed_at": None, "failed_at": None, "expired_at": None,
                   "cancelling_at": None, "cancelled_at": None,
                   "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                   "metadata": metadata}
            tokens = sum(math.ceil(_content_chars(b) / 4) + int(
                b.get("max_tokens") or b.get("max_completion_tokens") or 0) for _, b in lines)
            models = [b.get("model") for _, b in lines if isinstance(b.get("model"), str)]
            batch = _Batch(obj, lines, tokens, models[0] if models else None,
                           fail=self._fail_next, expire_after=self._expire_next, lose_files=self._lose_next,
                           strays=self._strays_next)
            self._fail_next = self._expire_next = None
            self._lose_next, self._strays_next = False, []
            self._batches[bid] = batch
            self._created.append(json.loads(json.dumps(body)))
            return web.json_response(self._copy(batch))

    def _retrieve(self, batch_id: str) -> web.Response:
        with self._block:
            batch = self._batches.get(batch_id)
            if batch is None:
                return _error(404, f"No batch found with id '{batch_id}'.", param="batch_id")
            self._step(batch)
            while self.finish_on_retrieve and batch.obj["status"] not in TERMINAL:
                self._step(batch)
            return web.json_response(self._copy(batch))

    def _list_batches(self, query) -> web.Response:
        with self._block:
            data = [self._copy(b) for b in reversed(self._batches.values())]
        return web.json_response(self._page(data, query, 20))

    def _cancel(self, batch_id: str) -> web.Response:
        with self._block:
            batch = self._batches.get(batch_id)
            if batch is None:
                return _error(404, f"No batch found with id '{batch_id}'.", param="batch_id")
            status = batch.obj["status"]
            if status in TERMINAL:
                return _error(400, f"Cannot cancel a batch with status '{status}'.")
            if status != "cancelling":
                batch.obj["status"] = "cancelling"
                batch.obj["cancelling_at"] = int(time.time())
            return web.json_response(self._copy(batch))

    @staticmethod
    def _page(data: list[dict], query, default_limit: int) -> dict:
        try:
            limit = max(1, int(query.get("limit", default_limit)))
        except ValueError:
            limit = default_limit
        after = query.get("after")
        if after is not None:
            ids = [d["id"] for d in data]
            data = data[ids.index(after) + 1:] if after in ids else []
        page = data[:limit]
        return {"object": "list", "data": page, "has_more": len(data) > limit,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None}

    @staticmethod
    def _copy(batch: _Batch) -> dict:
        return json.loads(json.dumps(batch.obj))

    # ------------------------------------------------------------ progression
    def _step(self, batch: _Batch) -> None:
        """Move ``batch`` one state forward; the caller holds ``self._block``."""
        obj, now = batch.obj, int(time.time())
        status = obj["status"]
        if status == "validating":
            failure = batch.fail or self._over_token_limit(batch)
            if failure is not None:
                obj["status"], obj["failed_at"] = "failed", now
                obj["errors"] = {"object": "list", "data": [
                    {"code": failure[0], "message": failure[1], "param": None, "line": None}]}
            else:
                obj["status"], obj["in_progress_at"] = "in_progress", now
        elif status == "in_progress":
            if batch.expire_after is None:
                self._answer(batch, batch.lines)
                obj["status"], obj["finalizing_at"] = "finalizing", now
            else:
                done = batch.lines[:batch.expire_after]
                self._answer(batch, done)
                for cid, _ in batch.lines[len(done):]:
                    batch.errors.append(self._line(cid, None, {
                        "code": "batch_expired", "message": EXPIRED_MESSAGE}))
                self._count(batch)
                self._write_files(batch)
                obj["status"], obj["expired_at"] = "expired", now
        elif status == "finalizing":
            self._write_files(batch)
            obj["status"], obj["completed_at"] = "completed", now
        elif status == "cancelling":
            self._write_files(batch)
            obj["status"], obj["cancelled_at"] = "cancelled", now

    def _over_token_limit(self, batch: _Batch) -> tuple[str, str] | None:
        limit = self.enqueued_token_limit
        if limit is None:
            return None
        queued = sum(b.tokens for b in self._batches.values()
                     if b is not batch and b.obj["status"] in ACTIVE)
        if queued + batch.tokens <= limit:
            return None
        return ("token_limit_exceeded",
                f"Enqueued token limit reached for {batch.model or 'this model'} in "
                f"organization org-fake. Limit: {limit:,} enqueued tokens. Please try again "
                "once some in_progress batches have been completed.")

    def _line(self, custom_id: str, response: dict | None, error: dict | None) -> dict:
        rid = self._next["req"]
        self._next["req"] += 1
        if response is not None:
            response = {"status_code": response["status_code"],
                        "request_id": f"req_fake{rid:08d}", "body": response["body"]}
        return {"id": f"batch_req_{rid}", "custom_id": custom_id, "response": response,
                "error": error}

    def _answer(self, batch: _Batch, lines: list[tuple[str, dict]]) -> None:
        """Answer ``lines`` like online requests, filling the batch's output/error lines."""
        for cid, body in lines:
            self._lines_run.append(cid)
            with self._lock:
                n = self._chat_count
                self._chat_count += 1
            reply = self._pick_reply(body, n)
            if reply.kind == "ok":
                batch.outputs.append(self._line(cid, {
                    "status_code": 200, "body": self._completion(reply, body, n)}, None))
            elif reply.kind == "status":
                payload = reply.body if reply.body is not None else error_body(reply.status_code)
                batch.errors.append(self._line(cid, {
                    "status_code": reply.status_code, "body": payload}, None))
            elif reply.kind == "malformed":
                line = self._line(cid, {"status_code": reply.status_code,
                                        "body": reply.raw.decode("utf-8", "replace")}, None)
                (batch.outputs if reply.status_code == 200 else batch.errors).append(line)
            else:  # "hang" / "drop": the request never produced a response
                batch.errors.append(self._line(cid, None, {
                    "code": "server_error",
                    "message": f"The server had an error processing this request ({reply.kind})."}))
        self._count(batch)

    @staticmethod
    def _count(batch: _Batch) -> None:
        batch.obj["request_counts"].update(completed=len(batch.outputs),
                                           failed=len(batch.errors))

    def _write_files(self, batch: _Batch) -> None:
        bid = batch.obj["id"]
        if batch.strays and batch.lines:
            template = batch.lines[0][1]
            for cid in batch.strays:  # answered, though never asked (not paid: not in lines_run)
                reply = Reply.ok(f"Question: who is {cid}?\nAnswer: a stray.")
                batch.outputs.append(self._line(cid, {"status_code": 200,
                                                      "body": self._completion(reply, template, 0)}, None))
            batch.strays = []
        for key, lines, suffix in (("output_file_id", batch.outputs, "output"),
                                   ("error_file_id", batch.errors, "error")):
            if lines and batch.obj[key] is None:
                data = "".join(json.dumps(line) + "\n" for line in lines).encode()
                batch.obj[key] = self._new_file(f"{bid}_{suffix}.jsonl", "batch_output",
                                                data)["id"]
                if batch.lose_files:
                    del self._files[batch.obj[key]], self._contents[batch.obj[key]]
