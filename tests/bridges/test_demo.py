"""The demo's bridge rows are real checks that pass."""

from __future__ import annotations

from pathlib import Path

from audionet.bridges.demo import run


def test_demo_rows_pass(tmp_path: Path) -> None:
    rows = run(tmp_path)
    assert [r.what.split(":")[0] for r in rows] == [
        "call -> DNS",
        "DNS -> call",
        "file over a call",
    ]
    assert all(r.system == "bridges" for r in rows)
    assert all(r.ok for r in rows), rows
