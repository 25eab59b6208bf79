"""The Asterisk-like client: what it sends, and how it judges a server that breaks Asterisk's rules."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from audionet.audiosocket import Audio, Error, Hangup, connect
from audionet.audiosocket.proto import Decoder, Kind, Message, encode_audio
from audionet.errors import LocalProtocolError

from .util import tagged_audio

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(script: Script) -> tuple[asyncio.Server, int, list[bytes]]:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.readexactly(19))
        await script(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], received


async def test_uuid_first_then_paced_audio_and_dtmf() -> None:
    got: list[Message] = []
    times: list[float] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = Decoder()
        while data := await reader.read(4096):
            loop = asyncio.get_running_loop()
            for m in dec.feed(data):
                got.append(m)
                times.append(loop.time())

    server, port, first = await raw_server(script)
    uid = uuid.uuid4()
    call = await connect("127.0.0.1", port, uid, wait_for_server=False)
    pcm = tagged_audio(0.5)
    call.send_audio(pcm)
    call.send_dtmf("5")
    await call.drain()
    await asyncio.sleep(0.05)
    await call.hangup()
    await asyncio.sleep(0.05)
    server.close()
    assert first == [b"\x01\x00\x10" + uid.bytes]
    audio = [m for m in got if m.kind == Kind.AUDIO]
    assert b"".join(m.payload for m in audio) == pcm and {len(m.payload) for m in audio} == {320}
    assert Message(Kind.DTMF, b"5") in got
    assert Kind.HANGUP not in {m.kind for m in got}  # Asterisk closes without a hangup message
    t = [times[i] for i, m in enumerate(got) if m.kind == Kind.AUDIO]
    assert 0.018 < (t[-1] - t[0]) / (len(t) - 1) < 0.022


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (b"\x03\x00\x011", "kind 0x03"),
        (b"\xff\x00\x01\x02", "kind 0xff"),
        (b"\x10\x00\x00", "length 0"),
        (b"\x10\x00\x03abc", "odd length"),
    ],
)
async def test_strict_client_drops_the_call_like_asterisk(payload: bytes, text: str) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(encode_audio(bytes(320)) + payload)
        await reader.read()

    server, port, _ = await raw_server(script)
    call = await connect("127.0.0.1", port)
    events = [ev async for ev in call]
    server.close()
    assert isinstance(events[0], Audio)
    assert any(isinstance(e, Error) and text in e.message for e in events)
    assert call.ended and "Asterisk would drop the call" in call.end_reason


async def test_close_without_hangup_and_a_late_payload_are_violations() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = encode_audio(bytes(320))
        writer.write(msg[:50])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(msg[50:])
        await writer.drain()
        writer.close()

    server, port, _ = await raw_server(script)
    call = await connect("127.0.0.1", port, strict=False)
    events = [ev async for ev in call]
    server.close()
    messages = [v.message for v in call.violations]
    assert any("after its header" in m for m in messages)
    assert any("without sending a hangup" in m for m in messages)
    assert isinstance(events[-1], Error | Hangup)


async def test_waits_for_server_audio_like_the_channel_driver() -> None:
    seen: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await asyncio.wait_for(reader.read(100), 0.3))
        except TimeoutError:
            seen.append(b"nothing")
        writer.write(encode_audio(bytes(320)))
        seen.append(await reader.read(400))
        writer.write(b"\x00\x00\x00")
        writer.close()

    server, port, _ = await raw_server(script)
    call = await connect("127.0.0.1", port)
    call.send_audio(tagged_audio(0.1))
    await asyncio.wait_for(call.wait_closed(), 3)
    server.close()
    assert seen[0] == b"nothing" and seen[1][:1] == b"\x10"
    assert call.violations == []


async def test_connect_refused_and_bad_rate() -> None:
    with pytest.raises(OSError):
        await connect("127.0.0.1", 1)
    with pytest.raises(LocalProtocolError):
        await connect("127.0.0.1", 1, rate=11025)
