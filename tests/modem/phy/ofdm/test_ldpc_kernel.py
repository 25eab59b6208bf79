"""The compiled decoding loop gives exactly the decisions of the numpy decoder."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.modem.phy.ofdm import ldpc, ldpc_kernel
from audionet.modem.phy.ofdm.ldpc import RATES, SIZES, decoder_kernel, get_code


def noisy_batch(code: ldpc.LdpcCode, seed: int) -> np.ndarray:
    """Words from far below to well above the waterfall, some with tied and clipped LLRs."""
    rng = np.random.default_rng(seed)
    words = code.encode(rng.integers(0, 2, (12, code.k), dtype=np.uint8))
    batches = []
    for ebn0 in (0.5, 1.5, 2.5, 3.5, 4.5):
        n0 = 1.0 / (code.rate * 10 ** (ebn0 / 10))
        y = (1.0 - 2.0 * words) + rng.normal(0.0, np.sqrt(n0 / 2), words.shape)
        batches.append((4.0 * y / n0).astype(np.float32))
    llr = np.concatenate(batches)
    llr[:6] = np.round(llr[:6])  # many equal magnitudes: the tie rules must agree
    llr[6:8] = np.clip(llr[6:8] * 50, -ldpc.LLR_CLIP, ldpc.LLR_CLIP)
    return llr


def test_numba_is_what_runs() -> None:
    # numba is a dependency (pyproject.toml): the fast kernel must be the one in use.
    assert decoder_kernel() == "numba"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rate", RATES)
def test_compiled_kernel_matches_numpy(n: int, rate: str) -> None:
    kernel = ldpc_kernel.compiled()
    assert kernel is not None
    code = get_code(rate, n)
    llr = noisy_batch(code, seed=n + len(rate))
    expected = code._decode_numpy(llr, 20)
    got = code._decode_kernel(kernel, llr, 20)
    for a, b in zip(expected, got, strict=True):
        assert np.array_equal(a, b)
    assert 0 < expected[1].mean() < 1  # the batch has both successes and failures


def test_plain_python_loop_is_the_same_algorithm() -> None:
    # The uncompiled source of the kernel, run by the interpreter on a few words.
    code = get_code("5/6", 648)
    llr = noisy_batch(code, seed=9)[[0, 20, 40, 55]]
    got = code._decode_kernel(ldpc_kernel.layered_min_sum, llr, 8)
    expected = code._decode_numpy(llr, 8)
    for a, b in zip(expected, got, strict=True):
        assert np.array_equal(a, b)


def test_decode_falls_back_to_numpy_without_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    code = get_code("2/3", 648)
    llr = noisy_batch(code, seed=10)
    fast = code.decode(llr, 20)
    monkeypatch.setattr(ldpc_kernel, "compiled", lambda: None)
    assert decoder_kernel() == "numpy"
    slow = code.decode(llr, 20)
    assert np.array_equal(fast.bits, slow.bits)
    assert np.array_equal(fast.ok, slow.ok)
    assert np.array_equal(fast.iterations, slow.iterations)
