"""The three bridges through a real Asterisk (the vendored build), with the dialplans of
docs/bridges.md: two modem stations joined by one Asterisk call (SPEC §5), a call broadcast over
DNS, and a DNS stream heard in a call. Locally without a build these skip with the reason; under
CI they fail (tests/audiosocket/asterisk.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.audio.codecs.g711 import ulaw_decode
from audionet.audio.format import AudioFormat
from audionet.audiosocket import Audio, serve
from audionet.audiosocket.apps import make_app
from audionet.bridges.call_dns import CallStation
from audionet.bridges.modem_call import open_call_audio, phone_config, phone_phy
from audionet.dns.broadcast import ServeOptions
from audionet.dns.client import DnsFetcher, Player
from audionet.dns.localresolver import free_port
from audionet.dns.proto.client import ClientSettings
from audionet.modem.apps import FILE_PORT, FileClient, FileServer
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.proto.arq import ArqConfig
from audionet.modem.proto.files import FileReceived
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.realtime import run_realtime
from tests.audiosocket.asterisk import Asterisk, audiosocket_complaints, for_test, running
from tests.audiosocket.test_asterisk import place
from tests.dns.helpers import SinkBox, broadcast

pytestmark = pytest.mark.daemon

#: The dialplans of docs/bridges.md, as they are there (the ports and UUIDs come in as globals).
EXTENSIONS = r"""
[test]
exten => mw,1,Answer()
 same => n,Milliwatt()
exten => wait,1,Answer()
 same => n,Wait(60)

; SPEC §5: two AudioSocket servers joined by one call (docs/bridges.md writes c(slin), and
; c(ulaw) for a call through mu-law; here the codec is a global).
; channel originate Local/appleg@bridge-app/n extension calldrv@bridge
[bridge-app]
exten => appleg,1,Answer()
 same => n,AudioSocket(${APPUUID},127.0.0.1:${APPPORT})      ; leg to server A
 same => n,Hangup()
[bridge]
exten => calldrv,1,Dial(AudioSocket/127.0.0.1:${DRVPORT}/${DRVUUID}/c(${DRVCODEC}))   ; leg to server B

; A caller broadcast over DNS: audionet dns serve ZONE --source audiosocket:127.0.0.1:${TODNS}
[to-dns]
exten => 300,1,Answer()
 same => n,AudioSocket(${UUID()},127.0.0.1:${TODNS})
 same => n,Hangup()

