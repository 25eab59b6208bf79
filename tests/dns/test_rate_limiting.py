"""Response rate limiting in the server, on real loopback sockets.

Loopback is all of 127.0.0.0/8 on Linux, so senders bound to 127.0.0.1, 127.0.1.1 or 127.0.9.9
are different /24 networks to the limiter. The flood comes from a subprocess
(:mod:`tests.dns.flood`) that, like a forged victim address, never falls back to TCP.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import pytest

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.dns import mmsg
from audionet.dns.broadcast import ServeOptions
from audionet.dns.client import DnsFetcher, Player
from audionet.dns.localresolver import DaemonOptions, arun_resolver
from audionet.dns.proto import names, v2
from audionet.dns.proto.client import ClientSettings
from audionet.dns.proto.publisher import ZonePublisher
from audionet.dns.proto.rrl import RateLimiter, RrlConfig
from audionet.dns.server import DnsServer
from tests.conftest import require_binary
from tests.dns.helpers import SinkBox, broadcast

ZONE = "limit.example.net"
ROOT = Path(__file__).resolve().parents[2]


def pack_query(qid: int) -> bytes:
    q = dns.message.make_query(f"p3-00000001.main.{ZONE}", "TXT", use_edns=0, payload=4096)
    q.id = qid
    return q.to_wire()


def zone() -> ZonePublisher:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), epoch=1)
    for i in range(100):
        st.feed(bytes([i % 256]) * 120)
    return pub


async def burst(port: int, host: str, source: str, count: int) -> tuple[int, int]:
    """Send ``count`` queries at once from ``source``; (full answers, truncated) that came back."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.setblocking(False)
        for i in range(count):
            s.sendto(pack_query(i), (host, port))
        full = tc = 0
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + 0.4
        while loop.time() < quiet_until:
            try:
                data = s.recv(65535)
            except BlockingIOError:
                await asyncio.sleep(0.005)
                continue
            quiet_until = loop.time() + 0.4
            r = dns.message.from_wire(data)
            if r.flags & dns.flags.TC:
                assert not r.answer and len(data) < len(pack_query(0))  # no amplification
                tc += 1
            else:
                assert r.answer
                full += 1
    return full, tc


@pytest.mark.parametrize(
    ("host", "udp_io"), [("127.0.0.1", "asyncio"), ("127.0.0.1", "mmsg"), ("::1", "mmsg")]
)
async def test_a_burst_is_cut_to_the_bucket_and_other_networks_and_tcp_are_not(
    host: str, udp_io: str
) -> None:
    if udp_io == "mmsg" and mmsg.unavailable() is not None:
        pytest.skip(f"no batched UDP here: {mmsg.unavailable()}")
    server = DnsServer(zone().snapshot(), rrl=RateLimiter(RrlConfig(rate=50, slip=2)))
    _, port = await server.start(host, 0, udp_io=udp_io)
    try:
        full, tc = await burst(port, host, host, 300)
        # The bucket's 50 (and what refilled at 50/s while the burst was read), then every
        # second limited answer slipped as TC and the others dropped.
        m = server.metrics
        assert 50 <= full <= 60
        assert m.rrl_slipped == tc and abs(tc - (300 - full) / 2) <= 1
        assert m.rrl_dropped == 300 - full - tc
        if host == "127.0.0.1":
            assert await burst(port, host, "127.0.1.1", 40) == (40, 0)  # another /24
        # TCP is never limited.
        for i in range(5):
            q = dns.message.from_wire(pack_query(i))
            r = await dns.asyncquery.tcp(q, host, port=port, timeout=2)
            assert r.answer and not r.flags & dns.flags.TC
    finally:
        await server.close()


