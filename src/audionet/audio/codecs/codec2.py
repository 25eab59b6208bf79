"""Codec 2 (David Rowe's low-bit-rate speech codec) through pycodec2, 8 kHz mono.

A packet holds one or more native Codec 2 frames (``frame_ms`` must be a multiple of the mode's own
frame duration), so a caller can trade latency for fewer, larger packets. Codec 2 has no packet-loss
concealment: a lost packet decodes to silence.
"""

from __future__ import annotations

import numpy as np
import pycodec2

from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat
from audionet.errors import CodecError, UnsupportedFormatError

#: Modes pycodec2 builds (bit/s). 1200 is the AoDNS seed's choice.
CODEC2_MODES = (3200, 2400, 1600, 1400, 1300, 1200)


class Codec2Codec(Codec):
    name = "codec2"
    has_plc = False

    def __init__(self, fmt: AudioFormat, mode: int = 1200, frame_ms: float | None = None) -> None:
        if fmt.rate != 8000 or fmt.channels != 1:
            raise UnsupportedFormatError(f"Codec 2 is 8000 Hz mono, not {fmt}: resample first")
        if mode not in CODEC2_MODES:
            raise CodecError(f"Codec 2 mode must be one of {CODEC2_MODES} bit/s, not {mode}")
        self._c2 = pycodec2.Codec2(mode)
        self.mode = mode
        native = int(self._c2.samples_per_frame())
        self._native_bytes = int(self._c2.bytes_per_frame())
        native_ms = 1000 * native / fmt.rate
        per_packet = 1 if frame_ms is None else round(frame_ms / native_ms)
        if per_packet < 1 or abs(per_packet * native_ms - (frame_ms or native_ms)) > 1e-6:
            raise CodecError(
                f"Codec 2 {mode} frames last {native_ms:g} ms; frame_ms must be a multiple of it"
            )
        super().__init__(fmt, native * per_packet)
        self._native = native
        self._per_packet = per_packet

    @property
    def bitrate(self) -> int:
        return self.mode

    @property
    def packet_bytes(self) -> int:
        return self._native_bytes * self._per_packet

    def encode(self, pcm: bytes) -> bytes:
        self.check_frame(pcm)
        x = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        return b"".join(
            bytes(self._c2.encode(x[i : i + self._native]))
            for i in range(0, self.frame_samples, self._native)
        )

    def decode(self, packet: bytes | None) -> bytes:
        if packet is None:
            return bytes(self.frame_bytes)
        if len(packet) != self.packet_bytes:
            raise CodecError(
                f"Codec 2 {self.mode} packet must be {self.packet_bytes} bytes, got {len(packet)}"
            )
        nb = self._native_bytes
        return b"".join(
            np.asarray(self._c2.decode(packet[i : i + nb]), dtype="<i2").tobytes()
            for i in range(0, len(packet), nb)
        )
