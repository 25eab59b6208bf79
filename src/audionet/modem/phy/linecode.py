"""Constants and bit helpers shared by the Manchester transmitter and receiver.

Values come from the original implementation (SPEC §3): its preamble bytes, its inter-frame gap and
its rounded half-bits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: The original's preamble and start-of-frame bytes, sent least significant bit first:
#: 62 alternating bits starting with 1, then the start-of-frame ``11``.
PREAMBLE = bytes([0x55] * 7 + [0xD5])
PREAMBLE_BITS = 8 * len(PREAMBLE)
GAP_BYTES = 2  # zero bytes Manchester-coded after each frame (the original's inter-frame gap)
GAP_SILENCE = 64  # samples of silence after them (the original)
ROUNDING = 0.6  # level of the first and last sample of each half-bit, as a fraction of full level


def bytes_to_bits(data: bytes) -> npt.NDArray[np.uint8]:
    """Bits of ``data``, least significant bit of each byte first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")


def bits_to_bytes(bits: npt.NDArray[np.uint8]) -> bytes:
    """Inverse of :func:`bytes_to_bits` (``len(bits)`` a multiple of 8)."""
    return np.packbits(bits.astype(np.uint8), bitorder="little").tobytes()
