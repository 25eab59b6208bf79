"""Where audio comes from: files, generators, standard input and the sound card.

Every :class:`Source` delivers s16le PCM in its :attr:`Source.format`:

* ``read(frames)`` returns up to ``frames`` audio frames at once, never paced (``b""`` at the end);
* ``async for chunk in source.aiter(frames)`` yields chunks of ``frames`` frames; a *live* source (a tone,
  silence, the sound card) paces itself in real time on a monotonic deadline, a file as fast as asked.

:func:`open_source` turns the command-line specs (``tone:440``, ``file:song.mp3``, ``stdin``, ``mic``,
``silence``) into a source that delivers exactly the format the caller asks for.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import av
import numpy as np

from audionet.audio.device import load_sounddevice
from audionet.audio.format import AudioFormat, from_array, u8_to_s16
from audionet.audio.resample import Resampler
from audionet.audio.wav import open_wav, wav_format
from audionet.errors import AudioError, ConfigError

#: A live source that falls further behind than this resynchronises instead of bursting to catch up.
MAX_LATENESS = 0.2


class Source(ABC):
    """A stream of s16le PCM in :attr:`format`."""

    format: AudioFormat
    #: True when the source produces audio in real time (iterating it asynchronously is paced).
    live: bool = False

    @abstractmethod
    def read(self, frames: int) -> bytes:
        """Up to ``frames`` audio frames of PCM; ``b""`` once the source is exhausted."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the source holds (files, devices)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def chunks(self, frames: int) -> Iterator[bytes]:
        """Chunks of exactly ``frames`` frames (the last one may be shorter), unpaced."""
        want = frames * self.format.frame_bytes
        buf = bytearray()
        while True:
            data = self.read(frames)
            if not data:
                break
            buf += data
            while len(buf) >= want:
                yield bytes(buf[:want])
                del buf[:want]
        if buf:
            yield bytes(buf)

    async def aiter(self, frames: int) -> AsyncIterator[bytes]:
        """Chunks of ``frames`` frames; paced in real time if the source is live."""
        if not self.live:
            for chunk in self.chunks(frames):
                yield chunk
                await asyncio.sleep(0)
            return
        period = frames / self.format.rate
        deadline = time.monotonic()
        for chunk in self.chunks(frames):
            yield chunk
            deadline += period
            delay = deadline - time.monotonic()
            if delay < -MAX_LATENESS:
                deadline = time.monotonic()  # fell far behind: resync, never burst
            elif delay > 0:
                await asyncio.sleep(delay)


class ToneSource(Source):
    """A sine tone, phase-continuous across reads; endless unless ``seconds`` is given."""

    live = True

    def __init__(
        self, freq: float, fmt: AudioFormat, seconds: float | None = None, amplitude: float = 0.5
    ) -> None:
        if not 0 < freq < fmt.rate / 2:
            raise ConfigError(f"tone of {freq} Hz cannot be represented at {fmt.rate} Hz")
        if not 0 <= amplitude <= 1:
            raise ConfigError(f"amplitude {amplitude} is outside 0..1")
        self.format = fmt
        self.freq = freq
        self.amplitude = amplitude
        self._left = None if seconds is None else fmt.frames_for(seconds)
        self._n = 0

    def read(self, frames: int) -> bytes:
        if self._left is not None:
            frames = min(frames, self._left)
            self._left -= frames
        if frames <= 0:
            return b""
        n = np.arange(self._n, self._n + frames)
        self._n += frames
        # Phase wrapped per sample index so long runs keep full precision.
        period = self.format.rate / math.gcd(int(self.format.rate), round(self.freq) or 1)
        x = self.amplitude * np.sin(2 * np.pi * self.freq * (n % period) / self.format.rate)
        return from_array(np.repeat(x[:, None], self.format.channels, axis=1))


class SilenceSource(Source):
    """Digital silence; endless unless ``seconds`` is given."""

    live = True

    def __init__(self, fmt: AudioFormat, seconds: float | None = None) -> None:
        self.format = fmt
        self._left = None if seconds is None else fmt.frames_for(seconds)

    def read(self, frames: int) -> bytes:
        if self._left is not None:
            frames = min(frames, self._left)
            self._left -= frames
        return bytes(max(frames, 0) * self.format.channels * 2)


class WavSource(Source):
    """A WAV file (8- or 16-bit PCM), read incrementally; 8-bit is converted to s16le."""

    def __init__(self, path: Path | str) -> None:
        self._wav = open_wav(path)
        wfmt = wav_format(self._wav, path)
        self._width = wfmt.sample_width
        self.format = AudioFormat(wfmt.rate, wfmt.channels)

    def read(self, frames: int) -> bytes:
        data = self._wav.readframes(frames)
        return u8_to_s16(data) if self._width == 1 else data

    def close(self) -> None:
        self._wav.close()


