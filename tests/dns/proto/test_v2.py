"""v2 records: config, index, packs, payload encodings and the packer's size budget."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.dns.errors import BadRecordError, KeyRequiredError
from audionet.dns.proto import v2
from audionet.dns.proto.crypto import PackCipher

frames_st = st.lists(st.binary(max_size=300), max_size=20).map(tuple)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    frames_st,
    st.sampled_from(list(v2.Encoding)),
)
def test_pack_round_trip(
    epoch: int, seq: int, first: int, frames: tuple[bytes, ...], enc: v2.Encoding
) -> None:
    pack = v2.Pack(epoch, seq, first, frames)
    strings = v2.encode_payload(pack.to_payload(), enc)
    assert all(len(s) <= 255 for s in strings)
    assert v2.Pack.from_payload(v2.decode_payload(strings, enc)) == pack


def test_pack_header_bytes() -> None:
    pack = v2.Pack(0x01020304, 5, 300, (b"ab", b""))
    assert pack.to_payload() == (
        b"\x02\x00\x01\x02\x03\x04\x00\x00\x00\x05\x00\x00\x01\x2c\x02"
        + b"\x00\x02ab"
        + b"\x00\x00"
    )


def test_pack_truncated_and_trailing_junk() -> None:
    payload = v2.Pack(1, 2, 3, (b"hello", b"world")).to_payload()
    for cut in range(len(payload)):
        with pytest.raises(BadRecordError):
            v2.Pack.from_payload(payload[:cut])
    with pytest.raises(BadRecordError):
        v2.Pack.from_payload(payload + b"x")
    with pytest.raises(BadRecordError):
        v2.Pack.from_payload(b"\x01" + payload[1:])


def test_encrypted_pack() -> None:
    cipher = PackCipher(bytes(32))
    pack = v2.Pack(7, 9, 100, (b"secret", b"audio"))
    payload = pack.to_payload(cipher)
    assert b"secret" not in payload
    assert v2.Pack.from_payload(payload, cipher) == pack
    with pytest.raises(KeyRequiredError):
        v2.Pack.from_payload(payload)
    with pytest.raises(BadRecordError):
        v2.Pack.from_payload(payload, PackCipher(bytes(31) + b"\x01"))
    # The header is authenticated: a pack number moved onto another body fails.
    forged = payload[:9] + b"\x0a" + payload[10:]
    with pytest.raises(BadRecordError):
        v2.Pack.from_payload(forged, cipher)


@given(
    st.sampled_from(["opus", "codec2"]),
    st.integers(8000, 48000),
    st.integers(1, 2),
    st.integers(10, 120),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_config_round_trip(codec: str, rate: int, ch: int, fms: int, epoch: int, enc: bool) -> None:
    cfg = v2.StreamConfig(codec=codec, rate=rate, channels=ch, frame_ms=fms, epoch=epoch)
    if enc:
        cfg = v2.StreamConfig(
            codec=codec,
            rate=rate,
            channels=ch,
            frame_ms=fms,
            epoch=epoch,
            aead="chacha20poly1305",
            salt=bytes(range(16)),
            kcv=b"12345678",
        )
    text = cfg.to_text()
    assert len(text) <= 255
    assert v2.StreamConfig.from_text(text) == cfg


def test_config_golden_and_unknown_keys() -> None:
    cfg = v2.StreamConfig(epoch=0xABCDEF01)
    assert cfg.to_text() == b"v=2 codec=opus rate=16000 ch=1 fms=60 enc=raw epoch=abcdef01 packs=75"
    future = v2.StreamConfig.from_text(cfg.to_text() + b" future=1")
    assert future.extra == (("future", "1"),)


@pytest.mark.parametrize(
    "text",
    [b"", b"v=1 codec=opus", b"v=2 codec=opus", b"v=2 junk", b"\xff\xfe", b"v=2 aead=aes kdf=md5"],
)
def test_config_rejects(text: bytes) -> None:
    with pytest.raises(BadRecordError):
        v2.StreamConfig.from_text(text)


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**40), st.integers(0, 1000))
def test_index_round_trip(epoch: int, first: int, count: int) -> None:
    idx = v2.Index(epoch, first, count)
    assert v2.Index.from_text(idx.to_text()) == idx
    assert idx.last == first + count - 1


@pytest.mark.parametrize("text", [b"", b"epoch=zz first=1 count=2", b"epoch=1 first=-1 count=2"])
def test_index_rejects(text: bytes) -> None:
    with pytest.raises(BadRecordError):
        v2.Index.from_text(text)


@pytest.mark.parametrize("enc", list(v2.Encoding))
@pytest.mark.parametrize("encrypted", [False, True])
def test_packer_respects_budget(enc: v2.Encoding, encrypted: bool) -> None:
    budget = v2.rdata_budget(60)
    cipher = PackCipher(bytes(32)) if encrypted else None
    packer = v2.V2Packer(1, budget, enc, encrypted, max_frames=255)
    sizes = [150 + (i * 37) % 60 for i in range(300)]
    packs = [p for p in (packer.feed(bytes([i % 256]) * n) for i, n in enumerate(sizes)) if p]
    assert len(packs) > 10
    nxt = 0
    for p in packs:
        assert p.first_frame == nxt
        nxt = p.end_frame
        data = v2.encode_payload(p.to_payload(cipher), enc)
        assert sum(len(s) for s in data) <= budget
    assert [p.seq for p in packs] == list(range(len(packs)))


def test_packer_max_frames_and_flush() -> None:
    packer = v2.V2Packer(1, 1000, max_frames=3)
    got = [packer.feed(b"x") for _ in range(7)]
    assert [len(p.frames) for p in got if p] == [3, 3]
    last = packer.flush()
    assert last is not None and last.frames == (b"x",) and last.first_frame == 6
    assert packer.flush() is None
    with pytest.raises(ValueError):
        packer.feed(bytes(2000))


def test_budget_answer_fits_1232() -> None:
    # header + question + RR header + rdata (+ string lengths) + OPT + margin == 1232 at most
    qlen = 70
    b = v2.rdata_budget(qlen)
    strings = -(-b // 255)
    assert 12 + qlen + 4 + 12 + b + strings + 11 + v2.ANSWER_MARGIN <= 1232
