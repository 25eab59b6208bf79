"""The PHY and the channel simulator are pure computation: no clocks, sockets, event loops or sound."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import audionet.modem.channel
import audionet.modem.phy

FORBIDDEN = {"asyncio", "socket", "time", "sounddevice", "threading", "selectors"}
PHY = Path(audionet.modem.phy.__file__).parent
PACKAGES = [PHY, PHY / "ofdm", Path(audionet.modem.channel.__file__).parent]


@pytest.mark.parametrize("path", [p for d in PACKAGES for p in sorted(d.glob("*.py"))], ids=str)
def test_no_io_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert len(path.read_text().splitlines()) < 400  # modules of a few hundred lines at most
