"""Rate limits on a fake clock: buckets, pauses, headers, FIFO order. Nothing here really waits."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable

import pytest

from syphus.errors import ItemError
from syphus.engine.limits import RateLimiter, estimate_tokens, parse_duration
from tests.helpers import ManualClock


class FakeTime(ManualClock):
    """The suite's clock (``tests.helpers.ManualClock``) free-running: it moves only when ``sleep`` is awaited.

    A real sleep always overshoots a little; ``overshoot`` (1 µs by default) models that.
    With ``overshoot=0`` the clock moves by exactly the requested delay. A limiter never sleeps
    for a non-positive delay.
    """

    def __init__(self, start: float = 1000.0, max_sleeps: int = 10_000, overshoot: float = 1e-6):
        super().__init__(start, free=True, overshoot=overshoot, max_sleeps=max_sleeps)

    async def sleep(self, delay: float) -> None:
        assert delay > 0, f"slept for a non-positive delay {delay}"
        await super().sleep(delay)


def approx(seconds: float):
    """Waits compared to within a millisecond (the fake sleeps overshoot by a microsecond each)."""
    return pytest.approx(seconds, abs=1e-3)


def limiter(t: FakeTime, **kw) -> RateLimiter:
    return RateLimiter(clock=t.clock, sleep=t.sleep, **kw)


# --- parse_duration / estimate_tokens ---------------------------------------------------


@pytest.mark.parametrize("text, seconds", [
    ("1s", 1.0),
    ("6m0s", 360.0),
    ("120ms", 0.12),
    ("1h2m3.5s", 3723.5),
    ("0.5", 0.5),
    ("17", 17.0),
    ("2m", 120.0),
    ("1m30s", 90.0),
    (" 20ms ", 0.02),
    ("1.5h", 5400.0),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "abc", "1d"])
def test_parse_duration_garbage_is_none(text):
    assert parse_duration(text) is None


@pytest.mark.parametrize("text", ["", "a", "hello world", "x" * 4001, "The quick brown fox. " * 100])
def test_estimate_tokens_ascii_is_at_least_a_quarter_of_the_chars(text):
    est = estimate_tokens([{"role": "user", "content": text}])
    assert est >= len(text) / 4
    assert est <= len(text) / 4 + 10  # and not absurdly more


@pytest.mark.parametrize("text", ["桌子上有一个红色的球", "これはペンです", "안녕하세요", "Ωμέγα", "🙂🙂🙂"])
def test_estimate_tokens_counts_each_non_ascii_char_at_least_once(text):
    assert estimate_tokens([{"role": "user", "content": text}]) >= len(text)
    assert estimate_tokens([{"role": "user", "content": text * 100}]) >= 100 * len(text)


def test_estimate_tokens_adds_up_messages_and_framing():
    one = estimate_tokens([{"role": "user", "content": "abcd" * 10}])
    two = estimate_tokens([{"role": "system", "content": "abcd" * 10}, {"role": "user", "content": "abcd" * 10}])
    assert two > one >= 10
    assert estimate_tokens([]) >= 0
    assert estimate_tokens([{"role": "user", "content": None}]) >= 1  # type: ignore[dict-item]


# --- request budget -------------------------------------------------------------------


async def test_rpm_60_bursts_one_then_one_per_second():
    t = FakeTime()
    lim = limiter(t, rpm=60)
    await lim.acquire(1)
    assert t.slept == []  # one second's worth (1 request) goes at once
    for _ in range(9):
        await lim.acquire(1)
    assert t.total == approx(9.0)
    assert all(s == approx(1.0) for s in t.slept)


@pytest.mark.parametrize("n", [1, 10, 11, 50])
async def test_rpm_600_total_wait_for_n_requests(n):
    t = FakeTime()
    lim = limiter(t, rpm=600)  # 10 per second, 10 may go at once
    for _ in range(n):
        await lim.acquire(1)
    assert t.total == approx(max(0, n - 10) / 10)


async def test_idle_time_refills_but_only_up_to_the_burst():
    t = FakeTime()
    lim = limiter(t, rpm=600)
    for _ in range(10):
        await lim.acquire(1)
    t.now += 3600  # an hour idle: still only one second's worth may burst
    for _ in range(15):
        await lim.acquire(1)
    assert t.total == approx(0.5)


async def test_burst_seconds_widens_the_burst():
    t = FakeTime()
    lim = limiter(t, rpm=600, burst_seconds=3.0)
    for _ in range(30):
        await lim.acquire(1)
    assert t.slept == []
    await lim.acquire(1)
    assert t.total == approx(0.1)


async def test_no_limits_never_waits():
    t = FakeTime()
    lim = limiter(t)
    for _ in range(1000):
        await lim.acquire(10_000_000)
    assert t.slept == []


# --- token budget -----------------------------------------------------------------------


async def test_tpm_waits_depend_on_cost():
    t = FakeTime()
    lim = limiter(t, tpm=6000)  # 100 tokens per second, 100 may go at once
    await lim.acquire(100)
    assert t.slept == []
    await lim.acquire(50)
    assert t.total == approx(0.5)
    await lim.acquire(20)
    assert t.total == approx(0.7)
    await lim.acquire(100)
    assert t.total == approx(1.7)


async def test_rpm_and_tpm_the_tighter_one_wins():
    t = FakeTime()
    lim = limiter(t, rpm=6000, tpm=6000)  # 100 req/s but only 100 tok/s
    for _ in range(5):
        await lim.acquire(100)
    assert t.total == approx(4.0)


def test_check_raises_too_large_above_tpm():
    t = FakeTime()
    lim = limiter(t, tpm=1000)
    lim.check(1000)  # exactly the budget is fine
    with pytest.raises(ItemError) as e:
        lim.check(1001)
    assert e.value.kind == "too_large"
    assert "1001" in str(e.value) and "max_tokens" in str(e.value)


async def test_acquire_raises_too_large_without_waiting():
    t = FakeTime()
    lim = limiter(t, tpm=1000)
    with pytest.raises(ItemError) as e:
        await lim.acquire(5000)
    assert e.value.kind == "too_large"
    assert t.slept == []


def test_check_without_tpm_never_raises():
    t = FakeTime()
    lim = limiter(t, rpm=10)
    assert lim.check(10**9) is None and t.slept == []  # no raise, and checking never waits


async def test_cost_above_the_one_second_bucket_waits_rather_than_hangs():
    t = FakeTime(max_sleeps=50)
    lim = limiter(t, tpm=600)  # 10 tokens per second; the bucket holds 10
    await lim.acquire(100)  # 10x the bucket, well under the minute's budget
    assert t.total == approx(9.0)
    await lim.acquire(600)  # the whole minute's budget
    assert t.total == approx(9.0 + 60.0)


# --- pause (429) ---------------------------------------------------------------------------


async def test_pause_delays_the_next_acquire():
    t = FakeTime()
    lim = limiter(t, rpm=600)
    await lim.acquire(1)
    lim.pause(5)
    assert lim.pauses == 1
    start = t.now
    await lim.acquire(1)
    assert t.now - start >= 5.0
    assert t.total == approx(5.1)  # the pause, then one request's refill: buckets start empty after it


async def test_pause_without_any_budget_still_pauses():
    t = FakeTime()
    lim = limiter(t)
    lim.pause(5)
    await lim.acquire(1)
    assert t.total == approx(5.0)


async def test_pause_empties_the_buckets_at_once():
    t = FakeTime()
    lim = limiter(t, rpm=600, tpm=60_000)
    lim.pause(0)
    await lim.acquire(1)
    assert t.total == approx(0.1)  # the full bucket was emptied: wait for one request's refill


async def test_buckets_start_empty_after_a_pause():
    t = FakeTime()
    lim = limiter(t, rpm=600)  # 10 per second, 10 may burst
    lim.pause(2)
    for _ in range(11):
        await lim.acquire(1)
    # 2 s of pause, then the buckets start empty: 11 requests at 0.1 s each
    assert t.total == approx(2.0 + 1.1)


async def test_a_shorter_pause_does_not_shorten_a_longer_one():
    t = FakeTime()
    lim = limiter(t)
    lim.pause(10)
    lim.pause(1)
    await lim.acquire(1)
    assert t.total == approx(10.0)
    assert lim.pauses == 2


async def test_negative_pause_is_ignored():
    t = FakeTime()
    lim = limiter(t)
    lim.pause(-3)
    await lim.acquire(1)
    assert t.slept == []


# --- observe (x-ratelimit-* headers) ---------------------------------------------------------


async def test_observe_learns_limits_when_none_configured():
    t = FakeTime()
    lim = limiter(t)
    assert lim.requests is None and lim.tokens is None
    lim.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-limit-tokens": "60000"})
    assert lim.requests.limit == 600 and lim.tokens.limit == 60000
    lim.check(60000)
    lim.check(60001)  # a learnt limit never rejects: the server's own answer decides
    for _ in range(20):
        await lim.acquire(1)
    assert t.total == approx(1.0)  # learned: 10 per second after a 10-request burst


async def test_learned_limits_cannot_poison_a_run():
    """A header teaching a token limit below one request's size neither rejects nor hangs it."""
    t = FakeTime()
    lim = limiter(t)
    lim.observe({"x-ratelimit-limit-tokens": "600", "x-ratelimit-remaining-tokens": "600"})
    lim.check(5000)
    await lim.acquire(5000)  # waits for at most a full bucket, then goes
    assert t.total == approx(59.0)  # from the 1 s burst (10 tokens) up to a full 600
    await lim.acquire(5000)
    assert t.total == approx(559.0)  # then the 5000-token debt is paid back at 10 a second


