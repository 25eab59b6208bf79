"""A streaming fractional resampler (windowed sinc), for clock drift and rate changes.

Output sample ``m`` is the band-limited interpolation of the input at the fractional input position
``m * ratio``: a Kaiser-windowed sinc of ``half_width`` zero crossings on each side, tabulated at
``PHASES`` sub-sample phases and linearly interpolated between them (error far below 16-bit
quantisation). When ``ratio > 1`` (fewer output samples) the sinc is stretched to the output's Nyquist
frequency, so there is no aliasing. Each output row is normalised to unity gain at DC.

Output positions are computed from the absolute output index, so feeding input in chunks of any
size gives exactly the same output as feeding it whole.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

PHASES = 512  # table entries per input sample
KAISER_BETA = 8.6  # about 80 dB stop-band attenuation
CUTOFF = 0.94  # pass band edge as a fraction of the lower Nyquist frequency
BLOCK = 4096  # outputs computed per vectorised block (bounds memory)


class FractionalResampler:
    """Resample a stream by ``1 / ratio`` (``ratio`` input samples per output sample)."""

    def __init__(self, ratio: float, half_width: int = 16) -> None:
        if not 0.01 < ratio < 100:
            raise ValueError(f"resampling ratio {ratio} out of range")
        self.ratio = float(ratio)
        fc = CUTOFF * min(1.0, 1.0 / ratio)  # cutoff as a fraction of the input Nyquist frequency
        self._half = half_width / fc  # kernel half-length in input samples
        self._taps = 2 * math.ceil(self._half) + 1
        lead = math.ceil(self._half)
        d = np.arange(-lead * PHASES, (lead + 1) * PHASES + 2) / PHASES
        inside = np.abs(d) < self._half
        window = np.zeros_like(d)
        window[inside] = np.i0(KAISER_BETA * np.sqrt(1 - (d[inside] / self._half) ** 2))
        self._table = fc * np.sinc(fc * d) * window / np.i0(KAISER_BETA)
        self._origin = math.ceil(self._half) * PHASES  # table index of d = 0
        pad = math.ceil(self._half) + 2
        self._buf = np.zeros(pad)  # input history (zeros before the stream starts)
        self._start = -pad  # absolute input index of self._buf[0]
        self._m = 0  # next output index
        self._consumed = 0  # input samples received

    def _outputs(self, upto: int) -> F64:
        """Outputs ``self._m`` .. ``upto - 1`` from the buffer."""
        parts = []
        lead = math.ceil(self._half)
        for m0 in range(self._m, upto, BLOCK):
            m = np.arange(m0, min(m0 + BLOCK, upto), dtype=np.float64)
            c = m * self.ratio
            k0 = np.floor(c).astype(np.int64) - lead
            k = k0[:, None] + np.arange(self._taps)[None, :]
            pos = (c[:, None] - k) * PHASES + self._origin  # table position of each tap's distance
            i = np.clip(np.floor(pos).astype(np.int64), 0, self._table.size - 2)
            f = pos - i
            w = self._table[i] * (1.0 - f) + self._table[i + 1] * f
            w /= w.sum(axis=1, keepdims=True)
            parts.append(np.einsum("ij,ij->i", self._buf[k - self._start], w))
        self._m = max(self._m, upto)
        return np.concatenate(parts) if parts else np.zeros(0)

    def _drop_history(self) -> None:
        keep_from = math.floor(self._m * self.ratio) - math.ceil(self._half) - 2
        if keep_from > self._start:
            self._buf = self._buf[keep_from - self._start :]
            self._start = keep_from

    def process(self, x: npt.ArrayLike) -> F64:
        """Resample the next chunk; returns the outputs it completes (possibly none)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        self._buf = np.concatenate((self._buf, x))
        self._consumed += x.size
        end = self._start + self._buf.size  # absolute index just past the newest input
        # Output m needs inputs up to floor(m * ratio) + ceil(half) + 1.
        upto = math.floor((end - math.ceil(self._half) - 2) / self.ratio)
        out = self._outputs(max(upto, self._m))
        self._drop_history()
        return out

    def flush(self) -> F64:
        """The remaining outputs, as if the input were followed by silence."""
        total = math.floor((self._consumed - 1) / self.ratio) + 1 if self._consumed else 0
        self._buf = np.concatenate((self._buf, np.zeros(2 * math.ceil(self._half) + 4)))
        out = self._outputs(max(total, self._m))
        self._drop_history()
        return out
