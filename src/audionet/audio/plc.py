"""Asterisk's generic packet-loss concealment (``main/plc.c``, Steve Underwood's SpanDSP PLC).

When a lost packet leaves a hole in a call, a receiver with a jitter buffer keeps the call's
timeline and fills the hole: Asterisk's jitter buffer (``JITTERBUFFER()``, or ``jbenable`` on a
channel) hands on an *interpolation* frame of the lost frame's length, and ``genericplc => true``
(``codecs.conf``; true in the sample configuration) makes ``ast_write`` fill it with
:meth:`Concealer.fill` (``plc_fillin``) and pass real frames through :meth:`Concealer.good`
(``plc_rx``). This is a line-for-line port of the C with numpy, so a simulated call conceals a lost
frame as Asterisk does:

* while audio arrives, the last ``CORRELATION_SPAN + PITCH_MIN`` (280) samples are kept;
* at the first missing sample the pitch of that history is found by the average magnitude
  difference function over periods of ``PITCH_MAX`` to ``PITCH_MIN`` samples (40-120: 66-200 Hz at
  8 kHz); the last period, its last quarter overlap-added with the period before, is repeated,
  its first quarter period blended with the reversed end of the real audio;
* the repeated period fades linearly to silence over 50 ms (``ATTENUATION_INCREMENT`` per sample);
* the first quarter period of the real audio that follows is overlap-added with the synthetic
  signal.

The constants are the C's at 8 kHz; at another rate they scale with it (Asterisk applies its PLC
to 8 kHz signed linear only). Samples are s16 as ``numpy.int16`` arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I16 = npt.NDArray[np.int16]
F64 = npt.NDArray[np.float64]

#: plc.h at 8 kHz: the longest pitch period searched (samples; 66 Hz), the shortest (200 Hz),
#: the span the AMDF compares, and the history kept.
PITCH_MIN = 120
PITCH_MAX = 40
CORRELATION_SPAN = 160
#: plc.c: "a straight line fade to zero volume in 50ms" (per sample at 8 kHz).
ATTENUATION_INCREMENT = 0.0025


def _saturate(x: F64) -> I16:
    """plc.c's ``fsaturate``: round to nearest, clipped to int16."""
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def _truncate(x: F64) -> I16:
    """C's float-to-int16 conversion in ``plc_fillin``'s fade (truncation toward zero)."""
    return np.clip(np.trunc(x), -32768, 32767).astype(np.int16)


class Concealer:
    """One direction of a call's packet-loss concealment (one ``plc_state_t``)."""

    def __init__(self, rate: int = 8000) -> None:
        scale = rate / 8000
        self.pitch_min = max(2, round(PITCH_MIN * scale))
        self.pitch_max = max(1, round(PITCH_MAX * scale))
        self.span = max(1, round(CORRELATION_SPAN * scale))
        self.attenuation = ATTENUATION_INCREMENT / scale
        self._history: I16 = np.zeros(self.span + self.pitch_min, dtype=np.int16)
        self._pitchbuf: F64 = np.zeros(self.pitch_min)
        #: the pitch period (samples) found at the start of the last hole
        self.pitch = self.pitch_min
        self._offset = 0
        #: samples filled in since the last real audio (``missing_samples``)
        self.missing = 0

    def _save(self, amp: I16) -> None:
        hist = self._history
        if amp.size >= hist.size:
            hist[:] = amp[-hist.size :]
        else:
            hist[: -amp.size] = hist[amp.size :].copy()
            hist[-amp.size :] = amp

    def _cycle(self, n: int) -> npt.NDArray[np.int64]:
        """Indices of the next ``n`` samples of the repeated period, advancing the offset."""
        idx = (self._offset + np.arange(n)) % self.pitch
        self._offset = (self._offset + n) % self.pitch
        return idx

    def good(self, pcm: I16) -> I16:
        """Real audio (``plc_rx``): after a fill, its first quarter period is blended with the
        synthetic signal. Returns the samples to play (a new array)."""
        amp = pcm.astype(np.int16, copy=True)
        if self.missing:
            overlap = min(self.pitch >> 2, amp.size)
            if overlap:
                gain = max(0.0, 1.0 - self.missing * self.attenuation)
                step = 1.0 / overlap
                i = np.arange(overlap)
                new_w = step * (i + 1)
                old_w = np.maximum(0.0, (1.0 - step) * gain - step * gain * i)
                synth = self._pitchbuf[self._cycle(overlap)]
                amp[:overlap] = _saturate(old_w * synth + new_w * amp[:overlap])
            self.missing = 0
        self._save(amp)
        return amp

    def fill(self, n: int) -> I16:
        """``n`` samples in place of lost audio (``plc_fillin``)."""
        amp = np.zeros(n, dtype=np.int16)
        hist = self._history.astype(np.float64)
        size = hist.size
        i = 0
        if self.missing == 0:
            self.pitch = pitch = self._amdf(hist)
            overlap = pitch >> 2
            buf = hist[size - pitch : size].copy()
            if overlap:
                step = 1.0 / overlap
                w = step * (np.arange(overlap) + 1)
                k = np.arange(pitch - overlap, pitch)
                buf[pitch - overlap :] = (
                    hist[size - pitch + k] * (1.0 - w) + hist[size - 2 * pitch + k] * w
                )
                # Blend the first quarter period with the reversed end of the real audio.
                m = min(overlap, n)
                j = np.arange(m)
                new_w = step * (j + 1)
                old_w = np.maximum(0.0, 1.0 - step - step * j)
                amp[:m] = _saturate(old_w * hist[size - 1 - j] + new_w * buf[:m])
                i = overlap
            self._pitchbuf = buf
            self._offset = overlap % pitch
            gain = 1.0
        else:
            gain = 1.0 - self.missing * self.attenuation
        if i < n and gain > 0.0:
            # The period repeats, fading by ``attenuation`` per sample until it reaches zero.
            steps = min(n - i, int(np.ceil(gain / self.attenuation - 1e-9)))
            g = gain - self.attenuation * np.arange(steps)
            amp[i : i + steps] = _truncate(self._pitchbuf[self._cycle(steps)] * g)
        self.missing += n
        self._save(amp)
        return amp

    def _amdf(self, hist: F64) -> int:
        """The pitch period of the history: the lag (PITCH_MAX..PITCH_MIN) with the smallest
        average magnitude difference over ``span`` samples (plc.c's ``amdf_pitch``)."""
        base = hist[: self.span]
        lags = np.arange(self.pitch_max, self.pitch_min + 1)
        acc = np.array([np.abs(hist[lag : lag + self.span] - base).sum() for lag in lags])
        return int(lags[int(np.argmin(acc))])  # the first (shortest) of equal minima, as the C
