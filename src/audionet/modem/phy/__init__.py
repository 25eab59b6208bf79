"""Physical layers: frame bytes to audio samples and back (see :mod:`audionet.modem.phy.base`).

``get_phy(name, **params)`` builds one by name; today there is ``manchester`` (the seed's line code).
"""

from __future__ import annotations

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

__all__ = [
    "PHYS",
    "Demodulator",
    "FrameLength",
    "ManchesterPhy",
    "Modulator",
    "Phy",
    "ReceivedFrame",
    "Samples",
    "get_phy",
]

#: Registered physical layers by name.
PHYS: dict[str, type[ManchesterPhy]] = {"manchester": ManchesterPhy}


def get_phy(name: str, **params: Any) -> Phy:
    """A physical layer by name, e.g. ``get_phy("manchester", samples_per_bit=10)``.

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
