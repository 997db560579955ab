"""Translate: a release's instruction-response pairs into other languages, on the same engine.

``syphus translate DC_instructions.json`` asks the model for every pair in all target
languages at once (cheapest), checks each translation (not empty, the right script
for zh/ja/ko/ar, not a copy of the English, a plausible length, and in the language asked for:
``syphus.workflows.language``), and asks again, one
language at a time, only for the languages that failed. The result is one
``XX_instructions_<lang>.json`` per language with the English file's ids, image_ids and
rel_ins_ids, plus ``XX_train.json`` unchanged and ``translation_failures.jsonl``.

One id space per (pair, language), whatever the mode. A pair is known by its instruction id
and its English text: its key is ``<instruction id>~<digest of instruction and answer>``
(``text_key``), so a pair whose English changed (``run --reparse``, then export) is translated
again rather than given the old translation. The key of a language of a pair is
``<key>@<lang>``, which is also the id of the query that asks for that language alone. The only
other query id is the bare key: the all-languages query. Before asking, a run reads its folder (``FolderState``) and
leaves out every language some record already delivered, from either kind of query:

* ``--per-language`` asks ``<id>@<lang>`` for each language not delivered yet;
* the default asks the bare ``<id>``, once, for the languages not delivered and not
  asked alone yet, as long as that id has no record; once it has one (answered, invalid
  or failed for good: the engine never sends an id twice), every language still missing
  is asked alone, as ``<id>@<lang>``. A second pass (``"retry"``) does that right after
  the first, for the pairs whose all-languages query has a record by then.

So switching modes on the same run folder re-asks nothing that was delivered, a
partly translated instruction gets its missing languages (in one request when its
all-languages query was never sent), and the run resumes per (instruction, language)
like any other run: the engine skips every query id that has a record. ``assemble``
writes each key at most once per language file (the first delivery in pairs.jsonl
wins) and lists in ``translation_failures.jsonl`` each key that was asked and that no
record delivered, once.

>>> parse_translation('Sure! ```json\\n{"a": {"de": "Was ist das?"}, "b": {"de": "Ein Hund.",},}\\n```',
...                   ["de"], {"a": "What is it?", "b": "A dog."}).pairs
[{'lang': 'de', 'instruction': 'Was ist das?', 'answer': 'Ein Hund.'}]
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, create_model

from syphus.dataset import AbstractDataset
from syphus.errors import UserError
from syphus.idset import IdSet
from syphus.release.jsonstream import iter_members
from syphus.parse import ParseResult
from syphus.reply import Reply
from syphus.workflows.language import check_translation
from syphus.workflows.translationfiles import assemble
from syphus.workflows.translationkey import ins_id_of, lang_key, text_key
from syphus.engine.store import ERRORS, INVALID, PAIRS, read_jsonl
from syphus.engine.stats import RunStatus

DEFAULT_LANGS = ("zh", "es", "ja", "de", "fr", "ko", "ar")
PROMPT = "prompts/translate.json"

_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_FENCE = re.compile(r"```(?:json)?")


def extract_json(text: str) -> Any:
    """The JSON object in a reply: inside code fences or prose, trailing commas forgiven."""
    body = _FENCE.sub("", text)
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    chunk = body[start:end + 1]
    try:
        return json.loads(chunk)
    except ValueError:
        return json.loads(_TRAILING_COMMA.sub(r"\1", chunk))


def _by_language(data: Any, langs: list[str]) -> dict[str, tuple[Any, Any]]:
    """Normalise the shapes models use into ``{lang: (instruction, answer)}``."""
    if not isinstance(data, dict):
        return {}
    a = data.get("a", data.get("instruction"))
    b = data.get("b", data.get("answer"))
    if isinstance(a, dict) or isinstance(b, dict):
        a, b = a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}
        return {lang: (a.get(lang), b.get(lang)) for lang in set(a) | set(b)}
    if isinstance(a, str) or isinstance(b, str):
        return {langs[0]: (a, b)} if len(langs) == 1 else {}
    out = {}
    for lang, entry in data.items():  # {"zh": {"a": ..., "b": ...}}
        if isinstance(entry, dict):
            out[lang] = (entry.get("a", entry.get("instruction")), entry.get("b", entry.get("answer")))
    return out


def _asks(text: str) -> bool:
    return text.rstrip().endswith(("?", "？", "؟"))


def _swapped(t_a: str, t_b: str, en_a: str, en_b: str) -> bool:
    """True when the instruction and answer came back in each other's place."""
    if not (t_a and t_b and en_a and en_b):
        return False
    if _asks(en_a) != _asks(en_b):  # the question mark says which one is the instruction
        return _asks(t_b) and not _asks(t_a) and _asks(en_a)
    en_ratio, t_ratio = len(en_a) / len(en_b), len(t_a) / len(t_b)
    return (en_ratio <= 0.5 and t_ratio >= 2) or (en_ratio >= 2 and t_ratio <= 0.5)


