"""syphus.engine.client: the one error mapping (raw responses, the SDK's errors, batch result lines) and
the parsing of a completion body."""

from __future__ import annotations

import email.utils
import time

import pytest

from syphus.engine.client import (classify, classify_batch_line, classify_sdk_error, content_filtered,
                                  parse_completion, retry_after_seconds)
from syphus.errors import FatalError, ItemError, RateLimited, TransientError


# --- classify -----------------------------------------------------------------------------


def body(code=None, message="msg", type_=None, inner=None):
    import json
    err = {"message": message, "code": code}
    if type_:
        err["type"] = type_
    if inner:
        err["innererror"] = {"code": inner}
    return json.dumps({"error": err}).encode()


def test_429_rate_limited_with_retry_after_ms():
    e = classify(429, {"retry-after-ms": "1500", "retry-after": "9"}, body("rate_limit_exceeded"))
    assert isinstance(e, RateLimited) and isinstance(e, TransientError)
    assert e.retry_after == pytest.approx(1.5)
    assert e.status == 429 and e.kind == "rate_limited"


def test_429_retry_after_seconds():
    e = classify(429, {"retry-after": "20"}, body())
    assert isinstance(e, RateLimited) and e.retry_after == 20.0


def test_429_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    e = classify(429, {"retry-after": when}, body())
    assert isinstance(e, RateLimited)
    assert 115 <= e.retry_after <= 121


def test_429_without_hint():
    e = classify(429, {}, b"")
    assert isinstance(e, RateLimited) and e.retry_after is None


