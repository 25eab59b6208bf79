"""Frames through the OFDM PHY at every constellation and code rate, and with bit loading."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.modem.channel import PROFILES, simulate
from audionet.modem.phy.ofdm import OfdmPhy, coding, dsp
from audionet.modem.phy.ofdm.mode import NAMES, RATES, Mode
from audionet.modem.phy.ofdm.modulator import frame_symbols
from tests.modem.phy.ofdm.ofdm_helpers import payloads, receive, transmit


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("constellation", list(NAMES.values()))
def test_every_constellation_and_rate(constellation: str, rate: str) -> None:
    phy = OfdmPhy("ofdm", mode=f"{constellation}-{rate}")
    data = payloads(np.random.default_rng(len(constellation) * 7 + len(rate)), 2, 2500)
    y = simulate(transmit(phy, data), phy.sample_rate, PROFILES["cable"], seed=1)
    got = receive(phy, y)
    assert [f.data for f in got] == data


def test_phone_profile_round_trip_at_44_1_and_8_khz() -> None:
    for name, rate in (("ofdm", 44100), ("ofdm-phone", 8000)):
        phy = OfdmPhy(name, sample_rate=rate, mode="qam64-5/6")
        data = payloads(np.random.default_rng(2), 3, 1500)
        line = PROFILES["phone" if name == "ofdm-phone" else "cable"]
        got = receive(phy, simulate(transmit(phy, data), rate, line, seed=3))
        assert [f.data for f in got] == data


def test_bit_loading_and_carriers_off() -> None:
    """A loading that differs per group, with groups switched off (as the adaptation picks for a
    line with a 10 kHz low-pass), over cable-hard (clicks, 200 ppm, inverted, DC)."""
    p = OfdmPhy("ofdm").profile
    loading = tuple(
        8 if hi < 9000 else 6 if hi < 11000 else 2 if hi < 14000 else 0
        for _, hi in p.layout.group_bounds
    )
    phy = OfdmPhy("ofdm", mode=str(Mode(loading, "3/4")))
    data = payloads(np.random.default_rng(4), 3, 4000)
    got = receive(phy, simulate(transmit(phy, data), phy.sample_rate, PROFILES["cable-hard"], 5))
    assert [f.data for f in got] == data


def test_frame_length_and_air_time_agree() -> None:
    phy = OfdmPhy("ofdm", mode="qam256-5/6")
    mod = phy.modulator()
    p = phy.profile
    for n in (1, 21, 1000, 16409, 65535 + 25):
        samples = mod.modulate(bytes(n))
        assert samples.size == frame_symbols(p, phy.link.tx_mode(), n) * p.symbol_length + p.gap
        assert mod.duration(n) == pytest.approx(samples.size / p.sample_rate)
        assert np.abs(samples).max() <= 1.0


def test_zero_bytes_are_scrambled_not_a_peak() -> None:
    """A frame of zero bytes would put every carrier on one point (one huge peak per symbol)."""
    phy = OfdmPhy("ofdm", mode="qam16-1/2")
    x = phy.modulator().modulate(bytes(5000))
    rms = float(np.sqrt(np.mean(x**2)))
    assert rms == pytest.approx(phy.profile.rms, rel=0.15)
    assert np.abs(x).max() < 6 * rms


def test_shortened_codewords_send_fewer_bits() -> None:
    p = OfdmPhy("ofdm").profile
    mode = Mode.parse("qam64-1/2", p)
    small, full = coding.plan(p, mode, 21), coding.plan(p, mode, 4 * 972 // 8)
    assert small.codewords == 1 and small.coded == 21 * 8 + 972
    assert full.codewords == 4 and full.shortened == 0 and full.coded == 4 * 1944


def test_impulse_blanking_removes_clicks_and_leaves_ofdm_alone() -> None:
    phy = OfdmPhy("ofdm", mode="qam16-1/2")
    x = phy.modulator().modulate(np.random.default_rng(6).bytes(20000)).astype(np.float64)
    sigma = dsp.level(x[: 3 * phy.profile.symbol_length])
    same, count = dsp.blank(x, phy.sample_rate, sigma)
    assert count <= 40  # one blank at most: an OFDM peak 5 deviations out is about 1 in 1e6
    clicked = x.copy()
    clicked[30000:30050] += 1.0 * np.exp(-np.arange(50) / 10.0)  # 6 deviations
    cleaned, more = dsp.blank(clicked, phy.sample_rate, sigma)
    assert 30 <= more - count <= 60
    assert np.all(cleaned[30000:30030] == 0.0)
    assert np.array_equal(cleaned[:29990], same[:29990])
    assert np.array_equal(cleaned[30100:], same[30100:])


def test_compiled_and_numpy_resampling_agree() -> None:
    """The numba kernel and the numpy fallback compute the same interpolation."""
    x = np.random.default_rng(7).normal(size=30000)
    positions = 40.7 + np.arange(25000) * (1 + 300e-6)
    fast = dsp.interpolator()(x, positions)
    slow = dsp.interpolator()(x, positions, compiled=False)
    assert np.allclose(fast, slow, atol=1e-12)
    # a tone halfway between samples comes out where the band-limited signal is
    t = np.arange(30000)
    tone = np.sin(2 * np.pi * 0.4 * t)
    mid = dsp.interpolator()(tone, t[100:200] + 0.5)
    assert np.allclose(mid, np.sin(2 * np.pi * 0.4 * (t[100:200] + 0.5)), atol=3e-3)
