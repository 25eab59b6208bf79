"""Precomputed answers checked with dnspython: sizes, TC, case, negative answers, garbage."""

import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audionet.dns.proto import v2, wire
from audionet.dns.proto.publisher import ZonePublisher
from audionet.dns.proto.snapshot import NEGATIVE_TTL, SnapshotBuilder
from audionet.dns.proto.wire import MalformedQuery, NotAQuery, parse_query

ZONE = "music.example.com"


def make_snapshot(big: int = 9):
    b = SnapshotBuilder(ZONE)
    b.set_txt(f"small.{ZONE}", 30, [(b"hello",)])
    # ``big`` RRs of 200 bytes: about 1.9 kB, more than 512 and 1232.
    b.set_txt(f"big.{ZONE}", 30, [(bytes([65 + i]) * 200,) for i in range(big)])
    b.set_txt(f"config.main.{ZONE}", 30, [(b"x",)])
    return b.build()


def respond(snap, q: dns.message.Message, limit=None):
    data, _parsed, rcode = snap.respond(q.to_wire(), limit)
    assert data is not None
    return dns.message.from_wire(data), rcode


def test_positive_answer_is_what_dnspython_builds() -> None:
    snap = make_snapshot()
    q = dns.message.make_query(f"small.{ZONE}", "TXT", use_edns=0, payload=1232)
    r, rcode = respond(snap, q)
    assert rcode == 0 and r.id == q.id
    assert r.flags & dns.flags.AA and r.flags & dns.flags.QR
    assert r.flags & dns.flags.RD  # copied from the query
    assert [rd.strings for rd in r.answer[0]] == [(b"hello",)]
    assert r.answer[0].ttl == 30
    assert r.edns == 0 and r.payload == wire.OUR_UDP


def test_question_echoed_with_its_case() -> None:
    snap = make_snapshot()
    name = "SmAlL.MuSiC.eXaMpLe.CoM."
    q = dns.message.make_query(name, "TXT")
    data, _, _ = snap.respond(q.to_wire())
    assert data is not None
    assert b"\x05SmAlL\x05MuSiC\x07eXaMpLe\x03CoM\x00" in data
    r = dns.message.from_wire(data)
    assert r.question[0].name.to_text() == name  # dnspython keeps the case
    assert q.is_response(r)
    assert [rd.strings for rd in r.answer[0]] == [(b"hello",)]


@pytest.mark.parametrize(
    ("edns", "payload", "tc"), [(None, 0, True), (0, 1232, True), (0, 4096, False), (0, 100, True)]
)
def test_udp_size_limits(edns, payload, tc) -> None:
    snap = make_snapshot()
    q = dns.message.make_query(f"big.{ZONE}", "TXT", use_edns=edns, payload=payload or 1232)
    data, _, _ = snap.respond(q.to_wire())
    assert data is not None
    limit = max(512, payload) if edns is not None else 512
    assert len(data) <= limit or not tc
    r = dns.message.from_wire(data)
    assert bool(r.flags & dns.flags.TC) == tc
    if tc:
        assert not r.answer and len(data) <= 512
        # The same question over TCP gets the whole answer.
        full, _, _ = snap.respond(q.to_wire(), 65535)
        assert full is not None
        rf = dns.message.from_wire(full)
        assert not rf.flags & dns.flags.TC and len(rf.answer[0]) == 9
    else:
        assert len(r.answer[0]) == 9


def test_small_answer_without_edns_fits_512() -> None:
    snap = make_snapshot()
    q = dns.message.make_query(f"small.{ZONE}", "TXT")
    data, _, _ = snap.respond(q.to_wire())
    assert data is not None and len(data) <= 512
    r = dns.message.from_wire(data)
    assert r.edns == -1 and not r.flags & dns.flags.TC


def test_nxdomain_with_soa() -> None:
    snap = make_snapshot()
    r, rcode = respond(snap, dns.message.make_query(f"nope.{ZONE}", "TXT", use_edns=0))
    assert rcode == dns.rcode.NXDOMAIN == r.rcode()
    assert not r.answer
    soa = r.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa.name == dns.name.from_text(ZONE)
    assert soa.ttl == NEGATIVE_TTL and soa[0].minimum == NEGATIVE_TTL


