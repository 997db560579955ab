"""Job: one run, wired end to end (plugin, endpoint, limits, store, pool, progress, meta).

>>> result = asyncio.run(run_job(load_config(None, {"name": "Example.example"}), os.environ))  # doctest: +SKIP
>>> result.status, result.folder                                                              # doctest: +SKIP
('complete', PosixPath('output/Example/v1'))
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import re
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from syphus import __version__, kinds, plugins
from syphus.config import RunConfig
from syphus.dataset import AbstractDataset
from syphus.engine.client import ChatClient, completion_budget
from syphus.engine.cost import Budget, Price, load_pricing, price_for, pricing_if_any
from syphus.engine.endpoint import (Target, choose_kind, pool_entries, resolve_endpoint,
                                    resolve_entry)
from syphus.engine.pool import Member, Pool
from syphus.engine.limits import RateLimiter, estimate_tokens
from syphus.engine.record import now_iso, parse_fields
from syphus.engine.runner import Runner
from syphus.engine.stats import RunStatus, Stats
from syphus.engine.store import INVALID, PAIRS, RunStore
from syphus.engine.structure import Structure, Structures, choose_form
from syphus.errors import ItemError, SyphusError, UserError
from syphus.redaction import without_credentials
from syphus.inputs import SKIPPED_EMPTY, InputCheck, check_inputs, run_stream

log = logging.getLogger("syphus")


@dataclass
class JobResult:
    """How a run ended, where its folder is, what it holds and what this session did."""

    status: RunStatus
    folder: Path
    totals: dict[str, int]
    stats: Stats
    error: Exception | None = None
    budget: Budget | None = None
    inputs: dict[str, Any] | None = None  # what the check before the run found (InputCheck.summary)


@dataclass
class LoadedDataset:
    dataset: AbstractDataset
    path: Path

    @property
    def source(self) -> str:
        return f"{self.path} ({type(self.dataset).__name__})"


def load_dataset(cfg: RunConfig) -> LoadedDataset:
    """Resolve ``cfg.name`` to a plugin class and build it."""
    if not cfg.name:
        raise UserError("no dataset given: pass --name module.Class (see the datasets/ folder)")
    cls, path = plugins.resolve(cfg.name, cfg.datasets_dir)
    return LoadedDataset(plugins.instantiate(cls, path, cfg.prompt_path, cfg.query_inputs_path), path)


def _safe(part: str) -> str:
    return re.sub(r"[^\w.-]", "_", part) or "_"


def run_folder(cfg: RunConfig, dataset: AbstractDataset) -> Path:
    """``<output_dir>/<dataset name>/<dataset_version>``."""
    return Path(cfg.output_dir) / _safe(str(dataset.name)) / _safe(cfg.dataset_version)


@dataclass
class Inputs:
    """A run's query inputs once checked: the stream to send, how many it holds, and the check."""

    items: Iterator[dict[str, Any]]
    total: int
    check: InputCheck


def prepare_inputs(loaded: LoadedDataset, cfg: RunConfig) -> Inputs:
    """Check every query input (a UserError before anything is sent), then the stream to send.

    The stream is read anew, blank items left out, repeated ids handled as ``cfg.on_duplicate``
    says, then ``--random_sample`` and slicing applied; ``total`` is its length. Close
    ``Inputs.check`` when done.
    """
    check = check_inputs(loaded.dataset, loaded.source, cfg.on_duplicate)
    items: Iterator[dict[str, Any]] = guarded(run_stream(loaded.dataset, check, loaded.source), loaded.source)
    items, total = _sampled(items, check.queries, cfg)
    return Inputs(items, total, check)


def _sampled(items: Iterator[dict[str, Any]], total: int, cfg: RunConfig) -> tuple[Iterator[dict[str, Any]], int]:
    """``items`` after ``--random_sample`` and slicing, and how many are left."""
    if cfg.random_sample:  # shuffling needs every item at once; the seed keeps resumes in the same order
        pool = list(items)
        random.Random(cfg.seed).shuffle(pool)
        items, total = iter(pool), len(pool)
    end = cfg.slice_end if cfg.slice_end > 0 else None
    if cfg.slice_start or end is not None:
        items = itertools.islice(items, cfg.slice_start, end)
        total = max(0, min(total, end if end is not None else total) - cfg.slice_start)
    return items, total


