"""Frames: both profiles round trip, legacy matches hand-computed bytes, corruption is caught."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.errors import ConfigError, LocalProtocolError
from audionet.modem.proto.frame import (
    AUDIONET,
    LEGACY,
    Address,
    Flags,
    Frame,
    FrameError,
    FrameProfile,
    Protocol,
    get_profile,
    java_hash,
)

addresses = st.builds(Address, st.integers(0, 255), st.integers(0, 255))
payloads = st.binary(max_size=300)
legacy_flags = st.sets(st.sampled_from([Flags.SYN, Flags.ACK, Flags.FIN, Flags.BEG, Flags.END]))


def _combine(flags: set[Flags]) -> Flags:
    out = Flags.NONE
    for f in flags:
        out |= f
    return out


ours_frames = st.builds(
    Frame,
    src=addresses,
    dst=addresses,
    seq=st.integers(0, 0xFFFF),
    flags=st.sets(st.sampled_from(list(Flags)[1:])).map(_combine),
    protocol=st.sampled_from(Protocol),
    ack=st.integers(0, 0xFFFF),
    window=st.integers(0, 255),
    sack=st.integers(0, 0xFFFFFFFF),
    payload=payloads,
)
legacy_frames = st.builds(
    Frame,
    src=addresses,
    dst=addresses,
    seq=st.integers(0, 255),
    flags=legacy_flags.map(_combine),
    protocol=st.sampled_from(Protocol),
    payload=payloads,
)
profiles_and_frames = st.one_of(
    st.tuples(st.just(AUDIONET), ours_frames), st.tuples(st.just(LEGACY), legacy_frames)
)


@given(profiles_and_frames)
def test_round_trip(pf: tuple[FrameProfile, Frame]) -> None:
    profile, frame = pf
    data = profile.encode(frame)
    assert len(data) == profile.overhead(len(frame.payload))
    assert profile.total_length(data[: profile.header_size]) == len(data)
    assert profile.decode(data) == frame


@given(profiles_and_frames, st.binary(max_size=40))
def test_stream_split_whole_bytewise_and_trailing_junk(
    pf: tuple[FrameProfile, Frame], junk: bytes
) -> None:
    profile, frame = pf
    data = profile.encode(frame)
    # Whole, with trailing junk: the frame is parsed and exactly its bytes are consumed.
    parsed, used = profile.split(data + junk)
    assert parsed == frame and used == len(data)
    # One byte at a time: incomplete until the very last byte.
    for n in range(len(data)):
        assert profile.split(data[:n]) == (None, 0)
    assert profile.split(data)[0] == frame


@given(profiles_and_frames, st.data())
def test_any_single_bit_flip_is_rejected(
    pf: tuple[FrameProfile, Frame], data: st.DataObject
) -> None:
    profile, frame = pf
    wire = bytearray(profile.encode(frame))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(FrameError):
        profile.decode(bytes(wire))


@given(st.sampled_from([AUDIONET, LEGACY]), st.binary(max_size=64))
def test_random_bytes_never_crash(profile: FrameProfile, junk: bytes) -> None:
    try:
        frame = profile.decode(junk)
    except FrameError:
        return
    assert profile.encode(frame) == junk  # only a genuine frame may parse


def test_truncated_and_extended_frames_rejected() -> None:
    data = AUDIONET.encode(Frame(Address(1, 2), Address(3, 4), payload=b"hello"))
    for bad in (data[:-1], data + b"\x00", data[:5]):
        with pytest.raises(FrameError):
            AUDIONET.decode(bad)


def test_java_hash_matches_java() -> None:
    # Values of java.util.Arrays.hashCode(new byte[]{...}), computed by hand from h = 31*h + b.
    assert java_hash(b"") == 1
    assert java_hash(b"hi") == (31 * (31 * 1 + 104) + 105)  # 4290
    assert java_hash(b"\xff") == 30  # the byte is signed: 31*1 + (-1)
    assert java_hash(b"\x80\x80") == 31 * (31 - 128) - 128  # -3135


def test_legacy_hand_computed_bytes() -> None:
    frame = Frame(Address(1, 2), Address(3, 4), seq=5, flags=Flags.SYN | Flags.ACK)
    # header 01 02 03 04 05 03 00 00 00; Arrays.hashCode worked by hand (h = 31h + b, mod 2**32):
    # 1 -> 32 -> 994 -> 30817 -> 955331 -> 29615266 -> 918073249 -> 2690466943 -> 1800096609
    # -> 4263387327 = 0xFE1E20BF (as an int32: -31579969).
    assert LEGACY.encode(frame) == bytes.fromhex("010203040503000000" + "fe1e20bf")
    with_payload = Frame(Address(1, 2), Address(3, 4), seq=6, flags=Flags.BEG | Flags.END,
                         protocol=Protocol.PING, payload=b"hi")  # fmt: skip
    wire = LEGACY.encode(with_payload)
    assert wire[:9] == bytes.fromhex("010203040630010002")
    assert wire[13:] == b"hi" + (4290).to_bytes(4, "big")
    assert LEGACY.decode(wire) == with_payload


def test_audionet_layout_and_crc() -> None:
    frame = Frame(Address(1, 2), Address(3, 4), seq=0x1234, flags=Flags.ACK, ack=0x5678,
                  window=9, sack=0x80000001, payload=b"x")  # fmt: skip
    wire = AUDIONET.encode(frame)
    head = bytes.fromhex("0102030402001234567809800000010001")
    assert wire[:17] == head
    assert wire[17:21] == zlib.crc32(head).to_bytes(4, "big")
    assert wire[21:] == b"x" + zlib.crc32(b"x").to_bytes(4, "big")


def test_legacy_refuses_fields_it_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError):
        LEGACY.encode(Frame(Address(1, 2), Address(3, 4), ack=1))
    with pytest.raises(LocalProtocolError):
        LEGACY.encode(Frame(Address(1, 2), Address(3, 4), seq=256))


def test_unknown_flags_and_protocol_rejected() -> None:
    head = bytes([1, 2, 3, 4, 5, 0x80, 0, 0, 0])
    with pytest.raises(FrameError, match="flag"):
        LEGACY.decode(head + java_hash(head).to_bytes(4, "big", signed=True))
    head = bytes([1, 2, 3, 4, 5, 0, 7, 0, 0])
    with pytest.raises(FrameError, match="protocol"):
        LEGACY.decode(head + java_hash(head).to_bytes(4, "big", signed=True))


def test_profiles_and_addresses() -> None:
    assert get_profile("legacy") is LEGACY
    with pytest.raises(ConfigError):
        get_profile("nope")
    assert Address.parse("7:9") == Address(7, 9)
    assert str(Address(7, 9)) == "7:9"
    for bad in ("x:1", "1:300", "-1:0"):
        with pytest.raises(ConfigError):
            Address.parse(bad)
    f = Frame(Address(1, 2), Address(3, 4), seq=1)
    assert f.reply(seq=2) == Frame(Address(3, 4), Address(1, 2), seq=2)
