"""Tests for the fake Batch/Files API in tests/fakebatch.py."""

from __future__ import annotations

import asyncio
import http.client
import json
import urllib.error
import urllib.request

import aiohttp
import pytest

from tests.fakebatch import EXPIRED_MESSAGE, FakeBatchAPI
from tests.fakeserver import Reply, default_answer


def _body(text: str, max_tokens: int = 0) -> dict:
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": text}]}
    return {**body, "max_tokens": max_tokens} if max_tokens else body


def _jsonl(*bodies: dict, url: str = "/v1/chat/completions") -> bytes:
    return "".join(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": url,
                               "body": b}) + "\n" for i, b in enumerate(bodies)).encode()


def _call(method: str, url: str, payload: dict | None = None, upload: bytes | None = None,
          purpose: str = "batch") -> tuple[int, object]:
    """One request with urllib; returns (status, parsed JSON or raw bytes)."""
    headers, data = {}, None
    if payload is not None:
        headers["Content-Type"], data = "application/json", json.dumps(payload).encode()
    if upload is not None:
        b = "fakeboundary42"
        headers["Content-Type"] = f"multipart/form-data; boundary={b}"
        data = (f'--{b}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n{purpose}\r\n'
                f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="in.jsonl"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + upload + \
            f"\r\n--{b}--\r\n".encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in ctype else raw


def _batch(server: FakeBatchAPI, *bodies: dict) -> str:
    status, file = _call("POST", server.base_url + "/files", upload=_jsonl(*bodies))
    assert status == 200, file
    status, batch = _call("POST", server.base_url + "/batches", {
        "input_file_id": file["id"], "endpoint": "/v1/chat/completions",
        "completion_window": "24h"})
    assert status == 200 and batch["status"] == "validating", batch
    return batch["id"]


def _lines(server: FakeBatchAPI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    status, raw = _call("GET", f"{server.base_url}/files/{file_id}/content")
    assert status == 200
    return [json.loads(line) for line in raw.decode().splitlines()]


def test_upload_create_poll_and_download_with_aiohttp():
    bodies = [_body("Item one: a cat"), _body("Item two: a dog", max_tokens=50)]
    data = _jsonl(*bodies)

    async def go(server):
        async with aiohttp.ClientSession() as s:
            form = aiohttp.FormData()
            form.add_field("purpose", "batch")
            form.add_field("file", data, filename="scenes.jsonl",
                           content_type="application/jsonl")
            async with s.post(server.base_url + "/files", data=form) as r:
                assert r.status == 200
                file = await r.json()
            async with s.post(server.base_url + "/batches", json={
                    "input_file_id": file["id"], "endpoint": "/v1/chat/completions",
                    "completion_window": "24h", "metadata": {"run": "r1"}}) as r:
                assert r.status == 200
                created = await r.json()
            polled = []
            for _ in range(4):
                async with s.get(f"{server.base_url}/batches/{created['id']}") as r:
                    polled.append(await r.json())
            out_id = polled[-1]["output_file_id"]
            async with s.get(f"{server.base_url}/files/{out_id}/content") as r:
                output = await r.read()
            async with s.get(f"{server.base_url}/files/{file['id']}/content") as r:
                echoed = await r.read()
            async with s.post(server.base_url + "/chat/completions", json=bodies[0]) as r:
                online = await r.json()
            return file, created, polled, output, echoed, online

    with FakeBatchAPI() as server:
        file, created, polled, output, echoed, online = asyncio.run(go(server))
        assert {k: file[k] for k in ("id", "object", "bytes", "filename", "purpose")} == {
            "id": "file-0", "object": "file", "bytes": len(data), "filename": "scenes.jsonl",
            "purpose": "batch"}
        assert echoed == data and server.uploads == [file]
        assert created["object"] == "batch" and created["id"] == "batch_0"
        assert created["input_file_id"] == "file-0" and created["metadata"] == {"run": "r1"}
        assert created["output_file_id"] is None and created["errors"] is None
        assert created["request_counts"] == {"total": 2, "completed": 0, "failed": 0}
        assert [p["status"] for p in polled] == ["in_progress", "finalizing", "completed",
                                                 "completed"]
        done = polled[-1]
        assert done["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
        assert done["error_file_id"] is None and done["completed_at"] is not None
        lines = [json.loads(line) for line in output.decode().splitlines()]
        assert [ln["custom_id"] for ln in lines] == ["c0", "c1"]
        assert all(ln["error"] is None and ln["response"]["status_code"] == 200
                   and ln["id"].startswith("batch_req_") for ln in lines)
        first = lines[0]["response"]["body"]
        assert first["object"] == "chat.completion" and first["id"] == "chatcmpl-0"
        assert first["choices"][0]["message"]["content"] == default_answer(bodies[0])
        # Same machinery as the online route: identical apart from id/created.
        assert {k: v for k, v in first.items() if k not in ("id", "created")} == \
            {k: v for k, v in online.items() if k not in ("id", "created")}
        assert server.batches_created[0]["metadata"] == {"run": "r1"}
        assert server.calls[:3] == [("POST", "/v1/files"), ("POST", "/v1/batches"),
                                    ("GET", "/v1/batches/batch_0")]


def test_scripted_errors_go_to_the_error_file():
    with FakeBatchAPI() as server:
        server.enqueue(Reply.ok("Question: a?\nAnswer: b."), Reply.status(500),
                       Reply.status(400, body={"error": {"message": "bad", "code": "x"}}),
                       Reply.drop(), Reply.malformed(b"not json"))
        bid = _batch(server, *[_body(f"item {i}") for i in range(5)])
        done = server.finish_all()[0]
        assert done["status"] == "completed"
        assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 3}
        out, err = _lines(server, done["output_file_id"]), _lines(server, done["error_file_id"])
        assert [ln["custom_id"] for ln in out] == ["c0", "c4"]
        assert out[0]["response"]["body"]["choices"][0]["message"]["content"] == \
            "Question: a?\nAnswer: b."
        assert out[1]["response"] == {"status_code": 200, "request_id": out[1]["response"][
            "request_id"], "body": "not json"}
        assert [(ln["custom_id"], ln["response"] and ln["response"]["status_code"])
                for ln in err] == [("c1", 500), ("c2", 400), ("c3", None)]
        assert err[0]["error"] is None and err[0]["response"]["body"]["error"]["type"] == \
            "server_error"
        assert err[1]["response"]["body"] == {"error": {"message": "bad", "code": "x"}}
        assert err[2]["error"]["code"] == "server_error"
        assert server.advance(bid)["status"] == "completed"  # finished batches stay put


def test_fail_next_batch_and_enqueued_token_limit():
    with FakeBatchAPI(enqueued_token_limit=300) as server:
        server.fail_next_batch(message="Too many tokens.")
        failed = _batch(server, _body("x"))
        b = server.advance(failed)
        assert b["status"] == "failed" and b["failed_at"] is not None
        assert b["errors"]["object"] == "list"
        assert b["errors"]["data"][0]["code"] == "token_limit_exceeded"
        assert b["errors"]["data"][0]["message"] == "Too many tokens."
        assert b["errors"]["data"][0]["line"] is None and b["output_file_id"] is None
        # 200 + 1 tokens enqueued; another 200 + 1 would exceed 300.
        first = _batch(server, _body("abcd", max_tokens=200))
        assert server.advance(first)["status"] == "in_progress"
        second = _batch(server, _body("abcd", max_tokens=200))
        _, b = _call("GET", f"{server.base_url}/batches/{second}")
        assert b["status"] == "failed"
        assert b["errors"]["data"][0]["code"] == "token_limit_exceeded"
        server.finish_all()
        third = _batch(server, _body("abcd", max_tokens=200))
        assert server.advance(third)["status"] == "in_progress"


def test_expire_next_batch_after_two():
    with FakeBatchAPI() as server:
        server.expire_next_batch(after=2)
        bid = _batch(server, *[_body(f"item {i}") for i in range(4)])
        assert server.advance(bid)["status"] == "in_progress"
        b = server.advance(bid)
        assert b["status"] == "expired" and b["expired_at"] is not None
        assert b["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
        assert [ln["custom_id"] for ln in _lines(server, b["output_file_id"])] == ["c0", "c1"]
        err = _lines(server, b["error_file_id"])
        assert [ln["custom_id"] for ln in err] == ["c2", "c3"]
        assert err[0]["response"] is None and err[0]["error"] == {
            "code": "batch_expired", "message": EXPIRED_MESSAGE}
        assert server.finish_all()[0]["status"] == "expired"


def test_file_limits_and_validation():
    with FakeBatchAPI(max_requests_per_file=3, max_file_bytes=2000) as server:
        url = server.base_url + "/files"
        status, err = _call("POST", url, upload=_jsonl(*[_body("x")] * 4))
        assert status == 400 and "maximum is 3" in err["error"]["message"]
        status, err = _call("POST", url, upload=_jsonl(_body("x" * 3000)))
        assert status == 400 and err["error"]["code"] == "file_too_large"
        dup = _jsonl(_body("a")) + _jsonl(_body("b"))  # both custom_id "c0"
        status, err = _call("POST", url, upload=dup)
        assert status == 400 and "duplicate" in err["error"]["message"]
        bad = b'{"custom_id": "a", "method": "GET", "url": "/v1/chat/completions", "body": {}}\n'
        assert _call("POST", url, upload=bad)[0] == 400
        assert _call("POST", url, upload=b'{"custom_id": "a"}\n')[0] == 400
        assert _call("POST", url, upload=b"not json\n")[0] == 400
        assert server.uploads == []
        status, err = _call("POST", server.base_url + "/batches", {
            "input_file_id": "file-404", "endpoint": "/v1/chat/completions",
            "completion_window": "24h"})
        assert status == 404 and "error" in err and server.batches_created == []


def test_list_batches_files_and_cancel():
    with FakeBatchAPI() as server:
        ids = [_batch(server, _body(f"item {i}")) for i in range(3)]
        _, page = _call("GET", server.base_url + "/batches?limit=2")
        assert [b["id"] for b in page["data"]] == ids[:0:-1]
        assert page["has_more"] is True and page["first_id"] == ids[2]
        assert page["last_id"] == ids[1]
        _, page = _call("GET", f"{server.base_url}/batches?limit=2&after={ids[1]}")
        assert [b["id"] for b in page["data"]] == [ids[0]] and page["has_more"] is False
        status, b = _call("POST", f"{server.base_url}/batches/{ids[0]}/cancel")
        assert status == 200 and b["status"] == "cancelling"
        assert server.advance(ids[0])["status"] == "cancelled"
        assert _call("POST", f"{server.base_url}/batches/{ids[0]}/cancel")[0] == 400
        server.finish_all()
        _, files = _call("GET", server.base_url + "/files?purpose=batch")
        assert files["object"] == "list"
        assert [f["id"] for f in files["data"]] == ["file-2", "file-1", "file-0"]
        _, every = _call("GET", server.base_url + "/files")
        assert {f["purpose"] for f in every["data"]} == {"batch", "batch_output"}
        status, f = _call("GET", server.base_url + "/files/file-1")
        assert status == 200 and f["filename"] == "in.jsonl"
        assert _call("GET", server.base_url + "/files/file-99")[0] == 404
        assert _call("GET", server.base_url + "/batches/batch_99")[0] == 404


def test_azure_paths():
    with FakeBatchAPI() as server:
        q = "?api-version=2024-10-21"
        base = server.root_url + "/openai"
        status, file = _call("POST", base + "/files" + q,
                             upload=_jsonl(_body("hi"), url="/chat/completions"))
        assert status == 200
        status, b = _call("POST", base + "/batches" + q, {
            "input_file_id": file["id"], "endpoint": "/chat/completions",
            "completion_window": "24h"})
        assert status == 200 and b["endpoint"] == "/chat/completions"
        for expected in ("in_progress", "finalizing", "completed"):
            status, b = _call("GET", f"{base}/batches/{b['id']}{q}")
            assert status == 200 and b["status"] == expected
        status, raw = _call("GET", f"{base}/files/{b['output_file_id']}/content{q}")
        line = json.loads(raw)
        assert line["custom_id"] == "c0" and line["response"]["body"]["object"] == "chat.completion"
        assert ("GET", f"/openai/batches/{b['id']}") in server.calls
        # Online chat completions still work on the same server.
        status, chat = _call("POST", base + "/deployments/d/chat/completions" + q, _body("x"))
        assert status == 200 and chat["object"] == "chat.completion"


def test_azure_paths_need_an_api_version():
    with FakeBatchAPI() as server:
        status, err = _call("GET", server.root_url + "/openai/batches")
        assert status == 404 and "api-version" in err["error"]["message"]
        assert _call("GET", server.root_url + "/openai/batches?api-version=2024-10-21")[0] == 200


def test_fail_next_before_or_after_the_work():
    with FakeBatchAPI() as server:
        server.fail_next("upload", Reply.status(500), times=2)
        url = server.base_url + "/files"
        assert _call("POST", url, upload=_jsonl(_body("x")))[0] == 500
        assert _call("POST", url, upload=_jsonl(_body("x")))[0] == 500
        assert server.uploads == []  # refused before anything was stored
        server.fail_next("upload", Reply.status(503), after=True)
        assert _call("POST", url, upload=_jsonl(_body("x")))[0] == 503
        assert len(server.uploads) == 1  # stored, only the answer was lost
        status, file = _call("POST", url, upload=_jsonl(_body("x")))
        assert status == 200 and file["id"] == "file-1"
        server.fail_next("create", Reply.drop(), after=True)
        with pytest.raises((OSError, http.client.HTTPException)):  # the connection is cut mid-answer
            _call("POST", server.base_url + "/batches", {
                "input_file_id": file["id"], "endpoint": "/v1/chat/completions",
                "completion_window": "24h"})
        assert len(server.batches_created) == 1  # made all the same
        server.fail_next("retrieve", Reply.malformed(b"<html>", content_type="text/html"))
        bid = server.batches[0]["id"]
        assert _call("GET", f"{server.base_url}/batches/{bid}") == (200, b"<html>")
        assert _call("GET", f"{server.base_url}/batches/{bid}")[1]["id"] == bid
