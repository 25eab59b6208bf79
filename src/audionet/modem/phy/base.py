"""The physical-layer interface: frame bytes to samples and back.

The link layer sees a physical layer (PHY) only through this module, so faster PHYs (OFDM, ...) can be
added without touching it. Samples are ``float32`` numpy arrays in [-1, 1], mono, at the PHY's
``sample_rate``; conversion to 8-bit or 16-bit audio happens in the audio backends.

A PHY does not know the frame format. To know where a frame ends, the demodulator asks a
:class:`FrameLength` (provided by the frame layer): after the start-of-frame delimiter it collects
``header_size`` bytes, then ``total_length(header)`` says how many bytes the whole frame has (header,
checksums and payload), or ``None`` when the header is not valid (the demodulator then drops it and
hunts for the next preamble).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]


class FrameLength(Protocol):
    """How the frame layer tells a demodulator the length of a frame from its first bytes."""

    @property
    def header_size(self) -> int:
        """Bytes needed (from the start of the frame, after the start-of-frame delimiter) to know the length."""
        ...

    def total_length(self, header: bytes) -> int | None:
        """Total frame bytes given its first ``header_size`` bytes, or ``None`` if the header is invalid."""
        ...


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """Bytes of one frame as demodulated (checksums not yet verified), where it began, and how clean it was.

    ``position`` is the index (counted from the first sample ever fed to the demodulator) of the first
    sample of the frame's preamble. ``quality`` is in [0, 1]: 1 is a perfect signal; each PHY documents
    its measure (e.g. the mean normalised decision margin).
    """

    data: bytes
    position: int
    quality: float


class Modulator(Protocol):
    """Turns the bytes of one frame into samples: preamble, start-of-frame, the bytes, and the inter-frame gap."""

    @property
    def sample_rate(self) -> int: ...

    def modulate(self, frame: bytes) -> Samples:
        """All samples for one frame, ready to be played; consecutive calls may be concatenated."""
        ...

    def duration(self, nbytes: int) -> float:
        """Air time in seconds of a frame of ``nbytes`` bytes, including preamble and gap."""
        ...


class Demodulator(Protocol):
    """A streaming receiver: feed samples in chunks of any size, get whole frames out."""

    def feed(self, samples: Samples) -> list[ReceivedFrame]:
        """Process more samples; return the frames completed by them (possibly none)."""
        ...

    @property
    def busy(self) -> bool:
        """True while a frame is being received (carrier sense for a half-duplex shared line)."""
        ...


class Phy(Protocol):
    """A physical layer: a name, a sample rate, and factories for its modulator and demodulator."""

    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    def modulator(self) -> Modulator: ...

    def demodulator(self, framing: FrameLength) -> Demodulator: ...
