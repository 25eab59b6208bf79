"""A fast, strict reader for DNS queries (RFC 1035 §4.1, RFC 6891 for the OPT record).

The server answers from precomputed bytes, so all it needs of a query is its header, the question
(exactly as sent, to echo its letter case back, see "0x20" in draft-vixie-dnsext-dns0x20) and the
EDNS payload size. Anything unusual raises :class:`MalformedQuery` so the caller answers FORMERR or
drops the packet; this reader never raises anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

HEADER = struct.Struct(">HHHHHH")
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
CD = 0x0010
#: RFC 1035 §2.3.4.
MAX_NAME = 255
#: RFC 6891 §6.2.5: sizes below 512 are treated as 512.
MIN_UDP = 512
#: What we advertise in our OPT record (DNS Flag Day 2020).
OUR_UDP = 1232


class Rcode(IntEnum):
    """RFC 1035 §4.1.1 and RFC 6891 (BADVERS is extended: 16 = 1 << 4 | 0)."""

    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5
    BADVERS = 16


class Type(IntEnum):
    """The record types the server knows by number."""

    A = 1
    NS = 2
    SOA = 6
    TXT = 16
    AAAA = 28
    OPT = 41
    IXFR = 251
    AXFR = 252
    ANY = 255


class Class(IntEnum):
    IN = 1
    CH = 3
    ANY = 255


class MalformedQuery(Exception):
    """The bytes are not a query we can answer; ``header_ok`` says whether FORMERR can be sent."""

    def __init__(self, why: str, header_ok: bool = False, question: bytes = b"") -> None:
        super().__init__(why)
        self.header_ok = header_ok
        self.question = question


class NotAQuery(Exception):
    """The QR bit is set: a response, never answered (answering would allow reflection loops)."""


@dataclass(frozen=True, slots=True)
class Query:
    """What the server needs of one query."""

    id: int
    flags: int
    opcode: int
    qname: bytes  #: the name's wire bytes, lower-cased (for look-up)
    question: bytes  #: the whole question section exactly as sent
    qtype: int
    qclass: int
    edns: bool
    udp_size: int  #: requester's EDNS payload size (512 without EDNS)
    edns_version: int


def parse_query(data: bytes) -> Query:
    """Parse a query; :class:`NotAQuery` for responses, :class:`MalformedQuery` for anything bad."""
    if len(data) < 12:
        raise MalformedQuery("shorter than a DNS header")
    qid, flags, qd, an, ns, ar = HEADER.unpack_from(data)
    if flags & QR:
        raise NotAQuery()
    opcode = (flags >> 11) & 0xF
    if qd != 1:
        raise MalformedQuery(f"{qd} questions", header_ok=True)
    pos = 12
    n = len(data)
    while True:
        if pos >= n:
            raise MalformedQuery("question name cut short", header_ok=True)
        ln = data[pos]
        if ln == 0:
            break
        if ln > 63:  # compression pointer or reserved label type: not in a question we accept
            raise MalformedQuery("compressed or bad label in question", header_ok=True)
        pos += 1 + ln
        if pos - 12 >= MAX_NAME:
            raise MalformedQuery("question name longer than 255", header_ok=True)
    qend = pos + 1
    if qend + 4 > n:
        raise MalformedQuery("question type/class cut short", header_ok=True)
    qtype, qclass = struct.unpack_from(">HH", data, qend)
    question = data[12 : qend + 4]
    edns = False
    udp = MIN_UDP
    version = 0
    pos = qend + 4
    if ar and not an and not ns and pos + 11 <= n and data[pos] == 0:
        rtype, rclass, ttl, rdlen = struct.unpack_from(">HHIH", data, pos + 1)
        if rtype == Type.OPT:
            if pos + 11 + rdlen > n:
                raise MalformedQuery("OPT record cut short", header_ok=True, question=question)
            edns = True
            udp = max(MIN_UDP, rclass)
            version = (ttl >> 16) & 0xFF
    return Query(
        id=qid,
        flags=flags,
        opcode=opcode,
        qname=data[12:qend].lower(),
        question=question,
        qtype=qtype,
        qclass=qclass,
        edns=edns,
        udp_size=udp,
        edns_version=version,
    )


def name_to_wire(name: str) -> bytes:
    """``a.b`` -> ``\\x01a\\x01b\\x00`` (lower case; the caller checked the labels)."""
    out = bytearray()
    for label in name.lower().split(".") if name else []:
        out.append(len(label))
        out += label.encode("ascii")
    out.append(0)
    return bytes(out)


def opt_record(udp: int = OUR_UDP, ext_rcode: int = 0) -> bytes:
    """Our OPT record: root owner, type 41, class = payload size, TTL = ext-rcode/version/flags."""
    return b"\x00" + struct.pack(">HHIH", Type.OPT, udp, (ext_rcode & 0xFF) << 24, 0)


OPT = opt_record()
