"""``audionet audiosocket bridge`` over real loopback sockets, between real AudioSocket servers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.audio.format import AudioFormat
from audionet.audiosocket import AudioSocketServer, Call, serve
from audionet.audiosocket.apps import ToneApp
from audionet.audiosocket.proto import Audio, Hangup, Kind, encode_audio
from audionet.bridges.bridge import Bridge, bridge
from audionet.bridges.relay import Impairments
from audionet.errors import AudioError


class Recorder:
    """A call-API handler: plays a tone into each call and keeps what each call heard."""

    def __init__(self, freq: float) -> None:
        self.freq = freq
        self.heard: list[bytearray] = []
        self.ends: list[object] = []

    async def handle(self, call: Call) -> None:
        from audionet.audio.sources import ToneSource

        heard = bytearray()
        self.heard.append(heard)
        play = asyncio.create_task(call.play(ToneSource(self.freq, call.format, amplitude=0.3)))
        try:
            async for ev in call:
                if isinstance(ev, Audio):
                    heard += ev.pcm
                else:
                    self.ends.append(ev)
        finally:
            play.cancel()


@asynccontextmanager
async def server(recorder: Recorder) -> AsyncIterator[AudioSocketServer]:
    async with serve(recorder.handle, "127.0.0.1", 0) as srv:
        yield srv


async def test_audio_crosses_both_ways_through_mu_law() -> None:
    a, b = Recorder(440), Recorder(1000)
    async with server(a) as sa, server(b) as sb:
        res = await bridge(
            ("127.0.0.1", sa.port), ("127.0.0.1", sb.port), Impairments("ulaw"), seconds=3.0
        )
        await asyncio.sleep(0.2)
    fmt = AudioFormat(8000)
    heard_by_b, heard_by_a = bytes(b.heard[0]), bytes(a.heard[0])
    assert abs(dominant_frequency(heard_by_b[1600:], fmt) - 440) < 2
    assert abs(dominant_frequency(heard_by_a[1600:], fmt) - 1000) < 2
    assert tone_snr(heard_by_b[1600:], fmt, 440) > 30  # mu-law's own noise only
    assert res.error is None
    assert all(isinstance(e, Hangup) for e in a.ends + b.ends)  # an ordinary hangup each
    for st in res.stats:
        assert st.frames_in == st.frames_out and st.lost == 0


async def test_two_of_our_servers_joined_by_the_bridge_run_at_50_frames_per_second() -> None:
    """Nothing in the bridge keeps time: the rate is the servers' own (SPEC §4: a clock that
    follows the peer's phase runs at 80-100 frames/s against such a peer)."""
    async with (
        serve(ToneApp(440), "127.0.0.1", 0) as sa,
        serve(ToneApp(1000), "127.0.0.1", 0) as sb,
    ):
        res = await bridge(("127.0.0.1", sa.port), ("127.0.0.1", sb.port), seconds=5.0)
    for st in res.stats:
        assert st.first is not None
        rate = st.frames_per_second(since=st.first + 1.0)
        assert rate == pytest.approx(50.0, abs=1.0), f"{rate:.1f} frames/s"
        assert st.frames_in == pytest.approx(250, abs=8)


async def test_bad_input_on_one_leg_ends_that_leg_and_the_other_hangs_up_cleanly() -> None:
    good = Recorder(440)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(19)  # the UUID
        for _ in range(10):
            writer.write(encode_audio(bytes(320)))
            await asyncio.sleep(0.02)
        writer.write(bytes([Kind.DTMF, 0, 1]) + b"5")  # Asterisk drops a call for this
        await reader.read()

    bad = await asyncio.start_server(garbage, "127.0.0.1", 0)
    bad_port = bad.sockets[0].getsockname()[1]
    async with server(good) as sg:
        res = await bridge(("127.0.0.1", sg.port), ("127.0.0.1", bad_port), seconds=10.0)
        assert res.seconds < 3
        err = res.error
        assert err is not None and err.leg == 1 and "0x03" in err.reason
        await asyncio.sleep(0.2)
        assert good.ends and isinstance(good.ends[-1], Hangup)  # the good server: a plain hangup
        # ... and it goes on serving: a second bridge to it works.
        again = Recorder(1000)
        async with server(again) as s2:
            res2 = await bridge(("127.0.0.1", sg.port), ("127.0.0.1", s2.port), seconds=1.0)
        assert res2.error is None and res2.stats[0].frames_in > 30
    bad.close()
    await bad.wait_closed()


async def test_a_silent_server_is_hung_up_like_asterisk_does() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    quiet = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = quiet.sockets[0].getsockname()[1]
    async with serve(ToneApp(440), "127.0.0.1", 0) as sa:
        b = Bridge(("127.0.0.1", sa.port), ("127.0.0.1", port), idle_timeout=0.5)
        await b.connect()
        res = await b.run(5.0)
    assert res.seconds < 2
    assert any(e.leg == 1 and "no audio" in e.reason for e in res.ends)
    quiet.close()
    await quiet.wait_closed()


async def test_no_server_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AudioError, match="leg 1: no AudioSocket server"):
        await bridge(("127.0.0.1", port), ("127.0.0.1", port), seconds=1)


def test_cli_bridges_two_servers_and_reports() -> None:
    async def main() -> subprocess.CompletedProcess[str]:
        async with (
            serve(ToneApp(440), "127.0.0.1", 0) as sa,
            serve(ToneApp(1000), "127.0.0.1", 0) as sb,
        ):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "audionet", "audiosocket", "bridge",
                f"127.0.0.1:{sa.port}", f"127.0.0.1:{sb.port}",
                "--codec", "alaw", "--loss", "0.1", "--jitter", "20", "--seconds", "1.5", "--seed", "1",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate()
            assert proc.returncode is not None
            return subprocess.CompletedProcess([], proc.returncode, out.decode(), err.decode())

    done = asyncio.run(main())
    assert done.returncode == 0, done.stderr
    # lost frames are concealed by default
    assert "leg 1 -> leg 2:" in done.stderr and "lost (plc)" in done.stderr
    assert "bridged 1.5 s (alaw)" in done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "audionet", "audiosocket", "bridge", "nowhere", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode != 0 and "HOST:PORT" in bad.stderr and "Traceback" not in bad.stderr
