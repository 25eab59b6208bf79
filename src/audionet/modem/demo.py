"""The modem's part of ``audionet demo``: file transfers, ping and WAV frames on simulated lines."""

from __future__ import annotations

import random
from pathlib import Path

from audionet.audio.format import AudioFormat, to_float
from audionet.audio.wav import read_wav, write_wav
from audionet.demo import DemoRow
from audionet.modem.apps import PingClient
from audionet.modem.backends import SimulatedCable, decode_wav, encode_wav, to_pcm
from audionet.modem.channel import PROFILES, simulate
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.loopback import run_loopback
from audionet.modem.phy import get_phy
from audionet.modem.proto.frame import LEGACY, Address, Flags, Frame
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.proto.ping import Pinger


def run(workdir: Path) -> list[DemoRow]:
    rows: list[DemoRow] = []
    src = workdir / "modem-in.bin"
    src.write_bytes(random.Random(2024).randbytes(20_000))
    for channel, size in (("cable", 20_000), ("cable-hard", 10_000)):
        part = workdir / f"modem-in-{size}.bin"
        part.write_bytes(src.read_bytes()[:size])
        r = run_loopback(part, workdir / f"modem-out-{channel}.bin", channel=channel)
        rows.append(
            DemoRow(
                "modem",
                f"send a {size // 1000} kB file over '{channel}' with Manchester (virtual time)",
                f"{r.goodput / 1000:.2f} kbit/s, {r.seconds:.0f} s air, "
                f"{r.retransmissions} resent, SHA-256 {'ok' if r.ok else 'BAD'}",
                r.ok and r.goodput >= 3000,
            )
        )
    rows += _ofdm(workdir)
    rows.append(_ping())
    rows.append(_legacy_wav(workdir))
    return rows


def _ofdm(workdir: Path) -> list[DemoRow]:
    """OFDM transfers with rate adaptation: a cable, a hard cable and a telephone line."""
    rows = []
    src = workdir / "modem-ofdm-in.bin"
    src.write_bytes(random.Random(2025).randbytes(300_000))
    for channel, phy, goal in (
        ("cable", "ofdm", 100e3),
        ("cable-hard", "ofdm", 50e3),
        ("phone", "ofdm-phone", 14.4e3),
    ):
        r = run_loopback(src, workdir / f"modem-ofdm-out-{channel}.bin", channel=channel, phy=phy)
        rows.append(
            DemoRow(
                "modem",
                f"send a 300 kB file over '{channel}' with --phy {phy} (virtual time)",
                f"{r.goodput / 1000:.1f} kbit/s (goal {goal / 1000:g}), {r.seconds:.0f} s air, "
                f"{r.retransmissions} resent, SHA-256 {'ok' if r.ok else 'BAD'}",
                r.ok and r.goodput >= goal,
            )
        )
    return rows


def _ping() -> DemoRow:
    phy = get_phy("manchester")
    app = PingClient(Pinger(Address(2, 0), count=5, interval=0.5))
    a = Station(ModemEndpoint(ConnectionHost(1, seed=1), phy), [app])
    b = Station(ModemEndpoint(ConnectionHost(2, seed=2), phy), [])
    SimulatedCable(a, b, channel="cable").run(until=lambda: app.done, seconds=60)
    stats = app.pinger.stats()
    return DemoRow("modem", "ping 5 times over 'cable'", stats.summary(), stats.received == 5)


def _legacy_wav(workdir: Path) -> DemoRow:
    phy = get_phy("manchester", legacy=True, amplitude=1.0)  # full scale, as its WAV backend
    data = b"Hello from the original audio-networking frame format! " * 8
    chunks = [data[i : i + 256] for i in range(0, len(data), 256)]
    frames = [
        Frame(Address(1, 0), Address(2, 0), seq, Flags.BEG | Flags.END, payload=chunk)
        for seq, chunk in enumerate(chunks)
    ]
    tx, rx = workdir / "modem-legacy-tx.wav", workdir / "modem-legacy-rx.wav"
    encode_wav(frames, tx, phy, LEGACY, eight_bit=True)
    fmt, pcm = read_wav(tx)
    write_wav(
        rx, AudioFormat(fmt.rate), to_pcm(simulate(to_float(pcm), fmt.rate, PROFILES["cable"]))
    )
    got = decode_wav(rx, phy, LEGACY)
    ok = got.frames == frames
    return DemoRow(
        "modem",
        "legacy 8-bit WAV frames through 'cable'",
        f"{len(got.frames)}/{len(frames)} frames, {got.bad} bad, bytes {'equal' if ok else 'DIFFER'}",
        ok,
    )