@pytest.mark.parametrize("udp_io", ["asyncio", "mmsg"])
async def test_many_networks_in_one_batch_each_get_their_own_bucket(udp_io: str) -> None:
    """Twelve /24 networks interleaved (a batch of many sources: one bucket update a datagram),
    30 queries each at once, 10 a second allowed: each gets its 10, then DROP/SLIP alternate."""
    if udp_io == "mmsg" and mmsg.unavailable() is not None:
        pytest.skip(f"no batched UDP here: {mmsg.unavailable()}")
    server = DnsServer(zone().snapshot(), rrl=RateLimiter(RrlConfig(rate=10, slip=2)))
    _, port = await server.start("127.0.0.1", 0, udp_io=udp_io)
    socks = []
    try:
        for net in range(12):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((f"127.0.{20 + net}.1", 0))
            s.setblocking(False)
            socks.append(s)
        for i in range(30):
            for s in socks:
                s.sendto(pack_query(i), ("127.0.0.1", port))
        await asyncio.sleep(0.5)
        for s in socks:
            full = tc = 0
            while True:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    break
                if dns.message.from_wire(data).flags & dns.flags.TC:
                    tc += 1
                else:
                    full += 1
            assert 10 <= full <= 12 and abs(tc - (30 - full) / 2) <= 1
    finally:
        for s in socks:
            s.close()
        await server.close()
    m = server.metrics
    assert m.rrl_slipped + m.rrl_dropped == 12 * 30 - m.total


async def test_a_flood_is_held_to_the_rate_while_a_listener_behind_a_resolver_plays(
    tmp_path: Path,
) -> None:
    """A flood of pack queries (40 bytes in, ~1,100 out) from one address at 2,000 a second gets
    200 full answers a second (the default rate); meanwhile a listener behind unbound on
    127.0.0.2, another network, plays a clean tone."""
    binary = require_binary("unbound")
    async with broadcast(ServeOptions(ZONE, port=0), prefill=4.0) as b:
        port = b.server.address[1]
        epoch = b.feed.epoch  # type: ignore[union-attr]
        pack = names.v2_pack_name(ZONE, "main", 2, epoch)
        opts = DaemonOptions(address="127.0.0.2")
        async with arun_resolver("unbound", binary, tmp_path / "u", ZONE, port, opts) as rport:
            flood = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "tests.dns.flood", "--source", "127.0.9.9"],
                *["--server", f"127.0.0.1:{port}", "--name", pack, "--seconds", "6"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
            )
            box = SinkBox()
            settings = ClientSettings(ZONE, target_seconds=3.0)
            player = Player(settings, DnsFetcher("127.0.0.2", rport), box)
            report = await player.run(8.0, give_up=20)
            out, _ = await flood.communicate()
    result = json.loads(out)
    full, tc = result["full"], result["truncated"]
    assert result["sent"] >= 11000  # ~2,000 a second for 6 s
    # The first second may use the banked second's worth too; then 200 a second.
    assert 150 <= full[0] <= 420
    for second in range(1, 6):
        assert 160 <= full[second] <= 240, full
    limited = result["sent"] - sum(full)
    assert abs(sum(tc) - limited / 2) <= 0.05 * limited  # every second limited answer slips
    assert b.metrics.rrl_dropped > 4000
    # What the flood drew: no longer ~30 times what it sent.
    assert result["bytes_in"] < 8 * result["bytes_out"]
    assert report.underruns == 0 and report.concealed == 0
    assert box.sink is not None
    pcm, fmt = box.sink.pcm, box.sink.format
    assert abs(dominant_frequency(pcm, fmt) - 440) < 3 and tone_snr(pcm, fmt, 440) > 20


async def test_a_limited_resolver_still_gets_its_packs_over_tcp(tmp_path: Path) -> None:
    """With a limit below what one listener's resolver asks (1 a second), unbound gets TC for
    every second answer over the limit and asks again over TCP (never limited); the others are
    dropped and unbound asks again after its timeout. The listener hears every frame."""
    binary = require_binary("unbound")
    rrl = RrlConfig(rate=1)  # the default slip: 2
    async with broadcast(ServeOptions(ZONE, port=0, rrl=rrl), prefill=4.0) as b:
        port = b.server.address[1]
        async with arun_resolver("unbound", binary, tmp_path / "u", ZONE, port) as rport:
            box = SinkBox()
            player = Player(ClientSettings(ZONE), DnsFetcher("127.0.0.1", rport), box)
            report = await player.run(8.0, give_up=20)
    m = b.metrics
    assert m.rrl_slipped >= 10 and m.rrl_dropped >= 10
    assert m.tcp_queries >= m.rrl_slipped * 0.8  # each truncated answer asked again over TCP
    assert report.underruns == 0 and report.concealed == 0 and report.packs_lost == 0
    assert box.sink is not None
    pcm, fmt = box.sink.pcm, box.sink.format
    assert tone_snr(pcm, fmt, 440) > 20
