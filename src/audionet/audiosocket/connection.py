"""One AudioSocket connection as an ``asyncio.Protocol``: the adapter between the event loop
and the protocol core (:class:`~audionet.audiosocket.proto.ServerConnection`).

It feeds received bytes to the core and hands the events to the server's handler, sends the call's
frames when its clock (:class:`~audionet.audiosocket.schedule.FrameClock`, the one place that decides
when a frame leaves) says so, as the caller's audio arrives or at the shared ticker's call
(:meth:`CallConnection.tick`), writes every message in one ``transport.write`` on a TCP_NODELAY
socket, and always sends a hangup message before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import weakref
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

from audionet.audio.codecs.g711 import alaw_decode, ulaw_decode
from audionet.audiosocket.call import Call
from audionet.audiosocket.clock import PERIOD
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
from audionet.audiosocket.schedule import FrameClock

if TYPE_CHECKING:
    from audionet.audiosocket.server import AudioSocketServer

log = logging.getLogger(__name__)

#: Seconds a closing connection may take to flush before it is aborted (a peer that stopped reading).
CLOSE_GRACE = 2.0
_DECODERS = {"slin": None, "ulaw": ulaw_decode, "alaw": alaw_decode}

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


def _detect_vanished(sock: Any, timeout: float, keepalive: float) -> None:
    """Have the kernel end a connection whose peer vanished without closing it (a host gone, a
    cable pulled: no FIN, no RST): data unacknowledged for ``timeout`` s (TCP_USER_TIMEOUT; also
    bounds keepalive and zero-window probing), and keepalive probes after ``keepalive`` s without
    traffic, one a second. Where an option is missing (not Linux), what there is."""
    options = [(socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", max(1, round(timeout * 1000)))]
    if keepalive > 0:
        options += [
            (socket.SOL_SOCKET, "SO_KEEPALIVE", 1),
            (socket.IPPROTO_TCP, "TCP_KEEPIDLE", max(1, round(keepalive))),
            (socket.IPPROTO_TCP, "TCP_KEEPINTVL", 1),
            (socket.IPPROTO_TCP, "TCP_KEEPCNT", max(1, round(timeout))),
        ]
    for level, name, value in options:
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)


def _no_write(data: bytes) -> None:
    raise RuntimeError("write before the call started")


class CallConnection(FrameClock, asyncio.Protocol):
    """One TCP connection from Asterisk."""

    # Slots: a call's state in one compact object (no separate attribute array), so the few
    # cache lines of it the per-frame path reads are fewer to fetch again for each frame.
    __slots__ = (
        "_closed",
        "_fast_payload",
        "_fast_ready",
        "_kind",
        "_on_event",
        "_on_message",
        "_rate",
        "_stalled",
        "_timer",
        "call",
        "core",
        "out",
        "peer",
        "server",
        "stats",
        "transport",
    )

    def __init__(self, server: AudioSocketServer) -> None:
        FrameClock.__init__(self)
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
        self._msgs = None
        self._pcm = bytearray()
        self._paused = False
        self._closed = False
        self._write = _no_write
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.core: ServerConnection | None = None
        self.out: OutgoingAudio | None = None
        self.peer: Any = None
        self._stalled = 0
        self._timer: asyncio.TimerHandle | None = None
        self._on_event = server.handler.event
        self._rate = server.config.rate
        self._kind = int(kind_for_rate(self._rate))

    # -- asyncio callbacks -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.peer = transport.get_extra_info("peername")
        srv = self.server
        cfg = srv.config
        srv.setups += 1
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if cfg.send_buffer:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, cfg.send_buffer)
            _detect_vanished(sock, cfg.write_timeout, cfg.keepalive)
        refusal = srv.refusal()
        if refusal is not None:  # admission control: the calls up keep their 50 frames/s
            reason, why = refusal
            stats = self.stats
            stats.calls_rejected += 1
            stats.refused[reason] = stats.refused.get(reason, 0) + 1
            self._closed = self._stopped = True
            self.transport.write(HANGUP_MESSAGE)
            self.transport.close()
            log.warning("refused a call from %s: %s", self.peer, why)
            srv.safe(srv.handler.failed, self.peer, Error(f"refused: {why}"))
            return
        srv.connections.add(self)
        loop = srv.loop
        self.core = ServerConnection(loop.time(), srv.limits, _DECODERS[cfg.input_codec])
        assert self.core.deadline is not None
        self._timer = loop.call_at(self.core.deadline, self._on_timer)

    # data_received is the per-frame core's (framecore.FrameCore): the echo's whole frame goes
    # straight back there, and everything else comes here.

    def _received(self, data: bytes) -> None:
        # The hottest path but for the echo's (which FrameCore.data_received takes): exactly one
        # whole frame of the call's own kind, for a handler with an ``audio_message`` hook.
        if len(data) == self._fast_len and data.startswith(self._fast_head):
            hook = self._on_message  # a local: calling an attribute directly is not specialised
            try:
                reply = hook(self.call, data)  # type: ignore[misc,arg-type]  # set with _fast_len
            except Exception as exc:
                self.stats.frames_in += 1
                self.stats.bytes_in += self._fast_payload
                self._handler_failed(exc)
                return
            leaves = self._clock(monotonic(), True)  # whether this call's next frame leaves now
            if leaves and reply is data and not self._msgs and not self._pcm:
                # a hook that answers a frame with itself, nothing queued before it: straight back
                self._write(data)
                self._echoed += 1  # a frame in and the same frame out (see flush_stats)
                return
            self._reply(reply, leaves)
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
            if end == len(data):
                self._heard()
                return
            self._general(core, data[end:], heard=True)
            return
        self._general(core, data)

    def _reply(self, reply: bytes | None, leaves: bool) -> None:
        """After a whole frame came in: count it, queue the handler's reply, send if it leaves
        (also the per-frame core's call for an echoed frame that cannot go straight back:
        something is queued before it, or the clock says not yet)."""
        stats = self.stats
        stats.frames_in += 1
        stats.bytes_in += self._fast_payload
        if reply is not None:
            self.out.push_message(reply)  # type: ignore[union-attr]
        if leaves:
            self._send_next()

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
            self._heard()

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
        self._paused = self._stopped = True

    def resume_writing(self) -> None:
        self._paused = False
        self._stopped = self._closed
        self._stalled = 0

    def flush_stats(self) -> None:
        """Add the frames the per-frame core counted since the last call to the server's
        counters: sent straight back, sent by the ticker from the queue, silence it sent."""
        echoed, ticked, silenced = self._echoed, self._ticked, self._silenced
        if not (echoed or ticked or silenced):
            return
        self._echoed = self._ticked = self._silenced = 0
        stats = self.stats
        frame = self._fast_payload  # every one of them a whole frame of the call's own kind
        out = echoed + ticked + silenced
        stats.frames_in += echoed  # an echoed frame came in as it went out
        stats.bytes_in += echoed * frame
        stats.frames_out += out
        stats.bytes_out += out * frame
        stats.frames_ticked += ticked + silenced
        stats.silence_frames_out += silenced

    # -- the outgoing clock ------------------------------------------------------------------------

    # tick is the per-frame core's (framecore.FrameCore): the next whole frame queued, or silence,
    # leaves there when the clock says; a tick while the peer reads nothing, and one that sends
    # queued PCM, come here.

    def _tick_slow(self) -> None:
        """The ticker's call while the peer reads nothing: count the stall (end the call after
        ``write_timeout``), and let the clock pass the slot."""
        if self.out is not None:
            self._stalled += 1
            if self._stalled * PERIOD >= self.server.config.write_timeout:
                self._abort(Error(f"peer read nothing for {self.server.config.write_timeout:g} s"))
                return
        if self._clock(monotonic(), False):
            self._send_ticked()

    def _send_ticked(self) -> None:
        """The ticker's call sends the next frame (queued PCM, or what else is next)."""
        stats = self.stats
        sent = stats.frames_out
        self._send_next()
        stats.frames_ticked += stats.frames_out - sent

    def _heard(self) -> None:
        """The caller's audio arrived (and was handed on): send the next frame if the clock says."""
        if self._clock(monotonic(), True):
            self._send_next()

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
        self.start_clock(srv.ticker)
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
        self._closed = self._stopped = True
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
        self.server.setups += 1
        self._closed = self._stopped = True
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
