"""The ticker's one-shot wake-up: a ``timerfd`` at an absolute deadline, or ``call_later``."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

import pytest

from audionet.audiosocket import clock, wakeup
from audionet.audiosocket.clock import Ticker
from audionet.audiosocket.wakeup import LoopTimer, TimerFd, Wakeup

T = TypeVar("T")
LOOPS = ["asyncio", "uvloop"]
KINDS: dict[str, Callable[[asyncio.AbstractEventLoop, Callable[[], None]], Wakeup]] = {
    "timerfd": TimerFd,
    "call_later": LoopTimer,
}
needs_timerfd = pytest.mark.skipif(wakeup._LIBC is None, reason="timerfd is Linux only")


class Member:
    """A ticker member with one frame due every 20 ms; counts its ticks."""

    def __init__(self) -> None:
        self.due = 0.0
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        self.due += 0.020


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return cast(asyncio.AbstractEventLoop, uvloop.new_event_loop())
    return asyncio.new_event_loop()


def run_on(name: str, coro: Coroutine[Any, Any, T]) -> T:
    loop = new_loop(name)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class Recorder:
    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self) -> None:
        self.times.append(time.monotonic())


@needs_timerfd
@pytest.mark.parametrize("loop", LOOPS)
def test_a_timerfd_never_fires_before_its_deadline(loop: str) -> None:
    """Deadlines 2.5 ms apart (the ticker's slot), each armed from the last one's callback, at
    sub-millisecond offsets a millisecond timer rounds (uvloop's ``call_later`` fires these early)."""

    async def main() -> list[tuple[float, float]]:
        done = asyncio.get_running_loop().create_future()
        pairs: list[tuple[float, float]] = []
        deadline = time.monotonic() + 0.0025

        def fired() -> None:
            nonlocal deadline
            pairs.append((deadline, time.monotonic()))
            if len(pairs) == 200:
                done.set_result(None)
                return
            deadline += 0.0025 + (len(pairs) % 7) * 0.0001
            w.at(deadline)

        w = TimerFd(asyncio.get_running_loop(), fired)
        w.at(deadline)
        await asyncio.wait_for(done, 10)
        w.cancel()
        return pairs

    pairs = run_on(loop, main())
    assert len(pairs) == 200
    early = [(d, t) for d, t in pairs if t < d]
    assert not early, f"{len(early)} of 200 wake-ups came early, e.g. {early[0]}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loop", LOOPS)
def test_rearming_replaces_the_deadline(loop: str, kind: str) -> None:
    if kind == "timerfd" and wakeup._LIBC is None:
        pytest.skip("timerfd is Linux only")

    async def main() -> tuple[list[float], list[float], float, float]:
        sooner, later = Recorder(), Recorder()
        a = KINDS[kind](asyncio.get_running_loop(), sooner)
        b = KINDS[kind](asyncio.get_running_loop(), later)
        t0 = time.monotonic()
        a.at(t0 + 0.100)
        a.at(t0 + 0.020)  # brought forward: once, at 20 ms, never at 100 ms
        b.at(t0 + 0.020)
        b.at(t0 + 0.060)  # put back: once, at 60 ms, not at 20 ms
        await asyncio.sleep(0.150)
        a.cancel()
        b.cancel()
        return sooner.times, later.times, t0 + 0.020, t0 + 0.060

    sooner, later, d1, d2 = run_on(loop, main())
    assert len(sooner) == 1 and len(later) == 1
    slack = 0.0011 if kind == "call_later" else 0.0  # call_later: whole milliseconds on uvloop
    assert d1 - slack <= sooner[0] < d1 + 0.040
    assert d2 - slack <= later[0] < d2 + 0.040


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loop", LOOPS)
def test_cancel_stops_it_and_a_cancelled_one_cannot_be_armed(loop: str, kind: str) -> None:
    if kind == "timerfd" and wakeup._LIBC is None:
        pytest.skip("timerfd is Linux only")

    async def main() -> list[float]:
        rec = Recorder()
        w = KINDS[kind](asyncio.get_running_loop(), rec)
        w.at(time.monotonic() + 0.010)
        w.cancel()
        w.cancel()  # idempotent
        await asyncio.sleep(0.050)
        with pytest.raises(RuntimeError, match="cancelled"):
            w.at(time.monotonic() + 0.010)
        await asyncio.sleep(0.030)
        return rec.times

    assert run_on(loop, main()) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("loop", LOOPS)
def test_a_deadline_already_passed_fires_at_once(loop: str, kind: str) -> None:
    if kind == "timerfd" and wakeup._LIBC is None:
        pytest.skip("timerfd is Linux only")

    async def main() -> tuple[list[float], float]:
        rec = Recorder()
        w = KINDS[kind](asyncio.get_running_loop(), rec)
        t0 = time.monotonic()
        w.at(t0 - 1.0)
        await asyncio.sleep(0.030)
        w.cancel()
        return rec.times, t0

    times, t0 = run_on(loop, main())
    assert len(times) == 1 and times[0] - t0 < 0.025


@needs_timerfd
@pytest.mark.parametrize("loop", LOOPS)
def test_cancel_closes_the_descriptor(loop: str) -> None:
    async def main() -> list[int]:
        fds = []
        for _ in range(50):
            w = TimerFd(asyncio.get_running_loop(), Recorder())
            w.at(time.monotonic() + 0.001)
            fds.append(w.fd)
            await asyncio.sleep(0)
            w.cancel()
            assert w.fd == -1 and not is_open(fds[-1])  # closed now, not when the loop goes
        return fds

    before = open_fds()
    fds = run_on(loop, main())
    assert len(fds) == 50 and all(fd >= 0 for fd in fds)
    assert not any(is_open(fd) for fd in fds)
    assert open_fds() <= before


@needs_timerfd
@pytest.mark.parametrize("loop", LOOPS)
def test_a_loop_closed_with_calls_on_its_ticker_leaks_no_descriptor(loop: str) -> None:
    """The ticker cancels its wake-up when its last member leaves; a loop closed before that (its
    members never discarded) closes the wake-up's descriptor when it is collected."""
    member_fds: list[int] = []

    async def main() -> None:
        ticker = clock.get_ticker()
        ticker.add(Member())
        assert isinstance(ticker._handle, TimerFd)
        member_fds.append(ticker._handle.fd)
        await asyncio.sleep(0.050)

    before = open_fds()
    lp = new_loop(loop)
    lp.run_until_complete(main())
    assert is_open(member_fds[0])
    lp.close()
    del lp
    gc.collect()
    assert not is_open(member_fds[0])
    assert open_fds() <= before


@needs_timerfd
@pytest.mark.parametrize("loop", LOOPS)
def test_the_ticker_closes_its_wakeup_when_its_last_member_leaves(loop: str) -> None:
    async def main() -> None:
        ticker = Ticker(asyncio.get_running_loop())
        a, b = Member(), Member()
        ticker.add(a)
        ticker.add(b)
        handle = ticker._handle
        assert isinstance(handle, TimerFd)
        fd = handle.fd
        await asyncio.sleep(0.050)
        ticker.discard(a)
        assert is_open(fd) and ticker._handle is handle
        ticker.discard(b)
        assert ticker._handle is None and handle.fd == -1 and not is_open(fd)

    before = open_fds()
    run_on(loop, main())
    assert open_fds() <= before


@pytest.mark.parametrize("loop", LOOPS)
def test_without_timerfd_the_wakeup_is_call_later(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No libc timerfd (not Linux), or a loop without ``add_reader``: the ticker falls back to
    ``call_later`` and still ticks every member 50 times a second."""
    monkeypatch.setattr(wakeup, "_LIBC", None)

    async def main() -> int:
        lp = asyncio.get_running_loop()
        assert isinstance(wakeup.wakeup(lp, Recorder()), LoopTimer)
        ticker = Ticker(lp)
        m = Member()
        ticker.add(m)
        assert isinstance(ticker._handle, LoopTimer)
        await asyncio.sleep(0.5)
        ticker.discard(m)
        return m.ticks

    assert 22 <= run_on(loop, main()) <= 26


@needs_timerfd
def test_a_loop_without_add_reader_gets_call_later() -> None:
    class NoReaders(asyncio.SelectorEventLoop):
        def add_reader(self, fd: Any, callback: Any, *args: Any) -> None:
            raise NotImplementedError

    lp = NoReaders()
    before = open_fds()
    try:
        w = wakeup.wakeup(lp, Recorder())
        assert isinstance(w, LoopTimer)
        assert open_fds() <= before  # the timerfd made for it was closed again
    finally:
        lp.close()


@needs_timerfd
@pytest.mark.parametrize("loop", LOOPS)
def test_the_ticker_wakes_once_per_slot(loop: str) -> None:
    """One member, an idle loop: the ticker runs once per 2.5 ms slot (400 times a second), not
    again and again before each deadline (uvloop's ``call_later`` did about 100,000 times)."""

    async def main() -> int:
        ticker = Ticker(asyncio.get_running_loop())
        runs = 0
        tick = ticker._tick

        def counted() -> None:
            nonlocal runs
            runs += 1
            tick()

        ticker._tick = counted  # type: ignore[method-assign]
        m = Member()
        ticker.add(m)
        await asyncio.sleep(0.5)
        ticker.discard(m)
        return runs

    assert run_on(loop, main()) <= 0.5 * 400 * 1.1