def test_a_configured_token_limit_still_rejects_what_can_never_fit():
    lim = RateLimiter(rpm=None, tpm=1000, clock=lambda: 0.0)
    with pytest.raises(ItemError):
        lim.check(1001)


def test_observe_lowers_a_configured_limit_but_never_raises_it():
    t = FakeTime()
    lim = limiter(t, rpm=600, tpm=100_000)
    lim.observe({"x-ratelimit-limit-requests": "300", "x-ratelimit-limit-tokens": "200000"})
    assert lim.requests.limit == 300
    assert lim.tokens.limit == 100_000


def test_observe_follows_a_learned_limit_both_ways():
    lim = limiter(FakeTime())
    lim.observe({"x-ratelimit-limit-requests": "600"})
    lim.observe({"x-ratelimit-limit-requests": "1200"})
    assert lim.requests.limit == 1200
    lim.observe({"x-ratelimit-limit-requests": "60"})
    assert lim.requests.limit == 60


async def test_observe_remaining_pulls_the_level_down():
    t = FakeTime()
    lim = limiter(t, rpm=600)
    lim.observe({"x-ratelimit-remaining-requests": "0"})
    await lim.acquire(1)
    assert t.total == approx(0.1)


async def test_observe_remaining_tokens():
    t = FakeTime()
    lim = limiter(t, tpm=6000)
    lim.observe({"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "40"})
    await lim.acquire(100)
    assert t.total == approx(0.6)


async def test_observe_remaining_never_raises_the_level():
    t = FakeTime()
    lim = limiter(t, rpm=600)
    for _ in range(10):
        await lim.acquire(1)
    lim.observe({"x-ratelimit-remaining-requests": "599"})
    await lim.acquire(1)
    assert t.total == approx(0.1)


@pytest.mark.parametrize("headers", [
    {}, {"x-ratelimit-limit-requests": "lots"}, {"x-ratelimit-limit-requests": "0"},
    {"x-ratelimit-limit-requests": "-5"}, {"x-ratelimit-remaining-requests": "abc"},
    {"x-ratelimit-reset-requests": "6m0s"},
])
def test_observe_ignores_useless_headers(headers):
    lim = limiter(FakeTime())
    lim.observe(headers)
    assert lim.requests is None and lim.tokens is None


def test_observe_disabled_by_follow_headers_false():
    lim = limiter(FakeTime(), follow_headers=False)
    lim.observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-limit-tokens": "100"})
    assert lim.requests is None and lim.tokens is None


# --- fairness ----------------------------------------------------------------------------------


async def test_concurrent_acquirers_are_served_fifo():
    t = FakeTime()
    lim = limiter(t, rpm=60)
    order: list[int] = []

    async def worker(i: int):
        await lim.acquire(1)
        order.append(i)

    tasks = [asyncio.create_task(worker(i)) for i in range(50)]
    await asyncio.gather(*tasks)
    assert order == list(range(50))
    assert t.total == approx(49.0)


async def test_a_cheap_request_does_not_overtake_an_expensive_one():
    t = FakeTime()
    lim = limiter(t, tpm=6000)  # 100 tokens per second
    served: list[tuple[int, float]] = []

    async def worker(i: int, cost: int):
        await lim.acquire(cost)
        served.append((i, t.now))

    costs = [100, 500, 1, 1, 300, 1]
    await asyncio.gather(*(worker(i, c) for i, c in enumerate(costs)))
    assert [i for i, _ in served] == list(range(len(costs)))
    times = [when for _, when in served]
    assert times == sorted(times)
    assert t.total == approx((sum(costs) - 100) / 100)


# --- exact waits -------------------------------------------------------------------------------


async def test_sleeping_exactly_the_computed_delay_is_enough():
    t = FakeTime(overshoot=0.0, max_sleeps=200)
    lim = limiter(t, rpm=600)
    for _ in range(50):
        await lim.acquire(1)
    assert len(t.slept) == 40  # one sleep per request past the burst, none for rounding residue
    assert all(s >= 1e-6 for s in t.slept)


# --- probing the burst (slow start on x-ratelimit-remaining-*) ----------------------------------


class SimServer:
    """A rate-limited server on a SimTime clock: answers after ``latency`` with ``x-ratelimit-*`` headers.

    ``enforce="minute"`` keeps one bucket of a minute's worth (``level`` of it at the start, full by
    default), as OpenAI's limits are when a run begins. ``enforce="second"`` refuses past a second's
    worth while its headers still report the minute bucket, as tests/fakeserver.py does. A refused
    request is answered at once with a 429 (observe, then pause, as the runner does).
    ``headers``: "all", "limit" (no remaining) or "none".
    """

    def __init__(self, t: SimTime, lim: RateLimiter, rpm: float, enforce: str = "minute",
                 level: float | None = None, latency: float = 0.8, headers: str = "all"):
        self.t, self.lim, self.rpm, self.rate = t, lim, rpm, rpm / 60
        self.latency, self.headers = latency, headers
        self.minute = rpm if level is None else level
        self.cap = rpm if enforce == "minute" else self.rate
        self.level = min(self.cap, self.minute)
        self.stamp = t.now
        self.ok = self.refused = 0

    def send(self) -> None:
        now = self.t.now
        self.minute = min(self.rpm, self.minute + (now - self.stamp) * self.rate)
        self.level = min(self.cap, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        admitted = self.level >= 1
        if admitted:
            self.level -= 1
            self.minute -= 1
            self.ok += 1
        else:
            self.refused += 1
        headers = {"x-ratelimit-limit-requests": str(self.rpm),
                   "x-ratelimit-remaining-requests": str(max(0, math.floor(self.minute)))}
        headers = {"all": headers, "limit": {"x-ratelimit-limit-requests": str(self.rpm)}, "none": {}}[self.headers]

        def answer() -> None:
            self.lim.observe(headers)
            if not admitted:
                self.lim.pause((1 - self.level) / self.rate)

        self.t.at(now + (self.latency if admitted else 0.001), answer)


class SimTime(FakeTime):
    """A FakeTime under which scheduled callbacks (a SimServer's answers) run at their times while the limiter sleeps."""

    def __init__(self):
        super().__init__(max_sleeps=100_000)
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()  # callbacks due at the same time run in the order scheduled

    def at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._due, (when, next(self._order), callback))

    def run_until(self, end: float) -> None:
        while self._due and self._due[0][0] <= end:
            when, _, callback = heapq.heappop(self._due)
            self.now = max(self.now, when)
            callback()
        self.now = max(self.now, end)

    async def sleep(self, delay: float) -> None:
        assert delay > 0, f"slept for a non-positive delay {delay}"
        self.slept.append(delay)
        assert len(self.slept) <= self.max_sleeps, "the limiter keeps sleeping: it would hang"
        self.run_until(self.now + delay + self.overshoot)
        await asyncio.sleep(0)


async def dispatch(t: SimTime, lim: RateLimiter, server: SimServer, n: int) -> tuple[list[float], float]:
    """Send ``n`` requests as fast as the limiter lets them go: the burst window after each one, and
    the seconds it took to send them all."""
    start, windows = t.now, []
    for _ in range(n):
        await lim.acquire(1)
        server.send()
        windows.append(lim.window)
    took = t.now - start
    t.run_until(t.now + 10)  # every answer arrives
    return windows, took


def steps(windows: list[float]) -> list[float]:
    return [w for i, w in enumerate(windows) if i == 0 or w != windows[i - 1]]


async def test_slow_start_spends_a_full_minute_bucket_without_429s():
    t = SimTime()
    lim = limiter(t, rpm=600)  # 10 a second; the server's minute bucket holds 600 at the start
    server = SimServer(t, lim, rpm=600)
    windows, took = await dispatch(t, lim, server, 1200)
    assert server.refused == 0
    assert steps(windows)[:6] == [1, 2, 4, 8, 16, 32]  # doubled each time a window's worth was answered
    assert 55 <= lim.max_window <= 60  # up to what remained, never past a minute
    # 1200 requests = the 600 in the bucket + 60 s of refill; a 1 s window would have taken 119 s
    assert took < 65
    meta = lim.describe()
    assert (meta["burst"], meta["short_windows"], meta["max_burst_seconds"]) == ("probed", False, round(lim.max_window, 3))


async def test_a_widening_never_passes_what_remains_less_what_is_on_the_wire():
    t = FakeTime()
    lim = limiter(t, rpm=600)
    for _ in range(12):
        await lim.acquire(1)  # 10 at once, 2 more at 0.1 s: 2 still on the wire when the first 10 are answered
    for _ in range(10):
        lim.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "7"})
    # the server holds at least 7 - 2 on the wire = 5 requests: the window widens by 0.5 s, not 1 s
    assert lim.window == pytest.approx(1.5)
    slept = t.total
    for _ in range(5):
        await lim.acquire(1)
    assert t.total == approx(slept)
    await lim.acquire(1)
    assert t.total == approx(slept + 0.1)


