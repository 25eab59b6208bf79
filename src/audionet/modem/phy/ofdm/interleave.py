"""Bit interleaver: spreads the coded bits of a frame across OFDM symbols and carriers.

A frame's ``n_bits`` coded bits (its codewords one after another) fill rows of ``row_bits`` bits,
one row per OFDM symbol (the last row may be shorter); within a row, bit positions are the order in
which the modulator hands bits to carriers (a carrier's QAM symbol takes consecutive positions).
The permutation, generalising the two steps of IEEE 802.11's interleaver (clause 17.3.5.7) to any
size and to bit loading, does this:

1. **Across symbols**: coded bit ``i`` goes to row ``i mod R`` (R rows), slot ``i // R`` (with the
   short last row skipped once its slots run out). Consecutive coded bits go to consecutive OFDM
   symbols, so a click or a lost symbol costs each codeword a few scattered bits, and every
   codeword sees every symbol.
2. **Across carriers**: in row ``s`` (length ``L``), slot ``j`` goes to position
   ``(a * j + c * s) mod L``. ``a`` is coprime with ``L``, chosen so that both ``a`` and its inverse
   modulo ``L`` move small steps (1 to 10) far apart: slots next to each other land on carriers far
   apart, and the bits of one QAM symbol (neighbouring positions, up to 10 for 1024-QAM) come from
   codeword positions far apart. ``a`` is also coprime with 2, 3, 5 and 7, so consecutive slots
   cycle through the bit positions within a QAM symbol (the more and the less reliable bits of
   Gray QAM), which 802.11 does with its second step. ``c * s`` rotates each row, so the same slot
   of neighbouring rows (consecutive coded bits) sits on different carriers: a weak carrier does not
   take a run of consecutive coded bits.

``forward`` takes coded bits (or any values) to channel order, ``inverse`` takes channel order
(e.g. the demapper's LLRs) back to coded order; both work on the last axis.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audionet.errors import ConfigError

__all__ = ["Interleaver"]

#: Steps (bits of one QAM symbol, neighbouring slots) whose images must be far apart: up to the
#: 10 bits of a 1024-QAM symbol.
SPREAD_STEPS = 10


class Interleaver:
    """A fixed permutation of ``n_bits`` coded bits over rows of ``row_bits`` (one per symbol)."""

    def __init__(self, n_bits: int, row_bits: int) -> None:
        if isinstance(n_bits, bool) or not isinstance(n_bits, int | np.integer) or n_bits < 1:
            raise ConfigError(f"n_bits must be a positive integer, got {n_bits!r}")
        if isinstance(row_bits, bool) or not isinstance(row_bits, int | np.integer) or row_bits < 1:
            raise ConfigError(f"row_bits must be a positive integer, got {row_bits!r}")
        self.n_bits = int(n_bits)
        self.row_bits = int(row_bits)
        self.rows = -(-self.n_bits // self.row_bits)
        #: ``permutation[i]`` is the channel position of coded bit ``i``.
        self.permutation = _permutation(self.n_bits, self.row_bits)
        self.permutation.setflags(write=False)

    def __repr__(self) -> str:
        return f"Interleaver(n_bits={self.n_bits}, row_bits={self.row_bits})"

    def forward(self, bits: ArrayLike) -> NDArray[np.generic]:
        """Coded order to channel order along the last axis (any dtype)."""
        values = self._check(bits)
        out = np.empty_like(values)
        out[..., self.permutation] = values
        return out

    def inverse(self, llr: ArrayLike) -> NDArray[np.generic]:
        """Channel order back to coded order along the last axis (any dtype)."""
        values = self._check(llr)
        result: NDArray[np.generic] = values[..., self.permutation]
        return result

    def _check(self, values: ArrayLike) -> NDArray[np.generic]:
        array = np.asarray(values)
        if array.shape[-1:] != (self.n_bits,):
            raise ConfigError(
                f"interleaver of {self.n_bits} bits got an array of shape {array.shape}"
            )
        return array


#: Permutations kept (a frame's can be hundreds of kB, and a link sees frames of many sizes).
CACHED_PERMUTATIONS = 32


@functools.lru_cache(maxsize=CACHED_PERMUTATIONS)
def _permutation(n_bits: int, row_bits: int) -> NDArray[np.intp]:
    rows = -(-n_bits // row_bits)
    last = n_bits - (rows - 1) * row_bits
    # Step 1: coded bit i -> (row, slot), round robin over rows, the short last row skipped.
    slot_grid, row_grid = np.meshgrid(np.arange(row_bits), np.arange(rows), indexing="ij")
    valid = (row_grid < rows - 1) | (slot_grid < last)
    row = row_grid[valid]
    slot = slot_grid[valid]
    # Step 2: slot -> position within the row.
    position = np.empty(n_bits, dtype=np.intp)
    lengths = np.where(row == rows - 1, last, row_bits)
    for length in np.unique(lengths).tolist():
        a, c = _row_map(length)
        which = lengths == length
        position[which] = (a * slot[which] + c * row[which]) % length
    permutation: NDArray[np.intp] = row * row_bits + position
    return permutation


@functools.lru_cache(maxsize=256)
def _row_map(length: int) -> tuple[int, int]:
    """Multiplier ``a`` and row rotation ``c`` for rows of ``length`` positions."""
    if length <= 2:
        return 1, 1
    # Short rows cannot keep 10 steps apart: ask only for the steps that can be.
    steps = np.arange(1, min(SPREAD_STEPS, max(1, length // 4)) + 1)
    candidates = np.arange(1, length)
    candidates = candidates[np.gcd(candidates, length) == 1]
    if length > 4 * 210:
        small_ok = np.gcd(candidates, 210) == 1
        if small_ok.any():
            candidates = candidates[small_ok]

    def spread(values: NDArray[np.int64]) -> NDArray[np.int64]:
        images = (values[:, None] * steps[None, :]) % length
        return np.minimum(images, length - images).min(axis=1)  # type: ignore[no-any-return]

    forward = spread(candidates)
    best_a, best_score = 1, -1
    for index in np.argsort(-forward, kind="stable")[:256]:
        a = int(candidates[index])
        score = min(int(forward[index]), int(spread(np.array([pow(a, -1, length)]))[0]))
        if score > best_score:
            best_a, best_score = a, score
    # Row rotation: the golden section of the row, so nearby rows sit far apart.
    c = round(length * (math.sqrt(5) - 1) / 2)
    return best_a, c
