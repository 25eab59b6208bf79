"""A call's outgoing clock locks onto the caller's frames: each reply leaves as the caller's frame
arrives, one frame per 20 ms deadline, never a burst, silence when the caller is silent. (The
clock's rules against every kind of peer are in test_schedule.py, in virtual time, and in
test_peers.py, over real sockets on both loops.)

The caller is a plain blocking socket in a thread with its own 20 ms schedule (not the event loop's
ticker), like Asterisk, whose frame clock has nothing to do with the server's.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest

from audionet.audiosocket import Call, serve
from audionet.audiosocket.apps import EchoApp, SilenceApp
from audionet.audiosocket.proto import HEADER, encode_uuid
from audionet.audiosocket.schedule import EARLY, MIN_GAP
from audionet.audiosocket.server import echoes

FRAME = 320
AUDIO = 0x10


@dataclass
class Caller:
    """Sends ``frames`` frames in groups of ``burst`` every ``burst * 20`` ms; records when each of
    the server's messages arrived and, for echoed frames, the delay after their own send."""

    port: int
    frames: int
    burst: int = 1
    #: When the first frame goes out, after the first silence heard (like Asterisk, which starts
    #: sending once it hears the server): sets the caller's phase against the server's clock.
    phase: float = 0.003
    #: Frames held back and sent together with the next one (a caller-side stall of one period).
    clumps: tuple[int, ...] = ()
    sent_at: dict[int, float] = field(default_factory=dict)
    heard: list[tuple[float, int]] = field(default_factory=list)  # (arrival, seq or -1 = silence)
    _first: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(encode_uuid(uuid.uuid4()))
        reader = threading.Thread(target=self._read, args=(sock,))
        reader.start()
        assert self._first.wait(5), "the server sent nothing"
        start = self.heard[0][0] + 0.100 + self.phase
        for k in range(0, self.frames, self.burst):
            delay = start + k * 0.020 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if k in self.clumps:
                continue
            first = k
            while first - 1 in self.clumps:
                first -= 1
            batch = b""
            for seq in range(first, min(k + self.burst, self.frames)):
                self.sent_at[seq] = time.monotonic()
                batch += HEADER.pack(AUDIO, FRAME) + struct.pack(">I", seq + 1) + bytes(FRAME - 4)
            sock.sendall(batch)
        time.sleep(0.3)
        sock.shutdown(socket.SHUT_WR)  # Asterisk closes without a hangup message
        reader.join(5)
        sock.close()

    def _read(self, sock: socket.socket) -> None:
        buf = b""
        while True:
            data = sock.recv(65536)
            now = time.monotonic()
            if not data:
                return
            buf += data
            while len(buf) >= 3:
                kind, length = HEADER.unpack_from(buf)
                if len(buf) < 3 + length:
                    break
                payload, buf = buf[3 : 3 + length], buf[3 + length :]
                if kind == AUDIO:
                    (tag,) = struct.unpack_from(">I", payload)
                    self.heard.append((now, tag - 1))  # silence has tag 0: seq -1
                    self._first.set()
                elif kind == 0x00:
                    return

    def echo_delays(self, skip: int) -> list[float]:
        return [t - self.sent_at[s] for t, s in self.heard if s >= skip]

    def audio_gaps(self) -> list[float]:
        times = [t for t, _ in self.heard]
        return [b - a for a, b in itertools.pairwise(times)]


async def run_caller(caller: Caller) -> None:
    await asyncio.get_running_loop().run_in_executor(None, caller.run)


async def test_echo_leaves_as_each_frame_arrives_once_the_clock_has_locked_on() -> None:
    # Four callers at once, their frames 1, 6, 11 and 16 ms after a frame of ours. Locking on
    # takes a few frames, or up to three seconds for a caller whose frames come just after ours
    # (the clock moves earlier at most twice a second); then every echo leaves as the caller's
    # frame arrives, with the frame that just arrived (none left queued before it).
    frames = 200
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        callers = [Caller(server.port, frames, phase=ms / 1000) for ms in (1, 6, 11, 16)]
        await asyncio.gather(*(run_caller(c) for c in callers))
    for caller in callers:
        echoed = [s for _, s in caller.heard if s >= 0]
        assert echoed == list(range(frames))  # every frame, once, in order
        # A clock that ignores the caller's phase answers a fixed 20 - phase ms later; a stall
        # of a loaded machine may delay an echo now and then.
        delays = caller.echo_delays(skip=frames - 50)
        assert statistics.median(delays) < 0.002, (caller.phase, delays)
        assert sum(d < 0.003 for d in delays) >= 40, (caller.phase, delays)
    stats = server.stats
    assert stats.frames_out - stats.frames_ticked >= frames * 4 // 2  # most left on arrival


