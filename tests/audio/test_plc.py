"""Asterisk's generic PLC (main/plc.c): the port against a sample-by-sample transliteration of
the C, and what it does to a call's audio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audionet.audio.plc import Concealer

HIST = 280  # PLC_HISTORY_LEN = CORRELATION_SPAN + PLC_PITCH_MIN


class ReferencePlc:
    """main/plc.c loop for loop (plc_rx, plc_fillin, amdf_pitch, save_history), in float32 as
    the C keeps ``pitchbuf`` and its weights; the test's yardstick for the vectorised port."""

    def __init__(self) -> None:
        self.history = [0] * HIST
        self.pitchbuf = np.zeros(120, np.float32)
        self.pitch = 0
        self.offset = 0
        self.missing = 0

    def _save(self, amp: list[int]) -> None:
        self.history = (self.history + amp)[-HIST:]

    @staticmethod
    def _sat(x: float) -> int:
        return int(max(-32768, min(32767, round(x))))  # rint: half to even, as Python's round

    def rx(self, amp: list[int]) -> list[int]:
        amp = list(amp)
        if self.missing:
            overlap = min(self.pitch >> 2, len(amp))
            gain = np.float32(max(0.0, 1.0 - self.missing * 0.0025))
            new_step = np.float32(1.0 / overlap)
            old_step = np.float32(new_step * gain)
            new_w, old_w = new_step, np.float32((1.0 - new_step) * gain)
            for i in range(overlap):
                amp[i] = self._sat(
                    float(old_w) * float(self.pitchbuf[self.offset]) + new_w * amp[i]
                )
                self.offset = (self.offset + 1) % self.pitch
                new_w = np.float32(new_w + new_step)
                old_w = np.float32(max(0.0, old_w - old_step))
            self.missing = 0
        self._save(amp)
        return amp

    def fillin(self, n: int) -> list[int]:
        amp = [0] * n
        h = self.history
        if self.missing == 0:
            best = math.inf
            for lag in range(40, 121):
                acc = sum(abs(h[lag + j] - h[j]) for j in range(160))
                if acc < best:
                    best, self.pitch = acc, lag
            p = self.pitch
            overlap = p >> 2
            for i in range(p - overlap):
                self.pitchbuf[i] = h[HIST - p + i]
            step = np.float32(1.0 / overlap)
            w = step
            for i in range(p - overlap, p):
                self.pitchbuf[i] = h[HIST - p + i] * (1.0 - w) + h[HIST - 2 * p + i] * w
                w = np.float32(w + step)
            new_w, old_w = step, np.float32(1.0 - step)
            for i in range(overlap):
                amp[i] = self._sat(old_w * h[HIST - 1 - i] + new_w * float(self.pitchbuf[i]))
                new_w = np.float32(new_w + step)
                old_w = np.float32(max(0.0, old_w - step))
            self.offset = i = overlap
            gain = np.float32(1.0)
        else:
            gain = np.float32(1.0 - self.missing * 0.0025)
            i = 0
        while gain > 0.0 and i < n:
            amp[i] = int(float(self.pitchbuf[self.offset]) * float(gain))  # truncation, as C
            gain = np.float32(gain - np.float32(0.0025))
            self.offset = (self.offset + 1) % self.pitch
            i += 1
        self.missing += n
        self._save(amp)
        return amp


def voice(seconds: float, seed: int = 0) -> np.ndarray:
    """A voice-like signal: a 140 Hz glottal pulse train through a formant, with noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 8000)
    t = np.arange(n) / 8000
    f0 = 140 * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = np.cumsum(2 * np.pi * f0 / 8000)
    x = np.sin(phase) + 0.5 * np.sin(2 * phase + 0.3) + 0.3 * np.sin(5 * phase)
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * t) ** 2) + 0.05 * rng.normal(size=n)
    return np.clip(x * 8000, -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_port_matches_the_c_loop_for_loop(seed: int) -> None:
    """Random runs of lost 20 ms frames (single and bursts) in a voice-like signal: the port
    gives the C's samples, to one step of rounding (the C's float32 against our float64)."""
    rng = np.random.default_rng(seed)
    x = voice(6.0, seed)
    ours, ref = Concealer(), ReferencePlc()
    lost = 0
    for i in range(0, x.size, 160):
        frame = x[i : i + 160]
        if i > 1600 and rng.random() < 0.15:
            a, b = ours.fill(160), np.array(ref.fillin(160))
            lost += 1
        else:
            a, b = ours.good(frame), np.array(ref.rx(frame.tolist()))
        assert np.max(np.abs(a.astype(int) - b)) <= 1, f"frame {i // 160}"
    assert lost > 20


def test_a_lost_frame_of_a_tone_continues_the_tone() -> None:
    """A 200 Hz tone (a 40-sample period) with one 20 ms frame lost: the fill is the tone,
    in phase, fading by 0.25 % a sample, and the next real frame joins it without a click."""
    t = np.arange(8000)
    x = (10000 * np.sin(2 * np.pi * 200 * t / 8000)).astype(np.int16)
    plc = Concealer()
    for i in range(0, 1600, 160):
        np.testing.assert_array_equal(plc.good(x[i : i + 160]), x[i : i + 160])
    fill = plc.fill(160).astype(float)
    want = x[1600:1760].astype(float)
    fade = 1 - 0.0025 * np.maximum(0, np.arange(160) - 10)  # the fade starts after the 1/4 period
    assert np.max(np.abs(fill[10:] - want[10:] * fade[10:])) < 60
    nxt = plc.good(x[1760:1920])
    assert np.max(np.abs(np.diff(nxt[:12].astype(float)))) < 2500  # no step at the join
    np.testing.assert_array_equal(nxt[10:], x[1770:1920])  # past a quarter period: the real audio


def test_a_long_hole_fades_to_silence_in_50_ms() -> None:
    x = voice(0.5)
    plc = Concealer()
    for i in range(0, 2400, 160):
        plc.good(x[i : i + 160])
    out = np.concatenate([plc.fill(160) for _ in range(4)])
    assert np.abs(out[:100]).max() > 1000  # the voice goes on at first
    assert not out[(plc.pitch >> 2) + 400 :].any()  # a quarter period of blend, 400 of fade
    assert plc.missing == 640


def test_other_rates_scale_the_constants() -> None:
    plc = Concealer(16000)
    assert (plc.pitch_max, plc.pitch_min, plc.span) == (80, 240, 320)
    t = np.arange(16000)
    x = (8000 * np.sin(2 * np.pi * 125 * t / 16000)).astype(np.int16)  # 128-sample period
    plc.good(x[:3200])
    fill = plc.fill(320)
    assert plc.pitch == 128
    assert np.corrcoef(fill[40:200].astype(float), x[3240:3400].astype(float))[0, 1] > 0.99
