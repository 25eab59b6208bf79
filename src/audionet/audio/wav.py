"""WAV files: whole-file read and write, 8-bit and 16-bit PCM (Python's ``wave`` module).

Inside audionet PCM is s16le; 8-bit WAV files (unsigned, as RIFF stores them) are converted on the
way in and out, and the returned :class:`AudioFormat` keeps the file's own sample width so a caller
can write back what it read.
"""

from __future__ import annotations

import wave
from pathlib import Path

from audionet.audio.format import AudioFormat, s16_to_u8, u8_to_s16
from audionet.errors import AudioError, UnsupportedFormatError


def wav_format(w: wave.Wave_read, path: Path | str) -> AudioFormat:
    if w.getcomptype() != "NONE":
        raise UnsupportedFormatError(f"{path}: compressed WAV ({w.getcompname()}) is not supported")
    width = w.getsampwidth()
    if width not in (1, 2):
        raise UnsupportedFormatError(
            f"{path}: {8 * width}-bit WAV; use 8- or 16-bit PCM (or read it with FileSource)"
        )
    return AudioFormat(w.getframerate(), w.getnchannels(), width)


def open_wav(path: Path | str) -> wave.Wave_read:
    """Open a WAV file for reading, with our errors for missing, truncated or non-WAV files."""
    try:
        return wave.open(str(path), "rb")
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path}: not a readable WAV file ({exc or 'truncated header'})") from exc


def read_wav(path: Path | str) -> tuple[AudioFormat, bytes]:
    """The file's format and its audio as s16le PCM; a truncated data chunk is an error."""
    with open_wav(path) as w:
        fmt = wav_format(w, path)
        expected = w.getnframes()
        data = w.readframes(expected)
    got = len(data) // fmt.frame_bytes
    if got < expected:
        raise AudioError(
            f"{path}: truncated WAV: header announces {expected} frames, file holds {got}"
        )
    return fmt, u8_to_s16(data) if fmt.sample_width == 1 else data


def write_wav(path: Path | str, fmt: AudioFormat, pcm: bytes) -> None:
    """Write s16le ``pcm`` as a WAV of ``fmt`` (8-bit when ``fmt.sample_width == 1``)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(fmt.channels)
        w.setsampwidth(fmt.sample_width)
        w.setframerate(fmt.rate)
        w.writeframes(s16_to_u8(pcm) if fmt.sample_width == 1 else pcm)
