"""The streaming receiver: any chunking gives the same frames; junk never crashes it."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.modem.channel import PROFILES, simulate
from audionet.modem.phy import ManchesterPhy
from audionet.modem.phy.ofdm import OfdmPhy
from tests.modem.phy.ofdm.ofdm_helpers import payloads, receive, transmit


@pytest.fixture(scope="module")
def phone_line() -> tuple[OfdmPhy, list[bytes], np.ndarray]:
    phy = OfdmPhy("ofdm-phone", mode="qam64-3/4")
    data = payloads(np.random.default_rng(1), 3, 700)
    return phy, data, simulate(transmit(phy, data), phy.sample_rate, PROFILES["phone"], seed=2)


@pytest.mark.parametrize("chunk", [1, 7, 160, 1000, 4096, 8000])
def test_any_chunking_gives_identical_frames(
    phone_line: tuple[OfdmPhy, list[bytes], np.ndarray], chunk: int
) -> None:
    """From one sample at a time to one second (8000 samples at 8 kHz) per feed."""
    phy, data, y = phone_line
    got = receive(phy, y, chunk)
    reference = receive(phy, y, y.size)
    assert [f.data for f in got] == data
    assert [(f.data, f.position, f.quality) for f in got] == [
        (f.data, f.position, f.quality) for f in reference
    ]


def test_random_chunks_on_the_cable_profile() -> None:
    phy = OfdmPhy("ofdm", mode="qam256-5/6")
    data = payloads(np.random.default_rng(3), 2, 5000)
    y = simulate(transmit(phy, data), phy.sample_rate, PROFILES["cable"], seed=4)
    rng = np.random.default_rng(5)
    rx = phy.demodulator()
    got, i = [], 0
    while i < y.size:
        n = int(rng.integers(1, 48000))
        got += rx.feed(y[i : i + n])
        i += n
    got += rx.feed(np.zeros(48000, np.float32))
    whole = receive(phy, y, y.size)
    assert [(f.data, f.position, f.quality) for f in got] == [
        (f.data, f.position, f.quality) for f in whole
    ]
    assert [f.data for f in got] == data


def test_position_is_the_first_sample_of_the_frame() -> None:
    phy = OfdmPhy("ofdm", mode="qpsk-1/2")
    data = payloads(np.random.default_rng(6), 3, 300)
    tx = transmit(phy, data, lead=5000)
    mod = phy.modulator()
    starts = np.cumsum([5000] + [mod.modulate(d).size for d in data[:-1]])
    got = receive(phy, tx)
    assert [abs(f.position - s) <= 2 for f, s in zip(got, starts, strict=True)] == [True] * 3


@pytest.mark.parametrize(
    "junk",
    ["silence", "noise", "loud noise", "tone", "manchester", "nan", "huge", "clipped square"],
)
def test_junk_gives_no_frame_and_no_crash(junk: str) -> None:
    phy = OfdmPhy("ofdm")
    rate = phy.sample_rate
    rng = np.random.default_rng(7)
    n = 3 * rate
    t = np.arange(n) / rate
    x = {
        "silence": lambda: np.zeros(n),
        "noise": lambda: rng.normal(0, 0.1, n),
        "loud noise": lambda: rng.uniform(-1, 1, n),
        "tone": lambda: 0.5 * np.sin(2 * np.pi * 1000.0 * t),  # periodic: trips the metric
        "manchester": lambda: np.resize(
            ManchesterPhy(rate).modulator().modulate(rng.bytes(200)), n
        ),
        "nan": lambda: np.where(rng.random(n) < 0.01, np.nan, rng.normal(0, 0.1, n)),
        "huge": lambda: rng.normal(0, 1e6, n),
        "clipped square": lambda: np.sign(np.sin(2 * np.pi * 375.0 * t)),
    }[junk]()
    assert receive(phy, x.astype(np.float32)) == []


def test_truncated_frames_are_dropped_and_the_next_one_found() -> None:
    phy = OfdmPhy("ofdm", mode="qam64-3/4")
    data = payloads(np.random.default_rng(8), 3, 8000)
    mod = phy.modulator()
    parts = [mod.modulate(d) for d in data]
    cut = [parts[0][: parts[0].size // 2], parts[1][: phy.profile.symbol_length * 2], parts[2]]
    y = simulate(np.concatenate(cut), phy.sample_rate, PROFILES["cable"], seed=9)
    got = receive(phy, y)
    assert data[2] in [f.data for f in got]
    # the half frame may come out (its header said how long it was), but it cannot pass for whole
    assert data[0] not in [f.data for f in got]
    # audio that just stops in the middle of a frame: no crash, and no whole frame from half one
    assert data[0] not in [f.data for f in receive(phy, y[: parts[0].size // 3])]
    rx = phy.demodulator()
    rx.feed(y[: parts[0].size // 3])
    assert rx.busy  # still waiting for the rest of the frame
