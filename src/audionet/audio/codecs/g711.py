"""G.711 mu-law and A-law (ITU-T G.711), vectorised with numpy.

The conversions follow the reference algorithms of Sun Microsystems' public-domain ``g711.c`` (the
basis of SoX's, Asterisk's and most others'): 16-bit linear in, one byte per sample out. Encoding goes
through a 65,536-entry table built once, decoding through a 256-entry table.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat, to_array

_BIAS = 0x84  # mu-law bias added before finding the segment (g711.c)
_CLIP = 8159  # largest 14-bit magnitude mu-law can represent (g711.c)
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _linear2ulaw(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    v = pcm >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.minimum(np.abs(v), _CLIP) + (_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, v)
    uval = (seg << 4) | ((v >> (seg + 1)) & 0xF)
    uval = np.where(seg >= 8, 0x7F, uval)
    return (uval ^ mask).astype(np.uint8)


def _ulaw2linear(u: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
    u = ~u & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def _linear2alaw(pcm: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    v = pcm >> 3
    mask = np.where(v >= 0, 0xD5, 0x55)
    v = np.where(v >= 0, v, -v - 1)
    seg = np.searchsorted(_SEG_AEND, v)
    low = np.where(seg < 2, (v >> 1) & 0xF, (v >> np.maximum(seg, 1)) & 0xF)
    aval = np.where(seg >= 8, 0x7F, (seg << 4) | low)
    return (aval ^ mask).astype(np.uint8)


def _alaw2linear(a: npt.NDArray[np.int32]) -> npt.NDArray[np.int16]:
    a = a ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(
        seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0))
    )
    return np.where(a & 0x80, t, -t).astype(np.int16)


@cache
def _tables() -> tuple[
    npt.NDArray[np.uint8], npt.NDArray[np.int16], npt.NDArray[np.uint8], npt.NDArray[np.int16]
]:
    linear = np.arange(-32768, 32768, dtype=np.int32)
    codes = np.arange(256, dtype=np.int32)
    # Encode tables are indexed by the int16 value reinterpreted as uint16.
    ulaw_enc = np.roll(_linear2ulaw(linear), -32768)
    alaw_enc = np.roll(_linear2alaw(linear), -32768)
    return ulaw_enc, _ulaw2linear(codes), alaw_enc, _alaw2linear(codes)


def ulaw_encode(pcm: bytes) -> bytes:
    """s16le PCM to G.711 mu-law, one byte per sample."""
    return _tables()[0][to_array(pcm).reshape(-1).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """G.711 mu-law to s16le PCM."""
    return _tables()[1][np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def alaw_encode(pcm: bytes) -> bytes:
    """s16le PCM to G.711 A-law, one byte per sample."""
    return _tables()[2][to_array(pcm).reshape(-1).view(np.uint16)].tobytes()


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law to s16le PCM."""
    return _tables()[3][np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


class _G711(Codec):
    has_plc = False

    def __init__(self, fmt: AudioFormat, frame_samples: int) -> None:
        super().__init__(fmt, frame_samples)
        self._last = bytes(self.frame_bytes)

    @property
    def bitrate(self) -> int:
        return 8 * self.format.rate * self.format.channels

    def decode(self, packet: bytes | None) -> bytes:
        if packet is None:
            return bytes(self.frame_bytes)  # no PLC in plain G.711: silence
        return self._decode(packet)

    def _decode(self, packet: bytes) -> bytes:
        raise NotImplementedError


class UlawCodec(_G711):
    name = "ulaw"

    def encode(self, pcm: bytes) -> bytes:
        self.check_frame(pcm)
        return ulaw_encode(pcm)

    def _decode(self, packet: bytes) -> bytes:
        return ulaw_decode(packet)


class AlawCodec(_G711):
    name = "alaw"

    def encode(self, pcm: bytes) -> bytes:
        self.check_frame(pcm)
        return alaw_encode(pcm)

    def _decode(self, packet: bytes) -> bytes:
        return alaw_decode(packet)
