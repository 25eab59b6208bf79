"""Helpers for the AudioSocket tests: test audio, a raw misbehaving peer, echo checking, and a
ticker for the call clock in virtual time."""

from __future__ import annotations

import asyncio
import math
import uuid

import numpy as np

from audionet.audiosocket.proto import encode_uuid
from audionet.audiosocket.schedule import SLOT

FRAME = 320


class FakeTicker:
    """The shared ticker in virtual time: deadlines every SLOT from 0; ``behind`` (how late the
    last tick started) as the test sets it."""

    behind = 0.0

    def align(self, t: float) -> float:
        return math.ceil(t / SLOT - 1e-6) * SLOT

    def place(self, member: object) -> None:
        pass


def tagged_audio(seconds: float, seed: int = 1, rate: int = 8000) -> bytes:
    """Distinct non-silent audio: no 20 ms frame of it is all zeros."""
    n = int(seconds * rate)
    rng = np.random.default_rng(seed)
    return (rng.integers(1, 3000, n) * rng.choice([-1, 1], n)).astype("<i2").tobytes()


def strip_silence(received: bytes | bytearray, frame: int = FRAME) -> bytes:
    """The received audio without the all-zero frames the paced clock sends when idle."""
    zero = bytes(frame)
    return b"".join(
        received[i : i + frame]
        for i in range(0, len(received), frame)
        if received[i : i + frame] != zero
    )


class RawPeer:
    """A raw TCP peer that can break the protocol on purpose."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, send_uuid: bool = True) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = cls(reader, writer)
        if send_uuid:
            peer.send(encode_uuid(uuid.uuid4()))
        return peer

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read_all(self, timeout: float = 5.0) -> bytes:
        """Everything until the server closes."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()


def ends_with_hangup(data: bytes) -> bool:
    """Whether a server's byte stream is well formed and ends with exactly one hangup message."""
    pos = 0
    last = None
    while pos + 3 <= len(data):
        last = data[pos]
        pos += 3 + int.from_bytes(data[pos + 1 : pos + 3], "big")
    return pos == len(data) and last == 0


TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}


def socket_states(port: int) -> list[tuple[int, int, str]]:
    """Every TCP socket of this network namespace with ``port`` at either end, from the kernel's
    socket table (/proc/net/tcp and tcp6): (local port, remote port, state)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = int(fields[2].rsplit(":", 1)[1], 16)
                if port in (local, remote):
                    found.append((local, remote, TCP_STATES.get(fields[3], fields[3])))
    return found
