from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audionet.audio.format import AudioFormat, s16_to_u8
from audionet.audio.wav import read_wav, write_wav
from audionet.errors import AudioError, UnsupportedFormatError


@settings(max_examples=30, deadline=None)
@given(
    samples=st.lists(st.integers(-32768, 32767), max_size=400),
    rate=st.sampled_from([8000, 16000, 44100, 48000]),
)
def test_16bit_round_trip_is_bit_exact(
    tmp_path_factory: pytest.TempPathFactory, samples: list[int], rate: int
) -> None:
    path = tmp_path_factory.mktemp("wav") / "x.wav"
    pcm = np.array(samples, "<i2").tobytes()
    write_wav(path, AudioFormat(rate), pcm)
    fmt, back = read_wav(path)
    assert fmt == AudioFormat(rate) and back == pcm


def test_stereo_and_8bit(tmp_path: Path) -> None:
    pcm = np.arange(-32768, 32768, 256, dtype="<i2").tobytes()
    write_wav(tmp_path / "s.wav", AudioFormat(8000, 2), pcm)
    assert read_wav(tmp_path / "s.wav") == (AudioFormat(8000, 2), pcm)
    write_wav(tmp_path / "u8.wav", AudioFormat(44100, 1, 1), pcm)
    with wave.open(str(tmp_path / "u8.wav")) as w:
        assert w.getsampwidth() == 1
        assert w.readframes(w.getnframes()) == s16_to_u8(pcm)
    fmt, back = read_wav(tmp_path / "u8.wav")
    assert fmt.sample_width == 1
    assert back == pcm  # multiples of 256 survive 8 bits exactly


def test_truncated_wav_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    write_wav(path, AudioFormat(8000), bytes(16000))
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    with pytest.raises(AudioError, match="truncated"):
        read_wav(path)
    path.write_bytes(data[:20])
    with pytest.raises(AudioError, match="not a readable WAV"):
        read_wav(path)


def test_missing_and_non_wav_files(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    (tmp_path / "x.wav").write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="not a readable WAV"):
        read_wav(tmp_path / "x.wav")


def test_24bit_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "24.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(8000)
        w.writeframes(bytes(30))
    with pytest.raises(UnsupportedFormatError, match="24-bit"):
        read_wav(path)
