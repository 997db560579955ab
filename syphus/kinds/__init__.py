"""The endpoint kinds: one module each, and the registry every kind list is read from.

The config's accepted kinds, the CLI's ``--endpoint`` choices and help, the variables whose values
are redacted from every message, and the "unknown kind" error all come from ``KINDS``. A new kind is
one module with an ``EndpointKind`` subclass (``syphus.kinds.base``) plus its line in ``BUILT_IN``
(or a ``register`` call, as a test does).

>>> names()
('auto', 'openai', 'azure', 'compatible', 'local')
>>> get("local").form, get("azure").batch_api, get("compatible").batch_api
('llamacpp', True, True)
"""

from __future__ import annotations

from syphus.errors import UserError
from syphus.kinds import azure, compatible, local, openai
from syphus.kinds.base import EndpointKind

AUTO = "auto"  # not a kind: "choose one from the environment" (syphus.engine.endpoint.choose_kind)
BUILT_IN = (openai.KIND, azure.KIND, compatible.KIND, local.KIND)
KINDS: dict[str, EndpointKind] = {k.name: k for k in BUILT_IN}


def register(kind: EndpointKind) -> EndpointKind:
    """Add ``kind`` to the registry (its name must be new and not ``auto``); returns it."""
    if not kind.name or kind.name == AUTO or kind.name in KINDS:
        raise ValueError(f"endpoint kind name {kind.name!r} is empty, reserved or taken")
    KINDS[kind.name] = kind
    return kind


def names(auto: bool = True) -> tuple[str, ...]:
    """The kinds a config or ``--endpoint`` may name, ``auto`` first unless ``auto=False``."""
    return ((AUTO,) if auto else ()) + tuple(KINDS)


def unknown(name: str, auto: bool = True) -> str:
    """The message for a kind no module registers."""
    return f"unknown endpoint kind {name!r}; known: {', '.join(names(auto))}"


def get(name: str) -> EndpointKind:
    """The kind called ``name``; a UserError listing the known ones otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise UserError(unknown(name, auto=False)) from None


def secret_vars() -> tuple[str, ...]:
    """Every variable any kind reads a key from, once each, in registration order."""
    return tuple(dict.fromkeys(v for k in KINDS.values() for v in k.key_vars))
