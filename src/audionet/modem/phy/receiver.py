"""The streaming Manchester receiver, vectorised with numpy.

1. **Transitions.** :class:`~audionet.modem.phy.edges.EdgeDetector` removes DC (offsets, and the
   wander a high-pass leaves) and reports zero crossings with hysteresis: a time and a direction.
2. **Preamble and start-of-frame.** Alternating bits give crossings one bit apart; at least
   ``MIN_PREAMBLE`` of them in a row are a preamble, and its bit period ``T`` is measured there (so a
   sender whose bit length is not ours is still read). Each crossing within three bits after it is
   then tried as the middle of the SOF's second bit: the bits decided (step 4) one period apart
   before it must read ``SOF_PATTERN`` (polarity normal) or its complement (an inverted line, whose
   bits are then complemented). Deciding on the signal rather than on the crossing intervals
   survives band-pass filters that shift the preamble's crossings against the data's.
3. **Re-timing on every transition.** Every transition of a Manchester line, mid-bit or boundary,
   sits on the half-bit grid ``t0 + j*T/2``. The phase of each crossing against that grid (as a
   unit phasor) is averaged over ``TRACK_WINDOW`` neighbours and unwrapped, which assigns every
   crossing its whole half-bit even while the timing moves (clock drift, wow and flutter: rate
   changes of about 1 %); the crossings' residuals against their half-bits are then averaged over
   ``TIMING_WINDOW`` neighbours against jitter. One noisy crossing cannot move the timing.
4. **Decisions.** Each bit is decided on the re-timed grid by comparing the signal's mean over its
   second half with its first (at 1/8, 1/4 and 3/8 of a bit either side of the middle): a matched
   filter, so noise and band-limiting cost single bits rather than the frame's whole timing.
5. **Length.** After ``header_size`` bytes the frame layer's ``total_length`` says how many bytes the
   frame has (or that the header is not valid: the receiver drops it and hunts again). A gap of
   ``CARRIER_LOST`` half-bits without transitions inside a frame means it was cut short. The frame
   is decided when the line falls silent after it, or at a horizon ``DRIFT_SLACK`` past its end.

**Quality** is ``1 - 2 * std(|margin|) / mean(|margin|)`` over the frame's decision margins (clipped
to [0, 1]): 1 for a perfect signal, lower as noise and distortion close the eye.
"""

from __future__ import annotations

import math
from typing import Any

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
#: Largest relative error assumed between the period measured on the preamble and the frame's real
#: one (clock drift is a few hundred ppm, but band-pass filters bias the preamble's crossings by more).
DRIFT_SLACK = 0.01
#: Crossings averaged to follow the timing phase (about 10 bits: follows rate changes of 1%).
TRACK_WINDOW = 15
#: Crossings averaged for the final timing (about 20 bits: smooth against jitter).
TIMING_WINDOW = 31
#: Crossings searched for a preamble at a time (bounds the work per frame on long inputs).
HUNT_WINDOW = 4096
#: Bits 58 to 63 on the air: the end of the preamble and the start-of-frame ``11``.
SOF_PATTERN = (1, 0, 1, 0, 1, 1)
#: Where each half-bit is sampled, in bits from the middle of the bit.
DECISION_POINTS = np.array([0.125, 0.25, 0.375])


