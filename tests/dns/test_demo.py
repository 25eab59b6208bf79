"""The demo's DNS rows pass on this machine (it serves and plays for real on loopback)."""

from pathlib import Path

from audionet.dns.demo import CASES, run


def test_demo_rows(tmp_path: Path) -> None:
    rows = run(tmp_path)
    assert len(rows) == len(CASES)
    assert all(r.system == "dns" for r in rows)
    assert all(r.ok for r in rows), rows
    assert all((tmp_path / f).exists() for f in ("dns-v2.wav", "dns-v1.wav", "dns-v2-enc.wav"))
