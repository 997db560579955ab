"""Cold start: try in-context example sets on a small seeded sample before paying for a full run.

Candidates live beside the prompt file, in ``<prompt stem>.candidates.json`` (or ``.yaml``)::

    {"candidates": {"short-answers": [{"role": "user", ...}, {"role": "assistant", ...}], ...}}

``current`` (the prompt's own examples) and ``zero-shot`` (none) are always tried too.
Each candidate runs on the same sample through the ordinary engine, in its own run folder
(``output/<dataset>/coldstart-<candidate>-seed<seed>-n<size>``), so trying the same
candidate on the same sample again sends nothing. The candidates are then scored on
simple signals: parse success, pairs per query against what the system message asks
for, the share of pairs grounded in their annotation (``release/grounding``, no model), repeated
questions, words the system message forbids, refusals, tokens (the other signals are
``syphus.signals``, shared with the dataset report).

With ``judge`` (``syphus coldstart --judge``, or ``--judge_endpoint NAME`` for an endpoint of the
config's pool) every candidate's pairs are also judged against their annotations
(``syphus.workflows.judge``, the rubric of ``prompts/judge.yaml``), and the judge's mean score is the
first criterion of the ranking; the signals above break ties.

>>> requested_pairs("Write three questions a person might ask about the image.")
3
>>> forbidden_words("Never mention captions, boxes or coordinates.")
['captions', 'boxes', 'coordinates']
"""

from __future__ import annotations

import copy
import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from syphus.config import RunConfig
from syphus.durable import write_atomic
from syphus.engine.cost import price_for, pricing_if_any
from syphus.errors import UserError
from syphus.engine.job import run_job
from syphus.engine.plan import pricing_model
from syphus.engine.workload import LoadedDataset, load_dataset, run_folder
from syphus.engine.record import tally
from syphus.engine.stats import RunStatus
from syphus.prompt import Prompt, check_prompt, read_prompt_file
from syphus.engine.store import ERRORS, INVALID, PAIRS, read_jsonl
from syphus.textfile import read_text
from syphus.signals import Forbidden, forbidden_words, is_refusal, repeated_questions, requested_pairs, words

log = logging.getLogger("syphus")


@dataclass
class Score:
    """What one candidate did on the sample."""

    candidate: str
    queries: int = 0
    parsed: int = 0
    invalid: int = 0
    errors: int = 0
    pairs: int = 0
    requested: int | None = None
    off_count: float = 0.0
    repeated: int = 0
    leaks: int = 0
    refusals: int = 0
    answer_words: float = 0.0
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    cost_per_query: float | None = None
    score: float = 0.0
    grounded: float | None = None  # the share of its pairs with nothing their annotation does not support
    judge: float | None = None  # the judge's mean score of the candidate's pairs (1-5), when judged
    judged: int = 0  # how many pairs the judge scored

    @property
    def parse_rate(self) -> float:
        return self.parsed / self.queries if self.queries else 0.0


def score_folder(candidate: str, folder: Path, system_message: str, price: Any = None) -> Score:
    """Score the records of one candidate's run folder."""
    s = Score(candidate, requested=requested_pairs(system_message))
    banned = Forbidden(forbidden_words(system_message))
    answer_words = answers = 0
    for name in (PAIRS, INVALID):
        for _, rec in read_jsonl(folder / name, skip_torn=True):
            s.queries += 1
            pairs = rec.get("pairs") or []
            if pairs:
                s.parsed += 1
            else:
                s.invalid += 1
            counted = tally(rec)
            s.pairs += counted.pairs
            s.prompt_tokens += counted.prompt_tokens
            s.completion_tokens += counted.completion_tokens
            if s.requested:
                s.off_count += abs(len(pairs) - s.requested) / s.requested
            s.repeated += repeated_questions([p.get("instruction", "") for p in pairs])
            for p in pairs:
                s.leaks += bool(banned.found(f"{p.get('instruction', '')} {p.get('answer', '')}"))
                answer_words += len(words(p.get("answer", "")))
                answers += 1
            if is_refusal(rec.get("raw")):
                s.refusals += 1
    for _, _rec in read_jsonl(folder / ERRORS, skip_torn=True):
        s.errors += 1
        s.queries += 1
    if s.queries:
        answered = max(1, s.parsed + s.invalid)
        s.off_count /= answered
        s.prompt_tokens /= answered
        s.completion_tokens /= answered
        if price is not None:
            s.cost_per_query = price.cost(s.prompt_tokens, s.completion_tokens)
    s.answer_words = answer_words / answers if answers else 0.0
    per_pair = max(1, s.pairs)
    s.grounded = _grounded_share(folder)
    s.score = round(s.parse_rate - 0.5 * min(1.0, s.off_count) - s.repeated / per_pair - s.leaks / per_pair
                    - (s.refusals / s.queries if s.queries else 0.0)
                    - (1.0 - s.grounded if s.grounded is not None else 0.0), 4)
    return s


