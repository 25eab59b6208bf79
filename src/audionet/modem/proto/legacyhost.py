"""A station speaking the original's protocol: routes frames, opens connections, pings (no I/O).

:class:`LegacyHost` plays the part of the original's ``ConnectionHost`` (ConnectionHost.java) for
:class:`~audionet.modem.proto.legacy.LegacyConnection`: it takes frames addressed to its host
byte (:124-128), echoes ping requests (protocol 1) with the ACK flag, the same ``seq`` and the
payload (:163-168), and hands connection frames to the connection for ``(local port, remote
address)``.

Opening, as the original does it on the wire:

- A SYN to a listening port opens a connection and is answered at once with ACK+SYN (the original
  swallows the first SYN of an unknown peer, ConnectionHost.java:131-133; we do not make our peer
  wait for a timeout). A SYN from a peer we already have a connection with is a repeat when its
  ``seq`` is the one we took last (acknowledged again), else the peer has restarted: the old
  connection is dropped and a new one opened.
- The original's own programs never send a SYN (``FileTransferProtocol.main`` and
  ``ConnectionHost.main`` create both connections by hand), so their first frame is data with
  ``seq`` 0 and BEG: to a listening port, such a frame opens a connection too.
- Anything else from an unknown peer is ignored and not acknowledged.

A FIN for a connection we no longer have is answered with ACK+FIN on its behalf, as the original
means to (ConnectionHost.java:146-151, whose ``send`` then throws because the connection is gone).
There is no RST and no carrier sense: the original has neither (full duplex only).
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from audionet.errors import ConfigError, LocalProtocolError
from audionet.modem.proto.arqtypes import Closed, Event
from audionet.modem.proto.frame import Address, Flags, Frame, Protocol
from audionet.modem.proto.host import PingReceived
from audionet.modem.proto.legacy import SEQ_MOD, LegacyConfig, LegacyConnection

log = logging.getLogger(__name__)

#: Ports for outgoing connections when none is given.
EPHEMERAL_PORTS = range(128, 256)
#: The original's ping goes from port 0 to port 0 (ConnectionHost.java:271).
PING_PORT = 0


@dataclass(frozen=True, slots=True)
class LegacyIncoming:
    """A peer opened a connection to one of our listening ports."""

    connection: LegacyConnection


@dataclass(frozen=True, slots=True)
class LegacyConnectionEvent:
    """Something happened on one of our legacy connections."""

    connection: LegacyConnection
    event: Event


LegacyHostEvent = LegacyIncoming | LegacyConnectionEvent | PingReceived


class LegacyHost:
    """All legacy connections of one station on one audio line (see the module docstring)."""

    def __init__(
        self,
        host: int,
        config: LegacyConfig | None = None,
        *,
        airtime: Callable[[int], float] | None = None,
        max_connections: int = 64,
        seed: int | None = None,
    ) -> None:
        if not 0 <= host <= 255:
            raise ConfigError(f"host byte {host} must be 0..255")
        self.host = host
        self.config = config or LegacyConfig()
        #: Line time of a frame by payload size, handed to connections.
        self.airtime = airtime
        self.max_connections = max_connections
        self._rng = random.Random(seed)
        self._connections: dict[tuple[int, Address], LegacyConnection] = {}
        self._listening: set[int] = set()
        self._control: deque[Frame] = deque()
        self._events: deque[LegacyHostEvent] = deque()
        self._turn = 0

    # -- application side -------------------------------------------------------------------

    def listen(self, port: int) -> None:
        """Take connections to ``port``."""
        Address(self.host, port)  # range check
        self._listening.add(port)

    def connect(
        self,
        remote: Address,
        now: float,
        *,
        port: int | None = None,
        config: LegacyConfig | None = None,
    ) -> LegacyConnection:
        """Open a connection to ``remote`` from ``port`` (the original only hears the port its
        ``Connection`` names, so give it; a free ephemeral one by default)."""
        if port is None:
            free = [p for p in EPHEMERAL_PORTS if all(k[0] != p for k in self._connections)]
            if not free:
                raise LocalProtocolError("no free port for another connection")
            port = self._rng.choice(free)
        key = (port, remote)
        if key in self._connections:
            raise LocalProtocolError(f"already connected from port {port} to {remote}")
        conn = self._new(Address(self.host, port), remote, config)
        conn.connect(now)
        self._connections[key] = conn
        return conn

    def ping(self, remote: Address, seq: int, payload: bytes) -> None:
        """Queue a ping request (the reply comes back as :class:`PingReceived`, ``reply=True``)."""
        src, dst = Address(self.host, PING_PORT), Address(remote.host, PING_PORT)
        self._control.append(
            Frame(src, dst, seq % SEQ_MOD, Flags.NONE, Protocol.PING, payload=payload)
        )

    @property
    def connections(self) -> list[LegacyConnection]:
        return list(self._connections.values())

    def next_event(self) -> LegacyHostEvent | None:
        return self._events.popleft() if self._events else None

    # -- line side ---------------------------------------------------------------------------

    def set_carrier(self, busy: bool, now: float) -> None:
        """The original has no carrier sense (full duplex only): nothing to do."""

    def receive_frame(self, frame: Frame, now: float) -> None:
        """Take in a frame heard on the line (checksums already verified)."""
        if frame.dst.host != self.host:
            return
        if frame.protocol is Protocol.PING:
            is_reply = bool(frame.flags & Flags.ACK)
            if not is_reply:
                self._control.append(frame.reply(flags=Flags.ACK))
            self._events.append(PingReceived(frame.src, frame.seq, frame.payload, now, is_reply))
            return
        key = (frame.dst.port, frame.src)
        conn = self._connections.get(key)
        opening = frame.flags & (Flags.SYN | Flags.ACK) == Flags.SYN
        repeat = conn is not None and frame.seq == (conn.expected_seq - 1) % SEQ_MOD
        if conn is not None and opening and not repeat and frame.dst.port in self._listening:
            log.info("%s opened again (restarted?): a new connection", frame.src)
            conn.abort("the peer opened the connection again")
            self._drain(conn)
            conn = None
        if conn is None:
            conn = self._open(frame, now)
            if conn is None:
                return
        conn.receive_frame(frame, now)
        self._drain(conn)

    def poll_frame(self, now: float) -> Frame | None:
        """The next frame to transmit, or ``None``."""
        if self._control:
            return self._control.popleft()
        conns = list(self._connections.values())
        for i in range(len(conns)):
            conn = conns[(self._turn + i) % len(conns)]
            frame = conn.poll_frame(now)
            self._drain(conn)
            if frame is not None:
                self._turn = (self._turn + i + 1) % len(conns)
                return frame
        return self._control.popleft() if self._control else None

    def get_timer(self) -> float | None:
        times = [t for c in self._connections.values() if (t := c.get_timer()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for conn in list(self._connections.values()):
            timer = conn.get_timer()
            if timer is not None and now >= timer:
                conn.handle_timer(now)
                self._drain(conn)

    # -- internals ---------------------------------------------------------------------------

    def _new(
        self, local: Address, remote: Address, config: LegacyConfig | None
    ) -> LegacyConnection:
        return LegacyConnection(local, remote, config or self.config, self.airtime)

    def _open(self, frame: Frame, now: float) -> LegacyConnection | None:
        """A connection for a frame from an unknown peer, or ``None`` (frame ignored)."""
        if frame.flags & Flags.ACK:
            return None  # stray
        if frame.flags & Flags.FIN:
            # ConnectionHost.java:146-151: acknowledge a FIN on behalf of a finished connection
            self._control.append(Frame(frame.dst, frame.src, frame.seq, Flags.ACK | Flags.FIN))
            return None
        first = frame.flags & Flags.SYN or (frame.seq == 0 and frame.flags & Flags.BEG)
        if frame.dst.port not in self._listening or not first:
            log.info("ignored a frame from %s to port %d: no connection", frame.src, frame.dst.port)
            return None
        if len(self._connections) >= self.max_connections:
            log.warning(
                "refused a connection from %s: %d connections", frame.src, len(self._connections)
            )
            return None
        conn = self._new(frame.dst, frame.src, None)
        conn.accept(now, frame.seq)
        self._connections[(frame.dst.port, frame.src)] = conn
        self._events.append(LegacyIncoming(conn))
        return conn

    def _drain(self, conn: LegacyConnection) -> None:
        while (event := conn.next_event()) is not None:
            self._events.append(LegacyConnectionEvent(conn, event))
            if isinstance(event, Closed):
                key = (conn.local.port, conn.remote)
                if self._connections.get(key) is conn:
                    del self._connections[key]
                self._control.extend(conn.take_acks())  # e.g. the ACK of the peer's FIN