async def test_the_first_429_falls_back_to_one_second_for_the_rest_of_the_run():
    t = SimTime()
    lim = limiter(t, rpm=600)
    server = SimServer(t, lim, rpm=600, enforce="second")  # headers say a minute's worth remains
    windows, took = await dispatch(t, lim, server, 600)
    first_429 = windows.index(1, windows.index(2))  # the probe widened once, then fell back
    assert steps(windows) == [1, 2, 1]
    assert all(w == 1 for w in windows[first_429:])
    assert 1 <= server.refused <= 10  # at most the one widening's worth
    assert lim.short_windows and lim.describe()["max_burst_seconds"] == 2
    assert took < (600 - 10) / 10 + 2  # the fallback costs about a second
    for _ in range(100):  # plenty remaining afterwards changes nothing
        await lim.acquire(1)
        lim.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "600"})
    assert lim.window == 1 and lim.max_window == 2


@pytest.mark.parametrize("configured, headers", [
    (True, "none"),    # --rpm given, a server without headers
    (True, "limit"),   # --rpm given, headers with a limit but no remaining
    (False, "limit"),  # the limit learnt from headers that never say what remains
])
async def test_no_widening_without_remaining_headers(configured, headers):
    t = SimTime()
    lim = limiter(t, rpm=600 if configured else None)
    if not configured:
        lim.observe({"x-ratelimit-limit-requests": "600"})
    server = SimServer(t, lim, rpm=600, headers=headers)
    windows, took = await dispatch(t, lim, server, 200)
    assert set(windows) == {1}
    assert took == approx((200 - 10) / 10)  # today's pace: 1 s of burst, then 10 a second
    assert lim.describe()["burst"] == "fixed" and server.refused == 0


