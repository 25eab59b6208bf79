"""Gray-mapped constellations (BPSK to 1024-QAM) and their soft demapper.

Square M-QAM is the product of two Gray-coded PAM axes, as in IEEE 802.11 (clause 17.3.5.8): of
a symbol's ``2q`` bits (most significant first) the first ``q`` choose the in-phase level and the
last ``q`` the quadrature level; along each axis the label of the ``p``-th level from the most
negative is the Gray code ``p ^ (p >> 1)``, so neighbouring points differ in exactly one bit.
BPSK is one real axis (bit 0 at -1, bit 1 at +1). Every constellation has unit mean energy.

Because the noise of the two axes is independent and the labels are separable, the likelihood of an
in-phase bit depends only on the in-phase coordinate: the demapper works on each axis (``2^q``
levels, 32 for 1024-QAM) instead of the ``M``-point plane. :meth:`Constellation.demap` computes
**max-log** LLRs in closed form from the nearest level and, per bit, the nearest level on either
side with the other bit value (O(bits) per symbol, no distance search); ``exact=True`` gives the
exact log-likelihood ratio (log-sum-exp over the axis' levels), which is exact for the whole 2-D
constellation too.

LLR convention: ``log P(b=0 | y) / P(b=1 | y)`` (positive means 0), ``noise_var`` = E|n|^2 of the
complex noise (each axis carries half of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from audionet.errors import ConfigError

__all__ = ["CONSTELLATIONS", "Constellation", "get_constellation"]

#: Noise variances below this are taken as this (a perfect channel still gives finite LLRs).
MIN_NOISE_VAR = 1e-9


@dataclass(frozen=True)
class _Axis:
    """One Gray-coded PAM axis: ``q`` bits, ``2^q`` levels."""

    bits: int
    #: Level amplitudes from the most negative, shape (L,).
    levels: NDArray[np.float64]
    #: Bit j (MSB first) of the label of level p, shape (L, q).
    label_bits: NDArray[np.uint8]
    #: Per level p and bit j: the nearest level below / above p whose bit j differs, as an
    #: amplitude, or +-inf when there is none; shape (L, q).
    other_below: NDArray[np.float64]
    other_above: NDArray[np.float64]

    @classmethod
    def build(cls, bits: int, scale: float) -> _Axis:
        count = 1 << bits
        positions = np.arange(count)
        labels = positions ^ (positions >> 1)
        label_bits = ((labels[:, None] >> np.arange(bits - 1, -1, -1)[None, :]) & 1).astype(
            np.uint8
        )
        levels = ((2.0 * positions - (count - 1)) * scale).astype(np.float64)
        below = np.full((count, bits), -np.inf)
        above = np.full((count, bits), np.inf)
        for p in range(count):
            for j in range(bits):
                differs = np.flatnonzero(label_bits[:, j] != label_bits[p, j])
                lower = differs[differs < p]
                upper = differs[differs > p]
                if lower.size:
                    below[p, j] = levels[lower[-1]]
                if upper.size:
                    above[p, j] = levels[upper[0]]
        return cls(bits, levels, label_bits, below, above)

    def nearest(self, y: NDArray[np.float64]) -> NDArray[np.intp]:
        count = self.levels.size
        step = self.levels[1] - self.levels[0]
        p = np.rint((y - self.levels[0]) / step)
        index: NDArray[np.intp] = np.clip(p, 0, count - 1).astype(np.intp)
        return index

    def max_log(self, y: NDArray[np.float64], inv_n0: NDArray[np.float64]) -> NDArray[np.float64]:
        """Max-log LLRs of this axis' bits, shape (..., q), for coordinates y (...)."""
        p = self.nearest(y)
        yy = y[..., None]
        d_near = (yy - self.levels[p][..., None]) ** 2
        d_other = np.minimum((yy - self.other_below[p]) ** 2, (yy - self.other_above[p]) ** 2)
        sign = 1.0 - 2.0 * self.label_bits[p]
        return sign * (d_other - d_near) * inv_n0[..., None]

    def exact(self, y: NDArray[np.float64], inv_n0: NDArray[np.float64]) -> NDArray[np.float64]:
        """Exact LLRs of this axis' bits, shape (..., q)."""
        metric = -((y[..., None] - self.levels) ** 2) * inv_n0[..., None]  # (..., L)
        out = np.empty((*y.shape, self.bits))
        for j in range(self.bits):
            zero = self.label_bits[:, j] == 0
            out[..., j] = _logsumexp(metric[..., zero]) - _logsumexp(metric[..., ~zero])
        return out


