"""``azure``: an Azure OpenAI deployment; the deployment and api-version are in the URL, the key in ``api-key``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from syphus.errors import UserError
from syphus.kinds.base import Endpoint, EndpointKind, check_sendable, first, url_secrets, which

DEFAULT_AZURE_VERSION = "2024-10-21"


class Azure(EndpointKind):
    """Azure OpenAI: resource URL, key and deployment are all required."""

    name = "azure"
    key_vars = ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY")
    pool_key_var = "AZURE_OPENAI_API_KEY"
    batch_api = True
    batch_url = "/chat/completions"
    model_in_body = False  # online the deployment is in the URL (a batch line names it all the same)

    def resolve(self, cfg, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
        base = cfg.base_url or first(env, "AZURE_OPENAI_ENDPOINT", "OPENAI_API_BASE")
        key = first(env, "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY")
        deployment = cfg.model or first(env, "AZURE_OPENAI_DEPLOYMENT", "OPENAI_API_ENGINE")
        version = cfg.api_version or first(env, "OPENAI_API_VERSION", "AZURE_OPENAI_API_VERSION") \
            or DEFAULT_AZURE_VERSION
        if not base:
            raise UserError("Azure OpenAI needs its endpoint: set AZURE_OPENAI_ENDPOINT (or OPENAI_API_BASE), "
                            "e.g. https://my-resource.openai.azure.com")
        if not key:
            raise UserError("Azure OpenAI needs a key: set AZURE_OPENAI_API_KEY (or OPENAI_API_KEY)")
        if not deployment:
            raise UserError("Azure OpenAI needs a deployment name: set endpoint.model in the config, --model, "
                            "or AZURE_OPENAI_DEPLOYMENT (or OPENAI_API_ENGINE)")
        base = base.rstrip("/")
        if base.endswith("/openai"):
            base = base[: -len("/openai")]
        url = f"{base}/openai/deployments/{quote(deployment, safe='')}/chat/completions?api-version={quote(version)}"
        return check_sendable(Endpoint(self.name, url, deployment, {"api-key": key}, (key,) + url_secrets(base),
                                       api_root=f"{base}/openai", api_query=f"?api-version={quote(version)}"),
                              "--base_url" if cfg.base_url else which(env, "AZURE_OPENAI_ENDPOINT", "OPENAI_API_BASE"),
                              which(env, "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"))

    def default_model(self, env: Mapping[str, str]) -> str:
        return first(env, "AZURE_OPENAI_DEPLOYMENT", "OPENAI_API_ENGINE") or "?"

    def batch_client(self, endpoint: Endpoint, query: dict[str, str], common: dict[str, Any]) -> tuple[Any, dict]:
        import openai
        version = query.pop("api-version", None)
        client = openai.AsyncAzureOpenAI(api_key=endpoint.headers.get("api-key"), api_version=version,
                                         default_query=query or None, **common)
        return client, {}


KIND = Azure()