def guarded(items: Iterator[dict[str, Any]], source: str) -> Iterator[dict[str, Any]]:
    """``items``, with anything plugin code raises while they stream turned into one UserError."""
    try:
        yield from items
    except SyphusError:
        raise
    except Exception as e:
        raise UserError(f"{source}: reading query inputs failed: {type(e).__name__}: {e}") from e


def build_meta(cfg: RunConfig, loaded: LoadedDataset, endpoint: dict[str, Any], store: RunStore,
               stats: Stats | None, status: RunStatus, started_at: str, elapsed: float,
               budget: Budget | None = None, limiter: RateLimiter | None = None,
               inputs: dict[str, Any] | None = None, structure: Structure | None = None,
               pool: Pool | None = None) -> dict[str, Any]:
    """meta.json: what ran, with what (no secrets), what the inputs held, and what is in the folder now."""
    return {
        "inputs": inputs,
        "cost": {"spent_usd": round(budget.spent, 6) if budget else None,
                 "estimated_usd": round(budget.estimated, 6) if budget else None,
                 "max_cost": cfg.cost.max_cost, "priced": bool(budget and budget.price)},
        "syphus_version": __version__,
        "status": str(status),
        "dataset": {"name": loaded.dataset.name, "class": type(loaded.dataset).__name__,
                    "scene": getattr(loaded.dataset, "scene", None),
                    "plugin": str(loaded.path), "prompt_path": str(loaded.dataset.prompt_path),
                    "query_inputs_path": str(loaded.dataset.query_inputs_path)},
        "endpoint": endpoint,
        "counts": dict(store.totals),
        "session": {
            "started_at": started_at, "updated_at": now_iso(), "elapsed_s": round(elapsed, 3),
            **({k: getattr(stats, k) for k in ("total", "skipped", "answered", "pairs", "invalid", "errors",
                                                "requests", "retries", "rate_limited", "prompt_tokens",
                                                "completion_tokens", "repairs", "repaired")} if stats else {}),
        },
        "limits": limiter.describe() if limiter is not None else None,  # the burst the online run probed
        "reply": structure.describe() if structure is not None else None,  # JSON or text, and any fallback
        # every endpoint of the pool (one when there is no pool): state, requests, 429s, tokens, cost
        "endpoints": pool.describe() if pool is not None else None,
        "config": without_credentials(cfg.model_dump(mode="json")),  # a --base_url's password is no record
    }


@contextlib.contextmanager
def _signals(runner: Runner) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def on_signal(signame: str) -> None:
        hits["n"] += 1
        if hits["n"] == 1:
            log.warning("%s: stopping; finishing %d request(s) on the wire (at most %gs). Press Ctrl-C again to "
                        "quit now.", signame, runner.stats.in_flight, runner.drain_timeout)
            runner.request_stop()
        else:
            log.warning("%s: quitting now; the run is resumable.", signame)
            runner.abort()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def open_targets(cfg: RunConfig, env: Mapping[str, str]):
    """The run's endpoints as ``Target``s: the one from flags and variables, or the pool's (``endpoints:``,
    ``--endpoint NAME``). A ``local`` endpoint's server runs for the duration. Yields (targets, servers)."""
    entries = pool_entries(cfg)
    async with contextlib.AsyncExitStack() as stack:
        servers: list[Any] = []

        async def start_local(model_path: str | None) -> str:
            from syphus.engine.local import LocalServer
            server = await stack.enter_async_context(LocalServer(
                model_path or cfg.endpoint.local_model_path, command=cfg.endpoint.local_command,
                startup_timeout=cfg.endpoint.local_startup_timeout))
            servers.append(server)
            return server.base_url

        if not entries:
            url = await start_local(None) if kinds.get(choose_kind(cfg.endpoint, env)).on_this_machine else None
            endpoint = resolve_endpoint(cfg.endpoint, env, local_base_url=url)
            targets = [Target("default", endpoint, cfg.generation, cfg.limits.rpm, cfg.limits.tpm,
                              price_as=pricing_model(cfg, env))]
        else:
            remote = {e.name: resolve_entry(e, env, generation=cfg.generation, price_as=cfg.cost.price_as)
                      for e in entries if not kinds.get(e.kind).on_this_machine}
            targets = []
            for e in entries:  # keys checked above, before any local server is started
                if kinds.get(e.kind).on_this_machine:
                    targets.append(resolve_entry(e, env, await start_local(e.local_model_path), cfg.generation,
                                                 cfg.cost.price_as))
                else:
                    targets.append(remote[e.name])
        yield targets, servers


