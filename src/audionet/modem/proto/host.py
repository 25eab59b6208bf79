"""A station on the audio line: routes frames to connections by address, answers pings (no I/O).

:class:`ConnectionHost` owns one line. It accepts frames addressed to its host byte, hands them to
the :class:`~audionet.modem.proto.arq.Connection` for ``(local port, remote address)``, opens
connections for SYNs on listening ports (and answers RST to the others), echoes ping requests, and
interleaves the frames of all connections fairly when the line is free.

On a half-duplex shared line (one cable, both stations) it also does carrier sense: the adapter
tells it when the line is busy (a frame being heard or sent), and after the line falls quiet it
waits a short gap before acknowledging and a longer, randomised one before sending data, as
802.11's SIFS/DIFS, so acknowledgements win the line and two senders rarely collide.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from audionet.errors import ConfigError, LocalProtocolError
from audionet.modem.proto.arq import ArqConfig, Closed, Connection, Event
from audionet.modem.proto.frame import Address, Flags, Frame, Protocol

#: Ports handed out to outgoing connections (listening services use the low ones).
EPHEMERAL_PORTS = range(128, 256)


@dataclass(frozen=True, slots=True)
class IncomingConnection:
    """A peer opened a connection to one of our listening ports."""

    connection: Connection


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """Something happened on one of our connections."""

    connection: Connection
    event: Event


@dataclass(frozen=True, slots=True)
class PingReceived:
    """A ping reply (``reply=True``) or request arrived; ``payload`` is what the pinger sent."""

    remote: Address
    seq: int
    payload: bytes
    time: float
    reply: bool


HostEvent = IncomingConnection | ConnectionEvent | PingReceived


@dataclass(frozen=True, slots=True)
class CarrierConfig:
    """Carrier-sense timing for a half-duplex line, in seconds."""

    ack_gap: float = 0.01  #: quiet time before an acknowledgement may go out (SIFS)
    data_gap: float = 0.05  #: quiet time before data may go out (DIFS) ...
    backoff: float = 0.1  #: ... plus a random share of this


class ConnectionHost:
    """All connections of one station on one audio line (see the module docstring)."""

    def __init__(
        self,
        host: int,
        config: ArqConfig | None = None,
        *,
        half_duplex: bool = False,
        carrier: CarrierConfig | None = None,
        seed: int | None = None,
        airtime: Callable[[int], float] | None = None,
    ) -> None:
        if not 0 <= host <= 255:
            raise ConfigError(f"host byte {host} must be 0..255")
        self.host = host
        self.config = config or ArqConfig()
        self.half_duplex = half_duplex
        #: Line time of a frame by payload size, handed to connections (see ``Connection.airtime``).
        self.airtime = airtime
        self.carrier = carrier or CarrierConfig()
        self._rng = random.Random(seed)
        self._connections: dict[tuple[int, Address], Connection] = {}
        self._listening: set[int] = set()
        self._control: deque[Frame] = deque()
        self._events: deque[HostEvent] = deque()
        self._turn = 0
        self._busy = False
        self._quiet_since = 0.0
        self._backoff = 0.0

    # -- application side -------------------------------------------------------------------

    def listen(self, port: int) -> None:
        """Accept connections to ``port``."""
        Address(self.host, port)  # range check
        self._listening.add(port)

    def connect(
        self,
        remote: Address,
        now: float,
        *,
        port: int | None = None,
        config: ArqConfig | None = None,
    ) -> Connection:
        """Open a connection to ``remote`` from ``port`` (a free ephemeral port by default)."""
        if port is None:
            free = [p for p in EPHEMERAL_PORTS if all(k[0] != p for k in self._connections)]
            if not free:
                raise LocalProtocolError("no free port for another connection")
            port = self._rng.choice(free)
        key = (port, remote)
        if key in self._connections:
            raise LocalProtocolError(f"already connected from port {port} to {remote}")
        conn = Connection(
            Address(self.host, port), remote, config or self.config, self._isn(), self.airtime
        )
        conn.connect(now)
        self._connections[key] = conn
        return conn

    def ping(self, remote: Address, seq: int, payload: bytes) -> None:
        """Queue a ping request (the reply comes back as :class:`PingReceived`, ``reply=True``)."""
        src = Address(self.host, 0)
        self._control.append(
            Frame(src, remote, seq % 0x10000, Flags.NONE, Protocol.PING, payload=payload)
        )

    @property
    def connections(self) -> list[Connection]:
        return list(self._connections.values())

    def next_event(self) -> HostEvent | None:
        return self._events.popleft() if self._events else None

    # -- line side ---------------------------------------------------------------------------

    def set_carrier(self, busy: bool, now: float) -> None:
        """Tell the host whether the line is busy (half duplex: a frame heard or being sent)."""
        if self._busy and not busy:
            self._quiet_since = now
            self._backoff = self._rng.uniform(0, self.carrier.backoff)
        self._busy = busy

    def receive_frame(self, frame: Frame, now: float) -> None:
        """Take in a frame heard on the line (checksums already verified)."""
        if frame.dst.host != self.host:
            return  # someone else's frame on a shared line
        if frame.protocol is Protocol.PING:
            is_reply = bool(frame.flags & Flags.ACK)
            if not is_reply:
                self._control.append(frame.reply(flags=Flags.ACK))
            self._events.append(PingReceived(frame.src, frame.seq, frame.payload, now, is_reply))
            return
        key = (frame.dst.port, frame.src)
        conn = self._connections.get(key)
        if conn is None:
            syn = frame.flags & Flags.SYN and not frame.flags & Flags.ACK
            if not (syn and frame.dst.port in self._listening):
                if not frame.flags & Flags.RST:  # "connection refused" (RFC 9293 §3.10.7.1)
                    refuse = Frame(frame.dst, frame.src, frame.ack, Flags.RST | Flags.ACK,
                                   ack=(frame.seq + 1) % 0x10000)  # fmt: skip
                    self._control.append(refuse)
                return
            conn = Connection(frame.dst, frame.src, self.config, self._isn(), self.airtime)
            conn.listen(now)
            self._connections[key] = conn
            self._events.append(IncomingConnection(conn))
        conn.receive_frame(frame, now)
        self._drain(conn)

    def poll_frame(self, now: float) -> Frame | None:
        """The next frame to transmit now, or ``None`` (carrier sense on a half-duplex line)."""
        if self.half_duplex:
            if self._busy:
                return None
            quiet = now - self._quiet_since
            if quiet < self.carrier.ack_gap:
                return None
            if quiet < self.carrier.data_gap + self._backoff:
                return self._poll(now, acks_only=True)
        return self._poll(now, acks_only=False)

    def get_timer(self) -> float | None:
        times = [t for c in self._connections.values() if (t := c.get_timer()) is not None]
        if self.half_duplex and not self._busy and (self._connections or self._control):
            # when the line will have been quiet long enough for data: poll again then
            times.append(self._quiet_since + self.carrier.data_gap + self._backoff)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for conn in list(self._connections.values()):
            timer = conn.get_timer()
            if timer is not None and now >= timer:
                conn.handle_timer(now)
                self._drain(conn)

    # -- internals ---------------------------------------------------------------------------

    def _isn(self) -> int:
        return self._rng.randrange(0x10000)

    def _poll(self, now: float, *, acks_only: bool) -> Frame | None:
        if self._control:
            return self._control.popleft()
        conns = list(self._connections.values())
        for i in range(len(conns)):
            conn = conns[(self._turn + i) % len(conns)]
            frame = conn.poll_ack(now) if acks_only else conn.poll_frame(now)
            self._drain(conn)
            if frame is not None:
                self._turn = (self._turn + i + 1) % len(conns)
                return frame
        return None

    def _drain(self, conn: Connection) -> None:
        while (event := conn.next_event()) is not None:
            self._events.append(ConnectionEvent(conn, event))
            if isinstance(event, Closed):
                key = (conn.local.port, conn.remote)
                if self._connections.get(key) is conn:
                    del self._connections[key]
                    # the RST of an aborted connection still has to go out
                    if (frame := conn.poll_frame(0.0)) is not None:
                        self._control.append(frame)
