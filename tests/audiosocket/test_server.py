"""The server over real loopback sockets: echo, DTMF, hangups, robustness, backpressure, leaks."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from audionet.audiosocket import Audio, Call, Dtmf, Error, Hangup, connect, serve
from audionet.audiosocket.apps import EchoApp
from audionet.audiosocket.proto import encode_audio, encode_dtmf
from audionet.errors import ConfigError

from .util import RawPeer, ends_with_hangup, strip_silence, tagged_audio


async def echo_handler(call: Call) -> None:
    async for ev in call:
        if isinstance(ev, Audio):
            call.send(ev.pcm)


async def test_call_api_echo_is_exact_and_paced() -> None:
    async with serve(echo_handler, "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        pcm = tagged_audio(1.0)
        call.send_audio(pcm)
        await call.drain()
        await asyncio.sleep(0.3)
        await call.hangup()
    assert strip_silence(call.received) == pcm
    assert call.violations == []
    times = call.audio_times
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 47 < rate < 53, f"{rate:.1f} frames per second"
    assert server.stats.frames_in == 50 and server.stats.calls_total == 1


async def test_an_object_with_an_async_call_method_is_a_call_api_handler() -> None:
    class Handler:
        def __init__(self) -> None:
            self.heard = 0

        async def __call__(self, call: Call) -> None:
            async for ev in call:
                if isinstance(ev, Audio):
                    self.heard += 1

    handler = Handler()
    async with serve(handler, "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        call.send_audio(tagged_audio(0.2))
        await call.drain()
        await asyncio.sleep(0.1)
        await call.hangup()
    assert handler.heard == 10
    with pytest.raises(ConfigError):
        serve(object())  # type: ignore[arg-type]


async def test_uuid_is_a_uuid_and_peer_and_format_are_set() -> None:
    seen: list[Call] = []

    async def handler(call: Call) -> None:
        seen.append(call)
        async for _ in call:
            pass

    uid = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
    async with serve(handler, "127.0.0.1", 0, rate=16000) as server:
        call = await connect("127.0.0.1", server.port, uid)
        await asyncio.sleep(0.1)
        await call.hangup()
        await asyncio.sleep(0.05)
    assert seen[0].uuid == uid and str(seen[0].uuid) == "40325ec2-5efd-4bd3-805f-53576e581d13"
    assert seen[0].peer[0] == "127.0.0.1" and seen[0].format.rate == 16000
    assert call.violations == [] and call.frames_received > 0


async def test_dtmf_arrives_as_events_and_server_hangup() -> None:
    events: list[object] = []

    async def handler(call: Call) -> None:
        async for ev in call:
            events.append(ev)
            if ev == Dtmf("#"):
                await call.hangup()

    async with serve(handler, "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        call.send_dtmf("12#")
        got = [ev async for ev in call]
        await call.wait_closed()
    assert events[:3] == [Dtmf("1"), Dtmf("2"), Dtmf("#")]
    assert isinstance(events[-1], Hangup) and not events[-1].by_peer
    assert isinstance(got[-1], Hangup) and got[-1].reason == "server sent a hangup message"
    assert call.violations == []


async def test_caller_hangup_ends_the_iteration() -> None:
    ended: asyncio.Future[Hangup] = asyncio.get_running_loop().create_future()

    async def handler(call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Hangup):
                ended.set_result(ev)

    async with serve(handler, "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        await asyncio.sleep(0.1)
        await call.hangup()
        ev = await asyncio.wait_for(ended, 2)
        assert ev.by_peer
        await asyncio.sleep(0.05)
        assert server.stats.calls_active == 0 and not server.connections


async def test_channel_driver_waits_for_server_audio() -> None:
    """With silence off, an echo server and Asterisk's channel driver wait on each other forever."""
    async with serve(EchoApp(), "127.0.0.1", 0, silence=False) as server:
        stalled = await connect("127.0.0.1", server.port)
        stalled.send_audio(tagged_audio(0.2))
        await asyncio.sleep(0.3)
        assert stalled.frames_sent == 0
        await stalled.hangup()
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        flowing = await connect("127.0.0.1", server.port)
        flowing.send_audio(tagged_audio(0.2))
        await asyncio.sleep(0.5)
        assert flowing.frames_sent == 10
        await flowing.hangup()


