"""The channel simulator: every effect measured on the output, determinism, and streaming."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, sosfilt, sosfreqz

from audionet.errors import ConfigError
from audionet.modem.channel import (
    PROFILES,
    Channel,
    ChannelConfig,
    FractionalResampler,
    active_power,
    get_profile,
    simulate,
)

RATE = 44100


def tone(freq: float, seconds: float, amp: float = 0.5, rate: int = RATE) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2)))


def band_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise band-limited to 8 kHz: a wide-band test signal with a sharp correlation peak."""
    x = np.random.default_rng(seed).normal(0, 0.2, round(seconds * RATE))
    return sosfilt(butter(6, 8000, fs=RATE, output="sos"), x)


# -- each effect ----------------------------------------------------------------------------------


@pytest.mark.parametrize("snr", [10.0, 20.0, 30.0, 40.0])
def test_noise_is_at_the_requested_snr(snr: float) -> None:
    x = np.concatenate([np.zeros(RATE // 2), band_noise(2.0), np.zeros(RATE // 2)])
    quiet = ChannelConfig(bits=None)
    clean = simulate(x, RATE, quiet, seed=3)
    noisy = simulate(x, RATE, quiet.replace(snr_db=snr), seed=3)
    noise = noisy.astype(np.float64) - clean
    signal_power = active_power(clean, RATE)
    assert signal_power is not None
    measured = 10 * np.log10(signal_power / np.mean(noise**2))
    assert abs(measured - snr) < 1.0


def lag_at(ref: np.ndarray, out: np.ndarray, start: int, width: int = 4096) -> float:
    """Delay of ``out`` against ``ref`` around sample ``start`` (cross-correlation, parabolic peak)."""
    seg = ref[start : start + width]
    reach = 400
    search = out[start - reach : start + width + reach]
    corr = np.correlate(search, seg, mode="valid")
    i = int(np.argmax(corr))
    a, b, c = corr[i - 1], corr[i], corr[i + 1]
    return i - reach + 0.5 * (a - c) / (a - 2 * b + c)


@pytest.mark.parametrize("ppm", [-500.0, 200.0, 1000.0])
def test_clock_drift_measured_by_correlation(ppm: float) -> None:
    x = band_noise(4.0, seed=1)
    y = simulate(x, RATE, ChannelConfig(drift_ppm=ppm, bits=None), seed=0).astype(np.float64)
    assert abs(y.size - x.size * (1 + ppm * 1e-6)) <= 2
    first, last = 10_000, x.size - 20_000
    slope = (lag_at(x, y, last) - lag_at(x, y, first)) / (last - first) * 1e6
    assert slope == pytest.approx(ppm, rel=0.03, abs=3)


def test_resampler_is_accurate_and_chunk_invariant() -> None:
    x = tone(3000, 1.0)
    r = FractionalResampler(1 / (1 + 300e-6))
    y = np.concatenate([r.process(x), r.flush()])
    ref = tone(3000 / (1 + 300e-6), y.size / RATE)[: y.size]
    assert np.max(np.abs(y[100:-100] - ref[100:-100])) < 1e-3
    r2 = FractionalResampler(1 / (1 + 300e-6))
    pieces = [r2.process(x[i : i + 777]) for i in range(0, x.size, 777)]
    assert np.array_equal(np.concatenate([*pieces, r2.flush()]), y)


@pytest.mark.parametrize("freq", [1000, 4000, 6000, 8000])
def test_low_pass_attenuation(freq: float) -> None:
    x = tone(freq, 0.5)
    y = simulate(x, RATE, ChannelConfig(lowpass_hz=4000, bits=None))
    # A fourth-order digital Butterworth: -3 dB at the corner, its design response elsewhere.
    _, h = sosfreqz(butter(4, 4000, fs=RATE, output="sos"), worN=[freq], fs=RATE)
    expected = 20 * np.log10(abs(h[0]))
    assert rms_db(y[2000:]) - rms_db(x[2000:]) == pytest.approx(expected, abs=0.3)
    if freq == 4000:
        assert expected == pytest.approx(-3.01, abs=0.01)
    if freq == 8000:
        assert expected < -24


def test_high_pass_blocks_dc_and_passes_the_band() -> None:
    cfg = ChannelConfig(highpass_hz=100, bits=None)
    dc = simulate(np.full(RATE, 0.3), RATE, cfg)
    assert np.max(np.abs(dc[RATE // 2 :])) < 1e-3
    y = simulate(tone(2000, 0.5), RATE, cfg)
    assert rms_db(y[2000:]) - rms_db(tone(2000, 0.5)) == pytest.approx(0.0, abs=0.05)
    y = simulate(tone(100, 1.0), RATE, cfg)
    assert rms_db(y[RATE // 2 :]) - rms_db(tone(100, 1.0)) == pytest.approx(-3.01, abs=0.3)


def test_telephone_band_and_g711() -> None:
    cfg = ChannelConfig(telephone=True, bits=None)
    inside = simulate(tone(1000, 1.0), RATE, cfg)
    assert rms_db(inside[RATE // 4 :]) - rms_db(tone(1000, 1.0)) == pytest.approx(0, abs=0.5)
    # G.711 mu-law leaves roughly 35-40 dB of signal-to-quantisation noise on a loud tone.
    spectrum = np.abs(np.fft.rfft(inside[RATE // 4 : RATE // 4 + 22050]))
    peak = int(np.argmax(spectrum))
    assert abs(peak * 2 - 1000) <= 2  # 22050-point FFT: 2 Hz bins
    for freq in (100, 6000):  # below the band, and above 8 kHz sampling's Nyquist
        out = simulate(tone(freq, 1.0), RATE, cfg)
        assert rms_db(out[RATE // 4 :]) - rms_db(tone(freq, 1.0)) < -20


def test_alaw_differs_from_ulaw_but_both_pass() -> None:
    x = tone(700, 0.5)
    u = simulate(x, RATE, ChannelConfig(telephone=True, bits=None))
    a = simulate(x, RATE, ChannelConfig(telephone=True, telephone_law="alaw", bits=None))
    assert not np.array_equal(u, a)
    assert abs(rms_db(u[5000:]) - rms_db(a[5000:])) < 0.5


def test_gain_inversion_offset_and_padding() -> None:
    x = tone(1000, 0.2)
    cfg = ChannelConfig(gain_db=-6.0, invert=True, dc_offset=0.1, pad_before=0.1, pad_after=0.05)
    y = simulate(x, RATE, cfg.replace(bits=None))
    lead, tail = round(0.1 * RATE), round(0.05 * RATE)
    assert y.size == lead + x.size + tail
    np.testing.assert_allclose(y[:lead], 0.1, atol=1e-6)
    np.testing.assert_allclose(y[lead : lead + x.size], 0.1 - 10 ** (-6 / 20) * x, atol=1e-6)


def test_impulse_noise_rate_and_level() -> None:
    cfg = ChannelConfig(impulse_rate=20.0, impulse_level=0.4, bits=None)
    y = simulate(np.zeros(10 * RATE), RATE, cfg, seed=9).astype(np.float64)
    starts = np.flatnonzero((np.abs(y[1:]) > 0.15) & (np.abs(y[:-1]) < 0.15))
    assert 200 * 0.75 < starts.size < 200 * 1.25  # Poisson: 200 expected, sd about 14
    assert np.max(np.abs(y)) <= 0.4 * 1.5  # two clicks can overlap, rarely
    assert np.mean(np.abs(y) > 0.01) < 0.05  # short clicks, mostly silence


@pytest.mark.parametrize("bits", [8, 16])
def test_quantisation(bits: int) -> None:
    y = simulate(tone(440, 0.1, amp=0.9), RATE, ChannelConfig(bits=bits)).astype(np.float64)
    steps = y * 2 ** (bits - 1)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.unique(y).size > 2 ** (bits - 1) // 8 if bits == 8 else np.unique(y).size > 1000


def test_clipping() -> None:
    y = simulate(tone(440, 0.1, amp=0.9), RATE, ChannelConfig(gain_db=12))
    assert np.max(y) <= 1.0 and np.min(y) >= -1.0


# -- profiles, determinism and streaming ------------------------------------------------------------


def test_profiles_exist_with_their_headline_numbers() -> None:
    assert set(PROFILES) == {"clean", "cable", "cable-hard", "phone"}
    assert (PROFILES["cable"].snr_db, PROFILES["cable"].drift_ppm) == (40, 50)
    hard = PROFILES["cable-hard"]
    assert (hard.snr_db, hard.drift_ppm) == (30, 200) and hard.impulse_rate > 0
    assert PROFILES["phone"].telephone
    assert get_profile("cable") is PROFILES["cable"]
    with pytest.raises(ConfigError, match="choose one of"):
        get_profile("fibre")


@pytest.mark.parametrize("name", list(PROFILES))
def test_profiles_are_deterministic_with_a_seed(name: str) -> None:
    x = band_noise(0.5, seed=4)
    a = simulate(x, RATE, PROFILES[name], seed=7)
    b = simulate(x, RATE, PROFILES[name], seed=7)
    assert np.array_equal(a, b)
    if name != "clean":
        assert not np.array_equal(a, simulate(x, RATE, PROFILES[name], seed=8))


@given(
    sizes=st.lists(st.integers(1, 9000), min_size=1, max_size=20),
    name=st.sampled_from(list(PROFILES)),
)
@settings(max_examples=12, deadline=None)
def test_streaming_matches_simulate_whatever_the_chunks(sizes: list[int], name: str) -> None:
    cfg = PROFILES[name].replace(pad_before=0.0, pad_after=0.0)
    x = band_noise(0.3, seed=2)
    whole = simulate(x, RATE, cfg, seed=11)
    shaped = Channel(cfg, RATE, 11)
    power = active_power(np.concatenate([shaped.shape(x), shaped.shape([], final=True)]), RATE)
    ch = Channel(cfg, RATE, 11, signal_power=power)
    out, i = [], 0
    while i < x.size:
        for n in sizes:
            out.append(ch.process(x[i : i + n]))
            i += n
    out.append(ch.flush())
    assert np.array_equal(np.concatenate(out), whole)


def test_streaming_without_a_power_tracks_the_signal() -> None:
    ch = Channel(ChannelConfig(snr_db=20, bits=None), RATE, seed=1)
    x = tone(1000, 2.0, amp=0.05)
    y = np.concatenate([ch.process(x[i : i + 4410]) for i in range(0, x.size, 4410)])
    noise = y[RATE:] - x[RATE:]
    assert 10 * np.log10(np.mean(x[RATE:] ** 2) / np.mean(noise**2)) == pytest.approx(20, abs=1.5)


def test_bad_configs_are_config_errors() -> None:
    for bad in (
        {"bits": 12},
        {"drift_ppm": 1e6},
        {"telephone_law": "gsm"},
        {"pad_before": -1},
        {"lowpass_hz": 0},
        {"impulse_rate": -1},
    ):
        with pytest.raises(ConfigError):
            ChannelConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Channel(ChannelConfig(), 10)


def test_progress_is_reported_and_changes_nothing() -> None:
    x = band_noise(2.5, seed=5)
    seen: list[float] = []
    with_bar = simulate(x, RATE, PROFILES["cable"], seed=1, progress=seen.append)
    assert np.array_equal(with_bar, simulate(x, RATE, PROFILES["cable"], seed=1))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3


def test_non_finite_input_is_silence() -> None:
    ch = Channel(PROFILES["cable"], RATE, seed=1)
    out = ch.process(np.array([np.nan, np.inf] * 2000))
    assert np.all(np.isfinite(out))
    assert np.all(np.isfinite(ch.process(tone(1000, 0.1))))
