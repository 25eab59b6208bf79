"""The original implementation's connection protocol, spoken exactly on the wire (no I/O).

What the original (``oliverzh2000/audio-networking``, ``src/Connection.java``) does, and so what a
:class:`LegacyConnection` sends and expects:

- Frames carry an 8-bit ``seq``; every frame a connection queues (SYN, each piece of a message,
  FIN) takes the next number when it is queued (Connection.java:54-95, ``framesAddedToQueue``).
- Stop-and-wait: the next queued frame goes out only when its ``seq`` equals ``sendSeq``, which
  grows by one when an ACK frame with that ``seq`` arrives (:106, :174-178). A frame not
  acknowledged is sent again every 700 ms (:15, :127), counted from when it finished playing
  (``ConnectionHost.send`` blocks until the audio has drained).
- Every frame without the ACK flag is answered with a header-only frame: the same ``seq``, the ACK
  flag, and its SYN and FIN flags copied (:209-215). A frame whose ``seq`` is ``receiveSeq`` is
  taken (and ``receiveSeq`` grows); the payloads of taken frames are joined from a BEG frame to an
  END frame into one message (:179-204).
- Messages are cut into frames of 256 payload bytes (:14, :56-61).
- Handshake: the opener queues a SYN; the answer is the ACK of that SYN. (The original's
  ``ConnectionHost`` swallows the first SYN of a peer it has no connection for: it creates the
  connection and does not pass the SYN on, ConnectionHost.java:131-133; only the resent SYN is
  answered, so an original that was not set up for us costs one 700 ms timeout.)
- Close: a FIN, answered like any frame with ACK+FIN; the original then forgets the connection
  (ConnectionHost.java:134-146).

Where the original has defects we keep to what it does on the wire but never copy what would harm
us (SPEC §3):

- An ACK whose ``seq`` is not the one we wait for is ignored and counted; the original lets it fall
  through to its data path (Connection.java:174-180), where it can join (and block) a message.
- A frame that neither continues the expected sequence nor repeats the last one is not
  acknowledged: we never acknowledge data we did not take (the original acknowledges every frame,
  so its sender believes lost data delivered). A repeat of the last frame is acknowledged again,
  as it must be when our ACK was lost.
- A continuation frame without its BEG is dropped, not joined; a message larger than
  ``max_message`` aborts the connection instead of filling memory.
- The original resends for ever; we give up after ``max_retries`` transmissions of one frame.
- Our FIN is sent once and never repeated: the original forgets the connection when it takes a FIN,
  and a repeated FIN for a connection it has forgotten makes its ``ConnectionHost.send`` throw in
  its receiving thread (ConnectionHost.java:146-151 with :190-198), after which it hears nothing
  until restarted. Everything before the FIN has been acknowledged, so a lost FIN loses no data;
  we wait ``fin_wait`` for its ACK and close either way.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from audionet.errors import ConfigError, LocalProtocolError
from audionet.modem.proto.arqtypes import (
    Closed,
    Connected,
    Event,
    MessageReceived,
    PeerClosed,
    State,
    Stats,
)
from audionet.modem.proto.frame import MAX_LEGACY_PAYLOAD, Address, Flags, Frame, Protocol

log = logging.getLogger(__name__)

#: The original's sequence numbers are Java bytes (Connection.java:22-23).
SEQ_MOD = 256
#: Payload bytes per frame (Connection.java:14, ``MAX_FRAME_SIZE``).
FRAME_SIZE = 256
#: Seconds between resends of an unacknowledged frame (Connection.java:15, ``RESEND_TIMEOUT``).
RESEND_TIMEOUT = 0.7


@dataclass(frozen=True, slots=True)
class LegacyConfig:
    """Settings of a connection in the original's protocol."""

    max_payload: int = FRAME_SIZE  #: payload bytes per frame; the original reads up to 32767
    resend_timeout: float = RESEND_TIMEOUT  #: the original's 700 ms
    max_retries: int = 20  #: transmissions of one frame before giving up (the original: never)
    fin_wait: float = 3 * RESEND_TIMEOUT  #: how long to wait for the ACK of our only FIN
    max_message: int = 1 << 30  #: bytes of one message held until its END frame

    def __post_init__(self) -> None:
        if not 1 <= self.max_payload <= MAX_LEGACY_PAYLOAD:
            raise ConfigError(
                f"legacy frame size {self.max_payload}: use 1..{MAX_LEGACY_PAYLOAD} bytes (the "
                "original reads the payload length as a signed 16-bit number, so it would take a "
                "longer frame as header-only and lose its payload)"
            )
        if self.resend_timeout <= 0 or self.max_retries < 1 or self.fin_wait <= 0:
            raise ConfigError("legacy timeouts must be positive and max_retries at least 1")
        if self.max_message < 1:
            raise ConfigError("max_message must be at least 1 byte")


