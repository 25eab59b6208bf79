"""One-tap equaliser per carrier with pilot tracking of phase, timing and level, symbol by symbol.

After the preamble's channel estimate ``H`` divides each received carrier, what is left on the
pilots of symbol ``s`` is ``g_s * exp(j * (theta_s + 2 pi k tau_s / nfft))``: a level ``g_s``, a
common phase ``theta_s`` and a phase slope across carriers from the timing error ``tau_s`` that the
residual sample-clock offset (a ppm or so after resampling) accumulates over a frame of several
seconds. Each symbol's three are measured on its pilots; the timing is then fitted with a straight
line across the frame (a clock offset makes it grow linearly), which averages the pilots of every
symbol. The pilots also measure each symbol's noise: a click raises it for the symbols it hits, and
their bits get correspondingly weaker log-likelihood ratios, which the LDPC decoder then treats as
near-erasures instead of confident errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.ofdm.profile import OfdmProfile
from audionet.modem.phy.ofdm.sync import Acquisition

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]
I64 = npt.NDArray[np.int64]

#: Symbols a frame needs for its pilots to measure the noise per carrier.
MIN_PILOT_NOISE = 8


@dataclass(frozen=True, slots=True)
class Equalized:
    """Equalised data carriers of some symbols, with the noise variance of each value."""

    values: C128  #: (symbols, data carriers)
    noise: F64  #: (symbols, data carriers)
    timing: F64  #: residual timing per symbol in samples (after resampling)
    gain: F64  #: level per symbol relative to the preamble
    burst: F64  #: noise per symbol relative to the preamble's (1 = as expected)
    carrier_noise: F64  #: noise variance of each used carrier (signal power 1), bursts aside


def positions(p: OfdmProfile) -> tuple[I64, I64]:
    """Indices of the pilots and of the data carriers within the used carriers."""
    lay = p.layout
    return np.searchsorted(lay.used, lay.pilots), np.searchsorted(lay.used, lay.data)


def equalize(p: OfdmProfile, acq: Acquisition, spectra: C128, first: int = 0) -> Equalized:
    """Equalise ``spectra`` (symbols, used carriers); ``first`` numbers the first symbol (for the
    timing line)."""
    lay = p.layout
    pilot_pos, data_pos = positions(p)
    z = spectra / acq.channel
    # Noise of each equalised carrier: the receiver's noise plus the channel estimate's own error
    # (two training symbols, averaged over ``smooth`` carriers).
    base = acq.noise / np.abs(acq.channel) ** 2 * (1.0 + 1.0 / (2.0 * p.smooth))
    q = z[:, pilot_pos] / lay.pilot_values
    k = lay.pilots.astype(np.float64)
    w = 1.0 / base[pilot_pos]
    nsym = z.shape[0]
    # Per-symbol phase slope (adjacent pilots first, so no unwrapping is needed), then common phase.
    step = np.angle(np.sum(w[1:] * q[:, 1:] * np.conj(q[:, :-1]), axis=1) / np.sum(w))
    gaps = np.diff(k)
    step = step / float(np.average(gaps, weights=w[1:]))
    rot = q * np.exp(-1j * step[:, None] * k[None, :])
    theta = np.angle(np.sum(w * rot, axis=1))
    resid = np.angle(rot * np.exp(-1j * theta)[:, None])
    km = float(np.average(k, weights=w))
    fine = np.sum(w * (k - km) * resid, axis=1) / float(np.sum(w * (k - km) ** 2))
    slope = step + fine
    theta = np.angle(np.sum(w * q * np.exp(-1j * slope[:, None] * k[None, :]), axis=1))
    gain = np.abs(np.sum(w * q, axis=1)) / float(np.sum(w))
    gain = np.maximum(gain, 1e-6)
    # Per-symbol noise on the pilots, relative to the preamble's (clicks, bursts); the median over
    # the pilots (an exponential variable's median is ln 2 of its mean) so that a few poor pilot
    # carriers do not pass for a burst.
    model = np.exp(1j * (theta[:, None] + slope[:, None] * k[None, :])) * gain[:, None]
    dev = np.abs(q - model) ** 2
    burst = np.maximum(np.median(dev / base[pilot_pos], axis=1) / np.log(2.0), 1.0)
    if nsym >= MIN_PILOT_NOISE:
        # The preamble's two training symbols do not see the intersymbol interference of a long
        # impulse response (they repeat): the pilots of every symbol do. Per pilot carrier, the
        # mean deviation over the symbols, interpolated across the band.
        per_pilot = np.average(dev / gain[:, None] ** 2, axis=0, weights=1.0 / burst)
        base = np.maximum(base, np.interp(lay.used, lay.pilots, per_pilot))
        burst = np.maximum(np.median(dev / base[pilot_pos], axis=1) / np.log(2.0), 1.0)
    if nsym >= 4:
        # The timing grows linearly with a clock offset: fit a line through the symbols' slopes.
        s = first + np.arange(nsym, dtype=np.float64)
        wt = 1.0 / burst
        coef = np.polyfit(s, slope, 1, w=np.sqrt(wt))
        line = np.polyval(coef, s)
        # Keep a symbol's own slope where it clearly departs from the line (a jump in the clock).
        slope = np.where(np.abs(slope - line) * k[-1] > 0.5, slope, line)
        rot = q * np.exp(-1j * slope[:, None] * k[None, :])
        theta = np.angle(np.sum(w * rot, axis=1))
    correction = gain[:, None] * np.exp(
        1j * (theta[:, None] + slope[:, None] * lay.used[None, :].astype(np.float64))
    )
    zc = z / correction
    noise = base[None, :] * burst[:, None] / gain[:, None] ** 2
    timing = slope * p.nfft / (2 * np.pi)
    return Equalized(zc[:, data_pos], noise[:, data_pos], timing, gain, burst, base)