def _grounded_share(folder: Path) -> float | None:
    """The share of a candidate's pairs that the grounding check finds grounded (``release/grounding``);
    None when it has no pairs or its annotations cannot be read."""
    from syphus.release.rungrounding import RunGrounding

    checked = grounded = 0
    try:
        with RunGrounding(folder) as grader:
            for _, rec in read_jsonl(folder / PAIRS, skip_torn=True):
                for g in grader.grade(str(rec.get("id")), rec.get("pairs") or []):
                    if g is not None:
                        checked += 1
                        grounded += g.grounded
    except UserError:
        return None
    return round(grounded / checked, 4) if checked else None


def candidates_path(prompt_path: str | Path) -> Path | None:
    """The candidates file beside a prompt file (``<stem>.candidates.json`` / ``.yaml``), if any."""
    p = Path(prompt_path)
    for suffix in (".json", ".yaml", ".yml"):
        c = p.with_name(p.stem + ".candidates" + suffix)
        if c.exists():
            return c
    return None


def load_candidates(prompt: Prompt, prompt_path: str | Path, path: str | Path | None = None) -> dict[str, list]:
    """``current``, ``zero-shot`` and the candidates file's sets, each checked like a prompt."""
    out: dict[str, list] = {"current": prompt.in_context, "zero-shot": []}
    path = Path(path) if path else candidates_path(prompt_path)
    if path is None:
        return out
    data = read_prompt_file(path)
    sets = data.get("candidates") if isinstance(data, dict) else None
    if not isinstance(sets, dict):
        raise UserError(f"{path}: a candidates file is {{\"candidates\": {{name: [in-context messages]}}}}")
    for name, examples in sets.items():
        if not re.fullmatch(r"[\w.-]+", str(name)):
            raise UserError(f"{path}: candidate name {name!r} must be letters, digits, '.', '_' or '-'")
        check_prompt({"system_message": prompt.system_message, "in_context": examples}, f"{path}: {name}")
        out[str(name)] = examples
    return out


def sample_inputs(loaded: LoadedDataset, size: int, seed: int) -> list[dict[str, Any]]:
    """A seeded uniform sample of the query inputs (reservoir sampling: one pass, ``size`` items held)."""
    rng = random.Random(seed)
    sample: list[dict[str, Any]] = []
    for n, item in enumerate(loaded.dataset.iter_query_inputs(loaded.source)):
        if n < size:
            sample.append(item)
        else:
            j = rng.randrange(n + 1)
            if j < size:
                sample[j] = item
    return sorted(sample, key=lambda item: item["id"])


def _real_size(cfg: RunConfig, loaded: LoadedDataset, sample: list[dict[str, Any]], asked: int, seed: int) -> int:
    """The sample's real size (fewer queries than ``--sample`` asked for when the dataset is smaller). Folders
    of an earlier version, named by the size asked for, are renamed so that nothing answered is paid again."""
    real = len(sample)
    if real != asked:
        base = run_folder(cfg, loaded.dataset).parent
        for old in base.glob(f"coldstart-*-seed{seed}-n{asked}"):
            new = old.with_name(old.name[:-len(f"-n{asked}")] + f"-n{real}")
            if old.is_dir() and not new.exists():
                old.rename(new)
                log.info("renamed %s to %s: the sample holds %d queries", old, new.name, real)
    return real


def _variant(loaded: LoadedDataset, examples: list, sample: list[dict[str, Any]]) -> LoadedDataset:
    ds = copy.copy(loaded.dataset)
    ds._prompt = Prompt(loaded.dataset._prompt.system_message, examples, source=loaded.dataset._prompt.source)
    ds.query_inputs = sample
    return LoadedDataset(ds, loaded.path)


