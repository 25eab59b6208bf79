"""The per-frame core's two twins make the same decisions: the C extension (``_framecore``) and
the Python reference (``PyFrameCore``), run side by side on the same inputs, with every field of
the clock compared after every step; and the receive callback routes each read the same way.

The rules themselves are tested in test_schedule.py (virtual time) and over real sockets in
test_peers.py and test_connection.py, with the core the package loads (C where it is built); the
pure-Python one runs a few of those tests again in a process of its own (AUDIONET_PURE_PYTHON).
"""

from __future__ import annotations

import gc
import math
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audionet.audiosocket import framecore
from audionet.audiosocket.framecore import PyFrameCore
from audionet.audiosocket.schedule import PERIOD, RULES_SLOTS, SLOT, ClockRules

from .util import FakeTicker

try:
    from audionet.audiosocket._framecore import FrameCore as CFrameCore
except ImportError:  # pragma: no cover - the extension is built wherever the tests run in CI
    CFrameCore = None

ROOT = Path(__file__).resolve().parents[2]

native = pytest.mark.skipif(
    CFrameCore is None and not os.environ.get("CI"),
    reason="the C extension is not built here (pip install -e . with a C compiler builds it)",
)

FIELDS = (
    "due", "_grid", "_open", "_last", "_sample", "_next_sample", "_off_grid", "_stopped",
    "_off", "_drop1", "_drop2", "_expect", "_prev_miss", "_prev_at", "_echo_score", "_follows",
    "caught_up", "given_up", "late",
)  # fmt: skip


class PyClock(ClockRules, PyFrameCore):
    __slots__ = RULES_SLOTS


def c_clock() -> Any:
    if CFrameCore is None:
        pytest.fail("the C extension _framecore is not built (CI builds it: pip install -e .)")

    class CClock(ClockRules, CFrameCore):  # type: ignore[misc,valid-type]
        __slots__ = RULES_SLOTS

    return CClock()


def state(clock: Any) -> tuple[Any, ...]:
    return tuple(getattr(clock, f) for f in FIELDS)


steps = st.lists(
    st.tuples(
        st.floats(0.0, 0.03),  # time since the step before
        st.sampled_from(["heard", "heard", "tick", "due", "stop", "go"]),
        st.floats(0.0, 0.004),  # how late the ticker is (its ``behind``)
    ),
    max_size=300,
)


@native
@settings(max_examples=300, deadline=None)
@given(start=st.floats(0.0, 100.0), steps=steps)
def test_the_c_clock_decides_as_the_python_one_to_the_bit(
    start: float, steps: list[tuple[float, str, float]]
) -> None:
    py, c = PyClock(), c_clock()
    tickers = FakeTicker(), FakeTicker()
    for clock, ticker in zip((py, c), tickers, strict=True):
        clock.due = math.ceil(start / SLOT) * SLOT
        clock.start_clock(ticker)
    assert state(py) == state(c)
    now = start
    for dt, kind, behind in steps:
        if kind == "due":  # the ticker serves the deadline (when it is ahead), late by ``behind``
            now = max(now, py.due + behind)
        else:
            now += dt
        answers = []
        for clock, ticker in zip((py, c), tickers, strict=True):
            if kind in ("stop", "go"):
                clock._stopped = kind == "stop"
                continue
            ticker.behind = behind
            answers.append(clock._clock(now, kind == "heard"))
        assert answers[:1] == answers[1:]
        assert state(py) == state(c), (kind, now)


@native
def test_a_steady_caller_takes_the_same_path_in_both() -> None:
    """A caller's frames every PERIOD, at a phase that makes the lock move the deadlines later,
    then at one that makes it move them earlier, some frames held up: the long paths (_lock,
    _reschedule) are taken, and both twins agree throughout."""
    py, c = PyClock(), c_clock()
    for clock in (py, c):
        clock.due = 0.0075
        clock.start_clock(FakeTicker())
    offsets = set()
    for k in range(800):
        phase = 0.0072 if k < 400 else 0.0072 - 0.012  # just before the deadline, then early
        now = phase + k * PERIOD + (0.0004 if k % 7 == 0 else 0.0)
        answers = [clock._clock(now, True) for clock in (py, c)]
        assert answers[0] == answers[1]
        for clock in (py, c):
            while clock.due <= now + PERIOD / 2 and clock._clock(clock.due, False):
                pass
        assert state(py) == state(c)
        offsets.add(py._off)
    assert max(offsets) >= 2 and min(offsets) < max(offsets) - 2  # moved later, then earlier