def parse_translation(text: str | None, langs: list[str], english: dict[str, str]) -> ParseResult:
    """Translations of one pair into ``langs``; each failing language is a problem ``"<lang>: why"``."""
    result = ParseResult()
    try:
        found = _by_language(extract_json(text or ""), langs)
    except ValueError as e:
        result.problems = [f"{lang}: the reply is not valid JSON ({e})" for lang in langs]
        return result
    for lang in langs:
        if lang not in found:
            result.problems.append(f"{lang}: missing from the reply")
            continue
        t_a, t_b = found[lang]
        if isinstance(t_a, str) and isinstance(t_b, str) and _swapped(t_a, t_b, english["a"], english["b"]):
            t_a, t_b = t_b, t_a
        why = check_translation(lang, t_a, english["a"]) or check_translation(lang, t_b, english["b"])
        if why:
            result.problems.append(f"{lang}: {why}")
            continue
        result.pairs.append({"lang": lang, "instruction": t_a.strip(), "answer": t_b.strip()})
    return result


class TranslationReply(Reply):
    """A translation reply; its checks are the text path's (script, length, a swapped pair put right).

    A reply that misses a language or holds another shape keeps the languages it has: each
    missing one is a problem ``"<lang>: ..."`` and is asked again, as in the text path.
    """

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def salvage(cls, data: Any, error: Any) -> Reply | None:
        return _AnyTranslation(data=data) if isinstance(data, dict) else None

    def to_pairs(self, query_input: dict[str, Any]) -> ParseResult:
        langs = query_input.get("langs") or []
        return parse_translation(json.dumps(self.model_dump(by_alias=True), ensure_ascii=False), langs,
                                 query_input.get("en") or {"a": "", "b": ""})


class _AnyTranslation(TranslationReply):
    """Whatever JSON object came back, read by the text path's rules."""

    data: dict[str, Any]

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        return self.data


@functools.lru_cache(maxsize=256)
def translation_model(langs: tuple[str, ...], alone: bool) -> type[TranslationReply]:
    """The reply model for ``langs``: one string per language for each of a and b, or (``alone``) a and b."""
    if alone:
        return create_model("Translation", __base__=TranslationReply, a=(str, ...), b=(str, ...))
    per_lang = create_model("Languages", __config__=ConfigDict(extra="forbid", populate_by_name=True),
                            **{f"lang{i}": (str, Field(alias=lang)) for i, lang in enumerate(langs)})
    return create_model("Translations", __base__=TranslationReply, a=(per_lang, ...), b=(per_lang, ...))


class FolderState:
    """What a translation run folder already holds, one (instruction, language) at a time.

    ``delivered``: the keys ``<id>@<lang>`` with a translation in pairs.jsonl, from either kind of
    query; ``recorded``: the query ids with a record in pairs, invalid or errors (the ids the engine
    will not send again). ``folder`` None (or not there yet) holds nothing.
    """

    def __init__(self, folder: Path | None):
        self.delivered, self.recorded = IdSet(), IdSet()
        if folder is None:
            return
        for name in (PAIRS, INVALID, ERRORS):
            for _, rec in read_jsonl(folder / name, skip_torn=True):
                self.recorded.add(str(rec["id"]))
                if name == PAIRS:
                    ins_id = ins_id_of(rec)
                    for pair in rec.get("pairs") or []:
                        self.delivered.add(lang_key(ins_id, str(pair.get("lang"))))


