"""The asyncio server on real loopback sockets: UDP, TCP, truncation, case, garbage, swapping."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audionet.dns.proto.publisher import ZonePublisher
from audionet.dns.server import DnsServer

ZONE = "music.example.com"


async def started_server(packs: int = 20) -> tuple[DnsServer, ZonePublisher, int]:
    pub = ZonePublisher(ZONE)
    s1 = pub.add_v1()
    for i in range(packs * 12):
        s1.feed(bytes([i % 256]) * 150)
    server = DnsServer(pub.snapshot())
    _, port = await server.start("127.0.0.1", 0)
    return server, pub, port


async def test_udp_tc_then_tcp_full_answer() -> None:
    server, _, port = await started_server()
    try:
        q = dns.message.make_query(f"seq_3.{ZONE}", "TXT", use_edns=0, payload=1232)
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
        assert r.flags & dns.flags.TC and not r.answer
        r2 = await dns.asyncquery.tcp(q, "127.0.0.1", port=port, timeout=2)
        assert not r2.flags & dns.flags.TC and len(r2.answer[0]) >= 9
        q512 = dns.message.make_query(f"sequence.{ZONE}", "TXT")
        r3 = await dns.asyncquery.udp(q512, "127.0.0.1", port=port, timeout=2)
        assert r3.answer and r3.answer[0].ttl == 10
        assert server.metrics.truncated == 1 and server.metrics.tcp_queries == 1
    finally:
        await server.close()


async def test_mixed_case_and_nxdomain_over_udp() -> None:
    server, _, port = await started_server()
    try:
        q = dns.message.make_query("SeQuEnCe.MUSIC.example.COM", "TXT")
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
        assert q.is_response(r) and str(r.question[0].name) == "SeQuEnCe.MUSIC.example.COM."
        q = dns.message.make_query(f"seq_99999.{ZONE}", "TXT")
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
        assert r.rcode() == dns.rcode.NXDOMAIN and r.authority
    finally:
        await server.close()


async def test_garbage_udp_and_tcp_never_kill_the_server() -> None:
    server, _, port = await started_server()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for junk in [
            b"",
            b"\x00",
            b"\xff" * 12,
            b"\x12\x34" + b"\x00" * 3 + b"\x01" + b"\xc0" * 40,
        ]:
            sock.sendto(junk, ("127.0.0.1", port))
        sock.close()
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x00\x05hello")
        writer.write(b"\x00\xff" + b"x" * 10)  # a length that never completes
        writer.close()
        await asyncio.sleep(0.1)
        q = dns.message.make_query(f"sequence.{ZONE}", "TXT")
        r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        assert server.metrics.internal_errors == 0
    finally:
        await server.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_hypothesis_packets_over_udp(data: bytes) -> None:
    async def go() -> None:
        server, _, port = await started_server(packs=2)
        try:
            loop = asyncio.get_running_loop()
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            await loop.sock_sendto(sock, data, ("127.0.0.1", port))
            await loop.sock_sendto(sock, data[:7] + data, ("127.0.0.1", port))
            sock.close()
            q = dns.message.make_query(f"sequence.{ZONE}", "TXT")
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
            assert r.answer
            assert server.metrics.internal_errors == 0
        finally:
            await server.close()

    asyncio.run(go())


async def test_no_empty_answers_while_packs_rotate() -> None:
    pub = ZonePublisher(ZONE)
    s2 = pub.add_v2(
        "main", __import__("audionet.dns.proto.v2", fromlist=["x"]).StreamConfig(), epoch=3
    )
    for i in range(200):
        s2.feed(bytes([i % 256]) * 120)
    server = DnsServer(pub.snapshot())
    _, port = await server.start("127.0.0.1", 0)
    stop = False
    bad: list[str] = []

    async def publish() -> None:
        i = 0
        while not stop:
            for _ in range(5):
                if s2.feed(bytes([i % 256]) * 120):
                    server.swap(pub.snapshot())
                i += 1
            await asyncio.sleep(0)

    async def ask(n: int) -> None:
        for _ in range(n):
            q = dns.message.make_query(f"index.main.{ZONE}", "TXT")
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
            if r.rcode() != 0 or not r.answer:
                bad.append(str(r))

    pub_task = asyncio.create_task(publish())
    try:
        await asyncio.wait_for(asyncio.gather(*(ask(100) for _ in range(4))), 60)
    finally:
        stop = True
        await pub_task
        await server.close()
    assert not bad
    assert s2.kept[-1].seq > 100


async def test_port_in_use_is_an_error() -> None:
    server, _, port = await started_server(packs=1)
    try:
        other = DnsServer(server.snapshot)
        with pytest.raises(OSError):
            await other.start("127.0.0.1", port)
    finally:
        await server.close()


def test_tcp_length_framing_raw() -> None:
    async def go() -> None:
        server, _, port = await started_server(packs=1)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for name in ("sequence", "seq_0"):
                wire = dns.message.make_query(f"{name}.{ZONE}", "TXT").to_wire()
                writer.write(struct.pack(">H", len(wire)) + wire)
            await writer.drain()
            for _ in range(2):
                (n,) = struct.unpack(">H", await reader.readexactly(2))
                r = dns.message.from_wire(await reader.readexactly(n))
                assert r.answer
            writer.close()
        finally:
            await server.close()

    asyncio.run(go())
