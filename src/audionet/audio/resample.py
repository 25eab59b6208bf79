"""Sample-rate and channel conversion with a real resampler (FFmpeg's libswresample through PyAV).

:class:`Resampler` is streaming and stateful: feed it chunks of any size, and the filter state carries
across chunks, so a stream resampled chunk by chunk equals the stream resampled at once. Output lags
the input by the filter's delay; :meth:`Resampler.flush` returns the tail at the end of a stream.
Sample width conversion (8-bit) is not done here: PCM inside audionet is always s16le.
"""

from __future__ import annotations

import av
import numpy as np

from audionet.audio.format import AudioFormat
from audionet.errors import UnsupportedFormatError

_LAYOUTS = {1: "mono", 2: "stereo"}


def _layout(fmt: AudioFormat) -> str:
    try:
        return _LAYOUTS[fmt.channels]
    except KeyError:
        raise UnsupportedFormatError(
            f"resampling handles mono and stereo, not {fmt.channels} channels"
        ) from None


class Resampler:
    """Converts a stream of s16le PCM from ``src`` to ``dst`` (rate and channel count)."""

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        self.src = src
        self.dst = dst
        self._passthrough = src.rate == dst.rate and src.channels == dst.channels
        self._src_layout = _layout(src)
        self._resampler = (
            None
            if self._passthrough
            else av.AudioResampler(format="s16", layout=_layout(dst), rate=dst.rate)
        )
        self._pts = 0

    def process(self, pcm: bytes) -> bytes:
        """Resample one chunk; the output may be a little shorter or longer than in proportion."""
        if self._passthrough or not pcm:
            return bytes(pcm)
        assert self._resampler is not None
        if len(pcm) % (2 * self.src.channels):
            raise UnsupportedFormatError(
                f"{len(pcm)} bytes is not a whole number of {self.src.channels}-channel frames"
            )
        samples = np.frombuffer(pcm, dtype="<i2")
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout=self._src_layout
        )
        frame.sample_rate = self.src.rate
        frame.pts = self._pts
        self._pts += samples.size // self.src.channels
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> bytes:
        """The samples still inside the filter, at the end of the stream."""
        if self._resampler is None:
            return b""
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> bytes:
        return b"".join(bytes(f.to_ndarray().astype("<i2").tobytes()) for f in frames)


def resample(pcm: bytes, src: AudioFormat, dst: AudioFormat) -> bytes:
    """Resample a whole signal at once (including the filter's tail)."""
    r = Resampler(src, dst)
    return r.process(pcm) + r.flush()
