"""The files a translation run gives: one ``XX_instructions_<lang>.json`` per language, with the English
file's ids, image_ids and rel_ins_ids, the train file copied, and ``translation_failures.jsonl``: each
(pair, language) asked and never delivered, once, with why."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from syphus.durable import atomic_file
from syphus.engine.store import ERRORS, INVALID, PAIRS, read_jsonl
from syphus.idset import IdSet
from syphus.release.jsonstream import ObjectWriter, iter_members, read_first
from syphus.workflows.translationkey import ins_id_of, lang_key, plain_id, text_key


def assemble(folder: Path, english: Path, out: Path, langs: list[str], train: Path | None = None) -> dict[str, Any]:
    """Write one instructions file per language from a translation run; returns counts.

    Each (instruction, language) is written once: its first delivery in pairs.jsonl, whether
    from an all-languages or a one-language query.
    """
    out.mkdir(parents=True, exist_ok=True)
    stem = english.name.split("_instructions")[0]
    meta = read_first(english, "meta") or {}
    writers = {lang: ObjectWriter(out / f"{stem}_instructions_{lang}.json", {**meta, "language": lang})
               for lang in langs}
    counts = {lang: 0 for lang in langs}
    current = IdSet()  # the keys of the English pairs as they are now: a translation of older text is not theirs
    for ins_id, entry in iter_members(english, within="data"):
        if isinstance(entry, dict):
            current.add(text_key(ins_id, entry.get("instruction"), entry.get("answer")))
    written = IdSet()
    for _, rec in read_jsonl(folder / PAIRS, skip_torn=True):
        m = rec.get("meta") or {}
        ins_id = ins_id_of(rec)
        if ins_id not in current:
            continue
        for pair in rec.get("pairs") or []:
            lang = pair.get("lang")
            if lang in writers and written.add(lang_key(ins_id, lang)):
                writers[lang].add(plain_id(ins_id), {"instruction": pair["instruction"], "answer": pair["answer"],
                                           "image_ids": m.get("image_ids", []),
                                           "rel_ins_ids": m.get("rel_ins_ids", [])})
                counts[lang] += 1
    for w in writers.values():
        w.close()
    failures = 0
    with atomic_file(out / "translation_failures.jsonl", sync=False) as f:  # whole or the one before
        for failure in undelivered(folder, langs, written, current):
            f.write(json.dumps(failure, ensure_ascii=False) + "\n")
            failures += 1
    train = train or english.with_name(f"{stem}_train.json")
    if train.exists():
        shutil.copyfile(train, out / train.name)
    return {"counts": counts, "failures": failures, "out": out}


def _asked(rec: dict[str, Any], ins_id: str, langs: list[str]) -> list[str]:
    """The languages of ``langs`` a record's query asked for.

    An error record has no meta: a one-language id names its language, and a failed
    all-languages query is taken to have asked for all of ``langs``.
    """
    qid = str(rec["id"])
    asked = (rec.get("meta") or {}).get("langs") or ([qid.rsplit("@", 1)[1]] if qid != ins_id else langs)
    return [x for x in asked if x in langs]


def _reason(rec: dict[str, Any], lang: str) -> str:
    """Why a record did not deliver ``lang``: its problems with that language, else why it failed."""
    problems = rec.get("problems") or []
    own = [p for p in problems if p.startswith(f"{lang}:")]
    return "; ".join(own) or rec.get("reason") or rec.get("message") or "; ".join(problems) or "not delivered"


def undelivered(folder: Path, langs: list[str], delivered: IdSet, current: IdSet | None = None
                ) -> Iterator[dict[str, str]]:
    """``{"id", "lang", "reason"}`` for each (pair, language) asked and not in ``delivered``, once.

    ``current``: the keys of the pairs still in the English file (others are left out).

    One-language records are read first: they are the later asks, so their reason is the last word.
    """
    reported = IdSet()
    for alone in (True, False):
        for name in (INVALID, PAIRS, ERRORS):
            for _, rec in read_jsonl(folder / name, skip_torn=True):
                ins_id = ins_id_of(rec)
                if (str(rec["id"]) != ins_id) != alone or (current is not None and ins_id not in current):
                    continue
                for lang in _asked(rec, ins_id, langs):
                    key = lang_key(ins_id, lang)
                    if key not in delivered and reported.add(key):
                        yield {"id": plain_id(ins_id), "lang": lang, "reason": _reason(rec, lang)}