class Translation(AbstractDataset):
    """The pairs of an instructions file as translation queries, less what ``folder`` delivered.

    ``mode``: ``"all"`` (one query per pair for every language not delivered, while the pair's
    all-languages id is unused; then one query per language still missing), ``"retry"`` (the
    second pass of ``"all"``: only pairs whose all-languages id is used, one query per language
    still missing) or ``"each"`` (one query per pair and language not delivered). ``folder`` is
    the run folder (see ``for_run``); it is read when the queries are iterated, not before.
    """

    MODES = ("all", "retry", "each")

    def __init__(self, instructions: str | Path, langs: list[str], mode: str = "all",
                 prompt_path: str = PROMPT, folder: Path | None = None, name: str | None = None):
        if mode not in self.MODES:
            raise UserError(f"translation mode {mode!r}: use one of {', '.join(self.MODES)}")
        self.instructions = Path(instructions)
        self.langs = list(langs)
        self.mode = mode
        self.folder = folder
        if not self.instructions.exists():
            raise UserError(f"{self.instructions}: instructions file not found")
        stem = self.instructions.name.split("_instructions")[0]
        super().__init__(name or f"{stem}_translate", prompt_path, self.instructions)

    def _load_prompt(self, path: Any) -> dict[str, Any]:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{p}: translation prompt not found (run from the project folder)") from None
        except ValueError as e:
            raise UserError(f"{p}: not valid JSON ({e})") from e
        for key in ("system_message_all", "system_message_one", "examples"):
            if key not in data:
                raise UserError(f"{p}: the translation prompt needs '{key}'")
        self.template = data
        return {"system_message": data["system_message_all"], "in_context": []}

    # --- queries ------------------------------------------------------------------
    def _item(self, qid: str, ins_id: str, entry: dict[str, Any], langs: list[str]) -> dict[str, Any]:
        a, b = entry.get("instruction"), entry.get("answer")
        return {"id": qid, "sentences": f"<a>{a}</a><b>{b}</b>", "ins_id": ins_id, "langs": langs,
                "en": {"a": a, "b": b}, "image_ids": entry.get("image_ids", []),
                "rel_ins_ids": entry.get("rel_ins_ids", [])}

    def _load_query_inputs(self, path: Any) -> Iterator[dict[str, Any]]:
        state = FolderState(self.folder)
        for ins_id, entry in iter_members(self.instructions, within="data"):
            if not isinstance(entry, dict) or not isinstance(entry.get("instruction"), str) \
                    or not isinstance(entry.get("answer"), str):
                raise UserError(f"{self.instructions}: entry {ins_id!r} has no string 'instruction' and 'answer'")
            yield from self._queries(text_key(ins_id, entry["instruction"], entry["answer"]), entry, state)

    def _queries(self, ins_id: str, entry: dict[str, Any], state: FolderState) -> Iterator[dict[str, Any]]:
        """The queries for one pair: its languages not delivered, together or one by one."""
        if self.mode == "retry" and ins_id not in state.recorded:
            return
        missing = [x for x in self.langs if lang_key(ins_id, x) not in state.delivered]
        alone = missing
        if self.mode == "all" and ins_id not in state.recorded:
            together = [x for x in missing if lang_key(ins_id, x) not in state.recorded]
            if together:
                yield self._item(ins_id, ins_id, entry, together)
            alone = [x for x in missing if x not in together]  # asked alone before: the engine skips them
        for lang in alone:
            yield self._item(lang_key(ins_id, lang), ins_id, entry, [lang])

    # --- prompts and parsing ----------------------------------------------------------
    def build_messages(self, item: dict[str, Any]) -> list[dict[str, str]]:
        t = self.template
        names = t.get("language_names", {})
        langs = item["langs"]
        alone = item["id"] != item["ins_id"]
        if alone:
            system = t["system_message_one"].replace("{language}", f"{names.get(langs[0], langs[0])} ({langs[0]})")
        else:
            system = t["system_message_all"].replace(
                "{languages}", ", ".join(f"{names.get(x, x)} ({x})" for x in langs))
        messages = [{"role": "system", "content": system}]
        for ex in t["examples"]:
            have = [x for x in langs if x in ex]
            if not have or "en" not in ex:
                continue
            messages.append({"role": "user", "content": f"<a>{ex['en']['a']}</a><b>{ex['en']['b']}</b>"})
            if alone:
                reply = {"a": ex[langs[0]]["a"], "b": ex[langs[0]]["b"]}
            else:
                reply = {"a": {x: ex[x]["a"] for x in have}, "b": {x: ex[x]["b"] for x in have}}
            messages.append({"role": "assistant", "content": json.dumps(reply, ensure_ascii=False)})
        messages.append({"role": "user", "content": item["sentences"]})
        return messages

    def reply_model_for(self, query_input: dict[str, Any]) -> type[Reply]:
        """The JSON a reply must be: ``{"a": {lang: ...}, "b": {lang: ...}}``, or ``{"a", "b"}`` for one language asked alone."""
        alone = query_input.get("id") != query_input.get("ins_id")
        return translation_model(tuple(query_input.get("langs") or self.langs), alone)

    def parse_response(self, text: str, finish_reason: str | None,
                       query_input: dict[str, Any] | None = None) -> ParseResult:
        qi = query_input or {}
        result = parse_translation(text, qi.get("langs") or self.langs, qi.get("en") or {"a": "", "b": ""})
        if finish_reason == "length":
            result.truncated = True
        return result


