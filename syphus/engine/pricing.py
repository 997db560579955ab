"""Pricing: each endpoint's row of the pricing table, and the run's budget built from them.

The table is ``configs/pricing.yaml`` (``--pricing``); ``syphus.engine.cost`` holds the ``Price`` and
``Budget`` types. ``--max-cost`` needs every endpoint priced, so a missing row is a UserError before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from syphus.config import RunConfig
from syphus.engine.cost import Budget, Price, load_pricing, price_for, pricing_if_any
from syphus.engine.endpoint import Target
from syphus.engine.plan import Planned, planned_endpoints
from syphus.errors import UserError


def target_prices(cfg: RunConfig, targets: Sequence[Target | Planned]) -> dict[str, Price | None]:
    """Each endpoint's row of the pricing table (None: no row); --max-cost needs them all."""
    table = load_pricing(cfg.cost.pricing) if cfg.cost.max_cost is not None else pricing_if_any(cfg.cost.pricing)
    prices = {t.name: price_for(t.price_as or "?", table) for t in targets}
    missing = [t for t in targets if prices[t.name] is None]
    if cfg.cost.max_cost is not None and missing:
        t = missing[0]
        which = f"endpoint {t.name!r} " if len(targets) > 1 else ""
        raise UserError(f"--max-cost needs the price of {which}{t.price_as!r}: add it to {cfg.cost.pricing}, or say "
                        "which model it is with --price_as (e.g. --price_as gpt-4o-mini)"
                        + (" or the endpoint's own price_as" if len(targets) > 1 else ""))
    return prices


def make_budget(cfg: RunConfig, env: Mapping[str, str], totals: Mapping[str, int] | None = None,
                prices: Mapping[str, Price | None] | None = None) -> Budget:
    """The run's budget: prices from the table, what earlier sessions already spent, the --max-cost cap.

    With several endpoints each request is reserved and charged at its endpoint's price; the
    budget's own price (what earlier sessions' tokens are counted at) is the dearest of them,
    so a restart never counts less than was spent.
    """
    if prices is None:  # priced from the config alone (no key read)
        prices = target_prices(cfg, planned_endpoints(cfg, env))
    known = [p for p in prices.values() if p is not None]
    price = max(known, key=lambda p: p.cost(1e6, 1e6), default=None)
    batch = cfg.mode == "batch"
    totals = totals or {}
    spent = estimated = 0.0
    if price is not None:
        estimated = price.cost(totals.get("estimated_prompt_tokens", 0), totals.get("estimated_completion_tokens", 0),
                               batch)
        spent = price.cost(totals.get("prompt_tokens", 0), totals.get("completion_tokens", 0), batch) + estimated
    return Budget(price, cfg.cost.max_cost, spent, batch, estimated)
