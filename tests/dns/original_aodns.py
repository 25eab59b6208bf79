"""A v1 station that answers DNS exactly as the original AoDNS server does, for tests.

It follows the original's source, ``TheStaticTurtle/AoDNS`` at commit 4821b9d (the files below),
line by line where it matters to a listener behind a resolver:

* ``aodns/server/dns/zone.py`` ``Zone.__init__``: the apex SOA record has TTL 60 and times
  ``(201307231, 60*60*1, 60*60*3, 60*60*24, 60*60*1)``: serial, refresh 3600, retry 10800, expire
  86400, minimum 3600; ``SOA(times=...)`` leaves mname and rname unset (dnslib: the root name).
  The zone's records are a dict from name (``f"{root_domain}."`` and below, as typed) to record.
* ``aodns/server/records_generator.py`` ``RecordsGenerator.update``: ``zone.clear_records()``, then
  ``sequence`` (one string: basE91 of zlib level 9 of the comma-joined numbers, TTL 10) and one
  ``seq_N`` per kept pack, one TXT string per frame, TTL ``max(5, int(seq_duration * 75 * 0.8))``
  where ``seq_duration`` comes out at half the pack's real length (SPEC §2: the original divides by
  2 once too often; mirrored here).
* ``aodns/common/sequence_controller.py`` ``SequenceGenerator``: packs numbered from 0, the newest
  75 kept. The packing rule is ``DataPacker``'s, which ``audionet.dns.proto.v1.V1Packer`` follows.
* ``aodns/server/dns/request_handlers.py`` ``DNSRequestHandler.handle``: the reply header is
  ``DNSHeader(id=request.header.id, qr=1, aa=1, ra=1)`` (RD is not copied) with the question as
  asked; when ``str(qname).endswith(zone.root)`` (a case-sensitive string test), every record
  whose name ``== str(qname)`` (case-sensitive too) adds its data of the asked type, and then the
  SOA is added to the authority section with TTL 60, on every answer in the zone, found or not.
  The rcode is never set: a name that does not exist is NOERROR with no answer (NODATA), which a
  resolver caches for min(SOA TTL 60, minimum 3600) = 60 s (RFC 2308 §5). Outside the zone the
  reply is empty, without SOA.
* ``aodns/server/dns/servers.py``: UDP queries are ``request[0].strip()`` (a query whose ID starts
  with a whitespace byte no longer parses and gets no reply), TCP ones ``recv(8192).strip()`` with
  a length check; one query per TCP connection; replies of any size over UDP, no EDNS, no TC.
* ``aodns/server/__main__.py``: the loop reads a frame, encodes it (Opus 16 kHz mono), feeds the
  packer, and on each finished pack adds it to the sequencer and rebuilds the zone.

Its rebuild happens in place while server threads answer, so a query can land between
``clear_records()`` and the re-adding of a listed pack and get NODATA for it. ``race`` makes that
happen on purpose: the first query for each pack number in it is answered as if mid-rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from audionet.audio.codecs import get_codec
from audionet.audio.sources import ToneSource
from audionet.dns.proto import v1
from audionet.dns.proto.snapshot import txt_rdata

SOA_TTL = 60
SOA_TIMES = (201307231, 60 * 60 * 1, 60 * 60 * 3, 60 * 60 * 24, 60 * 60 * 1)
SEQUENCE_TTL = 10
MAX_SEQUENCES = 75
FRAME_SECONDS = 0.06
#: bytes.strip() removes these (servers.py strips every raw query).
_WHITESPACE = b" \t\n\r\x0b\x0c"


@dataclass
class OriginalZone:
    """``Zone`` and ``RecordsGenerator.update``: names as typed, with the final dot."""

    root: str  #: ``f"{root_domain}."``
    records: dict[str, tuple[int, list[bytes]]] = field(default_factory=dict)
    race: set[int] = field(default_factory=set)
    #: what listeners (or their resolvers) asked, and for which packs the answer came too early
    asked: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    raced: list[int] = field(default_factory=list)
    unanswered: int = 0  #: queries that no longer parsed once stripped: no reply
    newest: int = -1

    def update(self, packs: list[v1.V1Pack]) -> None:
        records: dict[str, tuple[int, list[bytes]]] = {}
        seqs = [p.seq for p in packs]
        records[f"sequence.{self.root}"] = (SEQUENCE_TTL, [v1.encode_sequence_list(seqs)])
        for p in packs:
            seq_duration = len(p.frames) * FRAME_SECONDS / 2  # the original's halved duration
            ttl = max(5, int(seq_duration * MAX_SEQUENCES * 0.8))
            records[f"seq_{p.seq}.{self.root}"] = (ttl, list(p.strings()))
        self.records = records  # (one assignment here; see ``race`` for the in-place rebuild)
        self.newest = max(seqs)

    def soa_rrset(self) -> dns.rrset.RRset:
        soa = dns.rdata.from_text(
            dns.rdataclass.IN, dns.rdatatype.SOA, ". . " + " ".join(map(str, SOA_TIMES))
        )
        return dns.rrset.from_rdata_list(dns.name.from_text(self.root), SOA_TTL, [soa])

    def handle(self, data: bytes) -> bytes | None:
        """``DNSRequestHandler.handle`` on the stripped query; None where the original sends
        nothing (the query does not parse)."""
        try:
            request = dns.message.from_wire(data.strip(_WHITESPACE))
        except (dns.exception.DNSException, ValueError, struct.error):
            self.unanswered += 1
            return None
        if not request.question:
            self.unanswered += 1
            return None
        q = request.question[0]
        reply = dns.message.Message(id=request.id)
        reply.flags = dns.flags.QR | dns.flags.AA | dns.flags.RA
        reply.question = [q]
        question_name = q.name.to_text()
        if question_name.endswith(self.root):
            self.asked.append(question_name)
            label = question_name.split(".", 1)[0]
            if label.startswith("seq_") and label[4:].isdigit():
                seq = int(label[4:])
                if question_name not in self.records and seq > self.newest:
                    self.unlisted.append(question_name)
            found = self.records.get(question_name)
            if found is not None and label.startswith("seq_") and int(label[4:]) in self.race:
                self.race.discard(int(label[4:]))
                self.raced.append(int(label[4:]))
                found = None  # the query landed between clear_records() and this pack's re-adding
            if found is not None and q.rdtype == dns.rdatatype.TXT:
                ttl, strings = found
                reply.answer.append(
                    dns.rrset.from_rdata_list(q.name, ttl, [txt_rdata([s]) for s in strings])
                )
            if question_name == self.root and q.rdtype == dns.rdatatype.SOA:
                reply.answer.append(self.soa_rrset())
            reply.authority.append(self.soa_rrset())
        return reply.to_wire(max_size=65535)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: OriginalZone) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        out = self.zone.handle(data)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class OriginalStation:
    """The original's main loop (tone in, Opus, packer, sequencer, zone) and its two servers."""

    def __init__(self, zone: str, race: set[int] | None = None) -> None:
        self.zone = OriginalZone(f"{zone}.", race=set(race or ()))
        self.codec = get_codec("opus", rate=16000, frame_ms=60, application="voip")
        self.source = ToneSource(440, self.codec.format)
        self.packer = v1.V1Packer()
        self.kept: list[v1.V1Pack] = []
        self.port = 0

    def _frame(self) -> None:
        pack = self.packer.feed(self.codec.encode(self.source.read(self.codec.frame_samples)))
        if pack is not None:
            self.kept = [*self.kept, pack][-MAX_SEQUENCES:]
            self.zone.update(self.kept)

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            data = (await asyncio.wait_for(reader.read(8192), 5)).strip(_WHITESPACE)
            (size,) = struct.unpack(">H", data[:2])
            if size == len(data) - 2:  # else "Wrong size" / "Too big TCP packet": no reply
                out = self.zone.handle(data[2:])
                if out is not None:
                    writer.write(struct.pack(">H", len(out)) + out)
                    await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def running(self, prefill: float) -> AsyncIterator[OriginalStation]:
        """Serve on a free loopback port with ``prefill`` seconds of packs already made."""
        for _ in range(round(prefill / FRAME_SECONDS)):
            self._frame()
        loop = asyncio.get_running_loop()
        for _ in range(20):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self.zone), local_addr=("127.0.0.1", 0)
            )
            self.port = transport.get_extra_info("sockname")[1]
            try:
                tcp = await asyncio.start_server(self._tcp, "127.0.0.1", self.port)
            except OSError:
                transport.close()
                continue
            break
        else:
            raise OSError("no port free for both UDP and TCP")

        async def produce() -> None:
            start = loop.time()
            n = 0
            while True:
                n += 1
                await asyncio.sleep(max(0.0, start + n * FRAME_SECONDS - loop.time()))
                self._frame()

        task = asyncio.create_task(produce())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            transport.close()
            tcp.close()
