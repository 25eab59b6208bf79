"""Measurements on PCM used by tests, demos and the CLI: dominant frequency, tone SNR, levels, dropouts."""

from __future__ import annotations

import numpy as np

from audionet.audio.format import AudioFormat, to_float


def _mono(pcm: bytes, fmt: AudioFormat) -> np.ndarray:
    return to_float(pcm, fmt.channels)[:, 0].astype(np.float64)


def dominant_frequency(pcm: bytes, fmt: AudioFormat) -> float:
    """The strongest frequency (Hz) of the first channel: windowed FFT, parabolic peak refinement."""
    x = _mono(pcm, fmt)
    if x.size < 16:
        return 0.0
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    k = int(np.argmax(spectrum[1:])) + 1
    peak = float(k)
    if k < spectrum.size - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        if a - 2 * b + c != 0:
            peak += 0.5 * float((a - c) / (a - 2 * b + c))
    return peak * fmt.rate / x.size


def tone_snr(pcm: bytes, fmt: AudioFormat, freq: float) -> float:
    """Signal-to-noise ratio (dB) of a pure tone at ``freq``: the best-fitting sine against the rest.

    Fits amplitude and phase (least squares on sine, cosine and a constant) so codec delay and
    phase shifts do not count as noise; everything else (distortion, noise, dropouts) does.
    """
    x = _mono(pcm, fmt)
    if x.size < 16:
        return float("-inf")
    t = np.arange(x.size) / fmt.rate
    basis = np.stack(
        [np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t), np.ones_like(t)], 1
    )
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    fit = basis[:, :2] @ coef[:2]
    residual = x - basis @ coef
    noise = float(np.mean(residual**2))
    signal = float(np.mean(fit**2))
    if noise == 0:
        return float("inf")
    return 10 * float(np.log10(signal / noise)) if signal > 0 else float("-inf")


def level_dbfs(pcm: bytes, fmt: AudioFormat) -> tuple[float, float]:
    """RMS and peak level in dBFS (full scale = 0 dB) over all channels."""
    x = to_float(pcm, fmt.channels)
    if x.size == 0:
        return float("-inf"), float("-inf")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    peak = float(np.max(np.abs(x)))
    return (
        20 * float(np.log10(rms)) if rms > 0 else float("-inf"),
        20 * float(np.log10(peak)) if peak > 0 else float("-inf"),
    )


def dropouts(pcm: bytes, fmt: AudioFormat, window: float = 0.02, floor_db: float = -40.0) -> int:
    """Number of ``window``-second stretches quieter than ``floor_db`` dBFS RMS (gaps in a tone)."""
    x = _mono(pcm, fmt)
    n = max(1, int(window * fmt.rate))
    blocks = x[: x.size - x.size % n].reshape(-1, n)
    if blocks.size == 0:
        return 0
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    return int(np.sum(20 * np.log10(rms + 1e-12) < floor_db))
