"""The original implementation's Manchester waveform, sample for sample (``legacy`` line).

The original's writer (``ManchesterCodec.encodeBit``, ManchesterCodec.java:86-103) does not draw
each half-bit on its own. Each call writes one bit length of samples: the *second* half of the
previous bit and the *first* half of this one. When the two halves have the same level (the bit
changed: a 1 after a 0 is low+low, a 0 after a 1 high+high) it writes them as one pulse of a whole
bit length (``upLong``/``downLong``); otherwise as two half-bit pulses (``upShort``/``downShort``).
Every pulse is rounded only at its ends (ManchesterCodec.java:63-75: all samples 127 or -128, the
first and last multiplied by 0.6 and truncated to a byte: 76 and -76). Its ``prevSymbol`` starts
false and every frame ends with the gap's zero bits, so each frame starts with the low second
half of a virtual 0 and its own last half-bit is never written: the frame is shifted by half a bit
against ours, with the same number of samples.

Levels are the original's signed 8-bit values (high 127, low -128), here divided by 128, so an
8-bit WAV of them holds the original's bytes exactly. The sound-card backend
(``RealTimeAudioIO.writeSamples``, RealTimeAudioIO.java:111-115) divides every sample by 3 in
integer arithmetic (127 -> 42, -128 -> -42, 76 -> 25, -76 -> -25): a third of full scale; the WAV
backend (``WavFileAudioIO.writeSamples``) writes them unscaled. ``amplitude`` picks the scale:
each level ``v`` becomes ``trunc(v * amplitude)``, which for ``1/3`` is Java's ``v / 3``.

The original's 64 samples of silence after each frame (RealTimeFrameIO.java:107-109) are plain
zeros, not scaled.

For an odd bit length the original's half-bit pulses are ``n // 2`` samples, so a repeated bit
lasts ``n - 1`` samples and a changed one ``n``: bits of uneven length. That is not copied: half-bit
edges are rounded to the sample grid as in :class:`~audionet.modem.phy.manchester.ManchesterModulator`,
which for even bit lengths (the original's 8) is exactly the original's grid.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.base import Samples
from audionet.modem.phy.linecode import GAP_BYTES, GAP_SILENCE, PREAMBLE, bytes_to_bits

#: The original's full-scale levels (ManchesterCodec.java:67, :69) and its rounded pulse ends
#: (``(byte) (127 * 0.6)`` and ``(byte) (-128 * 0.6)``, :72-73: Java truncates toward zero).
HIGH, LOW = 127, -128
HIGH_EDGE, LOW_EDGE = 76, -76
#: What the sound-card backend plays: every sample divided by 3 (RealTimeAudioIO.java:113).
LINE_AMPLITUDE = 1.0 / 3.0


class LegacyManchesterModulator:
    """Frame bytes to the original's samples (see the module docstring), as float32 ``v / 128``."""

    def __init__(self, sample_rate: int, samples_per_bit: int, amplitude: float) -> None:
        self._rate = sample_rate
        self._spb = samples_per_bit
        self._amp = amplitude
        # the four 8-bit levels after scaling: trunc, as Java's integer division does
        scaled = np.trunc(np.array([HIGH, LOW, HIGH_EDGE, LOW_EDGE], dtype=np.float64) * amplitude)
        self._high, self._low, self._high_edge, self._low_edge = (float(v) / 128.0 for v in scaled)

    @property
    def sample_rate(self) -> int:
        return self._rate

    def line_code(self, bits: npt.NDArray[np.uint8]) -> Samples:
        """The original's samples for ``bits`` (no preamble or silence added)."""
        nhalf = 2 * bits.size
        # 802.3 half-bit levels (a 1 is low then high), shifted by one half-bit: the virtual 0's
        # low second half first, this frame's last half dropped (ManchesterCodec.java:28, :87-102)
        high = np.empty(nhalf, dtype=bool)
        high[0] = False
        high[1::2] = bits == 0  # first half of each bit: high for a 0
        high[2::2] = bits[:-1] == 1  # second half of each bit but the last: high for a 1
        edges = np.floor(np.arange(nhalf + 1) * (self._spb / 2.0) + 0.5).astype(np.int64)
        # a pulse starts where the level changes; equal neighbours merge into one pulse
        starts = np.flatnonzero(np.concatenate(([True], high[1:] != high[:-1])))
        begin = edges[starts]
        end = edges[np.append(starts[1:], nhalf)]
        level = high[starts]
        out = np.repeat(np.where(level, self._high, self._low).astype(np.float32), end - begin)
        edge = np.where(level, self._high_edge, self._low_edge).astype(np.float32)
        out[begin] = edge
        out[end - 1] = edge
        return out

    def modulate(self, frame: bytes) -> Samples:
        """Preamble, start-of-frame, ``frame``, the two zero bytes and 64 samples of silence."""
        bits = bytes_to_bits(PREAMBLE + bytes(frame) + bytes(GAP_BYTES))
        return np.concatenate((self.line_code(bits), np.zeros(GAP_SILENCE, dtype=np.float32)))

    def duration(self, nbytes: int) -> float:
        nbits = 8 * (len(PREAMBLE) + nbytes + GAP_BYTES)
        return (round(nbits * self._spb) + GAP_SILENCE) / self._rate