def pricing_model(cfg: RunConfig, env: Mapping[str, str]) -> str:
    """The model a run is priced as, found without any network access."""
    kind = kinds.get(choose_kind(cfg.endpoint, env))
    if cfg.cost.price_as:
        return cfg.cost.price_as
    if kind.on_this_machine:  # the bundled model (or any --endpoint local) is priced at zero, whatever --model says
        return "local"
    return cfg.endpoint.model or kind.default_model(env)


def target_prices(cfg: RunConfig, targets: list[Target]) -> dict[str, Price | None]:
    """Each endpoint's row of the pricing table (None: no row); --max-cost needs them all."""
    table = load_pricing(cfg.cost.pricing) if cfg.cost.max_cost is not None else pricing_if_any(cfg.cost.pricing)
    prices = {t.name: price_for(t.price_as or "?", table) for t in targets}
    missing = [t for t in targets if prices[t.name] is None]
    if cfg.cost.max_cost is not None and missing:
        t = missing[0]
        which = f"endpoint {t.name!r} " if len(targets) > 1 else ""
        raise UserError(f"--max-cost needs the price of {which}{t.price_as!r}: add it to {cfg.cost.pricing}, or say "
                        "which model it is with --price_as (e.g. --price_as gpt-4o-mini)"
                        + (" or the endpoint's own price_as" if len(targets) > 1 else ""))
    return prices


def make_budget(cfg: RunConfig, env: Mapping[str, str], totals: Mapping[str, int] | None = None,
                prices: Mapping[str, Price | None] | None = None) -> Budget:
    """The run's budget: prices from the table, what earlier sessions already spent, the --max-cost cap.

    With several endpoints each request is reserved and charged at its endpoint's price; the
    budget's own price (what earlier sessions' tokens are counted at) is the dearest of them,
    so a restart never counts less than was spent.
    """
    if prices is None:  # the one endpoint of flags and variables
        prices = target_prices(cfg, [Target("default", None, cfg.generation,  # type: ignore[arg-type]
                                            price_as=pricing_model(cfg, env))])
    known = [p for p in prices.values() if p is not None]
    price = max(known, key=lambda p: p.cost(1e6, 1e6), default=None)
    batch = cfg.mode == "batch"
    totals = totals or {}
    spent = estimated = 0.0
    if price is not None:
        estimated = price.cost(totals.get("estimated_prompt_tokens", 0), totals.get("estimated_completion_tokens", 0),
                               batch)
        spent = price.cost(totals.get("prompt_tokens", 0), totals.get("completion_tokens", 0), batch) + estimated
    return Budget(price, cfg.cost.max_cost, spent, batch, estimated)


