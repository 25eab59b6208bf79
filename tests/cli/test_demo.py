from __future__ import annotations

import pytest

from audionet.cli.main import main


def test_audio_demo_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--only", "audio"]) == 0
    out = capsys.readouterr().out
    assert "440 Hz through opus" in out
    assert "4 of 4 checks passed" in out
