"""The fail watch: identical endpoint-level failures in a row stop a run; an answer or another kind resets it."""

from __future__ import annotations

from syphus.engine.failwatch import FailWatch
from syphus.errors import FatalError


def test_the_limit_of_the_same_failure_in_a_row_stops_with_the_fix():
    w = FailWatch(3, ["http://127.0.0.1:9/v1", "b"])
    assert w.failed("not_found", "model gone") is None and w.failed("not_found", "model gone") is None
    down = w.failed("not_found", "model gone")
    assert isinstance(down, FatalError)
    text = str(down)
    assert "3 queries in a row failed the same way (not_found: model gone)" in text
    assert "http://127.0.0.1:9/v1, b is not answering" in text and "run the same command again" in text


def test_an_answer_a_query_error_or_another_failure_starts_the_count_again():
    w = FailWatch(2, ["x"])
    assert w.failed("connection") is None
    assert w.failed(None) is None and w.streak == (None, 0)  # an answer
    assert w.failed("connection") is None
    assert w.failed("bad_request") is None and w.streak == (None, 0)  # the query's own error, not the endpoint's
    assert w.failed("connection") is None and w.failed("not_found") is None  # another kind: a new streak of 1
    assert isinstance(w.failed("not_found"), FatalError)


def test_a_run_where_every_error_was_the_endpoints_and_nothing_answered_is_down():
    w = FailWatch(20, ["x"])
    w.failed("connection", "refused")
    assert "all 1 queries failed at the endpoint (the last: connection: refused)" in str(w.all_failed(0, 1))
    assert w.all_failed(1, 1) is None  # something was answered
    assert w.all_failed(0, 2) is None  # one error was the query's own
