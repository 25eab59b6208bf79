"""Raw PCM as a codec: packets are the s16le frames themselves (no compression, no PLC)."""

from __future__ import annotations

from audionet.audio.codecs.base import Codec


class PcmCodec(Codec):
    name = "pcm"
    has_plc = False

    @property
    def bitrate(self) -> int:
        return 16 * self.format.rate * self.format.channels

    def encode(self, pcm: bytes) -> bytes:
        self.check_frame(pcm)
        return bytes(pcm)

    def decode(self, packet: bytes | None) -> bytes:
        if packet is None:
            return bytes(self.frame_bytes)
        self.check_frame(packet)
        return bytes(packet)
