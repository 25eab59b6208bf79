"""``audionet audiosocket bridge``: two AudioSocket servers joined in one call, as Asterisk joins them.

The bridge connects to both servers as the Asterisk-like client does (UUID first, TCP_NODELAY, every
message from a server checked against what Asterisk accepts) and relays each server's audio to the
other as it arrives, through a :class:`~audionet.bridges.relay.Relay` per direction (G.711, jitter,
frame loss). It keeps no clock of its own: frames leave when they arrive (or when their jitter delay
ends), so the two servers' 20 ms clocks are the only clocks, as in an Asterisk bridge between an
``AudioSocket()`` leg and a ``Dial(AudioSocket/...)`` leg (SPEC §4 and §5).

Like Asterisk, a leg ends when its server hangs up (a hangup message or a closed socket), when it
sends something Asterisk would drop the call for, or when it sends nothing for ``idle_timeout``
seconds (Asterisk's 2 s); the bridge then ends the other leg the way Asterisk does, by closing its
socket, which that server sees as an ordinary hangup.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid as uuid_mod
from dataclasses import dataclass, replace
from typing import cast

from audionet.audiosocket.check import AsteriskChecker
from audionet.audiosocket.client import CONNECT_TIMEOUT
from audionet.audiosocket.proto import Audio, Hangup, encode_uuid
from audionet.bridges.relay import Impairments, Relay, RelayStats
from audionet.errors import AudioError

log = logging.getLogger(__name__)

#: Asterisk hangs up a call after 2 s without audio from the server.
IDLE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class LegEnd:
    """How a leg ended: ``by_server`` (its server hung up or misbehaved), ``error`` (it misbehaved)."""

    leg: int
    reason: str
    by_server: bool
    error: bool


@dataclass(frozen=True, slots=True)
class BridgeResult:
    seconds: float
    #: ``stats[0]``: leg 1's audio relayed to leg 2; ``stats[1]``: leg 2's to leg 1.
    stats: tuple[RelayStats, RelayStats]
    ends: tuple[LegEnd, ...]

    @property
    def error(self) -> LegEnd | None:
        return next((e for e in self.ends if e.error), None)


class _Leg(asyncio.Protocol):
    """One leg: the Asterisk side of a call to one server."""

    def __init__(self, bridge: Bridge, index: int, call_id: uuid_mod.UUID) -> None:
        self.bridge = bridge
        self.index = index
        self.uuid = call_id
        self.checker = AsteriskChecker()
        self.transport: asyncio.Transport | None = None
        self.ended = False
        self.last_audio = time.monotonic()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(encode_uuid(self.uuid))  # Asterisk: the UUID is always first

    def data_received(self, data: bytes) -> None:
        if self.ended:
            return
        now = time.monotonic()
        seen = len(self.checker.violations)
        for ev in self.checker.receive_data(data, now):
            if isinstance(ev, Audio):
                self.last_audio = now
                self.bridge._relay(self.index, ev, now)
            elif isinstance(ev, Hangup):
                self.bridge._leg_ended(self.index, ev.reason, error=False)
                return
        if len(self.checker.violations) > seen:
            v = self.checker.violations[seen]
            self.bridge._leg_ended(self.index, f"Asterisk would drop the call: {v.message}", True)

    def eof_received(self) -> bool:
        self._closed_by_server()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed_by_server()
        if not self.closed.done():
            self.closed.set_result(None)

    def _closed_by_server(self) -> None:
        if self.ended:
            return
        before = len(self.checker.violations)
        self.checker.receive_data(b"", time.monotonic())
        cut = [
            v.message
            for v in self.checker.violations[before:]
            if v.message.startswith("connection closed in")
        ]
        reason = (
            f"Asterisk would drop the call: {cut[0]}" if cut else "server closed the connection"
        )
        self.bridge._leg_ended(self.index, reason, bool(cut))

    def write(self, messages: list[bytes]) -> None:
        if self.transport is not None and not self.ended and messages:
            self.transport.write(b"".join(messages) if len(messages) > 1 else messages[0])

    def close(self) -> None:
        """Hang up like Asterisk: close the socket (Asterisk never sends a hangup message)."""
        self.ended = True
        if self.transport is not None:
            self.transport.close()


class Bridge:
    """Joins the AudioSocket servers at ``first`` and ``second`` (``(host, port)``) in one call."""

    def __init__(
        self,
        first: tuple[str, int],
        second: tuple[str, int],
        impairments: Impairments | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        imp = impairments or Impairments()
        self.addresses = (first, second)
        seed = imp.seed
        # Each direction has its own random stream (the same seed twice would drop the same frames).
        self.relays = (
            Relay(imp),
            Relay(replace(imp, seed=None if seed is None else seed + 1)),
        )
        self.idle_timeout = idle_timeout
        self.legs: list[_Leg] = []
        self.ends: list[LegEnd] = []
        self._done: asyncio.Future[None] | None = None
        self._timers: list[asyncio.TimerHandle | None] = [None, None]
        self._watchdog: asyncio.TimerHandle | None = None
        self.started = 0.0

    async def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Open both legs (like Asterisk, give up on a server after ``timeout`` seconds)."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.started = time.monotonic()
        for i, (host, port) in enumerate(self.addresses):
            leg = _Leg(self, i, uuid_mod.uuid4())

            def factory(leg: _Leg = leg) -> _Leg:
                return leg

            try:
                await asyncio.wait_for(loop.create_connection(factory, host, port), timeout)
            except (OSError, TimeoutError) as exc:
                for other in self.legs:
                    other.close()
                why = "did not answer in time" if isinstance(exc, TimeoutError) else str(exc)
                raise AudioError(
                    f"leg {i + 1}: no AudioSocket server at {host}:{port} ({why}); start one "
                    f"first, e.g. 'audionet audiosocket serve --port {port}'"
                ) from None
            self.legs.append(leg)
            log.info("leg %d: call %s to %s:%d", i + 1, leg.uuid, host, port)
        self._watchdog = loop.call_later(self.idle_timeout / 4, self._check_idle)

    def _relay(self, index: int, ev: Audio, now: float) -> None:
        if len(self.legs) < 2:
            return  # the other leg is still being dialled: nothing to bridge to yet
        self.relays[index].receive(ev.pcm, ev.rate, now)
        self._flush(index)

    def _flush(self, index: int) -> None:
        self._timers[index] = None
        relay = self.relays[index]
        now = time.monotonic()
        self.legs[1 - index].write(relay.due(now))
        nxt = relay.next_time()
        if nxt is not None and self._timers[index] is None:
            self._timers[index] = asyncio.get_running_loop().call_later(
                max(0.0, nxt - now), self._flush, index
            )

    def _check_idle(self) -> None:
        now = time.monotonic()
        for leg in self.legs:
            if not leg.ended and now - leg.last_audio > self.idle_timeout:
                self._leg_ended(leg.index, f"no audio for {self.idle_timeout:g} s", error=False)
        if not self.finished:
            self._watchdog = asyncio.get_running_loop().call_later(
                self.idle_timeout / 4, self._check_idle
            )

    def _leg_ended(self, index: int, reason: str, error: bool) -> None:
        leg = self.legs[index] if index < len(self.legs) else None
        if leg is None or leg.ended:
            return
        host, port = self.addresses[index]
        (log.warning if error else log.info)(
            "leg %d (%s:%d) ended: %s", index + 1, host, port, reason
        )
        self.ends.append(LegEnd(index, reason, by_server=True, error=error))
        leg.close()
        self.hangup(f"leg {index + 1} ended")

    def hangup(self, reason: str = "bridge hung up") -> None:
        """End every leg still up (closing its socket, as Asterisk does)."""
        for leg in self.legs:
            if not leg.ended:
                self.ends.append(LegEnd(leg.index, reason, by_server=False, error=False))
                leg.close()
        for i, t in enumerate(self._timers):
            if t is not None:
                t.cancel()
                self._timers[i] = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    @property
    def finished(self) -> bool:
        return self._done is not None and self._done.done()

    async def run(self, seconds: float | None = None) -> BridgeResult:
        """Relay until a leg ends or ``seconds`` have passed, then hang up; returns what happened."""
        assert self._done is not None, "connect() first"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._done), seconds)
        self.hangup("bridge time is up" if seconds is not None else "bridge hung up")
        for leg in self.legs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(leg.closed), 2.0)
        return BridgeResult(
            time.monotonic() - self.started,
            (self.relays[0].stats, self.relays[1].stats),
            tuple(self.ends),
        )


async def bridge(
    first: tuple[str, int],
    second: tuple[str, int],
    impairments: Impairments | None = None,
    seconds: float | None = None,
) -> BridgeResult:
    """Join two AudioSocket servers for ``seconds`` (None: until one side hangs up)."""
    b = Bridge(first, second, impairments)
    await b.connect()
    try:
        return await b.run(seconds)
    finally:
        b.hangup()
