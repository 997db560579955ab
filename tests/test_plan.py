"""The plan: a run's endpoints read from the config alone, one endpoint a pool of one, resolved in one path."""

from __future__ import annotations

import asyncio

import pytest

from syphus.config import load_config
from syphus.engine.plan import DEFAULT, check_batch, open_targets, planned_endpoints
from syphus.engine.pricing import make_budget
from syphus.errors import UserError

KEY = "sk-plan-secret-0123456789"


def pool(*entries, **more):
    return load_config(None, {"name": "x", "endpoints": list(entries), **more})


def test_one_endpoint_is_a_pool_of_one_named_default():
    cfg = load_config(None, {"name": "x", "endpoint.model": "gpt-4o", "limits.rpm": 60})
    [p] = planned_endpoints(cfg, {"OPENAI_API_KEY": KEY})
    assert (p.name, p.kind, p.model, p.rpm, p.batch_api, p.on_this_machine) == \
        (DEFAULT, "openai", "gpt-4o", 60, True, False)
    [t] = asyncio.run(_targets(cfg, {"OPENAI_API_KEY": KEY}))
    assert t.name == DEFAULT and t.endpoint.model == "gpt-4o" and t.rpm == 60 and t.price_as == "gpt-4o"
    assert KEY not in repr(p) + repr(t)
    [local] = planned_endpoints(load_config(None, {"name": "x"}), {})
    assert local.kind == "local" and local.model == "local"  # no key: the bundled model, priced at zero
    with pytest.raises(UserError, match="needs an endpoint"):  # a hosted model's name never labels a local run
        planned_endpoints(load_config(None, {"name": "x", "endpoint.model": "gpt-4o"}), {})


def test_a_pool_is_planned_in_order_and_a_local_entry_is_priced_as_local_like_the_run_prices_it():
    cfg = pool({"name": "a", "kind": "compatible", "base_url": "http://127.0.0.1:9/v1", "model": "m-a",
                "rpm": 10, "key_env": "KEY_A"},
               {"name": "here", "kind": "local", "model": "gpt-4o"})
    plan = planned_endpoints(cfg, {})
    assert [(p.name, p.model, p.on_this_machine) for p in plan] == [("a", "m-a", False), ("here", "local", True)]


async def _targets(cfg, env):
    async with open_targets(cfg, env) as (targets, servers):
        assert servers == []
        return targets


def test_every_remote_key_is_checked_before_any_local_server_starts(tmp_path):
    marker = tmp_path / "started"
    cfg = pool({"name": "here", "kind": "local"},
               {"name": "a", "kind": "compatible", "base_url": "http://127.0.0.1:9/v1", "key_env": "KEY_A"},
               **{"endpoint.local_command": ["touch", str(marker)]})
    with pytest.raises(UserError, match="KEY_A"):
        asyncio.run(_targets(cfg, {}))
    assert not marker.exists()


def test_the_budget_priced_from_the_plan_takes_the_dearest_endpoint(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("m-a: {input: 1.0, output: 1.0}\nm-b: {input: 5.0, output: 5.0}\n")
    cfg = pool({"name": "a", "kind": "compatible", "base_url": "http://127.0.0.1:9/v1", "model": "m-a"},
               {"name": "b", "kind": "compatible", "base_url": "http://127.0.0.1:9/v1", "model": "m-b"},
               **{"cost.pricing": str(prices)})
    budget = make_budget(cfg, {}, {"prompt_tokens": 1_000_000, "completion_tokens": 0})
    assert budget.price is not None and budget.spent == pytest.approx(5.0)
    one = load_config(None, {"name": "x", "endpoint.model": "m-a", "cost.pricing": str(prices)})
    assert make_budget(one, {"OPENAI_API_KEY": KEY}, {"prompt_tokens": 1_000_000}).spent == pytest.approx(1.0)


def test_batch_mode_needs_an_endpoint_with_the_batch_api_whether_one_or_a_pool():
    with pytest.raises(UserError, match="needs the Batch API"):
        check_batch(load_config(None, {"name": "x", "mode": "batch"}), {})  # no key: the local model
    with pytest.raises(UserError, match="needs the Batch API"):
        check_batch(pool({"name": "here", "kind": "local"}, mode="batch"), {})
    check_batch(load_config(None, {"name": "x", "mode": "batch"}), {"OPENAI_API_KEY": KEY})
    check_batch(load_config(None, {"name": "x"}), {})  # online: nothing to check
