"""``local``: the bundled model, served on this machine by the run itself (``syphus.engine.local``)."""

from __future__ import annotations

from collections.abc import Mapping

from syphus.errors import UserError
from syphus.kinds.base import Endpoint, EndpointKind


class Local(EndpointKind):
    """A llama.cpp server the run starts: no key, priced at zero, llama.cpp's schema form, no Batch API."""

    name = "local"
    form = "llamacpp"
    on_this_machine = True

    def resolve(self, cfg, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
        if not local_base_url:
            raise UserError("the local endpoint is not running; start it with syphus.engine.local.LocalServer")
        base = local_base_url.rstrip("/")
        return Endpoint(self.name, base + "/chat/completions", cfg.model or "local", {}, (), api_root=base)

    def default_model(self, env: Mapping[str, str]) -> str:
        return "local"


KIND = Local()
