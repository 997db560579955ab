"""Job: one run, wired end to end. ``run_job`` checks the inputs, opens the planned endpoints, builds the
run's context once (``syphus.engine.context``) and runs the online worker pool or the Batch API runner on it.

>>> result = asyncio.run(run_job(load_config(None, {"name": "Example.example"}), os.environ))  # doctest: +SKIP
>>> result.status, result.folder                                                              # doctest: +SKIP
('complete', PosixPath('output/Example/v1'))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from syphus import kinds
from syphus.config import RunConfig
from syphus.engine.client import ChatClient, completion_budget
from syphus.engine.context import RunContext
from syphus.engine.cost import Budget
from syphus.engine.endpoint import Target
from syphus.engine.limits import RateLimiter
from syphus.engine.meta import build_meta
from syphus.engine.plan import batch_target, check_batch, counted_as, open_targets
from syphus.engine.pool import Member, Pool
from syphus.engine.pricing import make_budget, target_prices
from syphus.engine.record import now_iso
from syphus.engine.runner import Runner
from syphus.engine.stats import RunStatus, Stats
from syphus.engine.store import RunStore
from syphus.engine.structure import Structure, Structures, choose_form
from syphus.engine.workload import (Inputs, LoadedDataset, load_dataset, make_attacher, prepare_inputs, run_folder,
                                    write_skipped_empty)
from syphus.errors import SyphusError, UserError
from syphus.inputs import SKIPPED_EMPTY

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
    check_batch(cfg, env)
    inputs = prepare_inputs(loaded, cfg)
    try:
        return await _run_checked(cfg, env, loaded, folder, inputs, retry_errors, display, install_signals, clock,
                                  sleep)
    finally:
        inputs.check.close()


async def _run_checked(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset, folder: Path, inputs: Inputs,
                       retry_errors: bool, display: DisplayFactory | None, install_signals: bool, clock,
                       sleep) -> JobResult:
    """``run_job`` once the inputs passed their check: the context built, the run run, meta.json written."""
    async with open_targets(cfg, env) as (targets, servers), \
            contextlib.AsyncExitStack() as images:
        # --images: the image file opened (its index built or checked) before the run folder is touched
        # images counted as the first endpoint's model (the online runner recounts them for each other endpoint),
        # or as the one endpoint a batch run submits to
        first = batch_target(targets, say=False) if cfg.mode == "batch" else targets[0]
        attacher = images.enter_context(make_attacher(cfg, loaded.dataset, counted_as(first)))
        store = RunStore(folder).open()
        try:
            run = _context(cfg, env, loaded, inputs, store, targets, servers, attacher, retry_errors, clock, sleep)
        except BaseException:
            store.close()
            raise
        async with _engine(run, num_threads=concurrency(cfg, targets, servers)) as runner:
            return await _drive(run, runner, display, install_signals)


def _context(cfg: RunConfig, env: Mapping[str, str], loaded: LoadedDataset, inputs: Inputs, store: RunStore,
             targets: list[Target], servers: list[Any], attacher: Any, retry_errors: bool, clock,
             sleep) -> RunContext:
    """The run's context, once its store is open: the blank ids listed, a torn last line said, which ids to
    skip, each endpoint's price and the budget (a UserError when --max-cost cannot price one)."""
    folder = store.folder
    try:
        write_skipped_empty(folder, inputs.check)
    except OSError as e:
        raise UserError(f"{folder / SKIPPED_EMPTY}: cannot write the list of blank items ({e})") from e
    for name, size in store.repaired.items():
        log.warning("%s: moved a torn last line (%d bytes) to %s.torn", folder / name, size, name)
    if retry_errors:
        failed = store.failed
        skip = lambda qid: qid not in failed  # noqa: E731
    else:
        skip = store.settled
    prices = target_prices(cfg, targets)  # each endpoint's row of the table, read once
    budget = make_budget(cfg, env, store.totals, prices)
    return RunContext(cfg, loaded, inputs, store, targets, servers, prices, budget, attacher, skip, clock,
                      sleep, summary=inputs.check.summary())


