"""Sync and tracking: clock offset to +-300 ppm, +-20 dB of level, DC offset, inverted polarity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from audionet.modem.channel import ChannelConfig, simulate
from audionet.modem.phy.ofdm import OfdmPhy, sync
from audionet.modem.phy.ofdm.demodulator import OfdmDemodulator
from tests.modem.phy.ofdm.ofdm_helpers import payloads, transmit

#: A sound-card line without the clock offset (each test adds its own impairment).
LINE = ChannelConfig(
    name="line", highpass_hz=20.0, lowpass_hz=18000.0, snr_db=38.0, pad_before=0.05, pad_after=0.1
)


def reports(phy: OfdmPhy, x: np.ndarray, chunk: int = 8192) -> OfdmDemodulator:
    rx = OfdmDemodulator(phy.profile, record=True)
    for i in range(0, x.size, chunk):
        rx.feed(x[i : i + chunk].astype(np.float32))
    rx.feed(np.zeros(phy.sample_rate, np.float32))
    return rx


@pytest.mark.parametrize("ppm", [-300.0, -50.0, 120.0, 300.0])
def test_clock_offset_over_a_frame_of_several_seconds(ppm: float) -> None:
    """A 48 kB frame in 256-QAM lasts about 4 s: the clock offset slides it by 58 samples at
    300 ppm, and the top carrier by a quarter of its spacing without resampling."""
    phy = OfdmPhy("ofdm", mode="qam256-3/4")
    data = payloads(np.random.default_rng(1), 1, 48_000)
    tx = transmit(phy, data)
    assert tx.size / phy.sample_rate > 3.5
    rx = reports(phy, simulate(tx, phy.sample_rate, LINE.replace(drift_ppm=ppm), seed=2))
    assert len(rx.reports) == 1
    r = rx.reports[0]
    assert r.ok and r.drift_ppm == pytest.approx(ppm, abs=3.0)
    assert r.quality > 0.95


def test_clock_offset_by_an_independent_resampler() -> None:
    """scipy's polyphase resampler (not our channel's) for a 250 ppm offset: 4001/4000."""
    phy = OfdmPhy("ofdm", mode="qam1024-3/4")
    data = payloads(np.random.default_rng(2), 2, 8000)
    tx = transmit(phy, data).astype(np.float64)
    y = signal.resample_poly(tx, 4001, 4000)
    y += np.random.default_rng(3).normal(0, 10 ** (-40 / 20) * 0.16, y.size)
    rx = reports(phy, y)
    assert [r.ok for r in rx.reports] == [True, True]
    assert all(r.drift_ppm == pytest.approx(250.0, abs=3.0) for r in rx.reports)


@pytest.mark.parametrize("level_db", [-20.0, 0.0, 20.0])
@pytest.mark.parametrize("invert,dc", [(False, 0.0), (True, 0.0), (False, 0.1), (True, -0.2)])
def test_level_polarity_and_dc(level_db: float, invert: bool, dc: float) -> None:
    """The receiver's input 20 dB above or below the transmitter's level (float samples, so
    +20 dB does not clip), inverted, with a DC offset of up to a fifth of full scale."""
    phy = OfdmPhy("ofdm", mode="qam256-5/6")
    data = payloads(np.random.default_rng(4), 2, 6000)
    line = LINE.replace(drift_ppm=80.0, invert=invert, bits=None)
    y = simulate(transmit(phy, data), phy.sample_rate, line, seed=5).astype(np.float64)
    y = y * 10 ** (level_db / 20) + dc
    rx = reports(phy, y)
    assert [r.ok for r in rx.reports] == [True, True]


def test_phone_profile_through_alaw_and_ulaw() -> None:
    phy = OfdmPhy("ofdm-phone", mode="qam256-3/4")
    data = payloads(np.random.default_rng(6), 2, 3000)
    tx = transmit(phy, data)
    for law in ("ulaw", "alaw"):
        line = ChannelConfig(
            name="phone", telephone=True, telephone_law=law, gain_db=-6, drift_ppm=-40, snr_db=35
        )
        rx = reports(phy, simulate(tx, phy.sample_rate, line, seed=7), chunk=160)  # 20 ms packets
        assert [r.ok for r in rx.reports] == [True, True], law


def test_a_click_on_the_preamble_does_not_lose_the_frame() -> None:
    """A spike of half full scale on a training symbol: the receiver blanks it and, if the clock
    estimate still suffers, re-estimates the clock from the pilots of the whole frame."""
    phy = OfdmPhy("ofdm", mode="qam64-3/4")
    data = payloads(np.random.default_rng(8), 1, 20000)
    tx = transmit(phy, data, lead=2400).astype(np.float64)
    y = simulate(tx, phy.sample_rate, LINE.replace(drift_ppm=200.0, bits=None), seed=9)
    p = phy.profile
    hit = 2400 + int(1.5 * p.symbol_length)  # in the middle of the first training symbol
    y[hit : hit + 100] += 0.5 * np.exp(-np.arange(100) / 10.0)
    rx = reports(phy, y)
    assert [r.ok for r in rx.reports] == [True]
    assert rx.reports[0].drift_ppm == pytest.approx(200.0, abs=5.0)


def _phone_frame(
    seed: int, drift_ppm: float, lead: int = 2000
) -> tuple[OfdmPhy, bytes, np.ndarray]:
    phy = OfdmPhy("ofdm-phone", mode="qam16-1/2")
    (data,) = payloads(np.random.default_rng(seed), 1, 1500)
    line = ChannelConfig(
        name="call", telephone=True, telephone_law="ulaw", drift_ppm=drift_ppm, snr_db=35
    )
    tx = transmit(phy, [data], lead=lead)
    return phy, data, simulate(tx, phy.sample_rate, line, seed=seed).astype(np.float64)


@pytest.mark.parametrize("symbol", [1, 2])
@pytest.mark.parametrize("fill", ["zeros", "noise"])
def test_a_20ms_hole_in_one_training_symbol_is_repaired(symbol: int, fill: str) -> None:
    """A lost packet on a call spoils a third of a training symbol (silence, or the PLC's
    noise-like fill): ofdm-phone acquires the frame on the sync symbol and the other training
    symbol, clock offset included; without the repair the frame is lost."""
    phy, data, y = _phone_frame(11 + symbol, drift_ppm=-60.0)
    p = phy.profile
    hit = 2000 + symbol * p.symbol_length + p.cp + 200  # 20 ms inside training symbol `symbol`
    rng = np.random.default_rng(symbol)
    y[hit : hit + 160] = 0.0 if fill == "zeros" else rng.normal(0, np.std(y[hit - 600 : hit]), 160)
    for repair in (True, False):
        rx = OfdmDemodulator(replace(p, repair_training=repair), record=True)
        got = []
        for i in range(0, y.size, 160):  # 20 ms packets
            got += rx.feed(y[i : i + 160].astype(np.float32))
        got += rx.feed(np.zeros(p.sample_rate, np.float32))
        if repair:
            assert [f.data for f in got] == [data]
            assert [r.ok for r in rx.reports] == [True]
            assert rx.reports[0].drift_ppm == pytest.approx(-60.0, abs=8.0)
        else:
            assert not any(r.ok for r in rx.reports)  # what the repair is for


def test_clean_training_symbols_are_not_taken_for_spoilt() -> None:
    """Over a clean call (and at 25 dB SNR) neither training symbol is left out."""
    for snr in (35.0, 25.0):
        phy = OfdmPhy("ofdm-phone", mode="qam16-1/2")
        p = phy.profile
        for seed in range(6):
            (data,) = payloads(np.random.default_rng(seed), 1, 300)
            line = ChannelConfig(
                name="call", telephone=True, telephone_law="ulaw", drift_ppm=50.0, snr_db=snr
            )
            y = simulate(transmit(phy, [data], lead=2000), p.sample_rate, line, seed=seed)
            y = y.astype(np.float64)
            coarse = sync.coarse_start(p, y[1800:]) + 1800
            seg = y[coarse : coarse + sync.needed(p)]
            h1, h2 = sync._training(p, seg)
            assert sync._spoilt(p, seg, h1, h2) is None, (snr, seed)
