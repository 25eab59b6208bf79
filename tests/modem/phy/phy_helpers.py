"""Helpers for PHY tests: a stand-in frame layer for PHY tests: length-prefixed frames with a CRC-32 over the payload."""

from __future__ import annotations

import zlib

import numpy as np

from audionet.modem.phy import ManchesterPhy


class LengthFraming:
    """``len (2 bytes, big-endian) | len ^ 0xFFFF (2 bytes) | payload | CRC-32 (4 bytes)``."""

    header_size = 4

    def total_length(self, header: bytes) -> int | None:
        n = int.from_bytes(header[:2], "big")
        if int.from_bytes(header[2:4], "big") != n ^ 0xFFFF:
            return None
        return 4 + n + 4

    @staticmethod
    def make(payload: bytes) -> bytes:
        n = len(payload)
        crc = zlib.crc32(payload).to_bytes(4, "big")
        return n.to_bytes(2, "big") + (n ^ 0xFFFF).to_bytes(2, "big") + payload + crc

    @staticmethod
    def valid(frame: bytes) -> bool:
        return zlib.crc32(frame[4:-4]).to_bytes(4, "big") == frame[-4:]


def frames_signal(
    phy: ManchesterPhy, frames: list[bytes], lead: int = 300, tail: int = 500
) -> tuple[np.ndarray, list[int]]:
    """Silence, the frames back to back, silence; and the sample where each frame begins."""
    mod = phy.modulator()
    parts = [np.zeros(lead, np.float32)]
    starts = []
    pos = lead
    for f in frames:
        s = mod.modulate(f)
        starts.append(pos)
        parts.append(s)
        pos += s.size
    parts.append(np.zeros(tail, np.float32))
    return np.concatenate(parts), starts


def random_frames(rng: np.random.Generator, count: int, low: int, high: int) -> list[bytes]:
    return [LengthFraming.make(rng.bytes(int(rng.integers(low, high + 1)))) for _ in range(count)]
