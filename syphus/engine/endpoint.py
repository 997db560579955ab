"""Endpoint: where requests go and how they are signed, resolved from config and environment.

Kinds: ``openai`` (api.openai.com), ``compatible`` (any OpenAI-style base URL:
vLLM, llama.cpp, a proxy), ``azure`` (Azure OpenAI deployments), ``local``
(the bundled model; see ``syphus.engine.local``). Keys come only from the
environment and never appear in ``describe()``, ``repr`` or outputs.

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
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from syphus.config import EndpointConfig, GenerationConfig, PoolEndpoint, RunConfig
from syphus.errors import UserError
from syphus.redaction import Redactor, redact_urls, url_password

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_AZURE_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint. ``headers`` carry the key: never log them."""

    kind: str
    url: str = field(repr=False)
    model: str | None
    headers: Mapping[str, str] = field(repr=False, default_factory=dict)
    secrets: tuple[str, ...] = field(repr=False, default=())
    api_root: str = field(repr=False, default="")  # where /files and /batches live
    api_query: str = field(repr=False, default="")  # Azure's "?api-version=..."

    def api_url(self, path: str) -> str:
        """The URL of another API route of this endpoint, e.g. ``api_url("/batches")``."""
        return self.api_root + path + self.api_query

    def __repr__(self) -> str:
        d = self.describe()
        return f"Endpoint(kind={d['kind']!r}, url={d['url']!r}, model={d['model']!r})"

    def describe(self) -> dict[str, str | None]:
        """What may be shown or stored: kind, URL without credentials, model."""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        return {"kind": self.kind, "url": parts._replace(netloc=netloc).geturl(), "model": self.model}

    def redact(self, text: str) -> str:
        """``text`` (a message, never stored data) with URL passwords and this endpoint's secrets of
        at least 8 characters replaced by ``***`` (``syphus.redaction``)."""
        return Redactor(self.secrets)(text)


def check_sendable(endpoint: Endpoint, url_from: str, key_from: str | None = None) -> Endpoint:
    """``endpoint`` if a request can be made with it; else one UserError naming the setting to fix.

    Found before the first request, so a setting that can never send (a URL without a scheme, a
    port out of range, a key with a line ending) costs nothing and settles nothing.
    """
    from yarl import URL  # aiohttp's own URL type: what it accepts, this accepts

    try:
        shown = endpoint.describe()["url"]
    except ValueError:  # a port out of range: show the URL as given, less any password
        shown = redact_urls(endpoint.url)
    try:
        url = URL(endpoint.url)
        port = url.port
    except ValueError as e:
        raise UserError(f"{url_from}: the endpoint URL {shown!r} is not usable ({e}); give it as "
                        "http(s)://host[:port]/v1 with a port from 1 to 65535") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UserError(f"{url_from}: the endpoint URL {shown!r} needs http:// or https:// and a host, "
                        "e.g. http://127.0.0.1:8000/v1")
    if not port:
        raise UserError(f"{url_from}: the endpoint URL {shown!r} has port 0; give a port from 1 to 65535")
    if url.user is not None and any(k.lower() == "authorization" for k in endpoint.headers):
        raise UserError(f"{url_from}: the endpoint URL carries a user and password and a key is set as well "
                        "(both would be the Authorization header); keep one of them")
    for name, value in endpoint.headers.items():
        bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
        if bad is None:
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                bad = next(c for c in value if ord(c) > 255)
        if bad is not None:
            where = key_from if name.lower() in ("authorization", "api-key") and key_from else f"the {name} header"
            raise UserError(f"{where} holds a character no HTTP header can carry ({bad!r}, e.g. a line ending "
                            "copied from a file); set it again without it")
    return endpoint


def _which(env: Mapping[str, str], *names: str) -> str | None:
    """The name of the first of ``names`` set in ``env`` (what a message should tell the user to fix)."""
    return next((n for n in names if env.get(n)), None)


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for n in names:
        v = env.get(n)
        if v:
            return v
    return None


def choose_kind(cfg: EndpointConfig, env: Mapping[str, str]) -> str:
    """The endpoint kind ``auto`` stands for in this environment."""
    if cfg.kind != "auto":
        return cfg.kind
    if (env.get("OPENAI_API_TYPE") or "").lower().startswith("azure") or (
            not cfg.base_url and env.get("AZURE_OPENAI_ENDPOINT")):
        return "azure"
    base = cfg.base_url or _first(env, "OPENAI_BASE_URL", "OPENAI_API_BASE")
    if base:
        return "openai" if urlsplit(base).hostname == "api.openai.com" else "compatible"
    if env.get("OPENAI_API_KEY"):
        return "openai"
    if cfg.model:  # never answer a named hosted model with the bundled one: the records would carry its name
        raise UserError(f"model {cfg.model!r} (--model or endpoint.model) needs an endpoint: set OPENAI_API_KEY "
                        "(Azure: AZURE_OPENAI_API_KEY and AZURE_OPENAI_ENDPOINT), or --base_url for a server of "
                        "your own; leave the model out to run the bundled local model")
    return "local"