class Display(Protocol):
    """What shows a run's progress (the CLI's status line): started, then stopped, never in the way."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


DisplayFactory = Callable[[Stats, Callable[[], float], Callable[[], str] | None], Display]


async def run_job(cfg: RunConfig, env: Mapping[str, str], *, retry_errors: bool = False,
                  display: DisplayFactory | None = None, install_signals: bool = True,
                  clock=time.monotonic, sleep=asyncio.sleep, loaded: LoadedDataset | None = None) -> JobResult:
    """Run ``cfg`` to completion (or until stopped); everything settled is on disk when this returns.

    ``loaded`` runs a dataset built in code (``syphus translate``) instead of the plugin ``cfg.name`` names.
    Every query input is checked first (``prepare_inputs``): a bad one is a UserError before the endpoint
    is opened or the run folder touched, and the check's count is the progress line's total.
    ``display(stats, clock, cost_text)`` builds what shows progress (the CLI passes its status line);
    this function itself never prints: it logs to the ``syphus`` logger and returns a JobResult.
    """
    loaded = loaded or load_dataset(cfg)
    folder = run_folder(cfg, loaded.dataset)
    if cfg.mode == "batch" and not pool_entries(cfg) and not kinds.get(choose_kind(cfg.endpoint, env)).batch_api:
        raise UserError("--mode batch needs the OpenAI or Azure OpenAI Batch API; set OPENAI_API_KEY "
                        "(or the Azure variables), or run the local model with --mode online")
    inputs = prepare_inputs(loaded, cfg)
    try:
        return await _run_checked(cfg, env, loaded, folder, inputs, retry_errors, display, install_signals, clock,
                                  sleep)
    finally:
        inputs.check.close()


def write_skipped_empty(folder: Path, check: InputCheck) -> None:
    """``<folder>/skipped_empty.txt``: the ids of the blank items, one a line (no file when there are none)."""
    path = folder / SKIPPED_EMPTY
    if check.empty:
        check.write_blank_ids(path)
    else:
        path.unlink(missing_ok=True)


async def _run_checked(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset, folder: Path, inputs: Inputs,
                       retry_errors: bool, display: DisplayFactory | None, install_signals: bool, clock,
                       sleep) -> JobResult:
    """``run_job`` once the inputs passed their check."""
    items, total, summary = inputs.items, inputs.total, inputs.check.summary()
    async with open_targets(cfg, env) as (targets, servers), \
            contextlib.AsyncExitStack() as images:
        # --images: the image file opened (its index built or checked) before the run folder is touched
        # images counted as the first endpoint's model (the online runner recounts them for each other endpoint),
        # or as the one endpoint a batch run submits to
        first = batch_target(targets, say=False) if cfg.mode == "batch" else targets[0]
        attacher = images.enter_context(make_attacher(cfg, loaded.dataset, first))
        store = RunStore(folder).open()
        try:
            write_skipped_empty(folder, inputs.check)
        except OSError as e:
            store.close()
            raise UserError(f"{folder / SKIPPED_EMPTY}: cannot write the list of blank items ({e})") from e
        for name, size in store.repaired.items():
            log.warning("%s: moved a torn last line (%d bytes) to %s.torn", folder / name, size, name)
        if retry_errors:
            failed = store.failed
            skip = lambda qid: qid not in failed  # noqa: E731
        else:
            skip = store.settled
        try:
            prices = target_prices(cfg, targets)  # each endpoint's row of the table, read once
            budget = make_budget(cfg, env, store.totals, prices)
        except UserError:
            store.close()
            raise
        started_at, t0 = now_iso(), clock()
        described = targets[0].endpoint.describe()
        async with _engine(cfg, loaded, targets, prices, store, budget, skip, clock, sleep, attacher,
                           num_threads=concurrency(cfg, targets, servers)) as runner:
            runner.stats.total = total
            for server in servers:
                server.on_exit = runner.abort
            extra = _status_extra(budget, getattr(runner, "pool", None))
            bar = display(runner.stats, clock, extra) if display is not None else _Quiet()
            store.write_meta(build_meta(cfg, loaded, described, store, runner.stats, RunStatus.RUNNING, started_at, 0.0,
                                        budget, _limiter(runner), summary,
                                        getattr(runner, "structure", None), getattr(runner, "pool", None)))
            bar.start()
            status = RunStatus.INTERRUPTED
            try:
                with _signals(runner) if install_signals else contextlib.nullcontext():
                    status = await runner.run(items)
            finally:
                await bar.stop()
                error = runner.fatal or runner.user_error or getattr(runner, "crash", None) \
                    or next((f for f in (server.failure() for server in servers) if f is not None), None)
                try:
                    store.close()
                    store.write_meta(build_meta(cfg, loaded, described, store, runner.stats,
                                                RunStatus.FAILED if error is not None else status, started_at,
                                                clock() - t0, budget, _limiter(runner), summary,
                                        getattr(runner, "structure", None), getattr(runner, "pool", None)))
                except (OSError, SyphusError) as e:  # a full disk must not hide how the run ended
                    log.error("%s", e)
                    error = error or e
                if error is not None:
                    status = RunStatus.FAILED
    return JobResult(status, folder, dict(store.totals), runner.stats, error, budget, summary)


def _status_extra(budget: Budget, pool: Pool | None) -> Callable[[], str] | None:
    """What the progress line adds: the spend (when priced), for a pool each endpoint's requests and state,
    and what the limiter learnt of the server's token count (``cal json×0.91``) once it has."""
    many = pool is not None and len(pool.members) > 1
    if pool is None and not budget.price:
        return None

    def text() -> str:
        out = f" | ${budget.spent:.4f}" + (f" of ${budget.limit:g}" if budget.limit else "") if budget.price else ""
        if many:
            out += " | " + ", ".join(
                f"{m.name} {m.requests}" + (f" ({m.rate_limited}×429)" if m.rate_limited else "")
                + ("" if m.state == "active" else f" {m.state}") for m in pool.members)
        if pool is not None:
            cal = pool.members[0].limiter.calibration.brief()
            if cal:
                out += " | " + (f"{pool.members[0].name} " if many else "") + cal
        return out
    return text


def _limiter(runner: Any) -> RateLimiter | None:
    """The first endpoint's limiter (meta.json's ``limits``); every endpoint's is under ``endpoints``."""
    pool = getattr(runner, "pool", None)
    return pool.members[0].limiter if pool is not None else None


