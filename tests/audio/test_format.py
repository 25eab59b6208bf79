from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.audio.format import (
    AudioFormat,
    from_array,
    s16_to_u8,
    silence,
    to_array,
    to_float,
    u8_to_s16,
)
from audionet.errors import ConfigError, UnsupportedFormatError


def test_sizes() -> None:
    fmt = AudioFormat(8000, 1)
    assert fmt.frame_bytes == 2
    assert fmt.bytes_per_second == 16000
    assert fmt.bytes_for(0.02) == 320  # one AudioSocket frame
    assert fmt.duration(320) == pytest.approx(0.02)
    assert AudioFormat(48000, 2).frame_bytes == 4
    assert str(AudioFormat(16000)) == "16000 Hz mono 16-bit"


@pytest.mark.parametrize(
    "args", [(100, 1, 2), (8000, 0, 2), (8000, 9, 2), (8000, 1, 3), (8000, 1, 4)]
)
def test_invalid_formats_are_config_errors(args: tuple[int, int, int]) -> None:
    with pytest.raises(UnsupportedFormatError):
        AudioFormat(*args)
    with pytest.raises(ConfigError):  # the same error is also a ConfigError
        AudioFormat(*args)


def test_to_array_rejects_partial_frames() -> None:
    with pytest.raises(UnsupportedFormatError, match="whole number"):
        to_array(b"\x00\x01\x02", 1)
    with pytest.raises(UnsupportedFormatError):
        to_array(bytes(6), 2)


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_array_round_trip(values: list[int]) -> None:
    pcm = np.array(values, dtype="<i2").tobytes()
    assert from_array(to_array(pcm)) == pcm


def test_float_conversion_clips_and_rounds() -> None:
    pcm = from_array(np.array([0.0, 0.5, 1.0, 2.0, -2.0]))
    assert list(to_array(pcm).ravel()) == [0, 16384, 32767, 32767, -32768]
    assert to_float(pcm)[1, 0] == pytest.approx(0.5, abs=1e-4)


def test_8bit_round_trip_is_within_one_step() -> None:
    u8 = bytes(range(256))
    assert s16_to_u8(u8_to_s16(u8)) == u8
    pcm = from_array(np.linspace(-1, 1, 1000))
    back = to_array(u8_to_s16(s16_to_u8(pcm))).astype(int).ravel()
    err = np.abs(back - to_array(pcm).astype(int).ravel())
    assert np.max(err) <= 256  # one 8-bit step, reached only where +1.0 clips to 127
    assert np.max(err[np.abs(back) < 32000]) <= 128  # elsewhere rounded to the nearest step


def test_silence() -> None:
    assert silence(AudioFormat(8000, 2), 0.01) == bytes(320)
