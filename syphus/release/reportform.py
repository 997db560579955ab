"""Report form sections: how each input's queries ended, and the form of its pairs.

- ``Outcomes``: queries, pairs, invalid replies and errors, and why (the parser's reasons and problems,
  error kinds); pairs per query (for a release file, per visual input, from ``rel_ins_ids``) against
  the number the system message asks for;
- ``Lengths``: instruction and answer lengths in words and in tokens (the run's own estimator);
- ``Questions``: the leading wh-word or auxiliary, and the leading verbs of imperatives (English);
- ``Signals``: answers that repeat their instruction, refusals and words the system message forbids
  (``syphus.signals``), with a few examples each linked to the viewer;
- ``Diversity``: the share of English instructions whose ROUGE-L to an earlier instruction of the same
  input is 0.7 or more (``syphus.release.diversity``), and the spread of their openings (top words
  with shares, entropy, effective number).
"""

from __future__ import annotations

from typing import Any

from syphus.idset import IdSet
from syphus.release.diversity import EarlierSimilar, spread
from syphus.release.reportcount import Histogram, TopCounter, reason_key, text_tokens
from syphus.release.reportinput import Pair, viewer_link
from syphus.release.reportsection import Input, Section
from syphus.signals import Forbidden, forbidden_words, is_refusal, repeats_instruction, requested_pairs

PER_QUERY_LIMIT = 50  # pairs per query counted one by one up to this
EXAMPLES = 5  # examples kept for each signal and of errors


class _Outcome:
    """One input's outcomes so far."""

    def __init__(self) -> None:
        self.counts = {"queries": 0, "with_pairs": 0, "invalid": 0, "errors": 0, "pairs": 0, "truncated": 0,
                       "refused_replies": 0, "empty_instructions": 0, "empty_answers": 0}
        self.reasons = TopCounter()  # why a reply gave no pairs
        self.problems = TopCounter()  # what the parser dropped from replies that gave pairs
        self.error_kinds = TopCounter()
        self.error_examples: list[dict[str, Any]] = []
        self.per_query = [0] * (PER_QUERY_LIMIT + 1)  # queries (or inputs) by pairs
        self.related = [0] * (PER_QUERY_LIMIT + 1)  # instructions by 1 + len(rel_ins_ids)
        self.answered = IdSet()
        self.seen = IdSet()  # error ids counted


class Outcomes(Section):
    """How each query ended and why; pairs per query or visual input."""

    name = "outcomes"

    def start(self, inp: Input) -> None:
        inp.state[self.name] = _Outcome()

    def record(self, inp: Input, rec: dict[str, Any], counted: Any, valid: bool) -> None:
        o: _Outcome = inp.state[self.name]
        c = o.counts
        c["queries"] += 1
        o.answered.add(str(rec["id"]))
        c["truncated"] += counted.truncated
        o.per_query[min(counted.pairs, PER_QUERY_LIMIT)] += 1
        if valid:
            c["with_pairs"] += 1
            for problem in rec.get("problems") or []:
                o.problems.add(reason_key(problem))
        else:
            c["invalid"] += 1
            for part in str(rec.get("reason") or "no pairs found").split("; "):
                o.reasons.add(reason_key(part))
        if is_refusal(rec.get("raw")):
            c["refused_replies"] += 1

    def error(self, inp: Input, rec: dict[str, Any], counted: Any) -> None:
        o: _Outcome = inp.state[self.name]
        qid = str(rec["id"])
        if qid in o.answered or not o.seen.add(qid):
            return  # superseded by an answer, or a later line of the same id
        o.counts["queries"] += 1
        o.counts["errors"] += 1
        kind = str(rec.get("kind") or "unknown")
        o.error_kinds.add(kind)
        if len(o.error_examples) < EXAMPLES:
            o.error_examples.append({"id": qid, "kind": kind, "message": str(rec.get("message") or "")[:300]})

    def pair(self, inp: Input, pair: Pair) -> None:
        o: _Outcome = inp.state[self.name]
        c = o.counts
        c["pairs"] += 1
        if not pair.instruction.strip():
            c["empty_instructions"] += 1
        if not pair.answer.strip():
            c["empty_answers"] += 1
        if pair.related is not None:
            o.related[min(pair.related + 1, PER_QUERY_LIMIT)] += 1

    def figures(self, inp: Input) -> dict[str, Any]:
        o: _Outcome = inp.state[self.name]
        if inp.source.kind == "run":
            per_input, basis = o.per_query, "queries"
        else:  # an input with k pairs gives k instructions whose rel_ins_ids hold the k - 1 others
            per_input, basis = [round(n / k) if k else 0 for k, n in enumerate(o.related)], "inputs (from rel_ins_ids)"
        last = max((i for i, n in enumerate(per_input) if n), default=0)
        return {
            "counts": dict(o.counts),
            "why": {"invalid_reasons": o.reasons.to_json(), "problems": o.problems.to_json(),
                    "error_kinds": o.error_kinds.to_json(), "error_examples": o.error_examples},
            "pairs_per_input": {"basis": basis, "counts": per_input[:last + 1],
                                "requested": requested_pairs(inp.source.system_message or ""),
                                "limit": PER_QUERY_LIMIT,
                                "mean": round(sum(k * n for k, n in enumerate(per_input)) / max(1, sum(per_input)),
                                              2)},
        }


