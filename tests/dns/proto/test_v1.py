"""v1 wire format: golden vectors and a transcription of the original's packing rules."""

import zlib

import base91
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.dns.errors import BadRecordError
from audionet.dns.proto import v1


def reference_packs(frames: list[bytes]) -> list[list[bytes]]:
    """The original ``DataPacker``/``FinitePackedData`` rules, written out independently."""
    packs: list[list[bytes]] = []
    cur: list[bytes] = []
    for frame in frames:
        data = base91.encode(frame).encode()
        total = 3 + 3 + len(data)
        assert total <= 250
        if sum(len(d) for d in cur) + total > 2000:
            packs.append(cur)
            cur = []
        cur.append(data)
    return [[f"{i:03d}".encode() + b"'''" + d for i, d in enumerate(p)] for p in packs]


def test_sequence_list_golden() -> None:
    # base91(zlib.compress(b"0,1,2,3,4", 9)) computed with the base91 package the original used.
    assert v1.encode_sequence_list(range(5)) == b"q:yEDjaK}[TfoNAA[J:hV"
    assert v1.decode_sequence_list([b"q:yEDjaK}[TfoNAA[J:hV"]) == [0, 1, 2, 3, 4]


def test_sequence_list_matches_original_recipe() -> None:
    seqs = list(range(100, 175))
    want = base91.encode(zlib.compress(",".join(map(str, seqs)).encode(), level=9)).encode()
    assert v1.encode_sequence_list(seqs) == want
    assert len(want) <= 255  # 75 packs fit one TXT string at these numbers


@given(st.lists(st.binary(min_size=1, max_size=190), min_size=1, max_size=80))
def test_packer_matches_original(frames: list[bytes]) -> None:
    packer = v1.V1Packer()
    got = [p for p in (packer.feed(f) for f in frames) if p is not None]
    want = reference_packs(frames)
    assert [list(p.strings()) for p in got] == want
    assert [p.seq for p in got] == list(range(len(got)))
    for p in got:
        assert all(len(s) <= 250 for s in p.strings())
        assert sum(len(s) - 6 for s in p.strings()) <= 2000


def test_frame_index_string_golden() -> None:
    pack = v1.V1Pack(7, (bytes(range(16)), b"\xff"))
    assert pack.strings() == (b"000''':C#(:C?hVB$MSiVEwndB", b"001'''/C")
    assert pack.strings()[1] == b"001'''" + base91.encode(b"\xff").encode()


def test_parse_shuffled_and_check() -> None:
    frames = tuple(bytes([i]) * (20 + i) for i in range(12))
    pack = v1.V1Pack(3, frames)
    strings = list(pack.strings())
    shuffled = strings[5:] + strings[:5]
    assert v1.parse_pack_strings(3, shuffled) == pack
    assert v1.missing_indexes(strings[:3] + strings[4:]) == [3]


@pytest.mark.parametrize("bad", [b"no separator", b"0x1'''abc", b"001'''ab'c"])
def test_parse_rejects(bad: bytes) -> None:
    with pytest.raises(BadRecordError):
        v1.parse_pack_strings(0, [bad])


def test_parse_rejects_duplicate_index() -> None:
    with pytest.raises(BadRecordError):
        v1.parse_pack_strings(0, [b"000'''AA", b"000'''AB"])


@pytest.mark.parametrize("bad", [[b"!!!"], [], [b"AAAA"]])
def test_sequence_list_rejects(bad: list[bytes]) -> None:
    with pytest.raises(BadRecordError):
        v1.decode_sequence_list(bad)


def test_ttl_rule() -> None:
    # 30 frames of 60 ms = 1.8 s per pack; 75 packs; 80 % -> 108 s (the original said half that).
    assert v1.pack_ttl(30, 0.06) == int(30 * 0.06 * 75 * 0.8)
    assert v1.pack_ttl(1, 0.06, packs_kept=2) == 5


def test_frame_too_large() -> None:
    with pytest.raises(ValueError):
        v1.V1Packer().feed(bytes(250))
    assert not v1.frame_fits(bytes(250))
    assert v1.frame_fits(bytes(190))
