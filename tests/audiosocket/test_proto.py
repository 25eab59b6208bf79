"""The sans-I/O core: kinds, encoding, the incremental decoder and the per-call state machine."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import audionet.audiosocket as pkg
from audionet.audiosocket.proto import (
    AUDIO_RATES,
    HANGUP_MESSAGE,
    Audio,
    Connected,
    Decoder,
    Dtmf,
    Error,
    ErrorCode,
    Hangup,
    Kind,
    Limits,
    Message,
    ServerConnection,
    State,
    encode_audio,
    encode_dtmf,
    encode_error,
    encode_uuid,
    frame_bytes,
    kind_for_rate,
    split_audio,
)
from audionet.errors import LocalProtocolError, RemoteProtocolError

UID = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")

messages = st.builds(Message, st.integers(0, 255), st.binary(max_size=300))


def test_kind_values_match_asterisk() -> None:
    assert Kind.HANGUP == 0 and Kind.UUID == 1 and Kind.DTMF == 3 and Kind.ERROR == 0xFF
    assert [kind_for_rate(r) for r in (8000, 16000, 48000, 192000)] == [0x10, 0x12, 0x16, 0x18]
    assert sorted(AUDIO_RATES) == list(range(0x10, 0x19))
    assert ErrorCode.FRAME_FORWARDING == 2 and ErrorCode.MEMORY == 4
    assert frame_bytes(8000) == 320 and frame_bytes(16000) == 640


def test_encoders_produce_exact_bytes() -> None:
    assert encode_uuid(UID) == b"\x01\x00\x10" + UID.bytes
    assert encode_audio(b"\x01\x02", 8000) == b"\x10\x00\x02\x01\x02"
    assert encode_audio(b"\x01\x02", 16000)[0] == 0x12
    assert encode_dtmf("#") == b"\x03\x00\x01#"
    assert encode_error(ErrorCode.MEMORY) == b"\xff\x00\x01\x04"
    assert HANGUP_MESSAGE == b"\x00\x00\x00"


@pytest.mark.parametrize("pcm", [b"", b"\x01", bytes(65535), bytes(70000)])
def test_encode_audio_refuses_what_asterisk_drops(pcm: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        encode_audio(pcm)


def test_bad_arguments_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        kind_for_rate(11025)
    with pytest.raises(LocalProtocolError):
        encode_dtmf("x")
    with pytest.raises(LocalProtocolError):
        Message(256).to_bytes()


def test_split_audio_keeps_every_byte_in_even_messages() -> None:
    pcm = bytes(range(256)) * 600  # 153,600 bytes
    msgs = split_audio(pcm)
    assert len(msgs) == 3
    dec = Decoder()
    out = dec.feed(b"".join(msgs))
    assert all(len(m.payload) % 2 == 0 and 0 < len(m.payload) <= 65534 for m in out)
    assert b"".join(m.payload for m in out) == pcm
    assert split_audio(b"") == []


@given(messages)
def test_message_round_trip(msg: Message) -> None:
    assert Message.parse(msg.to_bytes()) == msg


def test_parse_rejects_short_and_long() -> None:
    with pytest.raises(RemoteProtocolError):
        Message.parse(b"\x10\x00")
    with pytest.raises(RemoteProtocolError):
        Message.parse(b"\x10\x00\x02\x01\x02\x03")


@given(st.lists(messages, max_size=20), st.data())
def test_decoder_any_fragmentation(msgs: list[Message], data: st.DataObject) -> None:
    stream = b"".join(m.to_bytes() for m in msgs)
    # whole
    assert Decoder().feed(stream) == msgs
    # byte by byte
    dec = Decoder()
    out = [m for i in range(len(stream)) for m in dec.feed(stream[i : i + 1])]
    assert out == msgs and dec.pending() == 0
    # random splits
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = Decoder()
    out = []
    prev = 0
    for c in [*cuts, len(stream)]:
        out += dec.feed(stream[prev:c])
        prev = c
    assert out == msgs


def test_decoder_trailing_junk_is_held_as_pending() -> None:
    dec = Decoder()
    out = dec.feed(encode_audio(b"\x00\x01") + b"\x10\x00")
    assert out == [Message(0x10, b"\x00\x01")]
    assert dec.pending() == 2
    assert dec.feed(b"\x02ab") == [Message(0x10, b"ab")]


def test_decoder_limit_stops_at_the_header() -> None:
    dec = Decoder(max_payload=100)
    first = encode_dtmf("1")
    assert dec.feed(first + b"\x10\x01\x00") == [Message(3, b"1")]  # 256 declared, none sent yet
    assert dec.error is not None and "over the limit of 100" in dec.error
    assert dec.feed(first) == [] and dec.pending() == 0


def start(now: float = 0.0, **kw: float) -> ServerConnection:
    conn = ServerConnection(now, Limits(**kw) if kw else None)  # type: ignore[arg-type]
    assert conn.receive_data(encode_uuid(UID)) == [Connected(UID)]
    return conn


def test_call_events_in_order() -> None:
    conn = start()
    data = encode_audio(b"\x01\x00" * 160) + encode_dtmf("5") + encode_audio(b"\x02\x00", 16000)
    assert conn.receive_data(data) == [
        Audio(b"\x01\x00" * 160, 8000),
        Dtmf("5"),
        Audio(b"\x02\x00", 16000),
    ]
    assert conn.receive_data(b"") == [Hangup(by_peer=True, reason="peer closed the connection")]
    assert conn.state is State.CLOSED
    assert conn.receive_data(encode_audio(b"\x00\x00")) == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (encode_audio(b"\x00\x00"), "before the UUID"),
        (b"\x01\x00\x08" + bytes(8), "exactly 16"),
        (b"\x01\x00\x11" + bytes(17), "exactly 16"),
        (encode_dtmf("1"), "before the UUID"),
    ],
)
def test_bad_first_message_fails(data: bytes, match: str) -> None:
    conn = ServerConnection(0.0)
    [ev] = conn.receive_data(data)
    assert isinstance(ev, Error) and ev.fatal and match in ev.message
    assert conn.state is State.CLOSED


def test_oversize_truncated_and_odd_end_the_call() -> None:
    conn = start(max_payload=1000)
    [ev] = conn.receive_data(b"\x10\x10\x00")
    assert isinstance(ev, Error) and ev.fatal and "over the limit" in ev.message
    conn = start()
    assert conn.receive_data(b"\x10\x01\x40" + bytes(10)) == []
    [ev] = conn.receive_data(b"")
    assert isinstance(ev, Error) and "middle of a message" in ev.message
    conn = start()
    [ev] = conn.receive_data(b"\x10\x00\x03abc")
    assert isinstance(ev, Error) and ev.fatal and "odd" in ev.message


def test_unknown_kinds_and_asterisk_errors_are_reported_not_fatal() -> None:
    conn = start()
    evs = conn.receive_data(
        b"\x42\x00\x02xy" + encode_error(2) + b"\x02\x00\x00" + encode_dtmf("1")
    )
    assert [type(e) for e in evs] == [Error, Error, Dtmf]
    assert "unknown message kind 0x42" in evs[0].message and not evs[0].fatal  # type: ignore[union-attr]
    assert evs[1].code == 2 and "frame forwarding" in evs[1].message  # type: ignore[union-attr]
    assert conn.state is State.ACTIVE


def test_events_after_a_fatal_error_are_not_delivered() -> None:
    conn = start(max_payload=20)
    evs = conn.receive_data(encode_dtmf("1") + b"\x10\x00\x20" + bytes(32) + encode_dtmf("2"))
    assert evs[0] == Dtmf("1") and isinstance(evs[1], Error) and len(evs) == 2


def test_uuid_timeout_uses_the_time_passed_in() -> None:
    conn = ServerConnection(100.0, Limits(uuid_timeout=2.0))
    assert conn.deadline == 102.0
    assert conn.handle_timer(101.9) == []
    [ev] = conn.handle_timer(102.0)
    assert isinstance(ev, Error) and "no UUID within 2 s" in ev.message
    started = start(100.0)
    assert started.deadline is None and started.handle_timer(1e9) == []


def test_peer_hangup_message_and_local_close() -> None:
    conn = start()
    assert conn.receive_data(HANGUP_MESSAGE) == [Hangup(True, "peer sent a hangup message")]
    conn = start()
    assert conn.close("bye") == [Hangup(by_peer=False, reason="bye")]
    assert conn.close() == []


def test_g711_declared_input_is_decoded() -> None:
    from audionet.audio.codecs.g711 import ulaw_decode, ulaw_encode

    conn = ServerConnection(0.0, decode=ulaw_decode)
    conn.receive_data(encode_uuid(UID))
    pcm = b"".join(int(v).to_bytes(2, "little", signed=True) for v in range(-8000, 8000, 100))
    ulaw = ulaw_encode(pcm)
    [ev] = conn.receive_data(b"\x10" + len(ulaw).to_bytes(2, "big") + ulaw)
    assert isinstance(ev, Audio) and ev.pcm == ulaw_decode(ulaw) and len(ev.pcm) == 2 * len(ulaw)


@pytest.mark.parametrize("module", ["proto", "pacing", "check"])
def test_cores_import_no_io(module: str) -> None:
    tree = ast.parse(Path(pkg.__file__).with_name(f"{module}.py").read_text())
    names = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    names |= {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    }
    assert not names & {"asyncio", "socket", "time", "selectors", "sounddevice", "threading"}


def test_receive_audio_fast_path_is_exact_and_declines_everything_else() -> None:
    conn = ServerConnection(0.0)
    one = encode_audio(b"\x01\x02" * 160)
    assert conn.receive_audio(one) is None  # no UUID yet
    conn.receive_data(encode_uuid(UID))
    ev = conn.receive_audio(memoryview(one))
    assert ev == Audio(b"\x01\x02" * 160, 8000) and type(ev.pcm) is bytes and hash(ev)
    for data in (one + one, one[:-1], encode_dtmf("1"), b"\x10\x00\x03abc", b"\x10\x00\x00"):
        assert conn.receive_audio(data) is None
    assert conn.receive_data(one[:10]) == []
    assert conn.receive_audio(one) is None  # half a message is held back: the general path must run


def test_receive_messages_passes_whole_frames_of_its_kind_and_leaves_the_rest() -> None:
    conn = ServerConnection(0.0)
    a, b = encode_audio(b"\x01\x02" * 160), encode_audio(b"\x03\x04" * 80)
    assert conn.receive_messages(a, 0x10) == ([], 0)  # no UUID yet
    conn.receive_data(encode_uuid(UID))
    msgs, end = conn.receive_messages(a, 0x10)
    assert msgs == [a] and msgs[0] is a and end == len(a)  # one message: the read itself
    data = a + b + encode_dtmf("7") + a
    msgs, end = conn.receive_messages(data, 0x10)
    assert msgs == [a, b] and end == len(a + b)
    assert conn.receive_data(data[end:]) == [Dtmf("7"), Audio(a[3:], 8000)]
    for stop_at in (encode_dtmf("1"), b"\x10\x00\x03abc", b"\x10\x00\x00"):
        assert conn.receive_messages(stop_at + a, 0x10) == ([], 0)
    assert conn.receive_messages(a[:-1], 0x10) == ([], 0)  # half a message
    assert conn.receive_messages(a + a[:-1], 0x10) == ([a], len(a))
    assert conn.receive_messages(encode_audio(bytes(640), 16000), 0x10) == ([], 0)  # other kind
    small = ServerConnection(0.0, Limits(max_payload=100))
    small.receive_data(encode_uuid(UID))
    assert small.receive_messages(a, 0x10) == ([], 0)  # over the limit: the general path fails it
    assert conn.receive_data(a[:10]) == []
    assert conn.receive_messages(a, 0x10) == ([], 0)  # half a message held back
    assert conn.pending() == 10
    g711 = ServerConnection(0.0, decode=lambda p: p)
    g711.receive_data(encode_uuid(UID))
    assert g711.receive_messages(a, 0x10) == ([], 0)
