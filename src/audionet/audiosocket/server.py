"""The asyncio AudioSocket server: a thin adapter around :class:`~audionet.audiosocket.proto.ServerConnection`.

One :class:`CallConnection` (an ``asyncio.Protocol``) per TCP connection feeds received bytes to the
protocol core and hands the events to a :class:`CallHandler`. Outgoing audio goes through each
call's :class:`~audionet.audiosocket.pacing.OutgoingAudio`, emptied one frame per tick by the loop's
one shared :class:`~audionet.audiosocket.clock.Ticker`. Every message is one ``transport.write``
(header and payload together) on a TCP_NODELAY socket, and the server always sends a hangup message
before it closes a call.

Handlers come in two shapes: a coroutine function ``async def handler(call)`` (the call API, run as
one task per call) or an object with the :class:`CallHandler` methods, called inline for every event
with no task switch (the built-in apps and the seed's callback API use this; it is the fast path).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from audionet.audio.codecs.g711 import alaw_decode, ulaw_decode
from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.clock import PERIOD, Ticker, get_ticker
from audionet.audiosocket.metrics import Stats
from audionet.audiosocket.pacing import OutgoingAudio
from audionet.audiosocket.proto import (
    HANGUP_MESSAGE,
    Audio,
    Connected,
    Dtmf,
    Error,
    Event,
    Hangup,
    Limits,
    ServerConnection,
    State,
    kind_for_rate,
)
from audionet.errors import ConfigError, LocalProtocolError

log = logging.getLogger(__name__)

#: Seconds a closing connection may take to flush before it is aborted (a peer that stopped reading).
CLOSE_GRACE = 2.0
_DECODERS = {"slin": None, "ulaw": ulaw_decode, "alaw": alaw_decode}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Server settings. ``rate``: audio rate of the calls' outgoing side (and of ``call.format``).
    ``input_codec``: what ``Dial(AudioSocket/...)`` calls really carry in messages labelled 0x10
    (``slin``, ``ulaw`` or ``alaw``; decoded to s16le before handlers see it). ``max_calls``: more
    connections are answered with a hangup message. ``queue_seconds``: bound of each call's outgoing
    queue. ``silence``: send silence when nothing is queued. ``max_events``: events queued for a
    slow call-API handler before the server stops reading that call's socket. ``write_timeout``:
    seconds a peer may leave our audio unread before its call is dropped. ``backlog``: listen backlog
    (Asterisk gives up connecting after 2 s, so bursts of calls must fit in it). ``send_buffer``: the
    kernel send buffer per call in bytes (SO_SNDBUF; default: the kernel's, which on loopback grows to
    megabytes), to bound how much audio can sit unsent behind a peer that stopped reading.
    """

    rate: int = 8000
    input_codec: str = "slin"
    max_calls: int = 10000
    uuid_timeout: float = 5.0
    max_payload: int = 16384
    queue_seconds: float = 1.0
    silence: bool = True
    max_events: int = 250
    write_timeout: float = 10.0
    backlog: int = 4096
    send_buffer: int | None = None

    def __post_init__(self) -> None:
        try:
            kind_for_rate(self.rate)
        except LocalProtocolError as exc:
            raise ConfigError(str(exc)) from None
        if self.input_codec not in _DECODERS:
            raise ConfigError(f"input codec {self.input_codec!r}: use slin, ulaw or alaw")
        for name in ("max_calls", "max_payload", "max_events", "backlog"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        for name in ("uuid_timeout", "queue_seconds", "write_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")

    @classmethod
    def split(cls, options: dict[str, Any]) -> tuple[ServerConfig, dict[str, Any]]:
        """Separate our settings from keyword arguments meant for ``loop.create_server``."""
        names = {f.name for f in dataclasses.fields(cls)}
        ours = {k: options[k] for k in options if k in names}
        return cls(**ours), {k: v for k, v in options.items() if k not in names}


class CallHandler(Protocol):
    """The low-level handler interface; its methods run inline on the event loop and must not block."""

    def started(self, call: Call) -> None:
        """A call's UUID arrived."""

    def event(self, call: Call, event: CallEvent) -> None:
        """Audio, DTMF, a non-fatal error report, and last a fatal :class:`Error` or :class:`Hangup`."""

    def failed(self, peer: Any, error: Error) -> None:
        """A connection that never became a call (no UUID, a bad first message, over ``max_calls``)."""


class TaskHandler:
    """Runs ``async def handler(call)`` as one task per call; events reach it through ``async for``."""

    def __init__(self, fn: Callable[[Call], Awaitable[None]]) -> None:
        self.fn = fn
        self.tasks: set[asyncio.Task[None]] = set()

    def started(self, call: Call) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run(call), name=f"audiosocket-{call.uuid}"
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, call: Call) -> None:
        try:
            await self.fn(call)
        except Exception:
            log.exception("handler of call %s failed", call.uuid)
        finally:
            if not call.ended:
                await call.hangup("handler returned")

    def event(self, call: Call, event: CallEvent) -> None:
        call._deliver(event)

    def failed(self, peer: Any, error: Error) -> None:
        log.info("connection from %s failed: %s", peer, error.message)


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


