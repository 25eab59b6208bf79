"""A payload mode: a constellation per carrier group (the bit loading) and an LDPC code rate.

Written as ``qam256-5/6`` (every group the same constellation) or, for a loading that differs per
group, listed group by group (``10,10,8,...,0:5/6``, bits per carrier, 0 = carrier off). The
receiver needs no agreement on it: each frame's header names the mode of its payload.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.errors import ConfigError
from audionet.modem.phy.ofdm.profile import OfdmProfile

#: Bits per carrier of each constellation; the header carries the index into this tuple (3 bits).
LOADS: tuple[int, ...] = (0, 1, 2, 4, 6, 8, 10)
NAMES: dict[int, str] = {1: "bpsk", 2: "qpsk", 4: "qam16", 6: "qam64", 8: "qam256", 10: "qam1024"}
BY_NAME: dict[str, int] = {v: k for k, v in NAMES.items()}
#: LDPC code rates (IEEE 802.11n), most robust first; the header carries the index (2 bits).
RATES: tuple[str, ...] = ("1/2", "2/3", "3/4", "5/6")
RATE_VALUES: dict[str, float] = {"1/2": 0.5, "2/3": 2 / 3, "3/4": 0.75, "5/6": 5 / 6}


@dataclass(frozen=True, slots=True)
class Mode:
    """Bits per carrier for each group (0 = off) and the code rate."""

    loading: tuple[int, ...]
    rate: str

    def __post_init__(self) -> None:
        if self.rate not in RATES:
            raise ConfigError(f"code rate {self.rate!r}: use one of {', '.join(RATES)}")
        bad = [b for b in self.loading if b not in LOADS]
        if bad:
            raise ConfigError(f"bits per carrier {bad[0]}: use one of {LOADS}")
        if not any(self.loading):
            raise ConfigError("a mode needs at least one carrier group switched on")

    @classmethod
    def uniform(cls, profile: OfdmProfile, bits: int, rate: str, top: float | None = None) -> Mode:
        """``bits`` on every group (below ``top`` Hz if given), ``rate``."""
        bounds = profile.layout.group_bounds
        loading = tuple(bits if top is None or hi <= top else 0 for _, hi in bounds)
        return cls(loading, rate)

    @classmethod
    def parse(cls, text: str, profile: OfdmProfile) -> Mode:
        """``qam256-5/6`` or ``b1,b2,...:rate`` (one number per group of the profile)."""
        text = text.strip().lower()
        if ":" in text:
            loads, _, rate = text.partition(":")
            try:
                loading = tuple(int(v) for v in loads.split(","))
            except ValueError:
                raise ConfigError(
                    f"bad loading {loads!r}: bits per carrier, comma-separated"
                ) from None
            if len(loading) != profile.groups:
                raise ConfigError(
                    f"the {profile.name} profile has {profile.groups} groups, not {len(loading)}"
                )
            return cls(loading, rate)
        name, _, rate = text.partition("-")
        if name not in BY_NAME or rate not in RATES:
            choices = ", ".join(f"{n}-{r}" for n in BY_NAME for r in ("1/2", "5/6"))
            raise ConfigError(f"unknown mode {text!r}; e.g. {choices} (rates {', '.join(RATES)})")
        return cls.uniform(profile, BY_NAME[name], rate)

    @property
    def rate_value(self) -> float:
        return RATE_VALUES[self.rate]

    def __str__(self) -> str:
        on = {b for b in self.loading}
        if len(on) == 1:
            return f"{NAMES[self.loading[0]]}-{self.rate}"
        return ",".join(str(b) for b in self.loading) + f":{self.rate}"

    def describe(self) -> str:
        """A short human summary: constellations with their group counts, and the rate."""
        counts = {b: self.loading.count(b) for b in sorted(set(self.loading), reverse=True)}
        parts = [f"{NAMES.get(b, 'off')} x{n}" for b, n in counts.items()]
        return f"{', '.join(parts)} groups, rate {self.rate}"

    def carrier_bits(self, profile: OfdmProfile) -> npt.NDArray[np.int64]:
        """Bits of each data carrier."""
        return np.asarray(self.loading, dtype=np.int64)[profile.layout.group_of]

    def bits_per_symbol(self, profile: OfdmProfile) -> int:
        return _bits_per_symbol(self, profile)

    def bit_rate(self, profile: OfdmProfile) -> float:
        """Information bits per second while data symbols play (no preamble, no header)."""
        return self.bits_per_symbol(profile) * self.rate_value / profile.symbol_seconds


@functools.lru_cache(maxsize=256)
def _bits_per_symbol(mode: Mode, profile: OfdmProfile) -> int:
    return int(mode.carrier_bits(profile).sum())
