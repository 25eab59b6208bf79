"""The load generator counts echoed and lost frames exactly, measures latency, and its own lateness."""

from __future__ import annotations

import asyncio
import functools
import struct
import sys
import time
from collections.abc import Callable

import pytest

from audionet.audiosocket import Audio, Call, CallEvent, serve
from audionet.audiosocket.apps import EchoApp, SilenceApp
from audionet.audiosocket.loadgen import drive_load, run_load


async def test_echo_server_loses_nothing() -> None:
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        res = await run_load("127.0.0.1", server.port, calls=20, duration=1.0, ramp=0)
    assert res.ok and res.completed == 20
    assert 20 * 45 <= res.frames_sent <= 20 * 51
    assert res.frames_echoed == res.frames_sent and res.frames_lost == 0
    assert 0 < res.latency_p50 <= res.latency_p99 < 0.2
    assert server.stats.frames_in == res.frames_sent
    assert 0 < res.gen_cpu < 1


async def test_it_measures_what_the_server_sends_and_counts_refused_calls() -> None:
    # Four calls admitted, two refused (a hangup message at once). The silence app sends a frame
    # every 20 ms and echoes nothing: 50 frames/s per call heard, every frame sent "lost".
    async with serve(SilenceApp(), "127.0.0.1", 0, max_calls=4) as server:
        res = await run_load("127.0.0.1", server.port, calls=6, duration=3.0, grace=0.2)
    assert res.refused == 2 and res.completed == 4
    assert res.recv_rate == pytest.approx(50, abs=0.3)
    assert res.recv_rate <= res.recv_rate_max <= 50.5
    assert res.send_rate == pytest.approx(50, abs=1)  # the four calls that were up


async def test_a_server_that_does_not_echo_loses_everything() -> None:
    async with serve(SilenceApp(), "127.0.0.1", 0) as server:
        res = await run_load("127.0.0.1", server.port, calls=3, duration=0.3, grace=0.2)
    assert not res.ok and res.frames_lost == res.frames_sent > 0 and res.frames_echoed == 0


class DelayedEcho(asyncio.Protocol):
    """Writes back whatever it reads, ``DELAY`` seconds later (and drops every ``DROP``-th read)."""

    DELAY = 0.040
    DROP = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.reads = 0
        self.first = True

    def data_received(self, data: bytes) -> None:
        if self.first:  # the UUID (it may share a read with the first frame)
            self.first = False
            data = data[19:]
        self.reads += 1
        if self.DROP and self.reads % self.DROP == 0:
            return
        asyncio.get_running_loop().call_later(self.DELAY, self.transport.write, data)


async def delayed_echo(drop: int = 0) -> asyncio.Server:
    class Proto(DelayedEcho):
        DROP = drop

    return await asyncio.get_running_loop().create_server(Proto, "127.0.0.1", 0)


async def test_latency_is_the_round_trip_time() -> None:
    server = await delayed_echo()
    async with server:
        port = server.sockets[0].getsockname()[1]
        res = await run_load("127.0.0.1", port, calls=10, duration=1.0)
    assert res.ok and res.frames_echoed == res.frames_sent
    # read once per 2.5 ms slot, rounded up to 10 us bins: never below the real 40 ms
    assert 0.040 <= res.latency_p50 < 0.050
    assert res.latency_p50 <= res.latency_p99 < 0.2  # the tail: a shared machine's scheduling


async def test_frames_not_echoed_are_lost_exactly() -> None:
    server = await delayed_echo(drop=4)  # one frame per read here, so every 4th frame is dropped
    async with server:
        port = server.sockets[0].getsockname()[1]
        res = await run_load("127.0.0.1", port, calls=4, duration=1.0)
    assert not res.ok and res.completed == 4
    assert res.frames_echoed + res.frames_lost == res.frames_sent
    assert abs(res.frames_lost - res.frames_sent / 4) <= 8  # a UUID can share a read with a frame


async def test_a_held_up_generator_reports_its_lateness_and_skips_instead_of_bursting() -> None:
    server = await delayed_echo()
    async with server:
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        marks: list[bool] = []
        task = loop.run_in_executor(
            None,
            functools.partial(
                drive_load, "127.0.0.1", port, 8, 1.5, settle=0.3, on_audio=marks.append, ramp=0
            ),
        )
        await asyncio.sleep(0.8)
        old = sys.getswitchinterval()
        sys.setswitchinterval(0.1)  # this thread keeps the GIL for 100 ms at a time
        try:
            end = time.monotonic() + 0.4
            while time.monotonic() < end:
                pass
        finally:
            sys.setswitchinterval(old)
        res = await task
    assert res.gen_lateness_max >= 0.05
    assert res.gen_ticks_skipped >= 1
    # never a burst: each of the 75 deadlines of each call (one call per slot) was either sent on
    # (late perhaps) or skipped, never made up for later with an extra frame
    assert 8 * 73 <= res.frames_sent + res.gen_ticks_skipped <= 8 * 75
    assert res.frames_lost == 0
    assert marks == [True, False]