; A DNS stream heard by the caller: audionet audiosocket serve --app dns:ZONE,... --port ${FROMDNS}
[from-dns]
exten => 400,1,Answer()
 same => n,MixMonitor(${MIXDIR}/heard.wav,t(${MIXDIR}/sent.wav))   ; (the test's recording)
 same => n,AudioSocket(${UUID()},127.0.0.1:${FROMDNS})
 same => n,Hangup()
"""


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Asterisk]:
    with running(tmp_path_factory.mktemp("asterisk"), EXTENSIONS) as ast:
        yield ast


@pytest.fixture
async def ast(asterisk: Asterisk, tmp_path: Path) -> AsyncIterator[Asterisk]:
    async with for_test(asterisk, tmp_path) as fresh:
        yield fresh


@pytest.mark.parametrize(
    ("phy_name", "codec"),
    [("manchester", "slin"), ("manchester", "ulaw"), ("ofdm-phone", "ulaw")],
)
async def test_two_modem_stations_exchange_a_file_through_one_asterisk_call(
    ast: Asterisk, tmp_path: Path, phy_name: str, codec: str
) -> None:
    """SPEC §5's dialplan: the AudioSocket() application to station A, Dial() of the channel
    driver to station B, nothing in Asterisk keeping time between them; with ``c(ulaw)`` what
    Asterisk sends to station B is mu-law (station B is told so: ``,ulaw``). Both the Manchester
    line and the telephone-band OFDM PHY."""
    src = tmp_path / "note.bin"
    src.write_bytes(os.urandom(1200))
    ports = (free_port(), free_port())
    specs = (
        f"audiosocket-listen:127.0.0.1:{ports[0]}",
        f"audiosocket-listen:127.0.0.1:{ports[1]},{codec}",  # (the Dial() leg's codec)
    )
    calls = [asyncio.create_task(open_call_audio(spec)) for spec in specs]
    for name, value in (("APPPORT", ports[0]), ("DRVPORT", ports[1]), ("DRVCODEC", codec),
                        ("APPUUID", uuid.uuid4()), ("DRVUUID", uuid.uuid4())):  # fmt: skip
        await ast.rx(f"dialplan set global {name} {value}")
    await ast.rx("channel originate Local/appleg@bridge-app/n extension calldrv@bridge")
    lines = await asyncio.wait_for(asyncio.gather(*calls), 10)
    heard: list[list[bytes]] = [[], []]
    for line, got in zip(lines, heard, strict=True):
        hear = line._heard

        def tap(ev: object, got: list[bytes] = got, hear: object = hear) -> None:
            if isinstance(ev, Audio):
                got.append(ev.pcm)
            hear(ev)  # type: ignore[operator]

        line._heard = tap  # type: ignore[method-assign]
    # each PHY's own frame size (`modem send`'s default): the file is one ofdm-phone frame
    config = phone_config(ArqConfig(max_payload=256 if phy_name == "manchester" else 8192))
    server = FileServer(tmp_path / "in", FILE_PORT)
    (tmp_path / "in").mkdir()
    client = FileClient(Address(1, FILE_PORT), "note.bin", tmp_path, local=src)
    # one PHY per station: an OFDM PHY keeps its station's link adaptation
    a = Station(ModemEndpoint(ConnectionHost(1, config), phone_phy(phy_name)), [server])
    b = Station(ModemEndpoint(ConnectionHost(2, config), phone_phy(phy_name)), [client])

    def arrived() -> bool:
        return any(isinstance(e, FileReceived) for e in server.received)

    try:
        await asyncio.wait_for(
            asyncio.gather(
                run_realtime(a, lines[0], until=arrived), run_realtime(b, lines[1], until=arrived)
            ),
            40,
        )
    finally:
        for line in lines:
            await line.close()
    assert (tmp_path / "in" / "note.bin").read_bytes() == src.read_bytes()
    assert not audiosocket_complaints(ast, allow_app_hangup_warning=True)
    # What each station heard. Through mu-law every sample is one of G.711's 256 levels; in slin
    # the modulator's own level (one-sample half-bits at 0.6 x 0.5 of full scale: 9830) arrives
    # exact. With c(ulaw) Asterisk writes mu-law to the Dial() leg's server (B), but reads that
    # server's audio as signed linear and passes it to the other leg unchanged (res_audiosocket
    # makes slin frames of kind 0x10): only the direction A -> B crosses mu-law.
    mu_levels = set(np.frombuffer(ulaw_decode(bytes(range(256))), "<i2").tolist())
    at_a, at_b = (set(np.frombuffer(b"".join(got), "<i2").tolist()) for got in heard)
    assert not at_a <= mu_levels
    assert (at_b <= mu_levels) == (codec == "ulaw")
    if phy_name == "manchester":
        assert 9830 in at_a and (9830 in at_b) == (codec == "slin")


async def test_a_caller_through_asterisk_is_broadcast_over_dns(ast: Asterisk) -> None:
    opts = ServeOptions("calls.example.com", port=0, source=f"audiosocket:127.0.0.1:{free_port()}")
    st = CallStation(opts, per_call=True)
    ready = asyncio.Event()
    running = asyncio.create_task(st.run(ready))
    await ready.wait()
    try:
        await ast.rx(f"dialplan set global TODNS {st.audiosocket_address[1]}")
        place(ast, "Local/300@to-dns/n", "mw")  # the caller: Milliwatt's 1004 Hz
        for _ in range(100):
            if st.calls:
                break
            await asyncio.sleep(0.05)
        (live,) = st.calls.values()
        box = SinkBox()
        settings = ClientSettings("calls.example.com", stream=live.name, target_seconds=1.0)
        player = Player(settings, DnsFetcher("127.0.0.1", st.server.address[1]), box)
        playing = asyncio.create_task(player.run(give_up=10))
        await asyncio.sleep(4.0)
        await ast.rx("channel request hangup all")  # the caller hangs up
        report = await asyncio.wait_for(playing, 15)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert report.ended and report.underruns == 0 and report.seconds > 2.0
    assert box.sink is not None
    pcm, fmt = box.sink.pcm, box.sink.format
    assert abs(dominant_frequency(pcm[: -fmt.rate], fmt) - 1004) < 3
    assert tone_snr(pcm[8000 : -fmt.rate], fmt, 1004) > 20
    assert not audiosocket_complaints(ast, allow_app_hangup_warning=True)


async def test_a_dns_stream_is_heard_by_a_caller_through_asterisk(
    ast: Asterisk, tmp_path: Path
) -> None:
    async with broadcast(ServeOptions("radio.example.com", port=0), prefill=3.0) as b:
        spec = f"dns:radio.example.com,server=127.0.0.1:{b.server.address[1]},target=1"
        async with serve(make_app(spec), "127.0.0.1", 0) as srv:
            await ast.rx(f"dialplan set global FROMDNS {srv.port}")
            place(ast, "Local/400@from-dns/n", "wait")
            await asyncio.sleep(6.0)
            await ast.rx("channel request hangup all")
            await ast.wait_no_channels()
    await asyncio.sleep(0.5)
    with wave.open(str(tmp_path / "sent.wav")) as w:  # what our server sent, as Asterisk got it
        rate = w.getframerate()
        sent = w.readframes(w.getnframes())
    fmt = AudioFormat(rate)
    tail = sent[-3 * rate * 2 :]  # the last 3 s: after the 1 s buffer fill
    assert abs(dominant_frequency(tail, fmt) - 440) < 2
    assert tone_snr(tail, fmt, 440) > 20
    assert not audiosocket_complaints(ast, allow_app_hangup_warning=True)
