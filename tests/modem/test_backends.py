"""Backends: WAV files through an independent channel simulation, the TCP virtual cable in real
time, and the sound card's clear error without PortAudio."""

from __future__ import annotations

import asyncio
import random
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from audionet.audio.format import AudioFormat, to_float
from audionet.audio.wav import read_wav, write_wav
from audionet.errors import AudioError, ConfigError, DependencyError
from audionet.modem.apps import FileClient, FileServer, PingClient
from audionet.modem.backends import decode_wav, encode_wav, make_channel, to_pcm
from audionet.modem.channel import PROFILES, simulate
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.phy import get_phy
from audionet.modem.proto.frame import AUDIONET, LEGACY, Address, Flags, Frame, FrameProfile
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.proto.ping import Pinger
from audionet.modem.realtime import DeviceAudio, TcpCable, open_audio, run_realtime


def frames_for(data: bytes, size: int, profile: FrameProfile) -> list[Frame]:
    modulo = 256 if profile is LEGACY else 0x10000
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    return [
        Frame(
            Address(1, 0), Address(2, 0), i % modulo, Flags.BEG if i == 0 else Flags.NONE, payload=c
        )
        for i, c in enumerate(chunks)
    ]


@pytest.mark.parametrize("channel", ["clean", "cable"])
@pytest.mark.parametrize("legacy", [False, True])
def test_encoded_frames_survive_an_independent_channel(
    tmp_path: Path, channel: str, legacy: bool
) -> None:
    profile = LEGACY if legacy else AUDIONET
    phy = get_phy("manchester", legacy=legacy)
    data = random.Random(2).randbytes(3000)
    frames = frames_for(data, 256, profile)
    tx = tmp_path / "tx.wav"
    encode_wav(frames, tx, phy, profile, eight_bit=legacy)
    fmt, pcm = read_wav(tx)
    assert (fmt.rate, fmt.sample_width) == (44100, 1 if legacy else 2)
    # the simulator sees the file as audio, whole, as another program would
    rx = simulate(to_float(pcm), fmt.rate, PROFILES[channel], seed=11)
    write_wav(tmp_path / "rx.wav", AudioFormat(fmt.rate), to_pcm(rx))
    result = decode_wav(tmp_path / "rx.wav", phy, profile)
    assert result.bad == 0
    assert result.frames == frames
    assert b"".join(f.payload for f in result.frames) == data


def test_decode_refuses_a_wrong_rate(tmp_path: Path) -> None:
    write_wav(tmp_path / "x.wav", AudioFormat(8000), bytes(1600))
    with pytest.raises(AudioError, match="8000 Hz"):
        decode_wav(tmp_path / "x.wav", get_phy("manchester"))


def test_make_channel_names() -> None:
    wire = make_channel(None, 44100, 0)
    x = np.ones(10, dtype=np.float32)
    assert wire.process(x) is x
    with pytest.raises(Exception, match="cable"):
        make_channel("nope", 44100, 0)


def test_device_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if not installed
    with pytest.raises(DependencyError, match="audionet\\[device\\]"):
        DeviceAudio(44100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def station(host: int, apps: list[object]) -> Station:
    phy = get_phy("manchester")
    return Station(ModemEndpoint(ConnectionHost(host, seed=host), phy), apps)  # type: ignore[arg-type]


async def test_virtual_cable_between_two_stations_in_real_time(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "srv").mkdir()
    data = random.Random(5).randbytes(600)
    (tmp_path / "note.bin").write_bytes(data)
    server = FileServer(tmp_path / "srv")
    client = FileClient(Address(2, 21), "note.bin", tmp_path, local=tmp_path / "note.bin")
    pinger = PingClient(Pinger(Address(2, 0), count=2, interval=0.3))
    a, b = station(1, [client, pinger]), station(2, [server])

    serving = asyncio.create_task(
        TcpCable.serve("127.0.0.1", port, make_channel("cable", 44100, 1))
    )
    await asyncio.sleep(0.05)
    cable_a = await TcpCable.connect("127.0.0.1", port, make_channel("cable", 44100, 2))
    cable_b = await serving
    done = asyncio.Event()

    async def serve_b() -> None:
        await run_realtime(b, cable_b, until=done.is_set)

    task_b = asyncio.create_task(serve_b())
    try:
        assert await asyncio.wait_for(run_realtime(a, cable_a), 30)
    finally:
        done.set()
        await task_b
        await cable_a.close()
        await cable_b.close()
    assert client.ok, client.error
    assert (tmp_path / "srv" / "note.bin").read_bytes() == data
    stats = pinger.pinger.stats()
    assert stats.received == 2 and stats.min is not None and 0.05 < stats.min < 1.0


async def test_connecting_to_no_cable_is_a_clear_error() -> None:
    with pytest.raises(AudioError, match="modem listen"):
        await open_audio(f"cable:127.0.0.1:{free_port()}", 44100, None, serve=False)
    with pytest.raises(ConfigError, match="cable:HOST:PORT"):
        await open_audio("cable:nowhere", 44100, None, serve=False)
    with pytest.raises(ConfigError, match="cable:HOST:PORT"):
        await open_audio("cable:127.0.0.1:\u00b9", 44100, None, serve=False)  # isdigit(), not int()


def test_legacy_stations_answer_pings_in_the_original_format() -> None:
    """The original's ping (protocol 1, echoed with ACK) works on the legacy profile and line."""
    from audionet.modem.backends import SimulatedCable

    phy = get_phy("manchester", legacy=True)
    app = PingClient(Pinger(Address(2, 0), count=3, interval=0.3))
    a = Station(ModemEndpoint(ConnectionHost(1), phy, LEGACY), [app])
    b = Station(ModemEndpoint(ConnectionHost(2), phy, LEGACY), [])
    assert SimulatedCable(a, b, channel="cable").run(until=lambda: app.done, seconds=30)
    assert app.pinger.stats().received == 3
    assert b.endpoint.stats.frames_good == 3 and a.endpoint.stats.frames_good == 3


def test_file_client_names_a_refused_connection(tmp_path: Path) -> None:
    from audionet.modem.backends import SimulatedCable

    (tmp_path / "f.bin").write_bytes(b"x")
    client = FileClient(Address(2, 99), "f.bin", tmp_path, local=tmp_path / "f.bin")
    a, b = station(1, [client]), station(2, [FileServer(tmp_path / "srv")])  # listens on 21
    assert SimulatedCable(a, b, channel=None).run(until=lambda: client.done, seconds=30)
    assert not client.ok and "refused" in str(client.error)
