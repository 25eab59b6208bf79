"""A phone call broadcast over DNS, over real loopback sockets: an Asterisk-like caller, the
station's AudioSocket and DNS servers, and listeners directly and through unbound."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from audionet.audio.analysis import dominant_frequency, dropouts, level_dbfs, tone_snr
from audionet.audio.format import AudioFormat
from audionet.audio.sources import ToneSource
from audionet.audiosocket import ClientCall, connect
from audionet.bridges.call_dns import CallStation, parse_source
from audionet.dns.broadcast import ServeOptions
from audionet.dns.client import DnsFetcher, Player
from audionet.dns.info import zone_info
from audionet.dns.localresolver import arun_resolver, free_port
from audionet.dns.proto.client import ClientSettings
from audionet.errors import ConfigError
from tests.audiosocket.util import RawPeer
from tests.conftest import require_binary
from tests.dns.helpers import SinkBox

ZONE = "calls.example.com"


@contextlib.asynccontextmanager
async def station(stream: str | None = None, **options: object) -> AsyncIterator[CallStation]:
    lines: list[str] = []
    opts = ServeOptions(
        ZONE, port=0, source=f"audiosocket:127.0.0.1:{free_port()}", stream=stream or "main",
        **options,  # type: ignore[arg-type]
    )  # fmt: skip
    st = CallStation(opts, per_call=stream is None, notify=lines.append)
    st.lines = lines  # type: ignore[attr-defined]
    ready = asyncio.Event()
    task = asyncio.create_task(st.run(ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield st
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


TASKS: set[asyncio.Task[None]] = set()


async def caller(st: CallStation, freq: float, seconds: float, rate: int = 8000) -> ClientCall:
    """An ``AudioSocket()`` caller (sends at once) saying a tone for ``seconds``, then hanging up."""
    host, port = st.audiosocket_address
    call = await connect(host, port, rate=rate, wait_for_server=False, record=False)
    src = ToneSource(freq, AudioFormat(rate), amplitude=0.3)
    call.send_audio(src.read(int(seconds * rate)))

    async def hang_up_when_said() -> None:
        await call.drain()
        await call.hangup()

    task = asyncio.create_task(hang_up_when_said())
    TASKS.add(task)
    task.add_done_callback(TASKS.discard)
    return call


def listener(port: int, stream: str, target: float = 3.0) -> tuple[Player, SinkBox]:
    box = SinkBox()
    settings = ClientSettings(ZONE, stream=stream, target_seconds=target)
    return Player(settings, DnsFetcher("127.0.0.1", port), box), box


def check_tone(box: SinkBox, freq: float) -> None:
    assert box.sink is not None
    fmt, pcm = box.sink.format, box.sink.pcm
    heard = pcm[: len(pcm) - fmt.rate]  # (the last second holds the call's padded end)
    assert abs(dominant_frequency(heard, fmt) - freq) < 2
    assert tone_snr(heard, fmt, freq) > 20


@pytest.mark.daemon
async def test_a_callers_tone_comes_out_of_dns_play_directly_and_through_unbound(
    tmp_path: Path,
) -> None:
    binary = require_binary("unbound")
    async with station() as st:
        dns_port = st.server.address[1]
        async with arun_resolver("unbound", binary, tmp_path / "u", ZONE, dns_port) as via:
            call = await caller(st, 440, 5.0)
            name = str(call.uuid)
            await asyncio.sleep(1.0)
            (info,) = await zone_info(ZONE, DnsFetcher("127.0.0.1", dns_port))
            assert info.name == name  # `audionet dns info` lists the live call
            direct, box_d = listener(dns_port, name)
            resolved, box_u = listener(via, name)
            reports = await asyncio.wait_for(
                asyncio.gather(direct.run(give_up=10), resolved.run(give_up=10)), 30
            )
            assert call.ended and call.end_reason == "caller hung up"
        assert await zone_info(ZONE, DnsFetcher("127.0.0.1", dns_port)) == []  # not live now
    for report, box in zip(reports, (box_d, box_u), strict=True):
        assert report.ended  # the stream ended with the call: no stall, no give-up
        assert report.underruns == 0
        assert report.seconds == pytest.approx(5.0, abs=0.3)
        check_tone(box, 440)
    assert any("live as stream" in line for line in st.lines)  # type: ignore[attr-defined]


async def test_a_listener_of_a_call_that_ends_sees_the_stream_end() -> None:
    async with station() as st:
        call = await caller(st, 440, 30.0)  # a long call ...
        player, _box = listener(st.server.address[1], str(call.uuid), target=1.0)
        playing = asyncio.create_task(player.run(give_up=10))
        await asyncio.sleep(3.0)
        await call.hangup()  # ... that hangs up after 3 s
        report = await asyncio.wait_for(playing, 10)
    assert report.ended and report.underruns == 0
    assert 1.5 < report.seconds < 4.5


async def test_caller_audio_at_16_khz_is_resampled_to_the_codec_rate() -> None:
    async with station() as st:
        call = await caller(st, 1000, 2.0, rate=16000)
        player, box = listener(st.server.address[1], str(call.uuid), target=1.0)
        report = await asyncio.wait_for(player.run(give_up=10), 20)
        await call.hangup()
    assert report.ended
    check_tone(box, 1000)


async def test_a_named_stream_takes_calls_in_turn_with_silence_between(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with station(stream="studio") as st:
        port = st.server.address[1]
        player, box = listener(port, "studio", target=1.5)
        playing = asyncio.create_task(player.run(9.0, give_up=10))
        await asyncio.sleep(1.5)  # silence first
        first = await caller(st, 440, 3.0)
        await asyncio.sleep(0.5)
        with caplog.at_level(logging.WARNING):
            second = await caller(st, 1000, 4.0)
            await asyncio.wait_for(second.wait_closed(), 5)  # refused with a hangup
        assert "refused call" in caplog.text and "studio" in caplog.text
        assert not first.ended
        await asyncio.sleep(2.0)
        await first.hangup()
        await asyncio.sleep(1.5)  # silence again
        third = await caller(st, 1000, 2.5)
        report = await asyncio.wait_for(playing, 20)
        await third.hangup()
    assert report.underruns == 0 and not report.ended  # a named stream goes on
    assert box.sink is not None
    fmt, pcm = box.sink.format, box.sink.pcm
    sec = fmt.rate * 2
    levels = [
        level_dbfs(pcm[i : i + sec // 5], fmt)[0] for i in range(0, len(pcm) - sec // 5, sec // 5)
    ]
    loud = [lv > -20 for lv in levels]
    runs = [k for k, _ in itertools.groupby(loud)]
    assert runs[:4] == [False, True, False, True]  # silence, the first call, silence, the third
    tones = [dominant_frequency(pcm[i : i + sec], fmt) for i in range(0, len(pcm) - sec, sec)]
    assert any(abs(f - 440) < 3 for f in tones) and any(abs(f - 1000) < 3 for f in tones)


async def test_bad_input_on_one_call_ends_only_that_call() -> None:
    async with station() as st:
        good = await caller(st, 440, 4.0)
        player, box = listener(st.server.address[1], str(good.uuid), target=1.0)
        playing = asyncio.create_task(player.run(give_up=10))
        await asyncio.sleep(1.0)
        _host, port = st.audiosocket_address
        bad = await RawPeer.open(port)
        bad.send(b"\x10\x00\x05abcde")  # odd-length audio ...
        bad.send(b"\x10\xff\xff" + bytes(100))  # ... and a message longer than the limit
        await bad.read_all()  # the station hangs up on it
        report = await asyncio.wait_for(playing, 20)
        await good.hangup()
    assert report.ended and report.underruns == 0
    assert report.seconds == pytest.approx(4.0, abs=0.3)
    check_tone(box, 440)
    assert dropouts(box.sink.pcm[:-16000], box.sink.format) == 0  # type: ignore[union-attr]


async def test_a_second_call_with_a_live_calls_uuid_is_refused_and_a_reused_one_is_served() -> None:
    """Dialplans often write the UUID in: a second call with it meanwhile is refused; after the
    first ended it is served again (a new run of the stream, the old one's records removed later)."""
    async with station() as st:
        host, port = st.audiosocket_address
        first = await connect(host, port, wait_for_server=False, record=False)
        first.send_audio(bytes(16000))
        await asyncio.sleep(0.3)
        again = await connect(host, port, uuid=first.uuid, wait_for_server=False, record=False)
        await asyncio.wait_for(again.wait_closed(), 5)
        assert any("UUID is live" in line for line in st.lines)  # type: ignore[attr-defined]
        assert len(st.calls) == 1
        await first.hangup()
        await asyncio.sleep(0.3)
        later = await connect(host, port, uuid=first.uuid, wait_for_server=False, record=False)
        later.send_audio(bytes(16000))
        await asyncio.sleep(0.3)
        assert [live.name for live in st.calls.values()] == [str(first.uuid)]
        old = st.ended[0]
        assert old == str(first.uuid) and str(first.uuid) in st.publisher.streams
        await later.hangup()


def test_source_and_option_errors() -> None:
    assert parse_source("audiosocket:127.0.0.1:9093") == ("127.0.0.1", 9093)
    for bad in ("audiosocket:9093", "audiosocket:h:0", "audiosocket:h:x"):
        with pytest.raises(ConfigError, match="audiosocket:HOST:PORT"):
            parse_source(bad)
    src = "audiosocket:127.0.0.1:9093"
    with pytest.raises(ConfigError, match="--stream"):
        CallStation(ServeOptions(ZONE, source=src, version=1), per_call=True)
    with pytest.raises(ConfigError, match="--workers"):
        CallStation(ServeOptions(ZONE, source=src, workers=2), per_call=True)
    v1 = CallStation(ServeOptions(ZONE, source=src, version=1), per_call=False)
    assert v1.named is not None and v1.publisher.v1 is not None  # a v1 zone: calls take turns
