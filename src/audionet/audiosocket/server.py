"""The asyncio AudioSocket server: a thin adapter around :class:`~audionet.audiosocket.proto.ServerConnection`.

One :class:`~audionet.audiosocket.connection.CallConnection` (an ``asyncio.Protocol``; a ``BufferedProtocol`` on the standard loop) per
TCP connection feeds received bytes to the protocol core and hands the events to a :class:`CallHandler`. Outgoing audio goes through each
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
import dataclasses
import inspect
import logging
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.clock import Ticker, get_ticker
from audionet.audiosocket.connection import (
    _DECODERS,
    CLOSE_GRACE,
    ECHO_MARK,
    BufferedCallConnection,
    CallConnection,
)
from audionet.audiosocket.metrics import Stats
from audionet.audiosocket.proto import (
    Error,
    Limits,
    State,
    kind_for_rate,
)
from audionet.errors import ConfigError, LocalProtocolError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Server settings. ``rate``: audio rate of the calls' outgoing side (and of ``call.format``).
    ``input_codec``: what ``Dial(AudioSocket/...)`` calls really carry in messages labelled 0x10
    (``slin``, ``ulaw`` or ``alaw``; decoded to s16le before handlers see it). ``max_calls``: more
    connections are answered with a hangup message. ``queue_seconds``: bound of each call's outgoing
    queue. ``silence``: send silence when nothing is queued. ``max_events``: events queued for a
    slow call-API handler before the server stops reading that call's socket. ``write_timeout``:
    seconds a peer may leave our audio unread, or unacknowledged (TCP_USER_TIMEOUT: a peer that
    vanished without closing), before its call is dropped. ``keepalive``: seconds without traffic
    before TCP keepalive probes start, one a second (0: none), so that a call with nothing to send
    (``silence=False``) still finds out its peer has vanished. ``backlog``: listen backlog
    (Asterisk gives up connecting after 2 s, so bursts of calls must fit in it). ``send_buffer``: the
    kernel send buffer per call in bytes (SO_SNDBUF; default: the kernel's, which on loopback grows to
    megabytes), to bound how much audio can sit unsent behind a peer that stopped reading.

    Admission control (a call refused gets a hangup message at once, a log line, and is counted in
    ``stats.calls_rejected`` and ``stats.refused``): besides ``max_calls``, ``max_load`` (0: off)
    refuses a new call when one more call would need more than this share of one core at the CPU
    cost per call the server has measured (its process's CPU time per call up, every ``MEASURE``
    s), or would take it there from what it used over the last second (:meth:`_projected`), so
    that the calls already up keep their 50 frames/s (the calls up at such a refusal are a
    :class:`Ceiling` until fresh measures show room); and ``max_lag`` (0: off) refuses new
    calls while the
    clock's ticks over the last second started more than this late (p90). The cost measure is the
    whole process's: right for a server in a process of its own (``audionet audiosocket serve``
    turns both on), not for one sharing its process with other work, so both are off by default.
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
    keepalive: float = 5.0
    max_load: float = 0.0
    max_lag: float = 0.0
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
        if self.keepalive < 0:
            raise ConfigError("keepalive must be 0 (off) or positive")
        if not 0 <= self.max_load <= 1:
            raise ConfigError("max_load is a share of one core: 0 (off) to 1")
        if self.max_lag < 0:
            raise ConfigError("max_lag must be 0 (off) or positive (seconds)")

    @classmethod
    def split(cls, options: dict[str, Any]) -> tuple[ServerConfig, dict[str, Any]]:
        """Separate our settings from keyword arguments meant for ``loop.create_server``."""
        names = {f.name for f in dataclasses.fields(cls)}
        ours = {k: options[k] for k in options if k in names}
        return cls(**ours), {k: v for k, v in options.items() if k not in names}


#: Seconds between additions of the straight echo path's frame counts to the server's counters.
STATS_FLUSH = 1.0
#: Seconds between measures of the server's CPU cost per frame and of its clock's lag (admission).
MEASURE = 0.25
#: How many measures (of MEASURE s) the cost per frame is fitted over.
MEASURE_WINDOWS = 12
#: How many measures the server's busy share (its CPU time over wall time) is taken over.
BUSY_WINDOWS = 4
#: The plain CPU per call-second is used only once this many calls were up on average over its
#: measures: below, the process's own baseline (the ticker, the metrics) and a burst of set-ups
#: over a few calls make it many times a call's cost (a run placing calls 250 a second refused
#: its 68th call on it).
BUSY_MIN_CALLS = 100
#: A ceiling (see :class:`Ceiling`) lifts once measures taken wholly after it was set say that one
#: call more than it would need at most this share of ``max_load``.
LIFT = 0.75

_F = TypeVar("_F", bound=Callable[..., Any])


def echoes(audio_message: _F) -> _F:
    """Mark a handler's ``audio_message`` as a plain echo: it returns every message it is given,
    unchanged, and does nothing else. The server then sends such frames back without calling it
    (the echo app's frame costs no Python call into the handler). An ``audio_message`` that
    overrides a marked one is not marked unless it is decorated itself."""
    setattr(audio_message, ECHO_MARK, True)
    return audio_message


def fit_cost_per_call(windows: Iterable[tuple[float, int, float]]) -> float | None:
    """The CPU seconds per call-second ``c`` of ``cpu = a * setups + c * call_seconds`` fitted by
    least squares over ``windows`` of (cpu, setups, call_seconds); when the windows cannot tell
    the two costs apart (setups in step with the calls up), or there is nothing to fit, None;
    with no setups at all, cpu / call_seconds."""
    sss = ssu = suu = ssc = suc = 0.0
    for cpu, setups, units in windows:
        sss += setups * setups
        ssu += setups * units
        suu += units * units
        ssc += setups * cpu
        suc += units * cpu
    if suu <= 0:
        return None
    if sss == 0:
        return suc / suu
    det = sss * suu - ssu * ssu
    if det <= 1e-6 * sss * suu:  # (proportional: no telling which costs what)
        return None
    a = (suu * ssc - ssu * suc) / det
    c = (sss * suc - ssu * ssc) / det
    if a < 0:  # noise: what the setups cannot explain is the calls'
        return suc / suu
    return c if c > 0 else None


@dataclasses.dataclass(slots=True)
class Ceiling:
    """The number of calls up when the server last reached its limit (a call refused for load or
    lag): no call is admitted at or above it until measures taken wholly after it say there is
    room with a margin (one call more than the ceiling within :data:`LIFT` of ``max_load``, the
    clock's lag under half of ``max_lag``).

    The cost estimates are noisy while calls come in: on the fitted cost alone, at 1,500 calls
    placed 250 a second on uvloop, one run refused its first call at 918 calls up and, the
    estimate falling after that, went on to admit 1,146, more than the core carried (the calls
    kept lost frames). Calls that end make room under the ceiling for new ones."""

    calls: int | None = None
    reason: str = ""
    why: str = ""
    fresh: int = 0  #: measures since the ceiling was set

    def reached(self, up: int, reason: str, why: str) -> None:
        """A call was refused for ``reason`` with ``up`` calls up."""
        if self.calls is None or up < self.calls:
            self.calls, self.reason, self.why, self.fresh = up, reason, why, 0

    def refusal(self, up: int) -> tuple[str, str] | None:
        """Why a new call would be refused with ``up`` calls up, by the ceiling alone."""
        if self.calls is None or up < self.calls:
            return None
        return self.reason, f"{up} calls up, at the limit the server reached ({self.why})"

    def measured(
        self, cost: float | None, lag: float, max_load: float, max_lag: float, span: int
    ) -> None:
        """A measure was taken; lift the ceiling if ``span`` measures since it was set show room."""
        if self.calls is None:
            return
        self.fresh += 1
        if self.fresh < span:
            return
        if max_load and (cost is None or (self.calls + 1) * cost > LIFT * max_load):
            return
        if max_lag and lag > max_lag / 2:
            return
        self.calls = None


class CallHandler(Protocol):
    """The low-level handler interface; its methods run inline on the event loop and must not block.

    A handler may also define ``audio_message(call, message: bytes)``: it then receives every audio
    message of the call's own kind (its rate, ``call.format``) as the raw message, 3-byte header
    included, instead of an ``Audio`` event for it (``Audio(message[3:], rate)``: the same audio, in
    the same order among the other events), without an event object per frame. It may return the
    reply to that frame, an audio message of the call's kind (queued and paced like the rest of the
    call's audio; a whole frame is sent unchanged), or None. The echo app returns the message
    itself: once the clock has locked onto the caller's frames and nothing is queued before it,
    such a reply goes straight back as the frame arrives, without passing through the queue. A hook
    marked :func:`echoes` (the echo app's) is not even called for such frames.
    Audio at other rates, and all audio of calls carrying G.711 (``input_codec``), still arrives
    through :meth:`event`.
    """

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


class AudioSocketServer:
    """A listening AudioSocket server. Behaves like ``asyncio.Server`` (``serve_forever``, ``close``,
    ``wait_closed``, ``sockets``, ``async with``) and adds ``stats``, ``calls`` and ``port``.
    """

    def __init__(self, handler: CallHandler, config: ServerConfig | None = None) -> None:
        self.handler = handler
        self.config = config or ServerConfig()
        self.limits = Limits(self.config.max_payload, self.config.uuid_timeout)
        self._stats = Stats()
        self.connections: set[CallConnection] = set()
        self._flusher: asyncio.TimerHandle | None = None
        self._measurer: asyncio.TimerHandle | None = None
        #: CPU seconds a second per call up (a share of a core; None until measured), and the
        #: clock's recent lag.
        self.cost_per_call: float | None = None
        self.lag = 0.0
        #: The share of a core the process used over the last BUSY_WINDOWS measures.
        self.busy = 0.0
        #: The calls up on average over those measures.
        self.busy_calls = 0.0
        self._busy: deque[tuple[float, float, float]] = deque(maxlen=BUSY_WINDOWS)
        #: Where admission last found the limit (see :class:`Ceiling`).
        self.ceiling = Ceiling()
        #: Calls set up or ended (accepted, refused, closed): a cost of their own.
        self.setups = 0
        self._measured = (0.0, 0.0, 0, 0)
        self._windows: deque[tuple[float, int, float]] = deque(maxlen=MEASURE_WINDOWS)
        self._server: asyncio.Server | None = None
        self._idle: asyncio.Future[None] | None = None
        # Both are set by start(), on the loop that runs the server.
        self.loop: asyncio.AbstractEventLoop = cast(asyncio.AbstractEventLoop, None)
        self.ticker: Ticker = cast(Ticker, None)

    async def start(self, host: str | None, port: int | None, **kwargs: Any) -> AudioSocketServer:
        self.loop = asyncio.get_running_loop()
        self.ticker = get_ticker(self.loop)
        kwargs.setdefault("backlog", self.config.backlog)
        # uvloop: a plain Protocol (one Python call per read); asyncio: a BufferedProtocol.
        uvloop = type(self.loop).__module__.startswith("uvloop")
        cls = CallConnection if uvloop else BufferedCallConnection
        self._server = await self.loop.create_server(lambda: cls(self), host, port, **kwargs)
        self._flusher = self.loop.call_later(STATS_FLUSH, self._flush_stats)
        if self.config.max_load or self.config.max_lag:
            self._measured = (time.process_time(), time.monotonic(), 0, 0)
            self._measurer = self.loop.call_later(MEASURE, self._measure)
        return self

    def _measure(self) -> None:
        """The CPU cost per call and the clock's lag. The process's CPU time over the last
        MEASURE_WINDOWS measures is fitted (least squares) as a cost per call set up or ended
        plus a cost per second of each call up: while calls come in, setting them up costs more
        than their first seconds. (Per call, not per frame: a silent call's frame, sent by the
        ticker, costs about twice an echoed one, and a silent call about what an echoing one
        costs: 0.76 ms of CPU a second each, 500 silent or 565 echoing calls on uvloop.)"""
        self._add_calls_counts()
        calls = len(self.connections)
        now = (time.process_time(), time.monotonic(), self.setups, calls)
        cpu0, t0, setups0, calls0 = self._measured
        self._measured = now
        window = (now[0] - cpu0, now[2] - setups0, (now[1] - t0) * (calls + calls0) / 2)
        self._busy.append((window[0], now[1] - t0, window[2]))
        cpu = sum(c for c, _, _ in self._busy)
        wall = sum(w for _, w, _ in self._busy)
        call_seconds = sum(u for _, _, u in self._busy)
        self.busy = cpu / wall if wall > 0 else 0.0
        self.busy_calls = call_seconds / wall if wall > 0 else 0.0
        if window[2] > 0:
            self._windows.append(window)
            cost = fit_cost_per_call(self._windows)
            if cost is not None:
                self.cost_per_call = cost
        self.lag = self.ticker.recent_lateness(0.9) if len(self.ticker) else 0.0
        cfg = self.config
        self.ceiling.measured(
            self.cost_per_call, self.lag, cfg.max_load, cfg.max_lag, MEASURE_WINDOWS
        )
        if self._server is not None and self._server.is_serving():
            self._measurer = self.loop.call_later(MEASURE, self._measure)
        else:
            self._measurer = None

    def refusal(self) -> tuple[str, str] | None:
        """Why a new call would be refused now (a reason and what to log), or None."""
        cfg = self.config
        up = len(self.connections)
        if up >= cfg.max_calls:
            return "max_calls", f"over the limit of {cfg.max_calls} calls"
        held = self.ceiling.refusal(up)
        if held is not None:
            return held
        found: tuple[str, str] | None = None
        cost = self.cost_per_call
        if cfg.max_lag and self.lag > cfg.max_lag:
            found = "lag", f"the clock runs {1000 * self.lag:.0f} ms late with {up} calls up"
        elif cfg.max_load and up and (need := self._projected(up + 1, cost)) > cfg.max_load:
            found = (
                "load",
                (
                    f"{up + 1} calls would need {100 * need:.0f}% of a core (the server used "
                    f"{100 * self.busy:.0f}% over the last {BUSY_WINDOWS * MEASURE:g} s with "
                    f"{self.busy_calls:.0f} calls up on average; limit {100 * cfg.max_load:.0f}%)"
                ),
            )
        elif cfg.max_load and cost is not None and (up + 1) * cost > cfg.max_load:
            found = (
                "load",
                (
                    f"{up + 1} calls would need {100 * (up + 1) * cost:.0f}% of a core "
                    f"({1000 * cost:.2f} ms of CPU a second each; limit {100 * cfg.max_load:.0f}%)"
                ),
            )
        if found is not None:
            self.ceiling.reached(up, *found)
        return found

    def _projected(self, calls: int, cost: float | None) -> float:
        """The share of a core ``calls`` would need: what the server used over the last second
        (set-ups included), plus the calls beyond that second's average at the fitted cost per
        call (or, where there is no fit, the plain CPU per call-second of that second: set-ups
        and endings included, so above the fitted cost while calls come in). Calls that came in
        since are counted once, without lag, and a burst of set-ups is not multiplied by them."""
        per_call = cost
        if per_call is None and self.busy_calls >= BUSY_MIN_CALLS:
            per_call = self.busy / self.busy_calls
        extra = max(0.0, calls - self.busy_calls) * (per_call or 0.0)
        return self.busy + extra

    @property
    def stats(self) -> Stats:
        """The server's counters, up to date (read them from the loop's thread: the frames the
        straight echo path sends are added to them here, once a second, and as each call ends)."""
        self._add_calls_counts()
        return self._stats

    def _add_calls_counts(self) -> None:
        for conn in self.connections:
            conn.flush_stats()

    def _flush_stats(self) -> None:
        self._add_calls_counts()
        if self._server is not None and (self._server.is_serving() or self.connections):
            self._flusher = self.loop.call_later(STATS_FLUSH, self._flush_stats)
        else:
            self._flusher = None

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
        if self._flusher is not None:  # every call's counts are added as it ends
            self._flusher.cancel()
            self._flusher = None
        if self._measurer is not None:
            self._measurer.cancel()
            self._measurer = None
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
    if inspect.iscoroutinefunction(handler) or (
        callable(handler)  # an object with ``async def __call__(self, call)``
        and inspect.iscoroutinefunction(type(handler).__call__)
    ):
        return TaskHandler(handler)
    if all(hasattr(handler, m) for m in ("started", "event", "failed")):
        return handler  # type: ignore[return-value]
    raise ConfigError(
        "handler must be 'async def handler(call)' or an object with started/event/failed methods"
    )


class serve:
    """Start an AudioSocket server for ``handler`` on ``host:port``.

    ``handler`` is ``async def handler(call)`` (the call API; or an object whose ``__call__`` is
    such a coroutine function) or a :class:`CallHandler`. Keyword
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
