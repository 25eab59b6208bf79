"""LDPC forward error correction: the IEEE 802.11n quasi-cyclic codes, encoder and soft decoder.

The codes (n = 648 or 1944 bits, rates 1/2, 2/3, 3/4, 5/6) are kept as data in
:mod:`audionet.modem.phy.ofdm.ldpc_tables` and expanded once per code (cached by :func:`get_code`).

* **Encoder**: systematic (the k information bits first, then the parity bits). The parity part of
  every 802.11n base matrix is one column of shifts 1/0/1 followed by a dual diagonal, so the first
  parity block is the sum of all rows' information syndromes and each further block follows from
  the one before (back-substitution, IEEE 802.11-2012 Annex 20.3.11.7.5 / the usual "Richardson-
  Urbanke" shortcut for this structure). Vectorised over a batch of words.
* **Decoder**: layered normalised min-sum (each base-matrix row is one layer of Z independent
  checks, processed in turn, so a layer already sees the posteriors updated by the layers before
  it: about half the iterations of flooding). Messages are float32; the check-to-variable
  magnitude is the smallest (or second smallest) incoming magnitude times :data:`NORMALISATION`.
  Each codeword stops as soon as its hard decisions satisfy every parity check (early
  termination). The decoding loop is compiled with numba (:mod:`.ldpc_kernel`; about 4-7 times
  faster than numpy, see docs/modem-phy.md); without numba the numpy version runs, with exactly the
  same decisions. :func:`decoder_kernel` says which one runs.

LLR convention everywhere: ``log P(b=0) / P(b=1)``, positive means 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audionet.errors import ConfigError
from audionet.modem.phy.ofdm import ldpc_kernel
from audionet.modem.phy.ofdm.ldpc_tables import BASE_MATRICES, BLOCK_SIZE

__all__ = [
    "LLR_CLIP",
    "NORMALISATION",
    "RATES",
    "SIZES",
    "LdpcCode",
    "LdpcResult",
    "decoder_kernel",
    "get_code",
]

#: Code rates, most robust first.
RATES: tuple[str, ...] = ("1/2", "2/3", "3/4", "5/6")
#: Codeword lengths: 1944 for payloads, 648 for short frames and headers.
SIZES: tuple[int, ...] = (1944, 648)

#: Min-sum normalisation factor. Measured on BPSK/AWGN (0.625 to 1.0 in steps of 0.05-0.125, 1000-2000
#: frames per point): 0.8 is the best or tied for the best at n=1944 rates 1/2 and 5/6 and n=648
#: rate 5/6; 0.75 costs about 0.1 dB at rate 1/2, plain min-sum (1.0) about 0.2 dB.
NORMALISATION = 0.8
#: Input LLRs are clipped to this magnitude (keeps float32 sums finite for saturated inputs).
LLR_CLIP = 64.0


@dataclass(frozen=True)
class LdpcResult:
    """What :meth:`LdpcCode.decode` returns for each codeword of the batch."""

    #: Decoded information bits, shape ``(..., k)``, values 0/1.
    bits: NDArray[np.uint8]
    #: Whether the decoded word satisfies every parity check, shape ``(...)``.
    ok: NDArray[np.bool_]
    #: Full decoding iterations spent (0 for a word that was already a codeword), shape ``(...)``.
    iterations: NDArray[np.int64]


@dataclass(frozen=True)
class _Layer:
    """One base-matrix row: Z checks, each touching one bit of each of the row's block columns."""

    #: Flat bit index per edge and check, shape (degree, Z): column block c with shift s gives
    #: ``c * Z + (i + s) % Z`` for check i.
    index: NDArray[np.intp]