async def test_a_restart_with_half_the_bucket_spent_bursts_no_further_than_what_remains():
    t = SimTime()
    lim = limiter(t, rpm=600)
    server = SimServer(t, lim, rpm=600, level=300)  # the last run spent half the minute's budget
    windows, took = await dispatch(t, lim, server, 900)
    assert server.refused == 0
    assert 1 < lim.max_window <= 31  # it widened, by no more than the 300 that remained
    # 900 = the 300 left + 60 s of refill: about 60 s, against 89 s at a fixed 1 s window
    assert took < 70
    assert max(windows) == lim.max_window


async def test_a_token_budget_widens_on_the_tokens_answered():
    t = FakeTime()
    lim = limiter(t, tpm=6000)  # 100 tokens a second
    await lim.acquire(100)  # one second's worth, at once
    lim.observe({"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "5900"})
    assert lim.window == 2
    await lim.acquire(100)  # the widening's room, at once
    assert t.slept == []
    lim.observe({"x-ratelimit-limit-tokens": "6000", "x-ratelimit-remaining-tokens": "5800"})
    assert lim.window == 2  # 100 tokens answered since: not yet a (2 s) window's worth


async def test_a_429_that_the_headers_explain_is_not_called_a_short_window():
    t = FakeTime()
    lim = limiter(t, rpm=600)
    await lim.acquire(1)
    lim.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "0"})
    lim.pause(1)
    described = lim.describe()
    assert {k: described[k] for k in ("burst", "burst_seconds", "max_burst_seconds", "short_windows")} == {
        "burst": "probed", "burst_seconds": 1, "max_burst_seconds": 1, "short_windows": False}
    assert not lim.probing  # but the probe is over all the same


