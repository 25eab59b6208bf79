"""One AudioSocket connection as an ``asyncio.Protocol``: the adapter between the event loop
and the protocol core (:class:`~audionet.audiosocket.proto.ServerConnection`).

It feeds received bytes to the core and hands the events to the server's handler, runs the call's
outgoing clock (:meth:`CallConnection.tick`, called by the shared ticker), writes every message in one
``transport.write`` on a TCP_NODELAY socket, and always sends a hangup message before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import weakref
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

from audionet.audio.codecs.g711 import alaw_decode, ulaw_decode
from audionet.audiosocket.call import Call
from audionet.audiosocket.clock import PERIOD, SLOT
from audionet.audiosocket.pacing import OutgoingAudio
from audionet.audiosocket.proto import (
    HANGUP_MESSAGE,
    HEADER,
    HEADER_SIZE,
    Audio,
    Connected,
    Dtmf,
    Error,
    Event,
    Hangup,
    ServerConnection,
    State,
    _audio,
    frame_bytes,
    kind_for_rate,
)

if TYPE_CHECKING:
    from audionet.audiosocket.server import AudioSocketServer

log = logging.getLogger(__name__)

#: Seconds a closing connection may take to flush before it is aborted (a peer that stopped reading).
CLOSE_GRACE = 2.0
_DECODERS = {"slin": None, "ulaw": ulaw_decode, "alaw": alaw_decode}

#: How early (s) a call may send its frame before the deadline, from the receive callback.
EARLY = 0.010
_HALF_EARLY = EARLY / 2
_SLOT = SLOT
_MAX_JUMP = round(EARLY / SLOT)
#: Seconds a backlog of queued replies must stand (found after every frame the caller sent) before
#: the clock catches up with it, up to a frame per period: a caller whose frames come in clumps,
#: whose queue runs dry between them, keeps the delay its jitter needs.
STANDING = 0.5

#: One receive buffer shared by every :class:`BufferedCallConnection` of a process: each read is
#: copied out of it before the loop does anything else, so it is never used by two reads at once.
_RECV_BUFFER = memoryview(bytearray(1 << 16))


_Fast = tuple[bytes, int, int, Callable[[Call, bytes], bytes | None] | None, bool]


def _fast_path(server: AudioSocketServer) -> _Fast:
    """The header of a whole frame of the server's kind, its payload size, the length of such a
    message when the fast path applies (else 0), the handler's ``audio_message``, and whether that
    is marked :func:`~audionet.audiosocket.server.echoes` (its reply is the message itself, so it
    need not be called): the same objects for every call of a server."""
    cached = _FAST.get(server)
    if cached is None:
        cfg = server.config
        frame = frame_bytes(cfg.rate)
        hook = getattr(server.handler, "audio_message", None)
        ready = (
            HEADER_SIZE + frame
            if hook is not None and cfg.input_codec == "slin" and frame <= cfg.max_payload
            else 0
        )
        head = HEADER.pack(int(kind_for_rate(cfg.rate)), frame)
        echo = hook is not None and getattr(hook, ECHO_MARK, False) is True
        cached = _FAST[server] = (head, frame, ready, hook, echo)
    return cached


#: The attribute :func:`~audionet.audiosocket.server.echoes` sets on an ``audio_message``.
ECHO_MARK = "_audiosocket_echoes"
_FAST: weakref.WeakKeyDictionary[AudioSocketServer, _Fast] = weakref.WeakKeyDictionary()


def _no_write(data: bytes) -> None:
    raise RuntimeError("write before the call started")


class CallConnection(asyncio.Protocol):
    """One TCP connection from Asterisk."""

    # Slots: a call's state in one compact object (no separate attribute array), so the few
    # cache lines of it the per-frame path reads are fewer to fetch again for each frame.
    __slots__ = (
        "_backlog_from",
        "_backlog_last",
        "_closed",
        "_echo",
        "_echoed",
        "_fast_head",
        "_fast_len",
        "_fast_payload",
        "_fast_ready",
        "_kind",
        "_msgs",
        "_on_event",
        "_on_message",
        "_paused",
        "_pcm",
        "_rate",
        "_stalled",
        "_timer",
        "_write",
        "call",
        "core",
        "due",
        "out",
        "peer",
        "server",
        "stats",
        "transport",
    )

    def __init__(self, server: AudioSocketServer) -> None:
        # The hottest path (see data_received): a read of exactly ``_fast_len`` bytes that starts
        # with ``_fast_head`` is one whole frame. 0 while it does not apply: before the UUID, after
        # the end, while part of a message is held back, without a handler hook, or for G.711 input.
        self._fast_len = 0
        fast = _fast_path(server)
        self._fast_head, self._fast_payload, self._fast_ready = fast[:3]
        self.stats = server._stats
        #: The handler's optional fast path for whole audio messages of the call's own kind.
        self._on_message = fast[3]
        #: That path is a plain echo (marked :func:`~audionet.audiosocket.server.echoes`).
        self._echo = fast[4]
        #: Frames sent straight back (each one in and one out) not yet added to ``stats``: one
        #: small-integer increment per frame instead of four updates of shared large integers;
        #: :meth:`flush_stats` adds them (the server does, once a second and as the call ends).
        self._echoed = 0
        self.call: Call | None = None
        #: The deadline of this call's next outgoing frame (kept by the shared ticker).
        self.due = 0.0
        self._msgs: deque[bytes] | None = None
        self._pcm: bytearray = bytearray()
        self._paused = False
        self._closed = False
        self._write: Callable[[bytes], object] = _no_write
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.core: ServerConnection | None = None
        self.out: OutgoingAudio | None = None
        self.peer: Any = None
        self._stalled = 0
        self._backlog_from = self._backlog_last = -math.inf
        self._timer: asyncio.TimerHandle | None = None
        self._on_event = server.handler.event
        self._rate = server.config.rate
        self._kind = int(kind_for_rate(self._rate))

    # -- asyncio callbacks -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.server.config.send_buffer:
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_SNDBUF, self.server.config.send_buffer
                    )
        srv = self.server
        cfg = srv.config
        if len(srv.connections) >= cfg.max_calls:
            self.stats.calls_rejected += 1
            self._closed = True
            self.transport.write(HANGUP_MESSAGE)
            self.transport.close()
            srv.safe(
                srv.handler.failed, self.peer, Error(f"over the limit of {cfg.max_calls} calls")
            )
            return
        srv.connections.add(self)
        loop = srv.loop
        self.core = ServerConnection(loop.time(), srv.limits, _DECODERS[cfg.input_codec])
        assert self.core.deadline is not None
        self._timer = loop.call_at(self.core.deadline, self._on_timer)

    def data_received(self, data: bytes) -> None:
        # The hottest path: exactly one whole frame of the call's own kind (Asterisk writes one
        # message per 20 ms frame, and each usually arrives in a read of its own).
        if len(data) == self._fast_len and data.startswith(self._fast_head):
            reply: bytes | None
            if self._echo:  # the handler's reply is the message itself: no need to ask it
                reply = data
            else:
                hook = self._on_message  # a local: calling an attribute directly is not specialised
                try:
                    reply = hook(self.call, data)  # type: ignore[misc,arg-type]  # set with _fast_len
                except Exception as exc:
                    self.stats.frames_in += 1
                    self.stats.bytes_in += self._fast_payload
                    self._handler_failed(exc)
                    return
            # The steady state of an echo once the clock has locked on, written out here: the
            # reply is the frame itself, nothing is queued before it and the frame is due within
            # the window, near its middle: it goes straight back, never through the queue.
            now = monotonic()
            early = now - self.due + _HALF_EARLY
            if (
                reply is data
                and -_SLOT <= early <= _SLOT
                and not self._msgs
                and not self._pcm
                and not self._paused
                and not self._closed
            ):
                self._write(data)
                self._echoed += 1  # a frame in and the same frame out (see flush_stats)
                self.due += PERIOD
                return
            stats = self.stats
            stats.frames_in += 1
            stats.bytes_in += self._fast_payload
            if reply is not None:
                self.out.push_message(reply)  # type: ignore[union-attr]
            queued = self._msgs
            if -_SLOT <= early <= _SLOT and queued and not self._paused and not self._closed:
                self._send_next()  # frames queued before it (a backlog): the oldest goes
                self.due += PERIOD
                if queued and self._backlog_stands(now):
                    self.server.ticker.shift(self, -_MAX_JUMP)  # catch up, see answer()
                return
            self.answer(now)
            return
        core = self.core
        if core is None:
            return
        # The hot path: whole audio messages of the call's own kind (usually exactly one per read,
        # as Asterisk writes one per 20 ms frame), handed on without a parse into events.
        msgs, end = core.receive_messages(data, self._kind)
        if msgs:
            stats = self.stats
            stats.frames_in += len(msgs)
            stats.bytes_in += end - HEADER_SIZE * len(msgs)
            call: Call = self.call  # type: ignore[assignment]  # set with the UUID
            try:
                hook = self._on_message
                if hook is not None:
                    for msg in msgs:
                        reply = hook(call, msg)
                        if self._closed:  # the handler hung up: nothing after the final event
                            return
                        if reply is not None:
                            self.out.push_message(reply)  # type: ignore[union-attr]
                else:
                    on_event = self._on_event
                    rate = self._rate
                    for msg in msgs:
                        on_event(call, _audio(msg[HEADER_SIZE:], rate))
                        if self._closed:
                            return
            except Exception as exc:
                self._handler_failed(exc)
                return
            read_at: float | None = None
            if len(msgs) > 1:
                # Several frames in one read: a clump from the caller, or frames that waited
                # in the socket while this loop was held up (a pause of the process, a busy
                # machine). The caller's clump is jitter the queue should absorb (the backlog
                # stands for STANDING s first); a backlog of the loop's own making protects
                # nothing, so the clock starts catching up with it at once (still no burst).
                read_at = monotonic()
                if self.server.ticker.stalled(read_at):
                    self._backlog_from = read_at - STANDING
                    self._backlog_last = read_at
            if end == len(data):
                self.answer(read_at)
                return
            self._general(core, data[end:], heard=True)
            return
        self._general(core, data)

    def _general(self, core: ServerConnection, data: bytes, heard: bool = False) -> None:
        """Everything but whole frames of the call's own kind; ``heard``: audio came before."""
        for ev in core.receive_data(data):
            if self._closed:
                return
            if type(ev) is Audio:
                heard = True
                stats = self.stats
                stats.frames_in += 1
                stats.bytes_in += len(ev.pcm)
                try:
                    if self._fast_ready and ev.rate == self._rate:  # the hook gets every such frame
                        msg = HEADER.pack(self._kind, len(ev.pcm)) + ev.pcm
                        reply = self._on_message(self.call, msg)  # type: ignore[misc,arg-type]
                        if reply is not None and not self._closed:
                            self.out.push_message(reply)  # type: ignore[union-attr]
                    else:
                        self._on_event(self.call, ev)  # type: ignore[arg-type]  # set with the UUID
                except Exception as exc:
                    self._handler_failed(exc)
            else:
                self._event(ev)
        # The hottest path resumes once no message is half received.
        self._fast_len = (
            self._fast_ready
            if core.state is State.ACTIVE and not core.pending() and self.call is not None
            else 0
        )
        if heard and not self._closed and self.call is not None:
            self.answer()

    def eof_received(self) -> bool:
        if self.core is not None:
            for ev in self.core.receive_data(b""):
                self._event(ev)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        core = self.core
        if core is not None and core.state is not State.CLOSED:
            if core.state is State.ACTIVE:
                core.state = State.CLOSED
                reason = f"connection lost: {exc}" if exc else "peer closed the connection"
                self._end(Hangup(by_peer=True, reason=reason))
            else:
                core.state = State.CLOSED
                why = (
                    f"connection lost: {exc}"
                    if exc
                    else "connection closed before the UUID arrived"
                )
                self._end(Error(why))
        self._release()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._stalled = 0

    def flush_stats(self) -> None:
        """Add the frames sent straight back since the last call to the server's counters."""
        n = self._echoed
        if n:
            self._echoed = 0
            stats = self.stats
            nbytes = n * self._fast_payload
            stats.frames_in += n
            stats.bytes_in += nbytes
            stats.frames_out += n
            stats.bytes_out += nbytes

    # -- the outgoing clock ------------------------------------------------------------------------

    def tick(self) -> None:
        """The shared ticker's call: this call's frame is due and was not sent yet."""
        if self._paused:  # the peer is not reading: keep the frame queued, count the stall
            if self.out is not None:
                self._stalled += 1
                if self._stalled * PERIOD >= self.server.config.write_timeout:
                    self._abort(
                        Error(f"peer read nothing for {self.server.config.write_timeout:g} s")
                    )
            return
        stats = self.stats
        sent = stats.frames_out
        self._send_next()
        stats.frames_ticked += stats.frames_out - sent

    def answer(self, now: float | None = None) -> None:
        """The caller's audio just arrived (at ``now``, ``time.monotonic()``): send this call's next
        frame now if it is due within :data:`EARLY` s, and move the clock's deadlines (by whole
        2.5 ms slots) towards the phase of the caller's frames.

        Asterisk sends a frame every 20 ms; once the clock is locked onto that phase, each frame
        of ours goes out from the receive callback, right after the caller's (one wake-up per frame
        instead of two, the write while the call's state is still in cache) and the ticker passes
        the call by. The clock keeps its 20 ms deadlines: at most one frame per deadline, never
        more than :data:`EARLY` s before it, and a frame not sent this way is sent by the ticker at
        the deadline, as before (silence when nothing is queued). While the loop is behind, the
        time a frame is read says little about when it arrived: the clock then learns no later
        phase (all the calls read in one busy stretch would crowd into one slot).
        """
        if now is None:
            now = monotonic()
        due = self.due
        early = now - due + _HALF_EARLY  # the arrival against the middle of the sending window
        if early >= -_HALF_EARLY:  # due within EARLY s (or past: the ticker is behind)
            if not self._paused and not self._closed:
                self._send_next()
                due += PERIOD
                if due <= now:  # the ticker is more than a period behind: skip, never burst
                    due += math.ceil((now - due) / PERIOD) * PERIOD
                self.due = due
            if self._msgs and not self._paused and self._backlog_stands(now):
                # Frames have stood queued behind every frame of the caller's for STANDING s
                # (they once came in a clump): the next deadline moves EARLY s earlier, so the
                # clock sends the next queued frame EARLY s after this one, between the caller's
                # frames (the ticker, not the next read: a loop that reads before it runs timers
                # would otherwise answer the next frame first and skip the earlier deadline),
                # until the queue is empty as the caller's frame arrives and the echo's delay is
                # back to what the caller's own jitter needs. No burst: frames at least EARLY s
                # apart, each at most EARLY s before its deadline.
                self.server.ticker.shift(self, -_MAX_JUMP)
                return
            # keep the caller's frames in the middle of the window, where jitter either way
            # still finds them inside it
            if early > _SLOT:
                ticker = self.server.ticker
                if ticker.behind < _SLOT:  # (a busy loop reads late: no phase to learn then)
                    ticker.shift(self, 1)
            elif early < -_SLOT:
                self.server.ticker.shift(self, -1)
        elif early >= _HALF_EARLY - PERIOD:
            # Due in more than EARLY s: the frame waits for the ticker, which sends it before the
            # caller's next one arrives (so no backlog builds up), and the deadline moves earlier
            # so that the caller's next frame lands in the middle of the window. By at most EARLY
            # s at once: this frame still leaves at least PERIOD - EARLY s after the previous one.
            self.server.ticker.shift(self, -min(_MAX_JUMP, round(-early / _SLOT)))
            msgs = self._msgs
            if msgs is not None and len(msgs) > 1:  # a backlog stands behind it (still draining)
                self._backlog_stands(now)
        # else: a second frame within one period (a burst): it waits its turn, no phase to learn

    def _backlog_stands(self, now: float) -> bool:
        """Count a caller's frame that found frames still queued after the one it sent; True once
        that has been so for every frame for :data:`STANDING` s."""
        if now - self._backlog_last > 1.5 * PERIOD:
            self._backlog_from = now
        self._backlog_last = now
        return now - self._backlog_from >= STANDING

    def _send_next(self) -> None:
        msgs = self._msgs
        if msgs:  # the hot path: a whole frame queued as it came (an echo)
            write = self._write
            write(msgs.popleft())
            stats = self.stats
            stats.frames_out += 1
            stats.bytes_out += self._fast_payload
            call = self.call
            if call._room_waiter is not None:  # type: ignore[union-attr]  # set with _msgs
                call._on_sent()  # type: ignore[union-attr]
            return
        out = self.out
        if out is None:
            return
        if not self._pcm and out.silence:  # nothing queued: a silent caller's usual frame
            silence = out.silence_message
            self._write(silence)
            stats = self.stats
            stats.frames_out += 1
            stats.silence_frames_out += 1
            stats.bytes_out += len(silence) - HEADER_SIZE
            return
        msg = out.next_message()  # queued PCM (silence was the case above)
        if msg is not None:
            stats = self.stats
            stats.frames_out += 1
            stats.bytes_out += len(msg) - HEADER_SIZE
            write = self._write
            write(msg)
        call = self.call
        if call is not None and call._room_waiter is not None:
            call._on_sent()

    # -- CallLink ----------------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def hangup(self, reason: str) -> None:
        if self.core is None or self._closed:
            return
        for ev in self.core.close(reason):
            self._end(ev)

    # -- internals ---------------------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        if self.core is not None:
            for ev in self.core.handle_timer(self.server.loop.time()):
                self._event(ev)

    def _event(self, ev: Event) -> None:
        srv = self.server
        if isinstance(ev, Connected):
            self._start(ev)
        elif isinstance(ev, Hangup) or (isinstance(ev, Error) and ev.fatal):
            self._end(ev)
        elif self.call is not None:
            if isinstance(ev, Error):
                self.stats.error("reported")
            elif isinstance(ev, Dtmf):
                self.stats.dtmf_in += 1
            elif isinstance(ev, Audio):
                self.stats.frames_in += 1
                self.stats.bytes_in += len(ev.pcm)
            try:
                srv.handler.event(self.call, ev)
            except Exception as exc:
                self._handler_failed(exc)

    def _start(self, ev: Connected) -> None:
        srv = self.server
        cfg = srv.config
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.out = OutgoingAudio(cfg.rate, int(cfg.queue_seconds * cfg.rate) * 2, cfg.silence)
        self.call = Call(ev.uuid, self.peer, self.out, self, cfg.max_events)
        self._pcm = self.out._buf
        self._msgs = self.out._msgs  # whole frames queued as messages: the clock's hot path
        self._write = cast(asyncio.Transport, self.transport).write
        self.stats.calls_total += 1
        self.stats.calls_active += 1
        srv.ticker.add(self)
        self._fast_len = self._fast_ready
        try:
            srv.handler.started(self.call)
        except Exception as exc:
            self._handler_failed(exc)

    def _handler_failed(self, exc: Exception) -> None:
        log.error("handler failed on call from %s: %r", self.peer, exc)
        self.stats.error("handler")
        if self.core is not None and self.core.state is not State.CLOSED:
            self.core.state = State.CLOSED
            self._end(Error(f"handler failed: {exc!r}"))

    def _end(self, ev: Hangup | Error) -> None:
        """The call (or the would-be call) is over: tell the handler, send the hangup, close."""
        if self._closed:
            return
        self._closed = True
        self._fast_len = 0
        self.flush_stats()
        srv = self.server
        if isinstance(ev, Error):
            self.stats.error("protocol" if self.core is not None else "connection")
        call = self.call
        if call is not None:
            self.stats.calls_active -= 1
            self.stats.bytes_dropped += self.out.dropped if self.out is not None else 0
            try:
                srv.handler.event(call, ev)
            except Exception:
                log.exception("handler failed at the end of call %s", call.uuid)
            call._finish()
        else:
            srv.safe(
                srv.handler.failed, self.peer, ev if isinstance(ev, Error) else Error(ev.reason)
            )
        self._shutdown()

    def _shutdown(self) -> None:
        self.server.ticker.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(HANGUP_MESSAGE)  # always, before closing (Asterisk 18.0-18.19 spins otherwise)
            t.close()
            self.server.loop.call_later(CLOSE_GRACE, t.abort)

    def _abort(self, ev: Error) -> None:
        self._end(ev)
        if self.transport is not None:
            self.transport.abort()

    def _release(self) -> None:
        self._closed = True
        self._fast_len = 0
        self.flush_stats()
        self.server.ticker.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)
        self.server._maybe_idle()


class BufferedCallConnection(CallConnection, asyncio.BufferedProtocol):
    """The same for the standard asyncio loop, which reads a plain ``Protocol``'s data with
    ``recv(256 KiB)``: a 256 KiB allocation per read (a frame is 323 bytes). As a
    ``BufferedProtocol`` it reads into one shared buffer instead. (uvloop reads into its own buffer
    either way, and there a ``BufferedProtocol`` only adds a Python call per read.)"""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECV_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_RECV_BUFFER[:nbytes]))
