"""Prompts: rendering list-form content, message order, loading JSON/YAML/.py, errors (FORMATS.md §2)."""

from __future__ import annotations

import json

import pytest

from syphus.errors import UserError
from syphus.prompt import Prompt, check_prompt, load_prompt, render_content

EXAMPLES = [
    {"role": "user", "content": "a man rides a bike"},
    {"role": "assistant", "content": [{"Question": "q1", "Answer": "a1"}, {"Question": "q2", "Answer": "a2"}]},
]


# --- render_content -----------------------------------------------------------------


def test_render_list_content_exactly_as_the_original():
    content = [{"Question": "q1", "Answer": "a1"}, {"Question": "q2", "Answer": "a2"}]
    assert render_content(content) == "Question: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2\n"


def test_render_keeps_key_order_and_other_keys():
    content = [{"Question": "Which?", "Options 1": "red", "Options 2": "blue", "Options 3": "green",
                "Options 4": "black", "Options 5": "white", "Answer": "Options 2"}]
    assert render_content(content) == (
        "Question: Which?\nOptions 1: red\nOptions 2: blue\nOptions 3: green\n"
        "Options 4: black\nOptions 5: white\nAnswer: Options 2\n")


def test_render_string_content_untouched():
    s = "Question: q\nAnswer: a  \n\n  trailing spaces kept "
    assert render_content(s) == s
    assert render_content("") == ""


def test_render_multiline_values_and_non_string_values():
    assert render_content([{"Answer": "line1\nline2"}, {"Count": 3}]) == "Answer: line1\nline2\nCount: 3\n"


def test_render_empty_list():
    assert render_content([]) == ""


# --- Prompt.messages ----------------------------------------------------------------


def test_messages_are_system_then_examples_then_user():
    p = Prompt("You write questions.", EXAMPLES)
    msgs = p.messages("a dog in a park")
    assert msgs == [
        {"role": "system", "content": "You write questions."},
        {"role": "user", "content": "a man rides a bike"},
        {"role": "assistant", "content": "Question: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2\n"},
        {"role": "user", "content": "a dog in a park"},
    ]


def test_empty_system_message_is_still_sent():
    msgs = Prompt("", EXAMPLES).messages("x")
    assert msgs[0] == {"role": "system", "content": ""}
    assert len(msgs) == 4


def test_no_examples():
    assert Prompt("sys", []).messages("x") == [{"role": "system", "content": "sys"},
                                               {"role": "user", "content": "x"}]


def test_messages_for_two_queries_do_not_leak_into_each_other():
    p = Prompt("sys", EXAMPLES)
    first = p.messages("one")
    second = p.messages("two")
    assert first[-1]["content"] == "one" and second[-1]["content"] == "two"
    assert len(first) == len(second) == 4


def test_as_dict_keeps_the_original_list_form():
    p = Prompt("sys", EXAMPLES)
    assert p.as_dict() == {"system_message": "sys", "in_context": EXAMPLES}


# --- load_prompt --------------------------------------------------------------------


def test_load_json(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"system_message": "sys", "in_context": EXAMPLES}), encoding="utf-8")
    p = load_prompt(f)
    assert p.system_message == "sys"
    assert p.in_context == EXAMPLES
    assert p.messages("q")[2]["content"] == "Question: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2\n"


def test_load_json_with_unicode(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"system_message": "请写问题", "in_context": []}, ensure_ascii=False),
                 encoding="utf-8")
    assert load_prompt(f).system_message == "请写问题"


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_load_yaml(tmp_path, suffix):
    f = tmp_path / f"p{suffix}"
    f.write_text(
        "system_message: ''\n"
        "in_context:\n"
        "  - role: user\n"
        "    content: a cat\n"
        "  - role: assistant\n"
        "    content:\n"
        "      - Question: What animal?\n"
        "        Answer: A cat.\n", encoding="utf-8")
    p = load_prompt(f)
    assert p.system_message == ""
    assert p.messages("x")[2] == {"role": "assistant", "content": "Question: What animal?\nAnswer: A cat.\n"}


def test_load_python_module(tmp_path):
    f = tmp_path / "video_prompt.py"
    f.write_text(
        "system_message = 'You are an AI visual assistant.'\n"
        "in_context = [\n"
        "    {'role': 'user', 'content': 'timestamps: [0, 3] a man walks'},\n"
        "    {'role': 'assistant', 'content': [{'Question': 'Who walks?', 'Answer': 'A man.'}]},\n"
        "]\n", encoding="utf-8")
    p = load_prompt(f)
    assert p.system_message == "You are an AI visual assistant."
    assert p.messages("y")[1:3] == [
        {"role": "user", "content": "timestamps: [0, 3] a man walks"},
        {"role": "assistant", "content": "Question: Who walks?\nAnswer: A man.\n"},
    ]


