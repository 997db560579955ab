"""parse_pairs: a model's reply text -> instruction-response pairs (FORMATS.md §3)."""

from __future__ import annotations

import pytest

from syphus.parse import ParseResult, parse_pairs


def pairs_of(result: ParseResult) -> list[tuple[str, str]]:
    return [(p["instruction"], p["answer"]) for p in result.pairs]


# --- the common shapes --------------------------------------------------------------


def test_question_answer_with_blank_lines():
    r = parse_pairs("Question: What is on the table?\nAnswer: A red ball.\n\n"
                    "Question: What colour is the wall?\nAnswer: White.\n")
    assert pairs_of(r) == [("What is on the table?", "A red ball."), ("What colour is the wall?", "White.")]
    assert r.ok and r.problems == [] and r.truncated is False and r.reason == ""


def test_question_answer_without_blank_lines():
    r = parse_pairs("Question: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2")
    assert pairs_of(r) == [("q1", "a1"), ("q2", "a2")]
    assert r.problems == []


def test_pairs_are_dicts_with_instruction_and_answer_only():
    r = parse_pairs("Question: q\nAnswer: a")
    assert r.pairs == [{"instruction": "q", "answer": "a"}]


@pytest.mark.parametrize("text", [
    "Q: q1\nA: a1\nQ: q2\nA: a2",
    "Q1: q1\nA1: a1\nQ2: q2\nA2: a2",
    "**Question 1:** q1\n**Answer:** a1\n\n**Question 2:** q2\n**Answer:** a2",
    "1. Question: q1\nAnswer: a1\n2. Question: q2\nAnswer: a2",
    "Instruction: q1\nResponse: a1\nInstruction: q2\nResponse: a2",
    "question: q1\nanswer: a1\nQUESTION: q2\nANSWER: a2",
    "### Question 1: q1\n- Answer 1: a1\n### Question 2: q2\n- Answer 2: a2",
    "**Q1:** q1\n**A1:** a1\n**Q2:** q2\n**A2:** a2",
])
def test_label_variants(text):
    r = parse_pairs(text)
    assert pairs_of(r) == [("q1", "a1"), ("q2", "a2")]
    assert r.problems == []


def test_bold_label_with_answer_on_next_line():
    r = parse_pairs("**Question:** What is it?\n**Answer:**\nA dog.")
    assert pairs_of(r) == [("What is it?", "A dog.")]


def test_multiline_answer_keeps_its_newlines():
    r = parse_pairs("Question: Where?\nAnswer: In a park,\nnear a lake.\n\nQuestion: Who?\nAnswer: A man.")
    assert pairs_of(r) == [("Where?", "In a park,\nnear a lake."), ("Who?", "A man.")]


def test_multiline_answer_with_numbered_steps_is_not_mistaken_for_labels():
    r = parse_pairs("Question: How do I make tea?\nAnswer: Steps:\n1. Boil water.\n2. Add the leaves.")
    assert pairs_of(r) == [("How do I make tea?", "Steps:\n1. Boil water.\n2. Add the leaves.")]


def test_preamble_sentence_is_ignored():
    r = parse_pairs("Sure! Here are some questions about the video.\n\nQuestion: q\nAnswer: a")
    assert pairs_of(r) == [("q", "a")]
    assert r.problems == []


def test_code_fences_are_ignored():
    r = parse_pairs("```\nQuestion: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2\n```")
    assert pairs_of(r) == [("q1", "a1"), ("q2", "a2")]
    assert all("```" not in a for _, a in pairs_of(r))


def test_closing_fence_with_language_tag_is_ignored():
    r = parse_pairs("```text\nQuestion: q\nAnswer: a\n```\n")
    assert pairs_of(r) == [("q", "a")]


def test_inline_question_and_answer_on_one_line():
    r = parse_pairs("Q: What is it? A: A dog.")
    assert pairs_of(r) == [("What is it?", "A dog.")]


def test_inline_question_answer_long_labels():
    r = parse_pairs("Question: What is it? Answer: A dog.\nQuestion: Where? Answer: Outside.")
    assert pairs_of(r) == [("What is it?", "A dog."), ("Where?", "Outside.")]


# --- what is dropped and reported -----------------------------------------------------


def test_question_without_answer_is_dropped_and_reported():
    r = parse_pairs("Question: lonely one\nQuestion: q\nAnswer: a")
    assert pairs_of(r) == [("q", "a")]
    assert len(r.problems) == 1
    assert "question without an answer" in r.problems[0] and "lonely one" in r.problems[0]


def test_trailing_question_without_answer_is_reported():
    r = parse_pairs("Question: q\nAnswer: a\nQuestion: unanswered")
    assert pairs_of(r) == [("q", "a")]
    assert any("unanswered" in p for p in r.problems)


def test_answer_without_question_is_reported():
    r = parse_pairs("Answer: orphan\nQuestion: q\nAnswer: a")
    assert pairs_of(r) == [("q", "a")]
    assert len(r.problems) == 1
    assert "answer without a question" in r.problems[0] and "orphan" in r.problems[0]


def test_second_answer_after_answered_question_is_reported():
    r = parse_pairs("Question: q\nAnswer: a\nAnswer: again")
    assert pairs_of(r) == [("q", "a")]
    assert any("answer without a question" in p and "again" in p for p in r.problems)


