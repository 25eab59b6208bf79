from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from audionet.audio.format import AudioFormat
from audionet.audio.sinks import NullSink, StdoutSink, WavSink, open_sink
from audionet.audio.sources import ToneSource
from audionet.audio.wav import read_wav
from audionet.errors import ConfigError, DependencyError

FMT = AudioFormat(16000)


def test_wav_sink_writes_what_it_gets(tmp_path: Path) -> None:
    pcm = ToneSource(440, FMT).read(16000)
    with open_sink(str(tmp_path / "o.wav"), FMT) as sink:
        assert isinstance(sink, WavSink)
        for i in range(0, len(pcm), 640):
            sink.write(pcm[i : i + 640])
    assert read_wav(tmp_path / "o.wav") == (FMT, pcm)


def test_stdout_and_null_sinks() -> None:
    buf = io.BytesIO()
    out = StdoutSink(FMT, buf)
    out.write(b"\x01\x02")
    out.close()
    assert buf.getvalue() == b"\x01\x02" and out.written == 2
    null = open_sink("null", FMT)
    assert isinstance(null, NullSink)
    null.write(bytes(640))
    assert null.written == 640


def test_unknown_sink() -> None:
    with pytest.raises(ConfigError, match="outputs are"):
        open_sink("song.mp3", FMT)


def test_speaker_without_sounddevice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(DependencyError, match="pip install"):
        open_sink("speaker", FMT)
