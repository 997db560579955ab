"""A warm fork server for crash tests: children that start in a fraction of an interpreter start.

An interpreter with syphus's third-party imports (aiohttp, pydantic, openai, ...) warm and syphus
itself dropped again forks one child per job. The child runs ``tests.crashpoint.main`` with the job's
argv, so crashpoint wraps ``os`` before syphus is imported, exactly as ``python -m tests.crashpoint``
does (``RunStore(write=os.write)`` binds the wrapper). With no specs the child is a plain CLI run.
syphus's compiled code is kept in memory (keyed by file, mtime and size, so an edit is picked up), as
the environment writes no .pyc. The server reports the child's wait status; a child over its timeout
is killed and reported as a hang. The child still dies by a real SIGKILL at its crash point.

Used by tests/test_crash.py (online runs) and tests/test_batch.py (batch runs).
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import sys
from pathlib import Path

from tests.conftest import KEY, ROOT

CHILD_TIMEOUT = 60.0  # a child that outlives this is a hang

# imported once by each server, then dropped (syphus) or kept warm (their third-party imports)
WARM = ("syphus.cli", "syphus.engine.job", "syphus.engine.client", "syphus.engine.runner", "syphus.engine.store",
        "syphus.dataset", "abstract_dataset")

ZYGOTE = r"""
import importlib, importlib.machinery, json, os, signal, sys, threading

_compiled, _get_code = {}, importlib.machinery.SourceFileLoader.get_code

def get_code(self, fullname):
    st = os.stat(self.path)
    key = (self.path, st.st_mtime_ns, st.st_size)
    if key not in _compiled:
        _compiled[key] = _get_code(self, fullname)
    return _compiled[key]

importlib.machinery.SourceFileLoader.get_code = get_code
for name in sys.argv[1:]:  # the modules to warm
    importlib.import_module(name)
for name in [m for m in sys.modules if m in ("syphus", "abstract_dataset") or m.startswith("syphus.")]:
    del sys.modules[name]
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            sys.argv = ["tests/crashpoint.py", *job["specs"], "--", *job["argv"]]
            import tests.crashpoint
            code = tests.crashpoint.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    # a child over its timeout is killed by a timer; it is reaped only after the timer is off, so the
    # timer can never hit a pid the kernel has given to another process
    lock, state = threading.Lock(), {"exited": False, "hang": False}

    def overdue(pid=pid):
        with lock:
            if not state["exited"]:
                state["hang"] = True
                os.kill(pid, signal.SIGKILL)

    timer = threading.Timer(job["timeout"], overdue)
    timer.start()
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    with lock:
        state["exited"] = True
    timer.cancel()
    timer.join()
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status), "hang": state["hang"]}) + "\n")
    sys.stdout.flush()
"""


def child_env(counts: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "OPENAI_API_KEY": KEY,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    env.pop("CRASHPOINT_COUNTS", None)
    if counts is not None:
        env["CRASHPOINT_COUNTS"] = str(counts)
    return env


class Forks:
    """``n`` fork servers warmed with ``warm``; ``run`` takes an idle one, so up to ``n`` children run at once."""

    def __init__(self, n: int, warm: tuple[str, ...] = WARM):
        env = {k: v for k, v in child_env().items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
        self._servers = [subprocess.Popen([sys.executable, "-c", ZYGOTE, *warm], cwd=ROOT, env=env,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                         for _ in range(n)]
        self._idle: queue.Queue = queue.Queue()
        for srv in self._servers:
            self._idle.put(srv)
        self._jobs = itertools.count()

    def run(self, cwd: Path, specs: list[str], argv: list[str], counts: Path | None = None,
            timeout: float = CHILD_TIMEOUT) -> subprocess.CompletedProcess:
        """The CLI with ``argv`` in a child dying at ``specs``: its exit code (-9: SIGKILL; "HANG") and output."""
        log = cwd / "childlogs" / f"{next(self._jobs)}.log"
        log.parent.mkdir(exist_ok=True)
        job = {"cwd": str(cwd), "env": child_env(counts), "specs": specs, "argv": argv, "log": str(log),
               "timeout": timeout}
        srv = self._idle.get()
        try:
            srv.stdin.write(json.dumps(job) + "\n")
            srv.stdin.flush()
            line = srv.stdout.readline()
        finally:
            self._idle.put(srv)
        assert line, f"the fork server died (exit {srv.poll()})"
        reply = json.loads(line)
        output = log.read_text(errors="replace") if log.exists() else ""
        if reply["hang"]:  # reported through the exit code, so the case's own assertion names it
            return subprocess.CompletedProcess(argv, "HANG", "", f"HANG: still running after {timeout}s, "
                                                                 f"killed\n{output}")
        return subprocess.CompletedProcess(argv, reply["returncode"], "", output)

    def close(self) -> None:
        for srv in self._servers:
            srv.stdin.close()
        for srv in self._servers:
            try:
                srv.wait(timeout=10)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()
            srv.stdout.close()
