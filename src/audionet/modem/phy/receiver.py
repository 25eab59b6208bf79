"""The streaming Manchester receiver, vectorised with numpy.

1. **Transitions.** :class:`~audionet.modem.phy.edges.EdgeDetector` removes DC (offsets, and the
   wander a high-pass leaves) and reports zero crossings with hysteresis: a time and a direction.
2. **Preamble and start-of-frame.** Alternating bits give crossings one bit apart; the
   start-of-frame ``11`` gives two half-bit intervals right after at least ``MIN_PREAMBLE`` of them.
   The bit period ``T`` is measured on the preamble (so a sender whose bit length is not ours is still
   read), and the direction of the crossing in the middle of the second SOF bit gives the polarity:
   rising on a normal line, falling on an inverted one (whose bits are then complemented).
3. **Re-timing on every transition.** Every transition of a Manchester line, mid-bit or boundary,
   sits on the half-bit grid ``t0 + j*T/2``. The phase of each crossing against that grid
   (as a unit phasor) is averaged over its ``TIMING_WINDOW`` neighbours and unwrapped, which follows
   the timing through jitter and clock drift (500 ppm is a whole bit every 2,000 bits) without
   letting one noisy crossing move it.
4. **Decisions.** Each bit is decided on the re-timed grid by comparing the signal's mean over its
   second half with its first (at 1/8, 1/4 and 3/8 of a bit either side of the middle): a matched
   filter, so noise and band-limiting cost single bits rather than the frame's whole timing.
5. **Length.** After ``header_size`` bytes the frame layer's ``total_length`` says how many bytes the
   frame has (or that the header is not valid: the receiver drops it and hunts again). A gap of
   ``CARRIER_LOST`` half-bits without transitions inside a frame means it was cut short.

**Quality** is ``1 - 2 * std(|margin|) / mean(|margin|)`` over the frame's decision margins (clipped
to [0, 1]): 1 for a perfect signal, lower as noise and distortion close the eye.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.base import FrameLength, ReceivedFrame, Samples
from audionet.modem.phy.edges import EdgeDetector
from audionet.modem.phy.linecode import PREAMBLE_BITS, bits_to_bytes

F64 = npt.NDArray[np.float64]

#: Preamble intervals needed in a row before a start-of-frame is believed. Sound cards distort the
#: first 10-20 samples after silence (SPEC §3); the rest of the 62 bits is margin.
MIN_PREAMBLE = 16
#: Preamble intervals averaged for the bit period.
PERIOD_INTERVALS = 32
#: A gap of this many half-bits without any transition inside a frame means the carrier is gone.
CARRIER_LOST = 6
#: Largest relative timing error assumed between the preamble's period and the rest of the frame.
DRIFT_SLACK = 0.002
#: Crossings averaged for the timing phase (about 20 bits: smooth, yet quick enough for drift).
TIMING_WINDOW = 31
#: Crossings searched for a preamble at a time (bounds the work per frame on long inputs).
HUNT_WINDOW = 4096
#: Where each half-bit is sampled, in bits from the middle of the bit.
DECISION_POINTS = np.array([0.125, 0.25, 0.375])


def _moving_mean(z: npt.NDArray[np.complex128], width: int) -> npt.NDArray[np.complex128]:
    """Centred moving mean (windows shrink at the ends)."""
    c = np.concatenate(([0], np.cumsum(z)))
    i = np.arange(z.size)
    lo = np.maximum(i - width // 2, 0)
    hi = np.minimum(i + width // 2 + 1, z.size)
    out: npt.NDArray[np.complex128] = (c[hi] - c[lo]) / (hi - lo)
    return out


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
        self._y = np.zeros(0)  # DC-free samples kept for decisions
        self._y0 = 0  # absolute index of self._y[0]
        # Receive state: SOF mid-bit time (None while hunting), bit period, polarity, bits wanted.
        self._t0: float | None = None
        self._period = 0.0
        self._inverted = False
        self._want = 0
        self._header_known = False
        self._preamble_run = 0  # preamble-like intervals at the end of the buffer (carrier sense)
        self._hunted = False  # True when the crossings in the buffer were all searched in vain

    @property
    def busy(self) -> bool:
        if self._t0 is not None:
            return True
        recent = self._t.size > 0 and self._edges.samples - float(self._t[-1]) < 3 * self._tn
        return recent and self._preamble_run >= MIN_PREAMBLE // 2

    @property
    def inverted(self) -> bool:
        """Polarity of the last frame found (True: the line inverts)."""
        return self._inverted

    def feed(self, samples: Samples) -> list[ReceivedFrame]:
        times, dirs = self._edges.feed(samples)
        if times.size:
            self._t = np.concatenate((self._t, times))
            self._d = np.concatenate((self._d, dirs))
            self._hunted = False
        self._y = np.concatenate((self._y, self._edges.filtered))
        frames: list[ReceivedFrame] = []
        while True:
            if self._t0 is None:
                if self._hunted or not self._hunt():
                    break
            else:
                progress, frame = self._receive()
                if frame is not None:
                    frames.append(frame)
                if not progress:
                    break
        self._trim_samples()
        return frames

    def _trim_samples(self) -> None:
        if self._t0 is not None:
            keep = self._t0 - 2 * self._period
        elif self._t.size:
            keep = float(self._t[0]) - 2 * self._tn
        else:
            keep = self._edges.samples - 4 * self._tn
        cut = math.floor(keep) - self._y0
        if cut > 0:
            self._y = self._y[cut:]
            self._y0 += cut

    def _drop(self, count: int) -> None:
        self._t = self._t[count:]
        self._d = self._d[count:]

    # -- hunting for preamble + start-of-frame -------------------------------------------------

    def _hunt(self) -> bool:
        """Look for a preamble and SOF in the crossings; True (and receive state set) if found."""
        keep = PERIOD_INTERVALS + 8  # crossings kept for a preamble still arriving
        while True:
            found = self._hunt_window(self._t[:HUNT_WINDOW])
            if found is not None:
                sof, period = found
                self._period = period
                self._inverted = bool(self._d[sof] < 0)
                self._drop(sof)
                self._t0 = float(self._t[0])
                self._want = 8 * self._framing.header_size
                self._header_known = False
                self._preamble_run = 0
                return True
            if self._t.size <= HUNT_WINDOW:
                if self._t.size > keep:
                    self._drop(self._t.size - keep)
                self._hunted = True
                return False
            self._drop(HUNT_WINDOW - keep)

    def _hunt_window(self, t: F64) -> tuple[int, float] | None:
        """(index of the SOF crossing, bit period) of the first preamble + SOF in ``t``."""
        if t.size < 4:
            self._preamble_run = 0
            return None
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
                # The SOF's second bit has its mid-bit crossing after the two half-bit intervals.
                return int(hits[0]) + 3, float(mean[hits[0]])
        self._preamble_run = int(run[-1]) if good[-1] else 0
        return None

    # -- receiving one frame ------------------------------------------------------------------

    def _abort(self) -> None:
        """Give up on the current frame; hunt again just after its start-of-frame."""
        self._drop(1)
        self._t0 = None

    def _sample(self, times: F64) -> F64:
        """The kept samples, linearly interpolated at absolute (fractional) sample times."""
        pos = np.clip(times - self._y0, 0.0, self._y.size - 1.000001)
        i = pos.astype(np.int64)
        f = pos - i
        out: F64 = self._y[i] * (1.0 - f) + self._y[i + 1] * f
        return out

    def _bit_times(self, c: F64, nbits: int) -> F64:
        """Re-timed middles of the frame's first ``nbits`` bits from crossings ``c``."""
        assert self._t0 is not None
        half = self._period / 2.0
        phasor = np.exp(2j * np.pi * (c - self._t0) / half)
        phase = np.unwrap(np.angle(_moving_mean(phasor, TIMING_WINDOW))) / (2 * np.pi)
        nominal = self._t0 + (np.arange(nbits) + 1.0) * self._period
        times: F64 = nominal + np.interp(nominal, c, phase) * half
        return times

    def _receive(self) -> tuple[bool, ReceivedFrame | None]:
        """Try to finish the frame being received: (made progress, frame if complete)."""
        assert self._t0 is not None
        t0, period, want = self._t0, self._period, self._want
        now = self._edges.samples
        # Decide once every crossing up to a fixed horizon past the last bit is in (so the result
        # does not depend on how the samples were chunked).
        horizon = t0 + (want + 0.5) * period * (1.0 + DRIFT_SLACK) + 2 * period
        if now < horizon + period:
            return False, None
        c = self._t[: int(np.searchsorted(self._t, horizon))]
        tb = self._bit_times(c, want)
        end = float(tb[-1]) + period / 2
        # Cut short? (a long gap without transitions, or none near the end)
        span = c[c <= end]
        if np.any(np.diff(span) > CARRIER_LOST * period / 2) or span[-1] < end - 1.5 * period:
            self._abort()
            return True, None
        offsets = DECISION_POINTS * period
        after = self._sample(tb[:, None] + offsets).mean(axis=1)
        before = self._sample(tb[:, None] - offsets).mean(axis=1)
        margin = after - before
        bits = ((margin > 0) != self._inverted).astype(np.uint8)
        data = bits_to_bytes(bits)
        if not self._header_known:
            total = self._framing.total_length(data)
            if total is None or total < self._framing.header_size:
                self._abort()
                return True, None
            self._header_known = True
            self._want = 8 * total
            return True, None
        mag = np.abs(margin)
        quality = float(np.clip(1.0 - 2.0 * mag.std() / max(float(mag.mean()), 1e-12), 0.0, 1.0))
        position = round(t0 - (PREAMBLE_BITS - 0.5) * period)
        self._drop(int(np.searchsorted(self._t, float(tb[-1]) - period / 4)))
        self._t0 = None
        return True, ReceivedFrame(data, position, quality)
