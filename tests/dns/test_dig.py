"""Our authoritative server checked by an independent DNS implementation: BIND's ``dig``."""

from __future__ import annotations

import asyncio
import re

from audionet.dns.proto import v2
from audionet.dns.proto.publisher import ZonePublisher
from audionet.dns.server import DnsServer
from tests.conftest import require_binary

ZONE = "music.example.com"


async def dig(port: int, *args: str) -> str:
    binary = require_binary("dig", "dnsutils")
    proc = await asyncio.create_subprocess_exec(
        binary,
        "@127.0.0.1",
        "-p",
        str(port),
        "+norec",
        "+time=2",
        "+tries=1",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return out.decode()


def header(output: str) -> tuple[str, set[str]]:
    status = re.search(r"status: (\w+)", output)
    flags = re.search(r"flags: ([a-z ]+);", output)
    assert status and flags, output
    return status.group(1), set(flags.group(1).split())


async def v1_server() -> tuple[DnsServer, int]:
    pub = ZonePublisher(ZONE)
    stream = pub.add_v1()
    for i in range(12 * 20):
        stream.feed(bytes([i % 256]) * 150)  # 20 packs of frames of 150 bytes
    server = DnsServer(pub.snapshot())
    _, port = await server.start("127.0.0.1", 0)
    return server, port


async def test_v1_names_sizes_truncation_and_tcp() -> None:
    server, port = await v1_server()
    try:
        out = await dig(port, "TXT", f"sequence.{ZONE}")
        assert header(out) == ("NOERROR", {"qr", "aa"})
        assert re.search(rf"sequence\.{re.escape(ZONE)}\.\s+10\s+IN\s+TXT", out)
        # A pack is about 2 kB: without EDNS it cannot fit 512 bytes, so TC and no answer...
        out = await dig(port, "+noedns", "+ignore", "TXT", f"seq_3.{ZONE}")
        status, flags = header(out)
        assert status == "NOERROR" and "tc" in flags and "ANSWER: 0" in out
        # ...and over TCP the whole pack, one TXT record per frame, each prefixed with its index.
        out = await dig(port, "+tcp", "TXT", f"seq_3.{ZONE}")
        records = re.findall(rf"seq_3\.{re.escape(ZONE)}\.\s+\d+\s+IN\s+TXT\s+\"(\d\d\d)'''", out)
        assert sorted(records) == [f"{i:03d}" for i in range(len(records))] and len(records) >= 9
        msg_size = re.search(r"MSG SIZE\s+rcvd: (\d+)", out)
        assert msg_size and int(msg_size.group(1)) > 1232
    finally:
        await server.close()


async def test_case_nxdomain_nodata_refused_and_apex() -> None:
    server, port = await v1_server()
    try:
        out = await dig(port, "TXT", "SeQuEnCe.MuSiC.example.COM")
        assert "SeQuEnCe.MuSiC.example.COM." in out.split("ANSWER SECTION")[1]  # 0x20 case echoed
        out = await dig(port, "TXT", f"seq_99999.{ZONE}")
        status, _ = header(out)
        assert status == "NXDOMAIN" and re.search(r"AUTHORITY SECTION:\n\S+\s+\d+\s+IN\s+SOA", out)
        out = await dig(port, "AAAA", f"sequence.{ZONE}")
        assert header(out)[0] == "NOERROR" and "ANSWER: 0" in out and "SOA" in out  # NODATA
        out = await dig(port, "TXT", "www.example.org")
        assert header(out)[0] == "REFUSED"
        out = await dig(port, "SOA", ZONE)
        assert header(out)[0] == "NOERROR" and re.search(
            r"IN\s+SOA", out.split("ANSWER SECTION")[1]
        )
        out = await dig(port, "NS", ZONE)
        assert re.search(r"IN\s+NS", out.split("ANSWER SECTION")[1])
    finally:
        await server.close()


async def test_v2_packs_fit_1232_bytes_over_udp() -> None:
    pub = ZonePublisher(ZONE)
    stream = pub.add_v2("main", v2.StreamConfig(), epoch=0x5C74CAE7)
    for i in range(200):
        stream.feed(bytes([i % 256]) * 150)
    server = DnsServer(pub.snapshot())
    _, port = await server.start("127.0.0.1", 0)
    try:
        out = await dig(port, "+bufsize=1232", "TXT", f"config.main.{ZONE}")
        assert header(out)[0] == "NOERROR" and "v=2 codec=opus rate=16000" in out
        out = await dig(port, "+bufsize=1232", "TXT", f"index.main.{ZONE}")
        index = re.search(r'IN\s+TXT\s+"epoch=5c74cae7 first=(\d+) count=(\d+)"', out)
        assert index, out
        first, count = int(index.group(1)), int(index.group(2))
        assert count > 1
        for n in (first, first + count - 1):
            out = await dig(port, "+bufsize=1232", "TXT", f"p{n}-5c74cae7.main.{ZONE}")
            status, flags = header(out)
            assert status == "NOERROR" and "tc" not in flags  # the whole pack, over UDP
            msg_size = re.search(r"MSG SIZE\s+rcvd: (\d+)", out)
            assert msg_size and 512 < int(msg_size.group(1)) <= 1232
        out = await dig(port, "+bufsize=1232", "TXT", f"p{first + count}-5c74cae7.main.{ZONE}")
        assert header(out)[0] == "NXDOMAIN"  # the next pack does not exist yet
    finally:
        await server.close()
