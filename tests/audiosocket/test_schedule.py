"""The call clock's decision alone, in virtual time: a discrete-event run of one call against each
kind of peer, with a ticker that serves every deadline on time (or late, to model a stall).

What every peer must get: one frame per 20 ms on average, at most 51 frames in any 1 s window and
no two frames closer than MIN_GAP (10 ms), whatever the peer does. The same rules are checked over
real sockets on both event loops in test_peers.py.
"""

from __future__ import annotations

import heapq
import itertools
import math

import pytest

from audionet.audiosocket.schedule import (
    CATCH_UP,
    EARLY,
    MAX_EARLIER,
    MAX_LATER,
    MIN_GAP,
    PERIOD,
    SLOT,
    FrameClock,
)

from .util import FakeTicker


class SimClock(FrameClock):
    """The clock, noting for each frame sent how long the peer's frame it carries waited."""

    delays: list[float]


def simulate(
    seconds: float,
    echo_delay: float | None = None,
    arrivals: list[float] | None = None,
    stalls: tuple[tuple[float, float], ...] = (),
    start: float = 0.0075,
) -> tuple[list[float], SimClock]:
    """Run one call's clock for ``seconds``; return when each frame left.

    ``echo_delay``: the peer writes each of our frames back that long after it left. ``arrivals``:
    the times the peer's own frames arrive. ``stalls``: (from, to) spans in which the loop runs
    nothing; what fell due in them runs at ``to`` (arrivals first, as a loop reads before timers).
    """
    clock = SimClock()
    ticker = FakeTicker()
    clock.due = start
    clock.start_clock(ticker)
    events: list[tuple[float, int, str]] = []  # (time, order, kind): arrivals and their echoes
    order = itertools.count()
    for t in arrivals or ():
        heapq.heappush(events, (t, next(order), "heard"))
    sent: list[float] = []
    queued: list[float] = []  # arrival times of the peer's frames not answered yet
    clock.delays = []

    def run_at(t: float) -> float:
        for a, b in stalls:
            if a <= t < b:
                return b
        return t

    while True:
        tick_at = run_at(clock.due)
        heard_at = run_at(events[0][0]) if events else math.inf
        now = min(tick_at, heard_at)
        if now > seconds:
            break
        if heard_at <= tick_at:
            heapq.heappop(events)
            queued.append(now)
            leaves = clock._clock(now, True)
        else:
            ticker.behind = now - clock.due
            leaves = clock._clock(now, False)
            ticker.behind = 0.0
        if leaves:
            sent.append(now)
            if queued:
                clock.delays.append(now - queued.pop(0))
            if echo_delay is not None:
                heapq.heappush(events, (now + echo_delay, next(order), "heard"))
    return sent, clock


def caller(rate: float, seconds: float, phase: float = 0.0, burst: int = 1) -> list[float]:
    """An independent caller: ``rate`` frames a second from ``phase``, written ``burst`` at a time."""
    times = [phase + k / rate for k in range(int(seconds * rate))]
    return [times[(k // burst) * burst + burst - 1] for k in range(len(times) - burst)]


def max_in_window(times: list[float], window: float = 1.0) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def check_paced(sent: list[float], seconds: float) -> None:
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= MIN_GAP - 1e-9, min(gaps)
    assert max_in_window(sent) <= 51
    rate = (len(sent) - 1) / (sent[-1] - sent[0])
    assert rate == pytest.approx(1 / PERIOD, abs=0.5 * 10 / seconds), rate


@pytest.mark.parametrize("delay_ms", [0, 0.1, 1, 5, 10, 15, 19, 20, 25, 45])
def test_a_peer_that_echoes_our_frames_gets_one_per_period(delay_ms: float) -> None:
    sent, clock = simulate(20, echo_delay=delay_ms / 1000)
    check_paced(sent, 20)
    assert len(sent) == pytest.approx(20 / PERIOD, abs=1)
    assert -MAX_EARLIER <= clock._off <= MAX_LATER and clock.caught_up == 0


@pytest.mark.parametrize(
    "name, arrivals",
    [
        ("steady, phase 3 ms", caller(50, 20, 0.003)),
        ("steady, phase 13 ms", caller(50, 20, 0.013)),
        ("clumps of five", caller(50, 20, 0.004, burst=5)),
        ("faster, 55/s", caller(55, 20, 0.004)),
        ("slower, 45/s", caller(45, 20, 0.004)),
        ("drifting, 50.05/s", caller(50.05, 20, 0.004)),
        ("silent", []),
        ("a frame every millisecond", [k / 1000 for k in range(20000)]),
    ],
)
def test_whatever_the_caller_sends_the_clock_keeps_50_frames_a_second(
    name: str, arrivals: list[float]
) -> None:
    sent, clock = simulate(20, arrivals=arrivals)
    check_paced(sent, 20)
    assert clock.caught_up == 0  # only a stall of our own loop starts a catch-up


@pytest.mark.parametrize("phase_ms", [0, 3, 6, 9, 12, 15, 18])
def test_a_steady_caller_is_answered_as_its_frames_arrive(phase_ms: float) -> None:
    arrivals = caller(50, 10, phase_ms / 1000)
    sent, clock = simulate(10, arrivals=arrivals)
    check_paced(sent, 10)
    on_arrival = set(arrivals) & set(sent)
    late = [t for t in sent if 1.5 < t < 9.9 and t not in on_arrival]  # locked on within 1.5 s
    assert not late, late[:5]
    # with the frame that just arrived: no frame of the caller's left standing in the queue
    delays = clock.delays
    assert max(delays[100:]) < 1e-9
    assert max(delays) < PERIOD


def test_a_stall_of_our_loop_is_made_up_at_one_frame_per_min_gap() -> None:
    sent, clock = simulate(5, arrivals=caller(50, 5, 0.004), stalls=((2.0, 2.1),))
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= MIN_GAP - 1e-9  # never a burst, even in the catch-up
    assert max(gaps) > 0.1  # the stall
    # the five missed frames: each frame of the catch-up gains PERIOD - MIN_GAP on the grid
    assert 0.1 / PERIOD <= clock.caught_up <= 0.1 / (PERIOD - MIN_GAP)
    after = [t for t in sent if 2.35 <= t < 5]  # back on the grid: one frame per period
    assert (len(after) - 1) / (after[-1] - after[0]) == pytest.approx(50, abs=0.5)
    assert len(sent) == pytest.approx(5 / PERIOD, abs=1)  # nothing given up


def test_a_stall_longer_than_the_catch_up_gives_up_the_rest() -> None:
    sent, clock = simulate(5, stalls=((1.0, 2.0),))
    assert CATCH_UP / PERIOD <= clock.caught_up <= CATCH_UP / (PERIOD - MIN_GAP)
    assert clock.given_up == pytest.approx((1.0 - CATCH_UP) / PERIOD, abs=1)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= MIN_GAP - 1e-9


def test_a_frame_never_leaves_more_than_early_before_its_deadline() -> None:
    # every millisecond an arrival: the clock sends as early as it may, never earlier
    arrivals = [k / 1000 for k in range(5000)]
    sent, _ = simulate(5, arrivals=arrivals)
    grid0 = 0.0075
    for k, t in enumerate(sent):
        assert t >= grid0 + k * PERIOD - MAX_EARLIER * SLOT - EARLY - 1e-9
