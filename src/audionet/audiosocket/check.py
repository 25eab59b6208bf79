"""What Asterisk accepts from an AudioSocket server, as a checker (no I/O; time passed in).

Asterisk's ``ast_audiosocket_receive_frame_with_hangup`` (``res/res_audiosocket.c``) reads a 3-byte
header, then the payload, waiting at most 5 ms for payload bytes; it ends the call on any kind but
hangup (0x00) and audio (0x10-0x18), on an audio message of length 0, and when the payload is late.
Odd audio lengths are dropped too (the frame holds ``length / 2`` samples). The checker records each
breach as a :class:`Violation` and, like Asterisk, stops at the first one in strict use.
"""

from __future__ import annotations

from dataclasses import dataclass

from audionet.audiosocket.proto import (
    AUDIO_RATES,
    HEADER,
    HEADER_SIZE,
    SERVER_KINDS,
    Audio,
    Hangup,
    Kind,
)

#: Asterisk polls 5 ms for a payload that has not fully arrived (``ast_wait_for_input(svc, 5)``).
PAYLOAD_WAIT = 0.005


@dataclass(frozen=True, slots=True)
class Violation:
    """Something Asterisk would have dropped the call for, ``at`` seconds on the caller's clock."""

    at: float
    message: str


class AsteriskChecker:
    """Feeds on the bytes a server sends to Asterisk; yields what Asterisk would play or do."""

    def __init__(self, payload_wait: float = PAYLOAD_WAIT) -> None:
        self.payload_wait = payload_wait
        self.violations: list[Violation] = []
        self.hung_up = False
        self._buf = bytearray()
        self._header_at: float | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def _violate(self, now: float, message: str) -> None:
        self.violations.append(Violation(now, message))

    def receive_data(self, data: bytes, now: float) -> list[Audio | Hangup]:
        """Bytes from the server at time ``now``; ``b""`` is the end of the stream."""
        if not data:
            return self._eof(now)
        if self.hung_up:
            self._violate(now, f"{len(data)} bytes after the hangup message")
            return []
        buf = self._buf
        buf += data
        out: list[Audio | Hangup] = []
        pos = 0
        while len(buf) - pos >= HEADER_SIZE:
            kind, length = HEADER.unpack_from(buf, pos)
            if kind not in SERVER_KINDS:
                self._violate(
                    now, f"message kind 0x{kind:02x}: Asterisk accepts only 0x00 and 0x10-0x18"
                )
            elif kind != Kind.HANGUP and length == 0:
                self._violate(now, "audio message of length 0")
            elif kind != Kind.HANGUP and length & 1:
                self._violate(now, f"audio message of odd length {length}")
            stop = pos + HEADER_SIZE + length
            if stop > len(buf):
                if self._header_at is None:
                    self._header_at = now
                break
            if self._header_at is not None and now - self._header_at > self.payload_wait:
                self._violate(
                    now, f"payload arrived {1000 * (now - self._header_at):.1f} ms after its header"
                )
            self._header_at = None
            if kind == Kind.HANGUP:
                self.hung_up = True
                out.append(Hangup(by_peer=True, reason="server sent a hangup message"))
                if stop < len(buf):
                    self._violate(now, f"{len(buf) - stop} bytes after the hangup message")
                pos = len(buf)
                break
            rate = AUDIO_RATES.get(kind)
            if rate is not None and length and not length & 1:
                out.append(Audio(bytes(buf[pos + HEADER_SIZE : stop]), rate))
            pos = stop
        del buf[:pos]
        return out

    def _eof(self, now: float) -> list[Audio | Hangup]:
        if self._buf:
            self._violate(
                now, f"connection closed in the middle of a message ({len(self._buf)} bytes)"
            )
        if self.hung_up:
            return []
        self._violate(now, "server closed without sending a hangup message first")
        self.hung_up = True
        return [Hangup(by_peer=True, reason="server closed the connection")]
