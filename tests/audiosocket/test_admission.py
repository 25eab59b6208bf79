"""Admission control: at its limit the server keeps the calls it has at 50 frames/s with nothing
lost, and refuses what does not fit cleanly (a hangup message at once, a log line, a metric)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from audionet.audiosocket import Audio, Call, Hangup, connect, serve
from audionet.audiosocket.apps import EchoApp
from audionet.audiosocket.client import ClientCall
from audionet.audiosocket.server import (
    MEASURE_WINDOWS,
    AudioSocketServer,
    Ceiling,
    ServerConfig,
    fit_cost_per_call,
)
from audionet.errors import ConfigError
from tests.audiosocket.util import strip_silence, tagged_audio


async def place(port: int, n: int, per_second: float, seconds: float) -> list[ClientCall]:
    """``n`` Asterisk-like calls, placed ``per_second`` a second, each sending ``seconds`` of
    audio."""
    calls = []
    for i in range(n):
        call = await connect("127.0.0.1", port, wait_for_server=False)
        call.send_audio(tagged_audio(seconds, seed=i))
        calls.append(call)
        await asyncio.sleep(1 / per_second)
    return calls


async def test_calls_that_would_overload_the_core_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 1% of a core is a few calls here: the server measures its cost per call as the calls come
    # in (the test's callers share its process, so they count too) and refuses the rest.
    caplog.set_level(logging.WARNING, "audionet.audiosocket.connection")
    async with serve(EchoApp(), "127.0.0.1", 0, max_load=0.01) as server:
        calls = await place(server.port, 40, per_second=20, seconds=3.0)
        await asyncio.sleep(0.5)
        cost = server.cost_per_call
        up = [c for c in calls if not c.ended]
        refused = [c for c in calls if c.ended]
        assert cost is not None and up and refused
        # at its limit: one more call would need more than 1% of a core, or the server holds the
        # number of calls it had when it last reached that limit; either way it is refused
        ceiling = server.ceiling.calls
        assert (len(up) + 1) * cost > 0.01 or (ceiling is not None and len(up) >= ceiling)
        extra = await connect("127.0.0.1", server.port)
        await extra.wait_closed()
        assert extra.frames_received == 0
        refused.append(extra)
        for c in up:
            await c.drain()
        await asyncio.sleep(0.3)
        stats = server.stats
        for c in up:
            await c.hangup()
    for i, c in enumerate(calls):
        if c in up:  # every frame it sent came back, 50 a second
            assert strip_silence(c.received) == tagged_audio(3.0, seed=i)
            times = c.audio_times
            assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(50, abs=1.5)
        else:  # refused at once: a hangup message, nothing else
            assert c.frames_received == 0 and c.end_reason != "caller hung up"
    assert stats.calls_rejected == stats.refused["load"] == len(refused)
    assert stats.calls_total == len(up)
    logged = [r.getMessage() for r in caplog.records if "refused a call" in r.getMessage()]
    assert len(logged) == len(refused) and "of a core" in logged[0]


async def test_new_calls_wait_while_the_clock_runs_late() -> None:
    class Slow(EchoApp):
        """Holds up the loop 30 ms at each of its first 40 frames (a handler that blocks)."""

        frames = 0

        def audio_message(self, call: Call, message: bytes) -> bytes:
            self.frames += 1
            if self.frames <= 40:
                time.sleep(0.030)
            return message

    async with serve(Slow(), "127.0.0.1", 0, max_lag=0.010) as server:
        slow = await connect("127.0.0.1", server.port, wait_for_server=False)
        slow.send_audio(tagged_audio(3.0))
        await asyncio.sleep(1.2)  # the clock falls behind
        assert server.lag > 0.010
        refused = await connect("127.0.0.1", server.port)
        events = [ev async for ev in refused]
        assert [type(e) for e in events] == [Hangup] and refused.frames_received == 0
        assert server.stats.refused == {"lag": 1}
        for _ in range(60):  # the handler no longer blocks: the clock is soon on time again
            await asyncio.sleep(0.1)
            if server.lag < 0.010:
                break
        assert server.lag < 0.010
        later = await connect("127.0.0.1", server.port)
        later.send_audio(tagged_audio(0.3))
        await later.drain()
        await asyncio.sleep(0.2)
        assert not later.ended and strip_silence(later.received) == tagged_audio(0.3)
        await later.hangup()
        await slow.hangup()


def test_the_cost_per_call_is_told_apart_from_the_cost_of_setting_calls_up() -> None:
    # 200 us a call set up, 0.8 ms of CPU a second per call up: calls coming in 60 a window of
    # 0.25 s while the calls up (call-seconds a window) grow
    windows = [(s * 200e-6 + u * 8e-4, s, u) for s, u in [(60, 7.5), (60, 22.5), (62, 37.5)]]
    assert fit_cost_per_call(windows) == pytest.approx(8e-4)
    assert fit_cost_per_call([(0.1, 0, 100.0)]) == pytest.approx(1e-3)  # no setups: cpu / calls
    assert fit_cost_per_call([(0.1, 10, 100.0), (0.2, 20, 200.0)]) is None  # no telling
    assert fit_cost_per_call([]) is None


def test_admission_settings_are_checked() -> None:
    for bad in ({"max_load": -0.1}, {"max_load": 1.5}, {"max_lag": -1}):
        with pytest.raises(ConfigError):
            ServerConfig(**bad)  # type: ignore[arg-type]
    assert ServerConfig().max_load == 0 and ServerConfig().max_lag == 0  # off in the library


async def test_a_call_refused_over_max_calls_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "audionet.audiosocket.connection")

    async def handler(call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Audio):
                call.send(ev.pcm)

    async with serve(handler, "127.0.0.1", 0, max_calls=1) as server:
        first = await connect("127.0.0.1", server.port)
        second = await connect("127.0.0.1", server.port)
        await second.wait_closed()
        assert server.stats.refused == {"max_calls": 1} and server.stats.calls_rejected == 1
        await first.hangup()
    assert any("over the limit of 1 calls" in r.getMessage() for r in caplog.records)


def test_the_limit_once_reached_holds_until_fresh_measures_show_room() -> None:
    ceiling = Ceiling()
    assert ceiling.refusal(5000) is None  # no limit reached yet
    ceiling.reached(918, "load", "919 calls would need 61% of a core")
    assert ceiling.refusal(917) is None  # calls that ended make room under it
    reason, why = ceiling.refusal(918) or ("", "")
    assert reason == "load" and "918 calls up" in why and "61%" in why
    # the estimate falling right after (the noise that admitted 1,146 calls) lifts nothing
    for _ in range(MEASURE_WINDOWS - 1):
        ceiling.measured(0.0001, 0.0, 0.6, 0.010, MEASURE_WINDOWS)
    assert ceiling.refusal(918) is not None
    ceiling.reached(2000, "lag", "late")  # a higher count never raises it
    assert ceiling.calls == 918
    # a whole span of fresh measures with room to spare (919 calls at 0.45 ms: 41% < 0.75 * 60%)
    ceiling.measured(0.00045, 0.0, 0.6, 0.010, MEASURE_WINDOWS)
    assert ceiling.refusal(5000) is None


def test_the_limit_stays_while_fresh_measures_show_no_margin_or_a_late_clock() -> None:
    ceiling = Ceiling()
    ceiling.reached(900, "load", "901 calls would need 60% of a core")
    for _ in range(3 * MEASURE_WINDOWS):  # 901 calls at 0.55 ms: 50% > 0.75 * 60%
        ceiling.measured(0.00055, 0.0, 0.6, 0.010, MEASURE_WINDOWS)
    assert ceiling.refusal(900) is not None
    for _ in range(3 * MEASURE_WINDOWS):  # room by the cost, but the clock runs 6 ms late
        ceiling.measured(0.0003, 0.006, 0.6, 0.010, MEASURE_WINDOWS)
    assert ceiling.refusal(900) is not None
    ceiling.reached(450, "lag", "the clock runs 12 ms late with 450 calls up")  # lower: lowers
    assert ceiling.calls == 450 and ceiling.fresh == 0
    assert (ceiling.refusal(450) or ("", ""))[0] == "lag"
    ceiling.measured(0.0003, 0.001, 0.6, 0.010, 1)
    assert ceiling.refusal(450) is None


def test_a_call_is_refused_when_it_would_take_the_server_over_its_load() -> None:
    # (no I/O: the measures set by hand, as _measure would after a second of calls coming in)
    srv = AudioSocketServer(EchoApp(), ServerConfig(max_load=0.6))
    srv.connections = {object() for _ in range(100)}  # type: ignore[misc]
    # a burst of set-ups: 30% of a core used with 50 calls up on average over the last second;
    # 101 calls at 1 ms a second each past that average need 0.30 + 51 * 0.001 = 35%: admitted
    # (the CPU per call-second times the calls, 0.30 / 50 * 101 = 61%, would have refused it)
    srv.busy, srv.busy_calls, srv.cost_per_call = 0.30, 50.0, 0.001
    assert srv.refusal() is None
    srv.connections = {object() for _ in range(300)}  # type: ignore[misc]
    srv.busy, srv.busy_calls = 0.45, 150.0  # 0.45 + 151 * 0.001 = 60.1%
    reason, why = srv.refusal() or ("", "")
    assert reason == "load" and "301 calls would need 60%" in why and "150 calls up" in why
    assert srv.ceiling.calls == 300
    srv.busy = 0.30  # a quieter second: the limit found holds until fresh measures show room
    assert (srv.refusal() or ("", ""))[0] == "load"
    srv.connections = {object() for _ in range(299)}  # type: ignore[misc]
    assert srv.refusal() is None  # a call that ended makes room
