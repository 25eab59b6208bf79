"""OFDM primitives over numpy arrays: symbols to samples and back, band-limited interpolation.

Real-valued OFDM: a symbol is the inverse real FFT of ``nfft // 2 + 1`` carrier values (the other
half of the spectrum is their complex conjugate, so the samples are real; bin 0 and the Nyquist bin
stay empty), with the last ``cp`` samples copied in front as the cyclic prefix.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.ofdm import resample_kernel
from audionet.modem.phy.ofdm.profile import OfdmProfile

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]
I64 = npt.NDArray[np.int64]


def time_scale(p: OfdmProfile) -> float:
    """Factor from unit-power carriers to samples at the profile's RMS level.

    With every used carrier at power 1, ``irfft`` gives a mean sample power of
    ``2 * n_used / nfft**2``; this scale brings that to ``rms**2``.
    """
    return float(p.rms * p.nfft / np.sqrt(2.0 * p.layout.used.size))


def to_time(p: OfdmProfile, spectra: C128) -> F64:
    """Carrier values ``(symbols, nfft//2+1)`` to samples ``(symbols, cp + nfft)`` with prefixes."""
    body = np.fft.irfft(spectra, n=p.nfft, axis=-1) * time_scale(p)
    return np.concatenate((body[..., -p.cp :], body), axis=-1)


def to_freq(p: OfdmProfile, bodies: F64) -> C128:
    """FFT of symbol bodies ``(symbols, nfft)`` back to carrier values (same scale as :func:`to_time`)."""
    out: C128 = np.fft.rfft(bodies, axis=-1) / time_scale(p)
    return out


class Interpolator:
    """Band-limited interpolation at fractional positions (a Kaiser-windowed sinc, polyphase).

    ``half_width`` zero crossings each side and ``phases`` sub-sample steps: with 14 and 1024, the
    error stays below about -60 dB up to 0.9 of the Nyquist frequency (20 kHz at 44.1 kHz), below
    the 1024-QAM's needs. Used to undo the clock difference between two sound cards before the FFT,
    which is what keeps the carriers orthogonal at +-300 ppm.
    """

    def __init__(self, half_width: int = 14, phases: int = 1024, beta: float = 9.0) -> None:
        self.lead = half_width
        self.phases = phases
        taps = 2 * half_width
        d = np.arange(phases)[:, None] / phases + (half_width - 1) - np.arange(taps)[None, :]
        window = np.i0(beta * np.sqrt(np.clip(1 - (d / half_width) ** 2, 0.0, None))) / np.i0(beta)
        table = np.sinc(d) * window
        self._table = (table / table.sum(axis=1, keepdims=True)).astype(np.float64)
        self._offsets = np.arange(taps, dtype=np.int64) - (half_width - 1)

    def __call__(self, x: F64, positions: F64, compiled: bool = True) -> F64:
        """``x`` interpolated at ``positions`` (indices into ``x``; outside it counts as silence).

        ``compiled=False`` uses the numpy version even where numba is available (for tests)."""
        base = np.floor(positions)
        phase = np.rint((positions - base) * self.phases).astype(np.int64)
        base = base.astype(np.int64) + (phase == self.phases)
        phase %= self.phases
        pad = self.lead + 1
        xp = np.concatenate((np.zeros(pad), x, np.zeros(pad)))
        # First input of each output's taps, kept inside the padded input.
        first = np.clip(base + pad + self._offsets[0], 0, xp.size - self._offsets.size)
        kernel = resample_kernel.compiled() if compiled else None
        if kernel is not None:
            out: F64 = np.empty(positions.size)
            kernel(xp, first, phase, self._table, out)
            return out
        idx = first[:, None] + np.arange(self._offsets.size)[None, :]
        out = np.einsum("ij,ij->i", xp[idx], self._table[phase])
        return out


@functools.cache
def interpolator() -> Interpolator:
    return Interpolator()


def symbol_windows(p: OfdmProfile, y: F64, first: int, count: int) -> F64:
    """Bodies ``(count, nfft)`` of symbols ``first .. first+count-1`` of a frame resampled to ``y``
    (symbol ``i`` starts at ``i * (nfft + cp)``; its body follows its prefix)."""
    starts = (first + np.arange(count)) * p.symbol_length + p.cp
    idx = starts[:, None] + np.arange(p.nfft)[None, :]
    out: F64 = y[np.clip(idx, 0, max(y.size - 1, 0))] if y.size else np.zeros(idx.shape)
    return out


#: Impulse blanking: samples beyond this many standard deviations of the signal are clicks.
BLANK_SIGMAS = 5.0
#: ... and the blanked stretch goes on this long after the last such sample (a click rings down).
BLANK_TAIL = 0.0007


def level(x: F64) -> float:
    """Standard deviation of a stretch of OFDM signal, robustly: the median absolute sample of a
    Gaussian-like signal is 0.674 deviations, and a click does not move the median."""
    return float(np.median(np.abs(x))) / 0.6745 if x.size else 0.0


def blank(x: F64, rate: int, sigma: float) -> tuple[F64, int]:
    """``x`` with impulses (clicks) set to zero, and how many samples were blanked.

    ``sigma`` is the signal's level (:func:`level` of a stretch known to carry signal, such as
    the preamble: silence after a frame must not count). A sample more than
    :data:`BLANK_SIGMAS` deviations out starts a blank that lasts until :data:`BLANK_TAIL` seconds
    after the last such sample: an OFDM signal goes that far out about once in two million samples,
    a click (a spike ringing down over a fraction of a millisecond) every time. Zeroing 1 ms of a
    43 ms symbol costs that symbol about 17 dB of SNR; a click of half full scale left in place
    costs 8 dB or more, and the pilots flag the symbol either way.
    """
    if x.size == 0 or sigma <= 0:
        return x, 0
    hits = np.flatnonzero(np.abs(x) > BLANK_SIGMAS * sigma)
    if hits.size == 0:
        return x, 0
    tail = max(1, round(BLANK_TAIL * rate))
    mask = np.zeros(x.size + 1, dtype=np.int64)
    np.add.at(mask, np.maximum(hits - 2, 0), 1)
    np.add.at(mask, np.minimum(hits + tail, x.size), -1)
    blanked = np.cumsum(mask[:-1]) > 0
    out = x.copy()
    out[blanked] = 0.0
    return out, int(blanked.sum())
