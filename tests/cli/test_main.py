from __future__ import annotations

import subprocess
import sys

import pytest

from audionet import __version__
from audionet.cli.main import main


def test_help_lists_the_four_groups(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for group in ("audio", "dns", "modem", "audiosocket", "demo"):
        assert f"    {group}" in out
    assert "examples:" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"audionet {__version__}"


def test_a_group_without_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audio"]) == 2
    assert "tone" in capsys.readouterr().out


def test_every_command_has_help_with_an_example() -> None:
    from audionet.cli.main import build_parser

    parser = build_parser()
    seen = 0

    def walk(p: object) -> None:
        nonlocal seen
        import argparse

        assert isinstance(p, argparse.ArgumentParser)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    assert child.epilog and "audionet" in child.epilog, f"{name}: no example"
                    seen += 1
                    walk(child)

    walk(parser)
    assert seen >= 8


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "audionet", "--help"], capture_output=True, text=True, check=True
    )
    assert "audiosocket" in proc.stdout
