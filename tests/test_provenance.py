"""Who wrote the pairs: a named hosted model never falls back to the bundled one, records carry the model the
server says answered, and a local run is priced at zero (issue 26, item 2)."""

from __future__ import annotations

import io
import json

import pytest

from syphus.cli.main import main
from syphus.config import load_config
from syphus.engine.endpoint import choose_kind
from syphus.engine.plan import pricing_model
from syphus.engine.pricing import make_budget
from syphus.errors import UserError

from tests.fakeserver import Reply
from tests.helpers import lines


@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_a_hosted_model_without_a_key_is_one_line_naming_the_variable(project, extra):
    out = io.StringIO()
    code = main(["--name", "Example.example", "--model", "gpt-4o", *extra], env={}, stream=out)
    text = out.getvalue()
    assert code == 2
    assert text.count("\n") == 1 and text.startswith("error: ") and "OPENAI_API_KEY" in text and "gpt-4o" in text
    assert not (project / "output").exists()  # nothing started, nothing written


def test_without_a_model_the_bundled_model_is_still_the_default():
    assert choose_kind(load_config(None, {}).endpoint, {}) == "local"
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        choose_kind(load_config(None, {"endpoint.model": "gpt-4o"}).endpoint, {})
    # with a key, or a server of one's own, the model is the one asked for
    assert choose_kind(load_config(None, {"endpoint.model": "gpt-4o"}).endpoint, {"OPENAI_API_KEY": "k"}) == "openai"
    assert choose_kind(load_config(None, {"endpoint.model": "m", "endpoint.base_url": "http://127.0.0.1:1/v1"}).endpoint,
                       {}) == "compatible"


def test_a_local_run_is_priced_at_zero_whatever_model_it_names():
    cfg = load_config(None, {"endpoint.kind": "local", "endpoint.model": "gpt-4o"})
    assert pricing_model(cfg, {}) == "local"
    budget = make_budget(cfg, {}, {"prompt_tokens": 10**6, "completion_tokens": 10**6})
    assert budget.price is not None and budget.spent == 0.0
    # --price_as still says what a run is priced as, when someone asks
    assert pricing_model(load_config(None, {"endpoint.kind": "local", "cost.price_as": "gpt-4o-mini"}), {}) \
        == "gpt-4o-mini"


def test_records_carry_the_model_the_server_says_answered(project, server):
    server.responder = lambda body, n: Reply.ok(json.dumps({"pairs": [{"instruction": "Q?", "answer": "A."}] * 3}),
                                                model="gpt-4o-2024-08-06")
    code = main(["--name", "Example.example", "--base_url", server.base_url, "--model", "gpt-4o", "--quiet"],
                env={}, stream=io.StringIO())
    assert code == 0
    recs = lines(project / "output" / "Example" / "v1" / "pairs.jsonl")
    assert recs and {r["model"] for r in recs} == {"gpt-4o-2024-08-06"}
    assert {r.body["model"] for r in server.requests} == {"gpt-4o"}
