"""Cost: prices per model, a hard budget that reserves before it spends, and estimates.

Prices come from an editable YAML table (``configs/pricing.yaml``), USD per 1M tokens.
A request reserves its worst case (estimated prompt + ``max_tokens`` completion,
times ``n``) before it is sent and settles at its real usage when it returns, so
spent + reserved never passes ``--max-cost``. When the real usage is unknown and
the request may still have been billed (no ``usage`` or zeros in the reply, a
timeout, a dropped or malformed reply, a content-filtered 200), the worst case
is charged and counted as ``estimated``: a cap is a cap whatever replies say.

>>> price = Price(input=0.15, output=0.60, batch_input=0.075, batch_output=0.30)
>>> b = Budget(price, limit=0.01)
>>> hold = b.reserve(1000, 1000); round(hold, 6)
0.00075
>>> round(b.settle(hold, {"prompt_tokens": 1000, "completion_tokens": 200}), 6), round(b.spent, 6)
(0.00027, 0.00027)
>>> _ = b.settle(b.reserve(1000, 1000), None, billed=True); round(b.spent, 6), round(b.estimated, 6)
(0.00102, 0.00075)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from syphus.errors import UserError
from syphus.textfile import read_text
from syphus.engine.record import usage_tokens

DEFAULT_PRICING = "configs/pricing.yaml"


class Price(BaseModel):
    """USD per 1M tokens, online and through the Batch API."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float
    output: float
    batch_input: float | None = None
    batch_output: float | None = None

    def cost(self, prompt_tokens: float, completion_tokens: float, batch: bool = False) -> float:
        i = self.batch_input if batch and self.batch_input is not None else self.input
        o = self.batch_output if batch and self.batch_output is not None else self.output
        return (prompt_tokens * i + completion_tokens * o) / 1e6


def load_pricing(path: str | Path = DEFAULT_PRICING) -> dict[str, Price]:
    """The pricing table; errors name the file and the model."""
    p = Path(path)
    try:
        data = yaml.safe_load(read_text(p, "pricing table")) or {}
    except FileNotFoundError:
        raise UserError(f"{p}: no pricing table here; pass --pricing FILE (see configs/pricing.yaml)") from None
    except OSError as e:
        raise UserError(f"{p}: cannot read the pricing table ({e.strerror or e}); check --pricing") from None
    except yaml.YAMLError as e:
        raise UserError(f"{p}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise UserError(f"{p}: the pricing table must map model names to prices")
    table = {}
    for model, entry in data.items():
        try:
            table[str(model)] = Price.model_validate(entry)
        except ValidationError as e:
            first = e.errors()[0]
            raise UserError(f"{p}: model {model!r}: {'.'.join(map(str, first['loc']))}: {first['msg']}; "
                            "each entry is {input: USD per 1M, output: USD per 1M, batch_input, batch_output}") from e
    return table


def pricing_if_any(path: str | Path = DEFAULT_PRICING) -> dict[str, Price]:
    """The pricing table, or none (empty) when no file is at ``path``; a file there that cannot be read or
    parsed is a UserError naming it, never a table silently left out."""
    if not Path(path).exists():
        return {}
    return load_pricing(path)


def price_for(model: str, table: Mapping[str, Price]) -> Price | None:
    """Exact match, else the longest table name that the model's name starts with."""
    if model in table:
        return table[model]
    best = max((name for name in table if model.startswith(name)), key=len, default=None)
    return table[best] if best else None


class Budget:
    """Spent and reserved dollars; ``reserve`` refuses what would pass ``limit``."""

    def __init__(self, price: Price | None, limit: float | None = None, spent: float = 0.0, batch: bool = False,
                 estimated: float = 0.0):
        self.price = price
        self.limit = limit
        self.spent = spent  # includes ``estimated``
        self.estimated = estimated  # charged at the worst case because no usage was reported
        self.reserved = 0.0
        self.batch = batch

    def cost(self, prompt_tokens: float, completion_tokens: float, price: Price | None = None) -> float:
        """What tokens cost at ``price`` (an endpoint's own row), else at the budget's."""
        price = price or self.price
        return price.cost(prompt_tokens, completion_tokens, self.batch) if price else 0.0

    def reserve(self, prompt_tokens: int, max_tokens: int, price: Price | None = None) -> float | None:
        """Hold the worst case of one request (at ``price``, else the budget's); None if that would pass the limit."""
        worst = self.cost(prompt_tokens, max_tokens, price)
        if self.limit is not None and self.spent + self.reserved + worst > self.limit + 1e-12:
            return None
        self.reserved += worst
        return worst

    def settle(self, hold: float, usage: Mapping[str, Any] | None, billed: bool = False,
               price: Price | None = None) -> float:
        """Release a hold and add what the request cost (returned).

        ``usage`` with tokens in it is the real cost. Without it, ``billed`` says the
        request may have been charged anyway: then the hold (the worst case) is spent.
        """
        self.reserved = max(0.0, self.reserved - hold)
        return self.charge(usage, hold if billed else 0.0, price)

    def charge(self, usage: Mapping[str, Any] | None, worst: float = 0.0, price: Price | None = None) -> float:
        """Add what one request cost (returned): its reported ``usage``, else ``worst`` (counted as estimated)."""
        if has_usage(usage):
            cost = self.cost(*usage_tokens(usage), price)
            self.spent += cost
            return cost
        if worst:
            self.spent += worst
            self.estimated += worst
        return worst


def has_usage(usage: Any) -> bool:
    """Whether a reply reported the tokens it used (a missing, garbled or all-zero ``usage`` did not)."""
    return sum(usage_tokens(usage)) > 0