class LdpcCode:
    """One 802.11n LDPC code: ``n`` coded bits carrying ``k`` information bits."""

    def __init__(self, n: int, rate: str) -> None:
        if n not in BLOCK_SIZE:
            raise ConfigError(f"unknown LDPC codeword length {n}; use one of {list(SIZES)}")
        if rate not in RATES:
            raise ConfigError(f"unknown LDPC code rate {rate!r}; use one of {list(RATES)}")
        self.name = rate
        self.n = n
        self.z = z = BLOCK_SIZE[n]
        self.base = _parse_base(BASE_MATRICES[(n, rate)])
        mb, nb = self.base.shape
        self.m = mb * z
        self.k = n - self.m
        self.rate = self.k / n
        self._kb = kb = nb - mb
        _check_parity_structure(self.base, kb)

        cyc = np.arange(z)
        self._layers: tuple[_Layer, ...] = tuple(
            _Layer(
                index=np.stack(
                    [
                        c * z + (cyc + int(self.base[r, c])) % z
                        for c in np.flatnonzero(self.base[r] >= 0)
                    ]
                ).astype(np.intp)
            )
            for r in range(mb)
        )
        # The same checks as a flat list, layer after layer, for the compiled kernel.
        per_check = [layer.index.T for layer in self._layers]  # (Z, degree) each
        self._cols = np.concatenate([p.reshape(-1) for p in per_check]).astype(np.int64)
        degrees = np.concatenate([np.full(z, p.shape[1]) for p in per_check])
        self._row_ptr = np.concatenate([[0], np.cumsum(degrees)]).astype(np.int64)
        # Encoder: the information part's entries (row, column, shift).
        self._info_entries = tuple(
            (r, c, int(self.base[r, c]))
            for r in range(mb)
            for c in range(kb)
            if self.base[r, c] >= 0
        )

    def __repr__(self) -> str:
        return f"LdpcCode(n={self.n}, rate={self.name!r}, k={self.k})"

    # ------------------------------------------------------------------ parity-check matrix

    def parity_check_matrix(self) -> NDArray[np.uint8]:
        """The full ``m x n`` parity-check matrix H as a dense 0/1 array (for tests and tools)."""
        h = np.zeros((self.m, self.n), dtype=np.uint8)
        z = self.z
        for r, layer in enumerate(self._layers):
            rows = r * z + np.arange(z)
            for e in range(layer.index.shape[0]):
                h[rows, layer.index[e]] = 1
        return h

    def syndrome_ok(self, bits: ArrayLike) -> NDArray[np.bool_]:
        """Whether each word of ``bits`` (shape ``(..., n)``, 0/1) satisfies every parity check."""
        words = np.asarray(bits, dtype=np.uint8)
        if words.shape[-1:] != (self.n,):
            raise ConfigError(
                f"codewords must have {self.n} bits in the last axis, got {words.shape}"
            )
        flat = words.reshape(-1, self.n)
        return self._syndrome_ok(flat).reshape(words.shape[:-1])

    def _syndrome_ok(self, hard: NDArray[np.uint8]) -> NDArray[np.bool_]:
        ok = np.ones(hard.shape[0], dtype=np.bool_)
        for layer in self._layers:
            parity = np.bitwise_xor.reduce(hard[:, layer.index], axis=1)
            ok &= ~parity.any(axis=1)
        return ok

    # ------------------------------------------------------------------ encoder

    def encode(self, info: ArrayLike) -> NDArray[np.uint8]:
        """Systematic codewords ``(..., n)`` for information bits ``(..., k)`` (values 0/1)."""
        bits = np.asarray(info)
        if bits.shape[-1:] != (self.k,):
            raise ConfigError(
                f"rate {self.name} n={self.n} encodes {self.k} bits per word, got shape {bits.shape}"
            )
        if bits.size and (bits.min() < 0 or bits.max() > 1):
            raise ConfigError("information bits must be 0 or 1")
        lead = bits.shape[:-1]
        z, kb = self.z, self._kb
        mb = self.base.shape[0]
        u = bits.reshape(-1, kb, z).astype(np.uint8)
        batch = u.shape[0]
        # lam[r] = sum over the row's information blocks of P^s u_c (P^s v = roll(v, -s)).
        lam = np.zeros((batch, mb, z), dtype=np.uint8)
        for r, c, s in self._info_entries:
            lam[:, r] ^= np.roll(u[:, c], -s, axis=-1)
        parity = np.zeros((batch, mb, z), dtype=np.uint8)
        parity[:, 0] = np.bitwise_xor.reduce(lam, axis=1)
        for r in range(mb - 1):
            acc = lam[:, r].copy()
            for j in range(r + 1):  # known parity blocks in row r (p_0 .. p_r)
                s = int(self.base[r, kb + j])
                if s >= 0:
                    acc ^= np.roll(parity[:, j], -s, axis=-1)
            parity[:, r + 1] = acc
        words = np.concatenate([u.reshape(batch, -1), parity.reshape(batch, -1)], axis=1)
        return words.reshape((*lead, self.n))

    # ------------------------------------------------------------------ decoder

    def decode(self, llr: ArrayLike, max_iterations: int = 30) -> LdpcResult:
        """Decode LLRs ``(..., n)`` (positive means 0) with layered normalised min-sum.

        Every codeword of the batch stops on its own once its parity checks pass; the result says
        which words passed (``ok``) and after how many iterations.
        """
        values = np.asarray(llr, dtype=np.float32)
        if values.shape[-1:] != (self.n,):
            raise ConfigError(
                f"LLRs must have {self.n} values in the last axis, got {values.shape}"
            )
        if max_iterations < 0:
            raise ConfigError(f"max_iterations must be >= 0, got {max_iterations}")
        lead = values.shape[:-1]
        flat = np.clip(np.nan_to_num(values.reshape(-1, self.n)), -LLR_CLIP, LLR_CLIP)
        kernel = ldpc_kernel.compiled()
        if kernel is None:
            hard, ok, iterations = self._decode_numpy(flat, max_iterations)
        else:
            hard, ok, iterations = self._decode_kernel(kernel, flat, max_iterations)
        return LdpcResult(
            bits=hard[:, : self.k].reshape((*lead, self.k)),
            ok=ok.reshape(lead),
            iterations=iterations.reshape(lead),
        )

    def _decode_kernel(
        self, kernel: ldpc_kernel.Kernel, llr: NDArray[np.float32], max_iterations: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64]]:
        batch = llr.shape[0]
        hard = np.zeros((batch, self.n), dtype=np.uint8)
        ok = np.zeros(batch, dtype=np.bool_)
        iterations = np.zeros(batch, dtype=np.int64)
        kernel(
            np.ascontiguousarray(llr, dtype=np.float32),
            self._row_ptr,
            self._cols,
            np.float32(NORMALISATION),
            int(max_iterations),
            hard,
            ok,
            iterations,
        )
        return hard, ok, iterations

    def _decode_numpy(
        self, llr: NDArray[np.float32], max_iterations: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64]]:
        batch = llr.shape[0]
        out = np.zeros((batch, self.n), dtype=np.uint8)
        ok = np.zeros(batch, dtype=np.bool_)
        iterations = np.full(batch, max_iterations, dtype=np.int64)
        posterior = llr.astype(np.float32, copy=True)
        messages = [
            np.zeros((batch, *layer.index.shape), dtype=np.float32) for layer in self._layers
        ]
        active = np.arange(batch)
        alpha = np.float32(NORMALISATION)
        for it in range(max_iterations + 1):
            hard = (posterior < 0).astype(np.uint8)
            passed = self._syndrome_ok(hard)
            if passed.any():
                done = active[passed]
                out[done] = hard[passed]
                ok[done] = True
                iterations[done] = it
                keep = ~passed
                active, posterior, hard = active[keep], posterior[keep], hard[keep]
                messages = [msg[keep] for msg in messages]
            if active.size == 0 or it == max_iterations:
                out[active] = hard
                break
            for layer, msg in zip(self._layers, messages, strict=True):
                idx = layer.index
                q = posterior[:, idx] - msg  # variable-to-check, (B, d, Z)
                mag = np.abs(q)
                neg = q < 0
                parity = np.logical_xor.reduce(neg, axis=1)
                first = mag.argmin(axis=1)
                min1 = np.take_along_axis(mag, first[:, None, :], axis=1)
                np.put_along_axis(mag, first[:, None, :], np.inf, axis=1)
                min2 = mag.min(axis=1, keepdims=True)
                is_first = np.arange(idx.shape[0])[None, :, None] == first[:, None, :]
                new = np.where(is_first, min2, min1) * alpha
                np.negative(new, out=new, where=neg ^ parity[:, None, :])
                msg[...] = new
                posterior[:, idx] = q + new
        return out, ok, iterations