# --- sane ranges and the wait cap (issue 22, item 11) ----------------------------------------------


@pytest.mark.parametrize("headers", [
    {"x-ratelimit-limit-tokens": "200000", "x-ratelimit-remaining-tokens": "-5000000"},
    {"x-ratelimit-limit-tokens": "inf", "x-ratelimit-remaining-tokens": "-inf"},
    {"x-ratelimit-limit-tokens": "nan", "x-ratelimit-remaining-tokens": "nan"},
    {"x-ratelimit-limit-tokens": "1e308", "x-ratelimit-remaining-tokens": "1e308"},
])
async def test_headers_are_clamped_to_sane_ranges(headers):
    t = FakeTime()
    lim = limiter(t, tpm=200_000)
    lim.observe(headers)
    assert lim.tokens.limit <= 200_000 and math.isfinite(lim.tokens.level)
    assert lim.tokens.level >= 0  # at worst empty: never a debt the header made up
    await lim.acquire(1000)
    assert t.total <= 1000 / (200_000 / 60) + 1e-3  # one request's refill at most


async def test_a_negative_remaining_empties_the_bucket_and_no_more():
    t = FakeTime()
    lim = limiter(t, tpm=200_000)
    lim.observe({"x-ratelimit-limit-tokens": "200000", "x-ratelimit-remaining-tokens": "-5000000"})
    assert lim.tokens.level == 0


