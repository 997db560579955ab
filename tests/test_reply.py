"""syphus.reply: the JSON reply read leniently (raw newlines, fences), a refusal named, pairs kept when their
number is off."""

from __future__ import annotations

import json

import pytest

from syphus.reply import NotJSON, load_json, pairs_model, parse_reply


def test_a_raw_newline_inside_a_json_string_is_read():
    text = '{"pairs": [' + ", ".join('{"instruction": "What is in\nthe room?", "answer": "A bed\tand a lamp."}'
                                     for _ in range(3)) + "]}"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)  # what the strict parser said ("no JSON object in the reply")
    result = parse_reply(pairs_model(3), text)
    assert len(result.pairs) == 3 and result.pairs[0]["instruction"] == "What is in\nthe room?"
    assert not result.problems


@pytest.mark.parametrize("text,reason", [
    ("I cannot help with that.", "no JSON object in the reply"),
    ('{"pairs": [{"instruction": "Q?", "answer": "A."}', "unfinished JSON: "),
    ('{"pairs": [{"instruction": "Q?" "answer": "A."}]}', "broken JSON: Expecting ',' delimiter at line 1 column"),
])
def test_a_refused_reply_says_why(text, reason):
    with pytest.raises(NotJSON) as e:
        load_json(text)
    assert str(e.value).startswith(reason)


def test_a_reply_with_another_number_of_pairs_keeps_them_with_a_problem():
    model = pairs_model(3)
    two = json.dumps({"pairs": [{"instruction": "**Question:** A?", "answer": "Answer: a."},
                                {"instruction": "B?", "answer": "b."}]})
    r = parse_reply(model, two)
    assert r.pairs == [{"instruction": "A?", "answer": "a."}, {"instruction": "B?", "answer": "b."}]
    assert r.problems == ["the reply does not fit the schema: pairs: list should have at least 3 items after "
                          "validation, not 2"]
    assert parse_reply(model, '```json\n{"pairs": []}\n```').pairs == []  # fenced, and none kept