# --- errors that name the file and position -------------------------------------------


def test_trailing_comma_in_json_names_file_line_col(tmp_path):
    f = tmp_path / "dense_captions.json"
    f.write_text('{"system_message": "s",\n'
                 ' "in_context": [\n'
                 '  {"role": "user", "content": "x"},\n'
                 ' ]\n'
                 '}\n', encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert f"{f}:4:2" in str(e.value)
    assert "trailing comma" in str(e.value)


def test_bad_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("system_message: s\nin_context: [\n  - a\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert f"{f}:3:" in str(e.value)


def write(tmp_path, data, name="p.json"):
    f = tmp_path / name
    f.write_text(json.dumps(data), encoding="utf-8")
    return f


def test_wrong_role_is_named(tmp_path):
    f = write(tmp_path, {"system_message": "s", "in_context": [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
        {"role": "system", "content": "z"}, {"role": "assistant", "content": "w"}]})
    with pytest.raises(UserError) as e:
        load_prompt(f)
    msg = str(e.value)
    assert str(f) in msg and "in_context[2]" in msg and "'system'" in msg


def test_roles_must_alternate(tmp_path):
    f = write(tmp_path, {"system_message": "s", "in_context": [
        {"role": "user", "content": "x"}, {"role": "user", "content": "y"},
        {"role": "assistant", "content": "z"}]})
    with pytest.raises(UserError) as e:
        load_prompt(f)
    msg = str(e.value)
    assert str(f) in msg and "in_context[1]" in msg and "alternate" in msg


def test_starting_with_assistant_is_refused(tmp_path):
    f = write(tmp_path, {"system_message": "s", "in_context": [{"role": "assistant", "content": "y"}]})
    with pytest.raises(UserError, match=r"in_context\[0\]"):
        load_prompt(f)


def test_ending_with_a_user_turn_is_refused(tmp_path):
    f = write(tmp_path, {"system_message": "s", "in_context": [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
        {"role": "user", "content": "dangling"}]})
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert str(f) in str(e.value) and "ends with a user message" in str(e.value)


@pytest.mark.parametrize("data, missing", [
    ({"in_context": []}, "system_message"),
    ({"system_message": "s"}, "in_context"),
    ({}, "system_message"),
])
def test_missing_top_level_keys(tmp_path, data, missing):
    f = write(tmp_path, data)
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert str(f) in str(e.value) and repr(missing) in str(e.value)


def test_message_missing_content(tmp_path):
    f = write(tmp_path, {"system_message": "s", "in_context": [{"role": "user"}]})
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert str(f) in str(e.value) and "in_context[0]" in str(e.value) and "'content'" in str(e.value)


def test_python_module_missing_in_context(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("system_message = 'hi'\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert str(f) in str(e.value) and "'in_context'" in str(e.value)


def test_python_module_that_fails_to_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("system_message = 'hi'\nraise ValueError('broken prompt module')\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_prompt(f)
    assert str(f) in str(e.value) and "broken prompt module" in str(e.value)


@pytest.mark.parametrize("name", ["missing.json", "missing.yaml", "missing.py"])
def test_missing_file(tmp_path, name):
    with pytest.raises(UserError) as e:
        load_prompt(tmp_path / name)
    assert str(tmp_path / name) in str(e.value) and "not found" in str(e.value)


@pytest.mark.parametrize("data", [[1, 2], "just a string", None])
def test_not_a_mapping(tmp_path, data):
    f = write(tmp_path, data)
    with pytest.raises(UserError, match="must be a mapping"):
        load_prompt(f)


def test_user_content_must_be_a_string():
    with pytest.raises(UserError, match=r"src: in_context\[0\]: content must be a string"):
        check_prompt({"system_message": "s", "in_context": [
            {"role": "user", "content": [{"Question": "q"}]}, {"role": "assistant", "content": "a"}]}, "src")


def test_system_message_must_be_a_string():
    with pytest.raises(UserError, match="'system_message' must be a string"):
        Prompt(None, [], source="src")  # type: ignore[arg-type]


def test_prompt_constructor_validates():
    with pytest.raises(UserError, match="my-source"):
        Prompt("s", [{"role": "bot", "content": "x"}], source="my-source")