class _Quiet:
    """No display at all."""

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def make_structure(cfg: RunConfig, kind: str) -> Structure:
    """The run's reply format, as the config asks and the endpoint kind suggests."""
    return Structure(cfg.reply.mode, choose_form(kind, cfg.reply.form))


def concurrency(cfg: RunConfig, targets: list[Target], servers: list[Any]) -> int:
    """Requests in flight at once: ``--num_threads``, or fewer when every endpoint is a local server that
    answers fewer at a time (more would only wait in its queue, their timeouts running)."""
    if not servers or len(servers) != len(targets) or any(s.slots is None for s in servers):
        return cfg.num_threads
    slots = sum(s.slots for s in servers)
    if slots < cfg.num_threads:
        log.info("the local model server answers %d request%s at a time: %d in flight, not --num_threads %d",
                 slots, "s" * (slots != 1), slots, cfg.num_threads)
    return min(cfg.num_threads, slots)


@contextlib.asynccontextmanager
async def _engine(cfg: RunConfig, loaded: LoadedDataset, targets: list[Target], prices: Mapping[str, Price | None],
                  store: RunStore, budget: Budget, skip, clock, sleep, attacher: Any = None,
                  num_threads: int | None = None):
    """The online worker pool over every endpoint, or the Batch API runner (``--mode batch``: one endpoint)."""
    async with contextlib.AsyncExitStack() as stack:
        if cfg.mode == "batch":
            from syphus.engine.batch import BatchAPI, BatchRunner
            target = batch_target(targets)
            structure = make_structure(cfg, target.endpoint.kind)
            api = await stack.enter_async_context(BatchAPI(target.endpoint, timeout=max(cfg.endpoint.timeout, 300.0)))
            yield BatchRunner(loaded.dataset, api, store, cfg, budget, skip=skip, sleep=sleep, clock=clock,
                              structure=structure, endpoint_name=target.name, attacher=attacher)
            return
        structure = Structures(cfg.reply.mode, {t.name: choose_form(t.endpoint.kind, cfg.reply.form) for t in targets})
        members = []
        for t in targets:
            limiter = RateLimiter(t.rpm, t.tpm, cfg.limits.burst_seconds, cfg.limits.follow_headers, clock=clock,
                                  sleep=sleep, max_wait=cfg.retry.max_seconds)
            timeout = t.timeout or cfg.endpoint.timeout
            pace = None
            if kinds.get(t.endpoint.kind).on_this_machine:  # its timeout follows its measured speed
                from syphus.engine.local import Pace
                pace = Pace(timeout, completion_budget({"max_tokens": t.generation.max_tokens or
                                                        cfg.generation.max_tokens, **t.generation.extra}))
            client = await stack.enter_async_context(ChatClient(
                t.endpoint, t.generation, timeout=timeout, connections=cfg.num_threads,
                on_headers=limiter.observe, clock=clock, pace=pace))
            members.append(Member(t.name, client, limiter, t.weight, prices.get(t.name), model=counted_as(t),
                                  describe_endpoint=t.endpoint.describe(), key_env=t.key_env))
        r = cfg.retry
        pool = Pool(members, cool_after=r.cool_after, cool_seconds=r.cool_seconds,
                    cool_max_seconds=r.cool_max_seconds, clock=clock, sleep=sleep)
        yield Runner(loaded.dataset, pool, store, num_threads=num_threads or cfg.num_threads, retry=cfg.retry,
                     drain_timeout=cfg.drain_timeout if cfg.drain_timeout is not None else
                     max(t.timeout or cfg.endpoint.timeout for t in targets) + 5.0, skip=skip, source=loaded.source, budget=budget,
                     structure=structure, attacher=attacher, max_endpoint_failures=r.max_endpoint_failures,
                     clock=clock, sleep=sleep, repairs=cfg.reply.repairs)


def counted_as(target: Target) -> str:
    """The model an endpoint's tokens (its images' too) are counted as: its price row's, else its own."""
    return target.price_as or (target.endpoint.model if target.endpoint is not None else None) or "?"


def make_attacher(cfg: RunConfig, dataset: AbstractDataset, target: Target) -> contextlib.AbstractContextManager:
    """``--images``: what finds and counts each query's images (their tokens as ``target``'s model unless the
    endpoint that takes a request counts them otherwise, ``Attacher.tokens_as``); else nothing."""
    if not cfg.images.path:
        return contextlib.nullcontext(None)
    from syphus.engine.attachment import Attacher
    return Attacher(cfg.images, counted_as(target), getattr(dataset, "scene", None))