def get_code(rate: str, n: int = 1944) -> LdpcCode:
    """The 802.11n LDPC code of this rate ("1/2", "2/3", "3/4", "5/6") and length (1944 or 648).

    Built once per code and cached; :class:`ConfigError` names the valid rates and lengths.
    """
    if not isinstance(rate, str) or isinstance(n, bool) or not isinstance(n, int):
        raise ConfigError(f"LDPC code rate must be one of {list(RATES)} and n one of {list(SIZES)}")
    return _cached_code(n, rate)


def decoder_kernel() -> str:
    """Which decoding loop runs: "numba" (compiled) or "numpy" (the fallback)."""
    return "numpy" if ldpc_kernel.compiled() is None else "numba"


@functools.cache
def _cached_code(n: int, rate: str) -> LdpcCode:
    return LdpcCode(n, rate)


def _parse_base(text: str) -> NDArray[np.int64]:
    rows = [
        [-1 if f == "-" else int(f) for f in line.split()] for line in text.strip().splitlines()
    ]
    return np.array(rows, dtype=np.int64)


def _check_parity_structure(base: NDArray[np.int64], kb: int) -> None:
    """The 802.11n parity part: column kb sums to the identity, then a zero-shift dual diagonal."""
    mb = base.shape[0]
    first = base[:, kb][base[:, kb] >= 0]
    shifts, counts = np.unique(first, return_counts=True)
    odd = shifts[counts % 2 == 1]
    if odd.tolist() != [0]:
        raise ConfigError("LDPC table: the first parity column does not sum to the identity")
    for r in range(mb):
        for j in range(1, mb):
            s = base[r, kb + j]
            expected = 0 if j in (r, r + 1) else -1
            if s != expected:
                raise ConfigError(f"LDPC table: row {r} is not dual-diagonal at parity column {j}")
