"""RunStore: the run folder's JSONL files (IdSet, the id memory it uses, is in test_idset.py)."""

from __future__ import annotations

import json

import pytest

from syphus.errors import UserError
from syphus.engine.store import ERRORS, INVALID, META, PAIRS, RunStore, read_jsonl, repair_torn_tail, rewrite_answers


def lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def answer(qid, n_pairs=1, prompt=10, completion=5, truncated=False, **extra):
    return {"id": qid, "pairs": [{"instruction": f"q{i}", "answer": f"a{i}"} for i in range(n_pairs)],
            "raw": "Question: q0\nAnswer: a0", "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
            "truncated": truncated, **extra}


def error(qid, kind="server_error", message="HTTP 500"):
    return {"id": qid, "kind": kind, "message": message, "status": 500, "attempts": 3}


# --- writing ------------------------------------------------------------------------


def test_writes_go_to_the_three_files(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer("a", n_pairs=2), valid=True)
        s.write_answer({**answer("b", n_pairs=0), "reason": "no pairs found"}, valid=False)
        s.write_error(error("c"))
    assert [r["id"] for r in lines(tmp_path / PAIRS)] == ["a"]
    assert lines(tmp_path / PAIRS)[0]["pairs"][1] == {"instruction": "q1", "answer": "a1"}
    assert [(r["id"], r["reason"]) for r in lines(tmp_path / INVALID)] == [("b", "no pairs found")]
    assert [(r["id"], r["kind"]) for r in lines(tmp_path / ERRORS)] == [("c", "server_error")]
    assert s.totals["queries_with_pairs"] == 1 and s.totals["pairs"] == 2
    assert s.totals["invalid"] == 1 and s.totals["errors"] == 1


def test_each_record_is_one_line_with_unicode_kept(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer("v_1", raw="Question: 什么？\nAnswer: 球。"), valid=True)
    text = (tmp_path / PAIRS).read_text(encoding="utf-8")
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "什么" in text  # not \u-escaped


def test_write_without_explicit_open(tmp_path):
    s = RunStore(tmp_path / "new" / "run")
    s.write_answer(answer("a"), valid=True)
    s.close()
    assert [r["id"] for r in lines(tmp_path / "new" / "run" / PAIRS)] == ["a"]


def test_int_ids_are_remembered_as_strings(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer(7), valid=True)
    assert "7" in RunStore(tmp_path).open().answered


# --- reopening -----------------------------------------------------------------------


def test_reopen_knows_answered_failed_and_totals(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer("a", n_pairs=3, prompt=100, completion=50), valid=True)
        s.write_answer(answer("b", n_pairs=2, prompt=10, completion=5, truncated=True), valid=True)
        s.write_answer({**answer("c", n_pairs=0, prompt=1, completion=2), "reason": "x"}, valid=False)
        s.write_error(error("d"))
        s.write_error(error("e"))
    r = RunStore(tmp_path).open()
    try:
        assert all(q in r.answered for q in "abc")
        assert "d" not in r.answered and "e" not in r.answered
        assert "d" in r.failed and "e" in r.failed and "a" not in r.failed
        assert len(r.answered) == 3 and len(r.failed) == 2
        assert r.totals == {"queries_with_pairs": 2, "pairs": 5, "invalid": 1, "errors": 2, "truncated": 1,
                            "prompt_tokens": 111, "completion_tokens": 57, "errors_to_resend": 2,
                            "estimated_prompt_tokens": 0, "estimated_completion_tokens": 0}
        assert not r.settled("d")  # a 500 is the endpoint's failure: a plain rerun sends it again
    finally:
        r.close()


def test_reopen_and_append_keeps_everything(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer("a"), valid=True)
    with RunStore(tmp_path) as s:
        s.write_answer(answer("b"), valid=True)
        assert s.totals["queries_with_pairs"] == 2
    assert [r["id"] for r in lines(tmp_path / PAIRS)] == ["a", "b"]


def test_empty_folder(tmp_path):
    s = RunStore(tmp_path / "fresh").open()
    assert len(s.answered) == 0 and len(s.failed) == 0
    assert s.totals["pairs"] == 0 and s.totals["errors"] == 0
    s.close()