async def good_call(port: int, seconds: float, seed: int) -> tuple[bytes, bytes, list[object]]:
    call = await connect("127.0.0.1", port)
    pcm = tagged_audio(seconds, seed)
    call.send_audio(pcm)
    await call.drain()
    await asyncio.sleep(0.3)
    await call.hangup()
    return pcm, strip_silence(call.received), list(call.violations)


async def bad_peer(port: int, data: bytes, send_uuid: bool, close: bool = False) -> bytes:
    peer = await RawPeer.open(port, send_uuid)
    peer.send(data)
    if close:
        peer.writer.write_eof()
    out = await peer.read_all()
    peer.close()
    return out


async def test_bad_calls_end_alone_while_good_calls_continue() -> None:
    reports: list[Error] = []
    app = EchoApp()
    app.failed = lambda peer, error: reports.append(error)  # type: ignore[method-assign]
    async with serve(app, "127.0.0.1", 0, uuid_timeout=0.5, max_payload=2000) as server:
        port = server.port
        goods = [asyncio.create_task(good_call(port, 1.5, seed)) for seed in range(3)]
        await asyncio.sleep(0.3)
        bads = await asyncio.gather(
            bad_peer(port, encode_audio(bytes(320)), send_uuid=False),  # audio before the UUID
            bad_peer(port, b"\x01\x00\x08" + bytes(8), send_uuid=False),  # short UUID
            bad_peer(port, b"\x10\x10\x00", send_uuid=True),  # oversize
            bad_peer(port, b"\x10\x01\x40" + bytes(100), send_uuid=True, close=True),  # truncated
            bad_peer(port, b"", send_uuid=False),  # says nothing: UUID timeout
        )
        results = await asyncio.gather(*goods)
    for out in bads:
        assert ends_with_hangup(out), out[-12:]
    for pcm, echoed, violations in results:
        assert echoed == pcm and violations == []
    messages = " | ".join(e.message for e in reports)
    assert (
        "before the UUID" in messages and "exactly 16" in messages and "no UUID within" in messages
    )
    assert server.stats.errors["protocol"] == 5 and server.stats.calls_total == 5


async def test_unknown_kind_is_skipped_and_reported() -> None:
    events: list[object] = []

    async def handler(call: Call) -> None:
        async for ev in call:
            events.append(ev)

    async with serve(handler, "127.0.0.1", 0) as server:
        peer = await RawPeer.open(server.port)
        peer.send(b"\x42\x00\x03abc" + encode_dtmf("7"))
        await asyncio.sleep(0.2)
        peer.close()
        await asyncio.sleep(0.1)
    assert isinstance(events[0], Error) and not events[0].fatal and "0x42" in events[0].message
    assert events[1] == Dtmf("7") and isinstance(events[-1], Hangup)


async def test_max_calls_answers_extra_calls_with_a_hangup() -> None:
    async with serve(EchoApp(), "127.0.0.1", 0, max_calls=2) as server:
        calls = [await connect("127.0.0.1", server.port) for _ in range(2)]
        await asyncio.sleep(0.1)
        extra = await bad_peer(server.port, b"", send_uuid=True)
        assert extra == b"\x00\x00\x00"
        assert server.stats.calls_rejected == 1 and len(server.calls) == 2
        for c in calls:
            assert not c.ended
            await c.hangup()


async def test_handler_failure_ends_only_its_call() -> None:
    async def handler(call: Call) -> None:
        async for ev in call:
            if ev == Dtmf("9"):
                raise RuntimeError("boom")
            if isinstance(ev, Audio):
                call.send(ev.pcm)

    async with serve(handler, "127.0.0.1", 0) as server:
        victim = await connect("127.0.0.1", server.port)
        other = asyncio.create_task(good_call(server.port, 0.6, 5))
        victim.send_dtmf("9")
        await asyncio.wait_for(victim.wait_closed(), 3)
        pcm, echoed, violations = await other
    assert victim.end_reason == "server sent a hangup message" and victim.violations == []
    assert echoed == pcm and violations == []