def batch_target(targets: list[Target], say: bool = True) -> Target:
    """The endpoint a batch run submits to: the first that has the Batch API (OpenAI or Azure)."""
    for t in targets:
        if kinds.get(t.endpoint.kind).batch_api:
            if len(targets) > 1 and say:
                log.info("--mode batch: the batches go to endpoint %s (the Batch API runs on one endpoint; "
                         "pick another with --endpoint NAME)", t.name)
            return t
    raise UserError("--mode batch needs an OpenAI or Azure OpenAI endpoint with the Batch API; none of the "
                    "endpoints chosen has one")


def reparse(cfg: RunConfig) -> tuple[Path, dict[str, int]]:
    """Re-parse a run's raw replies with the dataset's current parser; no request is sent."""
    loaded = load_dataset(cfg)
    folder = run_folder(cfg, loaded.dataset)
    if not (folder / PAIRS).exists() and not (folder / INVALID).exists():
        raise UserError(f"{folder}: no finished run to re-parse here (no {PAIRS} or {INVALID}); "
                        "check --name, --dataset_version and --output_dir")
    dataset = loaded.dataset

    def transform(rec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        out = {k: v for k, v in rec.items() if k != "reason"}
        query_input = {**(rec.get("meta") or {}), "id": rec["id"]}
        out.update(parse_fields(dataset, query_input, rec.get("raw"), rec.get("finish_reason"),
                                rec.get("reply_format") or "text"))
        return out, bool(out["pairs"])

    with RunStore(folder) as store:
        counts = store.rewrite(transform)
        meta_path = folder / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            meta["counts"] = dict(store.totals)
            meta["reparsed_at"] = now_iso()
            store.write_meta(meta)
    return folder, counts


def dry_run(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset | None = None) -> dict[str, Any]:
    """What the run would cost and take, from its prompts; nothing is sent and nothing is written.

    Prompts are built for the first ``cost.dry_run_sample`` queries not yet settled; the
    rest are counted. Completion tokens are the average of replies already received in
    the run folder when there are any, else ``max_tokens`` (the worst case).
    """
    loaded = loaded or load_dataset(cfg)
    inputs = prepare_inputs(loaded, cfg)
    try:
        return _dry_run_checked(cfg, env, loaded, inputs)
    finally:
        inputs.check.close()


@dataclass
class _Planned:
    """One endpoint as a dry run sees it, from the config alone (no key read, no server started)."""

    name: str
    kind: str
    model: str  # what its tokens, its images and its price are counted as
    completion: int  # the most completion tokens a request can be billed for (max_tokens times n)
    rpm: float | None
    tpm: float | None
    weight: float = 1.0


def planned_endpoints(cfg: RunConfig, env: Mapping[str, str]) -> list[_Planned]:
    """The endpoints a run would send to: the pool's (``endpoints:``, ``--endpoint``), else the one of flags."""
    entries = pool_entries(cfg)
    if not entries:
        return [_Planned("default", choose_kind(cfg.endpoint, env), pricing_model(cfg, env),
                         completion_budget({"max_tokens": cfg.generation.max_tokens, **cfg.generation.extra}),
                         cfg.limits.rpm, cfg.limits.tpm)]
    out = []
    for e in entries:
        gen = e.generation.over(cfg.generation)
        model = e.price_as or cfg.cost.price_as or e.model or kinds.get(e.kind).default_model({})
        out.append(_Planned(e.name, e.kind, model, completion_budget({"max_tokens": gen.max_tokens, **gen.extra}),
                            e.rpm, e.tpm, e.weight))
    return out


def _pairs_asked(dataset: Any) -> dict[str, Any]:
    """``{"pairs_asked": [fewest, most] or None}`` when the default reply model counts the pairs from the
    system message; {} when the plugin decides the reply's shape itself."""
    if getattr(dataset, "reply_model", None) is not None or not hasattr(dataset, "requested_pairs"):
        return {}
    if type(dataset).reply_model_for is not AbstractDataset.reply_model_for:
        return {}
    count = dataset.requested_pairs()
    return {"pairs_asked": list(count) if count else None}


def _dry_run_checked(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset, inputs: Inputs) -> dict[str, Any]:
    """``dry_run`` once the inputs passed their check.

    Every figure is in the terms of the endpoint that would take the request: its schema form,
    its model's count of the images, its completion budget and its price. A pool's queries are
    shared as routing shares them (by capacity when every endpoint has limits, else by weight);
    its projection is each endpoint's share at its own price, summed.
    """
    items = inputs.items
    folder = run_folder(cfg, loaded.dataset)
    store = RunStore(folder)
    if folder.exists():
        store.scan(read_only=True)
    planned = planned_endpoints(cfg, env)
    forms = {p.name: choose_form(p.kind, cfg.reply.form) for p in planned}
    structures = {form: Structure(cfg.reply.mode, form) for form in set(forms.values())}
    fmt = next(iter(structures.values())).current()  # what the run asks for unless an endpoint refuses the schema
    n = sampled = images = missing = 0
    text_sum = dict.fromkeys(structures, 0)  # per schema form: text + schema tokens of the sampled prompts
    image_sum = {p.model: 0 for p in planned}  # per model: the sampled images' tokens as it counts them
    target = Target("default", None, cfg.generation, price_as=planned[0].model)  # type: ignore[arg-type]
    with make_attacher(cfg, loaded.dataset, target) as attacher:
        for item in items:
            if store.settled(item["id"]):
                continue
            n += 1
            if sampled < cfg.cost.dry_run_sample:
                for form, structure in structures.items():
                    try:
                        req = structure.request(loaded.dataset, item, fmt)
                    except Exception as e:
                        raise UserError(f"{loaded.source}: build_messages raised {type(e).__name__}: {e} "
                                        f"(query {item['id']!r})") from e
                    text_sum[form] += estimate_tokens(req.messages) + req.schema_tokens
                if attacher is not None:
                    try:
                        frames, lacking = attacher.frames(item)
                    except ItemError:
                        frames, lacking = [], [None]
                    images += len(frames)
                    for model in image_sum:
                        image_sum[model] += attacher.tokens_as(model, frames)
                    missing += bool(lacking)
                sampled += 1
    answered = store.totals.get("queries_with_pairs", 0) + store.totals.get("invalid", 0)
    observed = store.totals.get("completion_tokens", 0) / answered if answered else None
    table = pricing_if_any(cfg.cost.pricing)
    each = []
    for p in planned:
        text = text_sum[forms[p.name]] / sampled if sampled else 0.0
        image = image_sum[p.model] / sampled if sampled else 0.0
        completion = observed if observed is not None else float(p.completion)
        rates = [p.rpm] if p.rpm else []
        if p.tpm and text + image + p.completion > 0:
            rates.append(p.tpm / (text + image + p.completion))
        each.append({"name": p.name, "model": p.model, "text": text, "image": image, "completion": completion,
                     "worst": p.completion, "rate": round(min(rates), 1) if rates else None, "weight": p.weight,
                     "price": price_for(p.model, table), "kind": p.kind})
    unknown = [e["name"] for e in each if e["rate"] is None]
    basis = [e["weight"] for e in each] if unknown else [e["rate"] for e in each]  # how routing shares queries
    for e, b in zip(each, basis):
        e["share"] = b / sum(basis) if sum(basis) else 1.0 / len(each)

    def mean(key: str) -> float:
        return sum(e[key] * e["share"] for e in each)

    avg_images, avg_prompt, completion = mean("image"), mean("text") + mean("image"), mean("completion")
    max_tokens = mean("worst")
    report: dict[str, Any] = {
        "dataset": loaded.source, "folder": str(folder), "queries": n, "sampled": sampled,
        "already_settled": len(store.answered) + len(store.settled_errors),
        "model": planned[0].model if len(planned) == 1 else ", ".join(p.model for p in planned),
        "prompt_tokens_per_query": round(avg_prompt, 1), "completion_tokens_per_query": round(completion, 1),
        "completion_basis": "observed in this run folder" if observed is not None else "max_tokens (worst case)",
        "prompt_tokens": round(avg_prompt * n), "completion_tokens": round(completion * n),
        "worst_case_completion_tokens": round(max_tokens * n), "inputs": inputs.check.summary(),
        "reply_format": fmt,
        **_pairs_asked(loaded.dataset),
        "schema_form": (", ".join(sorted(set(forms.values()))) if fmt == "json" else None),
        **({"images_per_query": round(images / sampled, 2) if sampled else 0.0,
            "image_tokens_per_query": round(avg_images, 1), "text_tokens_per_query": round(avg_prompt - avg_images, 1),
            "queries_missing_images": missing,
            "image_tokens_as": planned[0].model if len(planned) == 1 else "each endpoint's model"}
           if cfg.images.path else {}),
    }
    if all(e["price"] is not None for e in each):
        for mode, batch in (("online", False), ("batch", True)):
            if batch and len(each) > 1:  # the Batch API runs on one endpoint (batch_target): all of it there
                there = next((e for e in each if kinds.get(e["kind"]).batch_api), None)
                if there is None:
                    continue
                costs = [(there, 1.0)]
                report["batch_endpoint"] = there["name"]
            else:
                costs = [(e, e["share"]) for e in each]
            report[f"cost_{mode}_usd"] = round(sum(e["price"].cost((e["text"] + e["image"]) * n * share,
                                                                   e["completion"] * n * share, batch)
                                                   for e, share in costs), 4)
            report[f"worst_cost_{mode}_usd"] = round(sum(e["price"].cost((e["text"] + e["image"]) * n * share,
                                                                         e["worst"] * n * share, batch)
                                                         for e, share in costs), 4)
    if len(each) > 1:
        report["endpoints"] = [
            {"name": e["name"], "model": e["model"], "queries": round(n * e["share"]),
             "prompt_tokens_per_query": round(e["text"] + e["image"], 1),
             **({"image_tokens_per_query": round(e["image"], 1)} if cfg.images.path else {}),
             "cost_online_usd": round(e["price"].cost((e["text"] + e["image"]) * n * e["share"],
                                                      e["completion"] * n * e["share"]), 4) if e["price"] else None,
             "worst_cost_online_usd": round(e["price"].cost((e["text"] + e["image"]) * n * e["share"],
                                                            e["worst"] * n * e["share"]), 4) if e["price"] else None}
            for e in each]
        report["unpriced"] = [e["model"] for e in each if e["price"] is None]
    # the pool's capacity: each endpoint's requests a minute at its limits, summed
    per_endpoint = {e["name"]: e["rate"] for e in each}
    if len(each) > 1:
        report["endpoints_requests_per_minute"] = per_endpoint
    if not unknown:
        per_minute = sum(per_endpoint.values())
        report["requests_per_minute"] = round(per_minute, 1)
        report["wall_minutes_online"] = round(n / per_minute, 1) if per_minute else None
    elif len(each) > 1:
        report["endpoints_without_limits"] = unknown
    return report


def batch_endpoint(cfg: RunConfig, env: Mapping[str, str]) -> Target:
    """The endpoint a batch run submits to, resolved without starting anything: a pool's first endpoint with
    the Batch API (``batch_target``), else the one of flags and variables (a UserError when it is local)."""
    entries = pool_entries(cfg)
    if entries:
        return batch_target([resolve_entry(e, env, generation=cfg.generation) for e in entries
                             if not kinds.get(e.kind).on_this_machine])
    if not kinds.get(choose_kind(cfg.endpoint, env)).batch_api:
        raise UserError("--mode batch needs the OpenAI or Azure OpenAI Batch API; set OPENAI_API_KEY "
                        "(or the Azure variables), or run the local model with --mode online")
    return Target("default", resolve_endpoint(cfg.endpoint, env), cfg.generation)


async def batch_status(cfg: RunConfig, env: Mapping[str, str], refresh: bool = True) -> list[str]:
    """Every batch of the run with its progress, polled once when ``refresh`` (one try each, within the
    endpoint timeout). When the Batch API cannot be reached (or no endpoint resolves), the state recorded
    in the run folder is shown with a last line that says so."""
    from syphus.engine.batch import BatchAPI, BatchState

    loaded = load_dataset(cfg)
    folder = run_folder(cfg, loaded.dataset) / "batch"
    if not (folder / "state.jsonl").exists():
        raise UserError(f"{folder}: no batches here yet; start them with --mode batch")
    state = BatchState(folder, read_only=True)
    problem = None
    pending = [c for c in state.open_chunks() if c.submitted and not c.finished]
    if refresh and pending:
        try:
            target = batch_endpoint(cfg, env)
            async with BatchAPI(target.endpoint, timeout=target.timeout or cfg.endpoint.timeout) as api:
                for c in pending:
                    b = await api.retrieve(c.batch_id)
                    c.status, c.counts = b.get("status"), b.get("request_counts") or {}
        except SyphusError as e:
            problem = e
    rows = state.describe()
    if problem is not None:
        rows.append(f"could not refresh from the Batch API ({problem}); the rows above are the state recorded "
                    f"in {state.path}")
    return rows
