"""Preamble: detection, symbol timing, sample-clock offset and the channel estimate.

Every frame starts with three symbols (Schmidl & Cox, IEEE Trans. Commun. 45(12), 1997):

* **sync** ``S``: pseudo-random QPSK on the even carriers only, so its body is two equal halves;
  the receiver's metric ``M(d) = P(d) / E(d)`` (the correlation of two adjacent half-symbol windows
  over their mean energy) reaches about 1 on the whole cyclic prefix of ``S`` and stays near 0 on
  noise, data symbols and silence. It depends neither on the level (+-20 dB), nor on the sign
  (inverted polarity), nor on the channel's filters, since both halves went through the same ones.
  The input is DC-blocked first (a DC offset would correlate with itself).
* **training** ``T T``: the same known QPSK symbol twice. Their sum gives the channel per carrier;
  their difference, the noise per carrier (the SNR that rate adaptation uses); the phase slope
  across carriers of ``T2 * conj(T1)`` is the time ``T2`` arrived late (or early) by, i.e. the
  sample-clock offset between the two sound cards, to about a ppm. The acquisition then resamples
  the received signal with that offset and estimates it again on the resampled symbols (three
  rounds), so carriers stay orthogonal even at 300 ppm, where the top carrier of a 2048-point
  symbol would otherwise slide by a quarter of a carrier spacing.

Fine timing places the FFT window so the channel's impulse response (the inverse FFT of the
channel estimate) sits inside the cyclic prefix with a margin on both sides.

**A spoilt training symbol** (profiles with ``repair_training``: the telephone one). On a phone
call a lost packet leaves a 20 ms hole, filled by the receiver's packet-loss concealment or by
silence: a third of a 70 ms symbol. In a payload symbol the interleaver and the LDPC code absorb
it; in a training symbol it spoils the channel, noise and clock estimates of the whole frame. So
each training symbol is also compared with the sync symbol (known on the even carriers, each
estimate's own delay removed): when one differs from it four times more than the other does, it
is left out, and the frame is acquired on the other training symbol and the sync symbol (the
clock offset from their phase slope over one or two symbols, the noise from their difference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.ofdm.dsp import interpolator, symbol_windows, to_freq, to_time
from audionet.modem.phy.ofdm.profile import OfdmProfile

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]

#: Schmidl-Cox metric that starts a candidate (1 on a clean preamble, ~1/sqrt(N) on noise).
THRESHOLD = 0.45
#: Below this RMS the line is silent (16-bit quantisation noise is 1e-5).
SILENCE_RMS = 1e-4
#: Minimum smoothness of the training symbol's channel across adjacent carriers (1 = perfect).
MIN_TRAINING_MATCH = 0.35
#: Rounds of clock-offset estimation and resampling.
ROUNDS = 3
#: Carriers averaged for the noise estimate per carrier.
NOISE_SPAN = 15
#: A training symbol that differs from the sync symbol this many times more (in power) than the
#: other one does is spoilt (profiles with ``repair_training``): noise alone keeps the two within
#: some 20 % of each other, a 20 ms hole in a 70 ms symbol puts one 10 dB or more above the other.
DAMAGE_RATIO = 4.0


def preamble(p: OfdmProfile) -> F64:
    """The time-domain preamble ``S T T`` (with cyclic prefixes)."""
    lay = p.layout
    sym = to_time(p, np.stack((lay.sync, lay.training, lay.training)))
    return sym.reshape(-1)


def metric(p: OfdmProfile, x: F64) -> F64:
    """Schmidl-Cox metric for every start ``d`` with ``x[d : d + nfft]`` inside ``x``."""
    half = p.nfft // 2
    n = x.size - p.nfft + 1
    if n <= 0:
        return np.zeros(0)
    prod = np.concatenate(([0.0], np.cumsum(x[:-half] * x[half:])))
    energy = np.concatenate(([0.0], np.cumsum(x * x)))
    corr = prod[half : half + n] - prod[:n]
    e = 0.5 * (energy[p.nfft : p.nfft + n] - energy[:n])
    floor = p.nfft * SILENCE_RMS**2
    out: F64 = np.where(e > floor, corr / np.maximum(e, floor), 0.0)
    return out


def coarse_start(p: OfdmProfile, x: F64) -> int:
    """Where the sync symbol starts, from the metric's plateau (``x`` starts at the first crossing).

    The plateau spans the sync symbol's cyclic prefix; its middle is half a prefix after the start.
    ``x`` must hold ``nfft + cp + nfft // 2 + nfft`` samples.
    """
    m = metric(p, x[: p.nfft // 2 + p.cp + 2 * p.nfft])
    top = float(m.max())
    above = np.flatnonzero(m >= top - 0.04 * max(top, 0.1))
    mid = (int(above[0]) + int(above[-1])) // 2
    return max(0, mid - p.cp // 2)


@dataclass(frozen=True, slots=True)
class Acquisition:
    """What the preamble told: where the frame is, the clock offset, the channel and the noise."""

    start: float  #: input position of the frame's first sample (the sync symbol's prefix)
    drift: float  #: relative sample-clock offset (received samples per sent sample, minus 1)
    channel: C128  #: per used carrier
    noise: F64  #: noise variance per used carrier (same units as ``|channel|**2``)
    match: float  #: training match (1 = a clean preamble)

    def positions(self, first: int, count: int) -> F64:
        """Input positions of the frame's samples ``first .. first+count-1``."""
        return self.start + (first + np.arange(count, dtype=np.float64)) * (1.0 + self.drift)

    def delay(self, p: OfdmProfile) -> int:
        """Samples from ``start`` to where the channel's strongest path delivers the frame (the
        impulse response's peak): ``start + delay`` is where the frame's first sample arrived."""
        full = np.zeros(p.nfft, dtype=np.complex128)
        full[p.layout.used] = self.channel
        peak = int(np.argmax(np.abs(np.fft.ifft(full))))
        return (peak + p.nfft // 2) % p.nfft - p.nfft // 2

    @property
    def snr(self) -> F64:
        """Signal-to-noise ratio per used carrier (linear)."""
        out: F64 = np.abs(self.channel) ** 2 / self.noise
        return out


def _training(p: OfdmProfile, y: F64) -> tuple[C128, C128]:
    used = p.layout.used
    spectra = to_freq(p, symbol_windows(p, y, 1, 2))[:, used]
    x = p.layout.training[used]
    return spectra[0] / x, spectra[1] / x


def _fine_shift(p: OfdmProfile, h: C128) -> int:
    """Samples to move the FFT window so the impulse response sits mid-prefix."""
    full = np.zeros(p.nfft, dtype=np.complex128)
    full[p.layout.used] = h
    energy = np.abs(np.fft.ifft(full)) ** 2
    span = max(1, p.cp // 2)
    ring = np.concatenate((energy, energy[:span]))
    c = np.concatenate(([0.0], np.cumsum(ring)))
    sums = c[span : span + p.nfft] - c[: p.nfft]
    a = int(np.argmax(sums)) - p.cp // 4
    return (a + p.nfft // 2) % p.nfft - p.nfft // 2


def _slope(p: OfdmProfile, z: C128, carriers: F64 | None = None) -> float:
    """Phase slope (radians per carrier) of ``z`` across the used carriers (or ``carriers``,
    evenly spaced), weighted by ``|z|``."""
    k = p.layout.used.astype(np.float64) if carriers is None else carriers
    spacing = float(k[1] - k[0]) if k.size > 1 else 1.0
    coarse = float(np.angle(np.sum(z[1:] * np.conj(z[:-1])))) / spacing
    resid = np.angle(z * np.exp(-1j * coarse * k))
    w = np.abs(z)
    if not w.any():
        return coarse
    km = np.average(k, weights=w)
    rm = np.average(resid, weights=w)
    fine = float(np.sum(w * (k - km) * (resid - rm)) / max(np.sum(w * (k - km) ** 2), 1e-30))
    return coarse + fine


def _match(h: C128) -> float:
    """How smooth the estimated channel is across adjacent carriers (a preamble is, junk is not)."""
    num = abs(np.sum(h[1:] * np.conj(h[:-1])))
    den = float(np.sum(np.abs(h[1:]) * np.abs(h[:-1])))
    return float(num / den) if den > 0 else 0.0


def _smooth(h: C128, span: int) -> C128:
    """Average ``span`` adjacent carriers after removing the channel's mean delay (phase slope)."""
    if span <= 1 or h.size < span:
        return h
    step = float(np.angle(np.sum(h[1:] * np.conj(h[:-1]))))
    ramp = np.exp(1j * step * np.arange(h.size))
    flat = h / ramp
    kernel = np.ones(span) / span
    pad = span // 2
    padded = np.concatenate((np.repeat(flat[:1], pad), flat, np.repeat(flat[-1:], pad)))
    out: C128 = np.convolve(padded, kernel, mode="valid") * ramp
    return out


def _moving_mean(v: F64, span: int) -> F64:
    span = min(span, v.size)
    pad = span // 2
    padded = np.concatenate((np.repeat(v[:1], pad), v, np.repeat(v[-1:], span - 1 - pad)))
    out: F64 = np.convolve(padded, np.ones(span) / span, mode="valid")
    return out


def _even(p: OfdmProfile) -> npt.NDArray[np.bool_]:
    """Which used carriers the sync symbol carries (the even ones)."""
    out: npt.NDArray[np.bool_] = p.layout.used % 2 == 0
    return out


def _sync_channel(p: OfdmProfile, y: F64) -> C128:
    """The channel on the sync symbol's carriers (the even used ones), from the sync symbol."""
    carriers = p.layout.used[_even(p)]
    out: C128 = to_freq(p, symbol_windows(p, y, 0, 1))[0, carriers] / p.layout.sync[carriers]
    return out


def _spoilt(p: OfdmProfile, y: F64, h1: C128, h2: C128) -> int | None:
    """Which training symbol (1 or 2) a hole spoilt, or ``None`` (see the module docstring)."""
    ev = _even(p)
    k = p.layout.used[ev].astype(np.float64)
    hs = _sync_channel(p, y)
    errors = []
    for h in (h1[ev], h2[ev]):
        z = h * np.conj(hs)
        untilt = h * np.exp(-1j * _slope(p, z, k) * k)
        errors.append(float(np.mean(np.abs(untilt - hs) ** 2)))
    if errors[0] > DAMAGE_RATIO * errors[1]:
        return 1
    if errors[1] > DAMAGE_RATIO * errors[0]:
        return 2
    return None


def needed(p: OfdmProfile) -> int:
    """Input samples after a coarse start that :func:`acquire` needs (preamble, header, margins)."""
    return (4 + p.header_symbols) * p.symbol_length + p.nfft


def _track(
    p: OfdmProfile,
    x: F64,
    coarse: int,
    first: C128,
    estimate: Callable[[F64], tuple[C128, float]],
    mid: float,
) -> tuple[float, float, F64] | None:
    """Fine timing and the sample-clock offset of the preamble at ``x[coarse:]``: ``first`` is the
    training estimate of the channel on ``x`` as it is, and ``estimate(y)`` gives, for preamble
    samples ``y``, that estimate and how many samples a symbol the clock ran late by. ``mid`` (in
    samples from the start) stays in place while the drift changes. The start, the drift and the
    preamble resampled at them, or ``None`` if ``first`` does not look like ours."""
    span = (3 + p.header_symbols) * p.symbol_length
    start, drift = float(coarse), 0.0
    interp = interpolator()
    if _match(first) < MIN_TRAINING_MATCH:
        return None
    start += _fine_shift(p, first)
    for _ in range(ROUNDS):
        _, late = estimate(interp(x, start + np.arange(span, dtype=np.float64) * (1.0 + drift)))
        new = (1.0 + drift) * (1.0 + late / p.symbol_length) - 1.0
        start += mid * (drift - new)
        drift = new
    return start, drift, interp(x, start + np.arange(span, dtype=np.float64) * (1.0 + drift))


def acquire(p: OfdmProfile, x: F64, coarse: int) -> Acquisition | None:
    """Fine timing, clock offset and channel from the preamble at ``x[coarse:]``; ``None`` if the
    training symbols do not look like ours (a false start on a tone or other periodic sound)."""
    span = (3 + p.header_symbols) * p.symbol_length
    y = x[coarse : coarse + span]
    h1, h2 = _training(p, y)
    spoilt = _spoilt(p, y, h1, h2) if p.repair_training else None
    if spoilt is not None:
        return _acquire_one(p, x, coarse, (h1, h2)[2 - spoilt], 3 - spoilt)

    def estimate(y: F64) -> tuple[C128, float]:
        h1, h2 = _training(p, y)
        return h1 + h2, -_slope(p, h2 * np.conj(h1)) * p.nfft / (2 * np.pi)  # T2 came late by

    # keep the training symbols where they are while drift changes
    tracked = _track(p, x, coarse, h1 + h2, estimate, 2.0 * p.symbol_length)
    if tracked is None:
        return None
    start, drift, y = tracked
    h1, h2 = _training(p, y)
    match = _match(h1 + h2)
    if match < MIN_TRAINING_MATCH:
        return None
    channel = _smooth((h1 + h2) / 2, p.smooth)
    power = float(np.mean(np.abs(channel) ** 2))
    noise = _moving_mean(np.abs(h1 - h2) ** 2 / 2, NOISE_SPAN)
    noise = np.maximum(noise, power * 1e-8)
    return Acquisition(start, drift, channel, noise, match)


def _acquire_one(p: OfdmProfile, x: F64, coarse: int, first: C128, good: int) -> Acquisition | None:
    """:func:`acquire` on the sync symbol and training symbol ``good`` (1 or 2) alone, whose
    estimate on ``x`` as it is is ``first``: the other one was spoilt (see the module docstring)."""
    ev = _even(p)
    k = p.layout.used[ev].astype(np.float64)

    def estimate(y: F64) -> tuple[C128, float]:
        h, hs = _training(p, y)[good - 1], _sync_channel(p, y)
        late = -_slope(p, h[ev] * np.conj(hs), k) * p.nfft / (2 * np.pi)  # over `good` symbols
        return h, late / good

    # keep the middle of the two symbols where it is while drift changes, as acquire() does
    tracked = _track(p, x, coarse, first, estimate, (good + 1) / 2 * p.symbol_length)
    if tracked is None:
        return None
    start, drift, y = tracked
    h, hs = _training(p, y)[good - 1], _sync_channel(p, y)
    match = _match(h)
    if match < MIN_TRAINING_MATCH:
        return None
    channel = _smooth(h, p.smooth)
    power = float(np.mean(np.abs(channel) ** 2))
    # h's noise is sigma^2 per carrier, the sync symbol's half that (its carriers have twice the
    # power): their difference has 1.5 sigma^2.
    diff = _moving_mean(np.abs(h[ev] - hs) ** 2 / 1.5, max(1, NOISE_SPAN // 2))
    noise = np.interp(p.layout.used.astype(np.float64), k, diff)
    noise = np.maximum(noise, power * 1e-8)
    return Acquisition(start, drift, channel, noise, match)
