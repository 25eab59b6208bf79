from __future__ import annotations

import pytest

from audionet.audio.analysis import dominant_frequency
from audionet.audio.codecs import CODECS, get_codec
from audionet.audio.sources import ToneSource
from audionet.errors import CodecError, ConfigError, UnknownCodecError, UnsupportedFormatError


@pytest.mark.parametrize(("mode", "packet"), [(1200, 6), (3200, 8), (2400, 6), (1600, 8)])
def test_codec2_modes_and_frequency(mode: int, packet: int) -> None:
    codec = get_codec("codec2", mode=mode)
    assert codec.format.rate == 8000 and codec.bitrate == mode
    out = []
    for frame in ToneSource(440, codec.format, seconds=2).chunks(codec.frame_samples):
        p = codec.encode(frame)
        assert len(p) == packet
        out.append(codec.decode(p))
    pcm = b"".join(out)
    # Codec 2 is a vocoder: it keeps the pitch, not the waveform.
    assert dominant_frequency(pcm[len(pcm) // 4 :], codec.format) == pytest.approx(440, abs=15)


def test_codec2_packs_several_frames_per_packet() -> None:
    codec = get_codec("codec2", mode=1200, frame_ms=120)
    assert codec.frame_samples == 960
    assert len(codec.encode(bytes(codec.frame_bytes))) == 18
    with pytest.raises(CodecError, match="multiple"):
        get_codec("codec2", mode=1200, frame_ms=50)
    with pytest.raises(CodecError, match="must be 18 bytes"):
        codec.decode(b"123")
    assert codec.decode(None) == bytes(codec.frame_bytes)


def test_codec2_wants_8khz_mono() -> None:
    with pytest.raises(UnsupportedFormatError):
        get_codec("codec2", rate=16000)
    with pytest.raises(CodecError, match="mode"):
        get_codec("codec2", mode=999)


def test_pcm_is_identity() -> None:
    codec = get_codec("pcm", rate=16000)
    frame = bytes(range(256)) * (codec.frame_bytes // 256) + bytes(codec.frame_bytes % 256)
    assert codec.decode(codec.encode(frame)) == frame
    with pytest.raises(CodecError):
        codec.decode(frame[:-2])


def test_unknown_codec_names_the_known_ones() -> None:
    with pytest.raises(UnknownCodecError, match="opus, codec2, ulaw, alaw, pcm"):
        get_codec("mp3")
    with pytest.raises(
        ConfigError
    ):  # also a ConfigError for callers catching configuration mistakes
        get_codec("gsm")


@pytest.mark.parametrize("name", CODECS)
def test_every_codec_describes_itself(name: str) -> None:
    codec = get_codec(name)
    assert codec.name == name and name in codec.describe()
    assert codec.frame_bytes == codec.frame_samples * 2
