"""A reliable connection over lossy frames: selective repeat, RFC 6298 timer, FIN (no I/O).

:class:`Connection` is a sans-I/O state machine in the style of aioquic: frames go in with
:meth:`Connection.receive_frame`, the next frame to transmit comes out of
:meth:`Connection.poll_frame` (called whenever the line is free, so acknowledgements are always
fresh and ride on data frames), :meth:`Connection.get_timer` says when
:meth:`Connection.handle_timer` wants to run, and what the application should know comes out of
:meth:`Connection.next_event`. ``now`` is always passed in.

Sequence numbers count frames (16 bits, modulo arithmetic as RFC 1982); SYN, FIN and every
data-carrying frame consume one, as in TCP (RFC 9293 §3.4). Each frame after the SYN carries the
ACK flag with the cumulative acknowledgement (the next sequence number expected) and a 32-bit SACK
bitmap of frames received beyond it (RFC 2018's idea in a fixed field). The sender keeps up to
``window`` frames in flight, retransmits a frame when three frames sent after it have been
acknowledged (RFC 6675's DupThresh) or when its retransmission timer expires (RFC 6298, with Karn's
algorithm and exponential back-off). :meth:`ArqConfig.stop_and_wait` reproduces the original
design: one frame in flight, a fixed 1 s timeout, 256-byte frames, no out-of-order buffering.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from audionet.errors import LocalProtocolError
from audionet.modem.proto.arqtypes import (
    SACK_BITS,
    SEQ_MOD,
    ArqConfig,
    Closed,
    Connected,
    Event,
    MessageReceived,
    PeerClosed,
    State,
    Stats,
    seq_diff,
)
from audionet.modem.proto.frame import Address, Flags, Frame, Protocol

#: Frames acknowledged after a missing one that prove it lost (RFC 6675 §2, DupThresh).
DUP_THRESH = 3
_OCCUPIES = Flags.SYN | Flags.FIN | Flags.BEG | Flags.END
_NEVER = float("inf")  # "sent" time of a frame waiting to be resent: no timer runs for it

__all__ = [
    "SACK_BITS",
    "SEQ_MOD",
    "ArqConfig",
    "Closed",
    "Connected",
    "Connection",
    "Event",
    "MessageReceived",
    "PeerClosed",
    "State",
    "Stats",
    "seq_diff",
]


def _no_airtime(payload: int) -> float:
    return 0.0


@dataclass(slots=True)
class _Segment:
    flags: Flags
    payload: bytes
    sent: float = 0.0
    tx_count: int = 0
    order: int = 0
    sacked: bool = False


class Connection:
    """One end of a reliable connection between ``local`` and ``remote`` (see the module doc)."""

    def __init__(
        self,
        local: Address,
        remote: Address,
        config: ArqConfig | None = None,
        isn: int = 0,
        airtime: Callable[[int], float] | None = None,
    ) -> None:
        self.local = local
        #: Seconds a frame with this many payload bytes takes on the line: the timers start when
        #: the frame has been sent, not when it was handed over (a frame can take a second).
        self.airtime = airtime or _no_airtime
        self.remote = remote
        self.config = config or ArqConfig()
        self.state = State.CLOSED
        self.stats = Stats()
        self._events: deque[Event] = deque()
        # Sender.
        self._queue: deque[_Segment] = deque()  # not yet sent
        self._out: dict[int, _Segment] = {}  # sent, not yet cumulatively acknowledged
        self._retx: deque[int] = deque()  # to send again, oldest first
        self._snd_una = self._snd_nxt = isn % SEQ_MOD
        self._fin_seq: int | None = None
        self._peer_window = 1
        self._order = 0
        # Receiver.
        self._rcv_nxt: int | None = None
        self._ooo: dict[int, Frame] = {}
        self._message = bytearray()
        self._in_message = False
        self._ack_pending = False
        self._rst_pending = False
        # Timers (RFC 6298).
        self._srtt: float | None = None
        self._rttvar = 0.0
        self.rto = self.config.rto_initial
        self._last_heard = 0.0
        self._time_wait_until: float | None = None

    # -- application side -------------------------------------------------------------------

    def connect(self, now: float) -> None:
        """Start an active open: send SYN."""
        self._require(State.CLOSED, "connect")
        self._queue.append(_Segment(Flags.SYN, b""))
        self.state = State.SYN_SENT
        self._last_heard = now

    def listen(self, now: float) -> None:
        """Wait for the peer's SYN (a passive open)."""
        self._require(State.CLOSED, "listen")
        self.state = State.LISTEN
        self._last_heard = now

    def send(self, data: bytes) -> None:
        """Queue one message; it arrives whole, in order, as one :class:`MessageReceived`."""
        if self.state not in (State.SYN_SENT, State.SYN_RCVD, State.ESTABLISHED, State.CLOSE_WAIT):
            raise LocalProtocolError(f"cannot send on a connection in state {self.state.value}")
        size = self.config.max_payload
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        for i, chunk in enumerate(chunks):
            flags = (Flags.BEG if i == 0 else Flags.NONE) | (
                Flags.END if i == len(chunks) - 1 else Flags.NONE
            )
            self._queue.append(_Segment(flags, chunk))

    def close(self) -> None:
        """Orderly close: FIN after everything queued has been sent."""
        if self.state in (State.ESTABLISHED, State.SYN_RCVD):
            self._queue.append(_Segment(Flags.FIN, b""))
            self.state = State.FIN_WAIT
        elif self.state is State.CLOSE_WAIT:
            self._queue.append(_Segment(Flags.FIN, b""))
            self.state = State.LAST_ACK
        elif self.state in (State.LISTEN, State.SYN_SENT):
            self._terminate(None)

    def abort(self, reason: str = "aborted") -> None:
        """Drop the connection now and tell the peer with RST."""
        if self.state is not State.CLOSED:
            self._rst_pending = self._rcv_nxt is not None
            self._terminate(reason)

    @property
    def pending(self) -> int:
        """Payload bytes queued or in flight, not yet acknowledged."""
        return sum(len(s.payload) for s in self._queue) + sum(
            len(s.payload) for s in self._out.values()
        )

    def poll_ack(self, now: float) -> Frame | None:
        """A pure acknowledgement if one is owed (half duplex: it may take the line first)."""
        if self._ack_pending and self._rcv_nxt is not None and self.state is not State.CLOSED:
            return self._frame(self._snd_nxt, Flags.NONE, b"")
        return None

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # -- line side ---------------------------------------------------------------------------

    def poll_frame(self, now: float) -> Frame | None:
        """The next frame to put on the line now, or ``None``; call again until ``None``."""
        if self._rst_pending:
            self._rst_pending = False
            return self._frame(self._snd_nxt, Flags.RST, b"")
        if self.state is State.CLOSED:
            return None
        while self._retx:
            seq = self._retx.popleft()
            seg = self._out.get(seq)
            if seg is not None and not seg.sacked:
                self.stats.retransmissions += 1
                return self._transmit(seq, seg, now)
        window = min(self.config.window, self._peer_window)
        if (
            self._queue
            and seq_diff(self._snd_nxt, self._snd_una) < window
            and (self._queue[0].flags & Flags.SYN or self._rcv_nxt is not None)
        ):
            seg = self._queue.popleft()
            seq = self._snd_nxt
            self._snd_nxt = (seq + 1) % SEQ_MOD
            self._out[seq] = seg
            if seg.flags & Flags.FIN:
                self._fin_seq = seq
            self.stats.bytes_sent += len(seg.payload)
            return self._transmit(seq, seg, now)
        if self._ack_pending:
            return self._frame(self._snd_nxt, Flags.NONE, b"")
        return None

    def receive_frame(self, frame: Frame, now: float) -> None:
        """Take in a frame from the peer (already checked and routed to us)."""
        if self.state is State.CLOSED or frame.protocol is not Protocol.CONNECTION:
            return
        self._last_heard = now
        self.stats.frames_received += 1
        if frame.flags & Flags.RST:
            if self.state is not State.TIME_WAIT:  # RFC 1337: no TIME-WAIT assassination
                self._terminate("connection reset by peer")
            return
        if self.state is State.LISTEN:
            if frame.flags & Flags.SYN and not frame.flags & Flags.ACK:
                self._rcv_nxt = (frame.seq + 1) % SEQ_MOD
                self._queue.appendleft(_Segment(Flags.SYN, b""))
                self.state = State.SYN_RCVD
                self._peer_window = max(1, frame.window)
            return
        if self.state is State.SYN_SENT:
            if frame.flags & Flags.SYN and frame.flags & Flags.ACK and frame.ack == self._snd_nxt:
                self._rcv_nxt = (frame.seq + 1) % SEQ_MOD
                self._ack_pending = True
                self._on_ack(frame, now)
            return
        if frame.flags & Flags.ACK:
            self._on_ack(frame, now)
        if self.is_closed:
            return
        if frame.payload or frame.flags & _OCCUPIES:
            self._on_data(frame, now)

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` should next run (absolute time), or ``None``."""
        if self.state is State.CLOSED:
            return None
        if self._time_wait_until is not None:
            return self._time_wait_until
        times = [s.sent + self.rto for s in self._out.values() if not s.sacked and s.sent < _NEVER]
        if self._waiting():
            times.append(self._last_heard + self.config.idle_timeout)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        if self.state is State.CLOSED:
            return
        if self._time_wait_until is not None:
            if now >= self._time_wait_until:
                self._terminate(None)
            return
        if self._waiting() and now - self._last_heard >= self.config.idle_timeout:
            self.abort(f"peer silent for {self.config.idle_timeout:g} s")
            return
        expired = [seq for seq, s in self._out.items() if not s.sacked and now >= s.sent + self.rto]
        if not expired:
            return
        for seq in expired:
            if self._out[seq].tx_count >= self.config.max_retries:
                self.abort(f"no acknowledgement after {self.config.max_retries} tries")
                return
        self._retx.extend(sorted(expired, key=lambda q: seq_diff(q, self._snd_una)))
        for seq in expired:  # not resent yet: do not let them expire again meanwhile
            self._out[seq].sent = _NEVER
        if self.config.adaptive:
            self.rto = min(self.rto * 2, self.config.rto_max)  # RFC 6298 §5.5

    # -- internals ---------------------------------------------------------------------------

    def _require(self, state: State, what: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot {what} a connection in state {self.state.value}")

    def _waiting(self) -> bool:
        return bool(self._out or self._queue) or self.state in (State.SYN_SENT, State.SYN_RCVD)

    def _frame(self, seq: int, flags: Flags, payload: bytes) -> Frame:
        ack = sack = 0
        if self._rcv_nxt is not None:
            flags |= Flags.ACK
            ack = self._rcv_nxt
            if self.config.selective and self._ooo:
                flags |= Flags.SACK
                for q in self._ooo:
                    sack |= 1 << (seq_diff(q, ack) - 1)
            self._ack_pending = False
        return Frame(
            self.local, self.remote, seq, flags, Protocol.CONNECTION, ack, self.config.window,
            sack, payload,
        )  # fmt: skip

    def _transmit(self, seq: int, seg: _Segment, now: float) -> Frame:
        seg.tx_count += 1
        seg.sent = now + self.airtime(len(seg.payload))
        self._order += 1
        seg.order = self._order
        self.stats.frames_sent += 1
        return self._frame(seq, seg.flags, seg.payload)

    def _on_ack(self, frame: Frame, now: float) -> None:
        self._peer_window = max(1, frame.window)
        advance = seq_diff(frame.ack, self._snd_una)
        if advance > seq_diff(self._snd_nxt, self._snd_una):
            return  # acknowledges something never sent: stale or bogus
        sample: float | None = None
        for _ in range(advance):
            acked = self._out.pop(self._snd_una)
            # Karn: never time a resent frame, nor one whose timer expired (its resend is pending:
            # ``sent`` is _NEVER, and a sample of minus infinity would turn the RTO into NaN).
            if acked.tx_count == 1 and not acked.sacked and acked.sent < _NEVER:
                sample = now - acked.sent
            self.stats.bytes_acked += len(acked.payload)
            self._snd_una = (self._snd_una + 1) % SEQ_MOD
        if frame.flags & Flags.SACK:
            for i in range(SACK_BITS):
                seg = self._out.get((frame.ack + 1 + i) % SEQ_MOD)
                if frame.sack >> i & 1 and seg is not None and not seg.sacked:
                    seg.sacked = True
                    if seg.tx_count == 1 and seg.sent < _NEVER:
                        sample = now - seg.sent
            self._fast_retransmit()
        if sample is not None and self.config.adaptive:
            self._rtt_sample(sample)
        fin_acked = self._fin_seq is not None and self._fin_seq not in self._out
        if self.state is State.SYN_SENT or (self.state is State.SYN_RCVD and advance):
            self.state = State.ESTABLISHED
            self._events.append(Connected())
        elif fin_acked and self.state is State.CLOSING:
            self._enter_time_wait(now)
        elif fin_acked and self.state is State.LAST_ACK:
            self._terminate(None)

    def _fast_retransmit(self) -> None:
        sacked_orders = sorted(s.order for s in self._out.values() if s.sacked)
        if len(sacked_orders) < DUP_THRESH:
            return
        threshold = sacked_orders[-DUP_THRESH]  # order of the 3rd most recently sent sacked frame
        for seq, seg in self._out.items():
            if not seg.sacked and seg.order < threshold and seq not in self._retx:
                self._retx.append(seq)
                seg.sent = _NEVER  # resend pending: no timer until it goes out again

    def _rtt_sample(self, r: float) -> None:
        self.stats.rtt_samples.append(r)
        if self._srtt is None:  # RFC 6298 §2.2
            self._srtt, self._rttvar = r, r / 2
        else:  # RFC 6298 §2.3, alpha = 1/8, beta = 1/4
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - r)
            self._srtt = 0.875 * self._srtt + 0.125 * r
        rto = self._srtt + max(0.01, 4 * self._rttvar)
        self.rto = min(max(rto, self.config.rto_min), self.config.rto_max)

    def _on_data(self, frame: Frame, now: float) -> None:
        assert self._rcv_nxt is not None
        self._ack_pending = True
        offset = seq_diff(frame.seq, self._rcv_nxt)
        limit = self.config.window if self.config.selective else 1
        if offset >= limit or frame.seq in self._ooo:
            self.stats.duplicates += 1
            if frame.flags & Flags.SYN and self.state is State.SYN_RCVD:
                self._resend_syn()
            return
        if frame.flags & Flags.SYN:
            return
        self._ooo[frame.seq] = frame
        while self._rcv_nxt in self._ooo:
            self._deliver(self._ooo.pop(self._rcv_nxt), now)
            self._rcv_nxt = (self._rcv_nxt + 1) % SEQ_MOD

    def _resend_syn(self) -> None:
        for seq, seg in self._out.items():
            if seg.flags & Flags.SYN and seq not in self._retx:
                self._retx.append(seq)

    def _deliver(self, frame: Frame, now: float) -> None:
        self.stats.bytes_received += len(frame.payload)
        if frame.flags & Flags.BEG:
            self._message.clear()
            self._in_message = True
        if self._in_message:
            self._message += frame.payload
        if frame.flags & Flags.END and self._in_message:
            self._events.append(MessageReceived(bytes(self._message)))
            self._message.clear()
            self._in_message = False
        if frame.flags & Flags.FIN:
            self._events.append(PeerClosed())
            if self.state in (State.ESTABLISHED, State.SYN_RCVD):
                self.state = State.CLOSE_WAIT
                self.close()
            elif self.state is State.FIN_WAIT:
                fin_acked = self._fin_seq is not None and self._fin_seq not in self._out
                if fin_acked:
                    self._enter_time_wait(now)
                else:
                    self.state = State.CLOSING

    def _enter_time_wait(self, now: float) -> None:
        self.state = State.TIME_WAIT
        self._time_wait_until = now + self.config.time_wait

    def _terminate(self, reason: str | None) -> None:
        self.state = State.CLOSED
        self._queue.clear()
        self._out.clear()
        self._retx.clear()
        self._events.append(Closed(reason))
