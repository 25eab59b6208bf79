"""The seed's Manchester physical layer, vectorised with numpy.

**Line code** (IEEE 802.3 convention, as the original): a 1 is low then high (a rising mid-bit
transition), a 0 is high then low. Each half-bit is a flat level whose first and last samples are at
0.6 of the level ("rounded square waves", which tame the high harmonics sound cards distort).
Bits go out least significant first within each byte.

**Frame on the air**: the preamble ``55 55 55 55 55 55 55 D5`` (62 alternating bits starting with 1,
then the start-of-frame ``11``), the frame bytes, then the inter-frame gap: two zero bytes
Manchester-coded and 64 samples of silence (as the original).

**Receiver**: zero crossings with hysteresis (:mod:`.edges`) give a time and a direction per
transition. Alternating bits (the preamble) give crossings one bit apart; the start-of-frame ``11``
gives two half-bit intervals right after. The bit period ``T`` is measured on the preamble, so a
sender whose bit length differs from ours is still read. Inside the frame every interval between
crossings is rounded to whole half-bits *on its own*, so timing is re-taken at every transition and
clock drift never accumulates; crossings an even number of half-bits after the start-of-frame are
mid-bit transitions and their direction is the bit. An inverted line gives ``00`` as start-of-frame:
the receiver notices and complements what follows. A frame's length comes from the frame layer's
:class:`~audionet.modem.phy.base.FrameLength` after its header bytes.

**Quality**: ``1 - 2 * mean(|gap / (T/2) - whole half-bits|)`` over the gaps between consecutive
mid-bit transitions of the frame, times the fraction of bits that had their mid-bit transition: 1 for
a perfect signal, falling towards 0 as timing jitter nears the point where half-bits are misread.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audionet.errors import ConfigError
from audionet.modem.phy.base import FrameLength, ReceivedFrame, Samples
from audionet.modem.phy.edges import EdgeDetector

#: The original's preamble and start-of-frame bytes, sent least significant bit first.
PREAMBLE = bytes([0x55] * 7 + [0xD5])
PREAMBLE_BITS = 8 * len(PREAMBLE)  # 62 alternating bits + SOF "11"
GAP_BYTES = 2  # zero bytes Manchester-coded after each frame (the original's inter-frame gap)
GAP_SILENCE = 64  # samples of silence after them (the original)
ROUNDING = 0.6  # level of the first and last sample of each half-bit, as a fraction of full level
#: Preamble intervals (one bit each) needed in a row before a start-of-frame is believed; the
#: first 10-20 samples after silence are often distorted by sound cards, the rest of the 62 is margin.
MIN_PREAMBLE = 16
#: A gap of this many half-bits without any transition means the carrier is gone.
CARRIER_LOST = 6
#: Preamble intervals averaged for the bit period.
PERIOD_INTERVALS = 32
#: Largest relative timing error assumed between the preamble's period and the rest of the frame.
DRIFT_SLACK = 0.002


def bytes_to_bits(data: bytes) -> npt.NDArray[np.uint8]:
    """Bits of ``data``, least significant bit of each byte first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def bits_to_bytes(bits: npt.NDArray[np.uint8]) -> bytes:
    """Inverse of :func:`bytes_to_bits` (``len(bits)`` a multiple of 8)."""
    return np.packbits(bits.astype(np.uint8), bitorder="little").tobytes()


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


