"""Opus through PyAV's bundled libopus (RFC 6716).

The encoder is FFmpeg's ``libopus`` wrapper, one packet per frame. The decoder always produces 48 kHz
(that is how FFmpeg's libopus decoder is built), so its output is resampled back to the codec's rate
with a streaming resampler; a few samples of start-up delay are primed once so that every call
returns exactly one frame.

Packet-loss concealment: FFmpeg cannot be handed an empty packet (that means "drain"), so a lost
packet is replaced by an Opus packet whose frames have length zero, which RFC 6716 §3.2.1 defines as
"lost": libopus then runs its own PLC for exactly that duration.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat
from audionet.audio.resample import Resampler
from audionet.errors import CodecError, UnsupportedFormatError

#: Input rates libopus accepts (RFC 6716 §2: NB 8 kHz to FB 48 kHz).
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Frame durations offered (ms); Opus itself also has 2.5/5/10 and 80-120 ms.
OPUS_FRAME_MS = (10, 20, 40, 60)
APPLICATIONS = ("voip", "audio", "lowdelay")
_DECODER_RATE = 48000
#: Spare samples primed in the decoder's output queue so resampler jitter never runs it dry.
_PRIME_MARGIN = 32


def default_bitrate(rate: int, channels: int) -> int:
    """A bit rate that sounds clean for speech and music at ``rate`` without wasting bytes."""
    mono = {8000: 12000, 12000: 16000, 16000: 20000, 24000: 28000, 48000: 40000}[rate]
    return mono if channels == 1 else int(mono * 1.6)


def _toc_frame_ms(toc: int) -> float:
    """Duration of each frame in a packet, from its TOC byte (RFC 6716 §3.1, Table 2)."""
    config = toc >> 3
    if config < 12:
        return (10, 20, 40, 60)[config % 4]
    if config < 16:
        return (10, 20)[config % 2]
    return (2.5, 5, 10, 20)[config % 4]


class OpusCodec(Codec):
    name = "opus"
    has_plc = True

    def __init__(
        self,
        fmt: AudioFormat,
        frame_ms: float = 20,
        bitrate: int | None = None,
        application: str = "voip",
    ) -> None:
        if fmt.rate not in OPUS_RATES:
            raise UnsupportedFormatError(
                f"Opus takes {', '.join(map(str, OPUS_RATES))} Hz, not {fmt.rate} Hz: resample first"
            )
        if fmt.channels not in (1, 2):
            raise UnsupportedFormatError(
                f"Opus here is mono or stereo, not {fmt.channels} channels"
            )
        if frame_ms not in OPUS_FRAME_MS:
            raise CodecError(
                f"Opus frame duration must be one of {OPUS_FRAME_MS} ms, not {frame_ms}"
            )
        if application not in APPLICATIONS:
            raise CodecError(f"Opus application must be one of {APPLICATIONS}, not {application!r}")
        super().__init__(fmt, int(fmt.rate * frame_ms / 1000))
        self.frame_ms = frame_ms
        self._bitrate = bitrate or default_bitrate(fmt.rate, fmt.channels)
        self._layout = "mono" if fmt.channels == 1 else "stereo"
        try:
            self._enc = av.CodecContext.create("libopus", "w")
            self._enc.sample_rate = fmt.rate
            self._enc.layout = self._layout
            self._enc.format = "s16"
            self._enc.bit_rate = self._bitrate
            self._enc.time_base = fractions.Fraction(1, fmt.rate)
            self._enc.options = {"application": application, "frame_duration": f"{frame_ms:g}"}
            self._enc.open()
            self._dec = av.CodecContext.create("libopus", "r")
            self._dec.sample_rate = _DECODER_RATE
            self._dec.layout = self._layout
        except av.error.FFmpegError as exc:  # pragma: no cover - depends on the PyAV build
            raise CodecError(f"cannot open libopus through PyAV: {exc}") from exc
        self._pts = 0
        self._last_toc: int | None = None
        self._back = Resampler(fmt.with_rate(_DECODER_RATE), fmt)
        self._queue = bytearray()
        self._primed = False

    @property
    def bitrate(self) -> int:
        return self._bitrate

    def encode(self, pcm: bytes) -> bytes:
        self.check_frame(pcm)
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout=self._layout
        )
        frame.sample_rate = self.format.rate
        frame.pts = self._pts
        self._pts += self.frame_samples
        try:
            packets = self._enc.encode(frame)
        except av.error.FFmpegError as exc:
            raise CodecError(f"Opus encoding failed: {exc}") from exc
        if len(packets) != 1:
            raise CodecError(f"libopus returned {len(packets)} packets for one frame")
        return bytes(packets[0])

    def decode(self, packet: bytes | None) -> bytes:
        if packet is None:
            packet = self._loss_packet()
            if packet is None:  # nothing decoded yet: nothing to conceal from
                return bytes(self.frame_bytes)
        elif not packet:
            raise CodecError("empty Opus packet (a lost packet is decode(None))")
        else:
            self._last_toc = packet[0]
        try:
            frames = self._dec.decode(av.Packet(packet))
        except av.error.FFmpegError as exc:
            raise CodecError(f"invalid Opus packet ({len(packet)} bytes): {exc}") from exc
        for f in frames:
            self._queue += self._back.process(_interleaved(f))
        return self._take()

    def _loss_packet(self) -> bytes | None:
        """An Opus packet of zero-length frames lasting one codec frame: "lost" to the decoder."""
        if self._last_toc is None:
            return None
        toc = self._last_toc & 0xFC
        count = round(self.frame_ms / _toc_frame_ms(toc))
        if count <= 1:
            return bytes([toc])  # code 0: one frame, here of length 0
        return bytes([toc | 3, count])  # code 3, CBR, `count` frames of length 0

    def _take(self) -> bytes:
        n = self.frame_bytes
        if not self._primed:
            # The resampler's start-up delay: pad once, so each later call yields exactly a frame.
            short = max(0, n - len(self._queue)) + _PRIME_MARGIN * 2 * self.format.channels
            self._queue[:0] = bytes(short)
            self._primed = True
        if len(self._queue) < n:  # pragma: no cover - only if libopus returned less than a frame
            self._queue += bytes(n - len(self._queue))
        out = bytes(self._queue[:n])
        del self._queue[:n]
        return out


def _interleaved(frame: av.AudioFrame) -> bytes:
    a = frame.to_ndarray()
    if frame.format.is_planar:
        a = a.T
    if a.dtype != np.int16:
        a = np.clip(np.rint(a * 32767.0), -32768, 32767)
    return bytes(a.astype("<i2").tobytes())
