"""AoDNS's part of ``audionet demo``: a 440 Hz tone served as DNS TXT records and played back.

Serves the tone on loopback (v2, then v1, then v2 encrypted), plays a few seconds with our client
straight from the server into a WAV file, and checks the dominant frequency, underruns and losses.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from audionet.audio.analysis import dominant_frequency
from audionet.audio.format import AudioFormat
from audionet.audio.sinks import WavSink
from audionet.audio.sources import ToneSource
from audionet.audio.wav import read_wav
from audionet.demo import DemoRow
from audionet.dns.broadcast import Broadcaster, ServeOptions
from audionet.dns.client import DnsFetcher, Player, PlayReport
from audionet.dns.proto.client import ClientSettings

ZONE = "demo.example.com"
#: (what, format version, passphrase, seconds played)
CASES: tuple[tuple[str, int, str | None, float], ...] = (
    ("v2 stream, 440 Hz", 2, None, 5.0),
    ("v1 (original format)", 1, None, 3.0),
    ("v2 encrypted", 2, "demo passphrase", 3.0),
)


async def _one(version: int, key: str | None, seconds: float, wav: Path) -> tuple[PlayReport, int]:
    b = Broadcaster(ServeOptions(ZONE, port=0, version=version, key=key))
    src = ToneSource(440, b.codec.format)
    b.prefill(src, 3.0)  # as if the stream had been running: a listener can start at once
    started = asyncio.Event()
    task = asyncio.create_task(b.run(src, started))
    await started.wait()
    try:
        settings = ClientSettings(ZONE, version=version, passphrase=key, target_seconds=1.0)

        def sink(fmt: AudioFormat) -> WavSink:
            return WavSink(wav, fmt)

        player = Player(settings, DnsFetcher("127.0.0.1", b.server.address[1]), sink)
        report = await player.run(seconds, give_up=15)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return report, b.metrics.total


def run(workdir: Path) -> list[DemoRow]:
    rows = []
    for what, version, key, seconds in CASES:
        wav = workdir / f"dns-v{version}{'-enc' if key else ''}.wav"
        try:
            report, served = asyncio.run(_one(version, key, seconds, wav))
            fmt, pcm = read_wav(wav)
            freq = dominant_frequency(pcm, fmt)
            ok = abs(freq - 440) < 5 and report.underruns == 0 and report.concealed == 0
            ok = ok and abs(report.seconds - seconds) < 0.1
            result = (
                f"{freq:.1f} Hz, {report.seconds:.1f} s, {report.underruns} underruns, "
                f"{report.concealed} concealed, {report.queries} queries ({served} served)"
            )
        except Exception as e:  # the demo reports failures as rows, never crashes
            ok = False
            result = f"failed: {e}"
        rows.append(DemoRow("dns", what, result, ok))
    return rows
