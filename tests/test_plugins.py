"""Plugins written for the original Syphus, found by path and resolved from --name (FORMATS.md §1)."""

from __future__ import annotations

import io
import json
import sys
import textwrap
from pathlib import Path

import pytest

from syphus import plugins
from syphus.dataset import AbstractDataset
from syphus.errors import UserError
from syphus.parse import ParseResult

# --- an original-style plugin, as users bring it ----------------------------------------

VIDEO_PLUGIN = '''\
from abstract_dataset import AbstractDataset
import json


class DenseCaptions(AbstractDataset):
    def __init__(self, name="DenseCaptions", prompt_path="prompts/dense_captions.json", query_inputs_path="annotations/dense_captions/train.json"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        with open(path, "r") as f:
            json_data = json.load(f)
        query_inputs = []
        for video_id, annotation in json_data.items():
            sentences = ""
            for (start, end), sentence in zip(annotation["timestamps"], annotation["sentences"]):
                sentences += f"{start:.2f} - {end:.2f}: {sentence.strip()}\\n"
            query_inputs.append({"id": video_id, "sentences": sentences})
        return query_inputs
'''

PROMPT = {
    "system_message": "You are an AI assistant that can understand video.",
    "in_context": [
        {"role": "user", "content": "0.00 - 5.00: A man walks in.\n"},
        {"role": "assistant", "content": [
            {"Question": "Who walks in?", "Answer": "A man."},
            {"Question": "When?", "Answer": "At the start."},
        ]},
    ],
}

ANNOTATIONS = {
    "v_QOlSCBRmfWY": {"duration": 82.73, "timestamps": [[0.83, 19.86], [17.37, 60.81]],
                      "sentences": ["A young woman is seen standing in a room.", " She then begins dancing."]},
    "v_ehGHCYKzyZ8": {"duration": 61.72, "timestamps": [[0, 7.49]],
                      "sentences": ["A man is standing outside holding a rope."]},
}