class ManchesterDemodulator:
    """Streaming Manchester receiver; see the module docstring for how it works."""

    def __init__(
        self,
        framing: FrameLength,
        sample_rate: int,
        samples_per_bit: float,
        *,
        hysteresis: float = 0.25,
        floor: float = 2e-3,
    ) -> None:
        self._framing = framing
        self._rate = sample_rate
        self._tn = float(samples_per_bit)  # nominal bit period in samples
        bit_rate = sample_rate / samples_per_bit
        self._edges = EdgeDetector(
            dc_cutoff=bit_rate / 100.0 / sample_rate,
            envelope_time=2.0 * samples_per_bit,
            hysteresis=hysteresis,
            floor=floor,
        )
        self._t = np.zeros(0)  # crossing times not yet consumed
        self._d = np.zeros(0, dtype=np.int8)  # their directions
        # Receive state: index of the SOF crossing in self._t, bit period, polarity, bits wanted.
        self._sof: int | None = None
        self._period = 0.0
        self._inverted = False
        self._want = 0
        self._header_known = False
        self._preamble_run = 0  # preamble-like intervals at the end of the buffer (carrier sense)

    @property
    def busy(self) -> bool:
        return self._sof is not None or self._preamble_run >= MIN_PREAMBLE // 2

    @property
    def inverted(self) -> bool:
        """Polarity of the last frame found (True: the line inverts)."""
        return self._inverted

    def feed(self, samples: Samples) -> list[ReceivedFrame]:
        times, dirs = self._edges.feed(samples)
        if times.size:
            self._t = np.concatenate((self._t, times))
            self._d = np.concatenate((self._d, dirs))
        frames: list[ReceivedFrame] = []
        while True:
            if self._sof is None:
                if not self._hunt():
                    break
            else:
                progress, frame = self._receive()
                if frame is not None:
                    frames.append(frame)
                if not progress:
                    break
        return frames

    # -- hunting for preamble + start-of-frame -------------------------------------------------

    def _drop(self, count: int) -> None:
        self._t = self._t[count:]
        self._d = self._d[count:]

    def _hunt(self) -> bool:
        """Look for a preamble and SOF in the crossings; True (and receive state set) if found."""
        t = self._t
        if t.size < 4:
            return False
        iv = np.diff(t)
        tn = self._tn
        ratio = iv[1:] / iv[:-1]
        # A preamble interval is about one bit long and about as long as the one before it.
        good = (iv > 0.55 * tn) & (iv < 1.8 * tn)
        good[1:] &= (ratio > 0.7) & (ratio < 1.43)
        pos = np.arange(iv.size)
        last_bad = np.maximum.accumulate(np.where(good, -1, pos))
        run = pos - last_bad  # consecutive preamble-like intervals ending at each interval
        m = np.minimum(run, PERIOD_INTERVALS)
        # Mean of the last m intervals, from crossing times directly (chunking cannot change it).
        mean = (t[pos + 1] - t[pos + 1 - m]) / np.maximum(m, 1)
        cand = np.flatnonzero(run[:-2] >= MIN_PREAMBLE)
        if cand.size:
            a, b = iv[cand + 1], iv[cand + 2]
            per = mean[cand]
            ok = (a > 0.3 * per) & (a < 0.7 * per) & (b > 0.3 * per) & (b < 0.7 * per)
            ok &= np.abs(a + b - per) < 0.3 * per
            hits = cand[ok]
            if hits.size:
                j = int(hits[0])
                sof = j + 3  # crossing at the middle of the second SOF bit
                self._period = float(mean[j])
                self._inverted = bool(self._d[sof] < 0)
                self._drop(sof)
                self._sof = 0
                self._want = 8 * self._framing.header_size
                self._header_known = False
                self._preamble_run = 0
                return True
        self._preamble_run = int(run[-1]) if good[-1] else 0
        # Keep enough crossings for a preamble that is still arriving (and for its period estimate
        # over up to PERIOD_INTERVALS bits, so chunking never changes the result).
        keep = PERIOD_INTERVALS + 8
        if t.size > keep:
            self._drop(t.size - keep)
        return False

    # -- receiving one frame ------------------------------------------------------------------

    def _abort(self) -> None:
        """Give up on the current frame; hunt again just after its start-of-frame."""
        self._drop(1)
        self._sof = None

    def _receive(self) -> tuple[bool, ReceivedFrame | None]:
        """Try to finish the frame being received: (made progress, frame if complete)."""
        t0 = float(self._t[0])
        period = self._period
        now = self._edges.samples
        # The last wanted bit's mid-bit transition cannot come before this (0.2% timing slack);
        # decoding before would only be wasted work.
        earliest = t0 + (self._want - 0.5) * period * (1.0 - DRIFT_SLACK)
        latest = t0 + (self._want + 0.5) * period * (1.0 + DRIFT_SLACK) + CARRIER_LOST * period
        if now < earliest:
            return False, None
        iv = np.diff(self._t)
        q = np.rint(iv / (period / 2.0)).astype(np.int64)
        gone = np.flatnonzero(q > CARRIER_LOST)
        n = int(gone[0]) if gone.size else iv.size
        h = np.cumsum(q[:n])  # half-bits from the SOF mid-bit to each later crossing
        if n == 0 or h[-1] < 2 * self._want:
            lost = now - float(self._t[-1]) > CARRIER_LOST * period / 2 + 2
            if lost or gone.size or now > latest:
                self._abort()
                return True, None
            return False, None
        mid = (h % 2 == 0) & (h > 0) & (h <= 2 * self._want)
        k = h[mid] // 2 - 1
        d = self._d[1 : n + 1][mid]
        bits = np.zeros(self._want, dtype=np.uint8)
        first_k, first = np.unique(k, return_index=True)
        bits[first_k] = (d[first] > 0) != self._inverted
        if not self._header_known:
            header = bits_to_bytes(bits)
            total = self._framing.total_length(header)
            if total is None or total < self._framing.header_size:
                self._abort()
                return True, None
            self._header_known = True
            self._want = 8 * total
            return True, None
        end = int(np.searchsorted(h, 2 * self._want)) + 1  # index of the last bit's crossing
        # Timing quality from the mid-bit transitions only (boundary transitions of odd bit lengths
        # sit half a sample off by construction): each gap against its whole number of half-bits.
        mt = np.concatenate(([t0], self._t[1 : n + 1][mid]))
        mh = np.concatenate(([0], h[mid]))
        dev = np.abs(np.diff(mt) / (period / 2.0) - np.diff(mh))
        quality = max(0.0, 1.0 - 2.0 * float(dev.mean())) * (first_k.size / self._want)
        position = round(t0 - (PREAMBLE_BITS - 0.5) * period)
        frame = ReceivedFrame(bits_to_bytes(bits), position, quality)
        self._drop(end)
        self._sof = None
        return True, frame