class TimedEcho(EchoApp):
    """The echo app, noting when the server wrote each of the call's messages."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []

    def started(self, call: Call) -> None:
        super().started(call)
        link = call._link
        write = link._write  # type: ignore[attr-defined]

        def timed(message: bytes) -> object:
            self.sent.append(time.monotonic())
            return write(message)

        link._write = timed  # type: ignore[attr-defined]


async def test_a_bursting_caller_still_hears_one_frame_per_deadline() -> None:
    app = TimedEcho()
    async with serve(app, "127.0.0.1", 0) as server:
        caller = Caller(server.port, 100, burst=5)  # five frames in one write every 100 ms
        await run_caller(caller)
    echoed = [s for _, s in caller.heard if s >= 0]
    assert echoed == list(range(100))
    # At most one frame per 20 ms deadline, never more than EARLY before it, as the server wrote
    # them: echoing each burst as it came would put four of every five frames back to back. (A
    # loop that is late for one deadline and on time for the next may write two frames closer
    # than 20 ms - EARLY, so a loaded machine is allowed a couple.)
    gaps = [b - a for a, b in itertools.pairwise(app.sent)]
    assert sum(g < 0.020 - EARLY - 0.002 for g in gaps) <= 2, sorted(gaps)[:5]
    assert statistics.median(gaps) == pytest.approx(0.020, abs=0.002)
    span = caller.heard[-1][0] - caller.heard[0][0]
    assert 47 < (len(caller.heard) - 1) / span < 53  # still 50 frames a second


@pytest.mark.parametrize("late", [1, 3])
async def test_a_backlog_left_by_a_clump_of_the_callers_stands(late: int) -> None:
    # The caller's frames from 20 on are ``late`` periods late, so they arrive together with the
    # next one. The clock still sends one frame per deadline (the caller's timing never speeds it
    # up), so ``late`` frames stay queued: the queue absorbs the caller's jitter, nothing is lost.
    app = TimedEcho()
    frames = 120
    async with serve(app, "127.0.0.1", 0) as server:
        clumps = tuple(range(20, 20 + late))
        caller = Caller(server.port, frames, phase=0.006, clumps=clumps)
        await run_caller(caller)
    echoed = [s for _, s in caller.heard if s >= 0]
    assert echoed == list(range(frames))  # nothing dropped
    delays = dict((s, t - caller.sent_at[s]) for t, s in caller.heard if s >= 0)
    before = [delays[s] for s in range(10, 20)]
    assert statistics.median(before) < 0.005  # straight back while the caller was on time
    after = [delays[s] for s in range(frames - 50, frames)]
    assert statistics.median(after) == pytest.approx(0.020 * late, abs=0.005), after
    gaps = [b - a for a, b in itertools.pairwise(app.sent)]
    assert sum(g < MIN_GAP - 0.001 for g in gaps) == 0, sorted(gaps)[:5]
    span = app.sent[-1] - app.sent[0]
    assert (len(app.sent) - 1) / span == pytest.approx(50, abs=0.5)
    assert server.stats.frames_out - server.stats.frames_ticked >= frames - 20


class StallingEcho(TimedEcho):
    """The timed echo, holding up the whole event loop for ``stall`` s at the caller's frame
    ``at`` (as a pause of the process or a busy machine would)."""

    def __init__(self, at: int, stall: float) -> None:
        super().__init__()
        self.at, self.stall, self.frames = at, stall, 0

    def audio_message(self, call: Call, message: bytes) -> bytes | None:
        self.frames += 1
        if self.frames == self.at:
            time.sleep(self.stall)
        return super().audio_message(call, message)


async def test_a_backlog_left_by_a_stall_of_the_server_drains_at_once() -> None:
    # The loop is held up for five periods while the caller keeps sending: its frames wait in
    # the socket and are read together. The clock missed five deadlines of its own, and makes
    # them up (a frame every MIN_GAP, no burst) until it is back on its grid: the backlog is gone.
    app = StallingEcho(at=30, stall=0.100)
    frames = 30 + 50
    async with serve(app, "127.0.0.1", 0) as server:
        caller = Caller(server.port, frames, phase=0.006)
        await run_caller(caller)
    echoed = [s for _, s in caller.heard if s >= 0]
    assert echoed == list(range(frames))  # nothing dropped
    assert app.frames == frames  # an unmarked override of the echo's hook is called every frame
    delays = dict((s, t - caller.sent_at[s]) for t, s in caller.heard if s >= 0)
    # From a quarter of a second after the stall on, the echo is back to its usual delay.
    soon = [delays[s] for s in range(30 + 5 + 13, frames)]
    assert statistics.median(soon) < 0.005, soon
    # No burst: the catch-up sends a frame about every 10 ms. The one exception is right after the
    # stall, where the reply to the frame being handled when the loop stopped leaves late, and the
    # next frame, due a few ms later, follows at once (late for one deadline, on time for the
    # next). A loaded machine's ticker may bring two catch-up frames closer than 10 ms, but
    # writing the backlog out at once would put four frames within a millisecond.
    gaps = [b - a for a, b in itertools.pairwise(app.sent)]
    assert sum(g < 0.005 for g in gaps) <= 2, sorted(gaps)[:5]


async def test_a_caller_late_again_and_again_keeps_its_buffer_and_hears_no_gap() -> None:
    # One frame a period late every 300 ms: the frame of delay the first leaves is used up at the
    # next late frame, and so on (a clock that caught up with it would run the queue dry and put
    # silence into the echo at every late frame).
    frames = 150
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        caller = Caller(server.port, frames, phase=0.006, clumps=tuple(range(20, frames - 1, 15)))
        await run_caller(caller)
    seqs = [s for _, s in caller.heard]
    first, last = seqs.index(0), seqs.index(frames - 1)
    echo = seqs[first : last + 1]
    assert [s for s in echo if s >= 0] == list(range(frames))  # every frame, in order
    # Silence only where the first late frame should have been (no frame was queued yet), but
    # for a stall of a loaded machine or two; a catch-up that ran the queue dry between late
    # frames would leave a gap at each of the eight.
    gaps = [i for i, s in enumerate(echo) if s < 0]
    assert len(gaps) <= 3, gaps
    assert server.stats.frames_out - server.stats.frames_ticked >= frames // 2


class MarkedEcho(EchoApp):
    """An echo whose hook is marked as a plain echo, counting the times it is called anyway."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @echoes
    def audio_message(self, call: Call, message: bytes) -> bytes:
        self.calls += 1
        return message


