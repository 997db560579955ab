"""Schema forms as a family: the registry the config and the CLI read, and a form added in one place (here,
in this test alone: older vLLM's ``guided_json``) carried through a run against the fake server."""

from __future__ import annotations

import io
import json

import pytest

from syphus import schemaform
from syphus.cli import main
from syphus.cli.flags import run_parser
from syphus.config import load_config
from syphus.engine.structure import Structure, schema_fields
from syphus.errors import UserError
from syphus.reply import pairs_model
from tests.fakeserver import FakeOpenAI
from tests.helpers import make_numbers, settled

KEY = "sk-form-test-0123456789"


class Guided(schemaform.SchemaForm):
    """vLLM before 0.10: the schema as ``guided_json``, turned into a grammar."""

    name = "guided"
    grammar = True

    def fields(self, name, schema):
        return {"guided_json": schema}


@pytest.fixture
def guided():
    """The test form, registered for this test only."""
    with schemaform.FORMS.scoped():
        yield schemaform.register(Guided())


def test_the_built_in_forms_send_each_servers_documented_fields():
    model = pairs_model(3)
    openai = schema_fields("openai", model)["response_format"]
    assert openai["type"] == "json_schema" and openai["json_schema"]["strict"] is True
    assert schema_fields("llamacpp", model)["response_format"]["type"] == "json_object"
    vllm = schema_fields("vllm", model)["structured_outputs"]["json"]
    # a grammar form has non-empty strings; OpenAI's strict mode gets the schema as it is
    assert '"minLength": 1' in json.dumps(vllm) and '"minLength"' not in json.dumps(openai)


def test_every_form_list_comes_from_the_registry(guided):
    assert schemaform.names() == ("auto", "openai", "vllm", "llamacpp", "guided")
    assert load_config(None, {"name": "x", "reply.form": "guided"}).reply.form == "guided"
    assert "guided" in run_parser().format_help()
    with pytest.raises(UserError, match="unknown schema form 'bogus'; use one of auto, openai, vllm, llamacpp, guided"):
        load_config(None, {"name": "x", "reply.form": "bogus"})
    with pytest.raises(UserError, match="unknown schema form"):
        Structure("auto", "bogus")


def test_a_form_added_in_one_place_is_sent_and_its_replies_are_pairs(project, guided):
    make_numbers(project, 4)
    with FakeOpenAI(schema_forms=("openai", "guided")) as server:
        out = io.StringIO()
        code = main(["--quiet", "--name", "Numbers", "--base_url", server.base_url, "--schema_form", "guided",
                     "--reply", "json"], env={"OPENAI_API_KEY": KEY}, stream=out)
        assert code == 0, out.getvalue()
        sent = [r.body for r in server.requests]
    assert len(sent) == 4 and all("guided_json" in b and "response_format" not in b for b in sent)
    assert '"minLength": 1' in json.dumps(sent[0]["guided_json"])  # a grammar form: strings are non-empty
    folder = project / "output" / "Numbers" / "v1"
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(4)]
    assert json.loads((folder / "meta.json").read_text())["reply"]["form"] == "guided"