def test_failed_then_answered_in_a_later_session(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_error(error("a"))
        s.write_error(error("b"))
    with RunStore(tmp_path) as s:
        assert s.totals["errors"] == 2
        s.write_answer(answer("a"), valid=True)
        assert s.totals["errors"] == 1
    assert [r["id"] for r in lines(tmp_path / ERRORS)] == ["b"]
    r = RunStore(tmp_path).open()
    assert "a" in r.answered and "a" not in r.failed and "b" in r.failed and r.totals["errors"] == 1
    r.close()


# --- torn and corrupt lines -------------------------------------------------------------


def test_torn_last_line_is_moved_aside(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer("a"), valid=True)
        s.write_answer(answer("b"), valid=True)
    torn = b'{"id": "c", "pairs": [{"instr'
    with (tmp_path / PAIRS).open("ab") as f:
        f.write(torn)
    s = RunStore(tmp_path).open()
    try:
        assert s.repaired == {PAIRS: len(torn)}
        assert "a" in s.answered and "b" in s.answered and "c" not in s.answered
        assert s.totals["queries_with_pairs"] == 2
    finally:
        s.close()
    assert (tmp_path / (PAIRS + ".torn")).read_bytes() == torn + b"\n"
    assert [r["id"] for r in lines(tmp_path / PAIRS)] == ["a", "b"]
    assert (tmp_path / PAIRS).read_bytes().endswith(b"}\n")


def test_torn_line_in_errors_and_appending_after_repair(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_error(error("x"))
    with (tmp_path / ERRORS).open("ab") as f:
        f.write(b'{"id": "y", "ki')
    with RunStore(tmp_path) as s:
        assert s.repaired == {ERRORS: len(b'{"id": "y", "ki')}
        s.write_error(error("z"))
    assert [r["id"] for r in lines(tmp_path / ERRORS)] == ["x", "z"]


def test_file_that_is_only_a_torn_line(tmp_path):
    (tmp_path / INVALID).write_bytes(b'{"id": "partial"')
    s = RunStore(tmp_path).open()
    s.close()
    assert (tmp_path / INVALID).read_bytes() == b""
    assert (tmp_path / (INVALID + ".torn")).read_bytes() == b'{"id": "partial"\n'


def test_repair_torn_tail_on_a_long_file_without_newline_near_the_end(tmp_path):
    p = tmp_path / "x.jsonl"
    good = json.dumps({"id": "a"}).encode() + b"\n"
    tail = b"x" * 200_000  # longer than one 64 KiB read block
    p.write_bytes(good + tail)
    assert repair_torn_tail(p) == len(tail)
    assert p.read_bytes() == good
    assert repair_torn_tail(p) == 0  # already clean


def test_repair_torn_tail_leaves_clean_files_alone(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"id": "a"}\n')
    assert repair_torn_tail(p) == 0
    assert not (tmp_path / "x.jsonl.torn").exists()
    assert repair_torn_tail(tmp_path / "missing.jsonl") == 0


def test_non_json_middle_line_names_file_and_line(tmp_path):
    (tmp_path / PAIRS).write_text('{"id": "a"}\n\n{"id": "b"}\nnot json at all\n{"id": "c"}\n', encoding="utf-8")
    with pytest.raises(UserError) as e:
        RunStore(tmp_path).open()
    assert f"{tmp_path / PAIRS}:4:" in str(e.value)


def test_non_utf8_middle_line_names_file_and_line(tmp_path):
    (tmp_path / PAIRS).write_bytes(b'{"id": "a"}\n\xff\xfe not utf-8\n{"id": "b"}\n')
    with pytest.raises(UserError) as e:
        RunStore(tmp_path).open()
    assert f"{tmp_path / PAIRS}:2:" in str(e.value)


def test_record_without_id_names_file_and_line(tmp_path):
    (tmp_path / INVALID).write_text('{"id": "a"}\n{"no_id": 1}\n', encoding="utf-8")
    with pytest.raises(UserError, match=rf"{INVALID}:2: a record without 'id'"):
        RunStore(tmp_path).open()


def test_read_jsonl_yields_line_numbers(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"id": 1}\n\n{"id": 2}\n', encoding="utf-8")
    assert list(read_jsonl(p)) == [(1, {"id": 1}), (3, {"id": 2})]
    assert list(read_jsonl(tmp_path / "missing.jsonl")) == []


# --- compacting errors ------------------------------------------------------------------


def test_compact_drops_errors_of_answered_ids_and_keeps_the_last_per_id(tmp_path):
    records = [error("a", message="first a"), error("b", message="first b"), error("a", message="second a"),
               error("c"), error("b", message="second b")]
    (tmp_path / ERRORS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (tmp_path / PAIRS).write_text(json.dumps(answer("c")) + "\n", encoding="utf-8")
    s = RunStore(tmp_path).open()  # stale lines are compacted on open
    try:
        kept = lines(tmp_path / ERRORS)
        assert [(r["id"], r["message"]) for r in kept] == [("a", "second a"), ("b", "second b")]
        assert "c" not in s.failed and "a" in s.failed and "b" in s.failed
        assert s.totals["errors"] == 2
        s.write_error(error("d"))  # the descriptor still appends to the new file
    finally:
        s.close()
    assert [r["id"] for r in lines(tmp_path / ERRORS)] == ["a", "b", "d"]


def test_repeated_error_in_one_session_keeps_only_the_last(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_error(error("a", message="one"))
        s.write_error(error("a", message="two"))
        assert s.totals["errors"] == 1
    assert [(r["id"], r["message"]) for r in lines(tmp_path / ERRORS)] == [("a", "two")]


def test_compact_errors_without_a_file_is_a_no_op(tmp_path):
    s = RunStore(tmp_path)
    s.compact_errors()
    assert not (tmp_path / ERRORS).exists()


# --- stored as given ----------------------------------------------------------------------


def test_records_and_meta_are_stored_byte_for_byte(tmp_path):
    """The store rewrites nothing: words that are placeholder keys elsewhere ('none', 'x', 'id') stay."""
    with RunStore(tmp_path) as s:
        s.write_answer(answer("none", raw="There is none; x marks the id."), valid=True)
        s.write_answer({**answer("x"), "reason": "id"}, valid=False)
        s.write_error(error("id", message="HTTP 400: none"))
        s.write_meta({"endpoint": {"url": "http://127.0.0.1:1/v1"}, "id": "x"})
    assert lines(tmp_path / PAIRS)[0]["raw"] == "There is none; x marks the id."
    assert [r["id"] for r in lines(tmp_path / INVALID)] == ["x"] and lines(tmp_path / INVALID)[0]["reason"] == "id"
    assert lines(tmp_path / ERRORS)[0]["message"] == "HTTP 400: none"
    assert json.loads((tmp_path / META).read_text()) == {"endpoint": {"url": "http://127.0.0.1:1/v1"}, "id": "x"}
    assert not (tmp_path / (META + ".tmp")).exists()


def test_write_meta_replaces(tmp_path):
    s = RunStore(tmp_path)
    s.write_meta({"v": 1})
    s.write_meta({"v": 2})
    assert json.loads((tmp_path / META).read_text()) == {"v": 2}


# --- rewrite_answers ----------------------------------------------------------------------


def test_rewrite_moves_invalid_to_pairs_when_valid_now(tmp_path):
    with RunStore(tmp_path) as s:
        s.write_answer(answer("a"), valid=True)
        s.write_answer({**answer("b", n_pairs=0), "reason": "no labels"}, valid=False)
        s.write_answer({**answer("c", n_pairs=0), "reason": "no labels"}, valid=False)

    def transform(rec):
        if rec["id"] == "b":
            new = {k: v for k, v in rec.items() if k != "reason"}
            new["pairs"] = [{"instruction": "fixed", "answer": "yes"}]
            return new, True
        return rec, bool(rec["pairs"])

    counts = rewrite_answers(tmp_path, transform)
    assert counts == {"valid": 2, "invalid": 1}
    assert [r["id"] for r in lines(tmp_path / PAIRS)] == ["a", "b"]
    assert lines(tmp_path / PAIRS)[1]["pairs"] == [{"instruction": "fixed", "answer": "yes"}]
    assert [r["id"] for r in lines(tmp_path / INVALID)] == ["c"]
    assert not list(tmp_path.glob("*.reparse"))
    s = RunStore(tmp_path).open()
    assert s.totals["queries_with_pairs"] == 2 and s.totals["invalid"] == 1
    s.close()


def test_rewrite_dedupes_an_id_present_in_both_files(tmp_path):
    (tmp_path / PAIRS).write_text(json.dumps(answer("a", n_pairs=2)) + "\n", encoding="utf-8")
    (tmp_path / INVALID).write_text(json.dumps({**answer("a", n_pairs=0), "reason": "old"}) + "\n"
                                    + json.dumps({**answer("b", n_pairs=0), "reason": "r"}) + "\n",
                                    encoding="utf-8")
    seen = []

    def transform(rec):
        seen.append(rec["id"])
        return rec, bool(rec["pairs"])

    counts = rewrite_answers(tmp_path, transform)
    assert sorted(seen) == ["a", "b"]
    assert counts == {"valid": 1, "invalid": 1}
    ids = [r["id"] for r in lines(tmp_path / PAIRS)] + [r["id"] for r in lines(tmp_path / INVALID)]
    assert sorted(ids) == ["a", "b"]


def test_rewrite_keeps_records_as_they_are_and_repairs_torn_tails(tmp_path):
    (tmp_path / PAIRS).write_bytes(json.dumps(answer("a", raw="key sk-X")).encode() + b"\n" + b'{"id": "tor')
    counts = rewrite_answers(tmp_path, lambda r: (r, True))
    assert counts == {"valid": 1, "invalid": 0}
    assert lines(tmp_path / PAIRS)[0]["raw"] == "key sk-X"
    assert (tmp_path / (PAIRS + ".torn")).exists()
