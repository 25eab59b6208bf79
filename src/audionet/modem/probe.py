"""``audionet modem probe``: measure an OFDM line in both directions and pick its modes.

A probe is a few pings. Each ping request's preamble and pilots let the far station measure our
signal carrier by carrier; its reply carries that measurement back in the PHY header (per carrier
group, :class:`~audionet.modem.phy.ofdm.header.Feedback`), and its own preamble and pilots let us
measure the far station's signal carrier by carrier. So after one exchange both directions are
known, and :func:`~audionet.modem.phy.ofdm.adapt.choose` picks a bit loading and code rate for
each with the stated margin. The link does the same on every frame it sends; a probe just shows it.

:func:`probe_simulated` runs two stations on the channel simulator in virtual time;
``audionet modem probe --audio ...`` runs one station against a ``modem listen`` over a real line
(:func:`report` turns its PHY's state into the same report).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.errors import ConfigError
from audionet.modem.apps import PingClient
from audionet.modem.backends import SimulatedCable
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.phy.ofdm import OfdmPhy
from audionet.modem.phy.ofdm.adapt import choose, group_snr_db
from audionet.modem.phy.ofdm.mode import Mode
from audionet.modem.phy.ofdm.profile import OfdmProfile
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.proto.ping import Pinger

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Direction:
    """One direction of a line: SNR per carrier group (dB), the mode chosen for it."""

    name: str
    group_snr_db: tuple[float, ...]
    mode: Mode | None
    carrier_snr_db: F64 | None = None  #: per used carrier, where measured locally


@dataclass(frozen=True, slots=True)
class ProbeReport:
    profile: OfdmProfile
    margin: float
    outbound: Direction  #: our signal as the peer measured it
    inbound: Direction  #: the peer's signal as we measured it
    pings: int  #: replies received

    def lines(self) -> list[str]:
        """The report as text: a table of groups and a line per direction."""
        p = self.profile
        out = [
            f"{p.name} at {p.sample_rate} Hz, margin {self.margin:g} dB, {self.pings} ping replies",
            "",
            "| carriers (Hz) | SNR out (dB) | bits out | SNR in (dB) | bits in |",
            "|---|---:|---:|---:|---:|",
        ]
        for g, (lo, hi) in enumerate(p.layout.group_bounds):
            cells = []
            for d in (self.outbound, self.inbound):
                snr = f"{d.group_snr_db[g]:.0f}" if d.group_snr_db else "-"
                bits = str(d.mode.loading[g]) if d.mode else "-"
                cells += [snr, bits]
            out.append(f"| {lo:.0f}-{hi:.0f} | " + " | ".join(cells) + " |")
        out.append("")
        for d in (self.outbound, self.inbound):
            if d.mode is None:
                out.append(f"{d.name}: no mode fits (nothing measured, or the line is too poor)")
            else:
                rate = d.mode.bit_rate(p) / 1000
                out.append(f"{d.name}: {d.mode} ({d.mode.describe()}), {rate:.1f} kbit/s of data")
        return out


def report(phy: OfdmPhy, margin: float | None = None, pings: int = 0) -> ProbeReport:
    """What ``phy``'s link state knows about both directions."""
    p = phy.profile
    m = phy.link.margin if margin is None else margin
    peer = phy.link.peer
    out_snr = tuple(peer.feedback.snr_db) if peer is not None else ()
    outbound = Direction(
        "out (we send, the peer measured)", out_snr, choose(p, out_snr, m) if out_snr else None
    )
    snr = phy.link.snr
    if snr is not None:
        groups = tuple(float(v) for v in group_snr_db(p, snr))
        carriers = 10.0 * np.log10(snr)
        inbound = Direction(
            "in (the peer sends, we measured)", groups, choose(p, groups, m), carriers
        )
    else:
        inbound = Direction("in (the peer sends, we measured)", (), None)
    return ProbeReport(p, m, outbound, inbound, pings)


def probe_simulated(
    channel: str, phy: str = "ofdm", margin: float = 3.0, seed: int = 0, count: int = 3
) -> ProbeReport:
    """Probe a simulated line: station 1 pings station 2 ``count`` times."""
    if phy not in ("ofdm", "ofdm-phone"):
        raise ConfigError("probe measures OFDM lines: use --phy ofdm or ofdm-phone")
    ours, theirs = OfdmPhy(phy, margin=margin), OfdmPhy(phy, margin=margin)
    app = PingClient(Pinger(Address(2, 0), count=count, interval=0.5))
    a = Station(ModemEndpoint(ConnectionHost(1, seed=seed), ours), [app])
    b = Station(ModemEndpoint(ConnectionHost(2, seed=seed + 1), theirs), [])
    SimulatedCable(a, b, channel=channel, seed=seed).run(until=lambda: app.done, seconds=120)
    return report(ours, margin, len(app.replies))