class Lengths(Section):
    """Instruction and answer lengths, in words and in tokens."""

    name = "lengths"
    KINDS = ("instruction_words", "answer_words", "instruction_tokens", "answer_tokens")

    def start(self, inp: Input) -> None:
        inp.state[self.name] = {name: Histogram() for name in self.KINDS}

    def pair(self, inp: Input, pair: Pair) -> None:
        h = inp.state[self.name]
        h["instruction_words"].add(len(pair.iw))
        h["answer_words"].add(len(pair.aw))
        h["instruction_tokens"].add(text_tokens(pair.instruction))
        h["answer_tokens"].add(text_tokens(pair.answer))

    def figures(self, inp: Input) -> dict[str, Any]:
        return {"lengths": {name: h.to_json() for name, h in inp.state[self.name].items()}}


class Questions(Section):
    """Question types of English instructions: the kind, the leading word, the verbs of imperatives."""

    name = "question_types"

    def start(self, inp: Input) -> None:
        inp.state[self.name] = (TopCounter(100), TopCounter(1000), TopCounter())

    def pair(self, inp: Input, pair: Pair) -> None:
        if pair.question is None:
            return
        kinds, leading, verbs = inp.state[self.name]
        kind, word = pair.question
        kinds.add(kind)
        if kind in ("wh", "aux"):
            leading.add(word or "")
        elif kind == "imperative":
            verbs.add(word or "")

    def figures(self, inp: Input) -> dict[str, Any]:
        if not inp.english:
            return {"question_types": None}
        kinds, leading, verbs = inp.state[self.name]
        return {"question_types": {"kinds": kinds.to_json(), "leading_words": leading.to_json(),
                                   "imperative_verbs": verbs.to_json()}}


class _Signals:
    def __init__(self, system_message: str) -> None:
        self.forbidden = Forbidden(forbidden_words(system_message))
        self.forbidden_counts = TopCounter()
        self.counts = {"repeats": 0, "refusals": 0, "forbidden": 0}
        self.examples: dict[str, list[dict[str, Any]]] = {"repeats": [], "refusals": [], "forbidden": []}


class Signals(Section):
    """Answers that repeat their instruction, refuse, or use a word the system message forbids."""

    name = "signals"

    def start(self, inp: Input) -> None:
        inp.state[self.name] = _Signals(inp.source.system_message or "")

    def pair(self, inp: Input, pair: Pair) -> None:
        s: _Signals = inp.state[self.name]
        if repeats_instruction(pair.instruction, pair.answer, pair.iw, pair.aw):
            self._signal(inp, s, "repeats", pair)
        if is_refusal(pair.answer):
            self._signal(inp, s, "refusals", pair)
        used = s.forbidden.found(f"{pair.instruction} {pair.answer}")
        if used:
            for word in used:
                s.forbidden_counts.add(word)
            self._signal(inp, s, "forbidden", pair, {"words": used})

    @staticmethod
    def _signal(inp: Input, s: _Signals, name: str, pair: Pair, extra: dict[str, Any] | None = None) -> None:
        s.counts[name] += 1
        if len(s.examples[name]) < EXAMPLES:
            s.examples[name].append({"id": pair.key, "instruction": pair.instruction[:300],
                                     "answer": pair.answer[:300],
                                     "link": viewer_link(inp.source, pair.key, pair.instruction, inp.out),
                                     **(extra or {})})

    def figures(self, inp: Input) -> dict[str, Any]:
        s: _Signals = inp.state[self.name]
        pairs = inp.pairs
        return {"signals": {**{name: {"count": n, "share": round(n / pairs, 4) if pairs else 0.0,
                                      "examples": s.examples[name]} for name, n in s.counts.items()},
                            "forbidden_words": s.forbidden.words,
                            "forbidden_counts": s.forbidden_counts.to_json()}}


class _Diversity:
    def __init__(self) -> None:
        self.index = EarlierSimilar()
        self.first_words = TopCounter()
        self.openings = TopCounter()
        self.verbs = TopCounter()
        self.kinds = TopCounter(100)
        self.similar: Any = None


def _spread(counter: TopCounter) -> dict[str, Any]:
    figure = spread(counter.counts, total=counter.total)
    return {**figure, "approximate": True} if counter.pruned else figure


class Diversity(Section):
    """How much English instructions repeat earlier ones (ROUGE-L, ``syphus.release.diversity``) and how
    spread their openings are: first words, leading question word or verb, imperative verbs, kinds."""

    name = "diversity"

    def start(self, inp: Input) -> None:
        inp.state[self.name] = _Diversity() if inp.english else None

    def pair(self, inp: Input, pair: Pair) -> None:
        d: _Diversity | None = inp.state[self.name]
        if d is None:
            return
        d.index.add(pair.iw)
        d.first_words.add(pair.iw[0] if pair.iw else "(empty)")
        kind, word = pair.question or ("other", None)
        d.kinds.add(kind)
        d.openings.add(word if kind in ("wh", "aux", "imperative") and word else f"({kind})")
        if kind == "imperative":
            d.verbs.add(word or "")

    def finish(self, inputs: list[Input]) -> None:
        for inp in inputs:
            d: _Diversity | None = inp.state[self.name]
            if d is not None:
                d.similar = d.index.similar()

    def figures(self, inp: Input) -> dict[str, Any]:
        d: _Diversity | None = inp.state[self.name]
        if d is None:
            return {"diversity": None}
        n, similar = len(d.similar), int(d.similar.sum())
        return {"diversity": {
            "rouge_l": {"instructions": n, "similar_to_earlier": similar, "share": round(similar / n, 4) if n else 0.0,
                        **d.index.settings()},
            "first_words": _spread(d.first_words), "openings": _spread(d.openings),
            "imperative_verbs": _spread(d.verbs), "question_kinds": _spread(d.kinds)}}