def _logsumexp(x: NDArray[np.float64]) -> NDArray[np.float64]:
    top = x.max(axis=-1)
    result: NDArray[np.float64] = top + np.log(np.exp(x - top[..., None]).sum(axis=-1))
    return result


@dataclass(frozen=True)
class Constellation:
    """A Gray-mapped constellation with unit mean energy."""

    #: "bpsk", "qpsk", "qam16", "qam64", "qam256" or "qam1024".
    name: str
    bits_per_symbol: int
    #: Point per label: ``points[i]`` carries the bits of ``i`` (most significant bit first).
    points: NDArray[np.complex128] = field(repr=False, compare=False)
    _axis: _Axis = field(repr=False, compare=False)

    @classmethod
    def build(cls, name: str, bits_per_symbol: int) -> Constellation:
        if bits_per_symbol == 1:
            axis = _Axis.build(1, 1.0)
            points = axis.levels.astype(np.complex128)
        else:
            q = bits_per_symbol // 2
            count = 1 << q
            scale = 1.0 / np.sqrt(2.0 * (count * count - 1) / 3.0)
            axis = _Axis.build(q, scale)
            position = np.argsort(np.arange(count) ^ (np.arange(count) >> 1))  # label -> level
            labels = np.arange(1 << bits_per_symbol)
            i_level = axis.levels[position[labels >> q]]
            q_level = axis.levels[position[labels & (count - 1)]]
            points = i_level + 1j * q_level
        points.setflags(write=False)
        return cls(name, bits_per_symbol, points, axis)

    def modulate(self, bits: ArrayLike) -> NDArray[np.complex128]:
        """Symbols for a bit sequence whose length is a multiple of ``bits_per_symbol``."""
        values = np.asarray(bits)
        if values.ndim != 1 or values.size % self.bits_per_symbol:
            raise ConfigError(
                f"{self.name} takes a 1-D bit array whose length is a multiple of "
                f"{self.bits_per_symbol}, got shape {values.shape}"
            )
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ConfigError("bits must be 0 or 1")
        groups = values.reshape(-1, self.bits_per_symbol).astype(np.intp)
        weights = 1 << np.arange(self.bits_per_symbol - 1, -1, -1)
        result: NDArray[np.complex128] = self.points[groups @ weights]
        return result

    def demap(
        self,
        symbols: ArrayLike,
        noise_var: float | ArrayLike,
        *,
        exact: bool = False,
    ) -> NDArray[np.float32]:
        """LLRs, ``bits_per_symbol`` per symbol in bit order (positive means 0).

        ``noise_var`` is the complex noise variance E|n|^2, a scalar or one per symbol.
        Max-log by default; ``exact=True`` for the exact log-likelihood ratio.
        """
        y = np.asarray(symbols)
        if y.ndim < 1:
            raise ConfigError("demap takes an array of symbols")
        n0 = np.asarray(noise_var, dtype=np.float64)
        if np.isnan(n0).any() or (n0 < 0).any():
            raise ConfigError("noise_var must be a non-negative number (complex noise variance)")
        try:
            inv_n0 = np.broadcast_to(1.0 / np.maximum(n0, MIN_NOISE_VAR), y.shape)
        except ValueError:
            raise ConfigError(
                f"noise_var of shape {n0.shape} does not match symbols of shape {y.shape}"
            ) from None
        per_axis = self._axis.exact if exact else self._axis.max_log
        real = np.real(y).astype(np.float64)
        if self.bits_per_symbol == 1:
            llr = per_axis(real, inv_n0)
        else:
            imag = np.imag(y).astype(np.float64)
            llr = np.concatenate([per_axis(real, inv_n0), per_axis(imag, inv_n0)], axis=-1)
        out: NDArray[np.float32] = llr.reshape(*y.shape[:-1], -1).astype(np.float32)
        return out


#: Every constellation by name, fewest bits first.
CONSTELLATIONS: dict[str, Constellation] = {
    name: Constellation.build(name, bits)
    for name, bits in (
        ("bpsk", 1),
        ("qpsk", 2),
        ("qam16", 4),
        ("qam64", 6),
        ("qam256", 8),
        ("qam1024", 10),
    )
}


def get_constellation(name: str) -> Constellation:
    """A constellation by name; :class:`ConfigError` lists the valid names for an unknown one."""
    try:
        return CONSTELLATIONS[name]
    except KeyError:
        raise ConfigError(
            f"unknown constellation {name!r}; use one of {', '.join(CONSTELLATIONS)}"
        ) from None