@pytest.fixture(autouse=True)
def _isolated_plugins(monkeypatch):
    """Each test imports its plugins afresh and leaves no sys.path / sys.modules entries behind."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(plugins, "_loaded", {})
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("syphus_plugin_") or name.startswith("_syphus_prompt_"):
            del sys.modules[name]


def write(root: Path, rel: str, text: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


@pytest.fixture
def proj(tmp_path, monkeypatch):
    write(tmp_path, "datasets/video.py", VIDEO_PLUGIN)
    write(tmp_path, "prompts/dense_captions.json", json.dumps(PROMPT, indent=2))
    write(tmp_path, "annotations/dense_captions/train.json", json.dumps(ANNOTATIONS))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(name: str, **overrides):
    cls, path = plugins.resolve(name, "datasets")
    return plugins.instantiate(cls, path, **overrides)


# --- the original plugin under every name form ---------------------------------------------


@pytest.mark.parametrize("name", ["video.DenseCaptions", "DenseCaptions.video", "DenseCaptions"])
def test_original_plugin_resolves_under_all_name_forms(proj, name):
    cls, path = plugins.resolve(name, "datasets")
    assert cls.__name__ == "DenseCaptions"
    assert issubclass(cls, AbstractDataset)
    assert path.name == "video.py"
    ds = plugins.instantiate(cls, path)
    assert ds.name == "DenseCaptions"
    assert ds.prompt_path == "prompts/dense_captions.json"
    assert ds.query_inputs_path == "annotations/dense_captions/train.json"
    assert len(ds) == 2 and ds.count() == 2


def test_original_plugin_iterates_like_the_original(proj):
    ds = load("video.DenseCaptions")
    items = list(ds)
    assert len(items) == 2
    for item in items:
        assert set(item) == {"system_messages", "in_context", "query_input"}
        assert item["system_messages"] == PROMPT["system_message"]
        assert item["in_context"] == PROMPT["in_context"]  # list form, as the original yields it
    assert [i["query_input"]["id"] for i in items] == ["v_QOlSCBRmfWY", "v_ehGHCYKzyZ8"]
    assert items[0]["query_input"]["sentences"] == (
        "0.83 - 19.86: A young woman is seen standing in a room.\n17.37 - 60.81: She then begins dancing.\n")


def test_original_plugin_prompt_attribute_and_messages(proj):
    ds = load("DenseCaptions")
    assert ds.prompt == PROMPT  # self.prompt is what _load_prompt returned
    msgs = ds.build_messages({"id": "x", "sentences": "0.00 - 1.00: hi\n"})
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"] == "Question: Who walks in?\nAnswer: A man.\nQuestion: When?\nAnswer: At the start.\n"
    assert msgs[-1]["content"] == "0.00 - 1.00: hi\n"


def test_abstract_dataset_module_name_is_the_syphus_class(proj):
    load("video.DenseCaptions")
    import abstract_dataset
    assert abstract_dataset.AbstractDataset is AbstractDataset


def test_module_name_that_is_not_an_identifier(proj):
    write(proj, "datasets/3d.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset


        class SceneNavigation(AbstractDataset):
            def __init__(self, name="SceneNavigation", prompt_path="prompts/dense_captions.json",
                         query_inputs_path="annotations/scannet.json"):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_query_inputs(self, path):
                import json
                data = json.load(open(path))
                return [{"id": k, "sentences": "\\n".join(f"{o}: {s}" for o, s in v["description"])}
                        for k, v in data.items()]
        '''))
    write(proj, "annotations/scannet.json",
          json.dumps({"scene0000_00": {"description": [["chair", "a wooden chair"], ["desk", "a desk"]]}}))
    for name in ("3d.SceneNavigation", "SceneNavigation.3d", "SceneNavigation"):
        ds = load(name)
        assert type(ds).__name__ == "SceneNavigation"
        assert [i["query_input"] for i in ds] == [{"id": "scene0000_00",
                                                   "sentences": "chair: a wooden chair\ndesk: a desk"}]
    assert "3d.SceneNavigation" in plugins.available("datasets")


def test_helper_files_starting_with_underscore_are_not_plugins(proj):
    write(proj, "datasets/_helpers.py", "raise RuntimeError('must not be imported as a plugin')\n")
    assert plugins.available("datasets") == ["video.DenseCaptions"]


def test_plugin_may_import_a_helper_module_beside_it(proj):
    write(proj, "datasets/_shared_text.py", "def join(xs):\n    return ' | '.join(xs)\n")
    write(proj, "datasets/joined.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset
        from _shared_text import join


        class Joined(AbstractDataset):
            def __init__(self, name="Joined", prompt_path="prompts/dense_captions.json", query_inputs_path=None):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_query_inputs(self, path):
                return [{"id": "j1", "sentences": join(["a", "b"])}]
        '''))
    ds = load("joined.Joined")
    assert [i["query_input"]["sentences"] for i in ds] == ["a | b"]


# --- overridden hooks -------------------------------------------------------------


def test_plugin_overriding_load_prompt_from_a_python_module(proj):
    write(proj, "prompts/video_prompt.py", textwrap.dedent('''\
        system_message = "From a module."
        in_context = [
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": [{"Question": "mq", "Answer": "ma"}]},
        ]
        '''))
    write(proj, "datasets/modprompt.py", textwrap.dedent('''\
        import importlib.util
        from abstract_dataset import AbstractDataset


        class ModPrompt(AbstractDataset):
            def __init__(self, name="ModPrompt", prompt_path="prompts/video_prompt.py",
                         query_inputs_path="annotations/dense_captions/train.json"):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_prompt(self, path):
                spec = importlib.util.spec_from_file_location("video_prompt", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return {"system_message": module.system_message, "in_context": module.in_context}

            def _load_query_inputs(self, path):
                return [{"id": "m1", "sentences": "s"}]
        '''))
    ds = load("ModPrompt.modprompt")
    (item,) = list(ds)
    assert item["system_messages"] == "From a module."
    assert ds.build_messages(item["query_input"])[2]["content"] == "Question: mq\nAnswer: ma\n"


def test_default_prompt_loader_reads_a_python_module_too(proj):
    write(proj, "prompts/p.py", "system_message = 'py'\nin_context = []\n")
    ds = load("video.DenseCaptions", prompt_path="prompts/p.py")
    assert ds.build_messages({"id": "a", "sentences": "b"}) == [
        {"role": "system", "content": "py"}, {"role": "user", "content": "b"}]


@pytest.mark.parametrize("signature, body", [
    ("self, path", "json.load(open(path))"),
    ("self", "json.load(open(self.prompt_path))"),
    ("self", "{'system_message': 'fixed', 'in_context': []}"),
])
def test_plugin_overriding_load_prefix_readme_style(proj, signature, body):
    write(proj, "datasets/prefixed.py", textwrap.dedent(f'''\
        import json
        from abstract_dataset import AbstractDataset


        class Prefixed(AbstractDataset):
            def __init__(self, name="Prefixed", prompt_path="prompts/dense_captions.json",
                         query_inputs_path=None):
                self.calls = 0
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_prefix({signature}):
                self.calls += 1
                return {body}

            def _load_query_inputs(self, path):
                return [{{"id": "p1", "sentences": "s"}}]
        '''))
    ds = load("Prefixed")
    assert ds.calls == 1
    expected = "fixed" if "fixed" in body else PROMPT["system_message"]
    assert [i["system_messages"] for i in ds] == [expected]


def test_plugin_with_differently_named_params_and_overrides(proj):
    write(proj, "datasets/renamed.py", textwrap.dedent('''\
        import json
        from abstract_dataset import AbstractDataset


        class Renamed(AbstractDataset):
            def __init__(self, name="Renamed", in_context_path="prompts/nowhere.json",
                         annotation_path="annotations/nowhere.json"):
                super().__init__(name, in_context_path, annotation_path)

            def _load_query_inputs(self, path):
                return [{"id": k, "sentences": " ".join(v["sentences"])} for k, v in json.load(open(path)).items()]
        '''))
    alt_prompt = dict(PROMPT, system_message="alternative prompt")
    write(proj, "prompts/alt.json", json.dumps(alt_prompt))
    ds = load("renamed.Renamed", prompt_path="prompts/alt.json",
              query_inputs_path="annotations/dense_captions/train.json")
    assert ds.prompt_path == "prompts/alt.json"
    assert ds.query_inputs_path == "annotations/dense_captions/train.json"
    assert [i["system_messages"] for i in ds] == ["alternative prompt", "alternative prompt"]
    assert len(ds) == 2


def test_without_overrides_the_defaults_are_used(proj):
    # Renamed's defaults point nowhere: without overrides instantiate must fail naming the path.
    write(proj, "datasets/renamed.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset


        class Renamed(AbstractDataset):
            def __init__(self, name="Renamed", in_context_path="prompts/nowhere.json", annotation_path="x"):
                super().__init__(name, in_context_path, annotation_path)

            def _load_query_inputs(self, path):
                return []
        '''))
    with pytest.raises(UserError, match="prompts/nowhere.json"):
        load("renamed.Renamed")


def test_overrides_do_not_leak_into_the_next_instantiation(proj):
    write(proj, "prompts/alt.json", json.dumps(dict(PROMPT, system_message="alt")))
    assert load("video.DenseCaptions", prompt_path="prompts/alt.json").prompt["system_message"] == "alt"
    assert load("video.DenseCaptions").prompt["system_message"] == PROMPT["system_message"]


def test_query_inputs_override_applies(proj):
    write(proj, "annotations/other.json", json.dumps({"v_other": {"duration": 1, "timestamps": [[0, 1]],
                                                                  "sentences": ["x"]}}))
    ds = load("video.DenseCaptions", query_inputs_path="annotations/other.json")
    assert [i["query_input"]["id"] for i in ds] == ["v_other"]


# --- streaming plugins ----------------------------------------------------------------


STREAM_PLUGIN = '''\
from abstract_dataset import AbstractDataset

OPENED = []


class Stream(AbstractDataset):
    def __init__(self, name="Stream", prompt_path="prompts/dense_captions.json",
                 query_inputs_path="annotations/stream.jsonl"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        OPENED.append(path)
        with open(path) as f:
            for line in f:
                import json
                row = json.loads(line)
                yield {"id": row["video"], "sentences": row["caption"]}
'''


def test_generator_plugin_streams(proj):
    write(proj, "datasets/stream.py", STREAM_PLUGIN)
    write(proj, "annotations/stream.jsonl",
          "".join(json.dumps({"video": f"v{i}", "caption": f"c{i}"}) + "\n" for i in range(5)))
    cls, path = plugins.resolve("stream.Stream", "datasets")
    module = sys.modules[cls.__module__]
    ds = plugins.instantiate(cls, path)
    assert module.OPENED == []  # nothing read at construction
    assert ds.count() is None
    with pytest.raises(TypeError, match="streams"):
        len(ds)
    it = iter(ds)
    first = next(it)
    assert first["query_input"] == {"id": "v0", "sentences": "c0"}
    assert module.OPENED == ["annotations/stream.jsonl"]
    assert [x["query_input"]["id"] for x in it] == ["v1", "v2", "v3", "v4"]


def test_generator_plugin_with_missing_file_does_not_fail_at_construction(proj):
    write(proj, "datasets/stream.py", STREAM_PLUGIN)
    ds = load("Stream")  # the file is opened lazily
    with pytest.raises(FileNotFoundError):
        list(ds.iter_query_inputs())


# --- validation of the items --------------------------------------------------------------


def dataset_with(proj, items_expr: str, name="Items"):
    write(proj, f"datasets/{name.lower()}.py", textwrap.dedent(f'''\
        from abstract_dataset import AbstractDataset


        class {name}(AbstractDataset):
            def __init__(self, name="{name}", prompt_path="prompts/dense_captions.json", query_inputs_path=None):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_query_inputs(self, path):
                return {items_expr}
        '''))
    return load(f"{name.lower()}.{name}")


def test_missing_id_names_source_and_item(proj):
    ds = dataset_with(proj, '[{"id": "a", "sentences": "s"}, {"sentences": "no id"}]')
    it = ds.iter_query_inputs("datasets/items.py (Items)")
    assert next(it)["id"] == "a"
    with pytest.raises(UserError) as e:
        next(it)
    assert "datasets/items.py (Items)" in str(e.value) and "item 2" in str(e.value) and "'id'" in str(e.value)


def test_default_source_is_the_class_name(proj):
    ds = dataset_with(proj, '[{"sentences": "no id"}]')
    with pytest.raises(UserError, match=r"^Items: item 1 has no 'id'"):
        list(ds.iter_query_inputs())


def test_duplicate_id(proj):
    ds = dataset_with(proj, '[{"id": "a", "sentences": "s"}, {"id": "b", "sentences": "s"}, '
                            '{"id": "a", "sentences": "again"}]')
    with pytest.raises(UserError) as e:
        list(ds.iter_query_inputs("SRC"))
    assert "SRC" in str(e.value) and "item 3" in str(e.value) and "'a'" in str(e.value)
    assert "unique" in str(e.value)


def test_duplicate_id_also_stops_plain_iteration(proj):
    ds = dataset_with(proj, '[{"id": "a", "sentences": "s"}, {"id": "a", "sentences": "s"}]')
    with pytest.raises(UserError, match="repeats id 'a'"):
        list(ds)


@pytest.mark.parametrize("sentences, got", [("['a', 'b']", "list"), ("None", "NoneType"), ("3", "int")])
def test_non_string_sentences(proj, sentences, got):
    ds = dataset_with(proj, f'[{{"id": "v1", "sentences": {sentences}}}]')
    with pytest.raises(UserError) as e:
        list(ds.iter_query_inputs("SRC"))
    assert "SRC: item 1" in str(e.value) and "'v1'" in str(e.value) and got in str(e.value)


def test_missing_sentences(proj):
    ds = dataset_with(proj, '[{"id": "v1"}]')
    with pytest.raises(UserError, match="no 'sentences'"):
        list(ds.iter_query_inputs())


def test_int_id_is_converted_to_str(proj):
    ds = dataset_with(proj, '[{"id": 498792, "sentences": "a"}, {"id": 7, "sentences": "b"}]')
    assert [i["id"] for i in ds.iter_query_inputs()] == ["498792", "7"]


def test_int_and_str_versions_of_one_id_are_duplicates(proj):
    ds = dataset_with(proj, '[{"id": 7, "sentences": "a"}, {"id": "7", "sentences": "b"}]')
    with pytest.raises(UserError, match="item 2 repeats id '7'"):
        list(ds.iter_query_inputs())


@pytest.mark.parametrize("bad_id", ["''", "True", "None", "1.5", "['x']"])
def test_bad_ids(proj, bad_id):
    ds = dataset_with(proj, f'[{{"id": {bad_id}, "sentences": "a"}}]')
    with pytest.raises(UserError, match="item 1 has id"):
        list(ds.iter_query_inputs())


def test_non_dict_item(proj):
    ds = dataset_with(proj, '[("a", "b")]')
    with pytest.raises(UserError, match="item 1 is a tuple"):
        list(ds.iter_query_inputs())


@pytest.mark.parametrize("expr, what", [("None", "None"), ("'text'", "str"), ('{"id": "a"}', "dict")])
def test_wrong_return_type(proj, expr, what):
    ds = dataset_with(proj, expr)
    with pytest.raises(UserError, match=what):
        list(ds.iter_query_inputs())


def test_re_iteration_of_a_list_dataset_does_not_report_duplicates(proj):
    ds = load("video.DenseCaptions")
    assert len(list(ds)) == 2
    assert len(list(ds)) == 2


def test_item_numbers_count_from_one(proj):
    write(proj, "datasets/many.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset


        class Many(AbstractDataset):
            def __init__(self, name="Many", prompt_path="prompts/dense_captions.json", query_inputs_path=None):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_query_inputs(self, path):
                for i in range(5000):
                    yield {"id": f"q{i}", "sentences": "s"}
                yield {"sentences": "the 5,001st item, with no id"}
        '''))
    ds = load("many.Many")
    with pytest.raises(UserError) as e:
        list(ds.iter_query_inputs("datasets/many.py (Many)"))
    assert str(e.value).startswith("datasets/many.py (Many): item 5001 has no 'id'")


# --- an empty input -----------------------------------------------------------------------

EMPTY_PLUGIN = textwrap.dedent('''\
    from abstract_dataset import AbstractDataset


    class Empty(AbstractDataset):
        def __init__(self, name="Empty", prompt_path="prompts/dense_captions.json",
                     query_inputs_path="annotations/empty.txt"):
            super().__init__(name, prompt_path, query_inputs_path)

        def _load_query_inputs(self, path):
            with open(path) as f:
                for line in f:
                    yield {"id": line.split()[0], "sentences": line}
    ''')


def cli(argv: list[str], server) -> tuple[int, str]:
    """``syphus`` run in-process against the fake server: its exit code and everything it printed."""
    from syphus.cli import main
    from tests.conftest import KEY
    out = io.StringIO()
    code = main(["--base_url", server.base_url, "--quiet", *argv], env={"OPENAI_API_KEY": KEY}, stream=out)
    return code, out.getvalue()


def test_plugin_giving_no_query_inputs_is_one_clear_error(proj, server):
    write(proj, "datasets/empty.py", EMPTY_PLUGIN)
    write(proj, "annotations/empty.txt", "")
    code, out = cli(["--name", "empty.Empty"], server)
    assert code == 2, out
    assert out.splitlines() == ["error: datasets/empty.py (Empty): _load_query_inputs gave no query inputs from "
                                "annotations/empty.txt; check the path and the file's format"]
    assert server.requests == [] and not (proj / "output").exists()  # stopped before the run began


@pytest.mark.parametrize("expr", ["[]", "()", "iter([])"])
def test_plugin_returning_nothing_is_an_error_before_any_item_is_asked_for(proj, expr):
    ds = dataset_with(proj, expr)
    with pytest.raises(UserError, match=r"^SRC: _load_query_inputs gave no query inputs, and query_inputs_path "
                                        r"is None; pass one to super\(\).__init__ or use --query_inputs_path$"):
        ds.iter_query_inputs("SRC")


def test_empty_query_inputs_are_an_error_for_plugins_only(proj):
    """A dataset built in code (translate's retry pass) may have nothing to do; a plugin file may not."""
    class NothingLeft(AbstractDataset):
        def _load_query_inputs(self, path):
            return iter(())

    ds = NothingLeft("NothingLeft", "prompts/dense_captions.json", "run/errors.jsonl")
    assert not ds.empty_is_error and list(ds.iter_query_inputs()) == []
    ds.empty_is_error = True
    with pytest.raises(UserError, match="^NothingLeft: _load_query_inputs gave no query inputs from run/errors.jsonl"):
        ds.iter_query_inputs()
    assert load("video.DenseCaptions").empty_is_error


def test_plugin_failing_on_its_first_item_still_fails_where_the_stream_is_read(proj, server):
    write(proj, "datasets/empty.py", EMPTY_PLUGIN.replace('line.split()[0]', '{}["video"]'))
    write(proj, "annotations/empty.txt", "a x\n")
    it = load("empty.Empty").iter_query_inputs()  # reading ahead for emptiness does not raise the plugin's error
    with pytest.raises(KeyError):
        next(it)
    code, out = cli(["--name", "empty.Empty"], server)
    assert code == 2 and "datasets/empty.py (Empty)" in out and "KeyError: 'video'" in out, out
    assert "Traceback" not in out and server.requests == []


def test_a_stream_closed_early_is_not_empty(proj):
    write(proj, "datasets/empty.py", EMPTY_PLUGIN)
    write(proj, "annotations/empty.txt", "a x\nb y\n")
    it = load("empty.Empty").iter_query_inputs()
    assert [next(it)["id"], next(it)["id"]] == ["a", "b"]  # the first item, read ahead, comes first
    it.close()  # as --slice_end leaves it: no error for the items never read


def test_slice_past_the_end_and_a_finished_run_are_not_empty_inputs(proj, server):
    write(proj, "datasets/empty.py", EMPTY_PLUGIN)
    write(proj, "annotations/empty.txt", "a x\nb y\n")
    code, out = cli(["--name", "empty.Empty", "--slice_start", "5"], server)
    assert code == 0 and server.requests == [], out
    code, out = cli(["--name", "empty.Empty"], server)
    assert code == 0 and len(server.requests) == 2, out
    code, out = cli(["--name", "empty.Empty"], server)  # resumed with everything done
    assert code == 0 and len(server.requests) == 2, out


# --- errors ---------------------------------------------------------------------------


def test_unknown_name_lists_available(proj):
    write(proj, "datasets/3d.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset

        class SceneNavigation(AbstractDataset):
            def _load_query_inputs(self, path):
                return []
        '''))
    with pytest.raises(UserError) as e:
        plugins.resolve("NoSuchThing", "datasets")
    msg = str(e.value)
    assert "NoSuchThing" in msg and "video.DenseCaptions" in msg and "3d.SceneNavigation" in msg


def test_unknown_class_in_known_module_lists_its_classes(proj):
    with pytest.raises(UserError) as e:
        plugins.resolve("video.Nope", "datasets")
    assert "video.py" in str(e.value) and "'Nope'" in str(e.value) and "DenseCaptions" in str(e.value)


def test_unknown_dotted_name(proj):
    with pytest.raises(UserError, match="Available: video.DenseCaptions"):
        plugins.resolve("nomodule.NoClass", "datasets")


def test_missing_datasets_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="no datasets folder"):
        plugins.resolve("video.DenseCaptions", "datasets")


def test_bare_class_in_two_files_is_ambiguous(proj):
    write(proj, "datasets/video2.py", VIDEO_PLUGIN)
    with pytest.raises(UserError) as e:
        plugins.resolve("DenseCaptions", "datasets")
    msg = str(e.value)
    assert "video.DenseCaptions" in msg and "video2.DenseCaptions" in msg and "module.Class" in msg
    # qualified names still work
    assert plugins.resolve("video2.DenseCaptions", "datasets")[1].name == "video2.py"


def test_imported_class_is_not_counted_twice(proj):
    write(proj, "datasets/reexport.py", textwrap.dedent('''\
        import sys
        from abstract_dataset import AbstractDataset
        DenseCaptions = sys.modules["syphus_plugin_video"].DenseCaptions if "syphus_plugin_video" in sys.modules else None


        class Other(AbstractDataset):
            def _load_query_inputs(self, path):
                return []
        '''))
    plugins.resolve("video.DenseCaptions", "datasets")  # import video first
    cls, path = plugins.resolve("DenseCaptions", "datasets")
    assert path.name == "video.py"


def test_plugin_that_fails_to_import_names_file_and_line(proj):
    write(proj, "datasets/broken.py", "from abstract_dataset import AbstractDataset\n\nx = 1\ny = undefined_name\n")
    with pytest.raises(UserError) as e:
        plugins.resolve("broken.Whatever", "datasets")
    msg = str(e.value)
    assert "broken.py" in msg and "line 4" in msg and "NameError" in msg


def test_plugin_with_syntax_error_names_file(proj):
    write(proj, "datasets/broken.py", "def f(:\n")
    with pytest.raises(UserError, match="broken.py"):
        plugins.resolve("broken.X", "datasets")


def test_plugin_without_load_query_inputs(proj):
    write(proj, "datasets/lazy.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset


        class Lazy(AbstractDataset):
            def __init__(self, name="Lazy", prompt_path="prompts/dense_captions.json", query_inputs_path=None):
                super().__init__(name, prompt_path, query_inputs_path)
        '''))
    with pytest.raises(UserError) as e:
        load("lazy.Lazy")
    assert "lazy.py" in str(e.value) and "must define _load_query_inputs" in str(e.value)


