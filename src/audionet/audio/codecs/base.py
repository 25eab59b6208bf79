"""The interface every codec implements.

A codec works on fixed-size frames: :meth:`Codec.encode` takes exactly ``frame_bytes`` of s16le PCM in
the codec's :attr:`Codec.format` and returns one packet; :meth:`Codec.decode` takes one packet and
returns one frame of PCM, or, given ``None`` (a lost packet), a concealment frame of the same length
(real packet-loss concealment where the codec has it, silence otherwise; :attr:`Codec.has_plc` tells).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from audionet.audio.format import AudioFormat
from audionet.errors import CodecError


class Codec(ABC):
    """A frame-based audio codec. Instances keep state: use one per stream and direction pair."""

    #: Registry name (``opus``, ``codec2``, ``ulaw``, ``alaw``, ``pcm``).
    name: str = ""
    #: True when :meth:`decode` of ``None`` synthesises a real concealment frame.
    has_plc: bool = False

    def __init__(self, fmt: AudioFormat, frame_samples: int) -> None:
        self.format = fmt
        #: Samples per channel in one codec frame.
        self.frame_samples = frame_samples

    @property
    def frame_bytes(self) -> int:
        """Bytes of s16le PCM in one codec frame."""
        return self.frame_samples * self.format.channels * 2

    @property
    def frame_duration(self) -> float:
        """Seconds of audio in one codec frame."""
        return self.frame_samples / self.format.rate

    @property
    @abstractmethod
    def bitrate(self) -> int:
        """Nominal compressed bit rate in bit/s (the target for variable-rate codecs)."""

    @abstractmethod
    def encode(self, pcm: bytes) -> bytes:
        """Encode exactly one frame (``frame_bytes`` of s16le PCM) into one packet."""

    @abstractmethod
    def decode(self, packet: bytes | None) -> bytes:
        """Decode one packet into one frame of s16le PCM; ``None`` conceals a lost packet."""

    def check_frame(self, pcm: bytes) -> None:
        if len(pcm) != self.frame_bytes:
            raise CodecError(
                f"{self.name}: a frame is {self.frame_bytes} bytes of PCM "
                f"({self.frame_samples} samples x {self.format.channels} ch), got {len(pcm)}"
            )

    def describe(self) -> str:
        return (
            f"{self.name} {self.format} {1000 * self.frame_duration:g} ms frames "
            f"~{self.bitrate / 1000:g} kbit/s"
        )
