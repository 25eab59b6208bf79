"""``audionet channel``: real WAV files in and out, decoded by the Manchester receiver."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audionet.audio.format import AudioFormat, from_array, to_float
from audionet.audio.wav import read_wav, write_wav
from audionet.cli.main import main
from audionet.modem.phy import ManchesterPhy
from tests.modem.phy.phy_helpers import LengthFraming, frames_signal, random_frames


@pytest.fixture
def tx(tmp_path: Path) -> tuple[Path, list[bytes]]:
    phy = ManchesterPhy()
    frames = random_frames(np.random.default_rng(8), 3, 50, 200)
    x, _ = frames_signal(phy, frames)
    path = tmp_path / "tx.wav"
    write_wav(path, AudioFormat(44100, 1, 1), from_array(x))  # 8-bit, as the original writes
    return path, frames


@pytest.mark.parametrize("profile", ["clean", "cable", "cable-hard"])
def test_frames_survive_the_command(
    profile: str, tx: tuple[Path, list[bytes]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, frames = tx
    out = tmp_path / "rx.wav"
    assert main(["channel", str(path), str(out), "--profile", profile, "--seed", "4"]) == 0
    assert f"profile {profile}" in capsys.readouterr().out
    fmt, pcm = read_wav(out)
    assert (fmt.rate, fmt.channels, fmt.sample_width) == (44100, 1, 2)
    got = ManchesterPhy().demodulator(LengthFraming()).feed(to_float(pcm).reshape(-1))
    assert [f.data for f in got] == frames


def test_same_seed_same_file_other_seed_other_file(
    tx: tuple[Path, list[bytes]], tmp_path: Path
) -> None:
    path, _ = tx
    outs = [tmp_path / f"{i}.wav" for i in range(3)]
    for out, seed in zip(outs, ("1", "1", "2"), strict=True):
        assert main(["channel", str(path), str(out), "-p", "cable", "--seed", seed]) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes() != outs[2].read_bytes()


def test_overrides_and_8_bit_output(tx: tuple[Path, list[bytes]], tmp_path: Path) -> None:
    path, _ = tx
    out = tmp_path / "rx8.wav"
    assert main(["channel", str(path), str(out), "-p", "clean", "--bits", "8", "--snr", "25"]) == 0
    fmt, _ = read_wav(out)
    assert fmt.sample_width == 1


def test_stereo_and_missing_files_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stereo = tmp_path / "st.wav"
    write_wav(stereo, AudioFormat(44100, 2), bytes(400))
    assert main(["channel", str(stereo), str(tmp_path / "o.wav")]) == 1
    assert "mono" in capsys.readouterr().err
    assert main(["channel", str(tmp_path / "none.wav"), str(tmp_path / "o.wav")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["channel", "--help"])
    assert exc.value.code == 0
    assert "audionet channel tx.wav rx.wav --profile cable" in capsys.readouterr().out
