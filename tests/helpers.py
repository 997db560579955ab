"""Test helpers: a small plugin written into a temp project, readers for run folders, a child's output
read as it comes, a clock that moves only when the test moves it, an event loop whose clock the test
moves (so a client's timeout fires without waiting it out), and a fake translator whose output
a language identifier takes for the language asked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import zlib
from pathlib import Path
from typing import IO

PLUGIN = '''
from abstract_dataset import AbstractDataset


class Numbers(AbstractDataset):
    def __init__(self, name="Numbers", prompt_path="prompts/numbers.json", query_inputs_path="{n}"):
        super().__init__(name, prompt_path, query_inputs_path)

    def _load_query_inputs(self, path):
        for i in range(int(path)):
            yield {{"id": f"q{{i:05d}}", "sentences": f"<<q{{i:05d}}>> a red ball on a table number {{i}}"}}
'''

PROMPT = {
    "system_message": "Write questions and answers.",
    "in_context": [
        {"role": "user", "content": "a cat"},
        {"role": "assistant", "content": [{"Question": "What animal?", "Answer": "A cat."}]},
    ],
}


def make_numbers(root: Path, n: int) -> None:
    """datasets/numbers.py yielding ``n`` queries whose text carries their id as ``<<qNNNNN>>``."""
    (root / "datasets").mkdir(exist_ok=True)
    (root / "prompts").mkdir(exist_ok=True)
    (root / "datasets" / "numbers.py").write_text(PLUGIN.format(n=n))
    (root / "prompts" / "numbers.json").write_text(json.dumps(PROMPT))


_ID = re.compile(r"<<(q\d{5})>>")


def query_id(body: dict) -> str:
    """The query id a request body was sent for."""
    for message in reversed(body["messages"]):  # a repair request ends in its own user turn: look further back
        found = _ID.search(message["content"]) if isinstance(message.get("content"), str) else None
        if found:
            return found.group(1)
    raise ValueError("no query id in the request")


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def settled(folder: Path) -> dict[str, list[str]]:
    """{file: [ids]} for pairs, invalid and errors."""
    return {name: [r["id"] for r in lines(folder / f"{name}.jsonl")] for name in ("pairs", "invalid", "errors")}


class Output:
    """A child process's output, read line by line on a thread as it is written.

    ``wait_for(text)`` returns once a line holds ``text`` (True), or the output ended
    or ``timeout`` passed without one (False); ``text()`` is everything, once the child
    closed it.
    """

    def __init__(self, stream: IO[str]):
        self._lines: list[str] = []
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), name="child-output", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._closed = True
                self._changed.notify_all()

    def _has(self, text: str) -> bool:
        return any(text in line for line in self._lines)

    def wait_for(self, text: str, timeout: float = 30.0) -> bool:
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._has(text), timeout)
            return self._has(text)

    def text(self, timeout: float = 30.0) -> str:
        self._thread.join(timeout)
        with self._changed:
            return "".join(self._lines)


class ManualClock:
    """``clock=`` and ``sleep=`` for the engine, on a time that moves only when the test moves it.

    A sleeper waits until ``advance`` takes the time to its deadline; ``asleep(n)`` waits
    (on the loop) until ``n`` coroutines sleep on the clock at once, so a test can look at
    a paused engine and then let it go. Free-running (``free=True``, or after ``run_free()``)
    every sleep returns at once, moving the time by its delay and ``overshoot`` (a real sleep
    always overshoots a little); more than ``max_sleeps`` sleeps is an AssertionError (the code
    under test would hang). The suite's one fake clock: ``clock=`` for anything that reads time.
    """

    def __init__(self, start: float = 1000.0, *, free: bool = False, overshoot: float = 0.0,
                 max_sleeps: int | None = None):
        self.now = start
        self.free = free
        self.overshoot = overshoot
        self.max_sleeps = max_sleeps
        self.slept: list[float] = []  # every delay asked for, in order
        self._sleepers: list[tuple[float, asyncio.Future]] = []
        self._changed = asyncio.Event()

    def clock(self) -> float:
        return self.now

    @property
    def total(self) -> float:
        """Every delay asked for, added up."""
        return sum(self.slept)

    async def sleep(self, delay: float) -> None:
        self.slept.append(delay)
        if self.max_sleeps is not None and len(self.slept) > self.max_sleeps:
            raise AssertionError("it keeps sleeping: it would hang")
        if self.free or delay <= 0:
            self.now += max(0.0, delay) + (self.overshoot if delay > 0 else 0.0)
            await asyncio.sleep(0)
            return
        entry = (self.now + delay, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        self._changed.set()
        try:
            await entry[1]
        finally:
            if entry in self._sleepers:
                self._sleepers.remove(entry)

    @property
    def sleeping(self) -> int:
        return sum(1 for _, fut in self._sleepers if not fut.done())

    async def asleep(self, n: int, timeout: float = 10.0) -> None:
        """Return once ``n`` coroutines sleep on the clock; TimeoutError after ``timeout`` (real) seconds."""
        async def until() -> None:
            while self.sleeping < n:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)

    def advance(self, seconds: float) -> None:
        """Move the time on and wake every sleeper whose deadline it reached."""
        self.now += seconds
        for deadline, fut in self._sleepers:
            if deadline <= self.now + 1e-9 and not fut.done():
                fut.set_result(None)

    def run_free(self) -> None:
        """Wake every sleeper (the time jumps to the latest deadline); later sleeps return at once."""
        self.free = True
        if self._sleepers:
            self.now = max(self.now, max(deadline for deadline, _ in self._sleepers))
        self.advance(0.0)


def sigkill_when(proc, ready, gate, why: str = "") -> None:
    """SIGKILL the child ``proc`` once ``ready()`` holds (the test's server has what it waits for), then let
    every reply held on ``gate`` go and reap the child: no kill is left pending, whatever failed."""
    import signal
    try:
        assert ready(), why or "the child never reached the point to kill it at"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        gate.open()
        proc.kill()
        proc.communicate()


# Words of each language a fake translation is made of: English words map to them one by one (by a
# stable hash), so a "translation" is a word salad that reads as its language to an identifier.
_WORDS = {
    "de": "der die das und ist nicht mit dem den ein eine einen auf für sich auch noch nach wird über "
          "unter zwischen Hund Mann Frau Straße schön sehr hält zwei drei Regenschirm fährt steht".split(),
    "es": "el la los las que de en un una por con para está están hay perro hombre mujer calle muy "
          "tiene lleva sobre entre junto dos tres paraguas rojo verde".split(),
    "fr": "le la les des une un est sont dans avec pour sur chien homme femme rue très tient porte "
          "entre près deux trois parapluie rouge vert il elle qui".split(),
    "it": "il lo gli della che sono nella con per sulla cane uomo donna strada molto tiene porta "
          "vicino due tre ombrello rosso verde".split(),
    "zh": list("的是在有人这个们中来上大为和地到以说时要就出会可也你对生能而子那得于着下自之年过"),
    "ja": "は が を に の です ます して いる 男性 女性 犬 赤い 傘 持って 公園 写真 何 あります ください".split(),
    "ko": "그는 있습니다 무엇을 남자가 빨간 우산을 들고 공원에서 사람들이 개가 하고 있나요 여자가 거리를".split(),
    "ar": "الرجل يحمل مظلة حمراء في على من هناك الكلب يركض الحديقة ماذا المرأة الشارع إنه".split(),
}
_GLUE = {"zh": "", "ja": ""}  # written without spaces


def fake_translation(lang: str, text: str) -> str:
    """A stand-in translation of ``text`` into ``lang`` (de, es, fr, it, zh, ja, ko, ar): the same number of
    words, each a word of that language chosen by the English word, numbers and the closing mark kept;
    any other language gets ``[lang] text``."""
    words = _WORDS.get(lang)
    if words is None:
        return f"[{lang}] {text}"
    stripped = text.strip()
    end = stripped[-1] if stripped and stripped[-1] in ".?!" else ""
    out = []
    for w in re.findall(r"[\w'-]+", stripped):
        out.append(w if w.isdigit() else words[zlib.crc32(w.lower().encode("utf-8")) % len(words)])
    return _GLUE.get(lang, " ").join(out) + end


class SkewLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock a test moves forward, from any thread.

    Every timer on the loop reads ``time()``: an HTTP client's timeout (aiohttp's, the SDK's),
    ``asyncio.wait_for``, ``asyncio.sleep``. ``advance(s)`` adds ``s`` to that time, so a request the
    fake server holds (``Reply.hang``) times out when the test says, not after real seconds. Pair it
    with ``server.wait_for(lambda: server.hanging ...)`` so the clock moves only once the hang is held.
    """

    def __init__(self) -> None:
        super().__init__()
        self._skew = 0.0

    def time(self) -> float:
        return super().time() + self._skew

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``; timers that fall due by then fire at once."""
        def move() -> None:
            self._skew += seconds
        self.call_soon_threadsafe(move)


@contextlib.contextmanager
def skewed_loops():
    """While open, every new event loop (``asyncio.run``'s too) is a ``SkewLoop``; yields the list of
    loops made, newest last, so a test driving the CLI in this process can move the run's clock."""
    made: list[SkewLoop] = []

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> SkewLoop:
            made.append(SkewLoop())
            return made[-1]

    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(Policy())
    try:
        yield made
    finally:
        asyncio.set_event_loop_policy(before)
