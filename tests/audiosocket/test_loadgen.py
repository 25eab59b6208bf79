"""The load generator counts echoed and lost frames exactly."""

from __future__ import annotations

from audionet.audiosocket import serve
from audionet.audiosocket.apps import EchoApp, SilenceApp
from audionet.audiosocket.loadgen import run_load


async def test_echo_server_loses_nothing() -> None:
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        res = await run_load("127.0.0.1", server.port, calls=20, duration=1.0)
    assert res.ok and res.completed == 20
    assert 20 * 45 <= res.frames_sent <= 20 * 51
    assert res.frames_echoed == res.frames_sent and res.frames_lost == 0
    assert 0 < res.latency_p50 <= res.latency_p99 < 0.2
    assert server.stats.frames_in == res.frames_sent


async def test_a_server_that_does_not_echo_loses_everything() -> None:
    async with serve(SilenceApp(), "127.0.0.1", 0) as server:
        res = await run_load("127.0.0.1", server.port, calls=3, duration=0.3, grace=0.2)
    assert not res.ok and res.frames_lost == res.frames_sent > 0 and res.frames_echoed == 0
