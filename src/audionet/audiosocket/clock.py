"""One shared 20 ms ticker per event loop that drives the outgoing clock of every call.

A timer per call would cost one timer-heap operation and one callback per call per tick; one ticker
walks all calls in one callback. Deadlines are on the loop's monotonic clock: ``start + k * period``.
When the loop falls behind, the ticker runs once, late, and then moves on to the next deadline in the
future: it never bursts to catch up (Asterisk would play a burst at once). Lateness of every tick is
recorded so servers and load generators can report it. Deadlines and lateness use ``time.monotonic``
(the clock of asyncio's ``loop.time``), not ``loop.time()`` itself: uvloop's has millisecond steps.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from audionet.audiosocket.proto import FRAME_MS

PERIOD = FRAME_MS / 1000
#: Lateness samples kept (60 s of 20 ms ticks) for percentiles.
LATENESS_WINDOW = 3000


class Ticking(Protocol):
    def tick(self) -> None: ...


class Ticker:
    """Calls ``member.tick()`` for every member every ``period`` seconds while it has members."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = PERIOD) -> None:
        self.loop = loop
        self.period = period
        self._members: dict[Ticking, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        #: Seconds late at the start of a tick, and after its last member ticked (ring buffers).
        self.start_lateness: list[float] = []
        self.end_lateness: list[float] = []
        self._pos = 0
        self.ticks = 0
        self.skipped = 0
        #: Called after each tick with (deadline, now) -- used by load generators.
        self.after_tick: Callable[[float, float], None] | None = None

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: Ticking) -> None:
        self._members[member] = None
        if self._handle is None:
            self._deadline = time.monotonic() + self.period
            self._handle = self.loop.call_later(self.period, self._tick)

    def discard(self, member: Ticking) -> None:
        self._members.pop(member, None)
        if not self._members and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _record(self, start: float, end: float) -> None:
        if len(self.start_lateness) < LATENESS_WINDOW:
            self.start_lateness.append(start)
            self.end_lateness.append(end)
        else:
            self.start_lateness[self._pos] = start
            self.end_lateness[self._pos] = end
            self._pos = (self._pos + 1) % LATENESS_WINDOW

    def _tick(self) -> None:
        loop = self.loop
        deadline = self._deadline
        start = time.monotonic()
        for member in list(self._members):
            try:
                member.tick()
            except Exception as exc:  # one bad member must not stop the clock of every other call
                loop.call_exception_handler({"message": "call tick failed", "exception": exc})
                self._members.pop(member, None)
        end = time.monotonic()
        self.ticks += 1
        self._record(start - deadline, end - deadline)
        if self.after_tick is not None:
            self.after_tick(deadline, end)
        if not self._members:
            self._handle = None
            return
        nxt = deadline + self.period
        if nxt <= end:  # late by a whole period or more: skip ahead, never burst
            missed = math.floor((end - deadline) / self.period)
            self.skipped += missed
            nxt = deadline + (missed + 1) * self.period
        self._deadline = nxt
        self._handle = loop.call_later(nxt - time.monotonic(), self._tick)

    def lateness(self, q: float, end: bool = True) -> float:
        """The ``q`` quantile (0..1) of tick lateness in seconds over the last minute."""
        data = sorted(self.end_lateness if end else self.start_lateness)
        if not data:
            return 0.0
        return data[min(len(data) - 1, int(q * len(data)))]


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def get_ticker(loop: asyncio.AbstractEventLoop | None = None) -> Ticker:
    """The shared 20 ms ticker of ``loop`` (the running loop by default)."""
    loop = loop or asyncio.get_running_loop()
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = Ticker(loop)
    return ticker
