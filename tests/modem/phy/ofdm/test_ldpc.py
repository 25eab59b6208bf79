"""LDPC encoder and layered min-sum decoder: interface, error correction, FER against published curves."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.errors import ConfigError
from audionet.modem.phy.ofdm.ldpc import RATES, SIZES, LdpcResult, get_code

CODES = [(n, rate) for n in SIZES for rate in RATES]


def bpsk_awgn_llr(
    words: np.ndarray, rate: float, ebn0_db: float, rng: np.random.Generator
) -> np.ndarray:
    """LLRs (positive means 0) of BPSK words (0 -> +1) through real AWGN at Eb/N0 in dB."""
    n0 = 1.0 / (rate * 10 ** (ebn0_db / 10))  # Es = 1, Eb = Es / R
    y = (1.0 - 2.0 * words) + rng.normal(0.0, np.sqrt(n0 / 2), words.shape)
    return (4.0 * y / n0).astype(np.float32)


def frame_error_rate(n: int, rate: str, ebn0_db: float, frames: int, seed: int) -> float:
    code = get_code(rate, n)
    rng = np.random.default_rng(seed)
    info = rng.integers(0, 2, (frames, code.k), dtype=np.uint8)
    result = code.decode(bpsk_awgn_llr(code.encode(info), code.rate, ebn0_db, rng))
    wrong = ~(result.bits == info).all(axis=1)
    # A word the decoder calls ok but that is wrong would be an undetected error.
    assert not (wrong & result.ok).any()
    return float(wrong.mean())


# ---------------------------------------------------------------- interface


def test_get_code_is_cached_and_describes_itself() -> None:
    code = get_code("3/4")
    assert code is get_code("3/4", 1944)
    assert (code.name, code.n, code.k, code.rate) == ("3/4", 1944, 1458, 0.75)
    assert get_code("1/2", 648).k == 324
    assert "3/4" in repr(code)


@pytest.mark.parametrize(("rate", "n"), [("7/8", 1944), ("1/2", 1296), ("1/2", 0)])
def test_unknown_codes_are_config_errors(rate: str, n: int) -> None:
    with pytest.raises(ConfigError, match="use one of"):
        get_code(rate, n)


def test_wrong_shapes_and_values_are_config_errors() -> None:
    code = get_code("1/2", 648)
    with pytest.raises(ConfigError, match="324"):
        code.encode(np.zeros(100, dtype=np.uint8))
    with pytest.raises(ConfigError, match="0 or 1"):
        code.encode(np.full(code.k, 2))
    with pytest.raises(ConfigError, match="648"):
        code.decode(np.zeros(100, dtype=np.float32))
    with pytest.raises(ConfigError, match="max_iterations"):
        code.decode(np.zeros(648, dtype=np.float32), max_iterations=-1)
    with pytest.raises(ConfigError, match="648"):
        code.syndrome_ok(np.zeros(10, dtype=np.uint8))


def test_batch_shapes_are_kept() -> None:
    code = get_code("2/3", 648)
    rng = np.random.default_rng(1)
    info = rng.integers(0, 2, (2, 3, code.k), dtype=np.uint8)
    words = code.encode(info)
    assert words.shape == (2, 3, 648) and words.dtype == np.uint8
    assert code.encode(info[0, 0]).shape == (648,)
    result = code.decode(1.0 - 2.0 * words)
    assert isinstance(result, LdpcResult)
    assert result.bits.shape == (2, 3, code.k) and result.bits.dtype == np.uint8
    assert result.ok.shape == (2, 3) and result.iterations.shape == (2, 3)
    assert np.array_equal(result.bits, info)
    single = code.decode((1.0 - 2.0 * words[1, 2]).astype(np.float32))
    assert single.bits.shape == (code.k,) and single.ok.shape == ()
    empty = code.decode(np.zeros((0, 648), dtype=np.float32))
    assert empty.bits.shape == (0, code.k)


@pytest.mark.parametrize(("n", "rate"), CODES)
def test_clean_words_decode_without_iterating(n: int, rate: str) -> None:
    code = get_code(rate, n)
    info = np.random.default_rng(2).integers(0, 2, (4, code.k), dtype=np.uint8)
    result = code.decode(4.0 * (1.0 - 2.0 * code.encode(info)))
    assert result.ok.all() and not result.iterations.any()
    assert np.array_equal(result.bits, info)


# ---------------------------------------------------------------- error correction


@pytest.mark.parametrize(("n", "rate"), CODES)
def test_decoder_corrects_noisy_codewords(n: int, rate: str) -> None:
    code = get_code(rate, n)
    rng = np.random.default_rng(3)
    info = rng.integers(0, 2, (20, code.k), dtype=np.uint8)
    words = code.encode(info)
    # Eb/N0 about 1.5 dB above each code's waterfall: many raw bit errors, all corrected.
    ebn0 = {"1/2": 3.0, "2/3": 3.5, "3/4": 4.0, "5/6": 5.0}[rate] + (0.5 if n == 648 else 0.0)
    llr = bpsk_awgn_llr(words, code.rate, ebn0, rng)
    raw_errors = ((llr < 0) != words).sum(axis=1)
    assert (raw_errors > 0).all() and raw_errors.sum() > 20 * n * 0.005
    result = code.decode(llr)
    assert result.ok.all()
    assert np.array_equal(result.bits, info)
    assert (result.iterations >= 1).all() and (result.iterations < 30).all()


def test_each_word_stops_on_its_own() -> None:
    code = get_code("1/2", 1944)
    rng = np.random.default_rng(4)
    info = rng.integers(0, 2, (3, code.k), dtype=np.uint8)
    words = code.encode(info)
    llr = np.stack(
        [
            8.0 * (1.0 - 2.0 * words[0]),  # clean
            bpsk_awgn_llr(words[1], code.rate, 2.5, rng),  # noisy
            rng.normal(0.0, 1.0, code.n),  # no codeword at all
        ]
    ).astype(np.float32)
    result = code.decode(llr, max_iterations=12)
    assert result.ok.tolist() == [True, True, False]
    assert result.iterations[0] == 0 and 1 <= result.iterations[1] < 12
    assert result.iterations[2] == 12
    assert np.array_equal(result.bits[:2], info[:2])


def test_garbage_llrs_never_crash() -> None:
    code = get_code("5/6", 648)
    llr = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0] * 108, dtype=np.float32)
    result = code.decode(llr, max_iterations=5)
    assert result.bits.shape == (code.k,) and result.iterations <= 5
    zero = code.decode(np.zeros(648, dtype=np.float32))  # no information: all-zero word is valid
    assert zero.ok


def test_syndrome_ok_tells_codewords_from_others() -> None:
    code = get_code("3/4", 648)
    words = code.encode(np.random.default_rng(5).integers(0, 2, (3, code.k), dtype=np.uint8))
    assert code.syndrome_ok(words).all()
    words[1, 100] ^= 1
    assert code.syndrome_ok(words).tolist() == [True, False, True]


# ---------------------------------------------------------------- frame error rate vs references

# Reference: AFF3CT's published error-rate references (github.com/aff3ct/error_rate_references),
# LDPC/AWGN/BPSK/BP_HORIZONTAL_LAYERED/SPA/LDPC_N648_K540_hlayered_SPA_i20_Wi-Fi.txt: the 802.11n
# (Wi-Fi) code n=648 rate 5/6, BPSK over AWGN, horizontal-layered belief propagation (sum-product),
# 20 iterations, syndrome stop. FER by Eb/N0 (dB):
AFF3CT_WIFI_648_R56_SPA_I20 = {
    3.00: 4.25e-1,
    3.25: 2.22e-1,
    3.50: 7.48e-2,
    3.75: 2.27e-2,
    4.00: 5.49e-3,
    4.25: 1.13e-3,
    4.50: 2.20e-4,
}


def reference_fer(ebn0_db: float) -> float:
    """The reference curve, interpolated linearly in log(FER)."""
    x = np.array(list(AFF3CT_WIFI_648_R56_SPA_I20))
    y = np.log10(list(AFF3CT_WIFI_648_R56_SPA_I20.values()))
    return float(10 ** np.interp(ebn0_db, x, y))


@pytest.mark.parametrize(("ebn0_db", "frames"), [(3.5, 2000), (3.75, 2000), (4.0, 3000)])
def test_fer_sits_on_the_published_curve(ebn0_db: float, frames: int) -> None:
    """Within 0.5 dB either side of layered sum-product (the issue asks for within 1 dB)."""
    fer = frame_error_rate(648, "5/6", ebn0_db, frames, seed=int(ebn0_db * 100))
    # No worse than the reference 0.5 dB lower (and so within the 1 dB the issue asks) ...
    assert fer <= reference_fer(ebn0_db - 0.5)
    # ... and not implausibly better than belief propagation (which would mean a wrong noise scale).
    assert fer >= reference_fer(ebn0_db + 0.5)
    # Measured (seeded): 3.5 dB 0.078, 3.75 dB 0.024, 4.0 dB 0.005: on the reference.


def test_no_decoding_below_the_capacity_limit() -> None:
    # Rate 1/2 on the binary-input AWGN channel needs Eb/N0 >= 0.19 dB (the Shannon limit):
    # below it every frame must fail, whatever the decoder.
    assert frame_error_rate(1944, "1/2", -0.5, 40, seed=6) == 1.0


def test_long_rate_half_code_in_its_waterfall() -> None:
    # 802.11n n=1944 rate 1/2 reaches FER 1e-2 at about Eb/N0 1.5 dB with belief propagation
    # (the figure: 1.5-2 dB); measured here 7e-3 at 1.5 dB and 0 of 1000 at 2.0 dB.
    assert frame_error_rate(1944, "1/2", 2.0, 300, seed=7) <= 1e-2
    assert 0.05 <= frame_error_rate(1944, "1/2", 1.0, 100, seed=8) <= 0.9
