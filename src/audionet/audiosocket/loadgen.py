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
first and start their audio ``settle`` seconds later (1 s), so the measurement is of established
calls, not of a burst of call set-ups; and not all in the same 20 ms either: the slots start one
after the other over ``ramp`` seconds (0.5 s), as real calls start talking at different moments
(a thousand calls whose first frames all arrive within one period hit a paced server with every
call's switch from its own silence to the caller's audio at once). The measurement (``duration``,
``on_audio(True)``, the generator's CPU) starts when the last slot has started. Each frame's payload starts with the call's number
and a sequence number, so an echoed frame is counted once; frames never echoed back are lost.

Echo latency is measured on a sample of the calls, and the rest are read in batches. On loopback
the ``send`` of each frame costs most of the generator's CPU (it also runs the receiving side's TCP
work); reading every echo as it arrives cost almost as much again (an epoll event, a ``recv`` and
a parse per frame), which made the generator, not the server, the limit of a benchmark. So only
about ``latency_sample`` of the calls (an eighth, spread over all slots) are in the epoll: the
generator wakes for their echoes, and their frames carry the monotonic time they were sent, so
latency is from the send to the moment the echo is read, as before. Every other call is read
without being waited for, once every five periods (about five frames a ``recv``), from the slot
timer. Lost frames are counted exactly on every call: each frame sent must come back, with the
call's number and a sequence number above the last one echoed (so a frame skipped or repeated by
the server is lost), and after the audio every call is read until all its frames are back or the
``grace`` time is over. The generator measures its own lateness the way the server's clock does
(after the last frame of a slot was written, against the slot's deadline) and its own CPU time, and
reports them beside the results.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
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
#: The part of the tag rewritten before each send: the sequence number (and, on a sampled call, the
#: send time; the other calls' echoes give no latency, and their tag keeps a send time of 0).
_SEQ_OFFSET = HEADER_SIZE + 4
_SEQ = struct.Struct(">I")
_SEQ_TIME = struct.Struct(">Id")
#: Share of the calls whose echoes are read at once and timed (the others are read in batches).
LATENCY_SAMPLE = 0.125
#: Seconds over which the slots start their audio, one after the other.
RAMP = 0.5
#: A batched call is read once every this many periods: about five frames per read.
_BATCH_PERIODS = 5
#: Latency histogram: 10 us bins up to 2 s (the last bin collects everything above).
_BIN = 1e-5
_BINS = 200_000
_RECV_SIZE = 1 << 16
#: select() takes descriptors below this only (glibc's FD_SETSIZE).
_FD_SETSIZE = 1024


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
    #: Frames sent per second per call while measured (after the ramp; 50 when the generator
    #: kept up: ``frames_sent`` also holds the frames of the ramp).
    send_rate: float = 0.0
    #: Calls the server ended before their audio began (refused: a hangup message at once).
    refused: int = 0
    #: Audio messages (echoes and anything else, silence too) the server sent per second per call
    #: while measured: the mean over the calls, and the most any one call received. Each call's
    #: rate is taken between its first and its last read in that time (exact to a frame).
    recv_rate: float = 0.0
    recv_rate_max: float = 0.0

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


def _connect(
    host: str, port: int, calls: int, timeout: float, call_rate: float = 0.0
) -> list[socket.socket]:
    socks: list[socket.socket] = []
    begin = time.monotonic()
    end = begin + timeout + (calls / call_rate if call_rate > 0 else 0.0)
    try:
        for n in range(calls):
            if call_rate > 0 and (wait := begin + n / call_rate - time.monotonic()) > 0:
                time.sleep(wait)  # calls placed at ``call_rate`` a second, as they come in
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
    *,
    latency_sample: float = LATENCY_SAMPLE,
    ramp: float = RAMP,
    call_rate: float = 0.0,
) -> LoadResult:
    """Open ``calls`` calls, give the server ``settle`` s to answer them all, start their audio slot
    by slot over ``ramp`` s, send a 20 ms frame on each every 20 ms for ``duration`` s more, then
    wait up to ``grace`` s for the last echoes. Blocking; runs in the calling thread.
    ``on_audio(True)`` is called once every call sends audio, ``on_audio(False)`` as it stops (a
    benchmark measures the server over exactly that time). ``call_rate``: calls placed a second
    (0: as fast as they connect). About ``latency_sample``
    of the calls (the first of each slot always; 1: all) are read as soon as their echoes arrive and
    give the echo latency; the others are read in batches (see the module's docstring)."""
    if not 0 < latency_sample <= 1:
        raise ValueError(f"latency_sample must be in (0, 1], not {latency_sample}")
    if ramp < 0:
        raise ValueError(f"ramp must be at least 0 s, not {ramp}")
    kind = int(kind_for_rate(rate))
    size = frame_bytes(rate)
    msg_len = HEADER_SIZE + size
    if size < _TAG.size:
        raise ValueError(f"a {size}-byte frame cannot carry the {_TAG.size}-byte tag")
    # Whole frames of a batch: kind, length, call number, sequence number (the send time skipped).
    frames_in = struct.Struct(f">BHII{size - _TAG.size + 8}x").iter_unpack
    # The epoll first, so that its descriptor is a low number that select() takes (see wait()).
    ep = select.epoll(max(1, calls))
    try:
        socks = _connect(host, port, calls, connect_timeout, call_rate)
    except BaseException:
        ep.close()
        raise
    fds = [s.fileno() for s in socks]
    # Per call (index i, call number i + 1): a ready message whose sequence number (and, on a
    # sampled call, send time) is rewritten in place before each send.
    msgs = []
    for i in range(calls):
        m = bytearray(msg_len)
        m[0:3] = bytes([kind, size >> 8, size & 0xFF])
        _TAG.pack_into(m, _TAG_OFFSET, i + 1, 0, 0.0)
        m[HEADER_SIZE + _TAG.size :] = bytes((i * 7 + j) % 251 + 1 for j in range(size - _TAG.size))
        msgs.append(m)
    group_of = [i % phases for i in range(calls)]
    # The sampled calls: about ``latency_sample`` of each slot's calls, the slot's first always.
    sampled = [(i // phases * latency_sample) % 1 < latency_sample for i in range(calls)]
    recvs = [s.recv_into for s in socks]
    gseq = [0] * phases  # frames sent so far on each live call of a slot
    sent_by = [0] * calls  # frames sent on a call that has ended
    last = [0] * calls  # highest sequence number echoed back
    alive = [True] * calls
    partial: list[bytes] = [b""] * calls
    # Audio messages each call received, and (while measuring) the time and count of its first
    # and last read: the server's rate per call.
    heard = [0] * calls
    first_at = [0.0] * calls
    first_n = [0] * calls
    last_at = [0.0] * calls
    last_n = [0] * calls
    counting = [False]
    started = [False]
    ended_before_audio = [False] * calls
    hist = [0] * _BINS
    by_fd = [-1] * (max(fds, default=0) + 1)
    ep_fds = [ep.fileno()] if ep.fileno() < _FD_SETSIZE else []
    for i, fd in enumerate(fds):
        by_fd[fd] = i
        if sampled[i]:
            ep.register(fd, select.EPOLLIN | select.EPOLLET)
    # What each slot sends: (call index, fd, message, sampled) for its live calls, in call order.
    sends = [
        [(i, fds[i], msgs[i], sampled[i]) for i in range(g, calls, phases)] for g in range(phases)
    ]
    # Each slot's batched calls in _BATCH_PERIODS chunks: one chunk is read per period.
    batched = [i for i in range(calls) if not sampled[i]]
    chunks = [
        [[i for i in batched if i % phases == g][c::_BATCH_PERIODS] for c in range(_BATCH_PERIODS)]
        for g in range(phases)
    ]
    slot = PERIOD / phases
    rbuf = bytearray(_RECV_SIZE)
    rview = memoryview(rbuf)
    unpack_head = _FRAME_HEAD.unpack_from
    pack_seq = _SEQ.pack_into
    pack_seq_time = _SEQ_TIME.pack_into
    write = os.write
    monotonic = time.monotonic
    lateness: list[float] = []
    skipped = 0
    n_echoed = 0

    def end_call(i: int) -> None:
        if alive[i]:
            alive[i] = False
            ended_before_audio[i] = not started[0]
            g = group_of[i]
            sent_by[i] = gseq[g]
            if sampled[i]:
                ep.unregister(fds[i])
            sends[g] = [x for x in sends[g] if x[0] != i]

    def mark(i: int) -> None:
        # A read while measuring: the first sets where the call's count starts (what it brought
        # arrived before), each later one where it ends.
        t = monotonic()
        if first_at[i]:
            last_at[i], last_n[i] = t, heard[i]
        else:
            first_at[i], first_n[i] = t, heard[i]

    def read(i: int) -> None:
        # Reads the call's socket until a read returns less than the buffer: it is empty then.
        nonlocal n_echoed
        number = i + 1
        timed = sampled[i]
        n = _RECV_SIZE
        while n == _RECV_SIZE:
            try:
                n = recvs[i](rbuf)
            except BlockingIOError:
                return
            except OSError:
                n = 0
            if not n:
                end_call(i)
                return
            if not timed and not partial[i] and n % msg_len == 0:
                # A batch of whole frames (the usual read of a batched call). Every frame is
                # checked, so a skipped or repeated sequence number is not counted as an echo;
                # anything but a frame of this call's kind and size goes to the full parse below.
                top = last[i]
                got = 0
                for k, length, num, s in frames_in(rview[:n]):
                    if k != kind or length != size:
                        break
                    if num == number and s > top:
                        top = s
                        got += 1
                else:
                    last[i] = top
                    n_echoed += got
                    heard[i] += n // msg_len
                    if counting[0]:
                        mark(i)
                    continue
            now = monotonic() if timed else 0.0
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
                        heard[i] += 1
                        if num == number and s > last[i]:
                            last[i] = s
                            n_echoed += 1
                            if timed:
                                b = int((now - ts) / _BIN)
                                hist[b if b < _BINS else _BINS - 1] += 1
                        pos += msg_len
                        continue
                # anything else (a short tail of audio, a hangup): skipped by its header
                stop = pos + HEADER_SIZE + (data[pos + 1] << 8 | data[pos + 2])
                if stop > end:
                    break
                if data[pos] == 0x00:  # a hangup message from the server ends the call
                    end_call(i)
                elif 0x10 <= data[pos] <= 0x18 and stop > pos + HEADER_SIZE:
                    heard[i] += 1
                pos = stop
            if pos < end:
                partial[i] = bytes(data[pos:end])
            if counting[0]:
                mark(i)

    def receive() -> None:
        # The sampled calls whose echoes have arrived (edge-triggered: each is read empty).
        for fd, _ in ep.poll(0):
            read(by_fd[fd])

    def read_batch(batch: list[int]) -> None:
        for i in batch:
            if alive[i]:
                read(i)

    def wait(timeout: float) -> None:
        # Sleep until a sampled call's echo arrives (select() on the epoll's own descriptor: its
        # timeout is in microseconds, epoll's in milliseconds), then read what arrived. (A process
        # with over a thousand descriptors open before: select() cannot take the epoll's, so the
        # sleep is to the timeout and echoes are read after it.)
        if timeout > 0:
            select.select(ep_fds, [], [], timeout)
        receive()

    # Calls placed all at once would otherwise start their audio while the server is still accepting
    # the last of them, and a paced server would carry the frames that piled up meanwhile as a
    # standing delay for the rest of the call: the measurement is of established calls.
    settled = monotonic() + settle
    while (left := settled - monotonic()) > 0:
        wait(min(left, 0.05))
        read_batch(batched)
    begin = monotonic()
    started[0] = True
    # Slot g starts k_g periods late (k_g from 0 to about ramp / PERIOD); all send until ``stop``.
    k = [round(g * ramp / phases / PERIOD) for g in range(phases)]
    deadlines = [begin + (g + 1) * slot + k[g] * PERIOD for g in range(phases)]
    start = begin + k[-1] * PERIOD  # every slot sends from its first deadline after this
    stop = start + duration
    measuring = False
    cpu0 = 0.0
    gseq0 = [0] * phases
    phase = min(range(phases), key=deadlines.__getitem__)
    while True:
        deadline = deadlines[phase]
        if deadline >= stop:
            break
        now = monotonic()
        if now < deadline:
            wait(deadline - now)
            continue
        if not measuring and deadline >= start:
            measuring = True
            if on_audio is not None:
                on_audio(True)
            cpu0 = time.thread_time()
            start = monotonic()
            gseq0 = list(gseq)
            counting[0] = True
        q = gseq[phase] + 1
        gseq[phase] = q
        for i, fd, m, timed in sends[phase]:
            if timed:
                pack_seq_time(m, _SEQ_OFFSET, q, monotonic())
            else:
                pack_seq(m, _SEQ_OFFSET, q)
            try:
                if write(fd, m) != msg_len:
                    end_call(i)  # the kernel buffer is full: the server stopped reading
            except OSError:  # the connection is gone (or its buffer is full: not reading)
                end_call(i)
        end = monotonic()
        lateness.append(end - deadline)
        nxt = deadline + PERIOD
        if nxt <= end:
            missed = math.floor((end - nxt) / PERIOD) + 1
            skipped += missed
            nxt += missed * PERIOD
        deadlines[phase] = nxt
        # Read, without waiting, what arrived on the sampled calls while sending, then one chunk of
        # the batched calls of the slot that sends next (its frames were sent most of a period ago).
        receive()
        read_batch(chunks[(phase + 1) % phases][q % _BATCH_PERIODS])
        phase = min(range(phases), key=deadlines.__getitem__)
    if not measuring:  # a run too short to reach it
        if on_audio is not None:
            on_audio(True)
        cpu0, start, gseq0 = time.thread_time(), monotonic(), list(gseq)
    if on_audio is not None:
        on_audio(False)
    counting[0] = False
    cpu = time.thread_time() - cpu0
    wall = monotonic() - start
    # A frame whose send failed ended its call and counts as sent (and so as lost).
    expected = [gseq[group_of[i]] if alive[i] else sent_by[i] for i in range(calls)]
    sent = sum(expected)
    grace_end = monotonic() + grace
    while True:
        receive()
        read_batch([i for i in batched if last[i] < expected[i]])
        left = grace_end - monotonic()
        if n_echoed >= sent or left <= 0 or not any(alive):
            break
        wait(min(left, 0.005))
    completed = sum(alive)
    timed_echoes = sum(hist)
    rates = [
        (last_n[i] - first_n[i]) / (last_at[i] - first_at[i])
        for i in range(calls)
        if last_at[i] - first_at[i] > min(1.0, duration / 2)
    ]
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
        latency_p50=_hist_quantile(hist, timed_echoes, 0.5),
        latency_p99=_hist_quantile(hist, timed_echoes, 0.99),
        gen_lateness_p99=_quantile(lateness, 0.99),
        gen_ticks_skipped=skipped,
        gen_lateness_max=max(lateness, default=0.0),
        gen_cpu=cpu / wall if wall > 0 else 0.0,
        send_rate=sum(len(sends[g]) * (gseq[g] - gseq0[g]) for g in range(phases))
        / (sum(len(x) for x in sends) * wall)
        if sum(len(x) for x in sends) and wall > 0
        else 0.0,
        refused=sum(ended_before_audio),
        recv_rate=sum(rates) / len(rates) if rates else 0.0,
        recv_rate_max=max(rates, default=0.0),
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
    *,
    latency_sample: float = LATENCY_SAMPLE,
    ramp: float = RAMP,
    call_rate: float = 0.0,
) -> LoadResult:
    """:func:`drive_load` in a worker thread, for use from a running event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None,
        functools.partial(
            drive_load,
            host,
            port,
            calls,
            duration,
            rate,
            grace,
            phases,
            settle=settle,
            latency_sample=latency_sample,
            ramp=ramp,
        ),
    )
