"""Money: --dry-run sends nothing, --max-cost stops dispatch at the cap, the pricing table."""

from __future__ import annotations

import io
import json

import pytest

from syphus.cli import main
from syphus.engine.cost import Budget, Price, load_pricing, price_for
from syphus.errors import UserError
from tests.conftest import KEY, ROOT
from tests.fakeserver import Reply
from tests.helpers import make_numbers, settled

PRICES = "toy-model: {input: 1000.0, output: 1000.0, batch_input: 500.0, batch_output: 500.0}\n"


def run(argv, server=None, env=None):
    out = io.StringIO()
    base = ["--base_url", server.base_url] if server is not None else []
    code = main(base + ["--quiet"] + argv, env={"OPENAI_API_KEY": KEY} if env is None else env, stream=out)
    return code, out.getvalue()


def test_dry_run_sends_nothing_and_writes_nothing(project, server):
    make_numbers(project, 40)
    code, out = run(["--name", "Numbers", "--dry-run", "--model", "gpt-4o-mini", "--pricing",
                     str(ROOT / "configs" / "pricing.yaml"), "--rpm", "600", "--max_tokens", "100"], server)
    assert code == 0, out
    assert server.requests == []
    assert not (project / "output").exists()
    assert "40 queries to go" in out and "cost as gpt-4o-mini: online ~$" in out and "batch ~$" in out
    assert "~0.1 minutes (600.0 requests/minute)" in out  # 40 queries at 600 per minute


def test_dry_run_counts_only_what_is_left_and_uses_observed_lengths(project, server):
    make_numbers(project, 10)
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.",
                                                usage={"prompt_tokens": 50, "completion_tokens": 20})
    assert run(["--name", "Numbers", "--slice_end", "4"], server)[0] == 0
    sent = len(server.requests)
    code, out = run(["--name", "Numbers", "--dry-run"], server)
    assert code == 0 and len(server.requests) == sent
    assert "6 queries to go (4 already settled" in out
    assert "~20.0 completion (observed in this run folder)" in out


def test_max_cost_stops_dispatch_before_the_cap_and_resumes(project, server):
    (project / "prices.yaml").write_text(PRICES)
    make_numbers(project, 30)
    usage = {"prompt_tokens": 30, "completion_tokens": 10}
    server.responder = lambda body, n: Reply.ok("Question: a?\nAnswer: b.", usage=usage, delay=0.02)
    # toy-model: $1000 per 1M tokens both ways, so one reply costs $0.04 and reserves prompt + 20 max_tokens
    cap = 0.5
    args = ["--name", "Numbers", "--model", "toy-model", "--pricing", "prices.yaml", "--max_tokens", "20",
            "--num_threads", "4"]
    code, out = run(args + ["--max-cost", str(cap)], server)
    assert code == 4, out
    assert "higher --max-cost" in out
    folder = project / "output" / "Numbers" / "v1"
    done = settled(folder)["pairs"]
    spent = len(server.requests) * 0.04
    assert 0 < len(done) < 30 and len(done) == len(server.requests)
    assert spent <= cap + 1e-9
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "budget" and meta["cost"]["spent_usd"] == pytest.approx(spent)
    assert meta["cost"]["max_cost"] == cap

    code, out = run(args + ["--max-cost", "5"], server)
    assert code == 0, out
    assert sorted(settled(folder)["pairs"]) == [f"q{i:05d}" for i in range(30)]
    assert len(server.requests) == 30  # nothing asked twice
    assert json.loads((folder / "meta.json").read_text())["cost"]["spent_usd"] == pytest.approx(30 * 0.04)


def test_max_cost_needs_a_price(project, server):
    make_numbers(project, 2)
    code, out = run(["--name", "Numbers", "--model", "mystery-model", "--max-cost", "1",
                     "--pricing", str(ROOT / "configs" / "pricing.yaml")], server)
    assert code == 2 and "--price_as" in out and "mystery-model" in out
    assert server.requests == []


def test_pricing_table_and_budget(tmp_path):
    table = load_pricing(ROOT / "configs" / "pricing.yaml")
    assert price_for("gpt-4o-mini-2024-07-18", table) is table["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06", table) is table["gpt-4o"]
    assert price_for("claude", table) is None
    bad = tmp_path / "p.yaml"
    bad.write_text("m: {input: 1}\n")
    with pytest.raises(UserError, match="p.yaml: model 'm': output"):
        load_pricing(bad)
    b = Budget(Price(input=1e6, output=1e6), limit=10.0)
    assert b.reserve(4, 4) == 8.0 and b.reserve(1, 1) == 2.0 and b.reserve(1, 0) is None
    b.settle(8.0, {"prompt_tokens": 4, "completion_tokens": 1})
    assert b.spent == 5.0 and b.reserved == 2.0