HEAD = b"\x10\x01\x40"
FRAME = HEAD + bytes(320)


class Route:
    """A connection stub: records what the receive callback did with each read."""

    def _received(self, data: bytes) -> None:
        self.log.append(("received", data))  # type: ignore[attr-defined]

    def _reply(self, reply: bytes | None, leaves: bool) -> None:
        self.log.append(("reply", reply, leaves))  # type: ignore[attr-defined]

    def _lock(self, now: float, miss: float, check: bool) -> None:
        self.log.append(("lock",))  # type: ignore[attr-defined]

    def _reschedule(self, now: float) -> None:
        self.log.append(("reschedule",))  # type: ignore[attr-defined]

    def _pass(self, now: float) -> None:
        self.log.append(("pass",))  # type: ignore[attr-defined]

    def _tick_slow(self) -> None:
        self.log.append(("tick_slow",))  # type: ignore[attr-defined]

    def _send_ticked(self) -> None:
        self.log.append(("send_ticked",))  # type: ignore[attr-defined]


class CallStub:
    def __init__(self, log: list[Any], waits: bool) -> None:
        self.log = log
        self._room_waiter = object() if waits else None

    def _on_sent(self) -> None:
        self.log.append(("on_sent",))


class OutStub:
    silence_message = HEAD + bytes(320)

    def __init__(self, silence: bool) -> None:
        self.silence = silence


class PyRoute(Route, PyFrameCore):
    __slots__ = ("call", "log", "out")


def routed(core: Any, data: bytes, *, echo: bool, queued: bool, leaves: bool) -> tuple[Any, ...]:
    core.log = []
    writes: list[bytes] = []
    core._write = writes.append
    core._fast_len = len(FRAME)
    core._fast_head = HEAD
    core._echo = echo
    core._msgs = deque([FRAME]) if queued else deque()
    core._pcm = bytearray()
    core._sample = 0  # not a sample of the caller's phase: no lock
    if leaves:  # a grid far ahead: the frame leaves on arrival, on time
        core._open = -math.inf
        core._grid = 1e12
    else:  # the window has not opened yet
        core._open = math.inf
    core.data_received(data)
    return tuple(core.log), tuple(writes), core._echoed


@native
@pytest.mark.parametrize("echo", [True, False])
@pytest.mark.parametrize("queued", [True, False])
@pytest.mark.parametrize("leaves", [True, False])
@pytest.mark.parametrize(
    "data",
    [
        FRAME,
        FRAME[:-1],
        FRAME + b"\x00",
        b"\x11" + FRAME[1:],
        HEAD + b"x" * 320,
        b"",
        bytearray(FRAME),
    ],
    ids=["frame", "short", "long", "other kind", "other audio", "empty", "not bytes"],
)
def test_each_read_takes_the_same_route_in_both(
    data: bytes, echo: bool, queued: bool, leaves: bool
) -> None:
    assert CFrameCore is not None

    class CRoute(Route, CFrameCore):  # type: ignore[misc,valid-type]
        __slots__ = ("call", "log", "out")

    py, c = PyRoute(), CRoute()
    expected = routed(py, data, echo=echo, queued=queued, leaves=leaves)
    assert routed(c, data, echo=echo, queued=queued, leaves=leaves) == expected
    whole = type(data) is bytes and data[:3] == HEAD and len(data) == len(FRAME)
    if whole and echo and leaves and not queued:
        assert expected == ((), (data,), 1)  # straight back, counted
    elif whole and echo:
        assert expected == ((("reply", data, leaves),), (), 0)
    else:
        assert expected == ((("received", data),), (), 0)


def ticked(
    core: Any, *, paused: bool, leaves: bool, queued: str, silence: bool | None, waits: bool
) -> tuple[Any, ...]:
    core.log = []
    writes: list[bytes] = []
    core._write = writes.append
    core._paused = paused
    core._msgs = deque([FRAME + b"q"]) if queued == "frames" else deque()
    core._pcm = bytearray(b"pcm") if queued == "pcm" else bytearray()
    core.call = CallStub(core.log, waits)
    core.out = None if silence is None else OutStub(silence)
    core._sample = 0
    core._stopped = False
    if leaves:  # the deadline has come, on the grid far ahead: the frame leaves, on time
        core._grid = 1e12
    else:  # no frame may leave now
        core._stopped = True
    core.tick()
    return tuple(core.log), tuple(writes), core._ticked, core._silenced, len(core._msgs)


