"""A load generator: many concurrent Asterisk-like calls against an echo server, with timing.

It is built to cost the machine as little as possible per frame, so that it is not the bottleneck of
a benchmark: plain non-blocking sockets and one ``select.epoll`` (no event loop, no object per call,
no object per frame), every call's frame sent from one timer per tick. The 20 ms is cut into
``phases`` slots (8: 2.5 ms apart) and each call belongs to one slot, so calls are spread over the
period like real channels and each keeps an exact 20 ms cadence. Like a paced clock it never bursts:
a slot more than a period late skips the missed deadlines (counted in ``gen_ticks_skipped``).

Each call behaves like Asterisk's ``AudioSocket()`` application: it connects, sends its UUID first,
then one 320-byte signed-linear (0x10) frame every 20 ms without waiting for the server's audio (a
bare echo server never speaks first), and closes without a hangup message. All calls are placed
first and start their audio together ``settle`` seconds later (1 s), so the measurement is of
established calls, not of a burst of call set-ups. Each frame's payload starts with the call's number, a
sequence number and the monotonic time it was sent, so an echoed frame gives its round-trip latency
and is counted once; frames never echoed back are lost. The generator measures its own lateness the
way the server's clock does (after the last frame of a slot was written, against the slot's
deadline) and its own CPU time, and reports them beside the results.
"""

from __future__ import annotations

import asyncio
import functools
import math
import select
import socket
import struct
import time
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass

from audionet.audiosocket.proto import HEADER_SIZE, encode_uuid, frame_bytes, kind_for_rate
from audionet.errors import TimedOut

PERIOD = 0.020
#: Header and tag of a generated frame: kind, length, call number, sequence number, send time.
_FRAME_HEAD = struct.Struct(">BHIId")
_TAG_OFFSET = HEADER_SIZE
_TAG = struct.Struct(">IId")
#: Latency histogram: 10 us bins up to 2 s (the last bin collects everything above).
_BIN = 1e-5
_BINS = 200_000
_RECV_SIZE = 1 << 16


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
    #: Lateness of the generator's slowest slot (seconds), and its CPU time while sending / that time.
    gen_lateness_max: float = 0.0
    gen_cpu: float = 0.0

    @property
    def ok(self) -> bool:
        return self.completed == self.calls and self.frames_lost == 0 and self.frames_sent > 0


def _hist_quantile(hist: list[int], total: int, q: float) -> float:
    if not total:
        return 0.0
    rank = min(total - 1, int(q * total))
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen > rank:
            return (i + 1) * _BIN  # upper edge of the bin: never optimistic
    return _BINS * _BIN


def _quantile(data: list[float], q: float) -> float:
    if not data:
        return 0.0
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))]