@dataclass(slots=True)
class _Out:
    seq: int
    flags: Flags
    payload: bytes


def _no_airtime(payload: int) -> float:
    return 0.0


class LegacyConnection:
    """One end of a connection in the original's protocol (see the module docstring)."""

    def __init__(
        self,
        local: Address,
        remote: Address,
        config: LegacyConfig | None = None,
        airtime: Callable[[int], float] | None = None,
    ) -> None:
        self.local = local
        self.remote = remote
        self.config = config or LegacyConfig()
        #: Seconds a frame with this many payload bytes takes on the line (timers start after it).
        self.airtime = airtime or _no_airtime
        self.state = State.CLOSED
        self.stats = Stats()
        self._events: deque[Event] = deque()
        self._added = 0  # framesAddedToQueue (Connection.java:29)
        self._send_seq = 0  # sendSeq (:22)
        self._recv_seq = 0  # receiveSeq (:23)
        self._queue: deque[_Out] = deque()
        self._inflight: _Out | None = None
        self._deadline = 0.0  # when the frame in flight is due again (or the FIN wait ends)
        self._tx_count = 0
        self._resend = False
        self._acks: deque[Frame] = deque()
        self._message = bytearray()
        self._in_message = False
        self.last_heard = 0.0

    # -- application side -------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Active open: queue a SYN (the original's ``addSynToSendQueue``, Connection.java:79-84)."""
        self._require_closed("connect")
        self._enqueue(Flags.SYN, b"")
        self.state = State.SYN_SENT
        self.last_heard = now

    def accept(self, now: float, seq: int = 0) -> None:
        """Passive open: the host heard the peer's SYN or its first frame, numbered ``seq``."""
        self._require_closed("accept")
        self._recv_seq = seq % SEQ_MOD
        self.state = State.ESTABLISHED
        self.last_heard = now
        self._events.append(Connected())

    def send(self, data: bytes) -> None:
        """Queue one message; it is cut into frames of ``max_payload`` bytes, BEG first, END last.

        An empty message is one empty BEG+END frame (the original queues no frame at all for it,
        Connection.java:56, so an empty file it sends arrives as nothing; it does take ours).
        """
        if self.state not in (State.SYN_SENT, State.ESTABLISHED):
            raise LocalProtocolError(f"cannot send on a connection in state {self.state.value}")
        size = self.config.max_payload
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        for i, chunk in enumerate(chunks):
            flags = (Flags.BEG if i == 0 else Flags.NONE) | (
                Flags.END if i == len(chunks) - 1 else Flags.NONE
            )
            self._enqueue(flags, chunk)

    def close(self) -> None:
        """Send a FIN after everything queued has been acknowledged (sent once, see the docstring)."""
        if self.state is State.ESTABLISHED:
            self._enqueue(Flags.FIN, b"")
            self.state = State.FIN_WAIT
        elif self.state is State.SYN_SENT:
            self._terminate(None)

    def abort(self, reason: str = "aborted") -> None:
        """Forget the connection now (the original's protocol has no reset)."""
        if self.state is not State.CLOSED:
            self._terminate(reason)

    @property
    def pending(self) -> int:
        """Payload bytes queued or in flight, not yet acknowledged."""
        inflight = len(self._inflight.payload) if self._inflight is not None else 0
        return inflight + sum(len(o.payload) for o in self._queue)

    @property
    def idle(self) -> bool:
        """Nothing of ours queued or waiting for an acknowledgement."""
        return self._inflight is None and not self._queue

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def expected_seq(self) -> int:
        """The ``seq`` of the next frame we will take from the peer (``receiveSeq``)."""
        return self._recv_seq

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # -- line side ---------------------------------------------------------------------------

    def poll_frame(self, now: float) -> Frame | None:
        """The next frame to put on the line: an owed ACK first, then data; or ``None``."""
        if self._acks:
            return self._acks.popleft()
        if self.state is State.CLOSED:
            return None
        out = self._inflight
        if out is not None:
            if not self._resend:
                return None
            self._resend = False
            self.stats.retransmissions += 1
            return self._transmit(out, now)
        if self._queue and self._queue[0].seq == self._send_seq:  # Connection.java:106
            out = self._inflight = self._queue.popleft()
            self._tx_count = 0
            self.stats.bytes_sent += len(out.payload)
            return self._transmit(out, now)
        return None

    def receive_frame(self, frame: Frame, now: float) -> None:
        """Take in a frame of the peer's (already checked and routed to us)."""
        if self.state is State.CLOSED or frame.protocol is not Protocol.CONNECTION:
            return
        self.last_heard = now
        self.stats.frames_received += 1
        if frame.flags & Flags.ACK:
            self._on_ack(frame)
            return
        if frame.flags & Flags.FIN:
            # the peer is done (the original forgets a connection on any FIN, whatever its seq)
            if frame.seq != self._recv_seq:
                log.info("%s: FIN seq %d, expected %d", self.local, frame.seq, self._recv_seq)
            self._ack(frame)
            self._events.append(PeerClosed())
            self._terminate(None)
        elif frame.seq == self._recv_seq:
            self._recv_seq = (self._recv_seq + 1) % SEQ_MOD
            self._ack(frame)
            if not frame.flags & Flags.SYN:
                self._deliver(frame)
        elif frame.seq == (self._recv_seq - 1) % SEQ_MOD:
            self.stats.duplicates += 1  # our ACK of it was lost: acknowledge it again
            self._ack(frame)
        else:
            self.stats.duplicates += 1
            log.info(
                "%s: ignored frame seq %d from %s (expected %d); not acknowledged",
                self.local, frame.seq, self.remote, self._recv_seq,
            )  # fmt: skip

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` wants to run: a resend, or the end of the FIN wait."""
        if self.state is State.CLOSED or self._inflight is None or self._resend:
            return None
        return self._deadline

    def handle_timer(self, now: float) -> None:
        out = self._inflight
        if self.state is State.CLOSED or out is None or self._resend or now < self._deadline:
            return
        if out.flags & Flags.FIN:
            log.info("%s: no ACK of our FIN from %s; closing anyway", self.local, self.remote)
            self._terminate(None)
        elif self._tx_count >= self.config.max_retries:
            self.abort(f"no acknowledgement after {self.config.max_retries} tries")
        else:
            self._resend = True

    # -- internals ---------------------------------------------------------------------------

    def _require_closed(self, what: str) -> None:
        if self.state is not State.CLOSED or self._added:
            raise LocalProtocolError(f"cannot {what} a connection in state {self.state.value}")

    def _enqueue(self, flags: Flags, payload: bytes) -> None:
        self._queue.append(_Out(self._added % SEQ_MOD, flags, payload))
        self._added += 1

    def _transmit(self, out: _Out, now: float) -> Frame:
        self._tx_count += 1
        wait = self.config.fin_wait if out.flags & Flags.FIN else self.config.resend_timeout
        self._deadline = now + self.airtime(len(out.payload)) + wait
        self.stats.frames_sent += 1
        return Frame(self.local, self.remote, out.seq, out.flags, payload=out.payload)

    def _ack(self, frame: Frame) -> None:
        # Connection.java:211-212: same seq, ACK, the SYN and FIN flags copied, no payload
        flags = Flags.ACK | (frame.flags & (Flags.SYN | Flags.FIN))
        self._acks.append(Frame(self.local, self.remote, frame.seq, flags))

    def _on_ack(self, frame: Frame) -> None:
        out = self._inflight
        if out is None or frame.seq != self._send_seq:
            self.stats.duplicates += 1  # stray or repeated: never to the data path
            return
        self._inflight = None
        self._resend = False
        self._send_seq = (self._send_seq + 1) % SEQ_MOD
        self.stats.bytes_acked += len(out.payload)
        if out.flags & Flags.SYN and self.state is State.SYN_SENT:
            self.state = State.ESTABLISHED
            self._events.append(Connected())
        elif out.flags & Flags.FIN:
            self._terminate(None)

    def _deliver(self, frame: Frame) -> None:
        self.stats.bytes_received += len(frame.payload)
        if frame.flags & Flags.BEG:
            if self._message:
                log.info("%s: a new message began before the last one ended", self.local)
            self._message.clear()
            self._in_message = True
        if not self._in_message:
            log.info("%s: dropped a frame that continues no message (no BEG)", self.local)
            return
        self._message += frame.payload
        if len(self._message) > self.config.max_message:
            self.abort(f"message larger than {self.config.max_message} bytes")
            return
        if frame.flags & Flags.END:
            self._events.append(MessageReceived(bytes(self._message)))
            self._message.clear()
            self._in_message = False

    def _terminate(self, reason: str | None) -> None:
        self.state = State.CLOSED
        self._queue.clear()
        self._inflight = None
        self._resend = False
        self._message.clear()
        self._events.append(Closed(reason))

    def take_acks(self) -> list[Frame]:
        """ACKs still owed when the connection closed (the host sends them on its behalf)."""
        acks = list(self._acks)
        self._acks.clear()
        return acks
