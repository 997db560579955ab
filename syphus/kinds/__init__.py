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

from syphus.kinds import azure, compatible, local, openai
from syphus.kinds.base import EndpointKind
from syphus.registry import Registry

BUILT_IN = (openai.KIND, azure.KIND, compatible.KIND, local.KIND)
KINDS: Registry[EndpointKind] = Registry("endpoint kind", "known:", BUILT_IN)
# the registry's lookups under the names callers use: kinds.get(name), kinds.names(), kinds.register(kind)
register, names, unknown, get = KINDS.register, KINDS.names, KINDS.unknown, KINDS.find


def secret_vars() -> tuple[str, ...]:
    """Every variable any kind reads a key from, once each, in registration order."""
    return tuple(dict.fromkeys(v for k in KINDS.values() for v in k.key_vars))