async def test_server_close_hangs_up_every_call() -> None:
    server = await serve(EchoApp(), "127.0.0.1", 0)
    calls = [await connect("127.0.0.1", server.port) for _ in range(3)]
    await asyncio.sleep(0.1)
    server.close()
    await server.wait_closed()
    for c in calls:
        await asyncio.wait_for(c.wait_closed(), 2)
        assert c.end_reason == "server sent a hangup message" and c.violations == []


async def test_peer_that_never_reads_cannot_grow_our_buffers() -> None:
    """A 192 kHz call whose peer stops reading: bounded buffers, then the call is dropped alone."""
    sizes: list[int] = []
    calls: list[Call] = []

    async def handler(call: Call) -> None:
        calls.append(call)
        frame = bytes(range(256)) * 30
        while not call.ended:
            await call.write(frame)  # backpressure: waits while the queue is full

    async with serve(
        handler, "127.0.0.1", 0, rate=192000, write_timeout=1.0, send_buffer=16384
    ) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        sock.send(b"\x01\x00\x10" + uuid.uuid4().bytes)  # then never read
        other = asyncio.create_task(good_call(server.port, 1.0, 7))
        for _ in range(40):
            await asyncio.sleep(0.1)
            for conn in server.connections:
                if conn.call in calls and conn.transport is not None:
                    sizes.append(conn.transport.get_write_buffer_size() + len(conn.out or b""))
            if calls and calls[0].ended:
                break
        _, echoed, violations = await other
        sock.close()
    assert calls[0].ended
    assert server.stats.errors.get("protocol", 0) >= 1
    limit = 64 * 1024 + 192000 * 2 + 8000  # transport high-water mark + one second of queue
    assert sizes and max(sizes) <= limit
    # the good call beside it kept receiving the handler's paced audio, without a violation
    assert len(echoed) >= 40 * 7680 and violations == []


async def test_a_thousand_calls_leave_no_tasks_or_descriptors() -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def handler(call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Audio):
                call.send(ev.pcm)

    before_tasks = len(asyncio.all_tasks())
    async with serve(handler, "127.0.0.1", 0) as server:
        before_fds = fds()

        async def one(i: int) -> bool:
            call = await connect("127.0.0.1", server.port, record=True)
            call.send_audio(tagged_audio(0.02, i))
            while strip_silence(call.received) == b"" and not call.ended:
                await asyncio.sleep(0.02)
            await call.hangup()
            return not call.violations

        for start in range(0, 1000, 200):
            oks = await asyncio.gather(*(one(i) for i in range(start, start + 200)))
            assert all(oks)
        for _ in range(50):
            if not server.connections:
                break
            await asyncio.sleep(0.1)
        assert not server.connections and server.stats.calls_total == 1000
        assert server.stats.calls_active == 0
        assert fds() <= before_fds + 2
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) == before_tasks


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        serve(echo_handler, rate=11025)
    with pytest.raises(ConfigError):
        serve(echo_handler, input_codec="gsm")
    with pytest.raises(ConfigError):
        serve(lambda call: None)  # type: ignore[arg-type,return-value]


async def test_dial_calls_carrying_ulaw_are_decoded() -> None:
    """``Dial(AudioSocket/...)`` sends the call's codec labelled 0x10; the server decodes what it declares."""
    from audionet.audio.codecs.g711 import ulaw_decode, ulaw_encode

    got = bytearray()

    async def handler(call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Audio):
                got.extend(ev.pcm)

    pcm = tagged_audio(0.2)
    ulaw = ulaw_encode(pcm)  # 160 bytes per 20 ms frame, as Asterisk sends mu-law
    async with serve(handler, "127.0.0.1", 0, input_codec="ulaw") as server:
        peer = await RawPeer.open(server.port)
        for i in range(0, len(ulaw), 160):
            peer.send(b"\x10\x00\xa0" + ulaw[i : i + 160])
        await asyncio.sleep(0.2)
        peer.close()
        await asyncio.sleep(0.1)
    assert bytes(got) == ulaw_decode(ulaw) and len(got) == len(pcm)
