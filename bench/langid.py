"""Language identification on short texts: which library, which candidate languages, which guard.

Reads ``bench/data/langid_texts.json`` (14 instruction-answer pairs in English, the seven targets of
``syphus translate`` and it/pt/nl, plus short fields: names, numbers, one-word answers) and prints:

1. accuracy per language of py3langid and (when installed) lingua-language-detector, over all their
   languages and restricted to ``syphus.workflows.language.NEIGHBOURS``; time per text and memory;
2. ``check_translation`` end to end: correct translations wrongly failed (the false-fail rate: fields,
   short fields, fields full of English loanwords), and wrong-language fields caught (English,
   another target, a Latin neighbour), for each ``MAX_TARGET_P`` and ``MIN_WORDS`` guard.

    .venv/bin/python bench/langid.py            # ~10 s; + ~1 min and ~1 GB with lingua installed

Writes ``bench/results/langid.json``.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syphus.workflows import language  # noqa: E402

DATA = json.loads((ROOT / "bench" / "data" / "langid_texts.json").read_text(encoding="utf-8"))
TARGETS = ["zh", "es", "ja", "de", "fr", "ko", "ar"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def texts(kind: str) -> list[tuple[str, str]]:
    if kind == "pairs":
        return [(lang, t) for lang, pairs in DATA["pairs"].items() for pair in pairs for t in pair]
    return [(lang, t) for lang, short in DATA["short"].items() for t in short]


def accuracy(name: str, classify, load_s: float) -> dict:
    row = {"name": name, "load_s": round(load_s, 2)}
    for kind in ("pairs", "short"):
        items = texts(kind)
        start = time.perf_counter()
        guesses = [classify(t) for _, t in items]
        row[f"{kind}_ms_per_text"] = round((time.perf_counter() - start) / len(items) * 1e3, 3)
        per: dict[str, list[int]] = {}
        for (lang, _), guess in zip(items, guesses):
            per.setdefault(lang, [0, 0])
            per[lang][0] += guess == lang
            per[lang][1] += 1
        row[kind] = {lang: f"{r}/{n}" for lang, (r, n) in per.items()}
        row[f"{kind}_right"] = f"{sum(r for r, _ in per.values())}/{sum(n for _, n in per.values())}"
    row["max_rss_mb"] = round(rss_mb())
    return row


def libraries() -> list[dict]:
    rows = []
    start = time.perf_counter()
    from py3langid.langid import MODEL_FILE, LanguageIdentifier
    for candidates in (None, language.NEIGHBOURS):
        ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if candidates:
            ident.set_languages(list(candidates))
        rows.append(accuracy(f"py3langid, {'all 97+' if candidates is None else 'neighbours'}",
                             lambda t, i=ident: i.classify(t)[0], time.perf_counter() - start))
        start = time.perf_counter()
    try:
        from lingua import IsoCode639_1, LanguageDetectorBuilder
    except ImportError:
        rows.append({"name": "lingua", "skipped": "not installed (pip install lingua-language-detector)"})
        return rows
    for candidates in (language.NEIGHBOURS, None):
        for low in (False, True):
            start = time.perf_counter()
            builder = (LanguageDetectorBuilder.from_all_languages() if candidates is None else
                       LanguageDetectorBuilder.from_iso_codes_639_1(*[getattr(IsoCode639_1, c.upper())
                                                                      for c in candidates]))
            detector = (builder.with_low_accuracy_mode() if low else builder).build()

            def classify(t, d=detector):
                found = d.detect_language_of(t)
                return found.iso_code_639_1.name.lower() if found else None

            rows.append(accuracy(f"lingua {'low' if low else 'high'} accuracy, "
                                 f"{'all 75' if candidates is None else 'neighbours'}", classify,
                                 time.perf_counter() - start))
    return rows


def wrong_cases() -> list[tuple[str, str, str, str]]:
    """(asked, written in, text, its English): fields in another language than the one asked."""
    english = [t for pair in DATA["pairs"]["en"] for t in pair]
    cases = []
    for asked in ("de", "es", "fr"):
        for written in ("en", "de", "es", "fr", "it", "pt", "nl"):
            if written != asked:
                cases += [(asked, written, t, e) for t, e in zip(
                    [t for pair in DATA["pairs"][written] for t in pair], english)]
    for asked, written in (("zh", "ja"), ("ja", "zh")):
        cases += [(asked, written, t, e) for t, e in zip([t for pair in DATA["pairs"][written] for t in pair],
                                                          english)]
    return cases


def checks() -> list[dict]:
    english = [t for pair in DATA["pairs"]["en"] for t in pair]
    sets = {"pairs": ({lang: [t for pair in DATA["pairs"][lang] for t in pair] for lang in TARGETS}, english),
            "short": (DATA["short"], DATA["short"]["en"]),
            "loanwords": ({k: v for k, v in DATA["loanwords"].items() if k != "en"}, DATA["loanwords"]["en"])}
    rows = []
    chosen = language.MIN_WORDS, language.MAX_TARGET_P
    for max_p in (0.05, 0.2, 1.01):  # 1.01: any other language that wins fails the field
        for min_words in (1, 2, 3, 4):
            language.MIN_WORDS, language.MAX_TARGET_P = min_words, max_p
            row = {"min_words": min_words, "max_target_p": max_p, "false_fail": {}, "caught": {}}
            for kind, (by_lang, en) in sets.items():
                failed = total = 0
                for lang, mine in by_lang.items():
                    if lang not in TARGETS:
                        continue
                    for text, e in zip(mine, en):
                        total += 1
                        failed += language.check_translation(lang, text, e) is not None
                row["false_fail"][kind] = f"{failed}/{total}"
            by: dict[str, list[int]] = {}
            for asked, written, text, e in wrong_cases():
                key = f"{written} as {asked}" if written == "en" or asked in ("zh", "ja") else f"other as {asked}"
                by.setdefault(key, [0, 0])
                by[key][0] += language.check_translation(asked, text, e) is not None
                by[key][1] += 1
            row["caught"] = {k: f"{c}/{n}" for k, (c, n) in by.items()}
            rows.append(row)
    language.MIN_WORDS, language.MAX_TARGET_P = chosen
    return rows


def main() -> None:
    libs = libraries()
    print("| library, candidates | pairs right | short right | ms/text | load s | max RSS MB |")
    print("|---|---|---|---|---|---|")
    for r in libs:
        if "skipped" in r:
            print(f"| {r['name']} | {r['skipped']} |||||")
            continue
        print(f"| {r['name']} | {r['pairs_right']} | {r['short_right']} | {r['pairs_ms_per_text']} | "
              f"{r['load_s']} | {r['max_rss_mb']} |")
    print("\nper language (pairs):")
    for r in libs:
        if "pairs" in r:
            print(f"  {r['name']}: " + ", ".join(f"{k} {v}" for k, v in r["pairs"].items()))
    found = checks()
    print(f"\nchosen: MIN_WORDS {language.MIN_WORDS}, MAX_TARGET_P {language.MAX_TARGET_P}")
    print("| MAX_TARGET_P | MIN_WORDS | false fails: fields | short | loanwords | caught |")
    print("|---|---|---|---|---|---|")
    for r in found:
        f = r["false_fail"]
        print(f"| {r['max_target_p']} | {r['min_words']} | {f['pairs']} | {f['short']} | {f['loanwords']} | "
              + ", ".join(f"{k} {v}" for k, v in r["caught"].items()) + " |")
    out = ROOT / "bench" / "results" / "langid.json"
    out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "libraries": libs, "checks": found}, indent=1)
                   + "\n", encoding="utf-8")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
