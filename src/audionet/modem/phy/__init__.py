"""Physical layers: frame bytes to audio samples and back (see :mod:`audionet.modem.phy.base`).

``get_phy(name, **params)`` builds one by name: ``manchester`` (the seed's line code), ``ofdm``
(audio cables, :mod:`audionet.modem.phy.ofdm`) and ``ofdm-phone`` (telephone lines).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from audionet.errors import ConfigError
from audionet.modem.phy.base import (
    Demodulator,
    FrameLength,
    Modulator,
    Phy,
    ReceivedFrame,
    Samples,
)
from audionet.modem.phy.manchester import ManchesterPhy
from audionet.modem.phy.ofdm import OfdmPhonePhy, OfdmPhy

__all__ = [
    "PHYS",
    "Demodulator",
    "FrameLength",
    "ManchesterPhy",
    "Modulator",
    "OfdmPhy",
    "Phy",
    "ReceivedFrame",
    "Samples",
    "get_phy",
]

#: Registered physical layers by name.
PHYS: dict[str, Callable[..., Phy]] = {
    "manchester": ManchesterPhy,
    "ofdm": OfdmPhy,
    "ofdm-phone": OfdmPhonePhy,
}


def get_phy(name: str, **params: Any) -> Phy:
    """A physical layer by name, e.g. ``get_phy("manchester", samples_per_bit=10)`` or
    ``get_phy("ofdm", sample_rate=44100, mode="qam256-5/6")``.

    Raises :class:`ConfigError` for an unknown name or parameter.
    """
    try:
        cls = PHYS[name]
    except KeyError:
        raise ConfigError(
            f"unknown physical layer {name!r}; choose one of: {', '.join(sorted(PHYS))}"
        ) from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for the {name} physical layer: {exc}") from None
