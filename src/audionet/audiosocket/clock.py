"""One shared 20 ms ticker per event loop that drives the outgoing clock of every call.

A timer per call would cost one timer-heap operation and one callback per call per tick; one ticker
walks all calls in one callback. Deadlines are on the loop's monotonic clock: ``base + k * slot``.
When the loop falls behind, the ticker runs once, late, and then moves on to the next deadline in the
future: it never bursts to catch up (Asterisk would play a burst at once). Lateness of every tick is
recorded so servers and load generators can report it. Deadlines and lateness use ``time.monotonic``
(the clock of asyncio's ``loop.time``), not ``loop.time()`` itself: uvloop's has millisecond steps.

The ticker only keeps time; it decides nothing about a member's frames. Each member carries ``due``,
the deadline of its next frame, always one of the ticker's deadlines (:meth:`Ticker.align`), and
sits in the group served at that phase (:meth:`Ticker.place` after it moves ``due`` to another
phase). The ticker calls ``member.tick()`` when ``due`` has come; the member sends its frame (or not)
and sets its next ``due`` itself. A member that sent its frame before the deadline (a call answering
the caller's frame as it arrives) has already moved ``due`` on, and the ticker passes it by.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from bisect import bisect_left
from typing import Protocol

import numpy as np

from audionet.audiosocket.schedule import PERIOD, PHASES, SLOT
from audionet.audiosocket.wakeup import Wakeup, wakeup

__all__ = ["LATENESS_BUCKETS", "PERIOD", "PHASES", "SLOT", "Ticker", "Ticking", "get_ticker"]
#: Upper bounds (s) of the lateness histogram's buckets; one more bucket holds everything above.
LATENESS_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip
#: Lateness samples kept for percentiles: 60 s of ticks (one per group: 8 groups, 50 times a second).
LATENESS_WINDOW = 24000


class Ticking(Protocol):
    #: The deadline of the member's next frame (time.monotonic): set first by :meth:`Ticker.add`,
    #: then by the member itself, on one of the ticker's deadlines (:meth:`Ticker.align`).
    due: float

    def tick(self) -> None:
        """``due`` has come: send the frame (or not) and set the next ``due``."""


class Ticker:
    """Calls ``member.tick()`` for every member every ``period`` seconds while it has members.

    Members are spread over ``phases`` groups served ``period / phases`` apart (8 groups, 2.5 ms;
    still one timer alive at a time), so that a few thousand calls are not all written in one burst: each call keeps
    an exact ``period`` cadence, and the last call of a group is served sooner after its deadline.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, period: float = PERIOD, phases: int = PHASES
    ) -> None:
        # Weak: the module's map of tickers is keyed weakly by loop, and a ticker keeping its loop
        # alive would keep every loop (and, while it had calls, its wake-up's descriptor) forever.
        self._loop = weakref.ref(loop)
        self.period = period
        self.phases = phases
        self._slot = period / phases
        self._groups: list[dict[Ticking, None]] = [{} for _ in range(phases)]
        self._where: dict[Ticking, int] = {}
        self._deadlines = [0.0] * phases
        #: Group 0's first deadline: every deadline is ``_base + k * _slot`` (group ``k % phases``).
        self._base = 0.0
        self._phase = 0
        #: The one wake-up of the ticker, armed at the next group's deadline while it has members
        #: (a ``timerfd`` where there is one: :mod:`audionet.audiosocket.wakeup`).
        self._handle: Wakeup | None = None
        # Seconds late at the start of a tick, and after its last member ticked: ring buffers of
        # the last LATENESS_WINDOW ticks, in numpy so that a quantile is a partition of floats in
        # C (a scrape reads three: sorting 24,000 Python floats would hold the GIL for ~20 ms,
        # stalling every call's clock once a scrape).
        self._late = np.zeros((2, LATENESS_WINDOW))
        self._count = 0
        self._pos = 0
        #: Every tick's lateness (after its last member) since the start, counted per bucket of
        #: :data:`LATENESS_BUCKETS`, and their sum: a Prometheus histogram, which a reader can
        #: difference over any interval (the ring buffers only hold the last minute).
        self.histogram = [0] * (len(LATENESS_BUCKETS) + 1)
        self.lateness_sum = 0.0
        self.ticks = 0
        self.skipped = 0
        #: How late (s) the last tick with members started: the loop's backlog, as of then.
        self.behind = 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the ticker's event loop is gone")
        return loop

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
            self._base = now + self._slot
            self._deadlines = [self._base + g * self._slot for g in range(self.phases)]
            self._phase = 0
            self._handle = wakeup(self.loop, self._tick)
            self._handle.at(self._base)
        member.due = self._deadlines[group]

    def align(self, t: float) -> float:
        """The first of the ticker's deadlines (of any group) at or after ``t``."""
        base, slot = self._base, self._slot
        return base + math.ceil((t - base) / slot - 1e-6) * slot

    def place(self, member: Ticking) -> None:
        """Move ``member`` into the group whose deadlines its ``due`` (one of the ticker's
        deadlines) belongs to, after the member moved ``due`` to another phase."""
        group = self._where.get(member)
        if group is None:
            return
        new = round((member.due - self._base) / self._slot) % self.phases
        if new != group:
            del self._groups[group][member]
            self._groups[new][member] = None
            self._where[member] = new

    def discard(self, member: Ticking) -> None:
        group = self._where.pop(member, None)
        if group is not None:
            del self._groups[group][member]
        if not self._where and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _record(self, start: float, end: float) -> None:
        self.histogram[bisect_left(LATENESS_BUCKETS, end)] += 1
        self.lateness_sum += end
        pos = self._pos
        late = self._late
        late[0, pos] = start
        late[1, pos] = end
        self._pos = (pos + 1) % LATENESS_WINDOW
        if self._count < LATENESS_WINDOW:
            self._count += 1

    def _tick(self) -> None:
        phase = self._phase
        deadline = self._deadlines[phase]
        group = self._groups[phase]
        start = time.monotonic()
        if start < deadline:  # a timer may fire early (uvloop's are whole milliseconds): not yet
            if self._handle is not None:
                self._handle.at(deadline)
            return
        if group:
            # A member whose frame for this deadline is already sent has its ``due`` later on
            # (half a slot of margin for float sums); every other member is served now, and sets
            # its next ``due`` itself.
            serve_by = deadline + self._slot / 2
            for member in list(group):
                if member.due > serve_by:
                    continue
                try:
                    member.tick()
                except Exception as exc:  # one bad member must not stop the clock of the others
                    self.loop.call_exception_handler(
                        {"message": "call tick failed", "exception": exc}
                    )
                    self.discard(member)
            end = time.monotonic()
            self.ticks += 1
            self._record(start - deadline, end - deadline)
            self.behind = start - deadline
        else:
            end = start
        if not self._where or self._handle is None:
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
        self._handle.at(self._deadlines[self._phase])

    def lateness_histogram(self) -> tuple[list[int], float]:
        """A copy of the per-bucket counts of :attr:`histogram` and the sum of all lateness."""
        return list(self.histogram), self.lateness_sum

    def recent_lateness(self, q: float, seconds: float = 1.0) -> float:
        """The ``q`` quantile (0..1) of how late the ticks of the last ``seconds`` s started."""
        n = min(self._count, max(1, round(seconds * self.phases / self.period)))
        if not self._count:
            return 0.0
        pos = self._pos
        idx = np.arange(pos - n, pos) % LATENESS_WINDOW
        last = self._late[0, idx]
        k = min(n - 1, int(q * n))
        return float(np.partition(last, k)[k])

    def lateness(self, q: float, end: bool = True) -> float:
        """The ``q`` quantile (0..1) of tick lateness in seconds over the last minute."""
        n = self._count
        if not n:
            return 0.0
        k = min(n - 1, int(q * n))
        return float(np.partition(self._late[1 if end else 0, :n], k)[k])


_tickers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Ticker] = weakref.WeakKeyDictionary()


def get_ticker(loop: asyncio.AbstractEventLoop | None = None) -> Ticker:
    """The shared 20 ms ticker of ``loop`` (the running loop by default)."""
    loop = loop or asyncio.get_running_loop()
    ticker = _tickers.get(loop)
    if ticker is None:
        ticker = _tickers[loop] = Ticker(loop)
    return ticker
