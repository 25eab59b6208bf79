"""Through real recursive resolvers on loopback: unbound (stub zone), BIND named (forwarder) and Knot
Resolver kresd (STUB policy, its default 5 s minimum cache time kept)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import pytest

from audionet.audio.analysis import dominant_frequency, dropouts, tone_snr
from audionet.dns.client import DnsFetcher, Player
from audionet.dns.localresolver import arun_resolver
from audionet.dns.proto.client import ClientSettings
from tests.conftest import require_binary
from tests.dns.helpers import SinkBox
from tests.dns.test_client import ZONE, broadcasting

pytestmark = [pytest.mark.daemon, pytest.mark.slow]


async def play_through(port: int, seconds: float, version: int, target: float = 3.0):
    box = SinkBox()
    settings = ClientSettings(ZONE, version=version, target_seconds=target)
    player = Player(settings, DnsFetcher("127.0.0.1", port), box)
    report = await player.run(seconds, give_up=20)
    assert box.sink is not None
    return report, box.sink.pcm, box.sink.format


@pytest.mark.parametrize(
    ("kind", "version", "seconds"),
    [("unbound", 2, 20.0), ("named", 2, 10.0), ("kresd", 2, 15.0), ("unbound", 1, 8.0)],
)
async def test_tone_through_resolver(
    kind: str, version: int, seconds: float, tmp_path: Path
) -> None:
    package = {"unbound": "unbound", "named": "bind9", "kresd": "knot-resolver"}[kind]
    binary = require_binary(kind, package)
    # (v1 through a resolver buffers ~13 s: the station has that much on the air already)
    async with broadcasting(version, prefill=4.0 if version == 2 else 15.0) as b:
        upstream = b.server.address[1]
        async with arun_resolver(kind, binary, tmp_path / kind, ZONE, upstream) as port:
            report, pcm, fmt = await play_through(port, seconds, version)
            via_resolver = b.metrics.total
    assert report.seconds == pytest.approx(seconds, abs=0.07)
    assert abs(dominant_frequency(pcm, fmt) - 440) < 3
    assert tone_snr(pcm, fmt, 440) > 20
    assert report.underruns == 0
    assert report.concealed == 0
    assert report.packs_lost == 0
    assert report.startup < 3.0
    assert report.direct is False and report.probes == 0  # never a pack the index had not shown
    assert via_resolver > 0
    # kresd serves the 1 s index for 5 s: the client must notice and read it under fresh names;
    # unbound and named honour the TTL, so the client keeps the cacheable name.
    assert report.fresh_index == (kind == "kresd")
    if version == 2:
        assert report.tcp_fallbacks == 0  # v2 answers fit 1232 bytes: UDP all the way
    else:
        assert (
            report.tcp_fallbacks > 0
        )  # v1 packs are ~2 kB: the resolver truncates, we retry on TCP


async def test_sizes_mixed_case_and_nxdomain_through_unbound(tmp_path: Path) -> None:
    binary = require_binary("unbound")
    async with broadcasting(1, prefill=4.0) as b:
        async with arun_resolver(
            "unbound", binary, tmp_path / "u", ZONE, b.server.address[1]
        ) as port:
            name = f"SeQ_2.{ZONE.upper()}"
            q = dns.message.make_query(name, "TXT")  # no EDNS: at most 512 bytes
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=5)
            assert r.flags & dns.flags.TC
            r = await dns.asyncquery.tcp(q, "127.0.0.1", port=port, timeout=5)
            assert len(r.answer[0]) >= 8
            assert str(r.question[0].name) == name + "."
            q = dns.message.make_query(f"seq_999999.{ZONE}", "TXT", use_edns=0, payload=1232)
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=5)
            assert r.rcode() == dns.rcode.NXDOMAIN
        assert b.metrics.tcp_queries >= 1 or b.metrics.truncated >= 1


async def test_restart_through_unbound(tmp_path: Path) -> None:
    binary = require_binary("unbound")
    async with contextlib.AsyncExitStack() as first:
        b = await first.enter_async_context(broadcasting(2, prefill=4.0))
        upstream = b.server.address[1]
        async with arun_resolver("unbound", binary, tmp_path / "u", ZONE, upstream) as port:
            task = asyncio.create_task(play_through(port, 12.0, 2, target=1.5))
            await asyncio.sleep(4.0)
            await first.aclose()  # the server goes away mid-stream
            await asyncio.sleep(1.0)
            async with broadcasting(2, port=upstream, prefill=4.0):
                report, pcm, fmt = await asyncio.wait_for(task, 40)
    assert report.restarts == 1  # (unbound may bridge the second of downtime from its cache)
    tail = pcm[-4 * 32000 :]
    assert abs(dominant_frequency(tail, fmt) - 440) < 3


async def test_v1_through_kresd_plays_cleanly(tmp_path: Path) -> None:
    """kresd keeps every answer at least 5 s, "no such name" included. v1 used to ask for the
    next pack before the sequence list showed it, so kresd hid that pack for 5 s: the player
    rebuffered and now and then lost a pack. It no longer asks for unlisted packs through a
    resolver (the answers carry no AA flag), and buffers enough to outlast the list's 10 s TTL:
    a clean tone, no rebuffering, nothing skipped."""
    binary = require_binary("kresd", "knot-resolver")
    async with (
        broadcasting(1, prefill=15.0) as b,
        arun_resolver("kresd", binary, tmp_path / "k", ZONE, b.server.address[1]) as port,
    ):
        report, pcm, fmt = await play_through(port, 15.0, 1)
    assert report.seconds == pytest.approx(15.0, abs=0.07)
    assert report.direct is False and report.probes == 0
    assert report.underruns == 0 and report.concealed == 0 and report.packs_lost == 0
    assert report.target == report.start_target  # no growth: nothing to adapt to
    assert 11.5 <= report.target <= 14.0
    assert dropouts(pcm, fmt) == 0
    edge = fmt.bytes_for(0.5)  # the decoder starts mid-stream: its first frame fades in
    assert tone_snr(pcm[edge:], fmt, 440) > 20
