"""Shared fixtures: a fake OpenAI server per test, a project tree in a temp folder, no real env."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from syphus import plugins

from tests.fakeserver import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-SECRETKEY-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_plugins():
    """Each test imports plugins anew (they are cached by path, and tests rewrite them)."""
    plugins._loaded.clear()
    yield
    plugins._loaded.clear()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Tests never see the developer's keys or endpoints."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "AZURE_OPENAI_")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of the example dataset, prompt and sample in a temp folder, used as the working directory."""
    for rel in ("datasets/example.py", "datasets/samples/example_scenes.jsonl", "prompts/example.json"):
        dest = tmp_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, dest)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def scenes(tmp_path, monkeypatch):
    """A copy of datasets/ and prompts/ in a temp folder, used as the working directory."""
    for tree in ("datasets", "prompts"):
        shutil.copytree(ROOT / tree, tmp_path / tree, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    plugins._loaded.clear()
    yield tmp_path
    plugins._loaded.clear()
