"""The seed's Manchester physical layer, vectorised with numpy.

**Line code** (IEEE 802.3 convention, as the original): a 1 is low then high (a rising mid-bit
transition), a 0 is high then low. Each half-bit is a flat level whose first and last samples are at
0.6 of the level ("rounded square waves", which tame the high harmonics sound cards distort).
Bits go out least significant first within each byte.

**Frame on the air**: the preamble ``55 55 55 55 55 55 55 D5`` (62 alternating bits starting with 1,
then the start-of-frame ``11``), the frame bytes, then the inter-frame gap: two zero bytes
Manchester-coded and 64 samples of silence (as the original).

**Receiver**: :mod:`audionet.modem.phy.receiver`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audionet.errors import ConfigError
from audionet.modem.phy.base import FrameLength, Samples
from audionet.modem.phy.legacywave import LINE_AMPLITUDE, LegacyManchesterModulator
from audionet.modem.phy.linecode import (
    GAP_BYTES,
    GAP_SILENCE,
    PREAMBLE,
    PREAMBLE_BITS,
    ROUNDING,
    bits_to_bytes,
    bytes_to_bits,
)
from audionet.modem.phy.receiver import ManchesterDemodulator

__all__ = [
    "GAP_BYTES",
    "GAP_SILENCE",
    "PREAMBLE",
    "PREAMBLE_BITS",
    "ROUNDING",
    "ManchesterDemodulator",
    "ManchesterModulator",
    "ManchesterPhy",
    "bits_to_bytes",
    "bytes_to_bits",
]


class ManchesterModulator:
    """Frame bytes to rounded-square Manchester samples (float32)."""

    def __init__(self, sample_rate: int, samples_per_bit: float, amplitude: float) -> None:
        self._rate = sample_rate
        self._spb = samples_per_bit
        self._amp = amplitude

    @property
    def sample_rate(self) -> int:
        return self._rate

    def line_code(self, bits: npt.NDArray[np.uint8]) -> Samples:
        """Manchester samples for ``bits`` (no preamble, no gap), at the configured amplitude."""
        nhalf = 2 * bits.size
        # Half-bit boundaries on the sample grid (rounded half up, so an odd bit length gives halves of
        # n+1 and n samples in every bit, never alternating); fractional lengths jitter by a sample.
        edges = np.floor(np.arange(nhalf + 1) * (self._spb / 2.0) + 0.5).astype(np.int64)
        # 802.3: a 1 is low then high, a 0 high then low.
        halves = np.empty(nhalf, dtype=np.float32)
        halves[0::2] = np.where(bits == 1, -1.0, 1.0)
        halves[1::2] = -halves[0::2]
        out = np.repeat(halves, np.diff(edges))
        out[edges[:-1]] *= ROUNDING
        out[edges[1:] - 1] = halves * ROUNDING
        out *= np.float32(self._amp)
        return out

    def modulate(self, frame: bytes) -> Samples:
        """Preamble, start-of-frame, ``frame`` and the inter-frame gap, as float32 samples."""
        bits = bytes_to_bits(PREAMBLE + bytes(frame) + bytes(GAP_BYTES))
        return np.concatenate((self.line_code(bits), np.zeros(GAP_SILENCE, dtype=np.float32)))

    def duration(self, nbytes: int) -> float:
        nbits = 8 * (len(PREAMBLE) + nbytes + GAP_BYTES)
        return (round(nbits * self._spb) + GAP_SILENCE) / self._rate


class ManchesterPhy:
    """The seed's Manchester PHY.

    ``samples_per_bit`` may be fractional (half-bit edges are rounded to the sample grid) and must be
    at least 4, 5 or more for a real line; exactly 2 suits a digital line that carries every sample.
    ``amplitude`` is the peak level in [0, 1].
    ``legacy=True`` selects the original's line as it plays it: its waveform sample for sample
    (:mod:`~audionet.modem.phy.legacywave`), by default at a third of full scale as its sound-card
    backend plays it (``amplitude=1.0`` for full scale, as its WAV backend writes), and an integer
    bit length. 8-bit audio is produced by the audio backend.
    """

    def __init__(
        self,
        sample_rate: int = 44100,
        samples_per_bit: float = 8,
        amplitude: float | None = None,
        legacy: bool = False,
    ) -> None:
        if not 1000 <= sample_rate <= 384000:
            raise ConfigError(f"sample rate {sample_rate} Hz is outside 1000..384000 Hz")
        # Exactly 2 (one sample per half-bit) is for digital lines that carry every sample, such
        # as an 8 kHz phone call over AudioSocket (fractional lengths below 4 are not allowed:
        # at 2.25 and 2.5 samples per bit the receiver finds no frame).
        if not (samples_per_bit == 2 or 4 <= samples_per_bit <= 4096):
            raise ConfigError(
                f"samples per bit {samples_per_bit}: use 4 to 4096 (5 or more on a real line), "
                "or 2 on a digital line such as an AudioSocket call"
            )
        if legacy and samples_per_bit != int(samples_per_bit):
            raise ConfigError("the legacy Manchester line needs a whole number of samples per bit")
        if amplitude is None:
            amplitude = LINE_AMPLITUDE if legacy else 0.5
        if not 0.0 < amplitude <= 1.0:
            raise ConfigError(f"amplitude {amplitude}: use a value in (0, 1]")
        self._rate = sample_rate
        self.samples_per_bit = float(samples_per_bit)
        self.amplitude = float(amplitude)
        self.legacy = legacy

    @property
    def name(self) -> str:
        return "manchester"

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def bit_rate(self) -> float:
        """Raw line rate in bit/s (5512.5 at the default 8 samples per bit and 44.1 kHz)."""
        return self._rate / self.samples_per_bit

    def modulator(self) -> ManchesterModulator | LegacyManchesterModulator:
        if self.legacy:
            return LegacyManchesterModulator(self._rate, int(self.samples_per_bit), self.amplitude)
        return ManchesterModulator(self._rate, self.samples_per_bit, self.amplitude)

    def demodulator(self, framing: FrameLength) -> ManchesterDemodulator:
        return ManchesterDemodulator(framing, self._rate, self.samples_per_bit)

    def __repr__(self) -> str:
        return (
            f"ManchesterPhy(sample_rate={self._rate}, samples_per_bit={self.samples_per_bit:g}, "
            f"amplitude={self.amplitude:g}, legacy={self.legacy})"
        )
