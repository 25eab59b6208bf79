"""The authoritative AoDNS server: UDP and TCP on one port, answers from a snapshot.

UDP is read and written in batches with recvmmsg/sendmmsg on Linux (:mod:`audionet.dns.mmsg`) or one
datagram at a time by asyncio's datagram transport (see :data:`UDP_IO`); TCP uses asyncio streams.

UDP answers pass response rate limiting when a :class:`~audionet.dns.proto.rrl.RateLimiter` is
given (``dns serve`` gives one by default): :meth:`DnsServer.verdict` applies it to one datagram,
the batched path to a whole batch at once; TCP is never limited.

All answers are precomputed in an immutable :class:`~audionet.dns.proto.snapshot.Snapshot`; the
streaming side replaces :attr:`DnsServer.snapshot` in one assignment when a pack is published. Per
query the server only parses the header and question and splices bytes. No per-query logging above
DEBUG; a broken packet is answered FORMERR or dropped, never a crash.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from contextlib import suppress
from typing import cast

from audionet.dns.metrics import ServerMetrics
from audionet.dns.mmsg import MmsgUdp
from audionet.dns.mmsg import unavailable as mmsg_unavailable
from audionet.dns.proto.rrl import RateLimiter, Verdict, slip_reply
from audionet.dns.proto.snapshot import Snapshot
from audionet.dns.proto.wire import TC
from audionet.errors import ConfigError

log = logging.getLogger(__name__)

#: RFC 7766 §6.2.3: close idle TCP connections; a few seconds is plenty for a resolver's retry.
TCP_IDLE = 10.0
#: Queries answered on one TCP connection before it is closed (bounds a client's hold on us).
TCP_MAX_QUERIES = 1000
#: Open TCP connections at most; more are closed at once (bounds file descriptors under a flood).
TCP_MAX_CONNECTIONS = 256
#: Distinct UDP queries remembered per snapshot (a response depends only on the query's bytes after
#: its ID and on the snapshot, so repeated queries cost one dict look-up and one concatenation).
CACHE_SIZE = 4096
#: How UDP is read and written: ``mmsg`` (batched recvmmsg/sendmmsg, Linux, :mod:`audionet.dns.mmsg`),
#: ``asyncio`` (the event loop's datagram transport, anywhere), ``auto`` (mmsg where available).
UDP_IO = ("auto", "mmsg", "asyncio")
#: Source addresses whose network key is remembered (the look-up is per datagram on the asyncio
#: path, per distinct source per batch on the batched one); forgotten all at once when full.
NETWORK_MEMO = 4096
#: Marks an address not yet in the memo (network keys are never negative).
UNKNOWN = -1


class DnsServer:
    def __init__(
        self,
        snapshot: Snapshot,
        metrics: ServerMetrics | None = None,
        rrl: RateLimiter | None = None,
    ) -> None:
        self.snapshot = snapshot
        #: Response rate limiting for UDP (None: off).
        self.rrl = rrl
        #: source address (as the I/O path holds it) -> network key, None when allow-listed
        self.networks: dict[object, int | None] = {}
        #: query bytes after the ID -> (response bytes after the ID, (qtype, rcode), response
        #: length, 1 if truncated else 0); per snapshot
        self._cache: dict[bytes, tuple[bytes, tuple[int, int], int, int]] = {}
        self.metrics = metrics or ServerMetrics()
        self._transport: asyncio.DatagramTransport | None = None
        self._mmsg: MmsgUdp | None = None
        #: The UDP I/O in use once started: ``mmsg`` or ``asyncio``.
        self.udp_io = ""
        self._tcp: asyncio.Server | None = None
        self._tcp_writers: set[asyncio.StreamWriter] = set()
        self.address: tuple[str, int] = ("", 0)

    def swap(self, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` from the next query on (one reference assignment: atomic)."""
        self.snapshot = snapshot
        self._cache = {}

    def network(self, source: object, packed: bytes) -> int | None:
        """The rate limiter's key for a source address (``packed``: its 4 or 16 bytes), through
        a memo keyed by ``source``, however the I/O path holds the address."""
        assert self.rrl is not None
        key = self.rrl.network(packed)
        if len(self.networks) >= NETWORK_MEMO:
            self.networks.clear()
        self.networks[source] = key
        return key

    def verdict(self, host: str) -> Verdict:
        """Response rate limiting for one UDP datagram from ``host`` (an address as text)."""
        rrl = self.rrl
        if rrl is None:
            return Verdict.ANSWER
        key = self.networks.get(host, UNKNOWN)
        if key == UNKNOWN:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            key = self.network(host, socket.inet_pton(family, host.partition("%")[0]))
        if key is None or rrl.admit(key, 1, time.monotonic()):
            return Verdict.ANSWER
        return rrl.limit(key)

    def limited(self, data: bytes, verdict: Verdict) -> bytes | None:
        """What goes out instead of the answer to a limited query: a truncated reply or nothing."""
        m = self.metrics
        m.bytes_in += len(data)
        out = slip_reply(data) if verdict is Verdict.SLIP else None
        if out is None:
            m.rrl_dropped += 1
        else:
            m.rrl_slipped += 1
            m.bytes_out += len(out)
        return out

    def answer(self, data: bytes, limit: int | None, cache: bool = False) -> bytes | None:
        m = self.metrics
        m.bytes_in += len(data)
        snapshot = self.snapshot
        cache_dict = self._cache
        try:
            out, q, rcode = snapshot.respond(data, limit)
        except Exception:  # never let one packet take the server down
            m.internal_errors += 1
            log.debug("error answering a %d-byte packet", len(data), exc_info=True)
            return None
        key = (q.qtype if q is not None else 0, rcode)
        m.queries[key] += 1
        if out is not None:
            m.bytes_out += len(out)
            tc = 1 if out[2] & (TC >> 8) else 0
            m.truncated += tc
            if cache and q is not None:
                if len(cache_dict) >= CACHE_SIZE:
                    cache_dict.clear()
                cache_dict[data[2:]] = (out[2:], key, len(out), tc)
        return out

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 5053,
        reuse_port: bool = False,
        udp_io: str = "auto",
    ) -> tuple[str, int]:
        """Listen on UDP and TCP ``host:port`` (port 0: a free port, the same for both).

        ``reuse_port`` sets SO_REUSEPORT, so worker processes can share the port (the kernel spreads
        clients over them by address and port). ``udp_io`` is one of :data:`UDP_IO`.
        """
        use_mmsg = _choose_udp_io(udp_io)
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(20):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            if reuse_port:
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                udp.bind((host, port))
                bound = udp.getsockname()[1]
                tcp = socket.socket(family, socket.SOCK_STREAM)
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                try:
                    tcp.bind((host, bound))
                except OSError:
                    tcp.close()
                    udp.close()
                    if port:
                        raise
                    continue
                break
            except OSError:
                udp.close()
                raise
        else:
            raise OSError("could not find a port free for both UDP and TCP")
        udp.setblocking(False)
        with suppress(OSError):
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
        if use_mmsg:
            self._mmsg = MmsgUdp(udp, self)
            self._mmsg.start()
            self.udp_io = "mmsg"
        else:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), sock=udp)
            self._transport = transport
            self.udp_io = "asyncio"
        tcp.listen(128)
        tcp.setblocking(False)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        self.address = (host, bound)
        log.info(
            "AoDNS server listening on %s port %d (UDP and TCP; UDP I/O: %s)",
            host,
            bound,
            "recvmmsg/sendmmsg batches" if use_mmsg else "asyncio datagrams",
        )
        return self.address

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._tcp_writers) >= TCP_MAX_CONNECTIONS:
            writer.transport.abort()
            return
        self._tcp_writers.add(writer)
        self.metrics.tcp_connections += 1
        try:
            for _ in range(TCP_MAX_QUERIES):
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (n,) = struct.unpack(">H", head)
                data = await asyncio.wait_for(reader.readexactly(n), TCP_IDLE)
                self.metrics.tcp_queries += 1
                out = self.answer(data, 65535)
                if out is None:
                    break
                writer.write(struct.pack(">H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        except Exception:
            self.metrics.internal_errors += 1
            log.debug("TCP connection error", exc_info=True)
        finally:
            writer.close()
            with suppress(Exception):
                await writer.wait_closed()
            self._tcp_writers.discard(writer)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._mmsg is not None:
            self._mmsg.close()
            self._mmsg = None
        if self._tcp is not None:
            self._tcp.close()
            # Abort open connections: their handlers see EOF and end on their own (cancelling
            # them instead makes asyncio log spurious errors).
            for w in list(self._tcp_writers):
                w.transport.abort()
            with suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
        self._transport = None
        self._tcp = None

    async def __aenter__(self) -> DnsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _choose_udp_io(udp_io: str) -> bool:
    """True for batched recvmmsg/sendmmsg, False for asyncio's datagram transport."""
    if udp_io not in UDP_IO:
        raise ConfigError(f"UDP I/O must be one of {', '.join(UDP_IO)}, not {udp_io!r}")
    if udp_io == "asyncio":
        return False
    why = mmsg_unavailable()
    if why is None:
        return True
    if udp_io == "mmsg":
        raise ConfigError(f"batched UDP I/O is not available: {why}")
    log.debug("batched UDP I/O not available (%s); using asyncio datagrams", why)
    return False


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        # The hot path, inlined: a repeated query is one dict look-up and one concatenation.
        server = self.server
        if server.rrl is not None:
            verdict = server.verdict(str(addr[0]))
            if verdict:
                out_limited = server.limited(data, verdict)
                if out_limited is not None and self.transport is not None:
                    self.transport.sendto(out_limited, addr)
                return
        hit = server._cache.get(data[2:])
        if hit is not None:
            m = server.metrics
            m.queries[hit[1]] += 1
            m.bytes_in += len(data)
            m.bytes_out += hit[2]
            m.truncated += hit[3]
            out: bytes | None = data[:2] + hit[0]
        else:
            out = server.answer(data, None, cache=True)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)