def for_run(cfg: Any, source: str | Path, langs: list[str], mode: str) -> Translation:
    """The Translation of ``source`` that reads what its own run folder (``cfg``'s) already holds."""
    from syphus.engine.workload import run_folder

    translation = Translation(source, langs, mode)
    translation.folder = run_folder(cfg, translation)
    return translation


def _run_export(folder: Path) -> tuple[Path, Path]:
    """The English instructions and train file of a run folder: its export as it is (``--dedup`` and
    all), made with the defaults only when the run has none; an export is never overwritten."""
    from syphus.release.export import export_run, recover_release

    export = folder / "export"
    recover_release(export)
    found = sorted(p for p in export.glob("*_instructions.json")) if export.is_dir() else []
    if len(found) > 1:
        raise UserError(f"{export}: {len(found)} instructions files ({', '.join(p.name for p in found)}); "
                        "pass the one to translate (syphus translate <run>/export/XX_instructions.json)")
    if found:
        return found[0], found[0].with_name(found[0].name.replace("_instructions.json", "_train.json"))
    exported = export_run(folder, parquet=False)
    return exported.instructions, exported.train


async def run_translation(cfg: Any, env: Any, source: str | Path, langs: list[str], per_language: bool = False,
                          out: str | Path | None = None, display: Any = None,
                          sleep: Any = None, retry_errors: bool = False) -> dict[str, Any]:
    """Translate ``source`` (an instructions file, or a run folder, exported first) end to end.

    The default mode runs twice: the second pass asks, one at a time, the languages the first
    pass's all-languages queries did not deliver.
    """
    from syphus.engine.job import run_job
    from syphus.engine.workload import LoadedDataset

    source = Path(source)
    train = None
    if source.is_dir() or source.name == PAIRS:
        source, train = _run_export(source if source.is_dir() else source.parent)
    bad = [x for x in langs if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z]{2,4})?", x)]
    if bad:
        raise UserError(f"--langs: {', '.join(bad)} are not ISO language codes (e.g. zh,es,ja,de,fr,ko,ar)")
    # a translation missing a language is asked again for that language alone (below): no generic repair on top
    cfg = cfg.model_copy(update={"reply": cfg.reply.model_copy(update={"repairs": 0})})
    kw = dict(display=display, install_signals=True)
    if sleep is not None:
        kw["sleep"] = sleep
    mode = "each" if per_language else "all"
    first = for_run(cfg, source, langs, mode)
    results = [await run_job(cfg, env, loaded=LoadedDataset(first, Path("<translate>")), retry_errors=retry_errors,
                             **kw)]
    if results[-1].status == RunStatus.COMPLETE and not per_language:
        again = for_run(cfg, source, langs, "retry")
        results.append(await run_job(cfg, env, loaded=LoadedDataset(again, Path("<translate>")), **kw))
    summary = assemble(first.folder, source, Path(out) if out else first.folder / "export", langs, train)
    summary["results"] = results
    summary["folder"] = first.folder
    return summary