async def test_a_marked_echo_is_not_called_and_its_frames_are_counted_during_the_call() -> None:
    app = MarkedEcho()
    frames = 100
    async with serve(app, "127.0.0.1", 0) as server:
        caller = Caller(server.port, frames, phase=0.006)
        task = asyncio.ensure_future(run_caller(caller))
        await asyncio.sleep(1.2)
        sent = len(caller.sent_at)
        counted = server.stats.frames_in  # read on the loop: the straight path's frames added
        await task
    assert sent > 20 and sent - 3 <= counted <= sent
    echoed = [s for _, s in caller.heard if s >= 0]
    assert echoed == list(range(frames))
    # Frames sent straight back never call the hook; only those read two at a time after a
    # stall of a loaded machine take the general path, which does.
    assert app.calls <= 10
    stats = server.stats
    assert stats.frames_in == frames and stats.bytes_in == FRAME * frames
    assert stats.frames_out - stats.frames_ticked >= frames - 20  # most went straight back
    assert stats.bytes_out == FRAME * stats.frames_out  # echoes and silence, whole frames


@pytest.mark.parametrize("app", [SilenceApp(), EchoApp()])
async def test_the_clock_answers_a_silent_caller_with_paced_silence(app: object) -> None:
    async with serve(app, "127.0.0.1", 0) as server:
        caller = Caller(server.port, 0)  # connects, sends nothing but the UUID
        await run_caller(caller)
        await asyncio.sleep(0.2)
    stats = server.stats
    assert stats.frames_ticked == stats.frames_out  # all by the clock
    assert stats.silence_frames_out == stats.frames_out  # all silence, and counted as such
    assert stats.bytes_out == FRAME * stats.frames_out
    assert caller.heard and all(s == -1 for _, s in caller.heard)
    assert len(caller.heard) <= stats.frames_out
    span = caller.heard[-1][0] - caller.heard[0][0]
    assert 47 < (len(caller.heard) - 1) / span < 53
    assert statistics.median(caller.audio_gaps()) == pytest.approx(0.020, abs=0.002)
