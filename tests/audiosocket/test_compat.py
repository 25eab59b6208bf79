"""The seed's callback API, used exactly the way the seed's documentation and examples use it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

import audionet.audiosocket as audiosocket
from audionet.audiosocket import connect
from audionet.audiosocket.proto import encode_error
from audionet.errors import ConfigError

from .util import RawPeer, strip_silence, tagged_audio


class EchoCallbacks:
    """The seed recommends making the callbacks methods of a class."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {}
        self.ended: list[str] = []
        self.errors: list[tuple[str, Any, BaseException]] = []

    def on_audio(self, uuid: str, peer_name: Any, audio: bytearray) -> bytes | None:
        if len(audio) == 0:
            self.ended.append(uuid)
            return None
        self.calls.setdefault(uuid, []).append((peer_name, type(audio)))
        return bytes(audio)

    def on_exception(self, uuid: str, peer_name: Any, error: BaseException) -> None:
        self.errors.append((uuid, peer_name, error))


async def seed_echo_call(
    cb: EchoCallbacks, pcm: bytes, settle: float, **kwargs: Any
) -> tuple[uuid.UUID, Any]:
    """One Asterisk-like call sending ``pcm`` to a seed-API echo server, then a hangup."""
    server = await audiosocket.start_server(cb.on_audio, cb.on_exception, "127.0.0.1", 0, **kwargs)
    serving = asyncio.create_task(server.serve_forever())
    uid = uuid.uuid4()
    call = await connect("127.0.0.1", server.sockets[0].getsockname()[1], uid)
    call.send_audio(pcm)
    await call.drain()
    await asyncio.sleep(settle)
    await call.hangup()
    await asyncio.sleep(0.1)
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    return uid, call


async def test_seed_style_echo_server() -> None:
    cb = EchoCallbacks()
    pcm = tagged_audio(0.6)
    uid, call = await seed_echo_call(cb, pcm, 0.3)
    assert strip_silence(call.received) == pcm and call.violations == []
    # the UUID in its canonical 36-character form, as the dialplan writes it (SPEC §4)
    assert list(cb.calls) == [str(uid)] and cb.ended == [str(uid)]
    peer, kind = cb.calls[str(uid)][0]
    assert peer[0] == "127.0.0.1" and kind is bytearray
    assert cb.errors == []


async def test_seed_hex_uuid_on_request() -> None:
    cb = EchoCallbacks()
    uid, _ = await seed_echo_call(cb, tagged_audio(0.1), 0.2, uuid_format="hex")
    # code written against the seed's bytes.hex(): 32 digits, no dashes
    assert list(cb.calls) == [uid.hex] and cb.ended == [uid.hex]
    with pytest.raises(ConfigError, match="uuid_format"):
        await audiosocket.start_server(cb.on_audio, None, "127.0.0.1", 0, uuid_format="braces")


SAMPLE_SONG = tagged_audio(0.5, seed=3)
SAMPLE_SONG_LENGTH = len(SAMPLE_SONG)


class CallState:
    def __init__(self) -> None:
        self.playback_slice_start = 0
        self.playback_slice_end = 320


async def test_seed_playback_example_then_hangup_call_message() -> None:
    """The seed's playback example: one 320-byte slice per received frame, then hang up."""
    call_states: dict[str, CallState] = {}

    def on_audio(uuid: str, peer_name: Any, audio: bytearray) -> bytes | None:
        if len(audio) == 0:
            call_states.pop(uuid)
            return None
        state = call_states.setdefault(uuid, CallState())
        chunk = SAMPLE_SONG[state.playback_slice_start : state.playback_slice_end]
        state.playback_slice_start += 320
        state.playback_slice_end += 320
        if state.playback_slice_start > SAMPLE_SONG_LENGTH:
            return audiosocket.HANGUP_CALL_MESSAGE
        return chunk

    def on_exception(uuid: str, peer_name: Any, exception: BaseException) -> None:
        raise AssertionError(exception)

    server = await audiosocket.start_server(on_audio, on_exception, host="127.0.0.1", port=0)
    call = await connect("127.0.0.1", server.port, wait_for_server=False)
    call.send_audio(tagged_audio(2.0))
    await asyncio.wait_for(call.wait_closed(), 5)
    server.close()
    await server.wait_closed()
    assert call.end_reason == "server sent a hangup message" and call.violations == []
    assert strip_silence(call.received) == SAMPLE_SONG
    assert call_states == {}


async def test_coroutine_callbacks_and_empty_bytearray_hangup() -> None:
    seen: list[int] = []

    async def on_audio(uuid: str, peer_name: Any, audio: bytearray) -> bytearray | None:
        await asyncio.sleep(0)
        if len(audio) == 0:
            return None
        seen.append(len(audio))
        return bytearray() if len(seen) == 3 else bytearray(audio)

    async def on_exception(uuid: str, peer_name: Any, error: BaseException) -> None:
        raise AssertionError(error)

    server = await audiosocket.start_server(on_audio, on_exception, "127.0.0.1", 0)
    call = await connect("127.0.0.1", server.port, wait_for_server=False)
    call.send_audio(tagged_audio(1.0))
    await asyncio.wait_for(call.wait_closed(), 5)
    server.close()
    await server.wait_closed()
    assert seen[:3] == [320, 320, 320] and call.end_reason == "server sent a hangup message"
    assert call.violations == []


async def test_exceptions_reach_on_exception() -> None:
    errors: list[tuple[str, BaseException]] = []

    def on_audio(uuid: str, peer_name: Any, audio: bytearray) -> None:
        if len(audio) == 3 * 2:
            raise ValueError("user bug")

    def on_exception(uuid: str, peer_name: Any, error: BaseException) -> None:
        errors.append((uuid, error))

    server = await audiosocket.start_server(
        on_audio, on_exception, "127.0.0.1", 0, max_calls=10, reuse_address=True
    )
    no_uuid = await RawPeer.open(server.port, send_uuid=False)
    no_uuid.send(b"\x10\x00\x02\x00\x00")
    assert await no_uuid.read_all() == b"\x00\x00\x00"
    asterisk_error = await RawPeer.open(server.port)
    asterisk_error.send(encode_error(2) + encode_error(4))
    buggy = await RawPeer.open(server.port)
    buggy.send(b"\x10\x00\x06" + bytes(6))
    await buggy.read_all()
    asterisk_error.close()
    await asyncio.sleep(0.1)
    server.close()
    await server.wait_closed()
    kinds = [type(e).__name__ for _, e in errors]
    assert errors[0][0] == "" and kinds[0] == "AudioSocketReadError"
    assert "AsteriskFrameForwardError" in kinds and "AsteriskMemoryAllocError" in kinds
    assert "ValueError" in kinds
    assert isinstance(errors[0][1], audiosocket.AudioSocketReadError)


async def test_a_call_ended_by_a_protocol_error_still_gets_the_empty_bytearray() -> None:
    cb = EchoCallbacks()
    server = await audiosocket.start_server(cb.on_audio, cb.on_exception, "127.0.0.1", 0)
    peer = await RawPeer.open(server.port)
    peer.send(b"\x10\xff\xff")  # 65535 bytes: over the 16384-byte limit
    assert (await peer.read_all()).endswith(b"\x00\x00\x00")
    server.close()
    await server.wait_closed()
    assert len(cb.ended) == 1 and len(cb.ended[0]) == 36
    assert isinstance(cb.errors[0][2], audiosocket.AudioSocketReadError)
