"""Batched UDP for the server on Linux: ``recvmmsg(2)`` and ``sendmmsg(2)`` through ctypes.

asyncio's datagram path costs, per packet, one readiness wake-up, one ``recvfrom``, a Python call
with a new ``bytes`` and a new address tuple, and one ``sendto``. Here one readiness callback
(``loop.add_reader`` on the non-blocking socket) takes up to :data:`BATCH` datagrams with one
``recvmmsg`` and sends all their answers with one ``sendmmsg``:

* Datagram *i* lands in slot *i* of one anonymous ``mmap`` (:data:`SLOT` bytes each: any UDP payload
  fits, so nothing is ever truncated) and its source address in sockaddr storage *i*.
* The answer is written over the query in the same slot (the ID is already in place, so a cached
  answer is one slice assignment), and send header *j* points at slot *j* and at the same sockaddr
  storage the receive filled: no address is parsed or built. Only the send lengths are written per
  packet, through a ``memoryview`` cast over the iovec array. When a packet gets no answer (it is
  dropped, as on the asyncio path) the later send headers are re-pointed for this batch and
  restored after.
* Metrics are the same counters as the asyncio path, added up once per batch.
* Response rate limiting (when the server has a limiter) is decided once per batch: the source
  addresses are read from the sockaddr slots in one strided slice, counted per address, and each
  distinct network's bucket is asked for its count at once (:meth:`MmsgUdp._limits`). Only when
  some network is out of tokens is a per-packet verdict list made; a limited packet's slot then
  gets the truncated reply or nothing, as on the asyncio path.

The answers come from the same :class:`~audionet.dns.server.DnsServer` answer cache and
:meth:`~audionet.dns.server.DnsServer.answer`, so they are byte-identical to the asyncio path's.
A send that would block is not retried (UDP; the client retries): those answers are counted in
:attr:`MmsgUdp.send_dropped` and in the server's metrics (``aodns_answers_dropped_total``). A send
error for one address (say a spoofed source port 0) skips that one answer. After :data:`ROUNDS`
full batches the callback returns to the event loop, so TCP and the publisher still get their turn
under a flood.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import mmap
import os
import socket
import sys
import time
from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING

from audionet.dns.proto.rrl import Verdict

if TYPE_CHECKING:
    from audionet.dns.server import DnsServer

log = logging.getLogger(__name__)

#: Datagrams per recvmmsg/sendmmsg call (NSD takes up to 100, NUM_RECV_PER_SELECT in server.c);
#: under dnsperf on loopback our batches average 30-50, so 64 is rarely the limit.
BATCH = 64
#: Full batches handled per readiness callback before yielding to the event loop.
ROUNDS = 8
#: Bytes per slot: the largest UDP payload (65507 over IPv4, 65527 over IPv6) and the largest answer
#: (a requester's EDNS size is at most 65535) both fit. The mmap is allocated lazily, so only the
#: pages packets touch are ever backed by memory.
SLOT = 65536
#: sizeof(struct sockaddr_storage)
_SOCKADDR_STORAGE = 128
#: The source address length the kernel writes for each family (sockaddr_in, sockaddr_in6).
_ADDRLEN = {socket.AF_INET: 16, socket.AF_INET6: 28}
_MSG_DONTWAIT = 0x40
#: Slot i starts at i * _STRIDE: one cache line more than a slot, so the slots' first lines fall in
#: different cache sets (with a 64 KiB stride they would all share the same few ways). It costs
#: nothing; on the loopback benchmark it made no measurable difference.
_STRIDE = SLOT + 64
#: The fields of an answer cache entry (see DnsServer._cache): metrics key, length, truncated.
_KEY = itemgetter(1)
_LEN = itemgetter(2)
_TC = itemgetter(3)
#: Where the address sits in a sockaddr slot: sockaddr_in's sin_addr at byte 4 (one 32-bit word),
#: sockaddr_in6's sin6_addr at byte 8 (two 64-bit words).
_V4_WORD = 1
_V6_WORDS = (1, 2)
_SLOT_WORDS4 = _SOCKADDR_STORAGE // 4
_SLOT_WORDS8 = _SOCKADDR_STORAGE // 8
#: Up to this many distinct sources in a batch are counted with ``list.count`` (each a C loop) and
#: their buckets asked once each; beyond, each datagram's bucket is asked in turn.
FEW_SOURCES = 8
#: No limiting this batch: every verdict is "answer".
_ALL_ANSWER = repeat(Verdict.ANSWER)


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint)]


class _Libc:
    """The two calls, bound once (``None`` when this platform's C library lacks them)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.recvmmsg = libc.recvmmsg
        self.recvmmsg.argtypes = [
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_void_p,
        ]
        self.recvmmsg.restype = ctypes.c_int
        self.sendmmsg = libc.sendmmsg
        self.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
        self.sendmmsg.restype = ctypes.c_int


_libc: _Libc | None = None
_why_not: str | None = None


def unavailable() -> str | None:
    """Why batched UDP cannot be used here (``None``: it can)."""
    global _libc, _why_not
    if _libc is not None or _why_not is not None:
        return _why_not
    if not sys.platform.startswith("linux"):
        _why_not = f"recvmmsg/sendmmsg are Linux calls (this is {sys.platform})"
    elif ctypes.sizeof(ctypes.c_size_t) != 8 or ctypes.sizeof(ctypes.c_void_p) != 8:
        _why_not = "batched UDP is written for 64-bit platforms"
    else:
        try:
            libc = _Libc()
        except (OSError, AttributeError) as e:
            _why_not = f"the C library has no recvmmsg/sendmmsg ({e})"
        else:
            _why_not = _probe(libc)
            if _why_not is None:
                _libc = libc
    return _why_not


def _probe(libc: _Libc) -> str | None:
    """Call both on a fresh socket: a kernel or sandbox (seccomp) may refuse them (ENOSYS, EPERM)."""
    hdr = (_Mmsghdr * 1)()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fd = sock.fileno()
        if libc.recvmmsg(fd, ctypes.addressof(hdr), 1, _MSG_DONTWAIT, None) < 0:
            err = ctypes.get_errno()
            if err not in (errno.EAGAIN, errno.EWOULDBLOCK):
                return f"recvmmsg failed: {os.strerror(err)}"
        if libc.sendmmsg(fd, ctypes.addressof(hdr), 0, _MSG_DONTWAIT) < 0:
            return f"sendmmsg failed: {os.strerror(ctypes.get_errno())}"
    return None


class MmsgUdp:
    """Answer ``server``'s UDP queries on ``sock`` in batches; :meth:`close` stops it."""

    def __init__(self, sock: socket.socket, server: DnsServer, batch: int = BATCH) -> None:
        why = unavailable()
        if why is not None or _libc is None:
            raise OSError(why)
        if sock.family not in _ADDRLEN or sock.type != socket.SOCK_DGRAM:
            raise ValueError("batched UDP needs an IPv4 or IPv6 datagram socket")
        self._recvmmsg = _libc.recvmmsg
        self._sendmmsg = _libc.sendmmsg
        self.sock = sock
        self.server = server
        self.batch = batch
        #: Answers not sent because the socket's send buffer was full (or the address refused).
        self.send_dropped = 0
        self.batches = 0
        self._fd = sock.fileno()
        self._buf = mmap.mmap(-1, _STRIDE * batch)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._buf))
        self._offsets = [i * _STRIDE for i in range(batch)]
        self._slots = [base + off for off in self._offsets]
        self._names = (ctypes.c_char * (_SOCKADDR_STORAGE * batch))()
        names = ctypes.addressof(self._names)
        self._name_addrs = [names + i * _SOCKADDR_STORAGE for i in range(batch)]
        self._riov = (_Iovec * batch)()
        self._siov = (_Iovec * batch)()
        self._rhdr = (_Mmsghdr * batch)()
        self._shdr = (_Mmsghdr * batch)()
        addrlen = _ADDRLEN[sock.family]
        for i in range(batch):
            self._riov[i].iov_base = self._slots[i]
            self._riov[i].iov_len = SLOT
            self._siov[i].iov_base = self._slots[i]
            for hdrs, iov, namelen in (
                (self._rhdr, self._riov, _SOCKADDR_STORAGE),
                (self._shdr, self._siov, addrlen),
            ):
                h = hdrs[i].msg_hdr
                h.msg_name = self._name_addrs[i]
                h.msg_namelen = namelen
                h.msg_iov = ctypes.addressof(iov[i])
                h.msg_iovlen = 1
        self._rhdr_addr = ctypes.addressof(self._rhdr)
        self._shdr_addr = ctypes.addressof(self._shdr)
        # Per-packet fields read and written as integers, not through ctypes attributes.
        word = ctypes.sizeof(ctypes.c_void_p)
        hsize = ctypes.sizeof(_Mmsghdr)
        self._hsize = hsize
        self._lens = memoryview(self._rhdr).cast("B").cast("I")
        self._len0 = _Mmsghdr.msg_len.offset // 4
        self._lstep = hsize // 4
        self._siov_words = memoryview(self._siov).cast("B").cast("Q")
        self._shdr_words = memoryview(self._shdr).cast("B").cast("Q")
        self._name0 = (_Mmsghdr.msg_hdr.offset + _Msghdr.msg_name.offset) // word
        self._hstep = hsize // word
        # The source addresses, as integers in memory order (keys of the server's network memo).
        self._v6 = sock.family == socket.AF_INET6
        self._names32 = memoryview(self._names).cast("B").cast("I")
        self._names64 = memoryview(self._names).cast("B").cast("Q")
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Serve from now on, on the running event loop."""
        loop = asyncio.get_running_loop()
        loop.add_reader(self._fd, self.on_readable)
        self._loop = loop

    def close(self) -> None:
        """Stop serving and close the socket (the buffers go with this object)."""
        loop = self._loop
        self._loop = None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)
        self.sock.close()

    def on_readable(self) -> None:
        """Receive, answer and send batches until the socket is drained (or :data:`ROUNDS`)."""
        batch = self.batch
        for _ in range(ROUNDS):
            n = self._recvmmsg(self._fd, self._rhdr_addr, batch, _MSG_DONTWAIT, None)
            if n <= 0:
                if n < 0:
                    err = ctypes.get_errno()
                    if err not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                        log.debug("recvmmsg: %s", errno.errorcode.get(err, err))
                return
            self.batches += 1
            count, moved = self._answer(n)
            if count:
                self._send(count)
            for j in range(moved, count):
                self._point(j, j)  # back to the one-to-one wiring
            if n < batch:
                return  # drained (more arriving meanwhile wakes us again)

    def _answer(self, n: int) -> tuple[int, int]:
        """Answer the ``n`` datagrams in the slots.

        Returns how many answers are ready to send and the first send header re-pointed (after a
        dropped packet; ``n`` when none was).
        """
        server = self.server
        cache_get = server._cache.get
        buf = self._buf
        # All the lengths in one call: a strided view over the msg_len fields.
        sizes = self._lens[self._len0 : self._len0 + n * self._lstep : self._lstep].tolist()
        verdicts = _ALL_ANSWER if server.rrl is None else self._limits(n)
        hits: list[tuple[bytes, tuple[int, int], int, int]] = []
        add_hit = hits.append
        out_lens: list[int] = []
        add_len = out_lens.append
        dropped = False
        miss_in = 0
        for off, size, verdict in zip(self._offsets, sizes, verdicts, strict=False):
            if verdict:
                miss_in += size  # (limited() counts it)
                out = server.limited(buf[off : off + size], verdict)
                if out is None:
                    add_len(0)
                    dropped = True
                else:
                    buf[off : off + len(out)] = out
                    add_len(len(out))
                continue
            hit = cache_get(buf[off + 2 : off + size])
            if hit is not None:
                buf[off + 2 : off + hit[2]] = hit[0]
                add_hit(hit)
                add_len(hit[2])
            else:
                miss_in += size
                out = server.answer(buf[off : off + size], None, cache=True)
                if out is None or len(out) > SLOT:
                    add_len(0)  # nothing to send for this one
                    dropped = True
                    continue
                buf[off : off + len(out)] = out
                add_len(len(out))
        if hits:  # the counters of the cached answers (answer() counts the others itself)
            m = server.metrics
            m.queries.update(map(_KEY, hits))
            m.bytes_in += sum(sizes) - miss_in
            m.bytes_out += sum(map(_LEN, hits))
            m.truncated += sum(map(_TC, hits))
        moved = n
        if dropped:
            kept = [(i, length) for i, length in enumerate(out_lens) if length]
            for j, (i, _) in enumerate(kept):
                if j != i:
                    self._point(j, i)
                    if moved == n:
                        moved = j
            out_lens = [length for _, length in kept]
        count = len(out_lens)
        if count:
            self._siov_words[1 : 2 * count : 2] = array("Q", out_lens)
        return count, moved

    def _limits(self, n: int) -> list[Verdict] | repeat[Verdict]:
        """Response rate limiting for the ``n`` datagrams in the slots: one verdict each.

        Each distinct source address is looked up once (its network through the server's memo)
        and its network's bucket asked for all its datagrams at once; the common case, nobody
        out of tokens, returns at once without a per-packet list.
        """
        server = self.server
        rrl = server.rrl
        assert rrl is not None
        if self._v6:
            a, b = _V6_WORDS
            step = _SLOT_WORDS8
            words = self._names64
            hi = words[a : n * step : step].tolist()
            sources: Sequence[object] = list(
                zip(hi, words[b : n * step : step].tolist(), strict=True)
            )
        else:
            step = _SLOT_WORDS4
            sources = self._names32[_V4_WORD : n * step : step].tolist()
        memo = server.networks
        now = time.monotonic()
        first = sources[0]
        if sources.count(first) == n:  # the usual batch under load: one busy resolver
            groups: Iterable[tuple[object, int]] = ((first, n),)
        else:
            distinct = dict.fromkeys(sources)
            if len(distinct) > FEW_SOURCES:
                # Many sources, mostly one datagram each: one bucket update per datagram.
                keys = [memo.get(source, -1) for source in sources]
                for i, key in enumerate(keys):
                    if key == -1:
                        keys[i] = server.network(sources[i], _packed(sources[i]))
                return rrl.verdicts(keys, now) or _ALL_ANSWER
            # A handful of sources: one C-level count and one bucket update each.
            groups = [(source, sources.count(source)) for source in distinct]
        short: dict[object, list[int]] | None = None  # source -> [answers left, network]
        for source, count in groups:
            key = memo.get(source, -1)
            if key == -1:
                key = server.network(source, _packed(source))
            if key is None:
                continue
            granted = rrl.admit(key, count, now)
            if granted < count:
                if short is None:
                    short = {}
                short[source] = [granted, key]
        if short is None:
            return _ALL_ANSWER
        verdicts: list[Verdict] = []
        for source in sources:
            left = short.get(source)
            if left is None:
                verdicts.append(Verdict.ANSWER)
            elif left[0]:
                left[0] -= 1
                verdicts.append(Verdict.ANSWER)
            else:
                verdicts.append(rrl.limit(left[1]))
        return verdicts

    def _point(self, j: int, i: int) -> None:
        """Send header ``j`` carries slot ``i``'s answer to slot ``i``'s address (after a drop)."""
        self._siov_words[2 * j] = self._slots[i]
        self._shdr_words[self._name0 + j * self._hstep] = self._name_addrs[i]

    def _send(self, count: int) -> None:
        """Send the first ``count`` answers; whatever cannot go now is counted, never waited for."""
        sent = 0
        while sent < count:
            k = self._sendmmsg(
                self._fd, self._shdr_addr + sent * self._hsize, count - sent, _MSG_DONTWAIT
            )
            if k > 0:
                sent += k
                continue
            err = ctypes.get_errno() if k < 0 else errno.EAGAIN  # 0: nothing sent, no reason
            if err == errno.EINTR:
                continue
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                self.send_dropped += count - sent  # never block; the clients retry
                self.server.metrics.send_dropped += count - sent
                break
            # This answer's address was refused (e.g. port 0): skip it, send the rest.
            log.debug("sendmmsg: %s", errno.errorcode.get(err, err))
            self.send_dropped += 1
            self.server.metrics.send_dropped += 1
            sent += 1


def _packed(source: object) -> bytes:
    """The address bytes of a source as :meth:`MmsgUdp._limits` reads it (memory-order words)."""
    if isinstance(source, tuple):
        return b"".join(w.to_bytes(8, sys.byteorder) for w in source)
    assert isinstance(source, int)
    return source.to_bytes(4, sys.byteorder)
