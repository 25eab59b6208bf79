"""The outgoing queue read by the 20 ms clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.audiosocket.pacing import OutgoingAudio
from audionet.audiosocket.proto import HEADER, Decoder
from audionet.errors import LocalProtocolError


def payloads(msgs: list[bytes | None]) -> list[bytes]:
    dec = Decoder()
    return [m.payload for b in msgs if b is not None for m in dec.feed(b)]


def test_frames_then_tail_then_silence() -> None:
    out = OutgoingAudio(8000)
    out.push(bytes(range(200)) * 4)  # 800 bytes = 2.5 frames
    msgs = [out.next_message() for _ in range(4)]
    assert all(m is not None and m[0] == 0x10 for m in msgs)
    sizes = [len(p) for p in payloads(msgs)]
    assert sizes == [320, 320, 160, 320]
    assert b"".join(payloads(msgs)[:3]) == bytes(range(200)) * 4
    assert msgs[3] is out.silence_message and payloads([msgs[3]]) == [bytes(320)]


def test_no_silence_when_disabled_and_rate_sets_kind() -> None:
    out = OutgoingAudio(16000, silence=False)
    assert out.next_message() is None
    out.push(bytes(640))
    msg = out.next_message()
    assert msg is not None and msg[:3] == b"\x12\x02\x80"


def test_bound_drops_oldest_and_limit() -> None:
    out = OutgoingAudio(8000, max_bytes=640)
    assert out.push(bytes(640)) == 0
    assert out.push(b"\x01\x00" * 160) == 320
    assert len(out) == 640 and out.dropped == 320 and out.room() == 0
    assert out.push(b"\x02\x00" * 160, limit=320) == 640
    assert bytes(payloads([out.next_message()])[0]) == b"\x02\x00" * 160


def test_odd_audio_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        OutgoingAudio().push(b"\x01")


@given(st.lists(st.integers(0, 900).map(lambda n: bytes(2 * n)), max_size=20))
def test_every_message_is_valid_and_nothing_is_lost(chunks: list[bytes]) -> None:
    out = OutgoingAudio(8000, max_bytes=1 << 30, silence=False)
    for c in chunks:
        out.push(c)
    msgs = []
    while (m := out.next_message()) is not None:
        msgs.append(m)
    got = payloads(msgs)
    assert all(0 < len(p) <= 320 and len(p) % 2 == 0 for p in got)
    assert sum(map(len, got)) == sum(map(len, chunks))


def test_whole_frame_messages_go_out_unchanged_and_in_order_with_pcm() -> None:
    out = OutgoingAudio(8000)
    m1, m2 = HEADER.pack(0x10, 320) + bytes([1]) * 320, HEADER.pack(0x10, 320) + bytes([2]) * 320
    assert out.push_message(m1) == 0 and out.push_message(m2) == 0
    out.push(bytes([3]) * 100)
    out.push_message(m1)  # behind queued PCM: joins it as PCM, order kept
    assert len(out) == 2 * 320 + 100 + 320 and out.room() == out.max_bytes - len(out)
    sent = [out.next_message() for _ in range(5)]
    assert sent[0] is m1 and sent[1] is m2
    assert payloads(sent[2:4]) == [bytes([3]) * 100 + bytes([1]) * 220, bytes([1]) * 100]
    assert sent[4] is out.silence_message
    short = HEADER.pack(0x10, 4) + b"\x05\x06\x07\x08"
    out.push_message(short)  # not a whole frame: queued as PCM
    assert payloads([out.next_message()]) == [b"\x05\x06\x07\x08"]


def test_whole_frame_messages_respect_the_bound_exactly() -> None:
    out = OutgoingAudio(8000, max_bytes=3 * 320)
    frames = [HEADER.pack(0x10, 320) + bytes([i]) * 320 for i in range(5)]
    dropped = sum(out.push_message(m) for m in frames)
    assert dropped == 2 * 320 == out.dropped and len(out) == 3 * 320
    assert [out.next_message() for _ in range(3)] == frames[2:]
    # a bound that is not a whole number of frames drops exactly the excess, as for PCM
    out = OutgoingAudio(8000, max_bytes=500)
    out.push_message(frames[0])
    assert out.push_message(frames[1]) == 140 and len(out) == 500
    assert payloads([out.next_message(), out.next_message()]) == [
        bytes([0]) * 180 + bytes([1]) * 140,
        bytes([1]) * 180,
    ]
    out.push_message(frames[2])
    out.clear()
    assert len(out) == 0 and out.next_message() is out.silence_message