class FrameEcho(asyncio.Protocol):
    """Parses the generator's frames and echoes them, ``delay`` s later (by call number), except that
    on calls above ``spare`` each frame whose sequence number ends in 3 is dropped, or replaced by a
    second copy of the frame before it; ``spoiled`` counts those frames."""

    spoiled = 0

    def __init__(self, delay: Callable[[int], float], spare: int, mode: str) -> None:
        self.delay, self.spare, self.mode = delay, spare, mode
        self.buf = b""
        self.uuid = True
        self.prev = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.uuid:
            if len(self.buf) < 19:
                return
            self.uuid, self.buf = False, self.buf[19:]
        out = []
        number = 0
        while len(self.buf) >= 323:
            frame, self.buf = self.buf[:323], self.buf[323:]
            number, seq = struct.unpack_from(">II", frame, 3)
            if number > self.spare and seq % 10 == 3:
                FrameEcho.spoiled += 1
                if self.mode == "repeat":
                    out.append(self.prev)
            else:
                out.append(frame)
            self.prev = frame
        if out:
            asyncio.get_running_loop().call_later(
                self.delay(number), self.transport.write, b"".join(out)
            )


async def frame_echo(
    delay: Callable[[int], float] = lambda number: 0.0, spare: int = 10**9, mode: str = "drop"
) -> asyncio.Server:
    FrameEcho.spoiled = 0
    return await asyncio.get_running_loop().create_server(
        lambda: FrameEcho(delay, spare, mode), "127.0.0.1", 0
    )


@pytest.mark.parametrize("mode", ["drop", "repeat"])
async def test_frames_lost_on_batched_calls_are_counted_exactly(mode: str) -> None:
    # 24 calls, three per slot: with an eighth sampled, calls 1-8 are read at once and 9-24 in
    # batches; only the batched calls lose frames (every tenth), dropped or replaced by a repeat
    server = await frame_echo(spare=8, mode=mode)
    async with server:
        port = server.sockets[0].getsockname()[1]
        res = await run_load("127.0.0.1", port, calls=24, duration=1.0, latency_sample=0.125)
    assert res.completed == 24 and not res.ok
    assert FrameEcho.spoiled >= 16  # (fewer than 5 a call if a busy machine made it skip ticks)
    assert res.frames_lost == FrameEcho.spoiled
    assert res.frames_echoed == res.frames_sent - FrameEcho.spoiled


async def test_every_frame_of_every_call_comes_back() -> None:
    server = await frame_echo()
    async with server:
        port = server.sockets[0].getsockname()[1]
        res = await run_load("127.0.0.1", port, calls=40, duration=1.0, ramp=0)
    assert res.ok and FrameEcho.spoiled == 0
    assert 40 * 25 <= res.frames_sent == res.frames_echoed <= 40 * 51  # (a busy machine skips)


@pytest.mark.parametrize("sample", [0.125, 1.0])
async def test_latency_is_measured_on_the_sampled_calls(sample: float) -> None:
    # The first call of each slot (calls 1-8) is sampled; the others are echoed much later.
    server = await frame_echo(delay=lambda number: 0.040 if number <= 8 else 0.300)
    async with server:
        port = server.sockets[0].getsockname()[1]
        res = await run_load("127.0.0.1", port, calls=32, duration=1.0, latency_sample=sample)
    assert res.ok
    if sample < 1:
        assert 0.040 <= res.latency_p50 <= res.latency_p99 < 0.2
    else:  # all calls timed: three quarters of the frames come back after 300 ms
        assert 0.300 <= res.latency_p50 <= res.latency_p99 < 0.5


def test_the_latency_sample_is_a_share_of_the_calls() -> None:
    with pytest.raises(ValueError, match="latency_sample"):
        drive_load("127.0.0.1", 9, 1, 1.0, latency_sample=0)


class FirstAudio:
    """Notes when each call's first audio arrived (a handler without the per-frame fast path)."""

    def __init__(self) -> None:
        self.first: dict[object, float] = {}

    def started(self, call: Call) -> None:
        pass

    def event(self, call: Call, event: CallEvent) -> None:
        if isinstance(event, Audio):
            self.first.setdefault(call.uuid, time.monotonic())
            call.out.push(event.pcm)

    def failed(self, peer: object, error: object) -> None:
        pass


async def test_slots_start_their_audio_one_after_the_other_over_the_ramp() -> None:
    app = FirstAudio()
    marks: list[tuple[bool, float]] = []
    async with serve(app, "127.0.0.1", 0) as server:
        loop = asyncio.get_running_loop()
        res = await loop.run_in_executor(
            None,
            functools.partial(
                drive_load, "127.0.0.1", server.port, 16, 0.4, settle=0.2, ramp=0.4,
                on_audio=lambda on: marks.append((on, time.monotonic())),
            ),
        )  # fmt: skip
    assert res.ok and len(app.first) == 16
    firsts = sorted(app.first.values())
    # 8 slots of two calls, starting 0, 2, 5, 8, 10, 12, 15 and 18 periods after the first
    starts = [round((t - firsts[0]) / 0.020) for t in firsts[::2]]
    assert all(abs(a - b) <= 1 for a, b in zip(starts, [0, 2, 5, 8, 10, 12, 15, 18], strict=True))
    # the measurement starts once every slot sends: each call sends 0.4 s from then, the early
    # slots more before (never more than that: a busy machine may skip a few deadlines)
    (on, t_on), (off, _) = marks
    assert on and not off and firsts[-1] - t_on < 0.025
    extra = 2 * sum(18 - k for k in (0, 2, 5, 8, 10, 12, 15, 18))
    assert 16 * 20 + extra - 16 <= res.frames_sent <= 16 * 20 + extra
    assert 47 <= res.send_rate <= 51  # frames per second per call, from when all had started


def test_a_negative_ramp_is_refused() -> None:
    with pytest.raises(ValueError, match="ramp"):
        drive_load("127.0.0.1", 9, 1, 1.0, ramp=-1)
