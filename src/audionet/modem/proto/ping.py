"""Ping over the audio line: requests carry their send time, so replies need no state (no I/O).

As in the original, the payload of a request is the 8-byte send timestamp (here microseconds of the
caller's clock, big-endian signed); the peer's :class:`~audionet.modem.proto.host.ConnectionHost`
echoes it back with the ACK flag. :class:`Pinger` schedules ``count`` requests ``interval`` apart
and turns replies into round-trip times; :class:`PingStats` reports min/avg/max and loss.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Protocol

from audionet.errors import ConfigError
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import PingReceived

_STAMP = struct.Struct(">q")


class PingLine(Protocol):
    """A host that sends ping requests: a ``ConnectionHost`` or a ``LegacyHost``."""

    def ping(self, remote: Address, seq: int, payload: bytes) -> None: ...


def encode_timestamp(now: float) -> bytes:
    """8-byte payload for a request sent at ``now`` (seconds)."""
    return _STAMP.pack(round(now * 1e6))


def decode_timestamp(payload: bytes) -> float | None:
    """The send time in a reply, or ``None`` if the payload is not a timestamp."""
    if len(payload) != _STAMP.size:
        return None
    return float(_STAMP.unpack(payload)[0]) / 1e6


@dataclass(frozen=True, slots=True)
class PingStats:
    """What a ping run measured."""

    sent: int
    rtts: tuple[float, ...]

    @property
    def received(self) -> int:
        return len(self.rtts)

    @property
    def loss(self) -> float:
        """Lost requests in percent."""
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 0.0

    @property
    def min(self) -> float | None:
        return min(self.rtts) if self.rtts else None

    @property
    def avg(self) -> float | None:
        return sum(self.rtts) / len(self.rtts) if self.rtts else None

    @property
    def max(self) -> float | None:
        return max(self.rtts) if self.rtts else None

    def summary(self) -> str:
        text = f"{self.sent} sent, {self.received} received, {self.loss:.0f}% loss"
        if self.rtts:
            lo, mean, hi = (
                1e3 * x for x in (min(self.rtts), sum(self.rtts) / len(self.rtts), max(self.rtts))
            )
            text += f", rtt min/avg/max = {lo:.1f}/{mean:.1f}/{hi:.1f} ms"
        return text


@dataclass
class Pinger:
    """Pings ``remote`` ``count`` times, ``interval`` s apart, waiting ``timeout`` for the last."""

    remote: Address
    count: int = 4
    interval: float = 1.0
    timeout: float = 3.0
    _next_send: float | None = None
    _sent: int = 0
    _rtts: dict[int, float] = field(default_factory=dict)
    _last_sent_at: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 1 or self.interval <= 0 or self.timeout <= 0:
            raise ConfigError("ping needs count >= 1 and a positive interval and timeout")

    def poll(self, host: PingLine, now: float) -> None:
        """Queue the next request on ``host`` if one is due."""
        if self._next_send is None:
            self._next_send = now
        while self._sent < self.count and now >= self._next_send:
            host.ping(self.remote, self._sent, encode_timestamp(now))
            self._sent += 1
            self._last_sent_at = now
            self._next_send += self.interval

    def handle_event(self, event: PingReceived, now: float) -> float | None:
        """Take a reply; returns its round-trip time, or ``None`` if it is not one of ours."""
        if not event.reply or event.remote.host != self.remote.host:
            return None
        sent = decode_timestamp(event.payload)
        if sent is None or event.seq >= self._sent or event.seq in self._rtts:
            return None
        rtt = max(0.0, now - sent)
        self._rtts[event.seq] = rtt
        return rtt

    def get_timer(self) -> float | None:
        if self._next_send is None:
            return None
        return self._next_send if self._sent < self.count else self._deadline()

    def _deadline(self) -> float:
        return self._last_sent_at + self.timeout

    def done(self, now: float) -> bool:
        """All sent and either all answered or the last one timed out."""
        if self._sent < self.count:
            return False
        return len(self._rtts) == self.count or now >= self._deadline()

    def stats(self) -> PingStats:
        return PingStats(self._sent, tuple(self._rtts[k] for k in sorted(self._rtts)))
