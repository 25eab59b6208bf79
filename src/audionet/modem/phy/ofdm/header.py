"""The PHY header: what a frame's payload is, and what the sender heard from its peer.

Sent in the robust mode right after the training symbols: a rate-1/2 LDPC codeword (802.11n,
n = 648, shortened to the header's bits) on BPSK (``ofdm``) or QPSK (``ofdm-phone``) carriers,
repeated to fill the header symbols (the repeats' LLRs add up). It works about 20 dB below what
any payload mode needs, so a receiver learns the mode even of a frame it then fails to decode.

Fields (``G`` = the profile's carrier groups), most significant bit first::

    version 2 | payload bytes 17 | code rate 2 | bit loading G x 3
    | feedback present 1 | feedback losses 2 | feedback SNR G x 5 | CRC-16 (ITU-T X.25 / HDLC) 16

*Feedback* is this station's measurement of the line from its peer (the SNR of each carrier group
in 2 dB steps, averaged over recent frames, and how many of the peer's recent frames failed to
decode): the peer's transmitter picks its next modes from it. So each direction of a full-duplex
link adapts to its own line with no extra frames.
"""

from __future__ import annotations

import binascii
import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.ofdm import ldpc
from audionet.modem.phy.ofdm.mode import LOADS, RATES, Mode
from audionet.modem.phy.ofdm.profile import OfdmProfile

U8 = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

VERSION = 1
MAX_PAYLOAD = (1 << 17) - 1
SNR_STEP = 2.0  #: dB per unit of the feedback SNR
SNR_MAX = 31
HEADER_CODE = ("1/2", 648)


@dataclass(frozen=True, slots=True)
class Feedback:
    """What a station tells its peer about the peer's signal."""

    snr_db: tuple[float, ...]  #: per carrier group
    losses: int  #: of the peer's recent frames that failed to decode, 0..3 (3 = three or more)


@dataclass(frozen=True, slots=True)
class Header:
    length: int  #: payload bytes
    mode: Mode
    feedback: Feedback | None = None


def header_bits(p: OfdmProfile) -> int:
    return 2 + 17 + 2 + 3 * p.groups + 1 + 2 + 5 * p.groups + 16


def _to_bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _from_bits(bits: U8, start: int, width: int) -> int:
    out = 0
    for b in bits[start : start + width]:
        out = (out << 1) | int(b)
    return out


def _crc(bits: list[int]) -> int:
    padded = bits + [0] * (-len(bits) % 8)
    data = np.packbits(np.asarray(padded, dtype=np.uint8)).tobytes()
    return binascii.crc_hqx(data, 0xFFFF)


def pack(p: OfdmProfile, h: Header) -> U8:
    """The header's bits (before coding)."""
    bits = _to_bits(VERSION, 2) + _to_bits(h.length, 17) + _to_bits(RATES.index(h.mode.rate), 2)
    for b in h.mode.loading:
        bits += _to_bits(LOADS.index(b), 3)
    fb = h.feedback
    bits += [1 if fb else 0, *_to_bits(min(fb.losses, 3) if fb else 0, 2)]
    for g in range(p.groups):
        v = int(np.clip(np.floor(fb.snr_db[g] / SNR_STEP), 0, SNR_MAX)) if fb else 0
        bits += _to_bits(v, 5)
    bits += _to_bits(_crc(bits), 16)
    return np.asarray(bits, dtype=np.uint8)


def unpack(p: OfdmProfile, bits: U8) -> Header | None:
    """The header from its bits, or ``None`` if the CRC or a field is wrong."""
    body = [int(b) for b in bits[:-16]]
    if _crc(body) != _from_bits(bits, len(body), 16):
        return None
    if _from_bits(bits, 0, 2) != VERSION:
        return None
    length = _from_bits(bits, 2, 17)
    rate = _from_bits(bits, 19, 2)
    pos = 21
    loads = []
    for _ in range(p.groups):
        code = _from_bits(bits, pos, 3)
        pos += 3
        if code >= len(LOADS):
            return None
        loads.append(LOADS[code])
    if not any(loads) or length == 0:
        return None
    present = bool(bits[pos])
    losses = _from_bits(bits, pos + 1, 2)
    pos += 3
    snr = tuple(SNR_STEP * _from_bits(bits, pos + 5 * g, 5) for g in range(p.groups))
    feedback = Feedback(snr, losses) if present else None
    return Header(length, Mode(tuple(loads), RATES[rate]), feedback)


@functools.cache
def _plan(p: OfdmProfile) -> tuple[int, npt.NDArray[np.int64], U8]:
    """Transmitted bits per header, which of them each header slot carries, and the scrambler."""
    nbits = header_bits(p)
    code = ldpc.get_code(*HEADER_CODE)
    sent = nbits + (code.n - code.k)
    slots = p.header_symbols * p.layout.ndata * p.header_bits
    if slots < sent:
        raise ValueError(f"profile {p.name}: {slots} header slots for {sent} bits")
    rng = np.random.default_rng(0x4EAD)
    order = rng.permutation(slots)
    which = np.empty(slots, dtype=np.int64)
    which[order] = np.arange(slots) % sent  # repeats spread over the carriers
    scramble = rng.integers(0, 2, nbits).astype(np.uint8)
    return sent, which, scramble


def encode(p: OfdmProfile, h: Header) -> U8:
    """Coded header bits for the header symbols' slots (``header_symbols x data x header_bits``)."""
    _sent, which, scramble = _plan(p)
    code = ldpc.get_code(*HEADER_CODE)
    bits = pack(p, h) ^ scramble
    info = np.zeros(code.k, dtype=np.uint8)
    info[: bits.size] = bits
    word = code.encode(info)
    tx = np.concatenate((word[: bits.size], word[code.k :]))
    out: U8 = tx[which]
    return out


def decode(p: OfdmProfile, llr: F64) -> Header | None:
    """The header from the LLRs of its slots, or ``None``."""
    sent, which, scramble = _plan(p)
    code = ldpc.get_code(*HEADER_CODE)
    combined = np.bincount(which, weights=llr, minlength=sent)
    nbits = scramble.size
    full = np.full(code.n, ldpc.LLR_CLIP, dtype=np.float64)  # shortened bits: known zeros
    full[:nbits] = combined[:nbits]
    full[code.k :] = combined[nbits:]
    result = code.decode(full, max_iterations=30)
    if not bool(result.ok):
        return None
    return unpack(p, np.asarray(result.bits[:nbits], dtype=np.uint8) ^ scramble)
