"""Where audio goes: WAV files, standard output, the sound card, or nowhere.

Every :class:`Sink` takes s16le PCM in its :attr:`Sink.format` through ``write(pcm)``; ``close()``
finishes it (a WAV file's header is completed then). :func:`open_sink` turns the command-line specs
(``out.wav``, ``-``, ``speaker``, ``null``) into a sink.
"""

from __future__ import annotations

import sys
import wave
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from audionet.audio.device import load_sounddevice
from audionet.audio.format import AudioFormat, s16_to_u8
from audionet.errors import ConfigError


class Sink(ABC):
    """A consumer of s16le PCM in :attr:`format`."""

    format: AudioFormat
    #: Bytes of PCM written so far.
    written: int = 0

    @abstractmethod
    def write(self, pcm: bytes) -> None:
        """Consume PCM (a whole number of frames)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Finish the output."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class WavSink(Sink):
    """A WAV file, written as audio arrives (8-bit when ``fmt.sample_width == 1``)."""

    def __init__(self, path: Path | str, fmt: AudioFormat) -> None:
        self.path = Path(path)
        self.format = fmt
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed by close()
        self._wav.setnchannels(fmt.channels)
        self._wav.setsampwidth(fmt.sample_width)
        self._wav.setframerate(fmt.rate)
        self.written = 0

    def write(self, pcm: bytes) -> None:
        self._wav.writeframes(s16_to_u8(pcm) if self.format.sample_width == 1 else pcm)
        self.written += len(pcm)

    def close(self) -> None:
        self._wav.close()


class StdoutSink(Sink):
    """Raw s16le PCM to standard output (or any binary stream), e.g. to pipe into ``aplay``."""

    def __init__(self, fmt: AudioFormat, stream: BinaryIO | None = None) -> None:
        self.format = fmt
        self._stream = stream or sys.stdout.buffer
        self.written = 0

    def write(self, pcm: bytes) -> None:
        self._stream.write(pcm)
        self.written += len(pcm)

    def close(self) -> None:
        self._stream.flush()


class NullSink(Sink):
    """Discards audio, counting it."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        self.written = 0

    def write(self, pcm: bytes) -> None:
        self.written += len(pcm)


class DeviceSink(Sink):
    """The sound card's output through sounddevice."""

    def __init__(self, fmt: AudioFormat, device: int | str | None = None) -> None:
        sd = load_sounddevice()
        self.format = fmt
        self._stream = sd.RawOutputStream(
            samplerate=fmt.rate, channels=fmt.channels, dtype="int16", device=device
        )
        self._stream.start()
        self.written = 0

    def write(self, pcm: bytes) -> None:
        self._stream.write(pcm)
        self.written += len(pcm)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


SINK_SPECS = "PATH.wav, - (raw PCM on stdout), speaker, null"


def open_sink(spec: str, fmt: AudioFormat) -> Sink:
    """A sink for a command-line ``spec``: a ``.wav`` path, ``-``, ``speaker`` (or ``device``), ``null``."""
    if spec == "-":
        return StdoutSink(fmt)
    if spec in ("speaker", "device"):
        return DeviceSink(fmt)
    if spec == "null":
        return NullSink(fmt)
    if spec.lower().endswith(".wav"):
        return WavSink(spec, fmt)
    raise ConfigError(f"unknown output {spec!r}; outputs are: {SINK_SPECS}")