@native
@pytest.mark.parametrize("paused", [False, True])
@pytest.mark.parametrize("leaves", [True, False])
@pytest.mark.parametrize("queued", ["frames", "pcm", "nothing"])
@pytest.mark.parametrize("silence", [True, False, None], ids=["silence", "no silence", "no out"])
@pytest.mark.parametrize("waits", [False, True], ids=["", "a writer waits"])
def test_each_tick_sends_the_same_frame_in_both(
    paused: bool, leaves: bool, queued: str, silence: bool | None, waits: bool
) -> None:
    assert CFrameCore is not None

    class CRoute(Route, CFrameCore):  # type: ignore[misc,valid-type]
        __slots__ = ("call", "log", "out")

    args = {"paused": paused, "leaves": leaves, "queued": queued, "silence": silence}
    expected = ticked(PyRoute(), waits=waits, **args)  # type: ignore[arg-type]
    assert ticked(CRoute(), waits=waits, **args) == expected  # type: ignore[arg-type]
    log, writes, n_ticked, n_silenced, _ = expected
    if paused:
        assert log == (("tick_slow",),) and not writes
    elif not leaves:
        assert log == (("pass",),) and not writes
    elif queued == "frames":
        assert writes == (FRAME + b"q",) and n_ticked == 1
        assert log == ((("on_sent",),) if waits else ())
    elif queued == "nothing" and silence:
        assert writes == (OutStub.silence_message,) and n_silenced == 1 and log == ()
    else:
        assert log == (("send_ticked",),) and not writes


@native
def test_an_error_in_a_python_part_reaches_the_caller_of_the_c_core() -> None:
    assert CFrameCore is not None

    class Broken(Route, CFrameCore):  # type: ignore[misc,valid-type]
        __slots__ = ("log",)

        def _received(self, data: bytes) -> None:
            raise ValueError("bad read")

    with pytest.raises(ValueError, match="bad read"):
        Broken().data_received(b"\x00")


@native
def test_a_cycle_through_the_c_core_is_collected() -> None:
    """A connection's ``_write`` is its transport's, and the transport holds the connection: the
    garbage collector must see through the core's fields to free such a cycle."""
    assert CFrameCore is not None
    freed: list[int] = []

    class Transport:
        def __init__(self, conn: Any, n: int) -> None:
            self.conn, self.n = conn, n

        def write(self, data: bytes) -> None:
            pass

        def __del__(self) -> None:
            freed.append(self.n)

    class Conn(Route, CFrameCore):  # type: ignore[misc,valid-type]
        __slots__ = ("call", "log", "out")

    for n in range(200):
        conn = Conn()
        conn._write = Transport(conn, n).write
        conn._msgs = deque([conn])
    del conn
    gc.collect()
    assert sorted(freed) == list(range(200))


def test_the_package_loads_the_c_core_where_it_is_built() -> None:
    if os.environ.get("AUDIONET_PURE_PYTHON"):
        assert not framecore.NATIVE
    elif CFrameCore is not None or os.environ.get("CI"):
        assert framecore.NATIVE, "CI builds the C extension (pip install -e . with gcc)"
        assert framecore.FrameCore is CFrameCore


def test_calls_run_the_same_on_the_pure_python_core() -> None:
    """A few of the call tests over real sockets again, in a process that loads the Python
    twin (AUDIONET_PURE_PYTHON=1): the exact bytes of an echo, a hook's replies, the fast path
    against the general path, an echo answered as each frame arrives."""
    tests = [
        "tests/audiosocket/test_fastpath.py",
        "tests/audiosocket/test_connection.py::"
        "test_echo_leaves_as_each_frame_arrives_once_the_clock_has_locked_on",
        "tests/audiosocket/test_framecore.py::test_the_package_loads_the_c_core_where_it_is_built",
    ]
    env = {**os.environ, "AUDIONET_PURE_PYTHON": "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "failed" not in out.stdout
