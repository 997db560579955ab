"""Ids that mean one thing: one image per image id (issue 22, item 12).

Release files in the public MIMIC-IT shape (``SD_instructions.json`` with ``meta`` and ``data``,
``SD.json`` ``{image id: base64}``, ``SD.parquet`` with the id as the pandas index), written to disk
and read back through the CLI and the image index, as a user would meet them.
"""

from __future__ import annotations

import base64
import io
import os
import json

import pandas as pd
import pytest

from syphus.cli import main
from syphus.errors import ItemError, UserError
from syphus.engine.imageindex import ImageIndex
from syphus.engine.imagevalues import BadImage

TWICE, BROKEN, FINE = "SD_IMG_00012_1", "SD_IMG_00012_2", "SD_IMG_00013_1"


def png(n: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([n]) * 40


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def sd_release(folder) -> None:
    """SD_instructions.json whose two instructions use every image id of the image files below."""
    folder.joinpath("SD_instructions.json").write_text(json.dumps({"meta": {"version": "0.0.1"}, "data": {
        "SD_INS_00001": {"instruction": "What changed?", "answer": "The car moved.",
                         "image_ids": [TWICE, BROKEN], "rel_ins_ids": []},
        "SD_INS_00002": {"instruction": "What is it?", "answer": "A street.",
                         "image_ids": [FINE], "rel_ins_ids": []}}}))


def test_one_image_per_id(tmp_path):
    sd_release(tmp_path)
    # JSON: written by hand, since json.dumps cannot repeat a key; the two copies differ
    (tmp_path / "SD.json").write_text(
        f'{{"{TWICE}": "{b64(png(1))}", "{BROKEN}": "not*base64!", "{FINE}": "{b64(png(3))}", '
        f'"{TWICE}": "{b64(png(2))}"}}')
    # Parquet: as pandas writes it, the id the index, with the same repeat and the same broken value
    frame = pd.DataFrame({"base64": [b64(png(1)), "not*base64!", b64(png(3)), b64(png(2))]},
                         index=pd.Index([TWICE, BROKEN, FINE, TWICE], name="id"))
    frame.to_parquet(tmp_path / "SD.parquet")

    for images in ("SD.json", "SD.parquet"):
        path = tmp_path / images
        out = io.StringIO()
        code = main(["validate", str(tmp_path / "SD_instructions.json"), "--images", str(path)], stream=out)
        text = out.getvalue()
        assert code == 1, text
        assert "error: image ids repeated in the image file: 1" in text and f"e.g. {TWICE}: 2 copies" in text
        assert "error: images that cannot be decoded: 1" in text and f"e.g. {BROKEN}: not valid base64" in text
        assert FINE + ":" not in text and "missing from the image file" not in text

        # the lookup refuses the file: no reader silently picks the first or the last copy
        with pytest.raises(UserError, match=f"{images}: 1 image id.*'{TWICE}' \\(2 copies\\).*keep one copy"):
            ImageIndex.open(path)
        with ImageIndex.open(path, allow_repeats=True) as index:
            assert index.repeated() == [(TWICE, 2)]
            assert index.get(FINE) == png(3)
            with pytest.raises(BadImage, match=f"'{TWICE}' appears 2 times"):
                index.get(TWICE)
            # a broken image is in the file, not "missing": the query needing it fails, naming it
            assert index.missing([BROKEN, FINE]) == []
            with pytest.raises(ItemError, match=f"{images}: the image '{BROKEN}' cannot be decoded: not valid base64"):
                index.get_many([FINE, BROKEN])

    # with one copy per id and the broken image dropped, all agree again
    frame.iloc[[0, 2]].to_parquet(tmp_path / "SD.parquet")
    with ImageIndex.open(tmp_path / "SD.parquet") as index:
        assert index.repeated() == [] and index.get(TWICE) == png(1) and BROKEN not in index


# --- an instruction id means one pair forever (issue 22, item 6) ---------------------------------------

QUESTIONS = {  # a DC run's pairs.jsonl: query id -> its pairs, as the engine writes them
    "v_alpha": [("What does the man do first?", "He opens the door."), ("Who enters next?", "A woman enters.")],
    "v_beta": [("What falls off the table?", "A red cup falls.")],
    "v_gamma": [("Where is the dog going?", "The dog runs into the garden."),
                ("What does the man do first?", "He opens the front door.")],
}


def record(qid: str, pairs) -> str:
    return json.dumps({"id": qid, "pairs": [{"instruction": a, "answer": b} for a, b in pairs],
                       "meta": {"image_ids": [f"DC_IMG_{qid}_0"]}}) + "\n"


def exported(folder, out: str, *flags: str) -> dict[str, tuple[str, str]]:
    """Export ``folder`` through the CLI; instruction id -> (instruction, answer)."""
    stream = io.StringIO()
    code = main(["export", str(folder), "--scene", "DC", "--out", str(folder / out), *flags], stream=stream)
    assert code == 0, stream.getvalue()
    data = json.loads((folder / out / "DC_instructions.json").read_text())["data"]
    return {k: (v["instruction"], v["answer"]) for k, v in data.items()}


def test_an_instruction_id_means_one_pair_forever(tmp_path):
    import subprocess
    import sys
    from syphus.release.ledger import FILE
    from syphus.workflows.translationkey import text_key

    run = tmp_path / "output" / "DC" / "v1"
    run.mkdir(parents=True)
    pairs = run / "pairs.jsonl"
    # v_beta failed on the first pass (errors.jsonl): pairs.jsonl holds the others
    pairs.write_text(record("v_alpha", QUESTIONS["v_alpha"]) + record("v_gamma", QUESTIONS["v_gamma"]))
    first = exported(run, "first")
    assert first == {"DC_INS_00001": QUESTIONS["v_alpha"][0], "DC_INS_00002": QUESTIONS["v_alpha"][1],
                     "DC_INS_00003": QUESTIONS["v_gamma"][0], "DC_INS_00004": QUESTIONS["v_gamma"][1]}

    # --retry_errors answers v_beta: by position it would sit between the others and push v_gamma on
    with pairs.open("a") as f:
        f.write(record("v_beta", QUESTIONS["v_beta"]))
    second = exported(run, "second")
    assert {k: second[k] for k in first} == first and second["DC_INS_00005"] == QUESTIONS["v_beta"][0]
    assert len(second) == 5

    # --dedup drops v_gamma's second pair (v_alpha's first question again) and renumbers nothing
    deduped = exported(run, "deduped", "--dedup", "0.8")
    assert "DC_INS_00004" not in deduped and deduped == {k: v for k, v in second.items() if k != "DC_INS_00004"}
    kept = json.loads((run / "deduped" / "DC_train.json").read_text())
    assert "DC_INS_00004" not in json.dumps(kept) and kept["DC_INS_00003"] == []

    # --reparse changed the text of one slot: the slot keeps its id; a translation keyed by id and text is redone
    lines = pairs.read_text().splitlines(keepends=True)
    lines[0] = record("v_alpha", [("What does the man do first, exactly?", "He opens the door."),
                                  QUESTIONS["v_alpha"][1]])
    pairs.write_text("".join(lines))
    reparsed = exported(run, "reparsed")
    assert reparsed["DC_INS_00001"][0] == "What does the man do first, exactly?"
    assert {k: reparsed[k] for k in ("DC_INS_00002", "DC_INS_00003", "DC_INS_00005")} == \
        {k: second[k] for k in ("DC_INS_00002", "DC_INS_00003", "DC_INS_00005")}
    assert text_key("DC_INS_00001", *reparsed["DC_INS_00001"]) != text_key("DC_INS_00001", *first["DC_INS_00001"])

    # a crash tore the ledger's last line: cut off, and the ids it was giving are given again
    ledger = run / FILE
    whole = ledger.read_bytes()
    ledger.write_bytes(whole + b'{"code": "DC", "query": "v_delta", "fir')
    with pairs.open("a") as f:
        f.write(record("v_delta", [("What is on the shelf?", "Three blue books.")]))
    after = exported(run, "after")
    assert after["DC_INS_00006"] == ("What is on the shelf?", "Three blue books.")
    assert ledger.read_bytes().startswith(whole) and ledger.read_bytes().endswith(b"}\n")

    # two exports at once (real processes) of a run that grew: they take turns on the ledger
    with pairs.open("a") as f:
        for n in range(300):
            f.write(record(f"v_more_{n:03d}", [(f"Question {n}?", f"Answer {n}."), (f"Again {n}?", f"Yes {n}.")]))
    script = ("import sys; from syphus.release.export import export_run; "
              "export_run(sys.argv[1], scene='DC', out_dir=sys.argv[2], parquet=False)")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(run), str(run / f"twin{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stdout.read()
    twins = [json.loads((run / f"twin{i}" / "DC_instructions.json").read_text())["data"] for i in range(2)]
    assert twins[0] == twins[1] and len(twins[0]) == 6 + 600
    given = [json.loads(line) for line in ledger.read_text().splitlines()]
    slots = [(g["query"], g["first"] + i) for g in given for i in range(len(g["numbers"]))]
    numbers = [n for g in given for n in g["numbers"]]
    assert len(slots) == len(set(slots)) == len(numbers) == len(set(numbers)) == max(numbers) == 606


# --- release files change together or not at all (issue 22, item 7) -------------------------------------

RELEASE_FILES = ("DC_instructions.json", "DC_train.json", "DC_instructions.parquet")


def release_set(out) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in RELEASE_FILES}


def test_release_files_change_together(tmp_path):
    import shutil
    import subprocess
    import sys
    from syphus.release.export import COMMIT, recover_release
    from syphus.release.ledger import FILE
    from tests.conftest import ROOT

    run = tmp_path / "output" / "DC" / "v1"
    run.mkdir(parents=True)
    pairs = run / "pairs.jsonl"
    pairs.write_text(record("v_alpha", QUESTIONS["v_alpha"]) + record("v_gamma", QUESTIONS["v_gamma"]))
    exported(run, "release")
    out = run / "release"
    old, old_ledger = release_set(out), (run / FILE).read_bytes()
    with pairs.open("a") as f:  # --retry_errors answered v_beta: the next export is a new set
        f.write(record("v_beta", QUESTIONS["v_beta"]))
    exported(run, "expected")
    new = release_set(run / "expected")
    assert new != old

    def kill(spec: str, counts=None) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT), **({"CRASHPOINT_COUNTS": str(counts)} if counts else {})}
        return subprocess.run([sys.executable, "-m", "tests.crashpoint", spec, "--", "export", str(run), "--scene",
                               "DC", "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)

    def restore() -> None:
        shutil.rmtree(out)
        out.mkdir()
        for name, data in old.items():
            (out / name).write_bytes(data)
        (run / FILE).write_bytes(old_ledger)

    counts_file = tmp_path / "counts.json"
    points = {}  # (op, file name) -> calls: every replace and fsync in the release folder
    for op in ("replace", "fsync"):
        restore()
        done = kill(f"{op}:release:*:after", counts_file)
        assert done.returncode == 0, done.stdout + done.stderr
        points.update({tuple(k.split(":", 1)): n for k, n in json.loads(counts_file.read_text()).items()})
        counts_file.unlink()
    names = {name for _, name in points}
    assert {*RELEASE_FILES, *(n + ".swap" for n in RELEASE_FILES), COMMIT, "release"} <= names, names

    outcomes = []
    for (op, name), count in sorted(points.items()):
        for n in range(1, count + 1):
            for when in ("before", "after"):
                restore()
                killed = kill(f"{op}:={name}:{n}:{when}")
                assert killed.returncode == -9, (op, name, n, when, killed.stdout + killed.stderr)
                marked = (out / COMMIT).exists()
                recover_release(out)  # what the next export (or translate) does first
                now = release_set(out)
                assert now in (old, new), (op, name, n, when)
                assert not list(out.glob("*.swap*")) and not (out / COMMIT).exists()
                assert now == new or not marked  # once the marker is down the new set is in place
                outcomes.append(now == new)
    assert True in outcomes and False in outcomes  # kill points on both sides of the commit

    # translate given the run folder reads the export that is there (here a --dedup one) and overwrites none
    from syphus.workflows.translate import _run_export
    exported(run, "export", "--dedup", "0.8")
    before = release_set(run / "export")
    english, train = _run_export(run)
    assert (english, train) == (run / "export" / "DC_instructions.json", run / "export" / "DC_train.json")
    assert release_set(run / "export") == before and "DC_INS_00004" not in json.loads(english.read_text())["data"]
