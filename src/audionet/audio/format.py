"""Audio formats and the one PCM convention used across audionet.

**Convention.** PCM audio travels between components as ``bytes`` of *signed 16-bit little-endian*
samples, channels interleaved (``s16le``), the layout of WAV files and of Asterisk's AudioSocket.
Where numbers are needed, :func:`to_array` gives an ``int16`` numpy view of shape ``(frames, channels)``
and :func:`from_array` turns such an array (``int16``, or ``float`` in [-1, 1]) back into bytes.
8-bit audio exists only at the edges (8-bit WAV files, the modem's legacy 8-bit line) and is converted
on the way in and out.

A *frame* in the audio sense is one sample for every channel; codec frames are called packets or
codec frames to keep the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.errors import UnsupportedFormatError

#: Rates every resampling path in audionet is tested with (SPEC §1).
COMMON_RATES = (8000, 12000, 16000, 24000, 32000, 44100, 48000)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """Sample rate in Hz, channel count, and bytes per sample (1 = 8-bit, 2 = 16-bit)."""

    rate: int
    channels: int = 1
    sample_width: int = 2

    def __post_init__(self) -> None:
        if not 1000 <= self.rate <= 384000:
            raise UnsupportedFormatError(f"sample rate {self.rate} Hz is outside 1000..384000 Hz")
        if not 1 <= self.channels <= 8:
            raise UnsupportedFormatError(f"{self.channels} channels: use 1 to 8")
        if self.sample_width not in (1, 2):
            raise UnsupportedFormatError(
                f"sample width {self.sample_width} bytes: audionet handles 8-bit (1) and 16-bit (2)"
            )

    @property
    def frame_bytes(self) -> int:
        """Bytes of one audio frame (one sample of every channel)."""
        return self.channels * self.sample_width

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.frame_bytes

    def frames_for(self, seconds: float) -> int:
        """Number of audio frames in ``seconds`` of audio (rounded to the nearest frame)."""
        return round(seconds * self.rate)

    def bytes_for(self, seconds: float) -> int:
        """Number of bytes in ``seconds`` of audio, a whole number of frames."""
        return self.frames_for(seconds) * self.frame_bytes

    def duration(self, nbytes: int) -> float:
        """Seconds of audio in ``nbytes`` bytes."""
        return nbytes / self.bytes_per_second

    def with_rate(self, rate: int) -> AudioFormat:
        return AudioFormat(rate, self.channels, self.sample_width)

    def __str__(self) -> str:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels}ch")
        return f"{self.rate} Hz {layout} {8 * self.sample_width}-bit"


def to_array(pcm: bytes | bytearray | memoryview, channels: int = 1) -> npt.NDArray[np.int16]:
    """View s16le PCM as an ``int16`` array of shape ``(frames, channels)`` (no copy).

    Raises :class:`UnsupportedFormatError` if the length is not a whole number of frames.
    """
    if len(pcm) % (2 * channels):
        raise UnsupportedFormatError(
            f"{len(pcm)} bytes is not a whole number of 16-bit frames of {channels} channel(s)"
        )
    return np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)


def from_array(samples: npt.ArrayLike) -> bytes:
    """s16le bytes from an ``int16`` array, or a float array in [-1, 1] (clipped, rounded)."""
    a = np.asarray(samples)
    if a.dtype.kind == "f":
        a = np.clip(np.rint(a * 32767.0), -32768, 32767).astype("<i2")
    elif a.dtype != np.dtype("<i2"):
        a = a.astype("<i2")
    return a.tobytes()


def to_float(pcm: bytes | bytearray | memoryview, channels: int = 1) -> npt.NDArray[np.float32]:
    """s16le PCM as float32 in [-1, 1), shape ``(frames, channels)``."""
    return to_array(pcm, channels).astype(np.float32) / 32768.0


def u8_to_s16(data: bytes) -> bytes:
    """Unsigned 8-bit PCM (WAV's 8-bit layout) to s16le."""
    a = (np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) << 8
    return a.astype("<i2").tobytes()


def s16_to_u8(pcm: bytes) -> bytes:
    """s16le to unsigned 8-bit PCM (WAV's 8-bit layout), rounding to the nearest step."""
    a = to_array(pcm).reshape(-1).astype(np.int32)
    return bytes((np.clip((a + 128) >> 8, -128, 127) + 128).astype(np.uint8).tobytes())


def silence(fmt: AudioFormat, seconds: float) -> bytes:
    """``seconds`` of digital silence in s16le for ``fmt``'s rate and channels."""
    return bytes(fmt.frames_for(seconds) * fmt.channels * 2)
