from __future__ import annotations

import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency, level_dbfs, tone_snr
from audionet.audio.codecs import get_codec
from audionet.audio.sources import ToneSource
from audionet.errors import CodecError, UnsupportedFormatError


def round_trip(codec: object, seconds: float = 2.0, lose: set[int] | None = None) -> bytes:
    from audionet.audio.codecs.base import Codec

    assert isinstance(codec, Codec)
    src = ToneSource(440, codec.format, seconds=seconds)
    out = []
    frames = [f for f in src.chunks(codec.frame_samples) if len(f) == codec.frame_bytes]
    for i, frame in enumerate(frames):
        packet = codec.encode(frame)
        out.append(codec.decode(None if lose and i in lose else packet))
    return b"".join(out)


@pytest.mark.parametrize(
    ("rate", "channels", "frame_ms"),
    [(16000, 1, 60), (48000, 2, 20), (8000, 1, 40), (24000, 1, 20)],
)
def test_tone_keeps_its_frequency_and_snr(rate: int, channels: int, frame_ms: int) -> None:
    codec = get_codec("opus", rate=rate, channels=channels, frame_ms=frame_ms)
    out = round_trip(codec)
    assert len(out) % codec.frame_bytes == 0
    steady = out[len(out) // 4 :]
    assert dominant_frequency(steady, codec.format) == pytest.approx(440, abs=2)
    assert tone_snr(steady, codec.format, 440) > 20


def test_bitrate_is_near_the_target() -> None:
    codec = get_codec("opus", rate=16000, frame_ms=60, bitrate=16000)
    src = ToneSource(440, codec.format, seconds=3)
    total = sum(len(codec.encode(f)) for f in src.chunks(codec.frame_samples))
    assert 8 * total / 3 == pytest.approx(16000, rel=0.35)


def test_packet_loss_concealment_fills_the_gap() -> None:
    codec = get_codec("opus", rate=16000, frame_ms=20)
    lost = {30, 31}
    out = round_trip(codec, lose=lost)
    frame = codec.frame_bytes
    concealed = out[30 * frame : 32 * frame]
    # Opus PLC continues the tone instead of leaving a hole...
    assert level_dbfs(concealed, codec.format)[0] > -20
    # ...and the stream recovers fully after the loss.
    after = out[40 * frame :]
    assert tone_snr(after, codec.format, 440) > 20


def test_concealment_of_60ms_frames_lasts_one_frame() -> None:
    codec = get_codec("opus", rate=16000, frame_ms=60)
    out = round_trip(codec, seconds=1.2, lose={5, 6})
    assert len(out) == 20 * codec.frame_bytes


def test_loss_before_any_packet_is_silence() -> None:
    codec = get_codec("opus", rate=16000, frame_ms=20)
    assert codec.decode(None) == bytes(codec.frame_bytes)


def test_garbage_and_empty_packets_are_codec_errors() -> None:
    codec = get_codec("opus", rate=16000)
    with pytest.raises(CodecError, match="empty"):
        codec.decode(b"")
    # A packet whose TOC says code 3 with an impossible frame count is invalid (RFC 6716 §3.2.5).
    with pytest.raises(CodecError, match="invalid Opus packet"):
        codec.decode(bytes([0x03, 0x00]))


def test_unsupported_settings() -> None:
    with pytest.raises(UnsupportedFormatError, match="44100"):
        get_codec("opus", rate=44100)
    with pytest.raises(CodecError, match="frame duration"):
        get_codec("opus", rate=16000, frame_ms=30)
    with pytest.raises(CodecError, match="application"):
        get_codec("opus", rate=16000, application="karaoke")
    with pytest.raises(CodecError, match="bytes of PCM"):
        get_codec("opus", rate=16000).encode(bytes(10))


def test_stereo_channels_stay_apart() -> None:
    codec = get_codec("opus", rate=48000, channels=2, frame_ms=20)
    n = codec.frame_samples
    left = 0.5 * np.sin(2 * np.pi * 440 * np.arange(50 * n) / 48000)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    pcm = (stereo * 32767).astype("<i2").tobytes()
    out = b"".join(
        codec.decode(codec.encode(pcm[i : i + codec.frame_bytes]))
        for i in range(0, len(pcm), codec.frame_bytes)
    )
    both = np.frombuffer(out, "<i2").reshape(-1, 2)[len(out) // 16 :].astype(float)
    assert np.sqrt(np.mean(both[:, 0] ** 2)) > 20 * np.sqrt(np.mean(both[:, 1] ** 2))