async def test_no_wait_outlasts_max_wait():
    t = FakeTime()
    lim = limiter(t, tpm=600, max_wait=30.0)  # 10 tokens a second
    await lim.acquire(600)  # 59 s of refill needed: it goes after 30
    await lim.acquire(600)  # 89 s needed: it goes after 30
    assert t.slept == [approx(30.0), approx(30.0)]
    lim.pause(1e9)
    await lim.acquire(1)
    assert max(t.slept) <= 30.0 + 1e-6


# --- calibration by what the server counted ----------------------------------------------------


def test_calibration_paces_by_the_largest_recent_server_count():
    lim = limiter(FakeTime(), tpm=200_000)
    assert lim.paced("json", 1000, 256) == 1000  # nothing learnt: the estimate as it is
    for counted in (880, 900, 890):
        lim.learn("json", 1000, {"prompt_tokens": counted, "completion_tokens": 5})
    assert lim.paced("json", 1000, 256) == 900  # never below what the server counted
    assert lim.paced("text", 1000, 256) == 1000  # each shape learns alone
    lim.learn("json+images", 1000, {"prompt_tokens": 1300})
    assert lim.paced("json+images", 1000, 256) == 1300  # a server counting more is met with its count
    lim.learn("text", 1000, None)
    lim.learn("text", 1000, {"prompt_tokens": "many"})
    assert lim.paced("text", 1000, 256) == 1000  # no usage: today's estimate
    described = lim.describe()["calibration"]
    assert described["ratios"] == {"json": 0.9, "json+images": 1.3}
    assert described["samples"] == {"json": 3, "json+images": 1}
    assert "json×0.90" in lim.calibration.brief()


