"""The link layer's settings, states, events and counters (see :mod:`audionet.modem.proto.arq`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from audionet.errors import ConfigError

SEQ_MOD = 1 << 16
#: Frames beyond the cumulative ack that the SACK bitmap can describe.
SACK_BITS = 32


def seq_diff(a: int, b: int) -> int:
    """How far ``a`` is ahead of ``b`` in sequence space (0 .. 65535)."""
    return (a - b) % SEQ_MOD


@dataclass(frozen=True, slots=True)
class ArqConfig:
    """Connection settings; the defaults suit a full-duplex audio cable at a few kbit/s."""

    window: int = 16  #: frames in flight (and out-of-order frames buffered); at most 32 + 1 (SACK)
    max_payload: int = 512  #: payload bytes per frame; bigger frames waste less air on overhead
    rto_initial: float = 1.0  #: RFC 6298 §2.1: 1 s before any round trip was measured
    #: RFC 6298 §2.4 asks for 1 s; a cable's round trip is steady, so 0.5 s causes no false resends.
    rto_min: float = 0.5
    rto_max: float = 60.0  #: RFC 6298 §2.5
    adaptive: bool = True  #: False: the timeout stays ``rto_initial`` (the original design)
    selective: bool = (
        True  #: buffer out-of-order frames and send SACK; False: go-back to in-order only
    )
    max_retries: int = 12  #: transmissions of one frame before giving up on the peer
    idle_timeout: float = 60.0  #: seconds without hearing the peer while waiting for it
    time_wait: float = 5.0  #: seconds to linger after closing, to re-acknowledge a repeated FIN

    def __post_init__(self) -> None:
        if not 1 <= self.window <= SACK_BITS + 1:
            raise ConfigError(f"window {self.window} must be 1..{SACK_BITS + 1} frames")
        if not 1 <= self.max_payload <= 0xFFFF:
            raise ConfigError(f"frame payload {self.max_payload} must be 1..65535 bytes")

    @classmethod
    def stop_and_wait(cls, max_payload: int = 256) -> ArqConfig:
        """The original implementation's link: one frame at a time, fixed 1 s resend timeout."""
        return cls(window=1, max_payload=max_payload, adaptive=False, selective=False)


class State(enum.Enum):
    """Connection states, named as TCP's (RFC 9293 §3.3.2)."""

    CLOSED = "closed"
    LISTEN = "listen"
    SYN_SENT = "syn-sent"
    SYN_RCVD = "syn-received"
    ESTABLISHED = "established"
    FIN_WAIT = "fin-wait"
    CLOSE_WAIT = "close-wait"
    CLOSING = "closing"
    LAST_ACK = "last-ack"
    TIME_WAIT = "time-wait"


@dataclass(frozen=True, slots=True)
class Connected:
    """The three-way handshake completed."""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A whole message arrived (all its frames, in order)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer sent FIN: it will send nothing more (we close our side automatically)."""


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over; ``reason`` is ``None`` for an orderly close, else what went wrong."""

    reason: str | None = None


Event = Connected | MessageReceived | PeerClosed | Closed


@dataclass(slots=True)
class Stats:
    """Counters for reports and benchmarks."""

    frames_sent: int = 0
    retransmissions: int = 0
    bytes_sent: int = 0  #: payload bytes handed to the line for the first time
    bytes_acked: int = 0
    bytes_received: int = 0  #: payload bytes delivered in order
    frames_received: int = 0
    duplicates: int = 0
    rtt_samples: list[float] = field(default_factory=list)
