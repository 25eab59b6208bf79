"""The publisher: what the zone holds after frames go in (kept packs, TTLs, streams, rotation)."""

import dns.message
import dns.rcode
import pytest

from audionet.dns.errors import StreamConfigError
from audionet.dns.proto import v1, v2
from audionet.dns.proto.publisher import ZonePublisher

ZONE = "pub.example.org"


def ask(pub: ZonePublisher, name: str) -> dns.message.Message:
    q = dns.message.make_query(name, "TXT")
    out, _, _ = pub.snapshot().respond(q.to_wire(), 65535)
    assert out is not None
    return dns.message.from_wire(out)


def test_v1_keeps_newest_packs_with_ttl_rule() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v1(frame_seconds=0.06, packs=5)
    for _ in range(200):
        st.feed(b"\x01" * 150)
    kept = [p.seq for p in st.kept]
    assert len(kept) == 5 and kept == list(range(kept[0], kept[0] + 5))
    seqs = v1.decode_sequence_list([ask(pub, f"sequence.{ZONE}").answer[0][0].strings[0]])
    assert seqs == kept
    assert ask(pub, f"sequence.{ZONE}").answer[0].ttl == 10
    r = ask(pub, f"seq_{kept[-1]}.{ZONE}")
    frames = len(r.answer[0])
    assert r.answer[0].ttl == max(5, int(frames * 0.06 * 5 * 0.8))
    assert ask(pub, f"seq_{kept[0] - 1}.{ZONE}").rcode() == dns.rcode.NXDOMAIN


def test_v2_streams_config_index() -> None:
    pub = ZonePublisher(ZONE)
    a = pub.add_v2("a", v2.StreamConfig(), epoch=1)
    b = pub.add_v2("b", v2.StreamConfig(codec="codec2", rate=8000, frame_ms=40), epoch=2)
    for _ in range(50):
        a.feed(b"a" * 100)
        b.feed(b"b" * 6)
    streams = sorted(rd.strings[0] for rd in ask(pub, f"streams.{ZONE}").answer[0])
    assert streams == [b"a", b"b"]
    cfg = v2.StreamConfig.from_text(ask(pub, f"config.b.{ZONE}").answer[0][0].strings[0])
    assert cfg.codec == "codec2" and cfg.epoch == 2
    idx = v2.Index.from_text(ask(pub, f"index.a.{ZONE}").answer[0][0].strings[0])
    assert idx.epoch == 1 and idx.count == len(a.kept) and idx.last == a.kept[-1].seq
    # codec2 frames are tiny: packs close after 1 s (25 frames of 40 ms), not when full.
    assert all(len(p.frames) == 25 for p in b.kept)
    with pytest.raises(StreamConfigError):
        pub.add_v2("a", v2.StreamConfig())
    with pytest.raises(StreamConfigError):
        pub.add_v1()


def test_v2_drops_oversized_frame_and_counts() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), epoch=1)
    assert not st.feed(bytes(5000))
    assert pub.frames_dropped == 1


@pytest.mark.parametrize("bad", ["", "a..b", "-x.com", "x" * 64 + ".com"])
def test_bad_zone(bad: str) -> None:
    with pytest.raises(StreamConfigError):
        ZonePublisher(bad)


@pytest.mark.parametrize("bad", ["streams", "a.b", "", "x" * 41, "-a"])
def test_bad_stream(bad: str) -> None:
    with pytest.raises(StreamConfigError):
        ZonePublisher(ZONE).add_v2(bad, v2.StreamConfig())


def test_encrypted_config_carries_salt_and_check() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), passphrase="pw", epoch=7)
    cfg = v2.StreamConfig.from_text(ask(pub, f"config.main.{ZONE}").answer[0][0].strings[0])
    assert cfg.encrypted and len(cfg.salt) == 16 and len(cfg.kcv) == 8
    assert st.cipher is not None and cfg.kcv == st.cipher.check_value
    with pytest.raises(StreamConfigError):
        ZonePublisher(ZONE).add_v2("main", v2.StreamConfig(), passphrase="")