async def _drive(run: RunContext, runner: Any, display: DisplayFactory | None, install_signals: bool) -> JobResult:
    """Run ``runner`` over the inputs with the progress line and the signal handlers; meta.json before and after."""
    store, clock = run.store, run.clock
    runner.stats.total = run.inputs.total
    for server in run.servers:
        server.on_exit = runner.abort
    extra = _status_extra(run.budget, getattr(runner, "pool", None))
    bar = display(runner.stats, clock, extra) if display is not None else _Quiet()
    run.started_at, t0 = now_iso(), clock()
    store.write_meta(build_meta(run, runner, RunStatus.RUNNING, 0.0))
    bar.start()
    status = RunStatus.INTERRUPTED
    try:
        with _signals(runner) if install_signals else contextlib.nullcontext():
            status = await runner.run(run.inputs.items)
    finally:
        await bar.stop()
        error = runner.fatal or runner.user_error or getattr(runner, "crash", None) \
            or next((f for f in (server.failure() for server in run.servers) if f is not None), None)
        try:
            store.close()
            store.write_meta(build_meta(run, runner, RunStatus.FAILED if error is not None else status,
                                        clock() - t0))
        except (OSError, SyphusError) as e:  # a full disk must not hide how the run ended
            log.error("%s", e)
            error = error or e
        if error is not None:
            status = RunStatus.FAILED
    return JobResult(status, store.folder, dict(store.totals), runner.stats, error, run.budget, run.summary)


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
async def _engine(run: RunContext, num_threads: int | None = None):
    """The online worker pool over every endpoint, or the Batch API runner (``--mode batch``: one endpoint)."""
    cfg, loaded, clock, sleep = run.cfg, run.loaded, run.clock, run.sleep
    async with contextlib.AsyncExitStack() as stack:
        if cfg.mode == "batch":
            from syphus.engine.batch import BatchAPI, BatchRunner
            target = batch_target(run.targets)
            structure = make_structure(cfg, target.endpoint.kind)
            api = await stack.enter_async_context(BatchAPI(target.endpoint, timeout=max(cfg.endpoint.timeout, 300.0)))
            yield BatchRunner(loaded.dataset, api, run.store, cfg, run.budget, skip=run.skip, sleep=sleep, clock=clock,
                              structure=structure, endpoint_name=target.name, attacher=run.attacher)
            return
        structure = Structures(cfg.reply.mode,
                               {t.name: choose_form(t.endpoint.kind, cfg.reply.form) for t in run.targets})
        members = [await _member(stack, run, t) for t in run.targets]
        r = cfg.retry
        pool = Pool(members, cool_after=r.cool_after, cool_seconds=r.cool_seconds,
                    cool_max_seconds=r.cool_max_seconds, clock=clock, sleep=sleep)
        drain = cfg.drain_timeout if cfg.drain_timeout is not None else \
            max(t.timeout or cfg.endpoint.timeout for t in run.targets) + 5.0
        yield Runner(loaded.dataset, pool, run.store, num_threads=num_threads or cfg.num_threads, retry=cfg.retry,
                     drain_timeout=drain, skip=run.skip, source=loaded.source, budget=run.budget,
                     structure=structure, attacher=run.attacher, max_endpoint_failures=r.max_endpoint_failures,
                     clock=clock, sleep=sleep, repairs=cfg.reply.repairs)


async def _member(stack: contextlib.AsyncExitStack, run: RunContext, t: Target) -> Member:
    """One endpoint of the pool: its limiter, and its client open for the run."""
    cfg = run.cfg
    limiter = RateLimiter(t.rpm, t.tpm, cfg.limits.burst_seconds, cfg.limits.follow_headers, clock=run.clock,
                          sleep=run.sleep, max_wait=cfg.retry.max_seconds)
    timeout = t.timeout or cfg.endpoint.timeout
    pace = None
    if kinds.get(t.endpoint.kind).on_this_machine:  # its timeout follows its measured speed
        from syphus.engine.local import Pace
        pace = Pace(timeout, completion_budget({"max_tokens": t.generation.max_tokens or
                                                cfg.generation.max_tokens, **t.generation.extra}))
    client = await stack.enter_async_context(ChatClient(
        t.endpoint, t.generation, timeout=timeout, connections=cfg.num_threads,
        on_headers=limiter.observe, clock=run.clock, pace=pace))
    return Member(t.name, client, limiter, t.weight, run.prices.get(t.name), model=counted_as(t),
                  describe_endpoint=t.endpoint.describe(), key_env=t.key_env)
