from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency, tone_snr
from audionet.audio.format import AudioFormat, from_array
from audionet.audio.sources import (
    FileSource,
    ResampledSource,
    SilenceSource,
    StdinSource,
    ToneSource,
    WavSource,
    open_source,
)
from audionet.audio.wav import write_wav
from audionet.errors import AudioError, ConfigError, DependencyError

FMT8 = AudioFormat(8000)


def write_flac(path: Path, freq: float, rate: int, seconds: float) -> None:
    """An independent encoder (FFmpeg's FLAC) makes the test file."""
    x = (0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate) * 32767).astype(
        "<i2"
    )
    with av.open(str(path), "w") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_tone_is_phase_continuous_across_reads() -> None:
    whole = ToneSource(440, FMT8).read(8000)
    pieces = ToneSource(440, FMT8)
    chunked = b"".join(pieces.read(n) for n in (1, 159, 3000, 4840))
    assert chunked == whole
    assert tone_snr(whole, FMT8, 440) > 60


def test_tone_with_duration_ends() -> None:
    src = ToneSource(1000, FMT8, seconds=0.5)
    assert len(b"".join(src.chunks(160))) == 8000
    assert src.read(10) == b""


def test_tone_stereo_and_bad_settings() -> None:
    pcm = ToneSource(440, AudioFormat(48000, 2)).read(100)
    a = np.frombuffer(pcm, "<i2").reshape(-1, 2)
    assert np.array_equal(a[:, 0], a[:, 1])
    with pytest.raises(ConfigError, match="cannot be represented"):
        ToneSource(5000, FMT8)
    with pytest.raises(ConfigError, match="amplitude"):
        ToneSource(440, FMT8, amplitude=2)


async def test_live_sources_pace_themselves() -> None:
    start = time.monotonic()
    chunks = [c async for c in SilenceSource(FMT8, seconds=0.2).aiter(160)]
    elapsed = time.monotonic() - start
    assert len(chunks) == 10 and all(len(c) == 320 for c in chunks)
    assert 0.17 < elapsed < 0.6


async def test_files_are_read_as_fast_as_asked(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", FMT8, ToneSource(440, FMT8).read(8000 * 5))
    start = time.monotonic()
    chunks = [c async for c in WavSource(tmp_path / "a.wav").aiter(160)]
    assert len(chunks) == 250
    assert time.monotonic() - start < 1.0  # five seconds of audio, not paced


def test_wav_source_converts_8bit(tmp_path: Path) -> None:
    pcm = from_array(np.repeat(np.array([-0.5, 0.5]), 100))
    write_wav(tmp_path / "u8.wav", AudioFormat(44100, 1, 1), pcm)
    with WavSource(tmp_path / "u8.wav") as src:
        assert src.format == AudioFormat(44100)
        got = np.frombuffer(src.read(1000), "<i2")
    assert got[0] == -16384 and got[-1] == 16384


def test_file_source_decodes_and_resamples(tmp_path: Path) -> None:
    write_flac(tmp_path / "t.flac", 440, 44100, 1.0)
    with FileSource(tmp_path / "t.flac", AudioFormat(16000)) as src:
        pcm = b"".join(src.chunks(1000))
    assert len(pcm) // 2 == pytest.approx(16000, abs=50)
    assert dominant_frequency(pcm, AudioFormat(16000)) == pytest.approx(440, abs=1)


def test_file_source_loops(tmp_path: Path) -> None:
    write_flac(tmp_path / "t.flac", 440, 8000, 0.5)
    src = FileSource(tmp_path / "t.flac", FMT8, loop=True)
    pcm = src.read(8000 * 2)  # four times the file
    assert len(pcm) == 32000
    assert dominant_frequency(pcm, FMT8) == pytest.approx(440, abs=1)


def test_file_source_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        FileSource(tmp_path / "missing.mp3")
    (tmp_path / "junk.mp3").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(AudioError):
        FileSource(tmp_path / "junk.mp3")


def test_stdin_source_drops_a_partial_frame() -> None:
    src = StdinSource(FMT8, io.BytesIO(bytes(101)))
    assert len(src.read(100)) == 100
    assert src.read(100) == b""


def test_resampled_source_delivers_the_asked_format(tmp_path: Path) -> None:
    write_wav(
        tmp_path / "a.wav", AudioFormat(44100), ToneSource(440, AudioFormat(44100)).read(44100)
    )
    src = open_source(str(tmp_path / "a.wav"), AudioFormat(8000))
    assert isinstance(src, ResampledSource) and src.format == AudioFormat(8000)
    pcm = b"".join(src.chunks(160))
    assert len(pcm) // 2 == pytest.approx(8000, abs=20)
    assert tone_snr(pcm[4000:-4000], FMT8, 440) > 40


def test_open_source_specs(tmp_path: Path) -> None:
    assert isinstance(open_source("tone:440", FMT8), ToneSource)
    assert open_source("tone:440:0.1", FMT8).read(1) is not None
    assert isinstance(open_source("silence", FMT8), SilenceSource)
    assert isinstance(open_source("stdin", FMT8), StdinSource)
    write_flac(tmp_path / "t.flac", 440, 8000, 0.2)
    assert open_source(f"file:{tmp_path / 't.flac'}", FMT8).format == FMT8
    with pytest.raises(ConfigError, match="example: tone:440"):
        open_source("tone:loud", FMT8)
    with pytest.raises(ConfigError, match="sources are"):
        open_source("file:/no/such/file.wav", FMT8)


def test_device_without_sounddevice_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if the extra were not installed
    with pytest.raises(DependencyError, match=r"audionet\[device\]"):
        open_source("mic", FMT8)


def test_device_without_portaudio_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # sounddevice raises OSError at import when the PortAudio library is missing.
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(DependencyError, match="libportaudio2"):
        open_source("mic", FMT8)
