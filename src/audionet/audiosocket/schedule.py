"""When a call's next frame leaves: the one place that decides it.

Asterisk writes the audio a server sends into the call at once, with no buffering, so the server
keeps time for it: one 20 ms frame per period. :class:`FrameClock` is that decision, with no I/O
(it is handed the time, and the ticker's :meth:`~audionet.audiosocket.clock.Ticker.align` and
:meth:`~audionet.audiosocket.clock.Ticker.place`). A call's connection asks it at two moments only:
the caller's audio arrived (``heard``) and the ticker found the call's deadline come; it answers
whether the call's next frame leaves now, and sets the deadline of the one after.

The per-frame answer (``_clock``) is in the call's per-frame core
(:mod:`audionet.audiosocket.framecore`: a C twin of the Python reference, the same decisions to
the bit), with this module's constants; :class:`ClockRules` holds the rarer moves it calls (the
lock, the catch-up, a slot that passes), and :class:`FrameClock` joins the two.

The rules, each of which a test pins:

* **A fixed grid.** When the call starts its frames get nominal times ``n_k = n_0 + k * PERIOD``,
  fixed for the whole call. Frame ``k`` is due at ``n_k + offset`` and no frame ever takes a grid
  point from another: one frame per period, whatever the peer does. The grid moves only later,
  never earlier (a slot that passes while the peer reads nothing, a stall longer than
  :data:`CATCH_UP`).
* **Locking onto the caller's phase moves a deadline within its slot, never further.** ``offset``
  is whole ticker slots (2.5 ms), from :data:`MAX_EARLIER` slots earlier to :data:`MAX_LATER` later
  (so any phase can be put in the middle of the window, with room to follow drift), one slot per
  frame at most, and earlier at most :data:`EARLIER_PER_SECOND` times in any second. It moves the
  caller's frames toward :data:`AIM` before the deadline, so that each frame of ours leaves as the
  caller's arrives (one wake-up per frame) with the frame that just arrived (a frame queued
  behind it would stay for the rest of the call: so the lock moves earlier to meet a frame that
  came early, never later to wait for the next). A peer whose frames answer ours (an echo:
  Asterisk's ``Echo()``, a bridge, two servers joined by one call) always seems early, and its
  frames move with ours: after each move the clock checks that the caller's next frame landed a
  slot further into the window, as an independent caller's does; when twice it stayed where it
  was, the caller follows us, and the clock stops locking onto it for the rest of the call (two
  slots moved). A move needs two samples that agree (a frame the caller or the network held up
  once moves nothing).
  Whatever the peer does, the offset's bounds hold, so the rate stays 50 frames/s.
* **A frame leaves at its deadline, or when the caller's audio arrives up to** :data:`EARLY`
  **before it, and never within** :data:`MIN_GAP` **of the previous frame.** Within any second the
  offset moves earlier by at most two slots, so a frame leaves at most ``2 * SLOT + EARLY`` (15 ms)
  earlier against the grid than one a second before it: any 1 s holds at most 51 frames, unless a
  frame in it left more than :data:`LATE` after its deadline (the loop was held up that long; such
  frames are counted, ``late``), and then one more.
* **Catch-up after a stall of our own loop.** When the loop was held up past a deadline (a busy
  machine, a paused process), the missed frames leave one per :data:`MIN_GAP`, at the ticker's
  pace, until the call is back on its grid; a stall longer than :data:`CATCH_UP` gives up the
  frames beyond it (the grid moves later). This is the only time a call sends faster than one frame
  per period, and only the loop can cause it: the peer's timing never moves a deadline earlier
  than the offset allows, so it never starts one.
* **A peer that reads nothing** (its socket's buffer full) sends nothing: its slots pass, and are not
  made up later.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from audionet.audiosocket.framecore import FrameCore, PyFrameCore, configure
from audionet.audiosocket.proto import FRAME_MS

PERIOD = FRAME_MS / 1000
#: The shared ticker serves its members in this many groups per period (one timer alive at a time).
PHASES = 8
#: The ticker's resolution: deadlines and offsets are whole slots.
SLOT = PERIOD / PHASES
#: How early (s) a frame may leave before its deadline, when the caller's audio arrives.
EARLY = 0.010
#: No two frames of a call closer than this (s); also the catch-up's pace after a stall.
MIN_GAP = 0.010
#: How far (in slots) locking onto the caller's phase may move a deadline from the call's grid,
#: earlier and later: whatever its phase, a caller's frame is AIM before a deadline moved at most
#: 5 slots earlier or 3 later; a slot more either way follows drift.
MAX_EARLIER = 6
MAX_LATER = 4
#: Moves of the deadlines earlier allowed in any second (a move later may come every frame). With
#: EARLY, this bounds what a second can gain on the grid: 2 slots + EARLY = 15 ms < PERIOD.
EARLIER_PER_SECOND = 2
#: The longest stall of our own loop (s) that the clock makes up for; frames beyond it are given up.
CATCH_UP = 0.2
#: A frame that leaves more than this (s) after its deadline is counted as late (PERIOD - 2 slots
#: - EARLY: what a 1 s window can take without holding a 52nd frame).
LATE = 0.005
#: Where the lock puts the caller's frames: this long (s) before the deadline, in the earlier
#: part of the window (give or take a slot). A frame that comes a little earlier than usual still
#: leaves on arrival or waits for the deadline (one frame delayed); one that comes up to AIM late
#: still comes before the deadline, where one that came after it would find its slot sent
#: without it (silence, and each later frame a period behind: a standing backlog).
AIM = 0.0065
configure(PERIOD, SLOT, EARLY, MIN_GAP, AIM)


class TickerLike(Protocol):
    """What the clock needs from the shared ticker."""

    #: How late (s) the last tick with members started: the loop's backlog, as of then.
    behind: float

    def align(self, t: float) -> float: ...
    def place(self, member: Any) -> None: ...  # a FrameClock that is a ticker member


if TYPE_CHECKING:  # the core's fields (due, _grid, ...), declared once, in PyFrameCore
    _Core = PyFrameCore
else:
    _Core = object


class ClockRules(_Core):
    """The outgoing clock of one call, less its per-frame decision: the rarer moves (locking onto
    the caller's phase, the catch-up after a stall, a slot that passes unsent) and their state.

    The decision itself, :meth:`~audionet.audiosocket.framecore.PyFrameCore._clock` (whether the
    call's next frame leaves now), is in the call's per-frame core
    (:mod:`audionet.audiosocket.framecore`, in C where it is built), which calls these methods when
    they apply. :class:`FrameClock` joins the two.
    """

    if not TYPE_CHECKING:  # no state of its own (it would conflict with the core's layout); mypy
        __slots__ = ()  # sees the fields it uses declared below and in PyFrameCore

    _ticker: TickerLike | None
    _off: int
    _drop1: float
    _drop2: float
    _expect: float
    _prev_miss: float
    _prev_at: float
    _echo_score: int
    _follows: bool
    caught_up: int
    given_up: int
    late: int

    def __init__(self) -> None:
        super().__init__()
        #: The deadlines' offset from the grid, in slots.
        self._off = 0
        #: When the last two moves earlier were made (EARLIER_PER_SECOND).
        self._drop1 = self._drop2 = -math.inf
        #: Where the caller's frame is expected after a move (the check of the next sample).
        self._expect = 0.0
        #: The last sample out of the window's middle, and when it came.
        self._prev_miss = 0.0
        self._prev_at = -math.inf
        #: Checks after a move that found the caller's frame where it was (reset by one that
        #: found it a slot on); at 2 the caller's frames move with ours (an echo), and the clock
        #: no longer locks onto them (``_follows``).
        self._echo_score = 0
        self._follows = False
        self._ticker = None
        #: Frames sent by the catch-up after a stall, and frames given up (stalls beyond CATCH_UP,
        #: slots that passed while the peer read nothing).
        self.caught_up = 0
        self.given_up = 0
        #: Frames that left more than LATE after their deadline (the loop was held up).
        self.late = 0

    def start_clock(self, ticker: TickerLike) -> None:
        """Start the grid at :attr:`due` (set by ``Ticker.add``)."""
        self._ticker = ticker
        self._grid = self.due
        self._open = self.due - EARLY

    def _reschedule(self, now: float) -> None:
        """After a frame that left late (or off the grid): the next deadline, with the catch-up."""
        ticker = self._ticker
        assert ticker is not None
        grid = self._grid
        earliest = now + MIN_GAP
        if self._off_grid:
            self.caught_up += 1
        elif now > grid - PERIOD + LATE:
            self.late += 1
        if grid < earliest:  # the loop was held up: behind the grid by more than PERIOD - MIN_GAP
            behind = earliest - grid
            if behind > CATCH_UP:  # too long a stall to make up for: give up the frames beyond
                n = math.ceil((behind - CATCH_UP) / PERIOD)
                grid += n * PERIOD
                self._grid = grid
                self.given_up += n
            due = max(grid, ticker.align(earliest))
        else:
            due = grid
        self.due = due
        self._open = max(grid - EARLY, earliest)
        self._off_grid = due != grid
        ticker.place(self)

    def _pass(self, now: float) -> None:
        """The deadline came while no frame may leave: the slot passes unsent (never made up)."""
        grid = self._grid + PERIOD
        if grid <= now:
            grid += math.ceil((now - grid) / PERIOD + 1e-9) * PERIOD
        self.given_up += round((grid - self._grid) / PERIOD)
        self._grid = grid
        self.due = grid
        self._open = max(grid - EARLY, self._last + MIN_GAP)
        if self._off_grid:
            self._off_grid = False
            assert self._ticker is not None
            self._ticker.place(self)

    def _lock(self, now: float, miss: float, check: bool) -> None:
        """The caller's frame came ``miss`` s after where the lock aims (before it if negative): move the deadlines a slot toward it, within the offset's bounds, once two
        samples in a row agree. ``check``: the first sample after a move, which an independent
        caller's frame meets a slot further on, and our own echo where it was."""
        ticker = self._ticker
        if check:
            self._next_sample = 1
            if abs(miss - self._expect) <= SLOT / 2:  # moved with the deadline: independent
                self._echo_score = 0
            elif abs(miss - self._prev_miss) <= SLOT / 2:  # moved with our frames: an echo
                self._echo_score += 1
                self._follows = self._echo_score >= 2
            self._prev_miss, self._prev_at = miss, now
            return
        if self._follows or self._off_grid or ticker is None:  # (catching up: arrival times tell
            return  # nothing of the caller's phase)
        prev, prev_at = self._prev_miss, self._prev_at
        self._prev_miss, self._prev_at = miss, now
        if now - prev_at > 1.5 * PERIOD or abs(miss - prev) > SLOT / 2:
            return  # one sample: wait for the next to agree
        off = self._off
        if miss > 0:  # later in the window, or after the deadline (the ticker is late)
            if off >= MAX_LATER or ticker.behind >= SLOT:  # a busy loop reads late: no phase
                return
            self._off = off + 1
            self._grid += SLOT
            self._expect = miss - SLOT
        else:
            grid = self._grid - SLOT
            if off <= -MAX_EARLIER or now - self._drop1 < 1.0 or grid < self._last + MIN_GAP:
                return
            self._drop1, self._drop2 = self._drop2, now
            self._off = off - 1
            self._grid = grid
            self._expect = miss + SLOT
        self._next_sample = 2
        grid = self._grid
        self.due = grid
        self._open = max(grid - EARLY, self._last + MIN_GAP)
        ticker.place(self)


#: The slots of :class:`ClockRules`' state, for a class that joins it to a per-frame core.
RULES_SLOTS = (
    "_drop1",
    "_drop2",
    "_echo_score",
    "_expect",
    "_follows",
    "_off",
    "_prev_at",
    "_prev_miss",
    "_ticker",
    "caught_up",
    "given_up",
    "late",
)


class FrameClock(ClockRules, FrameCore):
    """The outgoing clock of one call; a base class of its connection (one object per call, so the
    per-frame path reads its state with no extra indirection).

    The connection sets :attr:`due` (from ``Ticker.add``) and calls :meth:`start_clock`, keeps
    :attr:`_stopped` true while no frame may leave (the peer reads nothing, or the call is over),
    and asks :meth:`_clock` at each arrival of the caller's audio and each tick; it sends exactly
    one frame whenever the answer is yes.
    """

    __slots__ = RULES_SLOTS
