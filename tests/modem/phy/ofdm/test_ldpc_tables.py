"""The 802.11n LDPC tables: shapes, shift ranges, parity structure, and H c = 0 for encoded words."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.modem.phy.ofdm.ldpc import RATES, SIZES, LdpcCode, get_code
from audionet.modem.phy.ofdm.ldpc_tables import BASE_MATRICES, BLOCK_SIZE

CODES = [(n, rate) for n in SIZES for rate in RATES]


def test_every_code_has_a_table() -> None:
    assert set(BASE_MATRICES) == set(CODES)
    assert BLOCK_SIZE == {648: 27, 1944: 81}


@pytest.mark.parametrize(("n", "rate"), CODES)
def test_base_matrix_shape_and_shifts(n: int, rate: str) -> None:
    code = get_code(rate, n)
    num, den = (int(x) for x in rate.split("/"))
    assert code.base.shape == (24 * (den - num) // den, 24)
    assert code.k == n * num // den and code.rate == pytest.approx(num / den)
    shifts = code.base[code.base >= 0]
    assert shifts.min() >= 0 and shifts.max() < BLOCK_SIZE[n]
    # The parity part: first parity column 1 / 0 / 1 (shifts a, 0, a), then a zero dual diagonal.
    kb = 24 - code.base.shape[0]
    first = code.base[:, kb]
    assert first[0] == first[-1] == 1
    assert sorted(first[first >= 0].tolist()) == [0, 1, 1]


@pytest.mark.parametrize(("n", "rate"), CODES)
def test_encoded_words_satisfy_every_parity_check(n: int, rate: str) -> None:
    code = get_code(rate, n)
    h = code.parity_check_matrix().astype(np.int64)
    assert h.shape == (n - code.k, n)
    # Each block row holds Z checks, each block column's bits appear once per non-zero block.
    assert h.sum() == (code.base >= 0).sum() * code.z
    rng = np.random.default_rng(n + len(rate))
    info = rng.integers(0, 2, (40, code.k), dtype=np.uint8)
    info[0] = 0
    info[1] = 1
    words = code.encode(info)
    assert np.array_equal(words[:, : code.k], info)
    assert not ((h @ words.T.astype(np.int64)) % 2).any()
    # Unit vectors: every information bit reaches some parity bit (no dead columns).
    unit = np.eye(code.k, dtype=np.uint8)[:: max(1, code.k // 64)]
    parity = code.encode(unit)[:, code.k :]
    assert parity.any(axis=1).all()
    assert not ((h @ code.encode(unit).T.astype(np.int64)) % 2).any()


def test_h_has_full_rank_so_k_is_the_dimension() -> None:
    # Gaussian elimination over GF(2) on the small code: rank(H) = n - k.
    code = LdpcCode(648, "1/2")
    h = code.parity_check_matrix().copy()
    rank = 0
    for col in range(h.shape[1]):
        pivot = np.flatnonzero(h[rank:, col])
        if not pivot.size:
            continue
        p = rank + pivot[0]
        h[[rank, p]] = h[[p, rank]]
        others = np.flatnonzero(h[:, col])
        others = others[others != rank]
        h[others] ^= h[rank]
        rank += 1
        if rank == h.shape[0]:
            break
    assert rank == code.n - code.k