class FileSource(Source):
    """Any audio file FFmpeg can decode (MP3, FLAC, Ogg, WAV, ...), converted to ``fmt``.

    With ``loop=True`` the file starts again at its end, forever (for streaming a file as a station).
    """

    def __init__(
        self, path: Path | str, fmt: AudioFormat | None = None, loop: bool = False
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AudioError(f"{path}: no such file")
        self.loop = loop
        self._container: Any = None
        self._open()
        stream = self._stream
        self.format = fmt or AudioFormat(stream.rate or 48000, min(stream.channels or 1, 2))
        layout = "mono" if self.format.channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="s16", layout=layout, rate=self.format.rate)
        self._buf = bytearray()
        self._done = False

    def _open(self) -> None:
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as exc:
            raise AudioError(f"{self.path}: cannot be decoded as audio ({exc})") from exc
        if not self._container.streams.audio:
            self._container.close()
            raise AudioError(f"{self.path}: has no audio stream")
        self._stream = self._container.streams.audio[0]
        self._frames = self._container.decode(self._stream)

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._done:
            try:
                frame = next(self._frames)
            except StopIteration:
                for out in self._resampler.resample(None):
                    self._buf += out.to_ndarray().astype("<i2").tobytes()
                if not self.loop:
                    self._done = True
                    break
                self._container.close()
                self._open()
                layout = "mono" if self.format.channels == 1 else "stereo"
                self._resampler = av.AudioResampler(
                    format="s16", layout=layout, rate=self.format.rate
                )
                continue
            except av.error.FFmpegError as exc:
                raise AudioError(f"{self.path}: decoding failed ({exc})") from exc
            frame.pts = None
            for out in self._resampler.resample(frame):
                self._buf += out.to_ndarray().astype("<i2").tobytes()

    def read(self, frames: int) -> bytes:
        want = frames * self.format.frame_bytes
        self._fill(want)
        out = bytes(self._buf[:want])
        del self._buf[:want]
        return out

    def close(self) -> None:
        self._container.close()


class StdinSource(Source):
    """Raw s16le PCM in ``fmt`` from standard input (or any binary stream)."""

    def __init__(self, fmt: AudioFormat, stream: BinaryIO | None = None) -> None:
        self.format = fmt
        self._stream = stream or sys.stdin.buffer

    def read(self, frames: int) -> bytes:
        want = frames * self.format.frame_bytes
        data = bytearray()
        while len(data) < want:
            got = self._stream.read(want - len(data))
            if not got:
                break
            data += got
        usable = len(data) - len(data) % self.format.frame_bytes
        return bytes(data[:usable])

    async def aiter(self, frames: int) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, self.read, frames):
            yield chunk


class DeviceSource(Source):
    """The sound card's input (microphone or line-in) through sounddevice; paced by the device."""

    live = True

    def __init__(self, fmt: AudioFormat, device: int | str | None = None) -> None:
        sd = load_sounddevice()
        self.format = fmt
        self._stream = sd.RawInputStream(
            samplerate=fmt.rate, channels=fmt.channels, dtype="int16", device=device
        )
        self._stream.start()

    def read(self, frames: int) -> bytes:
        data, _overflowed = self._stream.read(frames)
        return bytes(data)

    async def aiter(self, frames: int) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        while True:
            yield await loop.run_in_executor(None, self.read, frames)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


class ResampledSource(Source):
    """Another source converted to ``fmt`` (rate and channels) by a streaming resampler."""

    def __init__(self, inner: Source, fmt: AudioFormat) -> None:
        self.inner = inner
        self.format = fmt
        self.live = inner.live
        self._resampler = Resampler(inner.format, fmt)
        self._buf = bytearray()
        self._done = False

    def read(self, frames: int) -> bytes:
        want = frames * self.format.frame_bytes
        ratio = self.inner.format.rate / self.format.rate
        while len(self._buf) < want and not self._done:
            data = self.inner.read(max(256, math.ceil(frames * ratio)))
            if data:
                self._buf += self._resampler.process(data)
            else:
                self._buf += self._resampler.flush()
                self._done = True
        out = bytes(self._buf[:want])
        del self._buf[:want]
        return out

    def close(self) -> None:
        self.inner.close()


SOURCE_SPECS = "tone:HZ, silence, file:PATH (or a bare path), stdin, mic"


def open_source(spec: str, fmt: AudioFormat, loop: bool = False) -> Source:
    """A source for a command-line ``spec`` that delivers exactly ``fmt``.

    Specs: ``tone:440`` (``tone:440:0.3`` sets the amplitude), ``silence``, ``file:PATH`` or a bare
    path (WAV read directly, anything else through FFmpeg; ``loop`` repeats it), ``stdin`` (raw s16le in
    ``fmt``), ``mic`` or ``device`` (the sound card).
    """
    kind, _, arg = spec.partition(":")
    src: Source
    if kind == "tone":
        parts = arg.split(":")
        try:
            freq = float(parts[0])
            amp = float(parts[1]) if len(parts) > 1 else 0.5
        except ValueError:
            raise ConfigError(
                f"bad tone spec {spec!r}; example: tone:440 or tone:440:0.3"
            ) from None
        return ToneSource(freq, fmt, amplitude=amp)
    if spec == "silence":
        return SilenceSource(fmt)
    if spec == "stdin":
        return StdinSource(fmt)
    if spec in ("mic", "device"):
        return DeviceSource(fmt)
    path = Path(arg if kind == "file" else spec)
    if not path.exists():
        raise ConfigError(f"no such file {str(path)!r}; sources are: {SOURCE_SPECS}")
    if path.suffix.lower() == ".wav" and not loop:
        try:
            src = WavSource(path)
        except AudioError:
            src = FileSource(path, fmt)
    else:
        src = FileSource(path, fmt, loop=loop)
    return src if src.format == fmt else ResampledSource(src, fmt)