def test_missing_annotation_file_names_the_path(proj):
    (proj / "annotations/dense_captions/train.json").unlink()
    with pytest.raises(UserError) as e:
        load("video.DenseCaptions")
    msg = str(e.value)
    assert "annotations/dense_captions/train.json" in msg and "video.py" in msg and "--query_inputs_path" in msg


def test_missing_prompt_file_names_the_path(proj):
    (proj / "prompts/dense_captions.json").unlink()
    with pytest.raises(UserError, match="prompts/dense_captions.json"):
        load("video.DenseCaptions")


def test_plugin_constructor_error_names_the_line(proj):
    write(proj, "datasets/boom.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset


        class Boom(AbstractDataset):
            def __init__(self, name="Boom", prompt_path="prompts/dense_captions.json", query_inputs_path=None):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_query_inputs(self, path):
                return {}["missing"]
        '''))
    with pytest.raises(UserError) as e:
        load("boom.Boom")
    msg = str(e.value)
    assert "boom.py:9" in msg and "KeyError" in msg


def test_no_prompt_path_at_all(proj):
    write(proj, "datasets/noprompt.py", textwrap.dedent('''\
        from abstract_dataset import AbstractDataset


        class NoPrompt(AbstractDataset):
            def __init__(self):
                super().__init__("NoPrompt")

            def _load_query_inputs(self, path):
                return []
        '''))
    with pytest.raises(UserError, match="no prompt_path"):
        load("NoPrompt")
    # --prompt_path rescues it
    ds = load("NoPrompt", prompt_path="prompts/dense_captions.json")
    assert ds.count() == 0


# --- overridable build_messages / parse_response ----------------------------------------------


def test_build_messages_and_parse_response_overridable(proj):
    write(proj, "datasets/custom.py", textwrap.dedent('''\
        import json
        from abstract_dataset import AbstractDataset
        from syphus.parse import ParseResult


        class Translate(AbstractDataset):
            def __init__(self, name="Translate", prompt_path="prompts/dense_captions.json", query_inputs_path=None):
                super().__init__(name, prompt_path, query_inputs_path)

            def _load_query_inputs(self, path):
                return [{"id": "t1", "sentences": "<a>hi</a><b>hello</b>"}]

            def build_messages(self, query_input):
                return [{"role": "system", "content": "translate"},
                        {"role": "user", "content": query_input["sentences"].upper()}]

            def parse_response(self, text, finish_reason):
                data = json.loads(text)
                return ParseResult(pairs=[{"instruction": data["a"]["fr"], "answer": data["b"]["fr"]}])
        '''))
    ds = load("custom.Translate")
    (item,) = list(ds.iter_query_inputs())
    assert ds.build_messages(item) == [{"role": "system", "content": "translate"},
                                       {"role": "user", "content": "<A>HI</A><B>HELLO</B>"}]
    r = ds.parse_response('{"a": {"fr": "salut"}, "b": {"fr": "bonjour"}}', "stop")
    assert isinstance(r, ParseResult) and r.pairs == [{"instruction": "salut", "answer": "bonjour"}]


def test_default_parse_response_is_parse_pairs(proj):
    ds = load("video.DenseCaptions")
    r = ds.parse_response("Question: q\nAnswer: a\nQuestion: q2\nAnswer: cut", "length")
    assert r.pairs == [{"instruction": "q", "answer": "a"}] and r.truncated


def test_errors_name_a_dataset_by_its_file_and_class(proj):
    from syphus.config import load_config
    from syphus.engine.workload import load_dataset

    loaded = load_dataset(load_config(None, {"name": "video.DenseCaptions"}))
    assert loaded.source == f"{loaded.path} (DenseCaptions)" and loaded.path.name == "video.py"
