"""A frame's payload bytes to carrier values and back: scrambler, LDPC, interleaver, QAM.

Transmit: the frame's bits are scrambled (a fixed pseudo-random sequence, so a run of zero bytes
does not put every carrier on the same point and the symbol on one huge peak), cut into LDPC
information words of ``k`` bits (802.11n, n = 1944, the mode's rate), the last one *shortened*:
its unused information bits are known zeros and are not sent. The coded bits are interleaved
across the frame's symbols and carriers (:class:`~audionet.modem.phy.ofdm.interleave.Interleaver`),
then each data carrier takes its group's number of bits, most significant first, in carrier
order, for its constellation. The last symbol is filled up with pseudo-random bits.

Receive: the demapper's LLRs (from the equaliser's values and noise variance per carrier and
symbol), de-interleaved, shortened positions set to certain zeros, one batched LDPC decode for
all codewords of the frame, descrambled. The frame's own CRC-32 stays the integrity check; the
decoder's parity check only reports (``ok``) for rate adaptation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.ofdm import ldpc
from audionet.modem.phy.ofdm.interleave import Interleaver
from audionet.modem.phy.ofdm.mode import NAMES, Mode
from audionet.modem.phy.ofdm.profile import OfdmProfile
from audionet.modem.phy.ofdm.qam import get_constellation

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
C128 = npt.NDArray[np.complex128]
I64 = npt.NDArray[np.int64]

CODE_LENGTH = 1944
#: Decoder iterations: layered min-sum converges in 3-8 at the SNRs rate adaptation picks.
MAX_ITERATIONS = 20


@dataclass(frozen=True, slots=True)
class _Slots:
    """Where each constellation's bits sit within a symbol's row of bits."""

    row_bits: int
    #: per constellation bits: (data-carrier indices, bit positions in the row (carriers, bits))
    groups: tuple[tuple[int, I64, I64], ...]


@functools.lru_cache(maxsize=256)
def _slots(profile: OfdmProfile, mode: Mode) -> _Slots:
    bits = mode.carrier_bits(profile)
    offsets = np.concatenate(([0], np.cumsum(bits)[:-1]))
    groups = []
    for b in sorted(set(bits.tolist())):
        if b == 0:
            continue
        carriers = np.flatnonzero(bits == b)
        positions = offsets[carriers][:, None] + np.arange(b)[None, :]
        groups.append((b, carriers, positions))
    return _Slots(int(bits.sum()), tuple(groups))


@functools.lru_cache(maxsize=64)
def _scrambler(nbits: int) -> U8:
    rng = np.random.default_rng(0x5C4A)
    out: U8 = rng.integers(0, 2, nbits).astype(np.uint8)
    return out


def _scramble(bits: U8) -> U8:
    # One sequence long enough for the largest frame, reused from its start for every frame.
    seq = _scrambler(1 << 20)
    out: U8 = bits ^ seq[: bits.size]
    return out


@dataclass(frozen=True, slots=True)
class Plan:
    """How a payload of ``nbytes`` is coded in ``mode``."""

    nbytes: int
    codewords: int
    shortened: int  #: information bits of the last codeword not sent (known zeros)
    coded: int  #: coded bits sent
    symbols: int  #: OFDM symbols of payload


def plan(profile: OfdmProfile, mode: Mode, nbytes: int) -> Plan:
    code = ldpc.get_code(mode.rate, CODE_LENGTH)
    nbits = 8 * nbytes
    words = max(1, -(-nbits // code.k))
    short = words * code.k - nbits
    coded = words * code.n - short
    row = _slots(profile, mode).row_bits
    return Plan(nbytes, words, short, coded, -(-coded // row))


def _sent_mask(code: ldpc.LdpcCode, p: Plan) -> npt.NDArray[np.bool_]:
    mask = np.ones((p.codewords, code.n), dtype=bool)
    if p.shortened:
        mask[-1, code.k - p.shortened : code.k] = False
    return mask


def encode(profile: OfdmProfile, mode: Mode, data: bytes) -> C128:
    """Values of the data carriers, ``(symbols, data carriers)``, for the payload ``data``."""
    code = ldpc.get_code(mode.rate, CODE_LENGTH)
    p = plan(profile, mode, len(data))
    slots = _slots(profile, mode)
    bits = _scramble(np.unpackbits(np.frombuffer(data, dtype=np.uint8)))
    info = np.zeros(p.codewords * code.k, dtype=np.uint8)
    info[: bits.size] = bits
    words = code.encode(info.reshape(p.codewords, code.k))
    coded = words[_sent_mask(code, p)]
    channel = np.asarray(Interleaver(p.coded, slots.row_bits).forward(coded), dtype=np.uint8)
    rows = np.empty(p.symbols * slots.row_bits, dtype=np.uint8)
    rows[: p.coded] = channel
    rows[p.coded :] = _scrambler(slots.row_bits)[: rows.size - p.coded]  # fill the last symbol
    rows2 = rows.reshape(p.symbols, slots.row_bits)
    out = np.zeros((p.symbols, profile.layout.ndata), dtype=np.complex128)
    for b, carriers, positions in slots.groups:
        qam = get_constellation(NAMES[b])
        out[:, carriers] = qam.modulate(rows2[:, positions].reshape(-1)).reshape(p.symbols, -1)
    return out


@dataclass(frozen=True, slots=True)
class Decoded:
    data: bytes
    ok: bool  #: every codeword passed its parity checks
    failed: int  #: codewords that did not
    iterations: int  #: most iterations any codeword took


def decode(profile: OfdmProfile, mode: Mode, nbytes: int, values: C128, noise: F64) -> Decoded:
    """The payload from the equalised data carriers and their noise variances."""
    code = ldpc.get_code(mode.rate, CODE_LENGTH)
    p = plan(profile, mode, nbytes)
    slots = _slots(profile, mode)
    llr_rows = np.zeros((p.symbols, slots.row_bits), dtype=np.float32)
    for b, carriers, positions in slots.groups:
        qam = get_constellation(NAMES[b])
        llr = qam.demap(values[: p.symbols, carriers], noise[: p.symbols, carriers])
        llr_rows[:, positions.reshape(-1)] = llr.reshape(p.symbols, -1)
    channel = llr_rows.reshape(-1)[: p.coded]
    coded = np.asarray(Interleaver(p.coded, slots.row_bits).inverse(channel), dtype=np.float32)
    full = np.full((p.codewords, code.n), ldpc.LLR_CLIP, dtype=np.float32)
    full[_sent_mask(code, p)] = coded
    result = code.decode(full, max_iterations=MAX_ITERATIONS)
    bits = np.asarray(result.bits, dtype=np.uint8).reshape(-1)[: 8 * nbytes]
    data = np.packbits(_scramble(bits)).tobytes()
    ok = np.asarray(result.ok, dtype=bool)
    return Decoded(data, bool(ok.all()), int((~ok).sum()), int(np.max(result.iterations)))
