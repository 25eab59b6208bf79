"""The Manchester PHY: the waveform itself, and the receiver over clean and damaged lines."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, resample_poly, sosfilt

from audionet.errors import ConfigError
from audionet.modem.channel import PROFILES, simulate
from audionet.modem.phy import ManchesterPhy, get_phy
from audionet.modem.phy.manchester import (
    GAP_SILENCE,
    PREAMBLE,
    ROUNDING,
    bits_to_bytes,
    bytes_to_bits,
)
from tests.modem.phy.phy_helpers import LengthFraming, frames_signal, random_frames


def decode_all(phy: ManchesterPhy, framing: LengthFraming, x: np.ndarray) -> list[bytes]:
    return [f.data for f in phy.demodulator(framing).feed(x.astype(np.float32))]


# -- the transmitted waveform ---------------------------------------------------------------


def test_bits_are_least_significant_first() -> None:
    assert list(bytes_to_bits(b"\x01\x80")) == [1] + [0] * 7 + [0] * 7 + [1]
    assert bits_to_bytes(bytes_to_bits(b"\xd5\x55")) == b"\xd5\x55"


def test_preamble_is_62_alternating_bits_then_sof() -> None:
    bits = list(bytes_to_bits(PREAMBLE))
    assert bits[:62] == [1, 0] * 31
    assert bits[62:] == [1, 1]


def test_waveform_follows_ieee_802_3_with_rounded_half_bits() -> None:
    amp = 0.8
    mod = ManchesterPhy(samples_per_bit=8, amplitude=amp).modulator()
    x = mod.modulate(b"\x01")  # data bits (LSB first): 1 then seven 0s
    # Read each half-bit at its middle sample, independently of the receiver.
    halves = np.sign(x[:-GAP_SILENCE][2::4])
    bits = [
        1 if (lo, hi) == (-1, 1) else 0 if (lo, hi) == (1, -1) else -1
        for lo, hi in zip(halves[0::2], halves[1::2], strict=True)
    ]
    assert bits == list(bytes_to_bits(PREAMBLE + b"\x01" + bytes(2)))
    first_bit_of_data = x[64 * 8 : 65 * 8]  # a 1: low then high, edges of each half at 0.6
    expected = amp * np.array([-ROUNDING, -1, -1, -ROUNDING, ROUNDING, 1, 1, ROUNDING])
    np.testing.assert_allclose(first_bit_of_data, expected, rtol=1e-6)
    assert np.all(x[-GAP_SILENCE:] == 0)
    assert x.dtype == np.float32 and np.max(np.abs(x)) <= amp + 1e-6


@pytest.mark.parametrize("spb", [5, 7, 8, 9.5, 16])
def test_duration_matches_the_samples(spb: float) -> None:
    phy = ManchesterPhy(samples_per_bit=spb)
    mod = phy.modulator()
    for n in (0, 1, 13, 300):
        assert mod.modulate(bytes(n)).size == round(mod.duration(n) * phy.sample_rate)


def test_each_bit_is_dc_free() -> None:
    x = (
        ManchesterPhy(samples_per_bit=8)
        .modulator()
        .line_code(np.array([1, 1, 0, 1, 0, 0], np.uint8))
    )
    np.testing.assert_allclose(x.reshape(-1, 8).sum(axis=1), 0.0, atol=1e-6)


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        ManchesterPhy(samples_per_bit=3)
    with pytest.raises(ConfigError):
        ManchesterPhy(amplitude=1.5)
    with pytest.raises(ConfigError):
        ManchesterPhy(samples_per_bit=8.5, legacy=True)
    with pytest.raises(ConfigError, match="unknown physical layer"):
        get_phy("ofdm9000")
    with pytest.raises(ConfigError, match="bad parameters"):
        get_phy("manchester", baud=3)


def test_get_phy_builds_a_configured_manchester() -> None:
    phy = get_phy("manchester", samples_per_bit=10, sample_rate=48000)
    assert phy.name == "manchester" and phy.sample_rate == 48000
    assert isinstance(phy, ManchesterPhy) and phy.bit_rate == 4800
    # the original plays a third of full scale on a sound card (RealTimeAudioIO.java:113)
    assert ManchesterPhy(legacy=True).amplitude == pytest.approx(1 / 3)
    assert ManchesterPhy(legacy=True, amplitude=1.0).amplitude == 1.0


# -- the receiver -----------------------------------------------------------------------------


@pytest.mark.parametrize("spb", [5, 6, 7, 8, 9.5, 10, 12, 16])
def test_round_trip_back_to_back_frames(
    spb: float, framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=spb)
    frames = random_frames(rng, 6, 0, 300)
    x, starts = frames_signal(phy, frames)
    got = phy.demodulator(framing).feed(x)
    assert [f.data for f in got] == frames
    assert [abs(f.position - s) <= 1 for f, s in zip(got, starts, strict=True)] == [True] * 6
    assert all(0.5 < f.quality <= 1.0 for f in got)


@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=80))
@settings(max_examples=25, deadline=None)
def test_any_chunking_gives_the_same_frames(sizes: list[int]) -> None:
    framing = LengthFraming()
    phy = ManchesterPhy(samples_per_bit=8)
    rng = np.random.default_rng(5)
    frames = random_frames(rng, 4, 0, 120)
    x, _ = frames_signal(phy, frames)
    x = x + rng.normal(0, 0.01, x.size).astype(np.float32)
    whole = phy.demodulator(framing).feed(x)
    dem = phy.demodulator(framing)
    pieces = []
    i = 0
    while i < x.size:
        for n in sizes:
            pieces += dem.feed(x[i : i + n])
            i += n
    assert pieces == whole
    assert [f.data for f in whole] == frames


@pytest.mark.parametrize("ppm", [-500, -200, 200, 500])
def test_clock_drift_over_long_frames(
    ppm: int, framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    frames = random_frames(rng, 3, 1500, 1500)  # 12,000+ bits: 6 bits of drift at 500 ppm
    x, _ = frames_signal(phy, frames)
    y = resample_poly(x, 1_000_000 + ppm, 1_000_000)  # an independent fractional resampler
    assert decode_all(phy, framing, y) == frames


def test_inverted_polarity_reads_correctly(
    framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    frames = random_frames(rng, 3, 10, 200)
    x, _ = frames_signal(phy, frames)
    dem = phy.demodulator(framing)
    assert [f.data for f in dem.feed(-x)] == frames
    assert dem.inverted
    dem2 = phy.demodulator(framing)
    dem2.feed(x)
    assert not dem2.inverted


def test_dc_offset_high_pass_and_8_bit(framing: LengthFraming, rng: np.random.Generator) -> None:
    phy = ManchesterPhy(samples_per_bit=8, amplitude=0.3)
    frames = random_frames(rng, 4, 50, 400)
    x, _ = frames_signal(phy, frames)
    hp = butter(2, 300, btype="highpass", fs=phy.sample_rate, output="sos")
    y = sosfilt(hp, x) + 0.25  # a strong high-pass and a DC offset of almost the signal level
    y = np.round(np.clip(y, -1, 1) * 127) / 127  # 8-bit audio
    assert decode_all(phy, framing, y) == frames


@pytest.mark.parametrize(
    ("spb", "cutoff", "snr_db"), [(5, 16000, 25), (8, 8000, 20), (16, 4000, 15)]
)
def test_noise_and_low_pass(
    spb: int, cutoff: int, snr_db: float, framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=spb)
    frames = random_frames(rng, 4, 200, 400)
    x, _ = frames_signal(phy, frames)
    lp = butter(4, cutoff, fs=phy.sample_rate, output="sos")
    y = sosfilt(lp, x)
    y = y + rng.normal(0, np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10)), y.size)
    clean = phy.demodulator(framing).feed(x)
    noisy = phy.demodulator(framing).feed(y.astype(np.float32))
    assert [f.data for f in noisy] == frames
    assert min(f.quality for f in clean) > max(f.quality for f in noisy)


def test_noise_and_garbage_make_no_valid_frames(framing: LengthFraming) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.3, 44100 * 5).astype(np.float32)
    tones = np.sin(np.arange(44100) * 2 * np.pi * 2756.25 / 44100).astype(
        np.float32
    )  # preamble-like
    garbage = phy.modulator().line_code(bytes_to_bits(rng.bytes(4000)))  # random Manchester bits
    got = phy.demodulator(framing).feed(np.concatenate([noise, tones, garbage, noise]))
    assert not [f for f in got if LengthFraming.valid(f.data)]


def test_bad_header_and_cut_frame_do_not_hide_the_next(
    framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    mod = phy.modulator()
    good = LengthFraming.make(rng.bytes(100))
    bad_header = b"\x00\x10\x00\x10" + rng.bytes(20)
    cut = mod.modulate(LengthFraming.make(rng.bytes(300)))[:20000]
    x = np.concatenate(
        [mod.modulate(bad_header), cut, np.zeros(2000, np.float32), mod.modulate(good)]
    )
    assert decode_all(phy, framing, x) == [good]


def test_busy_while_a_frame_is_heard(framing: LengthFraming, rng: np.random.Generator) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    x = phy.modulator().modulate(LengthFraming.make(rng.bytes(200)))
    dem = phy.demodulator(framing)
    assert not dem.busy
    dem.feed(np.zeros(1000, np.float32))
    assert not dem.busy
    dem.feed(x[:300])  # part of the preamble
    assert dem.busy
    dem.feed(x[300:5000])  # inside the frame
    assert dem.busy
    assert len(dem.feed(x[5000:])) == 1
    dem.feed(np.zeros(1000, np.float32))
    assert not dem.busy


def test_sender_with_a_different_bit_length_is_read(
    framing: LengthFraming, rng: np.random.Generator
) -> None:
    frames = random_frames(rng, 2, 100, 200)
    x, _ = frames_signal(ManchesterPhy(samples_per_bit=10), frames)
    assert decode_all(ManchesterPhy(samples_per_bit=8), framing, x) == frames


# -- through the channel simulator ------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "spb"),
    [("clean", 5), ("clean", 8), ("cable", 6), ("cable", 8), ("cable-hard", 8), ("cable-hard", 12)],
)
def test_through_the_simulated_profiles(
    profile: str, spb: int, framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=spb)
    frames = random_frames(rng, 6, 100, 256)
    x, _ = frames_signal(phy, frames)
    y = simulate(x, phy.sample_rate, PROFILES[profile], seed=2)
    good = [f for f in decode_all(phy, framing, y) if LengthFraming.valid(f)]
    # cable-hard has clicks (0.5 a second): a click may cost a frame, never more than one here.
    assert len(good) >= len(frames) - (1 if profile == "cable-hard" else 0)
    assert set(good) <= set(frames)


@pytest.mark.parametrize("spb", [20, 24])
def test_phone_line_at_long_bit_lengths(
    spb: int, framing: LengthFraming, rng: np.random.Generator
) -> None:
    # 300-3400 Hz passes Manchester only when its spectrum (about 0.5-1x the bit rate) fits inside,
    # and the band-pass shifts the preamble's crossings against the data's (the SOF must still be found).
    phy = ManchesterPhy(samples_per_bit=spb)
    frames = random_frames(rng, 4, 100, 200)
    x, _ = frames_signal(phy, frames)
    y = simulate(x, phy.sample_rate, PROFILES["phone"], seed=2)
    assert decode_all(phy, framing, y) == frames


@pytest.mark.parametrize("ppm", [-500.0, 500.0])
def test_simulated_drift_with_8_bit_audio(
    ppm: float, framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=7)
    frames = random_frames(rng, 2, 2000, 2000)
    x, _ = frames_signal(phy, frames)
    cfg = PROFILES["cable"].replace(drift_ppm=ppm, bits=8)
    assert decode_all(phy, framing, simulate(x, phy.sample_rate, cfg, seed=1)) == frames


@given(payload=st.binary(max_size=300), spb=st.sampled_from([5, 6, 8, 11, 16]))
@settings(max_examples=40, deadline=None)
def test_any_payload_round_trips(payload: bytes, spb: int) -> None:
    phy = ManchesterPhy(samples_per_bit=spb)
    frame = LengthFraming.make(payload)
    x, _ = frames_signal(phy, [frame], lead=50, tail=300)
    assert decode_all(phy, LengthFraming(), x) == [frame]


def test_busy_ends_when_a_preamble_dies_away(framing: LengthFraming) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    x = phy.modulator().modulate(LengthFraming.make(b"hello"))
    dem = phy.demodulator(framing)
    dem.feed(x[:400])  # 50 bits of preamble, then the line goes quiet
    assert dem.busy
    dem.feed(np.zeros(200, np.float32))
    assert not dem.busy
    assert dem.feed(x) != []  # and the next whole frame is still found


@pytest.mark.parametrize("spb", [5, 8, 16])
def test_a_recording_ending_right_after_a_long_frame_gives_it(
    spb: int, framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=spb)
    frames = random_frames(rng, 2, 1500, 1500)
    x, _ = frames_signal(phy, frames, lead=0, tail=0)  # ends with the frame's own 64-sample gap
    assert decode_all(phy, framing, x) == frames
    dem = phy.demodulator(framing)
    got = [f.data for i in range(0, x.size, 1000) for f in dem.feed(x[i : i + 1000])]
    assert got == frames


@pytest.mark.parametrize(("amplitude", "peak"), [(1.0, 128), (None, 42)])
def test_legacy_line_8_bit(
    amplitude: float | None, peak: int, framing: LengthFraming, rng: np.random.Generator
) -> None:
    # full scale as the original writes a WAV file; a third (42 of 128) as it plays a sound card
    phy = ManchesterPhy(legacy=True, amplitude=amplitude)
    frames = random_frames(rng, 3, 10, 256)
    x, _ = frames_signal(phy, frames)
    assert np.max(np.abs(x)) * 128 == peak
    y = simulate(x, phy.sample_rate, PROFILES["cable"].replace(bits=8), seed=3)
    assert decode_all(phy, framing, y) == frames


@pytest.mark.parametrize("sender_spb", [5.5, 6, 10, 13])
def test_sender_bit_length_far_from_ours(
    sender_spb: float, framing: LengthFraming, rng: np.random.Generator
) -> None:
    # The period is measured on the preamble: a receiver set for 8 reads senders from about 0.55x
    # to 1.8x its own bit length.
    frames = random_frames(rng, 2, 100, 200)
    x, _ = frames_signal(ManchesterPhy(samples_per_bit=sender_spb), frames)
    assert decode_all(ManchesterPhy(samples_per_bit=8), framing, x) == frames


def jittered_line(
    bits: np.ndarray, half: float, jitter: float, wander: float, rng: np.random.Generator
) -> np.ndarray:
    """Manchester levels whose transitions are each displaced at random by up to ``jitter``
    half-bits, on a time base that wanders slowly (wow and flutter) by up to ``wander`` bits."""
    levels = np.empty(2 * bits.size)
    levels[0::2] = np.where(bits == 1, -1.0, 1.0)
    levels[1::2] = -levels[0::2]
    ideal = half * np.arange(1, levels.size + 1)
    slow = wander * 2 * half * np.sin(2 * np.pi * np.arange(levels.size) / 3000)
    edges = ideal + slow + half * rng.uniform(-jitter, jitter, levels.size)
    t = np.arange(int(edges[-1]))
    x = 0.5 * levels[np.searchsorted(edges, t + 0.5)]
    return sosfilt(butter(2, 0.3, output="sos"), x)


def test_transition_jitter_and_wander(framing: LengthFraming, rng: np.random.Generator) -> None:
    # Every transition moved at random by up to 15 % of a half-bit (plus the sample grid's
    # half sample), and the time base swinging by 1.5 bits back and forth over the frame.
    frame = LengthFraming.make(rng.bytes(1000))
    bits = bytes_to_bits(PREAMBLE + frame + bytes(2))
    x = np.concatenate([np.zeros(200), jittered_line(bits, 4.0, 0.15, 1.5, rng), np.zeros(300)])
    assert decode_all(ManchesterPhy(samples_per_bit=8), framing, x) == [frame]


def test_non_finite_samples_do_not_kill_the_receiver(
    framing: LengthFraming, rng: np.random.Generator
) -> None:
    phy = ManchesterPhy(samples_per_bit=8)
    frames = random_frames(rng, 1, 50, 50)
    x, _ = frames_signal(phy, frames)
    bad = np.array([np.nan, np.inf, -np.inf] * 10, dtype=np.float32)
    dem = phy.demodulator(framing)
    assert dem.feed(bad) == []
    assert [f.data for f in dem.feed(x)] == frames