def _connect(host: str, port: int, calls: int, timeout: float) -> list[socket.socket]:
    socks: list[socket.socket] = []
    end = time.monotonic() + timeout
    try:
        for _ in range(calls):
            left = end - time.monotonic()
            if left <= 0:
                raise TimedOut(
                    f"could not open {calls} calls to {host}:{port} within {timeout:g} s"
                )
            try:
                s = socket.create_connection((host, port), timeout=left)
            except TimeoutError:
                raise TimedOut(
                    f"could not open {calls} calls to {host}:{port} within {timeout:g} s"
                ) from None
            socks.append(s)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(encode_uuid(uuid_mod.uuid4()))
            s.setblocking(False)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def drive_load(
    host: str,
    port: int,
    calls: int,
    duration: float,
    rate: int = 8000,
    grace: float = 1.0,
    phases: int = 8,
    connect_timeout: float = 30.0,
    settle: float = 1.0,
    on_audio: Callable[[bool], None] | None = None,
) -> LoadResult:
    """Open ``calls`` calls, give the server ``settle`` s to answer them all, send a 20 ms frame on
    each every 20 ms for ``duration`` s, then wait up to ``grace`` s for the last echoes. Blocking;
    runs in the calling thread. ``on_audio(True)`` is called as the audio starts, ``on_audio(False)``
    as it stops (a benchmark measures the server over exactly that time)."""
    socks = _connect(host, port, calls, connect_timeout)
    kind = int(kind_for_rate(rate))
    size = frame_bytes(rate)
    msg_len = HEADER_SIZE + size
    if size < _TAG.size:
        raise ValueError(f"a {size}-byte frame cannot carry the {_TAG.size}-byte tag")
    # Per call (index i, call number i + 1): a ready message rewritten in place before each send.
    msgs = []
    for i in range(calls):
        m = bytearray(msg_len)
        m[0:3] = bytes([kind, size >> 8, size & 0xFF])
        m[HEADER_SIZE + _TAG.size :] = bytes((i * 7 + j) % 251 + 1 for j in range(size - _TAG.size))
        msgs.append(m)
    sends = [s.send for s in socks]
    recvs = [s.recv_into for s in socks]
    seq = [0] * calls
    last = [0] * calls  # highest sequence number echoed back
    alive = [True] * calls
    partial: list[bytes] = [b""] * calls
    hist = [0] * _BINS
    max_fd = max(s.fileno() for s in socks) if socks else 0
    by_fd = [-1] * (max_fd + 1)
    ep = select.epoll(max(1, calls))
    for i, sock in enumerate(socks):
        by_fd[sock.fileno()] = i
        ep.register(sock.fileno(), select.EPOLLIN | select.EPOLLET)
    groups = [list(range(g, calls, phases)) for g in range(phases)]
    slot = PERIOD / phases
    rbuf = bytearray(_RECV_SIZE)
    rview = memoryview(rbuf)
    pack_tag = _TAG.pack_into
    unpack_head = _FRAME_HEAD.unpack_from
    monotonic = time.monotonic
    lateness: list[float] = []
    skipped = 0
    n_echoed = 0

    def receive(events: list[tuple[int, int]]) -> None:
        # Edge-triggered: each ready socket is read until a read returns less than the buffer.
        nonlocal n_echoed
        for fd, _ in events:
            i = by_fd[fd]
            number = i + 1
            n = _RECV_SIZE
            while n == _RECV_SIZE:
                try:
                    n = recvs[i](rbuf)
                except BlockingIOError:
                    break
                except OSError:
                    n = 0
                if not n:
                    alive[i] = False
                    ep.unregister(fd)
                    break
                now = monotonic()
                data: bytes | bytearray = rbuf
                end = n
                if partial[i]:
                    data = partial[i] + rview[:n]
                    end = len(data)
                    partial[i] = b""
                pos = 0
                while end - pos >= HEADER_SIZE:
                    if end - pos >= msg_len:
                        k, length, num, s, ts = unpack_head(data, pos)
                        if k == kind and length == size:
                            if num == number and s > last[i]:
                                last[i] = s
                                n_echoed += 1
                                b = int((now - ts) / _BIN)
                                hist[b if b < _BINS else _BINS - 1] += 1
                            pos += msg_len
                            continue
                    # anything else (a short tail of audio, a hangup): skipped by its header
                    stop = pos + HEADER_SIZE + (data[pos + 1] << 8 | data[pos + 2])
                    if stop > end:
                        break
                    if data[pos] == 0x00:  # a hangup message from the server ends the call
                        alive[i] = False
                    pos = stop
                if pos < end:
                    partial[i] = bytes(data[pos:end])

    def wait(timeout: float) -> None:
        # Sleep without waking up for each echoed frame (select() with no descriptors has a
        # microsecond timeout); what arrived meanwhile is read after each slot's sends.
        if timeout > 0:
            select.select([], [], [], timeout)
        receive(ep.poll(0))

    # Calls placed all at once would otherwise start their audio while the server is still accepting
    # the last of them, and a paced server would carry the frames that piled up meanwhile as a
    # standing delay for the rest of the call: the measurement is of established calls.
    settled = monotonic() + settle
    while (left := settled - monotonic()) > 0:
        wait(min(left, 0.05))
    if on_audio is not None:
        on_audio(True)
    cpu0 = time.thread_time()
    start = monotonic()
    deadlines = [start + (g + 1) * slot for g in range(phases)]
    stop = start + duration
    phase = 0
    while True:
        deadline = deadlines[phase]
        if deadline >= stop:
            break
        now = monotonic()
        if now < deadline:
            wait(deadline - now)
            continue
        for i in groups[phase]:
            if not alive[i]:
                continue
            q = seq[i] + 1
            seq[i] = q
            m = msgs[i]
            pack_tag(m, _TAG_OFFSET, i + 1, q, monotonic())
            try:
                if sends[i](m) != msg_len:
                    alive[i] = False  # the kernel buffer is full: the server stopped reading
            except OSError:  # the connection is gone (or its buffer is full: not reading)
                alive[i] = False
        end = monotonic()
        lateness.append(end - deadline)
        nxt = deadline + PERIOD
        if nxt <= end:
            missed = math.floor((end - nxt) / PERIOD) + 1
            skipped += missed
            nxt += missed * PERIOD
        deadlines[phase] = nxt
        phase = min(range(phases), key=deadlines.__getitem__)
        # Read what arrived while sending, without waiting.
        receive(ep.poll(0))
    if on_audio is not None:
        on_audio(False)
    sent = sum(seq)
    cpu = time.thread_time() - cpu0
    wall = monotonic() - start
    grace_end = monotonic() + grace
    while n_echoed < sent:
        left = grace_end - monotonic()
        if left <= 0 or not any(alive):
            break
        wait(min(left, 0.05))
    completed = sum(alive)
    ep.close()
    for sock in socks:
        sock.close()  # like Asterisk: just close, no hangup message
    return LoadResult(
        calls=calls,
        completed=completed,
        duration=duration,
        frames_sent=sent,
        frames_echoed=n_echoed,
        frames_lost=sent - n_echoed,
        latency_p50=_hist_quantile(hist, n_echoed, 0.5),
        latency_p99=_hist_quantile(hist, n_echoed, 0.99),
        gen_lateness_p99=_quantile(lateness, 0.99),
        gen_ticks_skipped=skipped,
        gen_lateness_max=max(lateness, default=0.0),
        gen_cpu=cpu / wall if wall > 0 else 0.0,
    )


async def run_load(
    host: str,
    port: int,
    calls: int,
    duration: float,
    rate: int = 8000,
    grace: float = 1.0,
    phases: int = 8,
    settle: float = 1.0,
) -> LoadResult:
    """:func:`drive_load` in a worker thread, for use from a running event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None,
        functools.partial(
            drive_load, host, port, calls, duration, rate, grace, phases, settle=settle
        ),
    )
