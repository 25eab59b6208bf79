"""A load generator: many concurrent Asterisk-like calls against an echo server, with timing.

All calls are driven from one 20 ms ticker (one timer per tick, not one per call) so the generator
itself stays cheap; its own lateness is measured and reported beside the results, so a run where the
generator was the bottleneck can be recognised. Each frame carries the call's number and a sequence
number, so every echoed frame is matched exactly (latency) and missing ones are counted (loss).
Calls start sending at once, like Asterisk's ``AudioSocket()`` application (a bare echo server never
speaks first).
"""

from __future__ import annotations

import asyncio
import struct
import time
import uuid as uuid_mod
from dataclasses import dataclass
from typing import cast

from audionet.audiosocket.clock import Ticker
from audionet.audiosocket.proto import AUDIO_RATES, encode_uuid, frame_bytes, kind_for_rate
from audionet.errors import TimedOut

_TAG = struct.Struct(">II")


@dataclass(frozen=True, slots=True)
class LoadResult:
    calls: int
    completed: int
    duration: float
    frames_sent: int
    frames_echoed: int
    frames_lost: int
    latency_p50: float
    latency_p99: float
    gen_lateness_p99: float
    gen_ticks_skipped: int

    @property
    def ok(self) -> bool:
        return self.completed == self.calls and self.frames_lost == 0 and self.frames_sent > 0


class _LoadCall(asyncio.Protocol):
    def __init__(self, number: int, rate: int) -> None:
        self.number = number
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: dict[int, float] = {}
        self.latencies: list[float] = []
        self.seq = 0
        self.closed = False
        size = frame_bytes(rate)
        self._head = struct.pack(">BH", kind_for_rate(rate), size)
        self._body = bytes((number * 7 + i) % 251 + 1 for i in range(size - _TAG.size))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.write(encode_uuid(uuid_mod.uuid4()))

    def send(self, now: float) -> None:
        if self.transport is None or self.closed:
            return
        self.seq += 1
        self.pending[self.seq] = now
        self.transport.write(self._head + _TAG.pack(self.number, self.seq) + self._body)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self.buf:
            data = bytes(self.buf) + data
            self.buf.clear()
        pos = 0
        end = len(data)
        pending = self.pending
        while end - pos >= 3:
            stop = pos + 3 + (data[pos + 1] << 8 | data[pos + 2])
            if stop > end:
                break
            if data[pos] in AUDIO_RATES and stop - pos >= 3 + _TAG.size:
                number, seq = _TAG.unpack_from(data, pos + 3)
                if number == self.number:
                    sent = pending.pop(seq, None)
                    if sent is not None:
                        self.latencies.append(now - sent)
            pos = stop
        if pos < end:
            self.buf += data[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


def _quantile(data: list[float], q: float) -> float:
    if not data:
        return 0.0
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))]


async def run_load(
    host: str,
    port: int,
    calls: int,
    duration: float,
    rate: int = 8000,
    grace: float = 1.0,
    connect_batch: int = 100,
    progress: object | None = None,
) -> LoadResult:
    """Open ``calls`` calls, send 20 ms frames on each for ``duration`` s, wait ``grace`` s for echoes."""
    loop = asyncio.get_running_loop()
    conns: list[_LoadCall] = []
    for start in range(0, calls, connect_batch):
        batch = [
            loop.create_connection(lambda n=n: _LoadCall(n, rate), host, port)  # type: ignore[misc]
            for n in range(start + 1, min(calls, start + connect_batch) + 1)
        ]
        try:
            done = await asyncio.wait_for(asyncio.gather(*batch), 10)
        except TimeoutError:
            raise TimedOut(f"could not open {calls} calls to {host}:{port} within 10 s") from None
        conns.extend(proto for _, proto in done)
    ticker = Ticker(loop)

    class _Driver:
        def __init__(self, share: list[_LoadCall]) -> None:
            self.share = share

        def tick(self) -> None:
            now = time.monotonic()
            for c in self.share:
                c.send(now)

    # One driver per phase of the ticker: the calls are spread over the 20 ms like real channels.
    drivers = [_Driver(conns[i :: ticker.phases]) for i in range(ticker.phases)]
    for d in drivers:
        ticker.add(d)
    await asyncio.sleep(duration)
    for d in drivers:
        ticker.discard(d)
    deadline = loop.time() + grace
    while loop.time() < deadline and any(c.pending for c in conns):
        await asyncio.sleep(0.05)
    completed = sum(1 for c in conns if not c.closed)
    for c in conns:
        if c.transport is not None:
            c.transport.close()  # like Asterisk: just close, no hangup message
    latencies = [x for c in conns for x in c.latencies]
    sent = sum(c.seq for c in conns)
    lost = sum(len(c.pending) for c in conns)
    await asyncio.sleep(0.05)
    return LoadResult(
        calls=calls,
        completed=completed,
        duration=duration,
        frames_sent=sent,
        frames_echoed=len(latencies),
        frames_lost=lost,
        latency_p50=_quantile(latencies, 0.5),
        latency_p99=_quantile(latencies, 0.99),
        gen_lateness_p99=ticker.lateness(0.99),
        gen_ticks_skipped=ticker.skipped,
    )
