"""A DNS stream played into calls, over real loopback sockets: an AoDNS station, our AudioSocket
server with the ``dns:`` app, and Asterisk-like callers."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator

import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.audio.format import AudioFormat
from audionet.audiosocket import AudioSocketServer, ClientCall, connect, serve
from audionet.audiosocket.apps import make_app
from audionet.bridges.dns_call import DnsApp, parse_app_spec
from audionet.dns.broadcast import Broadcaster, ServeOptions
from audionet.dns.localresolver import free_port
from audionet.errors import ConfigError
from tests.dns.helpers import broadcast

ZONE = "radio.example.com"
FRAME = 320  # 20 ms at 8 kHz


@contextlib.asynccontextmanager
async def station(port: int = 0, epoch: int | None = None) -> AsyncIterator[Broadcaster]:
    async with broadcast(ServeOptions(ZONE, port=port), prefill=3.0, epoch=epoch) as b:
        yield b


@contextlib.asynccontextmanager
async def dns_app_server(dns_port: int, target: float = 1.0) -> AsyncIterator[AudioSocketServer]:
    app = make_app(f"dns:{ZONE},server=127.0.0.1:{dns_port},target={target}")
    assert isinstance(app, DnsApp)
    async with serve(app, "127.0.0.1", 0) as srv:
        yield srv


def sounding(call: ClientCall) -> bytes:
    """What the caller heard from the first non-silent frame on."""
    pcm = bytes(call.received)
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    loud = [np.abs(np.frombuffer(f, "<i2")).max() > 500 for f in frames]
    first = loud.index(True) if True in loud else len(frames)
    return b"".join(frames[first:])


def silent_frames(pcm: bytes) -> int:
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    return sum(np.abs(np.frombuffer(f, "<i2")).max() < 100 for f in frames)


def frame_rate(call: ClientCall, since: float) -> float:
    times = [t for t in call.audio_times if t >= since]
    return (len(times) - 1) / (times[-1] - times[0])


async def test_a_dns_streams_tone_reaches_callers_at_50_frames_per_second_with_no_gaps() -> None:
    async with station() as b, dns_app_server(b.server.address[1]) as srv:
        calls = [await connect("127.0.0.1", srv.port) for _ in range(2)]
        await asyncio.sleep(5.0)
        for c in calls:
            await c.hangup()
    fmt = AudioFormat(8000)
    for c in calls:
        heard = sounding(c)
        assert len(heard) > 3 * 16000  # more than 3 s of the tone (1 s buffer fill first)
        assert silent_frames(heard) == 0  # no gap once it started
        assert abs(dominant_frequency(heard, fmt) - 440) < 2
        assert tone_snr(heard, fmt, 440) > 20
        assert frame_rate(c, c.audio_times[0] + 1.0) == pytest.approx(50.0, abs=0.5)
        assert not c.violations
        assert c.end_reason == "caller hung up"  # the server never dropped it
    assert srv.handler.sessions == 1  # type: ignore[attr-defined]  # one listener for both


async def test_a_dns_outage_is_silence_in_the_call_never_a_dropped_call() -> None:
    dns_port = free_port()
    b_cm = station(dns_port, epoch=1)
    await b_cm.__aenter__()
    async with dns_app_server(dns_port) as srv:
        call = await connect("127.0.0.1", srv.port)
        await asyncio.sleep(3.0)
        await b_cm.__aexit__(None, None, None)  # the AoDNS station goes away
        loop = asyncio.get_running_loop()
        down = loop.time()
        await asyncio.sleep(5.0)
        assert not call.ended  # still up, hearing silence
        up = loop.time()
        async with station(dns_port, epoch=2):  # back (a new run)
            await asyncio.sleep(4.5)
            assert not call.ended
        await call.hangup()
    times = np.array(call.audio_times)
    assert frame_rate(call, times[0] + 1.0) == pytest.approx(50.0, abs=0.5)  # throughout
    pcm = bytes(call.received)
    # (frames are 320 bytes but for a rare short one, so frame index x 320 is the position to
    # within a frame or two: the windows stay clear of the edges)
    i_down = int(np.searchsorted(times, down + 2.5))  # (the buffer plays out first)
    i_up = int(np.searchsorted(times, up - 0.5))
    assert i_up - i_down > 80
    assert silent_frames(pcm[i_down * FRAME : i_up * FRAME]) == i_up - i_down  # silence
    after = pcm[-3 * 16000 :]
    assert abs(dominant_frequency(after, AudioFormat(8000)) - 440) < 2  # the tone is back
    assert srv.handler.sessions >= 1  # type: ignore[attr-defined]


def test_app_spec_options_and_errors() -> None:
    settings, server = parse_app_spec("music.example.com,server=127.0.0.1:5053,stream=jazz")
    assert (settings.zone, settings.stream, server) == (
        "music.example.com",
        "jazz",
        ("127.0.0.1", 5053),
    )
    settings, _ = parse_app_spec("m.example.com,server=127.0.0.1:53,key=s3cret,target=2")
    assert settings.passphrase == "s3cret" and settings.target_seconds == 2
    for bad in ("m.example.com,speed=2", "m.example.com,stream", "m.example.com,target=x",
                "bad zone!,server=1.2.3.4:5", "m.example.com,stream=no.dots"):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_app_spec(bad)
    with pytest.raises(ConfigError):
        make_app("dns:")


def test_cli_serve_with_a_bad_dns_app_is_a_clear_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "audionet", "audiosocket", "serve", "--app", "dns:x.example.com,speed=9"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "dns:ZONE" in done.stderr and "Traceback" not in done.stderr


async def test_a_call_relayed_through_dns_into_another_call_ends_with_it() -> None:
    """Caller A -> call station (its stream) -> DNS -> dns: app -> caller B; A hangs up, B too."""
    from audionet.audio.sources import ToneSource
    from audionet.bridges.call_dns import CallStation

    opts = ServeOptions("calls.example.com", port=0, source=f"audiosocket:127.0.0.1:{free_port()}")
    st = CallStation(opts, per_call=True)
    ready = asyncio.Event()
    running = asyncio.create_task(st.run(ready))
    await ready.wait()
    try:
        host, port = st.audiosocket_address
        a = await connect(host, port, wait_for_server=False, record=False)
        a.send_audio(ToneSource(600, AudioFormat(8000), amplitude=0.3).read(8000 * 30))
        spec = f"dns:calls.example.com,server=127.0.0.1:{st.server.address[1]},stream={a.uuid},target=1"
        async with serve(make_app(spec), "127.0.0.1", 0) as srv:
            b = await connect("127.0.0.1", srv.port)
            await asyncio.sleep(3.5)
            await a.hangup()
            await asyncio.wait_for(b.wait_closed(), 10)  # B is hung up when A's stream ends
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert b.ended and "server" in b.end_reason
    heard = sounding(b)
    assert abs(dominant_frequency(heard, AudioFormat(8000)) - 600) < 3
    assert tone_snr(heard[:-8000], AudioFormat(8000), 600) > 20