def test_only_an_answer_is_not_ok_and_says_why():
    r = parse_pairs("Answer: b")
    assert not r.ok
    assert "answer without a question" in r.reason


def test_finish_reason_length_drops_the_last_pair():
    r = parse_pairs("Question: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2 is cut o", finish_reason="length")
    assert pairs_of(r) == [("q1", "a1")]
    assert r.truncated is True
    assert any("max_tokens" in p for p in r.problems)


def test_finish_reason_length_with_a_dangling_question_keeps_complete_pairs():
    r = parse_pairs("Question: q1\nAnswer: a1\nQuestion: q2", finish_reason="length")
    assert pairs_of(r) == [("q1", "a1")]
    assert r.truncated is True


@pytest.mark.parametrize("finish", ["stop", None, "end_turn"])
def test_other_finish_reasons_keep_every_pair(finish):
    r = parse_pairs("Question: q1\nAnswer: a1\nQuestion: q2\nAnswer: a2", finish_reason=finish)
    assert len(r.pairs) == 2
    assert r.truncated is False


@pytest.mark.parametrize("text", ["", "   \n\t\n", None])
def test_empty_text_is_not_ok(text):
    r = parse_pairs(text)
    assert not r.ok
    assert r.pairs == []
    assert r.reason == "empty response"


def test_unlabelled_prose_is_not_ok_with_a_reason():
    r = parse_pairs("I'm sorry, but I can't help with that request.\nPlease provide more details.")
    assert not r.ok
    assert r.reason  # non-empty
    assert "label" in r.reason.lower()


def test_messy_small_model_reply_keeps_the_valid_pairs():
    text = (
        "Okay here are questions\n"
        "Q: What is the man holding?\n"
        "Question: What is the dog doing?\n"
        "Answer: Running after a ball.\n"
        "\n"
        "Q: Where are they?\n"
        "A: In a park,\n"
        "near the lake.\n"
        "Question: What time of day is it?\n"
    )
    r = parse_pairs(text)
    assert pairs_of(r) == [("What is the dog doing?", "Running after a ball."),
                           ("Where are they?", "In a park,\nnear the lake.")]
    assert r.ok
    assert len(r.problems) == 2
    assert any("What is the man holding?" in p for p in r.problems)
    assert any("What time of day is it?" in p for p in r.problems)


def test_unicode_questions_and_answers():
    r = parse_pairs("Question: 桌子上有什么？\nAnswer: 一个红色的球。\nQuestion: ¿Dónde?\nAnswer: Aquí 🙂")
    assert pairs_of(r) == [("桌子上有什么？", "一个红色的球。"), ("¿Dónde?", "Aquí 🙂")]


def test_fullwidth_colon_label():
    r = parse_pairs("Question：什么？\nAnswer：球。")
    assert pairs_of(r) == [("什么？", "球。")]


def test_crlf_newlines():
    r = parse_pairs("Question: q1\r\nAnswer: a1\r\nline two\r\n\r\nQuestion: q2\r\nAnswer: a2\r\n")
    assert pairs_of(r) == [("q1", "a1\nline two"), ("q2", "a2")]
    assert all("\r" not in q + a for q, a in pairs_of(r))


def test_empty_question_with_answer_is_reported():
    r = parse_pairs("Question:\nAnswer: an answer to nothing")
    assert not r.ok
    assert r.problems, "the dropped answer must be listed in problems"


def test_multiple_choice_options_on_the_question_line_are_not_an_inline_answer():
    r = parse_pairs("Question: Which is right? A: the cat B: the dog\nAnswer: B")
    assert pairs_of(r) == [("Which is right? A: the cat B: the dog", "B")]
    assert r.problems == []


# --- never raises -------------------------------------------------------------------


WEIRD = [
    "Question:",
    "Answer:",
    "Question:\nAnswer:\n",
    "Q:\nA:\nQ:\nA:",
    "```",
    "```\n```",
    "\x00\x01\x02",
    "🙂" * 1000,
    "Question: " + "x" * 200_000 + "\nAnswer: y",
    "x" * 200_000,
    "\r\n\r\n\r\n",
    "\r",
    "1.\n2.\n3.",
    "**\n**\n****",
    "Question: a\rAnswer: b",
    "A: Q: A: Q:",
    ":" * 50,
    "Q" * 5 + ":" + "A:" * 5,
]


@pytest.mark.parametrize("finish", ["stop", "length", None])
@pytest.mark.parametrize("text", WEIRD, ids=range(len(WEIRD)))
def test_never_raises_on_odd_input(text, finish):
    r = parse_pairs(text, finish)
    assert isinstance(r, ParseResult)
    assert all(isinstance(p["instruction"], str) and p["instruction"] and isinstance(p["answer"], str)
               and p["answer"] for p in r.pairs)
    # ok and reason always agree
    assert r.ok == bool(r.pairs)
    assert (r.reason == "") == r.ok


def test_very_long_line_is_kept_whole():
    r = parse_pairs("Question: " + "x" * 200_000 + "\nAnswer: y")
    assert pairs_of(r) == [("x" * 200_000, "y")]
