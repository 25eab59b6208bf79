"""A file transfer between two simulated stations on a simulated cable, in virtual time.

Used by ``audionet modem loopback``, the demo, the throughput benchmark and the tests: station 1
sends a file to station 2's file server through a PHY (Manchester, OFDM) and the channel simulator, and
the result says how long it took in air time, how many frames went out and whether it arrived whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audionet.errors import ConfigError
from audionet.modem.apps import FILE_PORT, FileClient, FileServer
from audionet.modem.backends import SimulatedCable
from audionet.modem.legacyapps import LegacyFileClient, LegacyFileServer
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.phy import Phy, get_phy
from audionet.modem.proto.arq import ArqConfig
from audionet.modem.proto.files import FileReceived
from audionet.modem.proto.frame import AUDIONET, LEGACY, Address
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.proto.legacy import LegacyConfig
from audionet.modem.proto.legacyhost import LegacyHost


@dataclass(frozen=True, slots=True)
class LoopbackResult:
    """What one simulated transfer measured."""

    size: int  #: file bytes
    seconds: float  #: air time until the receiver had the whole file, verified
    ok: bool  #: arrived, SHA-256 verified, and equal to the original
    frames_sent: int  #: by both stations
    frames_bad: int  #: heard but failed the frame checksum
    retransmissions: int
    error: str | None

    @property
    def goodput(self) -> float:
        """File bits per second of air time."""
        return 8 * self.size / self.seconds if self.seconds > 0 and self.ok else 0.0


def run_loopback(
    source: Path,
    output: Path,
    *,
    channel: str | None = "cable",
    phy: str = "manchester",
    mode: str = "auto",
    margin: float | None = None,
    samples_per_bit: float = 8,
    sample_rate: int | None = None,
    config: ArqConfig | LegacyConfig | None = None,
    seed: int = 0,
    latency: float = 0.0,
    half_duplex: bool = False,
    max_seconds: float = 24 * 3600.0,
    progress: Callable[[int, int, float], None] | None = None,
    legacy: bool = False,
) -> LoopbackResult:
    """Send ``source`` over a simulated cable; the receiver stores it as ``output``.

    ``latency`` delays each direction (sound-card buffers; real ones add 50-500 ms);
    ``half_duplex`` puts both stations on one shared line with carrier sense.
    ``progress(done, total, air_seconds)`` is called as data arrives. ``phy`` names the physical
    layer (``manchester``, ``ofdm``, ``ofdm-phone``); ``mode`` is the OFDM mode (``auto`` adapts).
    Without ``config``, frames are as large as the PHY suggests (:func:`default_config`).
    ``legacy``: both stations speak the original's protocol (Manchester frames and line,
    stop-and-wait, ``FTP_*``; ``config`` a :class:`LegacyConfig`), full duplex only.
    """
    if legacy:
        if half_duplex:
            raise ConfigError("the original's protocol has no carrier sense: no --half-duplex")
        if config is not None and not isinstance(config, LegacyConfig):
            raise ConfigError("a legacy loopback takes a LegacyConfig")
    elif isinstance(config, LegacyConfig):
        raise ConfigError("a LegacyConfig needs legacy=True")
    phys = [
        make_phy(phy, sample_rate, samples_per_bit, mode, legacy=legacy, margin=margin)
        for _ in range(2)
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    size = source.stat().st_size
    cable: SimulatedCable | None = None

    def on_progress(name: str, done: int, total: int) -> None:
        if progress is not None and cable is not None:
            progress(done, total, cable.now)

    server: FileServer | LegacyFileServer
    client: FileClient | LegacyFileClient
    hd = half_duplex
    if legacy:
        lconfig = config if isinstance(config, LegacyConfig) else LegacyConfig()
        server = LegacyFileServer(output.parent, FILE_PORT)
        client = LegacyFileClient(Address(2, FILE_PORT), output.name, source.parent, local=source)
        a = Station(ModemEndpoint(LegacyHost(1, lconfig, seed=seed), phys[0], LEGACY), [client])
        b = Station(ModemEndpoint(LegacyHost(2, lconfig, seed=seed + 1), phys[1], LEGACY), [server])
    else:
        aconfig = config if isinstance(config, ArqConfig) else default_config(phys[0])
        server = FileServer(output.parent, progress=on_progress)
        client = FileClient(Address(2, FILE_PORT), output.name, source.parent, local=source)
        a = Station(
            ModemEndpoint(ConnectionHost(1, aconfig, seed=seed, half_duplex=hd), phys[0], AUDIONET),
            [client],
        )
        b = Station(
            ModemEndpoint(
                ConnectionHost(2, aconfig, seed=seed + 1, half_duplex=hd), phys[1], AUDIONET
            ),
            [server],
        )
    cable = SimulatedCable(a, b, channel=channel, seed=seed, latency=latency, duplex=not hd)
    arrived: list[float] = []

    def until() -> bool:
        if legacy and progress is not None and client.connection is not None:
            progress(client.connection.stats.bytes_acked, size, cable.now)  # no sizes in FTP_SEND
        if not arrived and any(isinstance(e, FileReceived) for e in server.received):
            arrived.append(cable.now)
        return bool(arrived) or client.done

    cable.run(until=until, seconds=max_seconds)
    ok = bool(arrived) and (
        output.exists() and hashlib.sha256(output.read_bytes()).digest() == _sha(source)
    )
    retx = client.connection.stats.retransmissions if client.connection is not None else 0
    error = client.error
    if not arrived and error is None:
        error = f"gave up after {cable.now:.0f} s of air time"
    return LoopbackResult(
        size=size,
        seconds=arrived[0] if arrived else cable.now,
        ok=ok,
        frames_sent=a.endpoint.stats.frames_sent + b.endpoint.stats.frames_sent,
        frames_bad=a.endpoint.stats.frames_bad + b.endpoint.stats.frames_bad,
        retransmissions=retx,
        error=error,
    )


def make_phy(
    name: str = "manchester",
    sample_rate: int | None = None,
    samples_per_bit: float = 8,
    mode: str = "auto",
    legacy: bool = False,
    margin: float | None = None,
    amplitude: float | None = None,
) -> Phy:
    """A station's PHY by name, with the options that apply to it (``legacy`` implies
    Manchester; ``mode`` and ``margin`` are OFDM's; ``amplitude`` Manchester's peak level, by
    default the PHY's own)."""
    if name == "manchester" or legacy:
        return get_phy(
            "manchester",
            sample_rate=sample_rate or 44100,
            samples_per_bit=samples_per_bit,
            legacy=legacy,
            amplitude=amplitude,
        )
    if margin is None:
        return get_phy(name, sample_rate=sample_rate, mode=mode)
    return get_phy(name, sample_rate=sample_rate, mode=mode, margin=margin)


def default_config(phy: Phy) -> ArqConfig:
    """Link settings for ``phy``: its suggested frame size (512 bytes for Manchester)."""
    return ArqConfig(max_payload=int(getattr(phy, "suggested_payload", 512)))


def _sha(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()
