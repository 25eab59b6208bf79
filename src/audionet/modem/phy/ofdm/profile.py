"""OFDM profiles: sample rate, FFT size, cyclic prefix, band, pilots and carrier groups.

A profile fixes everything both ends must agree on before the first frame (the mode of each frame's
payload is named in its header, so it needs no agreement). :class:`Layout` derives the carrier
allocation from a profile, once: the used carriers, the pilots among them, the data carriers, and
the *groups* of contiguous data carriers that a bit loading assigns constellations to. Every stage
(modulator, equaliser, demapper, rate adaptation) reads this one table, as liquid-dsp's
``ofdmframe`` subcarrier allocation.

Why these numbers:

* ``ofdm`` (audio cables): 2048-point FFT (23.4 Hz carriers at 48 kHz, 21.5 Hz at 44.1 kHz), so
  the cyclic prefix of 3.3 ms costs 7 % of the air time. 3.3 ms holds the impulse response of a
  sound card's DC blocker and anti-alias filters (the ``cable-hard`` line keeps 99 % of its energy
  within 0.8 ms) with room for the 10-20 distorted samples after silence. Band 300 Hz to 20 kHz.
* ``ofdm-phone`` (telephone lines, 8 kHz): 512-point FFT (15.6 Hz carriers) and 6 ms of cyclic
  prefix, for the group delay of the 300-3400 Hz band-pass (ITU-T G.712) and the codec's filters;
  band 250-3650 Hz (the edge groups are switched off by the bit loading when the line is worse).
  On a call a lost packet leaves a 20 ms hole: a frame whose one training symbol it spoilt is
  acquired on the other one (``repair_training``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.errors import ConfigError

I64 = npt.NDArray[np.int64]
C128 = npt.NDArray[np.complex128]


@dataclass(frozen=True, slots=True)
class OfdmProfile:
    """What both ends of an OFDM link share (see the module docstring for the values' reasons)."""

    name: str
    sample_rate: int
    nfft: int
    cp: int  #: cyclic prefix in samples
    band: tuple[float, float]  #: lowest and highest carrier frequency in Hz
    pilot_spacing: int  #: every n-th used carrier is a pilot
    groups: int  #: carrier groups of a bit loading (each gets one constellation)
    header_symbols: int  #: OFDM symbols of the frame header
    header_bits: int  #: bits per carrier in the header symbols (1 BPSK, 2 QPSK)
    rms: float  #: transmit level (RMS of the signal, full scale 1.0)
    #: the highest carrier frequency the start mode of a link uses, before any feedback
    start_band: float
    gap: int  #: silent samples after a frame
    #: adjacent carriers averaged in the channel estimate (odd; 1 = none)
    smooth: int = 5
    #: acquire a frame whose one training symbol a hole spoilt on the other one and the sync
    #: symbol (a phone call's lost packets; :mod:`~audionet.modem.phy.ofdm.sync`)
    repair_training: bool = False

    def __post_init__(self) -> None:
        if self.nfft & (self.nfft - 1) or not 64 <= self.nfft <= 16384:
            raise ConfigError(f"FFT size {self.nfft}: use a power of two from 64 to 16384")
        if not 0 < self.cp < self.nfft // 2:
            raise ConfigError(f"cyclic prefix {self.cp}: use 1 to {self.nfft // 2 - 1} samples")
        lo, hi = self.band
        if not 0 < lo < hi < self.sample_rate / 2:
            raise ConfigError(
                f"band {lo:g}-{hi:g} Hz does not fit below {self.sample_rate / 2:g} Hz"
            )

    @property
    def symbol_length(self) -> int:
        """Samples of one OFDM symbol with its cyclic prefix."""
        return self.nfft + self.cp

    @property
    def symbol_seconds(self) -> float:
        return self.symbol_length / self.sample_rate

    @property
    def layout(self) -> Layout:
        return _layout(self)


#: The cable profile at 48 kHz; :func:`get_profile` scales it to 44.1 kHz.
OFDM = OfdmProfile(
    name="ofdm",
    sample_rate=48000,
    nfft=2048,
    cp=160,
    band=(300.0, 20000.0),
    pilot_spacing=20,
    groups=32,
    header_symbols=1,
    header_bits=1,
    rms=0.16,
    start_band=9000.0,
    gap=240,
)

#: The telephone profile: 8 kHz, G.711-friendly level.
OFDM_PHONE = OfdmProfile(
    name="ofdm-phone",
    sample_rate=8000,
    nfft=512,
    cp=48,
    band=(250.0, 3650.0),
    pilot_spacing=16,
    groups=14,
    header_symbols=2,
    header_bits=2,
    rms=0.16,
    start_band=3650.0,
    gap=40,
    smooth=3,
    repair_training=True,
)

PROFILES: dict[str, OfdmProfile] = {p.name: p for p in (OFDM, OFDM_PHONE)}


def get_profile(name: str, sample_rate: int | None = None) -> OfdmProfile:
    """The profile ``name`` at ``sample_rate`` (``ofdm``: 48000 or 44100; ``ofdm-phone``: 8000)."""
    try:
        base = PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown OFDM profile {name!r}; choose one of: {', '.join(PROFILES)}"
        ) from None
    rate = sample_rate or base.sample_rate
    if rate == base.sample_rate:
        return base
    if name == "ofdm" and rate == 44100:
        # Same FFT size (21.5 Hz carriers); the cyclic prefix keeps its 3.3 ms.
        return OfdmProfile(
            **{**_fields(base), "sample_rate": 44100, "cp": 147, "gap": 220}  # type: ignore[arg-type]
        )
    rates = "48000 or 44100" if name == "ofdm" else str(base.sample_rate)
    raise ConfigError(f"the {name} profile runs at {rates} Hz, not {rate} Hz")


