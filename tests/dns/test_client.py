"""The client on dnspython's async API against our server on loopback: real sockets, real Opus."""

from __future__ import annotations

import asyncio

import pytest

from audionet.audio.analysis import dominant_frequency
from audionet.dns.broadcast import ServeOptions
from audionet.dns.client import DnsFetcher, Player, parse_server
from audionet.dns.errors import KeyRequiredError, WrongKeyError
from audionet.dns.proto import b91, v2
from audionet.dns.proto.client import ClientSettings, Failure
from audionet.errors import ConfigError
from tests.dns.helpers import SinkBox, broadcast

ZONE = "radio.example.org"


def broadcasting(
    version: int = 2,
    key: str | None = None,
    port: int = 0,
    prefill: float = 3.0,
    epoch=None,
    **options,
):
    opts = ServeOptions(ZONE, port=port, version=version, key=key, **options)
    return broadcast(opts, prefill, epoch)


async def listen(port: int, seconds: float, status=None, **kw) -> tuple[object, bytes, object]:
    box = SinkBox()
    settings = ClientSettings(ZONE, target_seconds=kw.pop("target", 1.0), **kw)
    player = Player(settings, DnsFetcher("127.0.0.1", port), box, status)
    report = await player.run(seconds, give_up=15)
    assert box.sink is not None
    return report, box.sink.pcm, box.sink.format


@pytest.mark.parametrize("version", [1, 2])
async def test_tone_direct(version: int) -> None:
    statuses = []
    async with broadcasting(version) as b:
        report, pcm, fmt = await listen(b.server.address[1], 4.0, statuses.append, version=version)
    # The status line: reported twice a second, playing with a buffer, counting queries and bit rate.
    assert len(statuses) >= 6
    last = statuses[-1]
    assert last.playing and last.buffered > 0.5 and last.queries > 5 and 10 < last.kbps < 200
    assert last.underruns == 0
    assert abs(dominant_frequency(pcm, fmt) - 440) < 5
    assert report.underruns == 0 and report.concealed == 0
    assert report.direct is True  # our answers carry AA: v1 may look ahead of its list
    assert report.seconds == pytest.approx(4.0, abs=0.07)
    assert 0 < report.startup < 3
    assert len(pcm) == round(4.0 / 0.06) * 1920


async def test_encrypted_right_wrong_and_no_key() -> None:
    async with broadcasting(2, key="correct horse") as b:
        port = b.server.address[1]
        report, pcm, fmt = await listen(port, 2.0, passphrase="correct horse")
        assert abs(dominant_frequency(pcm, fmt) - 440) < 5 and report.underruns == 0
        with pytest.raises(WrongKeyError):
            await listen(port, 2.0, passphrase="wrong horse")
        with pytest.raises(KeyRequiredError):
            await listen(port, 2.0)


@pytest.mark.parametrize("version", [1, 2])
async def test_server_restart_mid_stream(version: int) -> None:
    async with broadcasting(version, prefill=3.0) as b:
        port = b.server.address[1]
        box = SinkBox()
        player = Player(
            ClientSettings(ZONE, version=version, target_seconds=1.0),
            DnsFetcher("127.0.0.1", port),
            box,
        )
        task = asyncio.create_task(player.run(9.0, give_up=15))
        await asyncio.sleep(3.0)
    # The server is gone for a second (queries time out), then a new run starts on the same port.
    await asyncio.sleep(1.0)
    async with broadcasting(version, port=port, prefill=3.0):
        report = await asyncio.wait_for(task, 30)
    assert report.restarts >= 1 or version == 1
    assert report.failures > 0
    assert box.sink is not None
    tail = box.sink.pcm[-3 * 32000 :]
    assert abs(dominant_frequency(tail, box.sink.format) - 440) < 5


async def test_fetcher_classifies_outcomes() -> None:
    async with broadcasting(2) as b:
        f = DnsFetcher("127.0.0.1", b.server.address[1], timeout=0.5)
        assert await f.txt(f"nothing.{ZONE}") is Failure.NXDOMAIN
        assert await f.txt(f"main.{ZONE}") is Failure.NODATA
        assert await f.txt("elsewhere.example.net") is Failure.TRANSIENT  # REFUSED
        ok = await f.txt(f"config.main.{ZONE}")
        assert isinstance(ok, list) and ok[0][0].startswith(b"v=2 ")
    silent = DnsFetcher("127.0.0.1", 9, timeout=0.3)
    assert await silent.txt(f"config.main.{ZONE}") is Failure.TRANSIENT


def test_parse_server() -> None:
    assert parse_server("127.0.0.1:5053") == ("127.0.0.1", 5053)
    assert parse_server("[::1]:53") == ("::1", 53)
    assert parse_server("::1") == ("::1", 53)
    assert parse_server("10.0.0.1") == ("10.0.0.1", 53)
    with pytest.raises(ConfigError):
        parse_server("host:port")
    with pytest.raises(ConfigError):
        parse_server("host:70000")


async def test_codec2_stream_and_ipv6() -> None:
    async with broadcast(ServeOptions(ZONE, address="::1", port=0, codec="codec2")) as b:
        box = SinkBox()
        settings = ClientSettings(ZONE, target_seconds=1.0)
        report = await Player(settings, DnsFetcher("::1", b.server.address[1]), box).run(
            2.0, give_up=10
        )
    assert box.sink is not None and box.sink.format.rate == 8000
    assert report.underruns == 0 and report.seconds == pytest.approx(2.0, abs=0.05)
    assert (
        abs(dominant_frequency(box.sink.pcm, box.sink.format) - 440) < 15
    )  # a vocoder, not a waveform codec


@pytest.mark.parametrize(
    ("served", "asked", "stream", "message"),
    [
        (1, 2, "main", "serves the original v1 format"),
        (2, 1, "main", "serves v2 streams"),
        (2, 2, "other", "has no stream 'other'; its streams: main"),
    ],
)
async def test_wrong_format_or_stream_is_a_clear_error(
    served: int, asked: int, stream: str, message: str
) -> None:
    async with broadcasting(served) as b:
        with pytest.raises(ConfigError, match=message):
            await listen(b.server.address[1], 1.0, version=asked, stream=stream)


async def test_text_payloads_through_base91() -> None:
    async with broadcasting(2, encoding=v2.Encoding.BASE91) as b:
        port = b.server.address[1]
        f = DnsFetcher("127.0.0.1", port)
        cfg = await f.txt(f"config.main.{ZONE}")
        assert isinstance(cfg, list) and b" enc=b91 " in cfg[0][0]
        last = b.feed.kept[-1]
        pack = await f.txt(f"p{last.seq}-{b.feed.config.epoch:08x}.main.{ZONE}")
        assert isinstance(pack, list)
        assert all(ch in b91.ALPHABET.encode() for s in pack[0] for ch in s)  # printable text
        report, pcm, fmt = await listen(port, 2.0)
    assert abs(dominant_frequency(pcm, fmt) - 440) < 3 and report.underruns == 0
