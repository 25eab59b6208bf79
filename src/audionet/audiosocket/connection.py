"""One AudioSocket connection as an ``asyncio.BufferedProtocol``: the adapter between the event loop
and the protocol core (:class:`~audionet.audiosocket.proto.ServerConnection`).

It feeds received bytes to the core and hands the events to the server's handler, runs the call's
outgoing clock (:meth:`CallConnection.tick`, called by the shared ticker), writes every message in one
``transport.write`` on a TCP_NODELAY socket, and always sends a hangup message before it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any, cast

from audionet.audio.codecs.g711 import alaw_decode, ulaw_decode
from audionet.audiosocket.call import Call
from audionet.audiosocket.clock import PERIOD
from audionet.audiosocket.pacing import OutgoingAudio
from audionet.audiosocket.proto import (
    HANGUP_MESSAGE,
    Audio,
    Connected,
    Dtmf,
    Error,
    Event,
    Hangup,
    ServerConnection,
    State,
)

if TYPE_CHECKING:
    from audionet.audiosocket.server import AudioSocketServer

log = logging.getLogger(__name__)

#: Seconds a closing connection may take to flush before it is aborted (a peer that stopped reading).
CLOSE_GRACE = 2.0
_DECODERS = {"slin": None, "ulaw": ulaw_decode, "alaw": alaw_decode}

#: One receive buffer shared by every connection of a process: a ``BufferedProtocol`` reads into it
#: and parses it before the loop does anything else, so it is never used by two reads at once. This
#: spares asyncio's default 256 KiB allocation per read (a 20 ms frame is 323 bytes).
_RECV_BUFFER = memoryview(bytearray(1 << 16))


class CallConnection(asyncio.BufferedProtocol):
    """One TCP connection from Asterisk."""

    def __init__(self, server: AudioSocketServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.core: ServerConnection | None = None
        self.call: Call | None = None
        self.out: OutgoingAudio | None = None
        self.peer: Any = None
        self._paused = False
        self._stalled = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.stats = server.stats
        self._on_event = server.handler.event

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
            srv.stats.calls_rejected += 1
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

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECV_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        data = _RECV_BUFFER[:nbytes]
        core = self.core
        if core is not None:
            ev = core.receive_audio(data)
            if ev is not None:  # the hot path: one whole audio message
                stats = self.stats
                stats.frames_in += 1
                stats.bytes_in += nbytes - 3
                try:
                    self._on_event(self.call, ev)  # type: ignore[arg-type]  # set with the UUID
                except Exception as exc:
                    self._handler_failed(exc)
                return
        self.data_received(data)

    def data_received(self, data: bytes | memoryview) -> None:
        core = self.core
        if core is None:
            return
        stats = self.stats
        for ev in core.receive_data(data):
            if type(ev) is Audio:  # the hot path
                stats.frames_in += 1
                stats.bytes_in += len(ev.pcm)
                try:
                    self._on_event(self.call, ev)  # type: ignore[arg-type]  # set with the UUID
                except Exception as exc:
                    self._handler_failed(exc)
            else:
                self._event(ev)

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

    # -- the outgoing clock ------------------------------------------------------------------------

    def tick(self) -> None:
        out = self.out
        transport = self.transport
        if out is None or transport is None:
            return
        if self._paused:  # the peer is not reading: keep the frame queued, count the stall
            self._stalled += 1
            if self._stalled * PERIOD >= self.server.config.write_timeout:
                self._abort(Error(f"peer read nothing for {self.server.config.write_timeout:g} s"))
            return
        msg = out.next_message()
        if msg is not None:
            transport.write(msg)
            stats = self.stats
            stats.frames_out += 1
            stats.bytes_out += len(msg) - 3
            if msg is out.silence_message:
                stats.silence_frames_out += 1
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
                srv.stats.error("reported")
            elif isinstance(ev, Dtmf):
                srv.stats.dtmf_in += 1
            elif isinstance(ev, Audio):
                srv.stats.frames_in += 1
                srv.stats.bytes_in += len(ev.pcm)
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
        srv.stats.calls_total += 1
        srv.stats.calls_active += 1
        srv.ticker.add(self)
        try:
            srv.handler.started(self.call)
        except Exception as exc:
            self._handler_failed(exc)

    def _handler_failed(self, exc: Exception) -> None:
        log.error("handler failed on call from %s: %r", self.peer, exc)
        self.server.stats.error("handler")
        if self.core is not None and self.core.state is not State.CLOSED:
            self.core.state = State.CLOSED
            self._end(Error(f"handler failed: {exc!r}"))

    def _end(self, ev: Hangup | Error) -> None:
        """The call (or the would-be call) is over: tell the handler, send the hangup, close."""
        if self._closed:
            return
        self._closed = True
        srv = self.server
        if isinstance(ev, Error):
            srv.stats.error("protocol" if self.core is not None else "connection")
        call = self.call
        if call is not None:
            srv.stats.calls_active -= 1
            srv.stats.bytes_dropped += self.out.dropped if self.out is not None else 0
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
        self.server.ticker.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.server.connections.discard(self)
        self.server._maybe_idle()
