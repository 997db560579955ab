"""The run config: one typed object, built once and checked when built.

Precedence: defaults < YAML file (``--config``) < CLI flags. Secrets never live
here; they come only from the environment (see ``syphus.engine.endpoint``).

>>> cfg = load_config(None, {"name": "Example.example", "limits.rpm": 500})
>>> cfg.limits.rpm
500.0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from syphus import kinds, schemaform
from syphus.errors import UserError
from syphus.textfile import read_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EndpointConfig(_Strict):
    """Where requests go. ``kind="auto"`` picks from the environment."""

    kind: str = "auto"  # a name syphus.kinds registers, or auto
    base_url: str | None = None
    model: str | None = None  # model name, or the Azure deployment
    api_version: str | None = None  # Azure api-version
    timeout: float = Field(120.0, gt=0)  # seconds for one request, end to end
    local_model_path: str | None = None  # a GGUF file for kind="local"
    local_command: list[str] | None = None  # kind="local": start this server instead; {port} is filled in
    local_startup_timeout: float = Field(300.0, gt=0)

    _kind_known = field_validator("kind")(classmethod(lambda cls, v: kinds.KINDS.checked(v, auto=True)))


def check_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """Refuse body fields whose replies a run would pay for and not keep: ``n`` > 1 (one reply is kept per
    request) and ``stream`` (a reply is read whole)."""
    n = extra.get("n", 1)
    if n is not None and n != 1:
        raise ValueError(f"n = {n!r}: a request keeps one reply, so n > 1 would pay for {n!r} and keep 1; remove "
                         "'n' (for more pairs a query, ask for more in the system message)")
    if extra.get("stream"):
        raise ValueError("stream: replies are read whole; remove 'stream'")
    return extra


class GenerationConfig(_Strict):
    """Sampling parameters sent with every request."""

    temperature: float | None = Field(0.7, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    extra: dict[str, Any] = Field(default_factory=dict)  # any other body field (stop, seed, ...)

    _extra_checked = field_validator("extra")(classmethod(lambda cls, v: check_extra(v)))


class GenerationOverrides(_Strict):
    """One pool endpoint's own sampling parameters; what is left out comes from ``generation``."""

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    extra: dict[str, Any] = Field(default_factory=dict)  # merged over generation.extra

    _extra_checked = field_validator("extra")(classmethod(lambda cls, v: check_extra(v)))

    def over(self, base: GenerationConfig) -> GenerationConfig:
        """``base`` with these overrides applied."""
        data = base.model_dump()
        for key in ("temperature", "top_p", "max_tokens"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["extra"] = {**base.extra, **self.extra}
        return GenerationConfig.model_validate(data)


class PoolEndpoint(_Strict):
    """One endpoint of a pool (``endpoints:`` in the YAML config). Its key is read from the environment
    variable ``key_env`` names: the name is here, never the key."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = "compatible"  # a name syphus.kinds registers
    base_url: str | None = None  # the base URL, or the Azure resource (https://NAME.openai.azure.com)
    model: str | None = None  # the model, or the Azure deployment
    api_version: str | None = None  # Azure
    key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # e.g. AZURE_EAST_KEY
    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    weight: float = Field(1.0, gt=0)  # ties between endpoints that can take a query as soon go by weight
    price_as: str | None = None  # its row in the pricing table (default: its model)
    timeout: float | None = Field(None, gt=0)
    local_model_path: str | None = None
    generation: GenerationOverrides = Field(default_factory=GenerationOverrides)

    _kind_known = field_validator("kind")(classmethod(lambda cls, v: kinds.KINDS.checked(v, auto=False)))


class ReplyConfig(_Strict):
    """The reply's format: JSON in a schema the server enforces, or text parsed after the fact.

    ``mode``: ``auto`` (JSON, falling back to text for the run when the endpoint rejects the
    schema), ``json`` (JSON or stop) or ``text``. ``form``: how the schema is sent (``auto``:
    llama.cpp's form for the bundled model, OpenAI's for every other endpoint; ``vllm`` sends
    vLLM's own ``structured_outputs``). ``repairs``: how many times a reply that breaks the schema
    (or gives no pairs) is asked again on the same conversation, saying what was wrong (0 to 2).
    """

    mode: Literal["auto", "json", "text"] = "auto"
    form: str = "auto"  # a name syphus.schemaform registers, or auto
    repairs: int = Field(1, ge=0, le=2)  # a broken reply is asked again this many times (syphus.engine.repair)
    _form_known = field_validator("form")(classmethod(lambda cls, v: schemaform.FORMS.checked(v)))


class ImagesConfig(_Strict):
    """Images sent with each query (vision models): looked up by id in a release image file."""

    path: str | None = None  # XX.json or XX.parquet, as syphus convert writes them (--images)
    max_images: int | None = Field(None, ge=1)  # at most this many a query, evenly spaced (--max_images)
    detail: Literal["low", "high", "auto"] = "auto"  # OpenAI's image detail (--image_detail)
    max_side: int | None = Field(None, ge=16)  # resize so the longer side is at most this (--image_max_side)
    allow_missing: bool = False  # a query whose images are not in the file goes text-only, flagged
    tokens: str = "configs/image_tokens.yaml"  # image token costs per model
    max_per_request: int = Field(50, ge=1)  # the endpoint's image-count limit for one request
    max_request_mb: float = Field(20.0, gt=0)  # the endpoint's request-size limit
    cache_mb: float = Field(64.0, ge=0)  # prepared images kept for queries that share them; 0: none (--image_cache_mb)
    threads: int | None = Field(None, ge=1, le=256)  # decode/resize threads; None: the cores (--image_threads)


class LimitsConfig(_Strict):
    """Request and token budgets. Unset means: learn them from response headers."""

    rpm: float | None = Field(None, gt=0)
    tpm: float | None = Field(None, gt=0)
    burst_seconds: float = Field(1.0, gt=0)  # how much unused budget may pile up
    follow_headers: bool = True


class RetryConfig(_Strict):
    """The one retry policy: exponential backoff with jitter, capped twice; and, for a pool, the circuit."""

    max_attempts: int = Field(8, ge=1)
    max_seconds: float = Field(600.0, gt=0)
    initial_wait: float = Field(1.0, ge=0)
    max_wait: float = Field(60.0, ge=0)
    max_endpoint_failures: int = Field(20, ge=1)  # identical endpoint-level failures in a row that stop the run
    # A pool endpoint failing this many requests in a row (connection, timeout, 5xx, 404) cools down:
    # no requests for cool_seconds (doubling at each failed probe, up to cool_max_seconds), then one probe.
    cool_after: int = Field(3, ge=1)
    cool_seconds: float = Field(10.0, gt=0)
    cool_max_seconds: float = Field(300.0, gt=0)


class CostConfig(_Strict):
    """Prices and the hard budget."""

    max_cost: float | None = Field(None, gt=0)  # USD; dispatch stops before spent + reserved would pass it
    pricing: str = "configs/pricing.yaml"
    price_as: str | None = None  # price the run as this model (for Azure deployment names)
    dry_run_sample: int = Field(20_000, ge=1)  # prompts built for --dry-run; the rest are counted


class BatchConfig(_Strict):
    """The Batch API: file limits, the enqueued-token budget, polling."""

    max_requests_per_file: int = Field(50_000, ge=1, le=50_000)
    max_bytes_per_file: int = Field(190 * 2**20, ge=1024, le=200 * 2**20)
    max_enqueued_tokens: int | None = Field(None, ge=1)  # your organisation's batch queue limit for the model
    poll_interval: float = Field(60.0, gt=0)
    completion_window: str = "24h"
    max_rounds: int = Field(3, ge=1)  # how often failed or expired requests go into a new batch


class RunConfig(_Strict):
    """Everything one run needs, except secrets."""

    name: str | None = None
    num_threads: int = Field(8, ge=1, le=4096)
    slice_start: int = Field(0, ge=0)
    slice_end: int = -1
    random_sample: bool = False
    seed: int = 0
    # what a repeated query id does: stop before the run (error), id#2, id#3 (suffix), one query
    # through the plugin's merge_items (merge), or only the first item (skip)
    on_duplicate: Literal["error", "suffix", "merge", "skip"] = "error"
    dataset_version: str = "v1"
    prompt_path: str | None = None
    query_inputs_path: str | None = None
    datasets_dir: str = "datasets"
    output_dir: str = "output"
    # seconds in-flight requests get after Ctrl-C or a fatal error; None: the request timeout and 5 s more
    drain_timeout: float | None = Field(None, ge=0)
    log_interval: float = Field(30.0, gt=0)  # seconds between progress lines when not on a terminal
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    endpoints: list[PoolEndpoint] = Field(default_factory=list)  # a pool; the run uses all, or those use_endpoints names
    use_endpoints: list[str] = Field(default_factory=list)  # --endpoint NAME (repeatable)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    reply: ReplyConfig = Field(default_factory=ReplyConfig)
    images: ImagesConfig = Field(default_factory=ImagesConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    mode: Literal["online", "batch"] = "online"
    cost: CostConfig = Field(default_factory=CostConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)

    @model_validator(mode="after")
    def _pool_names(self) -> RunConfig:
        names = [e.name for e in self.endpoints]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"endpoints: the name {repeated[0]!r} is used twice; every endpoint needs its own name")
        clash = [n for n in names if n in kinds.names()]
        if clash:
            raise ValueError(f"endpoints: {clash[0]!r} is an endpoint kind, not a name; call it something else")
        unknown = [n for n in self.use_endpoints if n not in names]
        if unknown:
            have = ", ".join(names) if names else "none: add an endpoints: list to the config file"
            raise ValueError(f"--endpoint {unknown[0]}: no such endpoint in the pool (the pool has {have})")
        return self


_SECRET_KEYS = {"api_key", "key", "openai_api_key", "azure_openai_api_key", "token"}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"limits.rpm": 5}`` -> ``{"limits": {"rpm": 5}}``; None values are dropped."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        if value is None:
            continue
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _find_secret(data: Any, path: str = "") -> str | None:
    if isinstance(data, dict):
        for k, v in data.items():
            here = f"{path}.{k}" if path else str(k)
            if str(k).lower() in _SECRET_KEYS:
                return here
            found = _find_secret(v, here)
            if found:
                return found
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found = _find_secret(v, f"{path}[{i}]")
            if found:
                return found
    return None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file, with errors that name the file and line."""
    p = Path(path)
    try:
        text = read_text(p, "config file")
    except OSError as e:
        raise UserError(f"{p}: cannot read config file ({e.strerror}); check the --config path") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise UserError(f"{where}: not valid YAML ({getattr(e, 'problem', e)}); fix the syntax there") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: a config file must be a mapping of keys, got {type(data).__name__}")
    secret = _find_secret(data)
    if secret:
        raise UserError(f"{p}: key '{secret}' looks like a secret; config files never hold keys. "
                        "Remove it and set OPENAI_API_KEY (or AZURE_OPENAI_API_KEY) in the environment")
    return data


def _explain(e: ValidationError, source: str) -> str:
    lines = []
    for err in e.errors()[:5]:
        key = ".".join(str(x) for x in err["loc"])
        if not err["loc"]:  # a check of the config as a whole
            lines.append(str(err["msg"]).removeprefix("Value error, "))
        elif err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"'{key}': {err['msg']} (got {err.get('input')!r})")
    known = ", ".join(RunConfig.model_fields)
    return f"{source}: bad config: {'; '.join(lines)}. Top-level keys are: {known}"


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Build the run config from an optional YAML file and dotted-key overrides (CLI flags)."""
    data = read_yaml(path) if path else {}
    flags = _nest(overrides or {})
    try:
        RunConfig.model_validate(data)
    except ValidationError as e:
        raise UserError(_explain(e, str(path))) from e
    try:
        return RunConfig.model_validate(_merge(data, flags))
    except ValidationError as e:
        raise UserError(_explain(e, "command-line flags")) from e