def _moving_mean(z: npt.NDArray[Any], width: int) -> npt.NDArray[Any]:
    """Centred moving mean (windows shrink at the ends)."""
    c = np.concatenate(([0], np.cumsum(z)))
    i = np.arange(z.size)
    lo = np.maximum(i - width // 2, 0)
    hi = np.minimum(i + width // 2 + 1, z.size)
    out: npt.NDArray[Any] = (c[hi] - c[lo]) / (hi - lo)
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
        times, _ = self._edges.feed(samples)  # directions: polarity comes from the SOF decisions
        if times.size:
            self._t = np.concatenate((self._t, times))
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

    # -- hunting for preamble + start-of-frame -------------------------------------------------

    def _hunt(self) -> bool:
        """Look for a preamble and SOF in the crossings; True (and receive state set) if found."""
        keep = PERIOD_INTERVALS + 16  # crossings kept for a preamble still arriving
        while True:
            truncated = self._t.size > HUNT_WINDOW
            found = self._hunt_window(self._t[:HUNT_WINDOW])
            if isinstance(found, tuple):
                sof, period, inverted = found
                self._period = period
                self._inverted = inverted
                self._drop(sof)
                self._t0 = float(self._t[0])
                self._want = 8 * self._framing.header_size
                self._header_known = False
                self._preamble_run = 0
                return True
            if truncated:
                self._drop(HUNT_WINDOW - keep)
                continue
            if found is None:
                if self._t.size > keep:
                    self._drop(self._t.size - keep)
                self._hunted = True
            return False

    def _hunt_window(self, t: F64) -> tuple[int, float, bool] | bool | None:
        """The first preamble + SOF in ``t``: (SOF crossing index, bit period, inverted).

        ``False`` when a preamble was seen but its start-of-frame cannot be judged yet (more samples
        needed), ``None`` when there is none.
        """
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
        self._preamble_run = int(run[-1]) if good[-1] else 0
        ends = np.flatnonzero((run >= MIN_PREAMBLE) & ~np.append(good[1:], False))
        for j in ends:
            m = min(int(run[j]), PERIOD_INTERVALS)
            # Mean of the last m intervals, from crossing times directly (chunking cannot change it).
            period = float(t[j + 1] - t[j + 1 - m]) / m
            found = self._start_of_frame(t, int(j) + 1, period)
            if isinstance(found, tuple):
                return found[0], period, found[1]
            if found is False:
                return False
        return None

    def _start_of_frame(self, t: F64, end: int, period: float) -> tuple[int, bool] | bool | None:
        """Which crossing just after a preamble ending at crossing ``end`` is the SOF's second bit.

        Each candidate is tried as the middle of bit 63: the bits decided one period apart before it
        must read ``1 0 1 0 1 1`` (the preamble's end and the SOF) or its complement (an inverted
        line), each with a clear margin. Deciding on the signal itself, rather than trusting the
        interval pattern, survives band-pass filters that shift the preamble's crossings against
        the data's. ``False``: wait for more samples; ``None``: no start-of-frame here.
        """
        lo, hi = t[end] - 0.25 * period, t[end] + 2.75 * period
        if self._edges.samples < hi + period or (t.size and t[-1] < hi and t.size >= HUNT_WINDOW):
            return False
        ref = np.median(np.abs(self._margins(t[max(end - 8, 0) : end + 1], period)))
        for i in np.flatnonzero((t >= lo) & (t <= hi)):
            margins = self._margins(t[i] + period * np.arange(-5.0, 1.0), period)
            if np.min(np.abs(margins)) < 0.25 * ref:
                continue
            bits = tuple(int(b) for b in margins > 0)
            if bits in (SOF_PATTERN, tuple(1 - b for b in SOF_PATTERN)):
                return int(i), bits != SOF_PATTERN
        return None

    # -- receiving one frame ------------------------------------------------------------------

    def _abort(self) -> None:
        """Give up on the current frame; hunt again just after its start-of-frame."""
        self._drop(1)
        self._t0 = None

    def _margins(self, middles: F64, period: float) -> F64:
        """Second-half mean minus first-half mean of the bits centred at ``middles``."""
        offsets = DECISION_POINTS * period
        after = self._sample(middles[:, None] + offsets).mean(axis=1)
        before = self._sample(middles[:, None] - offsets).mean(axis=1)
        out: F64 = after - before
        return out

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
        u = (c - self._t0) / half  # crossing times in half-bits since the SOF
        # Pass 1: a short phasor average follows fast timing changes (about 1% of rate) and
        # assigns each crossing its whole half-bit; pass 2 averages the now unwrapped residuals
        # over a longer window against jitter (a centred mean does not lag a linear drift).
        coarse = np.unwrap(np.angle(_moving_mean(np.exp(2j * np.pi * u), TRACK_WINDOW)))
        residual = u - np.rint(u - coarse / (2 * np.pi))
        phase = _moving_mean(residual, TIMING_WINDOW)
        nominal = self._t0 + (np.arange(nbits) + 1.0) * self._period
        times: F64 = nominal + np.interp(nominal, c, phase) * half
        times = nominal + np.interp(times, c, phase) * half  # once more, at the re-timed places
        return times

    def _receive(self) -> tuple[bool, ReceivedFrame | None]:
        """Try to finish the frame being received: (made progress, frame if complete)."""
        assert self._t0 is not None
        t0, period, want = self._t0, self._period, self._want
        now = self._edges.samples
        # Decide once every crossing up to a limit past the last bit is in: a fixed horizon, or the
        # line falling silent after the frame, whichever comes first. Both are properties of the
        # signal, not of when samples arrived, so chunking cannot change the result.
        earliest = t0 + (want + 0.5) * period * (1.0 - DRIFT_SLACK)
        horizon = t0 + (want + 0.5) * period * (1.0 + DRIFT_SLACK) + 2 * period
        if now < earliest:
            return False, None
        silence = CARRIER_LOST * period / 2
        first = max(int(np.searchsorted(self._t, earliest - period)) - 1, 0)
        tail = self._t[first : int(np.searchsorted(self._t, horizon + period)) + 1]
        gaps = np.flatnonzero(np.diff(tail) > silence)
        if gaps.size:
            limit = min(horizon, float(tail[gaps[0]]) + period / 2)
        elif now - float(tail[-1]) > silence + period:
            limit = min(horizon, float(tail[-1]) + period / 2)
        elif now >= horizon + period:
            limit = horizon
        else:
            return False, None
        c = self._t[: int(np.searchsorted(self._t, limit, side="right"))]
        tb = self._bit_times(c, want)
        end = float(tb[-1]) + period / 2
        # Cut short? (a long gap without transitions, or none near the end)
        span = c[c <= end]
        if np.any(np.diff(span) > CARRIER_LOST * period / 2) or span[-1] < end - 1.5 * period:
            self._abort()
            return True, None
        margin = self._margins(tb, period)
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