def _url_secrets(url: str) -> tuple[str, ...]:
    password = url_password(url)
    return (password,) if password else ()


def resolve_endpoint(cfg: EndpointConfig, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
    """Resolve the config and environment into an Endpoint (``local`` needs the server's URL)."""
    kind = choose_kind(cfg, env)
    if kind == "azure":
        base = cfg.base_url or _first(env, "AZURE_OPENAI_ENDPOINT", "OPENAI_API_BASE")
        key = _first(env, "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY")
        deployment = cfg.model or _first(env, "AZURE_OPENAI_DEPLOYMENT", "OPENAI_API_ENGINE")
        version = cfg.api_version or _first(env, "OPENAI_API_VERSION", "AZURE_OPENAI_API_VERSION") \
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
        return check_sendable(Endpoint("azure", url, deployment, {"api-key": key}, (key,) + _url_secrets(base),
                                       api_root=f"{base}/openai", api_query=f"?api-version={quote(version)}"),
                              "--base_url" if cfg.base_url else _which(env, "AZURE_OPENAI_ENDPOINT", "OPENAI_API_BASE"),
                              _which(env, "AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"))
    if kind == "local":
        if not local_base_url:
            raise UserError("the local endpoint is not running; start it with syphus.engine.local.LocalServer")
        base = local_base_url
        model = cfg.model or "local"
        return Endpoint("local", base.rstrip("/") + "/chat/completions", model, {}, (), api_root=base.rstrip("/"))
    base = cfg.base_url or _first(env, "OPENAI_BASE_URL", "OPENAI_API_BASE") or OPENAI_URL
    key = env.get("OPENAI_API_KEY")
    model = cfg.model or _first(env, "OPENAI_MODEL", "OPENAI_API_ENGINE") or DEFAULT_MODEL
    if kind == "openai" and not key:
        raise UserError("OpenAI needs a key: set OPENAI_API_KEY in the environment "
                        "(for a server of your own, set endpoint.base_url or OPENAI_BASE_URL instead)")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    org = env.get("OPENAI_ORG_ID")
    if org:
        headers["OpenAI-Organization"] = org
    secrets = ((key,) if key else ()) + _url_secrets(base)
    url_from = "--base_url" if cfg.base_url else _which(env, "OPENAI_BASE_URL", "OPENAI_API_BASE") or "the OpenAI URL"
    return check_sendable(Endpoint(kind, base.rstrip("/") + "/chat/completions", model, headers, secrets,
                                   api_root=base.rstrip("/")), url_from, "OPENAI_API_KEY")


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


_KEY_VARS = {"azure": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}


def resolve_entry(entry: PoolEndpoint, env: Mapping[str, str], local_base_url: str | None = None,
                  generation: GenerationConfig | None = None, price_as: str | None = None) -> Target:
    """The Target of one pool entry; its key comes from the variable ``key_env`` names (a UserError names
    the variable, never a value, when it is not set). It is priced as its own ``price_as``, else as
    ``price_as`` (the run's ``--price_as``), else as its model."""
    var = entry.key_env or _KEY_VARS.get(entry.kind)
    key = env.get(var) if var else None
    if entry.key_env and not key:
        raise UserError(f"endpoint {entry.name!r}: the environment variable {entry.key_env} (its key_env) is not "
                        "set; export it with the key, then run again")
    own = {}
    if key:
        own = {"AZURE_OPENAI_API_KEY": key} if entry.kind == "azure" else {"OPENAI_API_KEY": key}
    cfg = EndpointConfig(kind=entry.kind, base_url=entry.base_url, model=entry.model, api_version=entry.api_version)
    try:
        endpoint = resolve_endpoint(cfg, own, local_base_url)
    except UserError as e:
        raise UserError(f"endpoint {entry.name!r}: {e}") from None
    base = generation or GenerationConfig()
    local = "local" if entry.kind == "local" else None  # a model on this machine costs nothing a token
    return Target(entry.name, endpoint, entry.generation.over(base), entry.rpm, entry.tpm, entry.weight,
                  entry.price_as or local or price_as or endpoint.model, entry.timeout, var)
