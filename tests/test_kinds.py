"""The endpoint kinds as a family: the registry every kind list is read from, and a new kind added in one
place (here, in this test alone) that signs with its own header and runs end to end against the fake server."""

from __future__ import annotations

import io
from collections.abc import Mapping

import pytest
import yaml

from syphus import kinds
from syphus.cli import main
from syphus.cli.flags import run_parser
from syphus.config import load_config
from syphus.errors import UserError
from syphus.kinds.base import Endpoint, EndpointKind, check_sendable, url_secrets
from tests.fakeserver import FakeOpenAI
from tests.helpers import lines, make_numbers, settled

KEY = "keyed-secret-0123456789"


class Keyed(EndpointKind):
    """A kind no one ships: an OpenAI-style server that takes its key in ``X-Api-Key``."""

    name = "keyed"
    key_vars = ("KEYED_API_KEY",)
    pool_key_var = "KEYED_API_KEY"

    def resolve(self, cfg, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
        key, base = env.get("KEYED_API_KEY"), (cfg.base_url or "").rstrip("/")
        if not key:
            raise UserError("the keyed endpoint needs KEYED_API_KEY")
        return check_sendable(Endpoint(self.name, base + "/chat/completions", cfg.model or "keyed-model",
                                       {"X-Api-Key": key}, (key,) + url_secrets(base), api_root=base),
                              "--base_url", "KEYED_API_KEY")


@pytest.fixture
def keyed():
    """The test kind, registered for this test only."""
    with kinds.KINDS.scoped():
        yield kinds.register(Keyed())


def run(argv, env):
    out = io.StringIO()
    code = main(["--quiet"] + list(argv), env=dict(env), stream=out)
    return code, out.getvalue()


def test_every_kind_list_comes_from_the_registry(keyed):
    assert kinds.names() == ("auto", "openai", "azure", "compatible", "local", "keyed")
    assert kinds.secret_vars() == ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "KEYED_API_KEY")
    assert load_config(None, {"name": "x", "endpoint.kind": "keyed"}).endpoint.kind == "keyed"
    help_text = run_parser().format_help()
    assert "compatible, local or keyed" in " ".join(help_text.split())


def test_an_unknown_kind_is_one_error_listing_the_known_ones(project):
    with pytest.raises(UserError, match=r"unknown endpoint kind 'bogus'; known: auto, openai, azure, compatible, "
                                        r"local"):
        load_config(None, {"name": "x", "endpoint.kind": "bogus"})
    (project / "pool.yaml").write_text(yaml.safe_dump({"endpoints": [{"name": "a", "kind": "auto"}]}))
    with pytest.raises(UserError, match=r"pool.yaml.*unknown endpoint kind 'auto'; known: openai, azure"):
        load_config("pool.yaml", {"name": "x"})
    with pytest.raises(UserError, match="unknown endpoint kind 'nope'; known: openai, azure, compatible, local"):
        kinds.get("nope")


def test_a_kind_added_in_one_place_runs_with_its_own_header_and_its_key_stays_out(project, keyed):
    make_numbers(project, 5)
    with FakeOpenAI(require_headers={"X-Api-Key": KEY}) as server:
        code, out = run(["--name", "Numbers", "--endpoint", "keyed", "--base_url", server.base_url, "--verbose"],
                        {"KEYED_API_KEY": KEY})
        assert code == 0, out
        sent = server.requests
    assert sent and all(r.headers["x-api-key"] == KEY and "authorization" not in r.headers for r in sent)
    assert all(r.body["model"] == "keyed-model" and r.body["response_format"]["type"] == "json_schema" for r in sent)
    folder = project / "output" / "Numbers" / "v1"
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(5)]
    text = out + "".join(p.read_text() for p in folder.iterdir() if p.is_file())
    assert KEY not in text and "keyed" in (folder / "meta.json").read_text()


def test_a_pool_entry_of_the_new_kind_reads_its_key_and_a_wrong_key_is_refused(project, keyed):
    make_numbers(project, 3)
    with FakeOpenAI(require_headers={"X-Api-Key": KEY}) as server:
        (project / "pool.yaml").write_text(yaml.safe_dump({"endpoints": [
            {"name": "k", "kind": "keyed", "base_url": server.base_url, "key_env": "MY_KEY"}]}))
        code, out = run(["--name", "Numbers", "--config", "pool.yaml"], {"MY_KEY": KEY})
        assert code == 0, out
        assert len(lines(project / "output" / "Numbers" / "v1" / "pairs.jsonl")) == 3
        wrong = "keyed-wrong-9876543210"
        code, out = run(["--name", "Numbers", "--config", "pool.yaml", "--output_dir", "other"], {"MY_KEY": wrong})
    assert code != 0 and "HTTP 401" in out and wrong not in out
