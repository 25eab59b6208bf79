"""The bit interleaver: a bijection, its inverse, and how far it spreads neighbouring bits."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.errors import ConfigError
from audionet.modem.phy.ofdm.interleave import CACHED_PERMUTATIONS, Interleaver, _permutation

SIZES = [
    (1, 1),
    (7, 100),  # a frame shorter than one symbol
    (100, 7),
    (648, 648),
    (648, 2000),  # a short codeword in a long symbol
    (1944, 1944),
    (1944 * 3, 1),
    (1944 * 4, 2400),  # a short last row
    (1944 * 8, 9000),
    (1944 * 3, 600),
    (1944 * 20, 2880),
]


@pytest.mark.parametrize(("n_bits", "row_bits"), SIZES)
def test_permutation_is_a_bijection_and_inverse_undoes_forward(n_bits: int, row_bits: int) -> None:
    il = Interleaver(n_bits, row_bits)
    assert il.rows == -(-n_bits // row_bits)
    assert np.array_equal(np.sort(il.permutation), np.arange(n_bits))
    rng = np.random.default_rng(n_bits)
    bits = rng.integers(0, 2, (2, n_bits), dtype=np.uint8)
    out = il.forward(bits)
    assert out.dtype == np.uint8 and out.shape == bits.shape
    assert np.array_equal(il.inverse(out), bits)
    llr = rng.normal(size=n_bits).astype(np.float32)
    assert np.array_equal(il.forward(il.inverse(llr)), llr)
    assert il.inverse(llr).dtype == np.float32
    if min(n_bits, row_bits) > 2:  # a row of one or two bits has nothing to permute
        assert not np.array_equal(il.permutation, np.arange(n_bits))


def test_same_sizes_give_the_same_permutation() -> None:
    assert np.array_equal(Interleaver(5000, 1200).permutation, Interleaver(5000, 1200).permutation)
    with pytest.raises(ValueError):
        Interleaver(10, 3).permutation[0] = 1  # read-only


@pytest.mark.parametrize(("n_bits", "row_bits"), [(1944, 1944), (648, 2000), (5000, 5000)])
def test_one_row_spreads_neighbours_across_the_band(n_bits: int, row_bits: int) -> None:
    il = Interleaver(n_bits, row_bits)
    length = min(n_bits, row_bits)
    # Consecutive coded bits land on carriers at least a twelfth of the band apart.
    assert np.abs(np.diff(il.permutation)).min() >= length // 13
    # The bits of one QAM symbol (up to 10 neighbouring positions) come from codeword positions
    # at least ~L/13 apart.
    coded = np.argsort(il.permutation)
    for k in range(1, 10):
        assert np.abs(coded[k:] - coded[:-k]).min() >= length // 13


@pytest.mark.parametrize(
    ("n_bits", "row_bits"), [(1944 * 4, 2400), (1944 * 3, 600), (1944 * 20, 2880)]
)
def test_many_rows_spread_codewords_over_symbols_and_carriers(n_bits: int, row_bits: int) -> None:
    il = Interleaver(n_bits, row_bits)
    row = il.permutation // row_bits
    pos = il.permutation % row_bits
    # Consecutive coded bits go to consecutive symbols (round robin) ...
    steps = np.diff(row)
    assert set(np.unique(steps).tolist()) <= {1, -(il.rows - 1), -(il.rows - 2)}
    # ... on carriers far apart where both rows are full (the row rotation) ...
    full = (row[:-1] < il.rows - 1) & (row[1:] < il.rows - 1) & (steps == 1)
    assert np.abs(np.diff(pos))[full].min() >= row_bits // 5
    # ... and hardly ever on the same or a neighbouring carrier anywhere.
    assert (np.abs(np.diff(pos)) < 10).mean() < 0.01
    # Every codeword of 1944 bits touches every full symbol.
    for cw in range(n_bits // 1944):
        rows_hit = np.unique(row[cw * 1944 : (cw + 1) * 1944])
        assert set(range(il.rows - 1)) <= set(rows_hit.tolist())
    # The bits of one QAM symbol (neighbouring positions of a row) come from far-apart coded bits.
    coded = np.argsort(il.permutation)
    same_row = coded.reshape(-1)[: (il.rows - 1) * row_bits].reshape(il.rows - 1, row_bits)
    for k in range(1, 10):
        assert np.abs(same_row[:, k:] - same_row[:, :-k]).min() >= 20


@pytest.mark.parametrize("bits_per_carrier", [2, 4, 6, 8, 10])
def test_each_codeword_uses_every_bit_position_of_the_qam_symbols_evenly(
    bits_per_carrier: int,
) -> None:
    # With b bits per carrier, position p of a row is bit p mod b of its QAM symbol; in Gray QAM the
    # bits differ in reliability, so each codeword should get each kind about equally often.
    row_bits = 240 * bits_per_carrier
    il = Interleaver(1944 * 6, row_bits)
    kind = (il.permutation % row_bits) % bits_per_carrier
    for cw in range(6):
        counts = np.bincount(kind[cw * 1944 : (cw + 1) * 1944], minlength=bits_per_carrier)
        assert np.abs(counts / (1944 / bits_per_carrier) - 1).max() < 0.05


@pytest.mark.parametrize(("n_bits", "row_bits"), [(0, 10), (10, 0), (-1, 5), (2.5, 3), (True, 4)])
def test_bad_sizes_are_config_errors(n_bits: object, row_bits: object) -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        Interleaver(n_bits, row_bits)  # type: ignore[arg-type]


def test_wrong_length_is_a_config_error() -> None:
    il = Interleaver(100, 30)
    with pytest.raises(ConfigError, match="100 bits"):
        il.forward(np.zeros(99))
    with pytest.raises(ConfigError, match="100 bits"):
        il.inverse(np.zeros((2, 101)))


def test_permutation_cache_is_bounded() -> None:
    # A link sees frames of many sizes: the cache must not keep every permutation ever built.
    for n_bits in range(1000, 1000 + 2 * CACHED_PERMUTATIONS):
        Interleaver(n_bits, 480)
    assert _permutation.cache_info().currsize <= CACHED_PERMUTATIONS
