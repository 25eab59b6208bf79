"""Precomputed answers: the zone as an immutable snapshot the server swaps atomically.

Every positive answer is built once with dnspython (when records change) and stored as the bytes
that
follow the question. Answering is then: the query's ID, our flags with RD copied, the counts, the
question exactly as asked (0x20 letter case kept), the stored bytes and, when the query had EDNS,
our
OPT record. Compression pointers in the stored bytes point into the question, which has the same
length and position in every answer to that name, so they stay valid.

A new snapshot is a new object; the server replaces its reference in one assignment, so a query
never
sees a half-built zone (the original rebuilt in place and could hand out empty answers).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from audionet.dns.proto.names import in_zone
from audionet.dns.proto.wire import (
    AA,
    CD,
    HEADER,
    OPT,
    QR,
    RD,
    TC,
    Class,
    MalformedQuery,
    NotAQuery,
    Query,
    Rcode,
    Type,
    name_to_wire,
    opt_record,
    parse_query,
)

#: RFC 2308 §5: the negative TTL is min(SOA TTL, SOA minimum); short so new packs appear at once.
NEGATIVE_TTL = 1
SOA_TTL = 60
NS_TTL = 3600
_HDR_BITS = QR | AA


#: One recorded TXT change: name, TTL and the strings of each RR (None: the RRset was deleted).
Change = tuple[str, int, tuple[tuple[bytes, ...], ...] | None]


@dataclass(frozen=True, slots=True)
class Answer:
    """The bytes after the question of a positive answer, and its section counts."""

    body: bytes
    an: int
    ns: int
    ar: int


def txt_rdata(strings: Iterable[bytes]) -> dns.rdata.Rdata:
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, tuple(strings))


def build_answer(name: str, rdtype: int, ttl: int, rdatas: Iterable[dns.rdata.Rdata]) -> Answer:
    """Build one positive answer with dnspython and keep what follows the question."""
    dname = dns.name.from_text(name)
    rrset = dns.rrset.from_rdata_list(dname, ttl, list(rdatas))
    msg = dns.message.Message(id=0)
    msg.flags = _HDR_BITS
    msg.question = [dns.rrset.RRset(dname, dns.rdataclass.IN, dns.rdatatype.RdataType(rdtype))]
    msg.answer = [rrset]
    wire = msg.to_wire(max_size=65535)
    qlen = len(name_to_wire(name)) + 4
    _, _, _, an, ns, ar = HEADER.unpack_from(wire)
    return Answer(wire[12 + qlen :], an, ns, ar)


class Snapshot:
    """An immutable zone: tables of precomputed answers. Built by :class:`SnapshotBuilder`."""

    __slots__ = ("answers", "names", "serial", "soa_auth", "zone", "zone_wire")

    def __init__(
        self,
        zone: str,
        answers: Mapping[tuple[bytes, int], Answer],
        names: frozenset[bytes],
        soa_auth: bytes,
        serial: int,
    ) -> None:
        self.zone = zone
        self.zone_wire = name_to_wire(zone)
        self.answers = answers
        self.names = names
        self.soa_auth = soa_auth
        self.serial = serial

    def respond(
        self, data: bytes, limit: int | None = None
    ) -> tuple[bytes | None, Query | None, int]:
        """Answer one query.

        ``limit`` is the transport's limit (None for UDP: the requester's EDNS size, 512 without
        EDNS; 65535 for TCP). Returns ``(response or None to drop, the parsed query or None,
        rcode)``.
        """
        try:
            q = parse_query(data)
        except NotAQuery:
            return None, None, -1
        except MalformedQuery as e:
            if not e.header_ok:
                return None, None, -1
            qid, flags = struct.unpack_from(">HH", data)
            return _bare(qid, flags, Rcode.FORMERR, b""), None, Rcode.FORMERR
        if q.edns_version != 0:
            # RFC 6891 §6.1.3: BADVERS, with our OPT (ext-rcode 1) and no question needed.
            hdr = HEADER.pack(q.id, _HDR_BITS | (q.flags & RD), 1, 0, 0, 1)
            return hdr + q.question + opt_record(ext_rcode=1), q, Rcode.BADVERS
        if q.opcode != 0:
            return self._empty(q, Rcode.NOTIMP, auth=False), q, Rcode.NOTIMP
        zone_w = self.zone_wire
        if q.qclass not in (Class.IN, Class.ANY) or not _below(q.qname, zone_w):
            return self._empty(q, Rcode.REFUSED, auth=False), q, Rcode.REFUSED
        if q.qtype in (Type.AXFR, Type.IXFR):
            return self._empty(q, Rcode.REFUSED, auth=False), q, Rcode.REFUSED
        qname = q.qname
        if qname not in self.names:
            wildcard = self._wildcard(qname)
            if wildcard is None:
                return self._empty(q, Rcode.NXDOMAIN, auth=True), q, Rcode.NXDOMAIN
            qname = wildcard  # RFC 4592: answer from "*.<closest encloser>", owned by the qname
        ans = self.answers.get((qname, q.qtype))
        if ans is None and q.qtype == Type.ANY:
            ans = self.answers.get((qname, Type.TXT)) or self.answers.get((qname, Type.SOA))
        if ans is None:
            return self._empty(q, Rcode.NOERROR, auth=True), q, Rcode.NOERROR
        size = 12 + len(q.question) + len(ans.body)
        if q.edns:
            size += len(OPT)
        if limit is None:
            limit = q.udp_size if q.edns else 512
        flags = _HDR_BITS | (q.flags & (RD | CD))
        if size > limit:
            hdr = HEADER.pack(q.id, flags | TC, 1, 0, 0, 1 if q.edns else 0)
            return hdr + q.question + (OPT if q.edns else b""), q, Rcode.NOERROR
        ar = ans.ar + (1 if q.edns else 0)
        hdr = HEADER.pack(q.id, flags, 1, ans.an, ans.ns, ar)
        return hdr + q.question + ans.body + (OPT if q.edns else b""), q, Rcode.NOERROR

    def _wildcard(self, qname: bytes) -> bytes | None:
        """The wildcard name that covers ``qname`` (which does not exist), or None.

        RFC 4592 §3.3.1: the closest encloser is the longest existing ancestor of the name; the
        wildcard applies when ``*.<closest encloser>`` exists. Answers are built with the owner
        name compressed to the question, so a wildcard's answer serves any name it covers.
        """
        names = self.names
        pos = 0
        while pos < len(qname) - 1:
            pos += 1 + qname[pos]
            if qname[pos:] in names:
                star = b"\x01*" + qname[pos:]
                return star if star in names else None
        return None

    def _empty(self, q: Query, rcode: Rcode, auth: bool) -> bytes:
        flags = (QR | (AA if auth else 0)) | (q.flags & (RD | CD)) | rcode
        auth_rr = self.soa_auth if auth else b""
        hdr = HEADER.pack(q.id, flags, 1, 0, 1 if auth else 0, 1 if q.edns else 0)
        return hdr + q.question + auth_rr + (OPT if q.edns else b"")


def _below(qname: bytes, zone_w: bytes) -> bool:
    """True when the wire name ``qname`` is ``zone_w`` or below it (compared at label starts)."""
    pos = 0
    start = len(qname) - len(zone_w)
    while pos < start:
        pos += 1 + qname[pos]
    return pos == start and qname[pos:] == zone_w


def _bare(qid: int, qflags: int, rcode: Rcode, question: bytes) -> bytes:
    flags = QR | (qflags & (0x7800 | RD)) | rcode
    return HEADER.pack(qid, flags, 1 if question else 0, 0, 0, 0) + question


@dataclass(frozen=True, slots=True)
class SoaParams:
    """The apex SOA (RFC 1035 §3.3.13); ``minimum`` is the negative-caching TTL (RFC 2308)."""

    mname: str = ""
    rname: str = ""
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    minimum: int = NEGATIVE_TTL


class SnapshotBuilder:
    """Holds the zone's RRsets and their built answers; :meth:`build` freezes a :class:`Snapshot`.

    Answers are cached per RRset, so publishing one new pack builds two answers (the pack and the
    index), not the whole zone.
    """

    def __init__(
        self, zone: str, ns_address: str = "127.0.0.1", soa: SoaParams | None = None
    ) -> None:
        self.zone = zone
        self.soa = soa or SoaParams()
        self.serial = 1
        self._answers: dict[tuple[bytes, int], Answer] = {}
        self._ns_address = ns_address
        self._put_apex()
        #: When a list, every TXT change is also recorded here (for RFC 2136 publishing):
        #: ``(name, ttl, strings per RR)``, or ``(name, 0, None)`` for a deletion.
        self.changes: list[Change] | None = None

    def _put_apex(self) -> None:
        z = self.zone
        s = self.soa
        mname = s.mname or f"ns.{z}"
        rname = s.rname or f"hostmaster.{z}"
        soa_text = f"{mname}. {rname}. {self.serial} {s.refresh} {s.retry} {s.expire} {s.minimum}"
        soa = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, soa_text)
        self._soa = soa
        self._set(z, Type.SOA, SOA_TTL, [soa])
        ns = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.NS, f"ns.{z}.")
        self._set(z, Type.NS, NS_TTL, [ns])
        if ":" not in self._ns_address:
            a = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.A, self._ns_address)
            self._set(f"ns.{z}", Type.A, NS_TTL, [a])
        else:
            aaaa = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, self._ns_address)
            self._set(f"ns.{z}", Type.AAAA, NS_TTL, [aaaa])

    def _set(self, name: str, rdtype: int, ttl: int, rdatas: list[dns.rdata.Rdata]) -> None:
        self._answers[(name_to_wire(name), rdtype)] = build_answer(name, rdtype, ttl, rdatas)

    def set_txt(self, name: str, ttl: int, strings_per_rr: Iterable[Iterable[bytes]]) -> None:
        """Set ``name``'s TXT RRset: one resource record per tuple of strings."""
        if not in_zone(name, self.zone):
            raise ValueError(f"{name} is outside {self.zone}")
        rrs = tuple(tuple(s) for s in strings_per_rr)
        self._set(name, Type.TXT, ttl, [txt_rdata(s) for s in rrs])
        if self.changes is not None:
            self.changes.append((name, ttl, rrs))

    def remove(self, name: str, rdtype: int = Type.TXT) -> None:
        self._answers.pop((name_to_wire(name), rdtype), None)
        if self.changes is not None:
            self.changes.append((name, 0, None))

    def take_changes(self) -> list[Change]:
        """The changes recorded since the last call (and start recording if not yet)."""
        out = self.changes or []
        self.changes = []
        return out

    def build(self) -> Snapshot:
        """Freeze the current records (the answers are shared, the tables are new)."""
        self.serial += 1
        names: set[bytes] = set()
        zlen = len(name_to_wire(self.zone))
        for wire, _ in self._answers:
            # The name and every name between it and the apex exist (empty non-terminals: NODATA).
            pos = 0
            while len(wire) - pos >= zlen:
                names.add(wire[pos:])
                pos += 1 + wire[pos]
        soa_owner = name_to_wire(self.zone)
        soa_rd = self._soa.to_wire() or b""
        soa_auth = soa_owner + struct.pack(">HHIH", Type.SOA, 1, NEGATIVE_TTL, len(soa_rd)) + soa_rd
        return Snapshot(
            self.zone,
            MappingProxyType(dict(self._answers)),
            frozenset(names),
            soa_auth,
            self.serial,
        )
