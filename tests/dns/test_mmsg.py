"""Batched UDP (recvmmsg/sendmmsg) on real loopback sockets: the same bytes as the core, every time.

Each test queues many datagrams from several client sockets before the server's loop runs, so
one recvmmsg takes a whole batch (good queries, cached repeats, truncated answers, EDNS sizes,
packets that are dropped or answered FORMERR) and one sendmmsg answers it.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import socket
import struct
import sys

import dns.message
import dns.opcode
import pytest

from audionet.dns import mmsg
from audionet.dns import server as server_mod
from audionet.dns.proto.publisher import ZonePublisher
from audionet.dns.proto.snapshot import Snapshot
from audionet.dns.server import DnsServer
from audionet.errors import ConfigError

ZONE = "batch.example.com"

pytestmark = pytest.mark.skipif(
    mmsg.unavailable() is not None, reason=f"no batched UDP here: {mmsg.unavailable()}"
)


def zone() -> Snapshot:
    pub = ZonePublisher(ZONE)
    s1 = pub.add_v1()
    for i in range(20 * 12):
        s1.feed(bytes([i % 256]) * 150)
    return pub.snapshot()


def queries() -> list[bytes]:
    """Wire queries of every kind the server meets, each twice (the second from the cache)."""
    out: list[bytes] = []

    def q(name: str, rdtype: str = "TXT", **kw: object) -> None:
        out.append(dns.message.make_query(name, rdtype, **kw).to_wire())  # type: ignore[arg-type]

    q(f"sequence.{ZONE}")
    q("SeQuEnCe.BATCH.example.COM")
    for i in (0, 3, 7):
        q(f"seq_{i}.{ZONE}")  # 512 bytes at most: truncated
        for size in (512, 1232, 4096, 65535):
            q(f"seq_{i}.{ZONE}", use_edns=0, payload=size)
    q(f"seq_99999.{ZONE}")  # NXDOMAIN
    q(f"sequence.{ZONE}", "A")  # NODATA
    q("example.org", "TXT")  # REFUSED
    q(f"sequence.{ZONE}", "TXT", use_edns=1)  # BADVERS
    notify = dns.message.make_query(f"sequence.{ZONE}", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    out.append(notify.to_wire())  # NOTIMP
    out.append(b"\x12\x34\x00\x00\x00\x01" + b"\x00" * 6 + b"\xc0" * 20)  # FORMERR
    out.append(b"")  # dropped
    out.append(b"\x00")  # dropped
    out.append(b"\xff" * 12)  # a response: dropped
    return out + out


def expected(snapshot: Snapshot, wire: bytes) -> bytes | None:
    return snapshot.respond(wire)[0]


async def exchange(
    port: int, host: str, family: socket.AddressFamily, clients: int, packets: list[bytes]
) -> tuple[dict[tuple[int, bytes], bytes], dict[tuple[int, bytes], bytes]]:
    """Send every packet from every client (unique IDs per client) at once; collect the answers.

    Returns what was sent and what came back, both keyed by (client, ID). Collecting ends when
    nothing has come for half a second.
    """
    loop = asyncio.get_running_loop()
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(clients)]
    sent: dict[tuple[int, bytes], bytes] = {}
    got: dict[tuple[int, bytes], bytes] = {}
    try:
        for s in socks:
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        # Interleave the clients, so one batch holds several source addresses and drops.
        for n, wire in enumerate(packets):
            for c, s in enumerate(socks):
                if len(wire) >= 2:
                    wire = struct.pack(">H", (n * 7 + c) & 0xFFFF) + wire[2:]
                    sent[(c, wire[:2])] = wire
                s.sendto(wire, (host, port))
        quiet_until = loop.time() + 0.5
        while loop.time() < quiet_until:
            for c, s in enumerate(socks):
                try:
                    data = s.recv(70000)
                except BlockingIOError:
                    continue
                assert (c, data[:2]) not in got, "two answers to one query"
                got[(c, data[:2])] = data
                quiet_until = loop.time() + 0.5
            await asyncio.sleep(0.005)
    finally:
        for s in socks:
            s.close()
    return sent, got


@pytest.mark.parametrize(
    ("host", "family"), [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
)
async def test_batches_match_the_core_byte_for_byte(
    host: str, family: socket.AddressFamily
) -> None:
    snapshot = zone()
    server = DnsServer(snapshot)
    _, port = await server.start(host, 0, udp_io="mmsg")
    assert server.udp_io == "mmsg"
    try:
        sent, got = await exchange(port, host, family, 6, queries())
    finally:
        assert server._mmsg is not None
        batches = server._mmsg.batches
        await server.close()
    want = {k: r for k, w in sent.items() if (r := expected(snapshot, w)) is not None}
    assert got == want
    assert batches < len(sent) / 4  # really batched, not one datagram per call
    assert server.metrics.internal_errors == 0


async def test_metrics_and_answers_equal_the_asyncio_path() -> None:
    snapshot = zone()
    answers = []
    summaries = []
    for io in ("asyncio", "mmsg"):
        server = DnsServer(snapshot)
        _, port = await server.start("127.0.0.1", 0, udp_io=io)
        assert server.udp_io == io
        try:
            answers.append((await exchange(port, "127.0.0.1", socket.AF_INET, 4, queries()))[1])
        finally:
            await server.close()
        summaries.append(server.metrics.summary())
    assert answers[0] == answers[1]
    assert summaries[0] == summaries[1]
    assert summaries[1]["truncated"] > 0 and summaries[1]["queries"] > 100


async def test_small_batches_and_partial_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 5 (many recvmmsg calls per wake-up); sendmmsg sending 2 at a time, once failing
    on an address and once with a full buffer."""
    snapshot = zone()
    server = DnsServer(snapshot)
    monkeypatch.setattr(server_mod, "MmsgUdp", lambda sock, srv: mmsg.MmsgUdp(sock, srv, batch=5))
    _, port = await server.start("127.0.0.1", 0, udp_io="mmsg")
    io = server._mmsg
    assert io is not None and io.batch == 5
    real = io._sendmmsg
    calls = 0

    def stingy(fd: int, hdrs: int, count: int, flags: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            ctypes.set_errno(errno.EINVAL)  # one address refused: that answer is skipped
            return -1
        if calls == 6:
            ctypes.set_errno(errno.EAGAIN)  # send buffer full: the rest of the batch is dropped
            return -1
        return int(real(fd, hdrs, min(count, 2), flags))

    io._sendmmsg = stingy  # type: ignore[method-assign]
    good = [q for q in queries() if expected(snapshot, q) is not None]
    try:
        sent, got = await exchange(port, "127.0.0.1", socket.AF_INET, 2, good)
    finally:
        await server.close()
    assert io.batches >= len(sent) // 5
    want = {k: r for k, w in sent.items() if (r := expected(snapshot, w)) is not None}
    assert len(want) - len(got) == io.send_dropped
    assert 1 < io.send_dropped <= 1 + 5
    assert server.metrics.send_dropped == io.send_dropped  # exported as aodns_answers_dropped_total
    for k, r in got.items():
        assert want[k] == r


async def test_slot_rewiring_after_a_drop_is_undone() -> None:
    """A dropped packet first in a batch shifts every answer after it; the next batch (no drops)
    must go back to its own addresses."""
    snapshot = zone()
    server = DnsServer(snapshot)
    _, port = await server.start("127.0.0.1", 0, udp_io="mmsg")
    good = dns.message.make_query(f"sequence.{ZONE}", "TXT").to_wire()
    try:
        sent1, got1 = await exchange(port, "127.0.0.1", socket.AF_INET, 3, [b"\xff" * 12, good])
        sent2, got2 = await exchange(port, "127.0.0.1", socket.AF_INET, 3, [good, good[:5] + good])
    finally:
        await server.close()
    for sent, got in ((sent1, got1), (sent2, got2)):
        want = {k: r for k, w in sent.items() if (r := expected(snapshot, w)) is not None}
        assert got == want and want


def test_choice_of_udp_io(monkeypatch: pytest.MonkeyPatch) -> None:
    assert server_mod._choose_udp_io("auto") is True
    assert server_mod._choose_udp_io("mmsg") is True
    assert server_mod._choose_udp_io("asyncio") is False
    with pytest.raises(ConfigError, match="auto, mmsg, asyncio"):
        server_mod._choose_udp_io("epoll")
    monkeypatch.setattr(server_mod, "mmsg_unavailable", lambda: "no such call")
    assert server_mod._choose_udp_io("auto") is False
    with pytest.raises(ConfigError, match="no such call"):
        server_mod._choose_udp_io("mmsg")


async def test_auto_falls_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_mod, "mmsg_unavailable", lambda: "not Linux")
    snapshot = zone()
    server = DnsServer(snapshot)
    _, port = await server.start("127.0.0.1", 0)
    try:
        assert server.udp_io == "asyncio" and server._mmsg is None
        sent, got = await exchange(port, "127.0.0.1", socket.AF_INET, 2, queries()[:6])
    finally:
        await server.close()
    assert got == {k: expected(snapshot, w) for k, w in sent.items()}


def test_unavailable_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mmsg, "_libc", None)
    monkeypatch.setattr(mmsg, "_why_not", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    why = mmsg.unavailable()
    assert why is not None and "Linux" in why
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError, match="Linux"):
            mmsg.MmsgUdp(sock, DnsServer(zone()))
    finally:
        sock.close()


def test_unavailable_when_the_kernel_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seccomp sandbox or an old kernel: the calls exist in libc but fail with ENOSYS."""

    class Refusing(mmsg._Libc):
        def __init__(self) -> None:
            def enosys(*args: object) -> int:
                ctypes.set_errno(errno.ENOSYS)
                return -1

            self.recvmmsg = self.sendmmsg = enosys  # type: ignore[assignment]

    monkeypatch.setattr(mmsg, "_libc", None)
    monkeypatch.setattr(mmsg, "_why_not", None)
    monkeypatch.setattr(mmsg, "_Libc", Refusing)
    why = mmsg.unavailable()
    assert why is not None and "recvmmsg failed" in why and "not implemented" in why
    assert server_mod._choose_udp_io("auto") is False


def test_stream_sockets_are_refused() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(ValueError, match="datagram"):
            mmsg.MmsgUdp(sock, DnsServer(zone()))
    finally:
        sock.close()
