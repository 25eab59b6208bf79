"""The streaming OFDM receiver: feed samples in chunks of any size, get whole frames out.

Like liquid-dsp's ``ofdmflexframesync``, one object is fed samples (``feed``) and hands back
frames with their statistics. States:

1. *Hunting*: the DC-blocked input is scanned for the sync symbol's Schmidl-Cox metric in blocks
   aligned to absolute sample positions, so the same samples give the same decisions however they
   were chunked (a 1-sample feed and a 1-second feed yield identical frames).
2. *Acquiring*: with enough samples after a candidate, the preamble gives timing, clock offset and
   channel (:func:`~audionet.modem.phy.ofdm.sync.acquire`), and the header symbols are decoded.
   A candidate whose training symbols do not look like ours, or whose header fails its CRC, is
   dropped and the hunt goes on half a symbol later.
3. *Receiving*: once the whole frame is in (its length is in the header), it is resampled with the
   measured clock offset, equalised with pilot tracking, demapped and LDPC-decoded in one go.

Every frame whose header decoded is returned, its payload as decoded: the frame layer's CRC-32
decides whether it is good. ``quality`` is ``1 - EVM`` (the RMS error vector over the used
constellation points, as a fraction of their RMS): 0.99 at 40 dB, 0.97 at 30 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.base import ReceivedFrame, Samples
from audionet.modem.phy.ofdm import coding, header
from audionet.modem.phy.ofdm.adapt import LinkState
from audionet.modem.phy.ofdm.dsp import blank, interpolator, level, symbol_windows, to_freq
from audionet.modem.phy.ofdm.equalizer import Equalized, equalize
from audionet.modem.phy.ofdm.header import Header
from audionet.modem.phy.ofdm.mode import Mode
from audionet.modem.phy.ofdm.modulator import PREAMBLE_SYMBOLS
from audionet.modem.phy.ofdm.profile import OfdmProfile
from audionet.modem.phy.ofdm.qam import get_constellation
from audionet.modem.phy.ofdm.sync import (
    THRESHOLD,
    Acquisition,
    acquire,
    coarse_start,
    metric,
    needed,
)

F64 = npt.NDArray[np.float64]
C128 = npt.NDArray[np.complex128]

#: Scan granularity in samples (metric blocks start at multiples of it).
BLOCK = 2048
#: DC blocker corner in Hz (one pole; the lowest carrier is at 250-300 Hz).
DC_CORNER = 20.0
#: Largest clock offset believed (ppm / 1e6); sound cards are within a few hundred ppm.
MAX_DRIFT = 2000e-6
#: Timing step per symbol (samples) beyond which the frame is resampled with the pilots' clock.
REFINE_STEP = 0.02
#: Equalised values kept per frame for the analysis plot.
KEEP_VALUES = 4000


@dataclass(frozen=True, slots=True)
class FrameReport:
    """What the receiver measured on one frame (for ``audionet modem analyze`` and probes)."""

    position: int
    length: int
    mode: Mode
    ok: bool  #: every LDPC codeword passed its parity checks
    drift_ppm: float
    snr: F64  #: per used carrier, linear
    quality: float
    values: C128  #: some equalised data values
    bits: npt.NDArray[np.int64]  #: the constellation bits of each of ``values``
    burst: float  #: worst per-symbol noise relative to the preamble's (clicks)


@dataclass(frozen=True, slots=True)
class _Frame:
    acq: Acquisition  #: ``start`` in absolute input samples
    header: Header
    symbols: int  #: header and payload symbols
    end: int  #: absolute input sample the whole frame needs


class OfdmDemodulator:
    """See the module docstring. ``link`` (optional) learns the SNR and losses for adaptation."""

    def __init__(
        self, profile: OfdmProfile, link: LinkState | None = None, record: bool = False
    ) -> None:
        from scipy import signal  # about a second to import: only when a receiver is built

        self.profile = profile
        self.link = link
        self.record = record
        self.reports: list[FrameReport] = []
        self.headers_failed = 0
        self.frames_cut = 0
        self._lfilter = signal.lfilter
        a = 1.0 - 2.0 * math.pi * DC_CORNER / profile.sample_rate
        self._dc = ([1.0, -1.0], [1.0, -a])
        self._zi = np.zeros(1)
        self._store: F64 = np.zeros(1 << 16)  # samples, DC-blocked; grows by doubling
        self._n = 0  # samples held in self._store
        self._x0 = 0  # absolute index of self._store[0]
        self._scan = 0
        self._cand: int | None = None
        self._frame: _Frame | None = None
        p = profile
        self._coarse_span = p.nfft // 2 + p.cp + 2 * p.nfft
        self._cand_need = self._coarse_span + needed(p) + interpolator().lead + 2

    @property
    def busy(self) -> bool:
        return self._frame is not None or self._cand is not None

    def feed(self, samples: Samples) -> list[ReceivedFrame]:
        x = np.nan_to_num(np.asarray(samples, dtype=np.float64).reshape(-1))
        if x.size:
            y, self._zi = self._lfilter(*self._dc, x, zi=self._zi)
            self._append(y)
        out: list[ReceivedFrame] = []
        while True:
            end = self._x0 + self._x.size
            f = self._frame
            if self._cand is not None:
                if end < self._cand + self._cand_need:
                    break
                self._acquire(self._cand)
                self._cand = None
            elif f is not None and self._scan >= self._limit(f):
                # Every preamble that could start before this frame ends has been looked for.
                if end < f.end:
                    break
                out.append(self._finish(f))
            elif not self._hunt(end):
                break
        self._trim()
        return out

    # -- states ------------------------------------------------------------------------------

    def _limit(self, f: _Frame) -> int:
        """Where hunting stops while ``f`` is being received: the metric of a preamble right after
        ``f`` may cross the threshold up to half a symbol before it, so a symbol before its end."""
        return f.end - self.profile.nfft

    def _hunt(self, end: int) -> bool:
        """Scan the block holding ``self._scan``; ``False`` when there are not enough samples.

        The hunt goes on while a frame is received, up to its end: a frame cut short (the sender
        stopped, the line dropped out) must not hide the preamble of the next one.
        """
        n = self.profile.nfft
        block_end = (self._scan // BLOCK + 1) * BLOCK
        if self._frame is not None:
            block_end = min(block_end, self._limit(self._frame))
        if end < block_end + n:
            return False
        lo = self._scan - self._x0
        m = metric(self.profile, self._x[lo : block_end - self._x0 + n - 1])
        hits = np.flatnonzero(m > THRESHOLD)
        if hits.size:
            self._cand = self._scan + int(hits[0])
        else:
            self._scan = block_end
        return True

    def _acquire(self, d: int) -> None:
        p = self.profile
        lo = d - self._x0
        coarse = coarse_start(p, self._x[lo : lo + self._coarse_span])
        x = self._x[lo : lo + self._cand_need]
        x, _ = blank(x, p.sample_rate, level(x[coarse : coarse + 3 * p.symbol_length]))
        acq = acquire(p, x, coarse)
        hdr = self._header(x, acq) if acq is not None else None
        if acq is None or hdr is None or abs(acq.drift) > MAX_DRIFT:
            self.headers_failed += acq is not None
            self._scan = d + p.nfft // 2
            return
        if self._frame is not None:
            self.frames_cut += 1  # a new frame began before the one being received ended
        plan = coding.plan(p, hdr.mode, hdr.length)
        symbols = p.header_symbols + plan.symbols
        total = (PREAMBLE_SYMBOLS + symbols) * p.symbol_length
        start = d + acq.start
        end = math.ceil(start + total * (1.0 + acq.drift)) + interpolator().lead + 2
        self._frame = _Frame(replace(acq, start=start), hdr, symbols, end)
        self._scan = math.floor(start) + (PREAMBLE_SYMBOLS + p.header_symbols) * p.symbol_length

    def _equalize(self, x: F64, acq: Acquisition, count: int) -> Equalized:
        """Resample, FFT and equalise ``count`` symbols after the preamble (``acq`` relative to
        ``x``)."""
        p = self.profile
        first = PREAMBLE_SYMBOLS * p.symbol_length
        y = interpolator()(x, acq.positions(first, count * p.symbol_length))
        spectra = to_freq(p, symbol_windows(p, y, 0, count))[:, p.layout.used]
        return equalize(p, acq, spectra, first=PREAMBLE_SYMBOLS)

    def _header(self, x: F64, acq: Acquisition) -> Header | None:
        p = self.profile
        eq = self._equalize(x, acq, p.header_symbols)
        qam = get_constellation("bpsk" if p.header_bits == 1 else "qpsk")
        llr = qam.demap(eq.values, eq.noise).reshape(-1).astype(np.float64)
        return header.decode(p, llr)

    def _finish(self, f: _Frame) -> ReceivedFrame:
        p = self.profile
        self._frame = None
        lo = max(0, math.floor(f.acq.start) - self._x0 - interpolator().lead - 2)
        acq = replace(f.acq, start=f.acq.start - self._x0 - lo)
        x = self._x[lo : f.end - self._x0]
        first = math.floor(acq.start)
        x, _blanked = blank(x, p.sample_rate, level(x[first : first + 3 * p.symbol_length]))
        eq = self._equalize(x, acq, f.symbols)
        # The timing the pilots followed grows by a constant step per symbol when the preamble's
        # clock estimate was off (a click on a training symbol): resample once more with the
        # pilots' estimate.
        step = float(np.median(np.diff(eq.timing))) if eq.timing.size > 4 else 0.0
        if abs(step) > REFINE_STEP:
            acq = replace(acq, drift=(1.0 + acq.drift) * (1.0 + step / p.symbol_length) - 1.0)
            eq = self._equalize(x, acq, f.symbols)
        h = p.header_symbols
        mode, length = f.header.mode, f.header.length
        dec = coding.decode(p, mode, length, eq.values[h:], eq.noise[h:])
        bits = mode.carrier_bits(p)
        on = bits > 0
        evm = float(np.median(eq.noise[h:, on])) if on.any() else 1.0
        quality = float(np.clip(1.0 - math.sqrt(evm), 0.0, 1.0))
        snr = 1.0 / np.maximum(eq.carrier_noise, 1e-12)
        if self.link is not None:
            self.link.heard(snr, f.header, dec.ok, dec.data)
        position = round(f.acq.start) + f.acq.delay(p)
        if self.record:
            values = eq.values[h:, on].reshape(-1)[:KEEP_VALUES]
            which = np.broadcast_to(bits[on], eq.values[h:, on].shape).reshape(-1)[:KEEP_VALUES]
            self.reports.append(
                FrameReport(
                    position,
                    length,
                    mode,
                    dec.ok,
                    acq.drift * 1e6,
                    snr,
                    quality,
                    values,
                    np.asarray(which),
                    float(eq.burst.max()),
                )
            )
        self._scan = max(self._scan, self._limit(f))
        return ReceivedFrame(dec.data, position, quality)

    # -- the sample store (amortised O(1) appends, so 1-sample feeds cost no more than big ones) --

    @property
    def _x(self) -> F64:
        return self._store[: self._n]

    def _append(self, y: F64) -> None:
        if self._n + y.size > self._store.size:
            grown = np.zeros(max(2 * self._store.size, self._n + y.size))
            grown[: self._n] = self._store[: self._n]
            self._store = grown
        self._store[self._n : self._n + y.size] = y
        self._n += y.size

    def _trim(self) -> None:
        keep = self._scan if self._cand is None else min(self._scan, self._cand)
        if self._frame is not None:
            keep = min(keep, math.floor(self._frame.acq.start))
        keep -= self.profile.nfft + interpolator().lead + 2
        drop = keep - self._x0
        # Move the kept samples to the front only once they are the smaller part (amortised).
        if drop > 0 and drop >= self._n - drop:
            self._store[: self._n - drop] = self._store[drop : self._n]
            self._n -= drop
            self._x0 = keep
