"""``openai``: api.openai.com, or any base URL the OpenAI variables name, signed with a bearer key."""

from __future__ import annotations

from collections.abc import Mapping

from syphus.errors import UserError
from syphus.kinds.base import DEFAULT_MODEL, Endpoint, EndpointKind, check_sendable, first, url_secrets, which

OPENAI_URL = "https://api.openai.com/v1"


class OpenAI(EndpointKind):
    """OpenAI's own API: a key is required."""

    name = "openai"
    key_vars = ("OPENAI_API_KEY",)
    pool_key_var = "OPENAI_API_KEY"
    batch_api = True
    needs_key = True

    def resolve(self, cfg, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
        base = cfg.base_url or first(env, "OPENAI_BASE_URL", "OPENAI_API_BASE") or OPENAI_URL
        key = env.get("OPENAI_API_KEY")
        model = cfg.model or first(env, "OPENAI_MODEL", "OPENAI_API_ENGINE") or DEFAULT_MODEL
        if self.needs_key and not key:
            raise UserError("OpenAI needs a key: set OPENAI_API_KEY in the environment "
                            "(for a server of your own, set endpoint.base_url or OPENAI_BASE_URL instead)")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        org = env.get("OPENAI_ORG_ID")
        if org:
            headers["OpenAI-Organization"] = org
        secrets = ((key,) if key else ()) + url_secrets(base)
        url_from = "--base_url" if cfg.base_url else which(env, "OPENAI_BASE_URL", "OPENAI_API_BASE") or "the OpenAI URL"
        return check_sendable(Endpoint(self.name, base.rstrip("/") + "/chat/completions", model, headers, secrets,
                                       api_root=base.rstrip("/")), url_from, "OPENAI_API_KEY")

    def default_model(self, env: Mapping[str, str]) -> str:
        return first(env, "OPENAI_MODEL", "OPENAI_API_ENGINE") or DEFAULT_MODEL


KIND = OpenAI()
