"""The per-frame core of a call: the clock's decision and the straight path of one frame.

Three parts of a call run once per 20 ms frame: the outgoing clock's answer to "does the next
frame leave now?" (:meth:`FrameCore._clock`, the rules of :mod:`audionet.audiosocket.schedule`),
the receive callback for a whole audio frame of the call's own kind that the echo sends straight
back (:meth:`FrameCore.data_received`), and the ticker's call at a deadline that sends the next
whole frame queued or silence (:meth:`FrameCore.tick`). Everything else a call does (locking onto
the caller's phase, the catch-up after a stall, queueing, events, the general parse, a peer that
reads nothing) is in Python and is called from here when it applies.

:class:`PyFrameCore` is the reference, in Python. The C extension ``_framecore`` (built with the
package where a C compiler is found; optional) is its twin, the same decisions to the bit (a
property test runs both on the same inputs and compares every field after every step), without an
interpreter frame, a float object or an attribute lookup per frame. :data:`FrameCore` is the C
type when it is built and ``AUDIONET_PURE_PYTHON`` is not set, else :class:`PyFrameCore`;
:data:`NATIVE` says which.

The clock's constants live in :mod:`audionet.audiosocket.schedule`, which hands them to both twins
with :func:`configure` as it is imported.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audionet.audiosocket.call import Call
    from audionet.audiosocket.pacing import OutgoingAudio

__all__ = ["NATIVE", "FrameCore", "PyFrameCore", "configure"]

# Set by configure() (from audionet.audiosocket.schedule) before any clock runs.
_PERIOD = _SLOT = _EARLY = _MIN_GAP = _AIM = 0.0


def _configure_py(period: float, slot: float, early: float, min_gap: float, aim: float) -> None:
    global _PERIOD, _SLOT, _EARLY, _MIN_GAP, _AIM
    _PERIOD, _SLOT, _EARLY, _MIN_GAP, _AIM = period, slot, early, min_gap, aim


class PyFrameCore:
    """The per-frame state and decisions of one call (the reference implementation).

    A subclass provides ``_lock(now, miss, check)``, ``_reschedule(now)`` and ``_pass(now)`` (the
    clock's rarer moves: :class:`~audionet.audiosocket.schedule.FrameClock`), and
    ``_received(data)``, ``_reply(data, leaves)``, ``_tick_slow()`` and ``_send_ticked()``
    (the connection's general receive path, the echo's queued one, a tick while the peer reads
    nothing, and a tick that sends queued PCM: :class:`~audionet.audiosocket.connection.CallConnection`),
    and the attributes ``call`` and ``out``.
    """

    __slots__ = (
        "_echo",
        "_echoed",
        "_fast_head",
        "_fast_len",
        "_grid",
        "_last",
        "_msgs",
        "_next_sample",
        "_off_grid",
        "_open",
        "_paused",
        "_pcm",
        "_sample",
        "_silenced",
        "_stopped",
        "_ticked",
        "_write",
        "due",
    )

    #: The call's queue (whole frames, then PCM; a frame goes straight back only when both are
    #: empty) and its transport's ``write``: set by the connection as the call starts.
    _msgs: deque[bytes] | None
    _pcm: bytearray
    _write: Callable[[bytes], object]
    #: The call (its ``_room_waiter``) and its outgoing audio (``silence``, ``silence_message``).
    call: Call | None
    out: OutgoingAudio | None

    def __init__(self) -> None:
        #: The deadline of the next frame: one of the ticker's deadlines.
        self.due = 0.0
        #: The next frame's deadline on the grid (``n_k + offset``); ``due`` is later only while
        #: catching up after a stall.
        self._grid = 0.0
        #: The earliest time the next frame may leave on the caller's arrival.
        self._open = 0.0
        #: When the last frame left.
        self._last = float("-inf")
        #: The next arrival is the first since our last frame, a sample of the caller's phase (1),
        #: and the first after a move of the deadlines, to be checked (2); 0: not a sample.
        self._sample = 1
        self._next_sample = 1
        #: The next deadline is off the grid (catching up after a stall).
        self._off_grid = False
        #: No frame may leave (the peer reads nothing, or the call is over).
        self._stopped = False
        #: The straight path: a read of exactly ``_fast_len`` bytes (0: the path is closed) that
        #: starts with ``_fast_head`` is one whole frame; ``_echo``: the handler sends it back.
        self._fast_len = 0
        self._fast_head = b""
        self._echo = False
        #: Frames sent straight back, not yet added to the server's counters.
        self._echoed = 0
        #: The peer reads nothing (its socket's buffer is full): the ticks go the long way.
        self._paused = False
        #: Frames the ticker's call sent from the queue of whole frames, and silent frames it sent,
        #: not yet added to the server's counters.
        self._ticked = 0
        self._silenced = 0

    def _clock(self, now: float, heard: bool) -> bool:
        """Whether the call's next frame leaves now (``time.monotonic()``): ``heard``, the caller's
        audio just arrived; else the ticker found :attr:`due` come. On yes, the caller sends exactly
        one frame, and :attr:`due` is already the deadline of the next."""
        if heard:
            sample = self._sample
            if sample:
                self._sample = 0
                miss = now - self.due + _AIM  # against where the lock aims
                if miss > _SLOT or miss < -_SLOT or sample == 2:
                    self._lock(now, miss, sample == 2)
            if now < self._open:
                return False
        if self._stopped:
            if not heard:
                self._pass(now)
            return False
        self._last = now
        self._sample = self._next_sample
        grid = self._grid + _PERIOD
        self._grid = grid
        opens = grid - _EARLY
        # On time (now <= the deadline just met, as EARLY + MIN_GAP == PERIOD) and on the grid:
        # the usual case. Anything else (late, catching up) goes the long way.
        if now + _MIN_GAP <= opens and not self._off_grid:
            self.due = grid
            self._open = opens
            return True
        self._reschedule(now)
        return True

    def data_received(self, data: bytes) -> None:
        # The hottest path: exactly one whole frame of the call's own kind (Asterisk writes one
        # message per 20 ms frame, and each usually arrives in a read of its own), for the echo,
        # whose reply is the frame itself.
        if (
            len(data) == self._fast_len
            and self._echo
            and type(data) is bytes  # (as the C twin: both loops hand ``bytes``)
            and data.startswith(self._fast_head)
        ):
            leaves = self._clock(monotonic(), True)
            if leaves and not self._msgs and not self._pcm:
                # nothing queued before it: the frame goes straight back, never through the
                # queue (the steady state of an echo once the clock has locked on)
                self._write(data)
                self._echoed += 1  # a frame in and the same frame out
                return
            self._reply(data, leaves)
            return
        self._received(data)

    def tick(self) -> None:
        """The shared ticker's call: this call's deadline has come. The frame that leaves is the
        next whole frame queued, else silence when nothing is queued, else (queued PCM, a peer
        that reads nothing) the connection's ``_tick_slow``/``_send_ticked`` decide."""
        if self._paused:
            self._tick_slow()
            return
        if not self._clock(monotonic(), False):
            return
        msgs = self._msgs
        if msgs:  # a whole frame queued as it came (an echo that is not straight back)
            self._write(msgs.popleft())
            self._ticked += 1
            call = self.call
            if call._room_waiter is not None:  # type: ignore[union-attr]  # set with _msgs
                call._on_sent()  # type: ignore[union-attr]
            return
        out = self.out
        if not self._pcm and out is not None and out.silence:  # a silent caller's usual frame
            self._write(out.silence_message)
            self._silenced += 1
            return
        self._send_ticked()

    # -- provided by subclasses --------------------------------------------------------------------

    def _lock(self, now: float, miss: float, check: bool) -> None:
        raise NotImplementedError

    def _reschedule(self, now: float) -> None:
        raise NotImplementedError

    def _pass(self, now: float) -> None:
        raise NotImplementedError

    def _received(self, data: bytes) -> None:
        raise NotImplementedError

    def _reply(self, reply: bytes | None, leaves: bool) -> None:
        raise NotImplementedError

    def _tick_slow(self) -> None:
        raise NotImplementedError

    def _send_ticked(self) -> None:
        raise NotImplementedError


NATIVE = False
_configure_native: Callable[..., Any] | None = None
# Configured whenever it is built (the tests compare it with the Python twin either way); not
# built where the package was installed without a C compiler.
with contextlib.suppress(ImportError):
    from audionet.audiosocket._framecore import configure as _configure_native
if TYPE_CHECKING:
    FrameCore = PyFrameCore
else:
    FrameCore = PyFrameCore
    if _configure_native is not None and not os.environ.get("AUDIONET_PURE_PYTHON"):
        from audionet.audiosocket._framecore import FrameCore

        NATIVE = True


def configure(period: float, slot: float, early: float, min_gap: float, aim: float) -> None:
    """Hand the clock's constants (:mod:`audionet.audiosocket.schedule`) to both twins."""
    _configure_py(period, slot, early, min_gap, aim)
    if _configure_native is not None:
        _configure_native(period, slot, early, min_gap, aim)
