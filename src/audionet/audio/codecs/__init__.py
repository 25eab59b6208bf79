"""Codecs behind one interface (:class:`Codec`) and one factory (:func:`get_codec`).

========  ==========================  ===============================  ====
name      rates                        frame durations                  PLC
========  ==========================  ===============================  ====
opus      8, 12, 16, 24, 48 kHz        10, 20, 40, 60 ms (default 20)   yes
codec2    8 kHz mono                   multiples of the mode's frame    no
ulaw      any (telephony: 8 kHz)       any (default 20 ms)              no
alaw      any (telephony: 8 kHz)       any (default 20 ms)              no
pcm       any                          any (default 20 ms)              no
========  ==========================  ===============================  ====
"""

from __future__ import annotations

from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat
from audionet.errors import CodecError, UnknownCodecError

CODECS = ("opus", "codec2", "ulaw", "alaw", "pcm")

#: Default rate per codec when the caller gives none.
DEFAULT_RATES = {"opus": 48000, "codec2": 8000, "ulaw": 8000, "alaw": 8000, "pcm": 8000}


def get_codec(
    name: str,
    *,
    rate: int | None = None,
    channels: int = 1,
    frame_ms: float | None = None,
    bitrate: int | None = None,
    application: str = "voip",
    mode: int | None = None,
) -> Codec:
    """A new codec instance; :class:`UnknownCodecError` names the known codecs otherwise.

    ``bitrate`` applies to Opus; ``mode`` (bit/s) to Codec 2 (default 1200); ``application`` to Opus.
    """
    key = name.lower()
    if key not in CODECS:
        raise UnknownCodecError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}")
    fmt = AudioFormat(rate or DEFAULT_RATES[key], channels)
    if key == "opus":
        from audionet.audio.codecs.opus import OpusCodec

        return OpusCodec(fmt, frame_ms or 20, bitrate, application)
    if key == "codec2":
        from audionet.audio.codecs.codec2 import Codec2Codec

        if bitrate is not None and mode is None:
            mode = bitrate
        return Codec2Codec(fmt, mode or 1200, frame_ms)
    samples = fmt.rate * (frame_ms or 20) / 1000
    if samples != int(samples) or samples <= 0:
        raise CodecError(f"{frame_ms} ms is not a whole number of samples at {fmt.rate} Hz")
    if key == "pcm":
        from audionet.audio.codecs.pcm import PcmCodec

        return PcmCodec(fmt, int(samples))
    from audionet.audio.codecs.g711 import AlawCodec, UlawCodec

    return (UlawCodec if key == "ulaw" else AlawCodec)(fmt, int(samples))


__all__ = ["CODECS", "Codec", "get_codec"]
