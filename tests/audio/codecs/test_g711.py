from __future__ import annotations

import av
import numpy as np
import pytest

from audionet.audio.codecs import get_codec
from audionet.audio.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from audionet.errors import CodecError

ALL_CODES = bytes(range(256))


def ffmpeg_decode(codec: str, data: bytes) -> np.ndarray:
    ctx = av.CodecContext.create(codec, "r")
    ctx.sample_rate = 8000
    ctx.layout = "mono"
    return np.concatenate([f.to_ndarray().ravel() for f in ctx.decode(av.Packet(data))])


@pytest.mark.parametrize(
    ("decode", "ffmpeg"), [(ulaw_decode, "pcm_mulaw"), (alaw_decode, "pcm_alaw")]
)
def test_decoding_matches_ffmpeg_for_every_code(decode: object, ffmpeg: str) -> None:
    ours = np.frombuffer(decode(ALL_CODES), dtype="<i2")  # type: ignore[operator]
    assert np.array_equal(ours, ffmpeg_decode(ffmpeg, ALL_CODES))


def test_reference_values() -> None:
    # ITU-T G.711 / g711.c: mu-law 0x00 is the most negative level, 0xFF is +0; A-law 0xD5 is +8.
    assert list(np.frombuffer(ulaw_decode(bytes([0x00, 0x80, 0xFF])), "<i2")) == [-32124, 32124, 0]
    assert list(np.frombuffer(alaw_decode(bytes([0x55, 0xD5, 0xAA])), "<i2")) == [-8, 8, 32256]
    zero = np.zeros(1, "<i2").tobytes()
    assert ulaw_encode(zero) == b"\xff"
    assert alaw_encode(zero) == b"\xd5"


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_codes_survive_a_round_trip(encode: object, decode: object) -> None:
    back = encode(decode(ALL_CODES))  # type: ignore[operator]
    differing = [c for c in range(256) if back[c] != c]
    # Only mu-law's "negative zero" (0x7F) comes back as +0 (0xFF).
    assert differing in ([], [0x7F])


@pytest.mark.parametrize(
    ("encode", "decode", "worst"),
    [(ulaw_encode, ulaw_decode, 0.06), (alaw_encode, alaw_decode, 0.07)],
)
def test_quantisation_error_is_logarithmic(encode: object, decode: object, worst: float) -> None:
    x = np.arange(-32768, 32768, dtype="<i2")
    y = np.frombuffer(decode(encode(x.tobytes())), "<i2").astype(float)  # type: ignore[operator]
    big = np.abs(x) > 1024
    relative = np.abs(y[big] - x[big]) / np.abs(x[big])
    assert relative.max() < worst  # about 3% (A-law) to 6% (mu-law) at a segment's start


def test_codec_interface() -> None:
    c = get_codec("ulaw")
    assert c.format.rate == 8000 and c.frame_bytes == 320 and c.bitrate == 64000
    pcm = np.full(160, 1000, "<i2").tobytes()
    packet = c.encode(pcm)
    assert len(packet) == 160
    assert len(c.decode(packet)) == 320
    assert c.decode(None) == bytes(320)  # no PLC: silence
    with pytest.raises(CodecError, match="320 bytes"):
        c.encode(pcm[:-2])