def test_calibration_ignores_a_server_reporting_nothing_counted():
    lim = limiter(FakeTime(), tpm=200_000)
    lim.learn("json", 1000, {"prompt_tokens": 1})
    assert lim.paced("json", 1000) == 500  # the floor: half the estimate at the very least


async def test_remaining_token_drops_scale_the_pace_when_the_server_charges_more():
    """Headers show 2,000 tokens charged a request while the pace assumes 1,000: costs double."""
    t = FakeTime()
    lim = limiter(t, rpm=600, tpm=600_000)
    start = t.now
    for n in range(1, 61):
        await lim.acquire(lim.paced("text", 744, 256) + 256)
        refill = t.now - start  # the server refills 10 requests and 10,000 tokens a second
        remaining_tokens = 300_000 - 2000 * n + 10_000 * refill
        remaining_requests = 300 - n + 10 * refill
        lim.observe({"x-ratelimit-limit-tokens": "600000", "x-ratelimit-remaining-tokens": str(remaining_tokens),
                     "x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": str(remaining_requests)})
    factor = lim.calibration.header_factor
    assert factor > 1.5
    assert lim.paced("text", 744, 256) + 256 >= 1900


async def test_remaining_token_drops_within_the_pace_change_nothing():
    t = FakeTime()
    lim = limiter(t, rpm=600, tpm=600_000)
    start = t.now
    for n in range(1, 61):
        await lim.acquire(1000)
        refill = t.now - start
        remaining_tokens = 300_000 - 900 * n + 10_000 * refill
        remaining_requests = 300 - n + 10 * refill
        lim.observe({"x-ratelimit-limit-tokens": "600000", "x-ratelimit-remaining-tokens": str(remaining_tokens),
                     "x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": str(remaining_requests)})
    assert lim.calibration.header_factor == 1.0
    assert lim.paced("text", 744, 256) == 744


def test_calibration_takes_the_tighter_of_ratio_and_overcount_and_stays_above_every_count():
    """The estimate adds a constant (framing, schema) to a text the server counts in proportion."""
    lim = limiter(FakeTime(), tpm=200_000)
    history = [(100 + 4 * n, 4 * n) for n in range(50, 150, 7)]  # (estimate, server count): 100 over each time
    for estimate, counted in history:
        lim.learn("json", estimate, {"prompt_tokens": counted})
    assert lim.paced("json", 400) == 300  # the ratio alone (largest 0.85) would pace 340
    for estimate, counted in history:
        assert lim.paced("json", estimate) >= counted  # never under what the server counted
    lim.learn("json", 400, {"prompt_tokens": 380})  # the server counts more this time
    assert lim.paced("json", 400) >= 380
