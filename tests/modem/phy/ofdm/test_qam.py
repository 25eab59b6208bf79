"""Gray constellations and the soft demapper against brute-force likelihoods."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.errors import ConfigError
from audionet.modem.phy.ofdm.qam import CONSTELLATIONS, Constellation, get_constellation

NAMES = ["bpsk", "qpsk", "qam16", "qam64", "qam256", "qam1024"]


def labels(c: Constellation) -> np.ndarray:
    """Bits (MSB first) of every point index, shape (M, bits)."""
    b = c.bits_per_symbol
    return (np.arange(1 << b)[:, None] >> np.arange(b - 1, -1, -1)[None, :]) & 1


def brute_force_llr(c: Constellation, y: np.ndarray, n0: np.ndarray, exact: bool) -> np.ndarray:
    """LLRs from the whole 2-D constellation (every point's likelihood), shape (N, bits)."""
    if c.bits_per_symbol == 1:  # BPSK lives on the real axis: only that noise component matters
        d = (y.real[:, None] - c.points.real[None, :]) ** 2
    else:
        d = np.abs(y[:, None] - c.points[None, :]) ** 2
    metric = -d / n0[:, None]  # log p(y | point) + const for complex noise of variance n0
    lab = labels(c)
    out = np.empty((len(y), c.bits_per_symbol))
    for j in range(c.bits_per_symbol):
        zero = lab[:, j] == 0
        if exact:
            out[:, j] = np.logaddexp.reduce(metric[:, zero], axis=1) - np.logaddexp.reduce(
                metric[:, ~zero], axis=1
            )
        else:
            out[:, j] = metric[:, zero].max(axis=1) - metric[:, ~zero].max(axis=1)
    return out


def test_names_and_sizes() -> None:
    assert list(CONSTELLATIONS) == NAMES
    for name, bits in zip(NAMES, [1, 2, 4, 6, 8, 10], strict=True):
        c = get_constellation(name)
        assert (c.name, c.bits_per_symbol, c.points.shape) == (name, bits, (1 << bits,))
        assert c.points.dtype == np.complex128
        assert np.mean(np.abs(c.points) ** 2) == pytest.approx(1.0)
        assert len(np.unique(np.round(c.points, 9))) == 1 << bits
        assert not c.points.flags.writeable


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="qam1024") as err:
        get_constellation("qam32")
    assert "bpsk" in str(err.value)


def test_bpsk_and_16qam_follow_802_11() -> None:
    # IEEE 802.11 Table 17-13/17-15: BPSK 0 -> -1; 16-QAM I bits b0b1 00 -> -3, 01 -> -1, 11 -> +1, 10 -> +3.
    assert get_constellation("bpsk").points.tolist() == [-1, 1]
    q16 = get_constellation("qam16").points * np.sqrt(10)
    assert np.allclose(q16[[0b0000, 0b0100, 0b1100, 0b1000]].real, [-3, -1, 1, 3])
    assert np.allclose(q16[[0b0000, 0b0001, 0b0011, 0b0010]].imag, [-3, -1, 1, 3])


@pytest.mark.parametrize("name", NAMES)
def test_gray_neighbours_differ_in_one_bit(name: str) -> None:
    c = get_constellation(name)
    dist = np.abs(c.points[:, None] - c.points[None, :])
    nearest = dist[dist > 1e-12].min()
    i, j = np.nonzero(np.isclose(dist, nearest))
    assert len(i) >= len(c.points)  # every point has at least one nearest neighbour
    assert all(bin(int(x)).count("1") == 1 for x in i ^ j)


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_modulate_and_demap(name: str) -> None:
    c = get_constellation(name)
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 500 * c.bits_per_symbol, dtype=np.uint8)
    symbols = c.modulate(bits)
    assert symbols.shape == (500,)
    llr = c.demap(symbols, 0.01)
    assert llr.dtype == np.float32 and llr.shape == bits.shape
    assert np.array_equal((llr < 0).astype(np.uint8), bits)
    # Small noise (well inside the decision regions) keeps every decision.
    noisy = symbols + 0.2 * np.min(np.abs(np.diff(np.unique(c.points.real)))) * (
        rng.uniform(-1, 1, 500) + 1j * rng.uniform(-1, 1, 500) * (c.bits_per_symbol > 1)
    )
    assert np.array_equal((c.demap(noisy, 0.01) < 0).astype(np.uint8), bits)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("exact", [False, True])
