"""The query reader against queries dnspython builds, whole, cut byte by byte and with junk."""

import dns.message
import dns.name
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.dns.proto import v1
from audionet.dns.proto.wire import MalformedQuery, name_to_wire, opt_record, parse_query

label = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=20
)


@given(
    st.lists(label, min_size=1, max_size=6),
    st.sampled_from(["TXT", "A", "SOA", "NS", "ANY", "AAAA"]),
    st.one_of(st.none(), st.integers(0, 65535)),
)
def test_parse_what_dnspython_builds(labels: list[str], rdtype: str, edns: int | None) -> None:
    name = ".".join(labels)
    payload = 1232 if edns is None else edns
    q = dns.message.make_query(name, rdtype, use_edns=edns is not None, payload=payload)
    data = q.to_wire()
    p = parse_query(data)
    assert p.id == q.id
    assert p.qname == name_to_wire(name)
    assert p.question[:-4].lower() == name_to_wire(name)
    assert p.qtype == dns.rdatatype.from_text(rdtype)
    assert p.edns == (edns is not None)
    assert p.udp_size == (max(512, edns) if edns is not None else 512)
    assert parse_query(data + b"trailing junk") == p


def test_cut_byte_by_byte() -> None:
    data = dns.message.make_query("a.b.example", "TXT", use_edns=0).to_wire()
    qend = 12 + len(name_to_wire("a.b.example")) + 4
    for cut in range(qend):
        with pytest.raises(MalformedQuery):
            parse_query(data[:cut])
    # A cut inside the OPT record leaves a plain query (the OPT is not seen) or a FORMERR.
    for cut in range(qend, len(data)):
        try:
            assert not parse_query(data[:cut]).edns
        except MalformedQuery as e:
            assert e.header_ok


def test_opt_record_bytes() -> None:
    assert opt_record() == bytes.fromhex("0000290 4d0 00000000 0000".replace(" ", ""))
    assert opt_record(ext_rcode=1)[5] == 1


@given(st.lists(st.integers(0, 10**9), max_size=200))
def test_sequence_list_round_trip(seqs: list[int]) -> None:
    strings = [v1.encode_sequence_list(seqs)]
    assert v1.decode_sequence_list(strings) == seqs