class AudioSocketServer:
    """A listening AudioSocket server. Behaves like ``asyncio.Server`` (``serve_forever``, ``close``,
    ``wait_closed``, ``sockets``, ``async with``) and adds ``stats``, ``calls`` and ``port``.
    """

    def __init__(self, handler: CallHandler, config: ServerConfig | None = None) -> None:
        self.handler = handler
        self.config = config or ServerConfig()
        self.limits = Limits(self.config.max_payload, self.config.uuid_timeout)
        self.stats = Stats()
        self.connections: set[CallConnection] = set()
        self._server: asyncio.Server | None = None
        self._idle: asyncio.Future[None] | None = None
        # Both are set by start(), on the loop that runs the server.
        self.loop: asyncio.AbstractEventLoop = cast(asyncio.AbstractEventLoop, None)
        self.ticker: Ticker = cast(Ticker, None)

    async def start(self, host: str | None, port: int | None, **kwargs: Any) -> AudioSocketServer:
        self.loop = asyncio.get_running_loop()
        self.ticker = get_ticker(self.loop)
        kwargs.setdefault("backlog", self.config.backlog)
        self._server = await self.loop.create_server(
            lambda: CallConnection(self), host, port, **kwargs
        )
        return self

    def safe(self, fn: Callable[..., object], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("AudioSocket handler callback failed")

    @property
    def calls(self) -> list[Call]:
        return [c.call for c in self.connections if c.call is not None and not c.call.ended]

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket (handy with ``port=0``)."""
        return int(self.sockets[0].getsockname()[1])

    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def serve_forever(self) -> None:
        assert self._server is not None, "call start() first"
        await self._server.serve_forever()

    def close(self) -> None:
        """Stop accepting calls and hang up every call in progress (each gets a hangup message)."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.hangup("server shutting down")
            if conn.core is not None and conn.core.state is State.AWAIT_UUID:
                conn.core.state = State.CLOSED
                conn._end(Error("server shutting down"))

    def _maybe_idle(self) -> None:
        if not self.connections and self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def wait_closed(self, timeout: float = CLOSE_GRACE + 1) -> None:
        """Wait until the listener and every connection are closed and call-API handlers returned."""
        if self._server is not None:
            await self._server.wait_closed()
        if self.connections:
            self._idle = self.loop.create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._idle), timeout)
            except TimeoutError:
                for conn in list(self.connections):
                    if conn.transport is not None:
                        conn.transport.abort()
        tasks = getattr(self.handler, "tasks", None)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=timeout)
            for t in pending:
                t.cancel()

    async def __aenter__(self) -> AudioSocketServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


Handler = Callable[[Call], Awaitable[None]] | CallHandler


def as_handler(handler: Handler) -> CallHandler:
    if inspect.iscoroutinefunction(handler):
        return TaskHandler(handler)
    if all(hasattr(handler, m) for m in ("started", "event", "failed")):
        return handler  # type: ignore[return-value]
    raise ConfigError(
        "handler must be 'async def handler(call)' or an object with started/event/failed methods"
    )


class serve:
    """Start an AudioSocket server for ``handler`` on ``host:port``.

    ``handler`` is ``async def handler(call)`` (the call API) or a :class:`CallHandler`. Keyword
    arguments named like :class:`ServerConfig` fields configure the server; the rest go to
    ``loop.create_server`` (e.g. ``reuse_port=True``).
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None = "127.0.0.1",
        port: int | None = 9092,
        **options: Any,
    ) -> None:
        config, self._kwargs = ServerConfig.split(options)
        self._server = AudioSocketServer(as_handler(handler), config)
        self._host = host
        self._port = port

    async def _start(self) -> AudioSocketServer:
        return await self._server.start(self._host, self._port, **self._kwargs)

    def __await__(self) -> Generator[Any, None, AudioSocketServer]:
        return self._start().__await__()

    async def __aenter__(self) -> AudioSocketServer:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__()
