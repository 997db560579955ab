"""Plan: the endpoints a run sends to, read from the config alone; one endpoint is a pool of one.

``planned_endpoints`` turns the config into ``Planned`` endpoints before anything is resolved: the
pool's entries (``endpoints:``, ``--endpoint NAME``), or, with no pool, the one endpoint of flags and
variables as a pool of one named ``default``. Every later step walks that list the same way: the
dry run reads it (no key read, no server started), ``open_targets`` resolves it (keys checked first,
then any ``local`` server started for the run), the budget prices it, a batch run picks from it.

>>> from syphus.config import load_config
>>> [(p.name, p.kind, p.model) for p in planned_endpoints(load_config(None, {"name": "x"}), {})]
[('default', 'local', 'local')]
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from syphus import kinds
from syphus.config import PoolEndpoint, RunConfig
from syphus.engine.client import completion_budget
from syphus.engine.endpoint import (Target, choose_kind, entry_price_as, pool_entries, resolve_endpoint,
                                    resolve_entry)
from syphus.errors import UserError

log = logging.getLogger("syphus")

DEFAULT = "default"  # the name of the one endpoint of flags and variables


@dataclass(frozen=True)
class Planned:
    """One endpoint as the config says it, before its key is read or its server started."""

    name: str
    kind: str
    model: str  # what its tokens, its images and its price are counted as
    completion: int  # the most completion tokens a request can be billed for (max_tokens times n)
    rpm: float | None
    tpm: float | None
    resolver: Callable[[Mapping[str, str], str | None], Target] = field(repr=False, compare=False)
    weight: float = 1.0
    local_model_path: str | None = None  # the model file a local endpoint's server loads

    @property
    def price_as(self) -> str:
        """Its row of the pricing table: the model it is counted as."""
        return self.model

    @property
    def on_this_machine(self) -> bool:
        return kinds.get(self.kind).on_this_machine

    @property
    def batch_api(self) -> bool:
        return kinds.get(self.kind).batch_api

    def resolve(self, env: Mapping[str, str], local_base_url: str | None = None) -> Target:
        """The ready endpoint: its key read from ``env`` (a UserError naming the variable when missing);
        ``local_base_url`` is the URL of the server started for a local endpoint."""
        return self.resolver(env, local_base_url)


def pricing_model(cfg: RunConfig, env: Mapping[str, str]) -> str:
    """The model the one endpoint of flags and variables is priced as, found without any network access."""
    kind = kinds.get(choose_kind(cfg.endpoint, env))
    if cfg.cost.price_as:
        return cfg.cost.price_as
    if kind.on_this_machine:  # the bundled model (or any --endpoint local) is priced at zero, whatever --model says
        return "local"
    return cfg.endpoint.model or kind.default_model(env)


def planned_endpoints(cfg: RunConfig, env: Mapping[str, str]) -> list[Planned]:
    """The endpoints a run would send to: the pool's (``endpoints:``, ``--endpoint``), else the one of flags
    and variables as a pool of one."""
    entries = pool_entries(cfg)
    return [_entry(cfg, e) for e in entries] if entries else [_flags(cfg, env)]


def _flags(cfg: RunConfig, env: Mapping[str, str]) -> Planned:
    price_as = pricing_model(cfg, env)

    def resolver(env: Mapping[str, str], url: str | None) -> Target:
        return Target(DEFAULT, resolve_endpoint(cfg.endpoint, env, local_base_url=url), cfg.generation,
                      cfg.limits.rpm, cfg.limits.tpm, price_as=price_as)

    return Planned(DEFAULT, choose_kind(cfg.endpoint, env), price_as,
                   completion_budget({"max_tokens": cfg.generation.max_tokens, **cfg.generation.extra}),
                   cfg.limits.rpm, cfg.limits.tpm, resolver)


def _entry(cfg: RunConfig, e: PoolEndpoint) -> Planned:
    gen = e.generation.over(cfg.generation)
    model = entry_price_as(e, cfg.cost.price_as, e.model or kinds.get(e.kind).default_model({}))  # as resolve_entry

    def resolver(env: Mapping[str, str], url: str | None) -> Target:
        return resolve_entry(e, env, url, cfg.generation, cfg.cost.price_as)

    return Planned(e.name, e.kind, model, completion_budget({"max_tokens": gen.max_tokens, **gen.extra}),
                   e.rpm, e.tpm, resolver, e.weight, e.local_model_path)


@contextlib.asynccontextmanager
async def open_targets(cfg: RunConfig, env: Mapping[str, str]):
    """The run's endpoints as ``Target``s, one per planned endpoint. Every remote one is resolved (its key
    checked) before a ``local`` endpoint's server is started; a server runs for the duration. Yields
    (targets, servers)."""
    plan = planned_endpoints(cfg, env)
    remote = {p.name: p.resolve(env) for p in plan if not p.on_this_machine}
    async with contextlib.AsyncExitStack() as stack:
        servers: list[Any] = []
        targets = []
        for p in plan:
            if p.name in remote:
                targets.append(remote[p.name])
                continue
            from syphus.engine.local import LocalServer
            server = await stack.enter_async_context(LocalServer(
                p.local_model_path or cfg.endpoint.local_model_path, command=cfg.endpoint.local_command,
                startup_timeout=cfg.endpoint.local_startup_timeout))
            servers.append(server)
            targets.append(p.resolve(env, server.base_url))
        yield targets, servers


def counted_as(target: Target) -> str:
    """The model an endpoint's tokens (its images' too) are counted as: its price row's, else its own."""
    return target.price_as or target.endpoint.model or "?"


def batch_target(targets: list[Target], say: bool = True) -> Target:
    """The endpoint a batch run submits to: the first that has the Batch API (OpenAI or Azure)."""
    for t in targets:
        if kinds.get(t.endpoint.kind).batch_api:
            if len(targets) > 1 and say:
                log.info("--mode batch: the batches go to endpoint %s (the Batch API runs on one endpoint; "
                         "pick another with --endpoint NAME)", t.name)
            return t
    raise UserError(NO_BATCH_API)


NO_BATCH_API = ("--mode batch needs the Batch API of OpenAI or Azure OpenAI, and none of the endpoints chosen has "
                "it: set OPENAI_API_KEY (or the Azure variables) or choose such an endpoint, or run the local model "
                "with --mode online")


def check_batch(cfg: RunConfig, env: Mapping[str, str]) -> None:
    """A UserError before anything is read when ``--mode batch`` has no endpoint with the Batch API."""
    if cfg.mode == "batch" and not any(p.batch_api for p in planned_endpoints(cfg, env)):
        raise UserError(NO_BATCH_API)


def batch_endpoint(cfg: RunConfig, env: Mapping[str, str]) -> Target:
    """The endpoint a batch run submits to, resolved without starting anything (``batch_target`` over the
    planned endpoints that do not run on this machine)."""
    return batch_target([p.resolve(env) for p in planned_endpoints(cfg, env) if not p.on_this_machine])
