"""The per-frame fast path is the general path, faster: same events, same order, same bytes.

A handler with ``audio_message`` gets the raw messages of whole frames of its own kind; the same byte
streams sent to a handler without it (every message parsed into events) must give the same audio and
the same DTMF, reports and ends, for any mix of messages in one read and any split across reads.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

import pytest

from audionet.audiosocket import Audio, Call, Dtmf, Error, serve
from audionet.audiosocket.apps import EchoApp
from audionet.audiosocket.proto import (
    HEADER,
    encode_audio,
    encode_dtmf,
    encode_error,
    encode_uuid,
)

from .util import FRAME, ends_with_hangup, strip_silence, tagged_audio

T = TypeVar("T")


class Recorder:
    """Records what a call hears, as ("audio", rate, pcm), ("dtmf", digit), ("error", ...), ("end", ...)."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.done = asyncio.Event()

    def started(self, call: Call) -> None:
        pass

    def failed(self, peer: Any, error: Error) -> None:
        pass

    def event(self, call: Call, event: Any) -> None:
        if isinstance(event, Audio):
            self.log.append(("audio", event.rate, event.pcm))
        elif isinstance(event, Dtmf):
            self.log.append(("dtmf", event.digit))
        elif isinstance(event, Error) and not event.fatal:
            self.log.append(("error", event.message))
        else:
            self.log.append(("end", type(event).__name__))
            self.done.set()


class FastRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.messages = 0

    def audio_message(self, call: Call, message: bytes) -> None:
        assert isinstance(message, bytes)
        kind, length = HEADER.unpack_from(message)
        assert kind == 0x10 and len(message) == 3 + length
        self.messages += 1
        self.log.append(("audio", 8000, message[3:]))


def frame(i: int, n: int = FRAME) -> bytes:
    return encode_audio(bytes((i * 13 + j) % 256 for j in range(n)))


async def play(port: int, chunks: list[bytes], pause: float = 0.03) -> None:
    """Send each chunk in its own write (TCP_NODELAY, a pause between: one read each), then close."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(encode_uuid(uuid.uuid4()))
    for chunk in chunks:
        await asyncio.sleep(pause)
        writer.write(chunk)
        await writer.drain()
    await asyncio.sleep(pause)
    writer.close()
    await writer.wait_closed()


async def hear(handler: Recorder, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    async with serve(handler, "127.0.0.1", 0) as server:
        await play(server.port, chunks)
        await asyncio.wait_for(handler.done.wait(), 5)
    return handler.log


def streams() -> dict[str, list[bytes]]:
    f = [frame(i) for i in range(12)]
    mixed = f[0] + encode_dtmf("5") + f[1] + encode_error(0x02) + f[2] + bytes([0x42, 0, 1, 7])
    return {
        "one frame per read": f[:6],
        "several frames in one read": [f[0] + f[1] + f[2], f[3], f[4] + f[5]],
        "audio mixed with DTMF, errors and unknown kinds in one read": [mixed, f[3], f[4]],
        "a frame split across reads, then whole frames": [
            f[0][:100],
            f[0][100:] + f[1][:5],
            f[1][5:],
            f[2],
            f[3],
        ],
        "header split from its payload": [f[0][:3], f[0][3:], f[1]],
        "other sizes and rates": [
            encode_audio(bytes(range(200))),
            encode_audio(bytes(640), 16000),
            f[5],
            encode_audio(bytes(2)),
            HEADER.pack(0x10, 0),  # empty audio: nothing to hear
            f[6],
        ],
        "a hangup message among frames": [f[0] + f[1] + HEADER.pack(0x00, 0) + f[2], f[3]],
    }


def run_on(loop: str, coro: Coroutine[Any, Any, T]) -> T:
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return cast(T, uvloop.run(coro))
    return asyncio.run(coro)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("name", list(streams()))
def test_fast_path_hears_exactly_what_the_general_path_hears(name: str, loop: str) -> None:
    """On both loops (uvloop: a plain Protocol; asyncio: a BufferedProtocol)."""
    chunks = streams()[name]
    general = run_on(loop, hear(Recorder(), chunks))
    fast_handler = FastRecorder()
    fast = run_on(loop, hear(fast_handler, chunks))
    assert fast == general
    audio = [e for e in general if e[0] == "audio"]
    assert audio, "the stream carries audio"
    assert fast_handler.messages == sum(1 for e in audio if e[1] == 8000)
    assert general[-1][0] == "end"


async def test_fast_path_stops_at_a_bad_message_and_the_call_ends_alone() -> None:
    chunks = [frame(0) + frame(1) + HEADER.pack(0x10, 3) + b"abc", frame(2)]  # odd audio: fatal
    general = await hear(Recorder(), chunks)
    fast = await hear(FastRecorder(), chunks)
    assert fast == general
    assert [e[0] for e in fast] == ["audio", "audio", "end"]


async def test_a_failing_hook_ends_only_its_call() -> None:
    class Failing(FastRecorder):
        def audio_message(self, call: Call, message: bytes) -> None:
            raise RuntimeError("boom")

    handler = Failing()
    async with serve(handler, "127.0.0.1", 0) as server:
        await play(server.port, [frame(0), frame(1)])
        await asyncio.wait_for(handler.done.wait(), 5)
        assert server.stats.errors.get("handler") == 1
    assert handler.log == [("end", "Error")]


async def exchange(port: int, chunks: list[bytes]) -> bytes:
    """Send each chunk 20 ms apart after a UUID, stop, and return all the server sent until it
    closed (it hangs up when the caller stops)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_uuid(uuid.uuid4()))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for k, chunk in enumerate(chunks):  # on a steady 20 ms schedule, as Asterisk's clock
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(max(0.0, start + (k + 1) * 0.02 - loop.time()))
    await asyncio.sleep(0.3)
    writer.write_eof()
    received = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return received


