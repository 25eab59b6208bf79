"""The modem's demo rows are real checks and pass on the built-in defaults."""

from __future__ import annotations

from pathlib import Path

from audionet.modem.demo import run


def test_demo_rows_pass(tmp_path: Path) -> None:
    rows = run(tmp_path)
    assert len(rows) == 7 and all(r.system == "modem" for r in rows)
    assert all(r.ok for r in rows), rows
    assert any("file" in r.what for r in rows)  # the demo includes a file transfer
    assert sum("--phy ofdm" in r.what for r in rows) == 3  # OFDM transfers: cable, hard, phone
