"""A one-shot wake-up at a deadline on ``time.monotonic``'s clock, for the shared ticker.

uvloop's timers count whole milliseconds from the loop's cached time (``call_later`` rounds the delay
to a millisecond, and one under half a millisecond becomes ``call_soon``), so a timer for a 2.5 ms
slot fires up to a millisecond early; the ticker then re-arms it for the rest, which under half a
millisecond runs at once, again and again until the deadline: a busy loop. Measured on an idle
uvloop loop with one 2.5 ms ticker: 400 ticks and about 114,000 early wake-ups a second, 17% of a
core (none on the standard loop, whose ``epoll`` timeouts round up, firing up to a millisecond
late). With calls up, each such wake-up is a whole loop iteration (an ``epoll_wait`` and the
ticker's Python callback) for nothing: at 500 echo calls the ticker ran about 2,000 times a second
instead of 400.

On Linux a ``timerfd`` (``timerfd_create(2)`` through ctypes, as :mod:`audionet.dns.mmsg` does for
``recvmmsg``) armed at the deadline's absolute time on ``CLOCK_MONOTONIC`` (the clock of
``time.monotonic``) fires once, at the deadline to the nanosecond and never before it, on either
loop; the loop sees it as a readable descriptor (``loop.add_reader``). Elsewhere, or on a loop
without ``add_reader``, :class:`LoopTimer` is ``loop.call_later`` as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import math
import os
import time
import weakref
from collections.abc import Callable
from typing import Protocol

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC


class Wakeup(Protocol):
    def at(self, deadline: float) -> None:
        """Call the callback once at ``deadline`` (``time.monotonic()``), or at once if it has
        passed; replaces any earlier deadline."""

    def cancel(self) -> None:
        """Never call the callback again, and release what the wake-up holds (idempotent; a
        cancelled wake-up cannot be armed again)."""


class LoopTimer:
    """``loop.call_later``: whole milliseconds on uvloop (a deadline may come early: the caller
    checks the time and asks again)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._handle: asyncio.TimerHandle | None = None

        self._cancelled = False

    def at(self, deadline: float) -> None:
        if self._cancelled:
            raise RuntimeError("this wake-up was cancelled: make a new one")
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._loop.call_later(deadline - time.monotonic(), self._callback)

    def cancel(self) -> None:
        self._cancelled = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
    except (OSError, AttributeError):  # not Linux (no timerfd), or no libc to load
        return None
    return libc


_LIBC = _libc()


class TimerFd:
    """A ``timerfd`` on ``CLOCK_MONOTONIC`` read by the loop: fires at the deadline, never before."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        if _LIBC is None:
            raise OSError("no timerfd here (Linux only)")
        fd = _LIBC.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        try:
            loop.add_reader(fd, self._fire)
        except BaseException:
            os.close(fd)
            raise
        self._fd: int = fd
        #: Weak: the loop holds this wake-up (its reader), and the ticker holds it from a
        #: module-wide map keyed weakly by loop; a strong reference back would keep every loop alive.
        self._loop = weakref.ref(loop)
        #: Closes the descriptor once: on cancel, or when the loop is collected before that.
        self._close = weakref.finalize(loop, os.close, fd)
        self._callback = callback
        self._spec = _Itimerspec()
        self._ref = ctypes.byref(self._spec)
        self._value = self._spec.it_value
        self._settime = _LIBC.timerfd_settime

    @property
    def fd(self) -> int:
        """The descriptor, or -1 once cancelled."""
        return self._fd

    def at(self, deadline: float) -> None:
        if self._fd < 0:
            raise RuntimeError("this wake-up was cancelled: make a new one")
        # one nanosecond more than the deadline rounded up: a float's last bit never makes it early
        # (and an absolute time of 0 would disarm the timer; a deadline passed fires at once)
        sec, nsec = divmod(max(math.ceil(deadline * 1e9) + 1, 1), 1_000_000_000)
        value = self._value
        value.tv_sec = sec
        value.tv_nsec = nsec
        if self._settime(self._fd, TFD_TIMER_ABSTIME, self._ref, None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")

    def _fire(self) -> None:
        try:
            os.read(self._fd, 8)  # the expiry count: clears the descriptor's readiness
        except BlockingIOError:  # (not expired after all: re-armed for later meanwhile)
            return
        self._callback()

    def cancel(self) -> None:
        if self._fd < 0:
            return
        loop = self._loop()
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)
        self._fd = -1
        self._close()


def wakeup(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> Wakeup:
    """A :class:`TimerFd` where the system and the loop allow one, else a :class:`LoopTimer`."""
    if _LIBC is not None:
        with contextlib.suppress(OSError, NotImplementedError):
            return TimerFd(loop, callback)
    return LoopTimer(loop, callback)