def _fields(p: OfdmProfile) -> dict[str, object]:
    return {f: getattr(p, f) for f in p.__dataclass_fields__}


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    """The carrier allocation of a profile (indices are FFT bins)."""

    profile: OfdmProfile
    used: I64  #: every carrier in the band, ascending
    pilots: I64  #: pilot carriers (a subset of ``used``)
    data: I64  #: data carriers (``used`` without the pilots)
    pilot_values: C128  #: the known BPSK value of each pilot
    group_of: I64  #: for each data carrier, its group index
    group_bounds: tuple[tuple[float, float], ...]  #: frequency range of each group in Hz
    sync: C128  #: frequency-domain sync symbol (even carriers only: two equal halves in time)
    training: C128  #: frequency-domain training symbol (QPSK on every used carrier)

    @property
    def ndata(self) -> int:
        return int(self.data.size)

    def group_sizes(self) -> I64:
        return np.bincount(self.group_of, minlength=self.profile.groups).astype(np.int64)


@functools.cache
def _layout(p: OfdmProfile) -> Layout:
    spacing = p.sample_rate / p.nfft
    lo = int(np.ceil(p.band[0] / spacing))
    hi = int(np.floor(p.band[1] / spacing))
    used = np.arange(lo, hi + 1, dtype=np.int64)
    # Pilots every ``pilot_spacing`` carriers, the last used carrier always one, so the pilots span
    # the whole band (the timing slope is fitted across them).
    pilot_pos = np.unique(np.append(np.arange(0, used.size, p.pilot_spacing), used.size - 1))
    pilots = used[pilot_pos]
    data = np.setdiff1d(used, pilots)
    if data.size < p.groups:
        raise ConfigError(f"profile {p.name}: fewer data carriers than groups")
    group_of = (np.arange(data.size) * p.groups // data.size).astype(np.int64)
    bounds = []
    for g in range(p.groups):
        members = data[group_of == g]
        bounds.append((float(members[0] * spacing), float(members[-1] * spacing)))
    # Fixed pseudo-random sequences (seeded, so both ends build the same ones).
    rng = np.random.default_rng(0x0FD3)
    pilot_values = np.where(rng.random(pilots.size) < 0.5, -1.0, 1.0).astype(np.complex128)
    qpsk = np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, p.nfft // 2)))
    sync = np.zeros(p.nfft // 2 + 1, dtype=np.complex128)
    even = used[used % 2 == 0]
    sync[even] = qpsk[even] * np.sqrt(2.0)  # same power as a symbol on every carrier
    training = np.zeros(p.nfft // 2 + 1, dtype=np.complex128)
    training[used] = np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, used.size)))
    return Layout(
        profile=p,
        used=used,
        pilots=pilots,
        data=data,
        pilot_values=pilot_values,
        group_of=group_of,
        group_bounds=tuple(bounds),
        sync=sync,
        training=training,
    )