async def run_coldstart(cfg: RunConfig, env: Mapping[str, str], *, size: int = 20, seed: int = 0,
                        candidates: str | None = None, only: list[str] | None = None,
                        display: Any = None, judge: str | bool | None = None) -> tuple[list[Score], Path]:
    """Run every candidate on the sample (reusing earlier runs) and score them, best first.

    The report goes beside the candidates' run folders; ``view_candidates`` turns them into
    the HTML viewer, with each candidate as a "language" to filter on.
    """
    loaded = load_dataset(cfg)
    prompt = loaded.dataset._prompt
    sets = load_candidates(prompt, loaded.dataset.prompt_path, candidates)
    if only:
        unknown = [c for c in only if c not in sets]
        if unknown:
            raise UserError(f"--candidate {', '.join(unknown)}: not found; there are {', '.join(sets)}")
        sets = {k: v for k, v in sets.items() if k in only}
    sample = sample_inputs(loaded, size, seed)
    size = _real_size(cfg, loaded, sample, size, seed)  # folders say how many queries they hold
    price = price_for(pricing_model(cfg, env), pricing_if_any(cfg.cost.pricing))
    scores, base = [], None
    # with --images every candidate runs twice, text only and with the images: what the pictures buy
    image_modes = (False, True) if cfg.images.path else (False,)
    for name, examples in sets.items():
        for with_images in image_modes:
            label = name + ("+images" if with_images else "")
            version = f"coldstart-{name}{'-images' if with_images else ''}-seed{seed}-n{size}"
            images = cfg.images if with_images else cfg.images.model_copy(update={"path": None})
            c = cfg.model_copy(update={"dataset_version": version, "slice_start": 0, "slice_end": -1,
                                       "random_sample": False, "images": images,
                                       # each candidate is judged on its own replies: a repair would hide its failures
                                       "reply": cfg.reply.model_copy(update={"repairs": 0})})
            result = await run_job(c, env, loaded=_variant(loaded, examples, sample), display=display)
            if result.error is not None:
                raise result.error
            if result.status != RunStatus.COMPLETE:
                raise UserError(f"cold start stopped while trying {label!r} ({result.status}); run it again to go on")
            base = result.folder.parent
            score = score_folder(label, result.folder, prompt.system_message, price)
            if judge:
                await _judge_candidate(cfg, env, judge, result.folder, score, display)
            scores.append(score)
    # the judge's mean first when there is one; the form signals break ties (and rank alone without a judge)
    scores.sort(key=lambda s: (-(s.judge if s.judge is not None else 0.0), -s.score, s.candidate))
    report = base / f"coldstart-seed{seed}-n{size}.json"
    write_atomic(report, json.dumps({"sample": [i["id"] for i in sample], "seed": seed,
                                     "scores": [asdict(s) for s in scores]}, indent=2))
    return scores, report


async def _judge_candidate(cfg: RunConfig, env: Mapping[str, str], judge: str | bool, folder: Path, score: Score,
                           display: Any) -> None:
    """Judge one candidate's pairs (once: a rerun judges nothing twice) and put the mean on its score."""
    from syphus.workflows.judge import Judging, run_judge, verdicts

    if isinstance(judge, str):  # an endpoint of the config's pool
        cfg = cfg.model_copy(update={"use_endpoints": [judge]})
    if not (folder / PAIRS).exists():
        return  # no pairs at all: nothing to judge, the form signals say why
    judging = Judging(folder)
    result = await run_judge(cfg, env, judging, display=display)
    if result.error is not None:
        raise result.error
    if result.status != RunStatus.COMPLETE:
        raise UserError(f"cold start stopped while judging {score.candidate!r} ({result.status}); run it again to go on")
    means = [v.mean for v in verdicts(folder, judging.folder)]
    score.judged = len(means)
    score.judge = round(sum(means) / len(means), 3) if means else None


def render(scores: list[Score]) -> str:
    """The side-by-side table, best first (with the judge's mean score first when the candidates were judged)."""
    if any(s.judge is not None for s in scores):
        return _with_judge(scores)
    head = (f"{'candidate':<18} {'score':>6} {'parsed':>7} {'pairs/q':>7} {'asked':>5} {'grounded':>8} "
            f"{'repeated':>8} {'forbidden':>9} {'refusals':>8} {'ans words':>9} {'tok in/out':>13} {'$/query':>9}")
    rows = [head, "-" * len(head)]
    legend = ("grounded: pairs whose answer says nothing its annotation does not (syphus report explains); "
              "repeated: questions asked twice in a query; forbidden: answers using a word the system message "
              "forbids; refusals: answers that refuse")
    for s in scores:
        ppq = s.pairs / max(1, s.parsed + s.invalid)
        cost = f"{s.cost_per_query:.5f}" if s.cost_per_query is not None else "-"
        grounded = f"{100 * s.grounded:.0f}%" if s.grounded is not None else "-"
        rows.append(f"{s.candidate:<18} {s.score:>6.2f} {s.parsed:>3}/{s.queries:<3} {ppq:>7.1f} "
                    f"{s.requested or '-':>5} {grounded:>8} {s.repeated:>8} {s.leaks:>9} {s.refusals:>8} {s.answer_words:>9.1f} "
                    f"{s.prompt_tokens:>6.0f}/{s.completion_tokens:<6.0f} {cost:>9}")
    return "\n".join(rows + [legend])


