"""Helpers for the OFDM PHY tests: frames to samples, samples through a receiver."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.base import ReceivedFrame
from audionet.modem.phy.ofdm import OfdmPhy

F32 = npt.NDArray[np.float32]


def transmit(phy: OfdmPhy, frames: list[bytes], lead: int = 1000, tail: int = 1000) -> F32:
    """Silence, the frames back to back, silence."""
    mod = phy.modulator()
    parts = [np.zeros(lead, np.float32), *(mod.modulate(f) for f in frames)]
    return np.concatenate([*parts, np.zeros(tail, np.float32)])


def receive(phy: OfdmPhy, samples: npt.ArrayLike, chunk: int = 4096) -> list[ReceivedFrame]:
    """Every frame a fresh receiver finds in ``samples`` fed ``chunk`` at a time."""
    x = np.asarray(samples, dtype=np.float32)
    rx = phy.demodulator()
    out: list[ReceivedFrame] = []
    for i in range(0, x.size, chunk):
        out += rx.feed(x[i : i + chunk])
    out += rx.feed(np.zeros(phy.sample_rate // 2, np.float32))
    return out


def payloads(rng: np.random.Generator, count: int, size: int) -> list[bytes]:
    return [rng.bytes(size) for _ in range(count)]