def test_retry_after_seconds_directly():
    now = 1_700_000_000.0
    assert retry_after_seconds({"retry-after": email.utils.formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert retry_after_seconds({"retry-after": email.utils.formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert retry_after_seconds({"retry-after": "garbage"}) is None
    assert retry_after_seconds({"retry-after-ms": "bad", "retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "-5"}) == 0.0
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize("payload", [body("insufficient_quota"), body(None, type_="insufficient_quota")])
def test_429_insufficient_quota_is_fatal(payload):
    e = classify(429, {"retry-after": "1"}, payload)
    assert isinstance(e, FatalError) and not isinstance(e, TransientError)
    assert e.status == 429 and "quota" in str(e)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_fatal(status):
    e = classify(status, {}, body("invalid_api_key", "Incorrect API key provided: sk-***"))
    assert isinstance(e, FatalError) and e.status == status
    assert "OPENAI_API_KEY" in str(e)


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504])
def test_server_side_failures_are_transient(status):
    e = classify(status, {"retry-after": "3"}, b"<html>Bad Gateway</html>")
    assert type(e) is TransientError
    assert e.status == status and e.retry_after == 3.0
    assert str(status) in str(e)


def test_400_is_an_item_error():
    e = classify(400, {}, body("invalid_request_error", "bad param"))
    assert isinstance(e, ItemError) and e.kind == "bad_request" and e.status == 400
    assert "bad param" in str(e)


@pytest.mark.parametrize("payload", [
    body("content_filter"),
    body("content_policy_violation"),
    body("invalid_request_error", inner="ResponsibleAIPolicyViolation"),
])
def test_400_content_filter(payload):
    e = classify(400, {}, payload)
    assert isinstance(e, ItemError) and e.kind == "content_filter"


def test_400_context_length_is_too_large():
    e = classify(400, {}, body("context_length_exceeded"))
    assert isinstance(e, ItemError) and e.kind == "too_large"


def test_404_not_found():
    e = classify(404, {}, body("DeploymentNotFound"))
    assert isinstance(e, ItemError) and e.kind == "not_found"


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b'{"error": "plain string"}', b"\xff\xfe",
                                 b'{"error": null}', b"null"])
def test_classify_tolerates_any_body(raw):
    e = classify(400, {}, raw)
    assert isinstance(e, ItemError) and e.kind == "bad_request"
    assert "HTTP 400" in str(e)


# --- the same mapping for the SDK (batch mode's control plane) and for batch result lines ---------------


def sdk_status_error(status, headers, raw, read=True):
    """An ``openai.APIStatusError`` as the SDK raises it (``.body`` is the inner error object)."""
    import json

    import httpx2
    import openai
    request = httpx2.Request("GET", "https://api.example/v1/batches/batch_1")
    if read:
        response = httpx2.Response(status, headers=headers, content=raw, request=request)
    else:  # closed before its body was read
        response = httpx2.Response(status, headers=headers, stream=httpx2.ByteStream(raw), request=request)
    try:
        data = json.loads(raw)
    except ValueError:
        data = raw.decode("utf-8", "replace")
    inner = data.get("error", data) if isinstance(data, dict) else data
    return openai.APIStatusError(f"Error code: {status}", response=response, body=inner)


@pytest.mark.parametrize("status, headers, raw", [
    (429, {"retry-after": "7"}, body("rate_limit_exceeded")),
    (429, {}, body("insufficient_quota")),
    (401, {}, body("invalid_api_key", "Incorrect API key provided")),
    (500, {"retry-after-ms": "1500"}, b"<html>Bad Gateway</html>"),
    (409, {}, body("conflict")),
    (400, {}, body("content_policy_violation")),
    (400, {}, body("invalid_request_error", inner="ResponsibleAIPolicyViolation")),
    (400, {}, body("context_length_exceeded")),
    (404, {}, body("not_found", "No batch found")),
])
@pytest.mark.parametrize("read", [True, False], ids=["read", "unread"])
def test_sdk_status_errors_map_exactly_like_raw_responses(status, headers, raw, read):
    mapped = classify_sdk_error(sdk_status_error(status, headers, raw, read), "polling batch batch_1")
    direct = classify(status, headers, raw)
    assert type(mapped) is type(direct) and str(mapped) == str(direct) and vars(mapped) == vars(direct)


def test_sdk_timeouts_connection_failures_and_garbage_are_transient():
    import json

    import aiohttp
    import httpx2
    import openai
    request = httpx2.Request("GET", "https://api.example/v1/files/file-1/content")
    e = classify_sdk_error(openai.APITimeoutError(request=request), "downloading file file-1", 30.0)
    assert type(e) is TransientError and e.kind == "timeout" and "within 30s" in str(e)
    lost = openai.APIConnectionError(request=request)
    lost.__cause__ = httpx2.ConnectError("connection refused")
    e = classify_sdk_error(lost, "uploading f.jsonl")
    assert type(e) is TransientError and e.kind == "connection" and "ConnectError: connection refused" in str(e)
    # raised while a streamed body is read, after the SDK's own wrapping
    assert classify_sdk_error(httpx2.ReadTimeout("slow"), "downloading").kind == "timeout"
    assert classify_sdk_error(httpx2.ReadError("reset by peer"), "downloading").kind == "connection"
    assert classify_sdk_error(aiohttp.ServerDisconnectedError(), "downloading").kind == "connection"
    e = classify_sdk_error(json.JSONDecodeError("Expecting value", '{"id": ', 7), "polling")
    assert type(e) is TransientError and e.kind == "malformed"
    assert classify_sdk_error(KeyError("id"), "polling") is None  # a bug is raised as it is


@pytest.mark.parametrize("code, cls, kind", [
    ("batch_expired", TransientError, "batch_expired"),
    ("batch_cancelled", TransientError, "batch_cancelled"),
    ("server_error", TransientError, "server_error"),
    ("rate_limit_exceeded", TransientError, "rate_limit_exceeded"),
    (None, TransientError, "unknown"),
    ("content_policy_violation", ItemError, "content_filter"),
    ("content_filter", ItemError, "content_filter"),
    ("context_length_exceeded", ItemError, "too_large"),
    ("invalid_value", ItemError, "invalid_value"),
])
def test_classify_batch_line(code, cls, kind):
    e = classify_batch_line(code, "what the line says")
    assert type(e) is cls and e.kind == kind
    assert str(e) == f"{code or 'unknown'}: what the line says"


def test_content_filtered_is_a_withheld_reply_only():
    e = content_filtered("content_filter", None)
    assert isinstance(e, ItemError) and e.kind == "content_filter" and e.status == 200 and e.maybe_billed
    assert content_filtered("content_filter", "") is not None
    assert content_filtered("content_filter", "the part that was let through") is None
    assert content_filtered("stop", None) is None and content_filtered(None, "") is None


# --- parse_completion ----------------------------------------------------------------------


def test_parse_completion_ok():
    raw = (b'{"model": "gpt-4o-mini", "choices": [{"message": {"role": "assistant", "content": "Q"},'
           b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}')
    assert parse_completion(raw) == ("Q", "stop", {"prompt_tokens": 3, "completion_tokens": 1}, "gpt-4o-mini")


def test_parse_completion_null_content_and_missing_usage():
    text, finish, usage, model = parse_completion(
        b'{"choices": [{"message": {"content": null}, "finish_reason": "content_filter"}]}')
    assert text is None and finish == "content_filter" and usage == {} and model is None


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"null", b"[]", b"{}", b'{"choices": []}', b'{"choices": [{}]}',
    b'{"choices": [{"message": null}]}', b'{"choices": "x"}', b'{"choices": [{"message": {"content": 5}}]}',
    b'{"choices": [{"message": {"content": ["a"]}}]}', b"\xff\xfe\x00", b'{"choices": [{"message": {"con',
])
def test_parse_completion_malformed_is_transient(raw):
    with pytest.raises(TransientError) as e:
        parse_completion(raw)
    assert e.value.kind == "malformed"


def test_a_bodys_encoded_start_is_kept_once_per_schema_not_once_per_request():
    """Text requests come with a fresh empty dict of fields each: one start is kept for all of them (it
    was one a request, held for the whole run); fresh schemas each time stay bounded too."""
    import json

    from syphus.config import GenerationConfig
    from syphus.engine import client as client_module
    from syphus.engine.client import ChatClient
    from syphus.engine.endpoint import Endpoint

    chat = ChatClient(Endpoint("compatible", "http://127.0.0.1:9/v1/chat/completions", "m", {}), GenerationConfig())
    messages = [{"role": "user", "content": "hi"}]
    plain = chat.body(messages, None)
    assert all(chat.body(messages, {}) == plain for _ in range(1000))
    assert len(chat._prefixes) == 1
    schema = {"response_format": {"type": "json_object"}}
    for k in range(3 * client_module.PREFIXES):
        fields = {**schema, "seed": k}  # a new dict each time
        assert json.loads(chat.body(messages, fields)) == {**json.loads(plain), **fields}
        assert len(chat._prefixes) <= client_module.PREFIXES
    assert json.loads(chat.body(messages, schema))["response_format"] == schema["response_format"]