def test_nodata_for_other_types_and_empty_non_terminal() -> None:
    snap = make_snapshot()
    for name, rdtype in [
        (f"small.{ZONE}", "A"),
        (f"main.{ZONE}", "TXT"),
        (f"small.{ZONE}", "AAAA"),
    ]:
        r, _rcode = respond(snap, dns.message.make_query(name, rdtype))
        assert r.rcode() == dns.rcode.NOERROR and not r.answer
        assert r.authority[0].rdtype == dns.rdatatype.SOA


def test_apex_soa_ns() -> None:
    snap = make_snapshot()
    r, _ = respond(snap, dns.message.make_query(ZONE, "SOA"))
    assert r.answer[0].rdtype == dns.rdatatype.SOA
    r, _ = respond(snap, dns.message.make_query(ZONE, "NS"))
    assert r.answer[0][0].target == dns.name.from_text(f"ns.{ZONE}")
    r, _ = respond(snap, dns.message.make_query(f"ns.{ZONE}", "A"))
    assert r.answer[0][0].address == "127.0.0.1"


@pytest.mark.parametrize("name", ["example.com", "other.org", "xmusic.example.com", "com"])
def test_refused_outside_zone(name: str) -> None:
    snap = make_snapshot()
    r, rcode = respond(snap, dns.message.make_query(name, "TXT"))
    assert rcode == r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.AA


def test_refused_for_chaos_and_axfr() -> None:
    snap = make_snapshot()
    r, _ = respond(snap, dns.message.make_query(f"small.{ZONE}", "TXT", rdclass="CH"))
    assert r.rcode() == dns.rcode.REFUSED
    r, _ = respond(snap, dns.message.make_query(ZONE, "AXFR"))
    assert r.rcode() == dns.rcode.REFUSED


def test_any_gets_txt() -> None:
    snap = make_snapshot()
    r, _ = respond(snap, dns.message.make_query(f"small.{ZONE}", "ANY"))
    assert r.answer[0].rdtype == dns.rdatatype.TXT


def test_notimp_for_other_opcodes() -> None:
    snap = make_snapshot()
    q = dns.message.make_query(f"small.{ZONE}", "TXT")
    q.set_opcode(dns.opcode.STATUS)
    r, _rcode = respond(snap, q)
    assert r.rcode() == dns.rcode.NOTIMP


def test_badvers() -> None:
    snap = make_snapshot()
    q = dns.message.make_query(f"small.{ZONE}", "TXT", use_edns=1)
    r, _rcode = respond(snap, q)
    assert r.rcode() == dns.rcode.BADVERS


def test_responses_dropped_and_short_packets_dropped() -> None:
    snap = make_snapshot()
    q = dns.message.make_query(f"small.{ZONE}", "TXT")
    r = dns.message.make_response(q)
    assert snap.respond(r.to_wire())[0] is None
    assert snap.respond(b"")[0] is None
    assert snap.respond(b"\x00" * 11)[0] is None


def test_truncated_query_byte_by_byte_formerr_or_drop() -> None:
    snap = make_snapshot()
    data = dns.message.make_query(f"small.{ZONE}", "TXT", use_edns=0).to_wire()
    for cut in range(len(data)):
        out, _, rcode = snap.respond(data[:cut])
        if out is None:
            assert cut < 12
        else:
            assert struct.unpack_from(">H", out)[0] == struct.unpack_from(">H", data)[0]
            # Cut inside the OPT record: the question is whole, so it is still answered or FORMERR.
            assert rcode in (dns.rcode.FORMERR, 0)


def test_trailing_junk_is_ignored() -> None:
    snap = make_snapshot()
    data = dns.message.make_query(f"small.{ZONE}", "TXT").to_wire() + b"junkjunk"
    out, _, rcode = snap.respond(data)
    assert out is not None and rcode == 0