def test_llrs_match_the_brute_force_likelihood(name: str, exact: bool) -> None:
    c = get_constellation(name)
    rng = np.random.default_rng(2)
    symbols = c.modulate(rng.integers(0, 2, 400 * c.bits_per_symbol, dtype=np.uint8))
    n0 = rng.uniform(0.002, 0.5, 400)  # one noise variance per symbol, low to high SNR
    y = symbols + np.sqrt(n0 / 2) * (rng.normal(size=400) + 1j * rng.normal(size=400))
    y[:10] *= 3.0  # points far outside the constellation too
    llr = c.demap(y, n0, exact=exact).reshape(400, -1)
    ref = brute_force_llr(c, y, n0, exact)
    assert np.allclose(llr, ref, rtol=1e-5, atol=1e-4 * np.abs(ref).max())


def test_max_log_is_close_to_exact_with_the_right_signs() -> None:
    c = get_constellation("qam16")
    rng = np.random.default_rng(3)
    symbols = c.modulate(rng.integers(0, 2, 4000, dtype=np.uint8))
    n0 = 0.1
    y = symbols + np.sqrt(n0 / 2) * (rng.normal(size=1000) + 1j * rng.normal(size=1000))
    approx = c.demap(y, n0)
    exact = c.demap(y, n0, exact=True)
    confident = np.abs(exact) > 0.5
    assert (np.sign(approx[confident]) == np.sign(exact[confident])).all()
    # Max-log differs from the exact value by at most log(number of points per bit value).
    assert np.abs(approx - exact).max() <= np.log(8) + 1e-4
    # LLRs scale as 1 / noise variance.
    assert np.allclose(c.demap(y, n0 / 2), 2 * approx, rtol=1e-5)


def test_bpsk_llr_is_the_textbook_formula() -> None:
    c = get_constellation("bpsk")
    y = np.array([0.3 + 5j, -1.2, 2.0 - 1j])
    # bit 0 at -1: LLR = log p(y|-1)/p(y|+1) = -4 Re(y) / n0 (real noise variance n0 / 2).
    assert np.allclose(c.demap(y, 0.5), -4 * y.real / 0.5)


def test_leading_axes_and_bad_input() -> None:
    c = get_constellation("qam64")
    bits = np.random.default_rng(4).integers(0, 2, 6 * 12, dtype=np.uint8)
    symbols = c.modulate(bits).reshape(3, 4)
    llr = c.demap(symbols, np.full((3, 4), 0.01))
    assert llr.shape == (3, 24)
    assert np.array_equal((llr.reshape(-1) < 0).astype(np.uint8), bits)
    assert c.demap(symbols, 0.0).shape == (3, 24)  # a perfect channel still gives finite LLRs
    assert np.isfinite(c.demap(symbols, 0.0)).all()
    with pytest.raises(ConfigError, match="multiple of 6"):
        c.modulate(np.zeros(7, dtype=np.uint8))
    with pytest.raises(ConfigError, match="0 or 1"):
        c.modulate(np.full(6, 3))
    with pytest.raises(ConfigError, match="noise_var"):
        c.demap(symbols, -1.0)
    with pytest.raises(ConfigError, match="noise_var"):
        c.demap(symbols, np.ones(5))
    with pytest.raises(ConfigError, match="array"):
        c.demap(np.complex128(1.0), 0.1)
