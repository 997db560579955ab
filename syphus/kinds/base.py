"""What every endpoint kind shares: the resolved ``Endpoint``, the ``EndpointKind`` base, the checks.

An ``EndpointKind`` turns one endpoint's settings (``EndpointConfig``: kind, base URL, model,
api-version) and the environment into a ready ``Endpoint`` (``resolve``, the one method a kind must
write). Everything else a kind may differ in has a default here: the variables its key is read from
(redacted from every message), the variable a pool entry's key stands in for, how a reply schema is
sent, whether it has the Batch API and how a batch line names its route, whether online requests name
the model, the model a run is priced as when none is named, and whether it runs on this machine
(started by the run, priced at zero, timed by its measured speed). ``syphus.kinds`` holds the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from syphus.errors import UserError
from syphus.redaction import Redactor, redact_urls, url_password

if TYPE_CHECKING:  # config imports the registry: the settings' type is only named here
    from syphus.config import EndpointConfig

DEFAULT_MODEL = "gpt-4o-mini"


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



def which(env: Mapping[str, str], *names: str) -> str | None:
    """The name of the first of ``names`` set in ``env`` (what a message should tell the user to fix)."""
    return next((n for n in names if env.get(n)), None)


def first(env: Mapping[str, str], *names: str) -> str | None:
    """The value of the first of ``names`` set in ``env``."""
    name = which(env, *names)
    return env[name] if name else None


def url_secrets(url: str) -> tuple[str, ...]:
    """The password a URL carries, if any (a secret to redact)."""
    password = url_password(url)
    return (password,) if password else ()


class EndpointKind:
    """One kind of endpoint. Subclass it, write ``resolve``, override what differs, and register an
    instance (``syphus.kinds.register``)."""

    name: str = ""
    key_vars: tuple[str, ...] = ()  # where its key may be read from, first first; all are redacted
    pool_key_var: str | None = None  # a pool entry without key_env reads its key from this variable
    form: str = "openai"  # how a reply schema is sent (syphus.engine.structure) when reply.form is auto
    batch_api: bool = False  # has the Batch API (/files, /batches): --mode batch may run on it
    batch_url: str = "/v1/chat/completions"  # the route a batch input line names
    model_in_body: bool = True  # online requests name the model in the body
    on_this_machine: bool = False  # started by the run, priced at zero, its timeout follows its speed

    def resolve(self, cfg: EndpointConfig, env: Mapping[str, str], local_base_url: str | None = None) -> Endpoint:
        """The ready endpoint of ``cfg`` in ``env``, or one UserError naming the setting to fix."""
        raise NotImplementedError(f"endpoint kind {self.name!r} must define resolve()")

    def default_model(self, env: Mapping[str, str]) -> str:
        """The model a run is priced as when neither the config nor the flags name one."""
        return DEFAULT_MODEL

    def key_env(self, key: str) -> dict[str, str]:
        """The environment ``resolve`` reads a pool entry's own key from."""
        return {self.key_vars[0]: key} if self.key_vars else {}

    def batch_client(self, endpoint: Endpoint, query: dict[str, str], common: dict[str, Any]) -> tuple[Any, dict]:
        """The OpenAI SDK client of the Batch API and the headers each call adds (bearer auth by default)."""
        import openai
        auth = endpoint.headers.get("Authorization", "")
        key = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        # a server without keys: the SDK wants one all the same, and is told per call to send none
        client = openai.AsyncOpenAI(api_key=key or "no-key", default_query=query or None, **common)
        return client, {} if key else {"Authorization": openai.omit}
