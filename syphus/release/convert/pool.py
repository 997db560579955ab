"""Pool: runs a stream of encoding tasks on worker processes, at most 4 x workers in flight.

With one worker the tasks run in this process. Each result is handed to ``collect`` in this
process as its task finishes; while it waits, ``heartbeat`` is called at least every
``wake_every`` seconds. On Ctrl-C (KeyboardInterrupt here; the workers ignore SIGINT) no
further task starts, running ones finish, and the interrupt goes on to the caller: what
finished is in the parts file, ready to resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, NamedTuple

from syphus.release.convert import worker

WINDOW = 4        # tasks in flight per worker
WAKE_EVERY = 5.0  # seconds between heartbeats while waiting


class Task(NamedTuple):
    """``fn(*args)``, a module-level worker function; finishing it finishes ``inputs`` inputs."""

    inputs: int
    fn: Callable[..., worker.Result]
    args: tuple[Any, ...]


def run(tasks: Iterable[Task], *, workers: int, parts_file: str, encoder: Callable,
        collect: Callable[[worker.Result, int], None], heartbeat: Callable[[], None] = lambda: None,
        wake_every: float = WAKE_EVERY) -> None:
    """Run every task (see the module docstring)."""
    if workers == 1:
        worker.init(parts_file, encoder, ignore_sigint=False)
        try:
            for task in tasks:
                collect(task.fn(*task.args), task.inputs)
        finally:
            worker.close()
        return
    pool = ProcessPoolExecutor(workers, initializer=worker.init, initargs=(parts_file, encoder, True))
    pending: dict[Future, int] = {}

    def drain() -> None:
        finished, _ = wait(pending, timeout=wake_every, return_when=FIRST_COMPLETED)
        for future in finished:
            collect(future.result(), pending.pop(future))
        heartbeat()

    try:
        for task in tasks:
            while len(pending) >= WINDOW * workers:
                drain()
            pending[pool.submit(task.fn, *task.args)] = task.inputs
        while pending:
            drain()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
