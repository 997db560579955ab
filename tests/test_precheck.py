"""The check before spending (``syphus.inputs``): every input read before the first request, bad ones
reported together, repeated ids handled by ``--on_duplicate``, blank items skipped and listed, and the
check's count as the progress total. Runs go through the CLI (or ``run_job``) against the fake server."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from syphus.cli import main
from syphus.cli.progress import render
from syphus.config import load_config
from syphus.dataset import AbstractDataset
from syphus.engine.job import run_job
from syphus.errors import UserError
from syphus.idset import IdCounts
from syphus.inputs import DuplicateFinder, HeldItems, check_inputs, run_stream
from tests.conftest import KEY
from tests.helpers import lines, make_numbers


def run(argv: list[str], server) -> tuple[int, str]:
    """``syphus`` in this process against the fake server: its exit code and everything it printed."""
    out = io.StringIO()
    code = main(["--base_url", server.base_url, "--quiet", *argv], env={"OPENAI_API_KEY": KEY}, stream=out)
    return code, out.getvalue()


def user_texts(server) -> list[str]:
    """The last user message of every request the server received, in arrival order."""
    return [r.body["messages"][-1]["content"] for r in server.requests]


ITEMS_PLUGIN = '''
from abstract_dataset import AbstractDataset

ITEMS = {items!r}


class Items(AbstractDataset):
    """Yields ITEMS as (id, sentences) pairs, each tagged with its position "n" (kept in the record's meta)."""

    def __init__(self, name="Items", prompt_path="prompts/numbers.json", query_inputs_path=None):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for n, (qid, text) in enumerate(ITEMS, 1):
            yield {{"id": qid, "sentences": text, "n": n}}
{extra}
'''


def make_items(root: Path, items: list[tuple], extra: str = "") -> None:
    """datasets/items.py yielding ``items`` ((id, sentences) pairs); ``extra`` is more of the class body."""
    make_numbers(root, 0)  # the prompt file
    (root / "datasets" / "items.py").write_text(ITEMS_PLUGIN.format(items=items, extra=textwrap.indent(extra, "    ")))


def records(project: Path, version: str = "v1") -> dict[str, dict]:
    """{id: record} of pairs.jsonl; an id twice is a failure."""
    recs = lines(project / "output" / "Items" / version / "pairs.jsonl")
    ids = [r["id"] for r in recs]
    assert len(ids) == len(set(ids)), ids
    return {r["id"]: r for r in recs}


# --- bad inputs, reported before anything is paid ---------------------------------------------------

def test_a_bad_item_deep_in_a_large_input_is_reported_before_any_request(project, server):
    make_numbers(project, 10_000)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace(
        'yield {"id"', 'yield {"id": f"q{i:05d}", "sentences": ["a", "list"]} if i == 7999 else {"id"'))
    code, out = run(["--name", "Numbers.numbers"], server)
    assert code == 2, out
    assert server.requests == [] and not (project / "output").exists()
    assert out.startswith("error: datasets/numbers.py (Numbers): bad query inputs, found before any request "
                          "was sent (10,000 items read from 10000): 1 item with 'sentences' that is not a string\n")
    assert "  item 8000 (id 'q07999') has 'sentences' of type list\n" in out
    assert "fix: each item needs 'id' (a non-empty string) and 'sentences' (a string): correct _load_query_inputs " \
           "in datasets/numbers.py" in out
    assert "Traceback" not in out


def test_every_kind_is_counted_and_the_first_offenders_are_shown(project, server):
    items = [(f"v{i}", f"text {i}") for i in range(300)]
    for i in range(100, 120):
        items[i] = (None, "no id")  # 20 bad ids
    items[150] = ("v150", 7)  # sentences not a string
    items[200] = ("v3", "again")  # repeats item 4's id
    items[250] = ("v5", "again")
    make_items(project, items)
    code, out = run(["--name", "Items", "--dry-run"], server)
    assert code == 2 and server.requests == []
    first, *rest = out.splitlines()
    assert first.endswith("(300 items read): 20 items with an id that is not a non-empty string, "
                          "2 items repeating an earlier item's id, 1 item with 'sentences' that is not a string")
    shown = [line for line in rest if line.startswith("  item ")]
    assert shown == ["  item 101 has id None; ids must be non-empty strings",  # one of each kind, then the first
                     "  item 102 has id None; ids must be non-empty strings",
                     "  item 103 has id None; ids must be non-empty strings",
                     "  item 151 (id 'v150') has 'sentences' of type int",
                     "  item 201 repeats id 'v3' (first at item 4)"]
    assert any("--on_duplicate suffix" in line for line in rest)


NOT_UTF8_PLUGIN = '''
from abstract_dataset import AbstractDataset
from syphus.dataset import iter_jsonl


class Captions(AbstractDataset):
    def __init__(self, name="Captions", prompt_path="prompts/numbers.json", query_inputs_path="captions.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        {body}
'''

PLAIN_OPEN = '''import json
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                yield {"id": row["id"], "sentences": row["text"]}'''

WITH_HELPER = '''for n, row in iter_jsonl(path, "captions file"):
            yield {"id": row["id"], "sentences": row["text"]}'''


@pytest.mark.parametrize("body", [PLAIN_OPEN, WITH_HELPER], ids=["open", "iter_jsonl"])
def test_a_line_that_is_not_utf8_is_named_by_file_and_line(project, server, body):
    make_numbers(project, 0)
    (project / "datasets" / "captions.py").write_text(NOT_UTF8_PLUGIN.format(body=body))
    rows = [json.dumps({"id": f"c{i}", "text": f"caption {i}"}).encode() for i in range(10_000)]
    rows[7999] = rows[7999].replace(b"caption", b"capt\xe9on")  # latin-1, line 8000
    (project / "captions.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    code, out = run(["--name", "Captions"], server)
    assert code == 2, out
    assert server.requests == [] and not (project / "output").exists()
    assert out.startswith("error: datasets/captions.py (Captions): bad query inputs")
    assert "1 item not UTF-8" in out and "captions.jsonl:8000" in out and "reading stopped there" in out
    assert "save the file as UTF-8" in out


def test_a_decode_error_without_a_file_is_placed_by_item_number(project, server):
    make_items(project, [("a", "x")], extra='''
def _load_query_inputs(self, path):
    yield {"id": "a", "sentences": "x"}
    b"\\xff".decode("utf-8")
''')
    code, out = run(["--name", "Items"], server)
    assert code == 2 and server.requests == []
    assert "  item 2: not UTF-8 text (invalid start byte)" in out


def test_text_that_cannot_be_sent_as_utf8_is_a_bad_item(project, server):
    make_items(project, [("a", "fine"), ("b", "caf\udce9")])  # read with errors="surrogateescape"
    code, out = run(["--name", "Items"], server)
    assert code == 2 and server.requests == []
    assert "item 2 (id 'b') holds text that is not valid UTF-8" in out


def test_dry_run_runs_the_same_check(project, server):
    make_numbers(project, 50)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace('yield {"id"', 'yield {"sentences": "x"} if i == 40 else {"id"'))
    code, out = run(["--name", "Numbers.numbers", "--dry-run"], server)
    assert code == 2 and "item 41 has no 'id'" in out and not (project / "output").exists()


def test_a_plugin_failing_part_way_is_reported_with_what_came_before(project, server):
    make_items(project, [], extra='''
def _load_query_inputs(self, path):
    yield {"id": "a", "sentences": "x"}
    yield {"id": "a", "sentences": "y"}
    raise KeyError("video")
''')
    code, out = run(["--name", "Items"], server)
    assert code == 2 and server.requests == []
    assert "(2 items read): 1 item unreadable (the plugin failed), 1 item repeating an earlier item's id" in out
    assert "  item 3: reading query inputs failed: KeyError: 'video'; reading stopped there" in out


# --- repeated ids: --on_duplicate -----------------------------------------------------------------

# "a" three times (not adjacent), "b" twice, and an item whose own id is "a#2"
REPEATS = [("a", "first a"), ("b", "first b"), ("a#2", "own a#2"), ("c", "only c"), ("a", "second a"),
           ("b", "second b"), ("a", "third a")]


def test_repeated_ids_stop_the_run_and_name_the_flag(project, server):
    make_items(project, REPEATS)
    code, out = run(["--name", "Items"], server)
    assert code == 2 and server.requests == [] and not (project / "output").exists()
    assert "3 items repeating an earlier item's id" in out
    assert "  item 5 repeats id 'a' (first at item 1)" in out and "  item 6 repeats id 'b' (first at item 2)" in out
    assert "--on_duplicate suffix" in out and "merge" in out and "skip" in out


def test_suffix_numbers_repeats_in_stream_order_passing_over_taken_names(project, server):
    make_items(project, REPEATS)
    code, out = run(["--name", "Items", "--on_duplicate", "suffix"], server)
    assert code == 0, out
    got = {qid: rec["meta"]["n"] for qid, rec in records(project).items()}
    assert got == {"a": 1, "b": 2, "a#2": 3, "c": 4, "a#3": 5, "b#2": 6, "a#4": 7}  # "a#2" is the plugin's own
    assert "3 item(s) repeated one of 2 id(s): renamed id#2, id#3 in order (--on_duplicate suffix)" in out


def test_suffix_ids_are_the_same_when_a_run_is_resumed(project, server):
    make_items(project, REPEATS)
    assert run(["--name", "Items", "--on_duplicate", "suffix", "--slice_end", "5", "--num_threads", "1"],
               server)[0] == 0
    first = {qid: rec["meta"]["n"] for qid, rec in records(project).items()}
    assert first == {"a": 1, "b": 2, "a#2": 3, "c": 4, "a#3": 5}
    assert run(["--name", "Items", "--on_duplicate", "suffix"], server)[0] == 0  # resumed: the rest only
    got = {qid: rec["meta"]["n"] for qid, rec in records(project).items()}
    assert got == {"a": 1, "b": 2, "a#2": 3, "c": 4, "a#3": 5, "b#2": 6, "a#4": 7}
    assert len(server.requests) == 7  # nothing sent twice


def test_skip_keeps_the_first_item_of_each_id(project, server):
    make_items(project, REPEATS)
    code, out = run(["--name", "Items", "--on_duplicate", "skip"], server)
    assert code == 0, out
    assert {qid: rec["meta"]["n"] for qid, rec in records(project).items()} == {"a": 1, "b": 2, "a#2": 3, "c": 4}
    assert sorted(user_texts(server)) == ["first a", "first b", "only c", "own a#2"]


def test_merge_joins_the_sentences_of_an_id_by_default(project, server):
    make_items(project, REPEATS)
    code, out = run(["--name", "Items", "--on_duplicate", "merge"], server)
    assert code == 0, out
    recs = records(project)
    assert sorted(recs) == ["a", "a#2", "b", "c"]
    assert recs["a"]["meta"]["n"] == 1  # the first item's other keys
    assert sorted(user_texts(server)) == ["first a\nsecond a\nthird a", "first b\nsecond b", "only c", "own a#2"]


def test_merge_calls_the_plugins_merge_items(project, server):
    make_items(project, REPEATS, extra='''
def merge_items(self, items):
    return {"id": items[0]["id"], "sentences": " | ".join(i["sentences"].upper() for i in items),
            "parts": [i["n"] for i in items]}
''')
    code, out = run(["--name", "Items", "--on_duplicate", "merge"], server)
    assert code == 0, out
    recs = records(project)
    assert recs["a"]["meta"] == {"parts": [1, 5, 7]} and recs["b"]["meta"] == {"parts": [2, 6]}
    assert "FIRST A | SECOND A | THIRD A" in user_texts(server)


def test_on_duplicate_in_a_config_file(project, server):
    make_items(project, REPEATS)
    Path("run.yaml").write_text("on_duplicate: skip\n")
    assert run(["--name", "Items", "--config", "run.yaml"], server)[0] == 0
    assert len(server.requests) == 4
    assert load_config(None, {"on_duplicate": "merge"}).on_duplicate == "merge"
    with pytest.raises(UserError, match="on_duplicate"):
        load_config(None, {"on_duplicate": "keep"})


ORIGINAL_PLUGIN = '''
from abstract_dataset import AbstractDataset


class Captions(AbstractDataset):
    def __init__(self, name="Captions", prompt_path="prompts/numbers.json", query_inputs_path=None):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        query_inputs = []
        for video, caption in [("v1", "a man walks in"), ("v2", "a dog"), ("v1", "he sits down")]:
            query_inputs.append({"id": video, "sentences": caption})
        return query_inputs
'''


def test_an_original_plugin_with_repeated_ids_runs_with_the_flag_the_error_names(project, server):
    make_numbers(project, 0)
    (project / "datasets" / "captions.py").write_text(ORIGINAL_PLUGIN)
    code, out = run(["--name", "Captions"], server)
    assert code == 2 and "item 3 repeats id 'v1' (first at item 1)" in out and "--on_duplicate" in out
    code, out = run(["--name", "Captions", "--on_duplicate", "merge"], server)
    assert code == 0, out
    assert sorted(user_texts(server)) == ["a dog", "a man walks in\nhe sits down"]


def test_a_plugin_that_changes_between_reads_is_stopped(project, server):
    make_items(project, [], extra='''
reads = 0

def _load_query_inputs(self, path):
    type(self).reads += 1
    yield {"id": "a", "sentences": "x"}
    yield {"id": "a" if type(self).reads > 1 else "b", "sentences": "y"}
''')
    code, out = run(["--name", "Items", "--num_threads", "1"], server)
    assert code == 2, out
    assert "error: datasets/items.py (Items): id 'a' came twice when the inputs were read for the run" in out
    assert "Plugins must give the same items on every read" in out


# --- blank items --------------------------------------------------------------------------------------

def test_blank_items_are_skipped_listed_and_counted(project, server):
    make_items(project, [("a", "text"), ("b", ""), ("c", "  \n\t"), ("d", "more"), ("e", "")])
    code, out = run(["--name", "Items"], server)
    assert code == 0, out
    folder = project / "output" / "Items" / "v1"
    assert sorted(records(project)) == ["a", "d"] and len(server.requests) == 2
    assert (folder / "skipped_empty.txt").read_text() == "b\nc\ne\n"
    assert json.loads((folder / "meta.json").read_text())["inputs"] == {
        "items": 5, "queries": 2, "skipped_empty": 3, "repeated_ids": 0, "duplicates": 0, "on_duplicate": "error"}
    assert f"3 blank items (empty sentences) skipped; their ids are in {Path('output/Items/v1/skipped_empty.txt')}" \
        in out


def test_blank_items_are_not_counted_as_repeats(project, server):
    make_items(project, [("a", " "), ("a", "text")])
    assert run(["--name", "Items"], server)[0] == 0
    assert sorted(records(project)) == ["a"]


# --- the progress total -----------------------------------------------------------------------------

async def test_a_generator_plugins_total_is_known(project, server):
    make_numbers(project, 30)  # a generator: count() is None
    shown = []

    def display(stats, clock, extra=None):
        class Line:
            def start(self):
                shown.append(render(stats, 1.0))

            async def stop(self):
                pass
        return Line()

    cfg = load_config(None, {"name": "Numbers.numbers", "endpoint": {"base_url": server.base_url},
                             "slice_start": 5})
    result = await run_job(cfg, {"OPENAI_API_KEY": KEY}, install_signals=False, display=display)
    assert result.stats.total == 25 and result.stats.answered == 25
    assert shown[0].startswith("0/25 0.0%")
    assert result.inputs["items"] == 30 and result.inputs["queries"] == 30


# --- the parts ---------------------------------------------------------------------------------------

class Listed(AbstractDataset):
    """A dataset built in code from a list of (id, sentences)."""

    def __init__(self, pairs):
        self.pairs = pairs
        super().__init__("Listed", None, None)

    def _load_prompt(self, path):
        return {"system_message": "s", "in_context": []}

    def _load_query_inputs(self, path):
        return ({"id": qid, "sentences": text} for qid, text in self.pairs)


def test_repeats_are_found_exactly_across_many_blocks(monkeypatch):
    monkeypatch.setattr(DuplicateFinder, "block", 3)  # many blocks a bucket
    pairs = [(f"id{i}", "t") for i in range(2000)] + [("id7", "t"), ("line\nbreak", "t"), ("line\nbreak", "t"),
                                                      ("id1999", "t"), ("id7", "t")]
    check = check_inputs(Listed(pairs), "src", "merge")
    assert (check.items, check.duplicates, check.queries) == (2005, 4, 2001)
    assert [check.repeats.counts.get(x) for x in ("id7", "line\nbreak", "id1999", "id8")] == [3, 2, 2, 0]
    assert [o.text for o in check.repeats.examples] == [
        "item 2001 repeats id 'id7' (first at item 8)", "item 2003 repeats id 'line\\nbreak' (first at item 2002)",
        "item 2004 repeats id 'id1999' (first at item 2000)", "item 2005 repeats id 'id7' (first at item 8)"]


def test_held_items_spill_to_disk_and_come_back_in_order():
    held = HeldItems(limit=2)
    for n, qid in enumerate(["a", "b", "a", "c", "a", "b"]):
        held.add(qid, {"id": qid, "n": n})
    assert len(held) == 6
    assert [i["n"] for i in held.take("a")] == [0, 2, 4]
    assert [i["n"] for i in held.take("b")] == [1, 5] and held.take("x") == []
    assert len(held) == 1
    held.close()


def test_merge_with_items_held_on_disk(monkeypatch):
    monkeypatch.setattr(HeldItems, "limit", 1)
    pairs = [("a", "1"), ("b", "2"), ("a", "3"), ("b", "4"), ("c", "5"), ("a", "6")]
    ds = Listed(pairs)
    check = check_inputs(ds, "src", "merge")
    assert [(i["id"], i["sentences"]) for i in run_stream(ds, check, "src")] == [
        ("b", "2\n4"), ("c", "5"), ("a", "1\n3\n6")]


def test_merge_items_must_return_an_item():
    class Bad(Listed):
        def merge_items(self, items):
            return "joined"

    ds = Bad([("a", "1"), ("a", "2")])
    check = check_inputs(ds, "src", "merge")
    with pytest.raises(UserError, match=r"^src: merge_items for id 'a' returned a str; return one item"):
        list(run_stream(ds, check, "src"))


def test_id_counts():
    counts = IdCounts()
    for i in range(5000):
        counts.set(f"k{i}", i + 1)
    counts.set("k3", 40)
    assert len(counts) == 5000 and counts.get("k3") == 40 and counts.get("k4999") == 5000 and counts.get("x") == 0
    copy = counts.copy()
    copy.set("k3", 1)
    assert counts.get("k3") == 40 and "k10" in copy and 3 not in copy


def test_a_list_plugin_is_read_once_and_a_generator_once_a_pass():
    reads = []

    class Gen(Listed):
        def _load_query_inputs(self, path):
            reads.append(path)
            yield from ({"id": q, "sentences": t} for q, t in self.pairs)

    ds = Gen([("a", "x"), ("b", "y")])
    check = check_inputs(ds, "src")
    assert [i["id"] for i in run_stream(ds, check, "src")] == ["a", "b"]
    assert len(reads) == 2  # the check's read and the run's
