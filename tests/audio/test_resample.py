from __future__ import annotations

import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.audio.format import AudioFormat, from_array, to_array
from audionet.audio.resample import Resampler, resample
from audionet.errors import UnsupportedFormatError

PAIRS = [
    (8000, 48000),
    (48000, 8000),
    (44100, 16000),
    (16000, 44100),
    (8000, 16000),
    (48000, 44100),
]


def sine(rate: int, freq: float = 440.0, seconds: float = 1.0, channels: int = 1) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t)
    return from_array(np.repeat(x[:, None], channels, axis=1))


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_sine_is_accurate(src: int, dst: int) -> None:
    out = resample(sine(src), AudioFormat(src), AudioFormat(dst))
    assert len(out) // 2 == pytest.approx(dst, abs=2)  # one second in, one second out
    middle = out[len(out) // 4 : 3 * len(out) // 4]
    assert dominant_frequency(middle, AudioFormat(dst)) == pytest.approx(440, abs=0.5)
    # A real band-limited resampler, not sample dropping: the sine stays clean (> 60 dB).
    assert tone_snr(middle, AudioFormat(dst), 440) > 60


def test_streaming_equals_one_shot() -> None:
    pcm = sine(8000, seconds=0.5)
    r = Resampler(AudioFormat(8000), AudioFormat(48000))
    pieces = [r.process(pcm[i : i + 322]) for i in range(0, len(pcm), 322)]
    streamed = b"".join(pieces) + r.flush()
    assert streamed == resample(pcm, AudioFormat(8000), AudioFormat(48000))


def test_downsampling_removes_what_cannot_be_represented() -> None:
    # 6 kHz cannot exist at 8 kHz (Nyquist 4 kHz): a real resampler filters it out instead of aliasing.
    out = resample(sine(48000, freq=6000), AudioFormat(48000), AudioFormat(8000))
    level = np.sqrt(np.mean(to_array(out).astype(float) ** 2)) / 32768
    assert level < 0.01


def test_channel_conversion() -> None:
    stereo = resample(sine(8000, channels=1), AudioFormat(8000, 1), AudioFormat(8000, 2))
    a = to_array(stereo, 2)
    assert np.array_equal(a[:, 0], a[:, 1])
    mono = resample(stereo, AudioFormat(8000, 2), AudioFormat(8000, 1))
    assert len(mono) == len(stereo) // 2


def test_same_format_passes_through() -> None:
    pcm = sine(16000, seconds=0.1)
    assert resample(pcm, AudioFormat(16000), AudioFormat(16000)) == pcm


def test_bad_input() -> None:
    with pytest.raises(UnsupportedFormatError):
        Resampler(AudioFormat(8000, 2), AudioFormat(16000, 2)).process(b"\x00\x00\x00")
    with pytest.raises(UnsupportedFormatError, match="mono and stereo"):
        Resampler(AudioFormat(8000, 6), AudioFormat(16000, 1))
