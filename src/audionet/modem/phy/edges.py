"""Streaming zero-crossing detector for baseband line codes, vectorised with numpy.

The detector removes DC with a one-pole DC blocker, follows the signal's envelope, and reports the
crossings of zero that pass a hysteresis of a fraction of that envelope (so noise riding on a flat
half-bit, or on silence far below the signal, does not make crossings). Each crossing has a
sub-sample time (linear interpolation between the two samples around zero) and a direction
(+1 rising, -1 falling). All state is carried between chunks, so feeding a signal in pieces of any
size gives exactly the same crossings as feeding it whole.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]


class EdgeDetector:
    """Finds zero crossings with hysteresis in a stream of samples.

    ``dc_cutoff`` and ``envelope_time`` are in samples' terms: the DC blocker's corner frequency as a
    fraction of the sample rate, and the envelope follower's time constant in samples.
    ``hysteresis`` is the fraction of the envelope the signal must pass beyond zero; ``floor`` is the
    smallest threshold in absolute (full-scale = 1) units.
    """

    def __init__(
        self,
        dc_cutoff: float,
        envelope_time: float,
        hysteresis: float = 0.25,
        floor: float = 1e-3,
    ) -> None:
        self._r = math.exp(-2.0 * math.pi * dc_cutoff)
        self._a = math.exp(-1.0 / max(envelope_time, 1.0))
        self._hyst = hysteresis
        self._floor = floor
        self._dc_zi = np.zeros(1)
        self._env_zi = np.zeros(1)
        self._prev = 0.0  # last filtered sample of the previous chunk
        self._state = 0  # last hysteresis state (+1 high, -1 low, 0 not yet known)
        self._last_zc = -1.0  # time of the last plain zero crossing seen so far
        self._n = 0  # samples consumed
        self.level = 0.0  # current envelope (mean absolute amplitude, after DC removal)
        #: The last chunk after DC removal (the receiver samples its bit decisions from it).
        self.filtered: F64 = np.zeros(0)

    @property
    def samples(self) -> int:
        """Samples consumed so far."""
        return self._n

    def feed(self, samples: npt.ArrayLike) -> tuple[F64, I8]:
        """Crossing times (absolute, in samples) and directions found in ``samples``."""
        # Non-finite samples would poison the filters' state for good: read them as silence.
        x = np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1), posinf=0.0, neginf=0.0)
        n = x.size
        if n == 0:
            self.filtered = np.zeros(0)
            return np.zeros(0), np.zeros(0, dtype=np.int8)
        base = self._n
        # DC blocker: y[n] = x[n] - x[n-1] + r*y[n-1] (first-order high-pass, unity gain at high f).
        y, self._dc_zi = lfilter([1.0, -1.0], [1.0, -self._r], x, zi=self._dc_zi)
        env, self._env_zi = lfilter([1.0 - self._a], [1.0, -self._a], np.abs(y), zi=self._env_zi)
        self.level = float(env[-1])
        self.filtered = y
        thr = np.maximum(self._hyst * env, self._floor)
        s = (y > thr).view(np.int8) - (y < -thr).view(np.int8)  # +1 above, -1 below, 0 between
        # Hysteresis state changes: consecutive decided samples of opposite sign (the carried state
        # counts as one before the chunk).
        decided = np.flatnonzero(s)
        signs = s[decided]
        if self._state:
            decided = np.concatenate(([-1], decided))
            signs = np.concatenate(([np.int8(self._state)], signs))
        flips = np.flatnonzero(signs[1:] != signs[:-1]) + 1
        changes = decided[flips]
        dirs = signs[flips]
        # Plain zero crossings between consecutive samples (previous chunk's last sample included).
        z = np.concatenate(([self._prev], y))
        neg = z < 0.0
        zc = np.flatnonzero(neg[1:] != neg[:-1])  # crossing between z[k] and z[k+1]
        denom = z[zc] - z[zc + 1]
        frac = np.where(denom != 0.0, z[zc] / np.where(denom != 0.0, denom, 1.0), 0.0)
        zc_time = base - 1 + zc + frac
        # A hysteresis change at sample j belongs to the last plain crossing at or before it.
        k = np.searchsorted(zc, changes, side="right") - 1
        padded = np.concatenate((zc_time, [self._last_zc]))  # index -1 = carried crossing
        times = padded[np.where(k >= 0, k, -1)]
        if zc.size:
            self._last_zc = float(zc_time[-1])
        self._prev = float(y[-1])
        if signs.size:
            self._state = int(signs[-1])
        self._n += n
        return times.astype(np.float64), dirs.astype(np.int8)