def test_compressed_question_is_formerr() -> None:
    snap = make_snapshot()
    data = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\x00\x10\x00\x01"
    out, _, rcode = snap.respond(data)
    assert out is not None and rcode == dns.rcode.FORMERR
    assert dns.message.from_wire(out).rcode() == dns.rcode.FORMERR


@settings(max_examples=500)
@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    snap = make_snapshot()
    out, _, _ = snap.respond(data)
    if out is not None:
        assert len(out) >= 12
        for limit in (None, 65535):
            snap.respond(data, limit)


@given(st.binary(min_size=12, max_size=300))
def test_parse_query_raises_only_its_errors(data: bytes) -> None:
    try:
        q = parse_query(data)
    except (MalformedQuery, NotAQuery):
        return
    assert q.question == data[12 : 12 + len(q.question)]


def test_snapshots_are_immutable_and_independent() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v1()
    before = pub.snapshot()
    for _ in range(40):
        st.feed(b"x" * 150)
    after = pub.snapshot()
    assert after is not before
    q = dns.message.make_query(f"seq_0.{ZONE}", "TXT")
    assert dns.message.from_wire(before.respond(q.to_wire())[0]).rcode() == dns.rcode.NXDOMAIN
    r = dns.message.from_wire(after.respond(q.to_wire(), 65535)[0])
    assert r.rcode() == 0 and len(r.answer[0]) > 5


def wildcard_snapshot():
    b = SnapshotBuilder(ZONE)
    b.set_txt(f"index.main.{ZONE}", 1, [(b"epoch=00000001 first=0 count=3",)])
    b.set_txt(f"*.index.main.{ZONE}", 1, [(b"epoch=00000001 first=0 count=3",)])
    b.set_txt(f"p1-00000001.main.{ZONE}", 30, [(b"pack",)])
    return b.build()


@pytest.mark.parametrize("label", ["a1b2c3", "X-Y", "deep.er"])
def test_wildcard_answers_any_name_it_covers_owned_by_the_question(label: str) -> None:
    snap = wildcard_snapshot()
    name = f"{label}.InDeX.main.{ZONE}."
    q = dns.message.make_query(name, "TXT", use_edns=0, payload=1232)
    r, rcode = respond(snap, q)
    assert rcode == dns.rcode.NOERROR and q.is_response(r)
    assert r.answer[0].name.to_text() == name  # synthesised with the owner as asked (RFC 4592)
    assert [rd.strings for rd in r.answer[0]] == [(b"epoch=00000001 first=0 count=3",)]
    assert r.flags & dns.flags.AA


def test_wildcard_other_types_nodata_and_no_wildcard_nxdomain() -> None:
    snap = wildcard_snapshot()
    r, _ = respond(snap, dns.message.make_query(f"abc.index.main.{ZONE}", "A"))
    assert r.rcode() == dns.rcode.NOERROR and not r.answer  # the wildcard owns only TXT
    # The index itself is answered from its own record, and names beside the wildcard's
    # parent (no "*" there) stay NXDOMAIN.
    r, _ = respond(snap, dns.message.make_query(f"index.main.{ZONE}", "TXT"))
    assert r.answer[0].name.to_text() == f"index.main.{ZONE}."
    for name in (f"x.p1-00000001.main.{ZONE}", f"x.main.{ZONE}", f"x.{ZONE}"):
        r, _ = respond(snap, dns.message.make_query(name, "TXT"))
        assert r.rcode() == dns.rcode.NXDOMAIN, name


def test_publisher_serves_the_index_under_fresh_names() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), epoch=7)
    for i in range(50):
        st.feed(bytes([i]) * 60)
    snap = pub.snapshot()
    plain, _ = respond(snap, dns.message.make_query(f"index.main.{ZONE}", "TXT"))
    fresh, _ = respond(snap, dns.message.make_query(f"n0nce1.index.main.{ZONE}", "TXT"))
    assert [rd.strings for rd in fresh.answer[0]] == [rd.strings for rd in plain.answer[0]]
    assert b"count=" in fresh.answer[0][0].strings[0]
