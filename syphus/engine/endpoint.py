"""Endpoint: where requests go and how they are signed, resolved from config and environment.

Kinds (``syphus.kinds``, one module each): ``openai`` (api.openai.com),
``compatible`` (any OpenAI-style base URL: vLLM, llama.cpp, a proxy), ``azure``
(Azure OpenAI deployments), ``local`` (the bundled model; see
``syphus.engine.local``). This module picks the kind ``auto`` stands for and
resolves single endpoints and pool entries through the kind's ``resolve``.
Keys come only from the environment and never appear in ``describe()``,
``repr`` or outputs.

Environment, old and new names alike: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``
/ ``OPENAI_API_BASE``, ``OPENAI_API_TYPE=azure``, ``OPENAI_API_VERSION``,
``OPENAI_API_ENGINE`` (model or Azure deployment), ``AZURE_OPENAI_ENDPOINT``,
``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_DEPLOYMENT``, ``OPENAI_MODEL``.

>>> ep = resolve_endpoint(EndpointConfig(base_url="http://127.0.0.1:8000/v1", model="m"), {})
>>> ep.kind, ep.url
('compatible', 'http://127.0.0.1:8000/v1/chat/completions')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from syphus import kinds
from syphus.config import EndpointConfig, GenerationConfig, PoolEndpoint, RunConfig
from syphus.errors import UserError
from syphus.kinds.base import DEFAULT_MODEL, Endpoint, check_sendable, first
from syphus.kinds.openai import OPENAI_URL

__all__ = ["DEFAULT_MODEL", "OPENAI_URL", "Endpoint", "Target", "check_sendable", "choose_kind", "entry_price_as",
           "pool_entries", "resolve_endpoint", "resolve_entry"]


def choose_kind(cfg: EndpointConfig, env: Mapping[str, str]) -> str:
    """The endpoint kind ``auto`` stands for in this environment."""
    if cfg.kind != "auto":
        return cfg.kind
    if (env.get("OPENAI_API_TYPE") or "").lower().startswith("azure") or (
            not cfg.base_url and env.get("AZURE_OPENAI_ENDPOINT")):
        return "azure"
    base = cfg.base_url or first(env, "OPENAI_BASE_URL", "OPENAI_API_BASE")
    if base:
        return "openai" if urlsplit(base).hostname == "api.openai.com" else "compatible"
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if cfg.model:  # never answer a named hosted model with the bundled one: the records would carry its name
        raise UserError(f"model {cfg.model!r} (--model or endpoint.model) needs an endpoint: set OPENAI_API_KEY "
                        "(Azure: AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT), or --base_url for a server of "
                        "your own; leave the model out to run the bundled local model")
    return "local"


def resolve_endpoint(cfg: EndpointConfig, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
    """Resolve the config and environment into an Endpoint (``local`` needs the server's URL)."""
    return kinds.get(choose_kind(cfg, env)).resolve(cfg, env, local_base_url)


# --- a pool of endpoints ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One endpoint a run sends to, with what it alone may set: name, generation, limits, weight, price row."""

    name: str
    endpoint: Endpoint
    generation: GenerationConfig
    rpm: float | None = None
    tpm: float | None = None
    weight: float = 1.0
    price_as: str | None = None
    timeout: float | None = None
    key_env: str | None = None  # the variable its key is read from (named in messages, never read out)


def pool_entries(cfg: RunConfig) -> list[PoolEndpoint]:
    """The pool endpoints a run uses: those ``--endpoint NAME`` picks, else all of ``endpoints:`` (empty: none)."""
    if cfg.use_endpoints:
        return [e for e in cfg.endpoints if e.name in cfg.use_endpoints]
    return list(cfg.endpoints)


def resolve_entry(entry: PoolEndpoint, env: Mapping[str, str], local_base_url: str | None = None,
                  generation: GenerationConfig | None = None, price_as: str | None = None) -> Target:
    """The Target of one pool entry; its key comes from the variable ``key_env`` names (a UserError names
    the variable, never a value, when it is not set). It is priced as its own ``price_as``, else as
    ``price_as`` (the run's ``--price_as``), else as its model."""
    kind = kinds.get(entry.kind)
    var = entry.key_env or kind.pool_key_var
    key = env.get(var) if var else None
    if entry.key_env and not key:
        raise UserError(f"endpoint {entry.name!r}: the environment variable {entry.key_env} (its key_env) is not "
                        "set; export it with the key, then run again")
    own = kind.key_env(key) if key else {}
    cfg = EndpointConfig(kind=entry.kind, base_url=entry.base_url, model=entry.model, api_version=entry.api_version)
    try:
        endpoint = resolve_endpoint(cfg, own, local_base_url)
    except UserError as e:
        raise UserError(f"endpoint {entry.name!r}: {e}") from None
    base = generation or GenerationConfig()
    return Target(entry.name, endpoint, entry.generation.over(base), entry.rpm, entry.tpm, entry.weight,
                  entry_price_as(entry, price_as, endpoint.model), entry.timeout, var)


def entry_price_as(entry: PoolEndpoint, price_as: str | None, model: str | None) -> str | None:
    """What a pool entry is priced as: its own ``price_as``, ``local`` on this machine (a model here costs
    nothing a token), the run's ``--price_as``, else ``model``."""
    local = "local" if kinds.get(entry.kind).on_this_machine else None
    return entry.price_as or local or price_as or model
