"""The call object: bounded event queue with backpressure, send vs write, play and drain."""

from __future__ import annotations

import asyncio

from audionet.audio.format import AudioFormat
from audionet.audio.sources import ToneSource
from audionet.audiosocket import Audio, Call, Hangup, connect, serve

from .util import strip_silence, tagged_audio


async def test_slow_handler_pauses_reading_then_catches_up() -> None:
    gate = asyncio.Event()
    seen: list[object] = []
    paused: list[bool] = []

    async def handler(call: Call) -> None:
        await gate.wait()  # not iterating: events pile up to max_events
        async for ev in call:
            seen.append(ev)

    async with serve(handler, "127.0.0.1", 0, max_events=10) as server:
        call = await connect("127.0.0.1", server.port)
        call.send_audio(tagged_audio(0.6))
        await asyncio.sleep(0.5)
        conn = next(iter(server.connections))
        assert conn.transport is not None
        paused.append(not conn.transport.is_reading())
        assert conn.call is not None and len(conn.call._events) == 10
        gate.set()
        await call.drain()
        await asyncio.sleep(0.2)
        paused.append(not conn.transport.is_reading())
        await call.hangup()
        await asyncio.sleep(0.1)
    assert paused == [True, False]
    audio = b"".join(e.pcm for e in seen if isinstance(e, Audio))
    assert audio == tagged_audio(0.6)  # nothing lost: TCP held it while reading was paused
    assert isinstance(seen[-1], Hangup)


async def test_send_drops_oldest_but_write_waits() -> None:
    results: dict[str, float] = {}

    async def handler(call: Call) -> None:
        loop = asyncio.get_running_loop()
        call.send(tagged_audio(3.0, seed=1))  # 3 s into a 1 s queue: the oldest 2 s are dropped
        results["dropped"] = call.out.dropped
        call.out.clear()
        start = loop.time()
        await call.write(tagged_audio(1.5, seed=2))  # must wait for about 0.5 s of it to go out
        results["waited"] = loop.time() - start
        await call.drain()
        results["drained"] = loop.time() - start
        await call.hangup()

    async with serve(handler, "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        await asyncio.wait_for(call.wait_closed(), 5)
    assert results["dropped"] == 2 * 16000
    assert 0.3 < results["waited"] < 1.2 and 1.3 < results["drained"] < 2.5
    assert strip_silence(call.received) == tagged_audio(1.5, seed=2)


async def test_play_a_live_generator_at_the_call_rate() -> None:
    async def handler(call: Call) -> None:
        await call.play(ToneSource(1000, AudioFormat(8000), seconds=0.5))
        await call.hangup()

    async with serve(handler, "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        await asyncio.wait_for(call.wait_closed(), 5)
    assert len(strip_silence(call.received)) == 8000  # 0.5 s of 16-bit samples
    assert call.violations == []
