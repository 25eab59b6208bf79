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
from typing import Protocol

from audionet.audiosocket.proto import FRAME_MS

PERIOD = FRAME_MS / 1000
#: Lateness samples kept for percentiles: 60 s of ticks (one per group: 8 groups, 50 times a second).
LATENESS_WINDOW = 24000


class Ticking(Protocol):
    def tick(self) -> None: ...


class Ticker:
    """Calls ``member.tick()`` for every member every ``period`` seconds while it has members.

    Members are spread over ``phases`` groups served ``period / phases`` apart (8 groups, 2.5 ms;
    still one timer alive at a time), so that a few thousand calls are not all written in one burst: each call keeps
    an exact ``period`` cadence, and the last call of a group is served sooner after its deadline.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, period: float = PERIOD, phases: int = 8
    ) -> None:
        self.loop = loop
        self.period = period
        self.phases = phases
        self._slot = period / phases
        self._groups: list[dict[Ticking, None]] = [{} for _ in range(phases)]
        self._where: dict[Ticking, int] = {}
        self._deadlines = [0.0] * phases
        self._phase = 0
        self._handle: asyncio.TimerHandle | None = None
        #: Seconds late at the start of a tick, and after its last member ticked (ring buffers).
        self.start_lateness: list[float] = []
        self.end_lateness: list[float] = []
        self._pos = 0
        self.ticks = 0
        self.skipped = 0

    def __len__(self) -> int:
        return len(self._where)

    def add(self, member: Ticking) -> None:
        if member in self._where:
            return
        group = min(range(self.phases), key=lambda g: len(self._groups[g]))
        self._groups[group][member] = None
        self._where[member] = group
        if self._handle is None:
            now = time.monotonic()
            self._deadlines = [now + (g + 1) * self._slot for g in range(self.phases)]
            self._phase = 0
            self._handle = self.loop.call_later(self._slot, self._tick)

    def discard(self, member: Ticking) -> None:
        group = self._where.pop(member, None)
        if group is not None:
            del self._groups[group][member]
        if not self._where and self._handle is not None:
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
        phase = self._phase
        deadline = self._deadlines[phase]
        group = self._groups[phase]
        start = time.monotonic()
        if group:
            for member in list(group):
                try:
                    member.tick()
                except Exception as exc:  # one bad member must not stop the clock of the others
                    loop.call_exception_handler({"message": "call tick failed", "exception": exc})
                    self.discard(member)
            end = time.monotonic()
            self.ticks += 1
            self._record(start - deadline, end - deadline)
        else:
            end = start
        if not self._where:
            self._handle = None
            return
        # This group's next deadline is one period on; if that has already passed (we were a whole
        # period late or more), the missed deadlines are skipped: never a burst of frames to catch up.
        nxt = deadline + self.period
        if nxt <= end:
            missed = math.floor((end - nxt) / self.period) + 1
            self.skipped += missed
            nxt += missed * self.period
        self._deadlines[phase] = nxt
        self._phase = min(range(self.phases), key=self._deadlines.__getitem__)
        self._handle = loop.call_later(self._deadlines[self._phase] - time.monotonic(), self._tick)

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
