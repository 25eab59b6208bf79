"""The bridges' part of ``audionet demo``: the three bridges on loopback, each checked.

1. **call -> DNS**: an Asterisk-like caller says a 440 Hz tone for 3 s to the call station
   (``dns serve --source audiosocket:...``); a DNS listener of the call's stream hears 440 Hz and
   sees the stream end when the caller hangs up.
2. **DNS -> call**: an AoDNS station streams a 440 Hz tone; a caller of the ``dns:`` app hears it
   at 50 frames a second with no gap.
3. **file over a call**: two modem stations, both AudioSocket servers, move a 16 kB file through
   ``audiosocket bridge --codec ulaw --loss 0.01 --jitter 20`` with the call's default PHY
   (``ofdm-phone``, in its own 8 kB frames), SHA-256 checked.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.audio.format import AudioFormat
from audionet.audio.sinks import Sink
from audionet.audio.sources import ToneSource
from audionet.audiosocket.apps import make_app
from audionet.audiosocket.client import connect
from audionet.audiosocket.server import serve
from audionet.bridges.call_dns import CallStation
from audionet.bridges.modem_call import phone_phy
from audionet.bridges.relay import Impairments
from audionet.bridges.transfer import transfer_over_call
from audionet.demo import DemoRow
from audionet.dns.broadcast import Broadcaster, ServeOptions
from audionet.dns.client import DnsFetcher, Player
from audionet.dns.localresolver import free_port
from audionet.dns.proto.client import ClientSettings
from audionet.modem.proto.arq import ArqConfig

SYSTEM = "bridges"
PHONE = AudioFormat(8000)
FILE_KB = 16  #: the file over a call


class _Collect(Sink):
    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        self.pcm = bytearray()

    def write(self, pcm: bytes) -> None:
        self.pcm += pcm


async def _call_to_dns() -> DemoRow:
    opts = ServeOptions("calls.example.com", port=0, source=f"audiosocket:127.0.0.1:{free_port()}")
    station = CallStation(opts, per_call=True, notify=lambda line: None)
    ready = asyncio.Event()
    running = asyncio.create_task(station.run(ready))
    await ready.wait()
    sinks: list[_Collect] = []
    try:
        host, port = station.audiosocket_address
        call = await connect(host, port, wait_for_server=False, record=False)
        call.send_audio(ToneSource(440, PHONE, amplitude=0.3).read(3 * PHONE.rate))
        settings = ClientSettings(opts.zone, stream=str(call.uuid), target_seconds=1.0)
        fetcher = DnsFetcher("127.0.0.1", station.server.address[1])

        def sink(fmt: AudioFormat) -> Sink:
            sinks.append(_Collect(fmt))
            return sinks[-1]

        player = Player(settings, fetcher, sink)
        playing = asyncio.create_task(player.run(give_up=10))
        await call.drain()
        await call.hangup()
        report = await asyncio.wait_for(playing, 15)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    pcm = bytes(sinks[0].pcm) if sinks else b""
    fmt = sinks[0].format if sinks else AudioFormat(16000)
    heard = pcm[: len(pcm) - fmt.rate]
    freq, snr = dominant_frequency(heard, fmt), tone_snr(heard, fmt, 440)
    ok = report.ended and abs(freq - 440) < 2 and snr > 20 and report.underruns == 0
    return DemoRow(
        SYSTEM,
        "call -> DNS: a caller's 3 s tone, heard by a DNS listener",
        f"{freq:.0f} Hz, SNR {snr:.0f} dB, {report.seconds:.1f} s played, "
        f"{'stream ended with the call' if report.ended else 'NO END'}",
        ok,
    )


async def _dns_to_call() -> DemoRow:
    b = Broadcaster(ServeOptions("radio.example.com", port=0))
    src = ToneSource(440, b.codec.format)
    b.prefill(src, 3.0)
    ready = asyncio.Event()
    running = asyncio.create_task(b.run(src, ready))
    await ready.wait()
    try:
        spec = f"dns:radio.example.com,server=127.0.0.1:{b.server.address[1]},target=1"
        async with serve(make_app(spec), "127.0.0.1", 0) as srv:
            call = await connect("127.0.0.1", srv.port)
            await asyncio.sleep(3.0)
            await call.hangup()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    pcm = bytes(call.received)
    frames = [pcm[i : i + 320] for i in range(0, len(pcm) - 319, 320)]
    loud = [bool(np.abs(np.frombuffer(f, "<i2")).max() > 500) for f in frames]
    tone = frames[loud.index(True) :] if True in loud else []
    gaps = sum(not x for x in loud[len(loud) - len(tone) :])
    t = call.audio_times
    fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0
    freq = dominant_frequency(b"".join(tone), PHONE) if tone else 0.0
    ok = len(tone) > 75 and gaps == 0 and abs(freq - 440) < 2 and 49.5 < fps < 50.5
    return DemoRow(
        SYSTEM,
        "DNS -> call: a caller hears an AoDNS stream",
        f"{freq:.0f} Hz for {len(tone) * 0.02:.1f} s, {gaps} gaps, {fps:.1f} frames/s",
        ok,
    )


async def _file_over_call(workdir: Path) -> DemoRow:
    src = workdir / "photo.bin"
    src.write_bytes(os.urandom(FILE_KB * 1024))
    phy = phone_phy()  # the default on a call: ofdm-phone
    res = await transfer_over_call(
        src,
        workdir / "call",
        impairments=Impairments("ulaw", jitter=0.02, loss=0.01),
        phy=phy,
        config=ArqConfig(max_payload=getattr(phy, "suggested_payload", 256)),  # its own frame
        max_seconds=60,
    )
    (leg,) = res.legs
    return DemoRow(
        SYSTEM,
        f"file over a call: {FILE_KB} kB with {phy.name} through the bridge in mu-law, "
        "1% loss, 20 ms jitter",
        f"{'SHA-256 matches' if leg.ok else 'FAILED: ' + str(res.error)}, "
        f"{leg.goodput / 1000:.2f} kbit/s, {leg.seconds:.1f} s",
        res.ok,
    )


async def _main(workdir: Path) -> list[DemoRow]:
    return [await _call_to_dns(), await _dns_to_call(), await _file_over_call(workdir)]


def run(workdir: Path) -> list[DemoRow]:
    return asyncio.run(_main(workdir))
