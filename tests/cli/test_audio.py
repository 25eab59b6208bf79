from __future__ import annotations

from pathlib import Path

import pytest

from audionet.audio.analysis import dominant_frequency
from audionet.audio.wav import read_wav
from audionet.cli.main import main


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    path = tmp_path / "t.wav"
    assert main(["audio", "tone", "440", "--seconds", "3", "-o", str(path)]) == 0
    return path


@pytest.mark.parametrize("codec", ["opus", "codec2", "ulaw", "alaw", "pcm"])
def test_convert_keeps_440_hz(
    tone: Path, tmp_path: Path, codec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{codec}.wav"
    assert main(["audio", "convert", str(tone), str(out), "--codec", codec]) == 0
    fmt, pcm = read_wav(out)
    assert dominant_frequency(pcm[len(pcm) // 4 :], fmt) == pytest.approx(440, abs=12)
    assert "kbit/s" in capsys.readouterr().out


def test_convert_with_rate_and_bitrate(
    tone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.wav"
    args = [
        "audio",
        "convert",
        str(tone),
        str(out),
        "--codec",
        "opus",
        "--rate",
        "16000",
        "--bitrate",
        "12000",
    ]
    assert main(args) == 0
    fmt, _ = read_wav(out)
    assert fmt.rate == 16000
    assert "opus 16000 Hz" in capsys.readouterr().out


def test_info(tone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audio", "info", str(tone)]) == 0
    out = capsys.readouterr().out
    assert "8000 Hz mono 16-bit" in out and "3.000 s" in out and "440.0 Hz" in out


def test_errors_are_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audio", "info", str(tmp_path / "missing.wav")]) == 1
    assert "audionet: error:" in capsys.readouterr().err
    assert main(["audio", "convert", str(tmp_path / "x.wav"), "o.wav", "--codec", "opus"]) == 1