class ManchesterPhy:
    """The seed's Manchester PHY.

    ``samples_per_bit`` may be fractional (half-bit edges are rounded to the sample grid) and must be
    at least 4; 5 or more is advised for a real line. ``amplitude`` is the peak level in [0, 1].
    ``legacy=True`` selects the original's line as it plays it: full-scale amplitude
    (8-bit audio is produced by the audio backend) and an integer bit length.
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
        if not 4 <= samples_per_bit <= 4096:
            raise ConfigError(
                f"samples per bit {samples_per_bit}: use 4 to 4096 (5 or more on a real line)"
            )
        if legacy and samples_per_bit != int(samples_per_bit):
            raise ConfigError("the legacy Manchester line needs a whole number of samples per bit")
        if amplitude is None:
            amplitude = 1.0 if legacy else 0.5
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

    def modulator(self) -> ManchesterModulator:
        return ManchesterModulator(self._rate, self.samples_per_bit, self.amplitude)

    def demodulator(self, framing: FrameLength) -> ManchesterDemodulator:
        return ManchesterDemodulator(framing, self._rate, self.samples_per_bit)

    def __repr__(self) -> str:
        return (
            f"ManchesterPhy(sample_rate={self._rate}, samples_per_bit={self.samples_per_bit:g}, "
            f"amplitude={self.amplitude:g}, legacy={self.legacy})"
        )