def _with_judge(scores: list[Score]) -> str:
    table = render([Score(**{**asdict(s), "judge": None}) for s in scores]).splitlines()
    head = f"{'judge':>6} {table[0]}"
    rows = [head, "-" * len(head)]
    for s, row in zip(scores, table[2:2 + len(scores)]):
        rows.append(f"{s.judge if s.judge is not None else '-':>6} {row}")
    return "\n".join(rows + table[2 + len(scores):] + ["judge: the judge's mean score (1-5)"])


def _find_record(folder: Path, qid: str) -> dict[str, Any] | None:
    for name in (PAIRS, INVALID):
        for _, rec in read_jsonl(folder / name, skip_torn=True):
            if str(rec["id"]) == qid:
                return rec
    return None


def _find_input(loaded: LoadedDataset, qid: str) -> dict[str, Any]:
    for item in loaded.dataset.iter_query_inputs(loaded.source):
        if item["id"] == qid:
            return item
    raise UserError(f"--promote {qid}: no query with that id in the dataset")


def _qa_text(text: str) -> list[dict[str, str]]:
    from syphus.parse import parse_pairs
    result = parse_pairs(text)
    if not result.pairs:
        raise UserError(f"the edited answer has no Question:/Answer: pairs ({result.reason})")
    return [{"Question": p["instruction"], "Answer": p["answer"]} for p in result.pairs]


def promote(cfg: RunConfig, qid: str, candidate: str = "current", seed: int = 0, size: int = 20,
            edited: str | None = None) -> Path:
    """Append a sampled query and its (optionally edited) answer to the prompt file as an in-context example."""
    answer: Any = None
    if edited is not None:  # read first: a missing file is said before anything else is done
        try:
            answer = _qa_text(read_text(edited, "--edit file"))
        except OSError as e:
            raise UserError(f"--edit {edited}: cannot read the edited answer ({e.strerror or e}); pass a text file "
                            "with the answer as Question:/Answer: lines") from None
    loaded = load_dataset(cfg)
    prompt_path = Path(str(loaded.dataset.prompt_path))
    if prompt_path.suffix not in (".json", ".yaml", ".yml"):
        raise UserError(f"{prompt_path}: only JSON or YAML prompt files can be edited by --promote")
    item = _find_input(loaded, qid)
    if edited is None:
        size = len(sample_inputs(loaded, size, seed))  # the folder is named by the sample's real size
        folder = run_folder(cfg.model_copy(update={"dataset_version": f"coldstart-{candidate}-seed{seed}-n{size}"}),
                            loaded.dataset)
        rec = _find_record(folder, qid)
        if rec is None:
            raise UserError(f"{folder}: no answer for {qid!r}; run the cold start first (same --seed, --sample)")
        if rec.get("pairs") and all({"instruction", "answer"} <= set(p) for p in rec["pairs"]):
            answer = [{"Question": p["instruction"], "Answer": p["answer"]} for p in rec["pairs"]]
        else:
            answer = rec.get("raw") or ""
    data = read_prompt_file(prompt_path)
    data["in_context"] = list(data.get("in_context") or []) + [
        {"role": "user", "content": item["sentences"]}, {"role": "assistant", "content": answer}]
    check_prompt(data, str(prompt_path))
    if prompt_path.suffix == ".json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    write_atomic(prompt_path, text)
    return prompt_path


def view_candidates(report: Path, scene: str | None = None, images: list[str] | None = None) -> Path:
    """Export each candidate's run and build one viewer over them: each query once with its annotation, every
    candidate's pairs beside each other (candidates are the viewer's languages)."""
    from syphus.release.export import export_run
    from syphus.release.view import build_view

    data = json.loads(report.read_text(encoding="utf-8"))
    base = report.parent
    stem = report.name[len("coldstart-"):-len(".json")]
    files = []
    for s in data["scores"]:
        folder = base / f"coldstart-{s['candidate'].replace('+images', '-images')}-{stem}"
        if (folder / PAIRS).exists() and (folder / PAIRS).stat().st_size:
            r = export_run(folder, scene=scene or "CS", parquet=False, extra_meta={"language": s["candidate"]})
            files.append(r.instructions)
    if not files:
        raise UserError(f"{base}: no candidate produced any pairs; nothing to view")
    return build_view(files, images=images or [], out=base / f"coldstart-{stem}-view", group="query").index
