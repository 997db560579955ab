"""syphus translate: every pair into seven languages, checked, re-asked only for what failed, resumable."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path

import pytest

from syphus.cli import main
from syphus.workflows.translate import check_translation, parse_translation
from tests.conftest import KEY, ROOT
from tests.fakeserver import Gate, Reply
from tests.helpers import fake_translation

LANGS = ["zh", "es", "ja", "de", "fr", "ko", "ar"]
ENGLISH = {
    "DC_INS_00001": ("What is the man holding in his hands?", "He is holding a red umbrella over his head."),
    "DC_INS_00002": ("Where is the dog running?", "The dog is running across a wide green field."),
    "DC_INS_00003": ("How many cars are parked?", "Three cars are parked along the street."),
    "DC_INS_00004": ("What color is the bus?", "The bus is bright yellow with a black stripe."),
}


fake = fake_translation  # reads as the language asked (tests.helpers), so the language check passes it


@pytest.fixture
def release(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "translate.json").write_text((ROOT / "prompts" / "translate.json").read_text())
    data = {k: {"instruction": a, "answer": b, "image_ids": [f"DC_IMG_v_x_{i:04d}" for i in range(2)],
                "rel_ins_ids": [x for x in ENGLISH if x != k]} for k, (a, b) in ENGLISH.items()}
    (tmp_path / "DC_instructions.json").write_text(json.dumps({"meta": {"version": "0.0.1", "time": "2023-06",
                                                                        "author": "x"}, "data": data}))
    (tmp_path / "DC_train.json").write_text(json.dumps({k: v["rel_ins_ids"] for k, v in data.items()}))
    return tmp_path


def in_language(lang: str, text: str) -> str:
    """``text`` written in ``lang``: English comes back reworded (a copy would be caught as one)."""
    return f"Well, {text[0].lower()}{text[1:]}" if lang == "en" else fake(lang, text)


class Translator:
    """A responder that translates with ``fake`` and can be told to misbehave per (id text, round)."""

    def __init__(self):
        self.requests: list[tuple[list[str], str]] = []
        self.lock = threading.Lock()
        self.drop: dict[str, set[str]] = {}  # instruction text -> languages left out of all-language replies
        self.wrong_script: set[str] = set()  # instruction texts whose zh comes back in Latin letters, always
        self.garbled: set[str] = set()  # instruction texts whose all-language reply is not JSON
        self.refused: set[str] = set()  # instruction texts every request for which gets a 400, always
        # instruction text -> {language asked: language written}: in all-language replies only, or always
        self.wrong_language: dict[str, dict[str, str]] = {}
        self.wrong_language_always: dict[str, dict[str, str]] = {}

    def __call__(self, body, n):
        system = body["messages"][0]["content"]
        langs = re.findall(r"\(([a-z]{2})\)", system)
        user = body["messages"][-1]["content"]
        a, b = re.fullmatch(r"<a>(.*)</a><b>(.*)</b>", user, re.S).groups()
        with self.lock:
            self.requests.append((langs, a))
        if a in self.refused:
            return Reply.status(400)
        if len(langs) == 1:
            lang = langs[0]
            if lang == "zh" and a in self.wrong_script:
                return Reply.ok(json.dumps({"a": "Zhe shi shenme", "b": "Ta na zhe yusan"}))
            written = self.wrong_language_always.get(a, {}).get(lang, lang)
            return Reply.ok(json.dumps({"a": in_language(written, a), "b": in_language(written, b)},
                                       ensure_ascii=False))
        if a in self.garbled:
            return Reply.ok("Here you go: {a: zh: ...")
        keep = [x for x in langs if x not in self.drop.get(a, set())]
        written = {x: {**self.wrong_language.get(a, {}), **self.wrong_language_always.get(a, {})}.get(x, x)
                   for x in keep}
        reply = {"a": {x: in_language(written[x], a) for x in keep}, "b": {x: in_language(written[x], b) for x in keep}}
        if a in self.wrong_script:
            reply["a"]["zh"], reply["b"]["zh"] = "Zhe shi", "Ta na zhe"
        return Reply.ok("```json\n" + json.dumps(reply, ensure_ascii=False, indent=1) + "\n```")


def translate(server, *extra):
    out = io.StringIO()
    code = main(["translate", "DC_instructions.json", "--base_url", server.base_url, "--quiet", *extra],
                env={"OPENAI_API_KEY": KEY}, stream=out)
    return code, out.getvalue()


def load(path: Path) -> dict:
    return json.loads(path.read_text())["data"]


def written_ids(path: Path) -> list[str]:
    """The ids of a language file as written, repeats kept (``json.loads`` would fold them into one)."""
    closed = []
    json.loads(path.read_text(), object_pairs_hook=lambda items: closed.append([k for k, _ in items]) or dict(items))
    return closed[-2]  # objects close innermost first: the last is the file, the one before it "data"


INS_ID = {a: k for k, (a, _) in ENGLISH.items()}


def asked(requests) -> list[tuple[str, str]]:
    """Every (instruction id, language) the requests asked for, repeats kept."""
    return [(INS_ID[a], lang) for langs, a in requests for lang in langs]


def test_all_languages_in_one_request_with_ids_kept(release, server):
    t = Translator()
    server.responder = t
    code, out = translate(server)
    assert code == 0, out
    assert len(t.requests) == 4 and all(langs == LANGS for langs, _ in t.requests)
    export = release / "output" / "DC_translate" / "v1" / "export"
    english = load(release / "DC_instructions.json")
    for lang in LANGS:
        data = load(export / f"DC_instructions_{lang}.json")
        assert set(data) == set(english)
        for k, entry in data.items():
            assert entry["image_ids"] == english[k]["image_ids"] and entry["rel_ins_ids"] == english[k]["rel_ins_ids"]
            assert entry["instruction"] == fake(lang, english[k]["instruction"])
    assert json.loads((export / "DC_instructions_zh.json").read_text())["meta"]["language"] == "zh"
    assert (export / "DC_train.json").read_text() == (release / "DC_train.json").read_text()
    assert (export / "translation_failures.jsonl").read_text() == ""
    assert "0 (id, language) failures" in out


def test_only_the_missing_languages_are_asked_again(release, server):
    t = Translator()
    t.drop[ENGLISH["DC_INS_00002"][0]] = {"ko", "ar"}
    server.responder = t
    code, out = translate(server)
    assert code == 0, out
    again = t.requests[4:]
    assert sorted(langs[0] for langs, _ in again) == ["ar", "ko"]
    assert all(a == ENGLISH["DC_INS_00002"][0] for _, a in again)
    export = release / "output" / "DC_translate" / "v1" / "export"
    assert "DC_INS_00002" in load(export / "DC_instructions_ko.json")
    assert "DC_INS_00002" in load(export / "DC_instructions_ar.json")


def test_wrong_script_is_recorded_per_id_and_language(release, server):
    t = Translator()
    t.wrong_script.add(ENGLISH["DC_INS_00003"][0])
    server.responder = t
    code, out = translate(server)
    assert code == 0, out
    assert [(langs, a) for langs, a in t.requests[4:]] == [(["zh"], ENGLISH["DC_INS_00003"][0])]
    export = release / "output" / "DC_translate" / "v1" / "export"
    assert "DC_INS_00003" not in load(export / "DC_instructions_zh.json")
    assert "DC_INS_00003" in load(export / "DC_instructions_ja.json")
    failures = [json.loads(x) for x in (export / "translation_failures.jsonl").read_text().splitlines()]
    assert failures == [{"id": "DC_INS_00003", "lang": "zh", "reason": "zh: not in the zh script"}]


def test_a_translation_in_the_wrong_language_fails_that_language_and_is_asked_again(release, server):
    t = Translator()
    en = ENGLISH["DC_INS_00002"][0]
    t.wrong_language[en] = {"de": "en", "es": "en", "fr": "en"}  # English "translations"
    t.wrong_language_always[ENGLISH["DC_INS_00001"][0]] = {"es": "fr"}  # French when Spanish is asked, always
    server.responder = t
    code, out = translate(server)
    assert code == 0, out
    assert sorted(asked(t.requests[4:])) == [("DC_INS_00001", "es"), ("DC_INS_00002", "de"),
                                             ("DC_INS_00002", "es"), ("DC_INS_00002", "fr")]
    export = release / "output" / "DC_translate" / "v1" / "export"
    for lang in ("de", "es", "fr"):  # asked alone, they came back right
        assert load(export / f"DC_instructions_{lang}.json")["DC_INS_00002"]["instruction"] == fake(lang, en)
    assert "DC_INS_00001" not in load(export / "DC_instructions_es.json")
    assert "DC_INS_00001" in load(export / "DC_instructions_fr.json")  # French asked as French passes
    failures = [json.loads(x) for x in (export / "translation_failures.jsonl").read_text().splitlines()]
    assert failures == [{"id": "DC_INS_00001", "lang": "es", "reason": "es: in French, not Spanish (es)"}]
    problems = [p for line in (release / "output" / "DC_translate" / "v1" / "pairs.jsonl").read_text().splitlines()
                for p in json.loads(line).get("problems") or []]
    assert sorted(problems) == ["de: in English, not German (de)", "es: in English, not Spanish (es)",
                                "es: in French, not Spanish (es)", "fr: in English, not French (fr)"]


def test_malformed_json_is_asked_again_language_by_language(release, server):
    t = Translator()
    t.garbled.add(ENGLISH["DC_INS_00004"][0])
    server.responder = t
    code, out = translate(server)
    assert code == 0, out
    assert sorted(langs[0] for langs, _ in t.requests[4:]) == sorted(LANGS)
    export = release / "output" / "DC_translate" / "v1" / "export"
    assert all("DC_INS_00004" in load(export / f"DC_instructions_{lang}.json") for lang in LANGS)


def test_resume_asks_only_what_is_not_settled(release, server):
    t = Translator()
    server.responder = t
    assert translate(server, "--slice_end", "2")[0] == 0
    assert len(t.requests) == 2
    assert translate(server)[0] == 0
    assert len(t.requests) == 4
    assert sorted(a for _, a in t.requests) == sorted(a for a, _ in ENGLISH.values())
    assert translate(server)[0] == 0
    assert len(t.requests) == 4  # everything settled: nothing sent


def test_one_request_per_language_and_a_subset(release, server):
    t = Translator()
    server.responder = t
    code, out = translate(server, "--langs", "de,ja", "--per-language")
    assert code == 0, out
    assert sorted(langs[0] for langs, _ in t.requests) == ["de"] * 4 + ["ja"] * 4
    export = release / "output" / "DC_translate" / "v1" / "export"
    assert sorted(p.name for p in export.glob("DC_instructions_*.json")) == ["DC_instructions_de.json",
                                                                             "DC_instructions_ja.json"]


def assert_each_id_once(export: Path, langs=LANGS) -> None:
    for lang in langs:
        ids = written_ids(export / f"DC_instructions_{lang}.json")
        assert sorted(ids) == sorted(ENGLISH), lang


def test_switching_modes_reuses_translations_and_writes_each_key_once(release, server):
    t = Translator()
    t.drop[ENGLISH["DC_INS_00002"][0]] = {"es"}
    server.responder = t
    assert translate(server, "--langs", "zh,es")[0] == 0
    assert len(t.requests) == 5  # four with both languages, then DC_INS_00002 in es alone
    delivered = {(k, lang) for k in ENGLISH for lang in ("zh", "es")}
    sent = len(t.requests)
    code, out = translate(server, "--per-language")
    assert code == 0, out
    assert all(len(langs) == 1 for langs, _ in t.requests[sent:])
    again = asked(t.requests[sent:])
    assert not set(again) & delivered
    assert sorted(again) == sorted((k, lang) for k in ENGLISH for lang in LANGS if lang not in ("zh", "es"))
    export = release / "output" / "DC_translate" / "v1" / "export"
    assert_each_id_once(export)
    assert (export / "translation_failures.jsonl").read_text() == ""
    sent = len(t.requests)
    code, out = translate(server)  # and back: everything is delivered, nothing is sent
    assert code == 0, out
    assert t.requests[sent:] == []
    assert_each_id_once(export)


def test_switching_from_per_language_asks_only_the_rest_in_one_request(release, server):
    t = Translator()
    server.responder = t
    assert translate(server, "--per-language", "--slice_end", "3")[0] == 0  # stopped early: zh, es, ja of one
    assert sorted(asked(t.requests)) == [("DC_INS_00001", "es"), ("DC_INS_00001", "ja"), ("DC_INS_00001", "zh")]
    sent = len(t.requests)
    code, out = translate(server)
    assert code == 0, out
    again = {INS_ID[a]: langs for langs, a in t.requests[sent:]}
    assert len(t.requests) - sent == 4
    assert again == {"DC_INS_00001": ["de", "fr", "ko", "ar"], "DC_INS_00002": LANGS, "DC_INS_00003": LANGS,
                     "DC_INS_00004": LANGS}
    export = release / "output" / "DC_translate" / "v1" / "export"
    assert_each_id_once(export)
    zh = load(export / "DC_instructions_zh.json")
    assert zh["DC_INS_00001"]["instruction"] == fake("zh", ENGLISH["DC_INS_00001"][0])
    sent = len(t.requests)
    assert translate(server, "--per-language")[0] == 0
    assert t.requests[sent:] == []
    assert_each_id_once(export)


def test_a_refused_all_languages_query_is_asked_per_language_and_each_failure_listed_once(release, server):
    t = Translator()
    t.refused.add(ENGLISH["DC_INS_00004"][0])
    server.responder = t
    code, out = translate(server)
    assert code == 0, out
    # (the refused query may be sent once more as text first, while the run has not settled JSON)
    assert set(asked(t.requests[4:])) == {("DC_INS_00004", lang) for lang in LANGS}
    export = release / "output" / "DC_translate" / "v1" / "export"
    failures = [json.loads(x) for x in (export / "translation_failures.jsonl").read_text().splitlines()]
    assert sorted((f["id"], f["lang"]) for f in failures) == sorted(("DC_INS_00004", lang) for lang in LANGS)
    assert all(f["reason"] for f in failures)
    assert all("DC_INS_00004" not in load(export / f"DC_instructions_{lang}.json") for lang in LANGS)
    sent = len(t.requests)
    assert translate(server, "--per-language")[0] == 0  # failed for good: not asked again
    assert t.requests[sent:] == []


def test_a_key_delivered_twice_is_written_once_and_is_no_failure(release):
    """A folder where both kinds of query delivered one language (as runs before one id space wrote)."""
    from syphus.workflows.translationfiles import assemble
    from syphus.workflows.translationkey import text_key

    def meta(k, langs):
        return {"ins_id": k, "langs": langs, "image_ids": [], "rel_ins_ids": []}

    def pair(lang, text):
        return {"lang": lang, "instruction": text, "answer": text}

    K1, K2 = (text_key(i, *ENGLISH[i]) for i in ("DC_INS_00001", "DC_INS_00002"))  # records keyed by id and text
    folder = release / "run"
    folder.mkdir()
    (folder / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": K1, "pairs": [pair("zh", "中中中一"), pair("de", "erst")],
         "meta": meta(K1, ["zh", "de"])},
        {"id": K1 + "@zh", "pairs": [pair("zh", "中中中二")], "meta": meta(K1, ["zh"])},
        {"id": K2 + "@zh", "pairs": [pair("zh", "中中中三")], "meta": meta(K2, ["zh"])},
    ]))
    (folder / "invalid.jsonl").write_text(json.dumps(
        {"id": K2, "pairs": [], "problems": ["zh: missing from the reply", "de: empty"],
         "reason": "zh: missing from the reply; de: empty", "meta": meta(K2, ["zh", "de"])}) + "\n")
    (folder / "errors.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": K1 + "@de", "kind": "server_error", "message": "boom"},
        {"id": K2 + "@de", "kind": "server_error", "message": "gave up after 5 attempts"},
    ]))
    summary = assemble(folder, release / "DC_instructions.json", folder / "export", ["zh", "de"])
    zh, de = folder / "export" / "DC_instructions_zh.json", folder / "export" / "DC_instructions_de.json"
    assert written_ids(zh) == ["DC_INS_00001", "DC_INS_00002"] and written_ids(de) == ["DC_INS_00001"]
    assert load(zh)["DC_INS_00001"]["instruction"] == "中中中一"  # the first delivery wins
    assert summary["counts"] == {"zh": 2, "de": 1}
    failures = [json.loads(x) for x in (folder / "export" / "translation_failures.jsonl").read_text().splitlines()]
    assert failures == [{"id": "DC_INS_00002", "lang": "de", "reason": "gave up after 5 attempts"}]


def test_dry_run_and_bad_language_codes_send_nothing(release, server):
    t = Translator()
    server.responder = t
    code, out = translate(server, "--dry-run", "--model", "gpt-4o-mini")
    assert code == 0 and "4 queries to go" in out and t.requests == []
    code, out = translate(server, "--langs", "zh,Chinese")
    assert code == 2 and "Chinese" in out and t.requests == []


@pytest.mark.parametrize("reply,problem", [
    ('{"a": {"de": "Was hält er?"}, "b": {"de": "Einen Schirm."}}', None),
    ('Here:\n```json\n{"a": {"de": "Was hält er?",}, "b": {"de": "Einen Schirm.",},}\n```\nDone.', None),
    ('{"de": {"a": "Was hält er?", "b": "Einen Schirm."}}', None),
    ('{"a": {"de": "Einen Schirm."}, "b": {"de": "Was hält er?"}}', None),  # swapped: repaired
    ('{"a": {"de": "What is he holding?"}, "b": {"de": "An umbrella."}}', "an untranslated copy"),
    ('{"a": {"de": ""}, "b": {"de": "Einen Schirm."}}', "empty"),
    ('{"a": {}, "b": {}}', "missing from the reply"),
    ("no json at all", "not valid JSON"),
])
def test_parse_translation(reply, problem):
    r = parse_translation(reply, ["de"], {"a": "What is he holding?", "b": "An umbrella."})
    if problem is None:
        assert r.pairs == [{"lang": "de", "instruction": "Was hält er?", "answer": "Einen Schirm."}]
    else:
        assert r.pairs == [] and problem in r.problems[0]


def test_translation_checks():
    en = "The dog is running across a wide green field."
    assert check_translation("zh", "狗正在穿过一片宽阔的绿色田野。", en) is None
    assert "script" in check_translation("zh", "The dog runs", en)
    assert check_translation("ja", "犬が広い緑の野原を走っています。", en) is None
    assert "kana" in check_translation("ja", "狗正在穿过一片宽阔的绿色田野跑步", en)
    assert check_translation("ko", "개가 넓은 초록 들판을 가로질러 달리고 있습니다.", en) is None
    assert check_translation("ar", "الكلب يركض عبر حقل أخضر واسع.", en) is None
    assert "length" in check_translation("fr", "Le chien.", en)
    assert "another script" in check_translation("fr", "狗正在穿过一片宽阔的绿色田野。", en)


@pytest.mark.parametrize("lang,text,problem", [
    ("de", "The dog runs quickly across the green field.", "in English, not German (de)"),
    ("es", "The dog runs quickly across the green field.", "in English, not Spanish (es)"),
    ("fr", "The dog runs quickly across the green field.", "in English, not French (fr)"),
    ("es", "Le chien court à travers un grand champ vert.", "in French, not Spanish (es)"),
    ("fr", "El perro corre por un campo verde muy grande.", "in Spanish, not French (fr)"),
    ("es", "Il cane corre attraverso un grande campo verde.", "in Italian, not Spanish (es)"),
    ("de", "De hond rent door een groot groen veld.", "in Dutch, not German (de)"),
    ("de", "Der Hund rennt über eine weite grüne Wiese.", None),
    ("es", "El perro corre por un campo verde muy grande.", None),
    ("fr", "Le chien court à travers un grand champ vert.", None),
    ("ja", "犬が広い緑の野原を走っています。", None),
    ("de", "Ja.", None),  # too short to identify: never failed for its language
    ("fr", "Paris", None),
    ("es", "42", None),
])
def test_the_language_of_a_translation_is_identified(lang, text, problem):
    en = "The dog is running across a wide green field." if len(text) > 10 else "Yes, it is."
    assert check_translation(lang, text, en) == problem


def test_a_run_folder_is_exported_then_translated(project, server):
    from syphus import plugins
    from tests.helpers import make_numbers
    plugins._loaded.clear()
    make_numbers(project, 2)
    plugin = project / "datasets" / "numbers.py"
    plugin.write_text(plugin.read_text().replace("class Numbers(AbstractDataset):",
                                                 "class Numbers(AbstractDataset):\n    scene = 'SD'"))
    (project / "prompts" / "translate.json").write_text((ROOT / "prompts" / "translate.json").read_text())
    server.responder = lambda body, n: Reply.ok("Question: What is on the table?\nAnswer: A red ball is there.")
    assert main(["--name", "Numbers", "--base_url", server.base_url, "--quiet"], env={"OPENAI_API_KEY": KEY},
                stream=io.StringIO()) == 0
    t = Translator()
    server.responder = t
    out = io.StringIO()
    code = main(["translate", "output/Numbers/v1", "--langs", "es", "--base_url", server.base_url, "--quiet"],
                env={"OPENAI_API_KEY": KEY}, stream=out)
    assert code == 0, out.getvalue()
    data = load(project / "output" / "SD_translate" / "v1" / "export" / "SD_instructions_es.json")
    assert sorted(data) == ["SD_INS_00001", "SD_INS_00002"]
    assert data["SD_INS_00001"]["instruction"] == fake("es", "What is on the table?")
    plugins._loaded.clear()


def test_sigkill_mid_translation_then_resume(release, server):
    import os
    import signal
    import subprocess
    import sys

    many = {f"DC_INS_{i:05d}": (f"What is object number {i} on the table?", f"It is a small red ball, number {i}.")
            for i in range(1, 41)}
    data = {k: {"instruction": a, "answer": b, "image_ids": [], "rel_ins_ids": []} for k, (a, b) in many.items()}
    (release / "DC_instructions.json").write_text(json.dumps({"meta": {}, "data": data}))
    t = Translator()
    gate = Gate()  # after 12 answers both workers wait on the wire: 12 records on disk, then the kill
    server.responder = lambda body, n: t(body, n) if n < 12 else t(body, n).after(gate)
    env = {**os.environ, "OPENAI_API_KEY": KEY, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "main.py"), "translate", "DC_instructions.json", "--base_url",
           server.base_url, "--quiet", "--num_threads", "2"]
    proc = subprocess.Popen(cmd, cwd=release, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pairs = release / "output" / "DC_translate" / "v1" / "pairs.jsonl"
    try:
        assert server.wait_for(lambda: server.request_count == 14 and server.in_flight == 2), server.stats()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        gate.open()
        proc.kill()
        proc.communicate()
    done = {json.loads(x)["id"] for x in pairs.read_text().splitlines() if x.strip()}
    assert len(done) == 12
    sent_before = len(t.requests)
    server.responder = t
    proc = subprocess.run(cmd, cwd=release, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = {a for _, a in t.requests[sent_before:]}
    assert not again & {many[i.rsplit("~", 1)[0]][0] for i in done}  # nothing settled before the kill was asked again
    zh = load(release / "output" / "DC_translate" / "v1" / "export" / "DC_instructions_zh.json")
    assert sorted(zh) == sorted(many)


def test_report_shows_the_pass_rate_per_language(release, server):
    from syphus.release.report import build_report
    from syphus.release.reportpage import render_page

    t = Translator()
    t.wrong_language[ENGLISH["DC_INS_00002"][0]] = {"de": "en", "fr": "en"}
    t.wrong_language_always[ENGLISH["DC_INS_00001"][0]] = {"es": "fr"}
    server.responder = t
    assert translate(server)[0] == 0
    run = release / "output" / "DC_translate" / "v1"
    es_file = run / "export" / "DC_instructions_es.json"
    report = build_report([run, es_file], out=release / "report", grounding=False)
    checks = report.data["sources"][0]["language_checks"]
    assert sorted(checks) == sorted(LANGS)
    # de: 4 pairs in the all-languages replies, one in English, asked again alone and passed
    assert {k: checks["de"][k] for k in ("checked", "passed", "failed", "wrong_language", "asked", "asked_again")} \
        == {"checked": 5, "passed": 4, "failed": 1, "wrong_language": 1, "asked": 5, "asked_again": 1}
    assert checks["de"]["pass_rate"] == 0.8 and checks["de"]["reasons"]["top"] == [["in English, not German (de)", 1]]
    # es: DC_INS_00001 came back French every time (the all-languages query and its one retry)
    assert (checks["es"]["checked"], checks["es"]["passed"], checks["es"]["asked_again"]) == (5, 3, 1)
    assert checks["zh"] == {**checks["zh"], "checked": 4, "passed": 4, "pass_rate": 1.0, "asked_again": 0}
    # the Spanish file exported from the run: its language only
    assert list(report.data["sources"][1]["language_checks"]) == ["es"]
    assert report.data["sources"][1]["language_checks"]["es"]["pass_rate"] == 0.6
    page = render_page(report.data)
    assert 'data-plot="language_checks"' in page and "in French, not Spanish (es)" in page
    out = io.StringIO()
    assert main(["report", str(run), "--out", str(release / "report2")], env={}, stream=out) == 0
    assert "de: 4 of 5 translations passed the checks (80.0%), 1 in the wrong language; 1 asked again" in out.getvalue()
