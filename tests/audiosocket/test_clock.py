"""The shared 20 ms ticker: steady, shared, and never bursting after a stall."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import time

import pytest

from audionet.audiosocket.clock import LATENESS_BUCKETS, Ticker, get_ticker


class Member:
    """Ticks once per period: sets its next deadline itself (the ticker decides nothing)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.due = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        self.times.append(now)
        self.due += 0.020
        while self.due <= now:  # skip what a stall missed
            self.due += 0.020


async def test_fifty_ticks_a_second_for_every_member() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    a, b = Member(), Member()
    ticker.add(a)
    ticker.add(b)
    await asyncio.sleep(1.0)
    ticker.discard(a)
    ticker.discard(b)
    assert 46 <= len(a.times) <= 51 and abs(len(a.times) - len(b.times)) <= 1
    for m in (a, b):
        span = m.times[-1] - m.times[0]
        assert abs(span / (len(m.times) - 1) - 0.020) < 0.002  # no drift: deadlines, not sleeps
    offset = (b.times[0] - a.times[0]) % 0.020
    assert abs(offset - 0.0025) < 0.002  # two members land in different phases, 2.5 ms apart


async def test_one_timer_serves_many_members() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    members = [Member() for _ in range(100)]
    for m in members:
        ticker.add(m)
    assert sorted(len(g) for g in ticker._groups) == [12, 12, 12, 12, 13, 13, 13, 13]
    await asyncio.sleep(0.5)
    for m in members:
        ticker.discard(m)
    assert ticker._handle is None
    assert all(23 <= len(m.times) <= 26 for m in members)


async def test_a_stall_skips_ticks_instead_of_bursting() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    m = Member()
    ticker.add(m)
    await asyncio.sleep(0.1)
    time.sleep(0.1)  # the loop is blocked for five periods
    stall_end = time.monotonic()
    await asyncio.sleep(0.2)
    ticker.discard(m)
    gaps = [b - a for a, b in itertools.pairwise(m.times)]
    assert max(gaps) > 0.09  # the stall shows
    after = [t for t in m.times if stall_end <= t < stall_end + 0.060]
    assert (
        len(after) <= 4
    )  # the late tick and the next ones on schedule, not five missed ones at once
    assert ticker.skipped >= 3
    assert ticker.lateness(1.0) > 0.05
    counts, total = ticker.lateness_histogram()
    assert sum(counts) == ticker.ticks and total > 0.05
    assert sum(counts[bisect.bisect_left(LATENESS_BUCKETS, 0.05) :]) >= 1  # the stalled tick
    assert abs(sum(gaps[-5:]) / 5 - 0.020) < 0.004  # back on the 20 ms grid


async def test_idle_ticker_has_no_timer_and_is_shared_per_loop() -> None:
    ticker = get_ticker()
    assert ticker is get_ticker(asyncio.get_running_loop())
    m = Member()
    ticker.add(m)
    ticker.discard(m)
    assert ticker._handle is None


async def test_a_member_that_sent_its_frame_early_is_passed_by() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    early, plain = Member(), Member()
    ticker.add(early)
    ticker.add(plain)
    assert early.due == ticker._deadlines[ticker._where[early]]
    early.due = time.monotonic() + 0.2  # as if it had sent its frames itself, up to then
    await asyncio.sleep(0.15)
    assert early.times == [] and len(plain.times) >= 6
    await asyncio.sleep(0.15)
    ticker.discard(early)
    ticker.discard(plain)
    assert len(early.times) >= 4  # served again once its frames were due


async def test_place_moves_a_member_to_the_group_of_its_new_deadline() -> None:
    ticker = Ticker(asyncio.get_running_loop())
    m = Member()
    ticker.add(m)
    group, due = ticker._where[m], m.due
    m.due = ticker.align(due - 0.0025 + 1e-4)  # the first deadline after: the same one
    assert m.due == pytest.approx(due)
    m.due = ticker.align(due + 0.0051)  # three slots later
    ticker.place(m)
    assert ticker._where[m] == (group + 3) % 8 and m.due == pytest.approx(due + 0.0075)
    m.due -= 0.0025 * 4
    ticker.place(m)
    assert ticker._where[m] == (group - 1) % 8
    await asyncio.sleep(0.3)
    ticker.discard(m)
    ticker.place(m)  # no longer a member: nothing happens
    # its ticks keep the phase of the group it moved to (the median: a loaded machine is late at
    # times), and none came before its deadline (a timer that fires early is not served yet)
    phase = ticker._deadlines[(group - 1) % 8] % 0.020
    offsets = sorted(abs((t - phase + 0.010) % 0.020 - 0.010) for t in m.times)
    assert len(offsets) >= 10 and offsets[len(offsets) // 2] < 0.002
    assert m.times[0] >= due - 0.0025


async def test_lateness_quantiles_are_over_the_last_window() -> None:
    from audionet.audiosocket.clock import LATENESS_WINDOW

    ticker = Ticker(asyncio.get_running_loop())
    assert ticker.lateness(0.99) == 0.0
    values = [(i * 7919 % 1000) / 1e5 for i in range(LATENESS_WINDOW + 500)]
    for v in values:
        ticker._record(v / 2, v)
    last = sorted(values[-LATENESS_WINDOW:])
    for q in (0.5, 0.99, 1.0):
        k = min(len(last) - 1, int(q * len(last)))
        assert ticker.lateness(q) == last[k]
        assert ticker.lateness(q, end=False) == pytest.approx(last[k] / 2)
    counts, total = ticker.lateness_histogram()
    assert sum(counts) == len(values) and total == pytest.approx(sum(values))
