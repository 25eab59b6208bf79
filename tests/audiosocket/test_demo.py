"""The demo's AudioSocket rows are real checks that pass."""

from __future__ import annotations

from pathlib import Path

from audionet.audiosocket.demo import run


def test_demo_rows_pass(tmp_path: Path) -> None:
    rows = run(tmp_path)
    assert len(rows) == 4
    assert all(r.system == "audiosocket" for r in rows)
    assert all(r.ok for r in rows), rows