async def test_echo_sends_back_the_exact_bytes_it_received() -> None:
    """The echo app forwards each received message unchanged, whatever the read pattern."""
    pcm = tagged_audio(0.6)
    frames = [encode_audio(pcm[i : i + FRAME]) for i in range(0, len(pcm), FRAME)]
    # one per read, three in one read, and one split across two reads
    chunks = [*frames[:10], frames[10] + frames[11] + frames[12]]
    chunks += [frames[13][:50], frames[13][50:], *frames[14:]]
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        received = await exchange(server.port, chunks)
    assert ends_with_hangup(received)
    body = received[:-3]
    assert len(body) % (3 + FRAME) == 0
    msgs = [body[i : i + 3 + FRAME] for i in range(0, len(body), 3 + FRAME)]
    assert all(m[:3] == HEADER.pack(0x10, FRAME) for m in msgs)
    assert strip_silence(b"".join(m[3:] for m in msgs)) == pcm
    assert server.stats.frames_in == len(frames)
    assert server.stats.bytes_in == len(pcm)


async def test_a_hook_may_return_its_reply_to_each_frame() -> None:
    """``audio_message`` may return the message to send for the frame (here the frame with its
    samples inverted, or a half frame): it is queued and paced like any other audio, in order."""

    class Inverter(EchoApp):
        seen = 0

        def audio_message(self, call: Call, message: bytes) -> bytes:
            flipped = bytes(b ^ 0xFF for b in message[3:])
            self.seen += 1
            if self.seen == 8:  # one reply is half a frame: queued as PCM, still in order
                flipped = flipped[: FRAME // 2]
            return encode_audio(flipped)

    pcm = tagged_audio(0.4)
    frames = [encode_audio(pcm[i : i + FRAME]) for i in range(0, len(pcm), FRAME)]
    async with serve(Inverter(), "127.0.0.1", 0) as server:
        received = await exchange(server.port, frames)
    assert ends_with_hangup(received)
    heard = bytearray()
    body = received[:-3]
    while body:
        kind, length = HEADER.unpack_from(body)
        assert kind == 0x10 and length % 2 == 0 and 0 < length <= FRAME
        if any(body[3 : 3 + length]):  # (the clock's silence: before, after, or where the
            heard += body[3 : 3 + length]  # queue ran dry when a frame of the caller's was late)
        body = body[3 + length :]
    expected = b"".join(
        bytes(b ^ 0xFF for b in f[3:])[: FRAME // 2 if i == 7 else FRAME]
        for i, f in enumerate(frames)
    )
    assert bytes(heard) == expected  # every reply, in order, and nothing else but silence
