"""Whole transfers through the Manchester PHY and the channel simulator, in virtual time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from audionet.modem.loopback import run_loopback
from audionet.modem.proto.arq import ArqConfig


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def test_100_kb_over_cable_hard_intact(tmp_path: Path) -> None:
    src = random_file(tmp_path / "in.bin", 100_000)
    result = run_loopback(src, tmp_path / "out" / "copy.bin", channel="cable-hard", seed=3)
    assert result.ok, result.error
    assert (tmp_path / "out" / "copy.bin").read_bytes() == src.read_bytes()
    assert result.goodput > 3000
    # 100 kB at 5.5 kbit/s raw is at least 145 s of air time: virtual time, not wall time
    assert result.seconds > 100_000 * 8 / 5512.5


@pytest.mark.parametrize("channel", ["clean", "cable"])
def test_20_kb_goodput_beats_the_seed(tmp_path: Path, channel: str) -> None:
    src = random_file(tmp_path / "in.bin", 20_000)
    result = run_loopback(src, tmp_path / "copy.bin", channel=channel)
    assert result.ok and result.goodput >= 4500, result


def test_stop_and_wait_mode_is_the_slow_seed_design(tmp_path: Path) -> None:
    src = random_file(tmp_path / "in.bin", 6000)
    ours = run_loopback(src, tmp_path / "a.bin", channel="cable")
    seed = run_loopback(src, tmp_path / "b.bin", channel="cable", config=ArqConfig.stop_and_wait())
    assert ours.ok and seed.ok
    assert 2000 < seed.goodput < ours.goodput * 0.85


def test_progress_reports_air_time(tmp_path: Path) -> None:
    src = random_file(tmp_path / "in.bin", 20_000)
    seen: list[tuple[int, int, float]] = []
    result = run_loopback(
        src, tmp_path / "copy.bin", channel=None, progress=lambda *p: seen.append(p)
    )
    assert result.ok
    assert seen[-1][0] == seen[-1][1] == 20_000
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)
    assert 0 < seen[0][2] < seen[-1][2] <= result.seconds


def test_unusable_line_fails_cleanly(tmp_path: Path) -> None:
    # 8 samples per bit cannot pass a 3.4 kHz telephone band: the transfer must fail, not hang
    src = random_file(tmp_path / "in.bin", 2000)
    config = ArqConfig(idle_timeout=10)
    result = run_loopback(src, tmp_path / "copy.bin", channel="phone", config=config)
    assert not result.ok and result.goodput == 0
    assert result.error is not None and "silent" in result.error
    assert not (tmp_path / "copy.bin").exists()


def test_half_duplex_shared_line_with_carrier_sense(tmp_path: Path) -> None:
    src = random_file(tmp_path / "in.bin", 10_000)
    result = run_loopback(src, tmp_path / "copy.bin", channel="cable-hard", half_duplex=True)
    assert result.ok, result.error
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()
    # acknowledgements now share the line, but carrier sense keeps collisions rare
    assert result.goodput > 3000


def test_latency_hurts_stop_and_wait_far_more(tmp_path: Path) -> None:
    src = random_file(tmp_path / "in.bin", 6000)
    ours = run_loopback(src, tmp_path / "a.bin", latency=0.25)
    seed = run_loopback(src, tmp_path / "b.bin", latency=0.25, config=ArqConfig.stop_and_wait())
    assert ours.ok and seed.ok
    assert ours.goodput > 2 * seed.goodput
