"""AudioSocket wire format and per-call state machine, without any I/O ("sans-I/O").

Every message is one byte of kind, two bytes of big-endian payload length, then the payload
(Asterisk ``res/res_audiosocket.c``, ``include/asterisk/res_audiosocket.h``). Asterisk is the TCP
client: it sends the call's UUID first, then audio and DTMF; the server sends audio and, to end the
call, a hangup message. Asterisk itself never sends a hangup message: it closes the socket, so an
end of stream is a normal hangup.

This module never touches a socket or a clock: :class:`Decoder` turns any fragmentation of the byte
stream into whole :class:`Message` objects, :class:`ServerConnection` turns those into typed events
(:class:`Connected`, :class:`Audio`, :class:`Dtmf`, :class:`Hangup`, :class:`Error`) and enforces the
rules (UUID first and exactly 16 bytes, size limits), and the ``encode_*`` functions produce only
messages that Asterisk accepts from a server.
"""

from __future__ import annotations

import enum
import struct
import uuid as uuid_mod
from collections.abc import Callable
from dataclasses import dataclass

from audionet.errors import LocalProtocolError, RemoteProtocolError


class Kind(enum.IntEnum):
    """Message kinds (``enum ast_audiosocket_msg_kind`` in Asterisk's ``res_audiosocket.h``)."""

    #: End of call. Sent by the server; Asterisk accepts it but never sends it (it closes instead).
    HANGUP = 0x00
    #: 16 raw bytes of UUID, always the first message from Asterisk.
    UUID = 0x01
    #: Used by some other libraries for silence; Asterisk neither sends nor accepts it.
    SILENCE = 0x02
    #: One ASCII digit ('0'-'9', '*', '#', 'A'-'D'), from Asterisk only, one message per digit.
    DTMF = 0x03
    #: Signed linear 16-bit little-endian mono audio at 8 kHz (or the call's codec with ``Dial()``).
    AUDIO = 0x10
    AUDIO_12K = 0x11
    AUDIO_16K = 0x12
    AUDIO_24K = 0x13
    AUDIO_32K = 0x14
    AUDIO_44K = 0x15
    AUDIO_48K = 0x16
    AUDIO_96K = 0x17
    AUDIO_192K = 0x18
    #: An Asterisk-side error; the payload is an :class:`ErrorCode`. Asterisk drops a call whose server sends it.
    ERROR = 0xFF


class ErrorCode(enum.IntEnum):
    """Codes of an ``ERROR`` message (the AudioSocket protocol description in Asterisk's docs)."""

    NONE = 0x00
    HANGUP = 0x01
    FRAME_FORWARDING = 0x02
    MEMORY = 0x04


#: Sample rate of each audio kind (Asterisk's ``slin``, ``slin12`` ... ``slin192`` formats).
AUDIO_RATES: dict[int, int] = {
    Kind.AUDIO: 8000,
    Kind.AUDIO_12K: 12000,
    Kind.AUDIO_16K: 16000,
    Kind.AUDIO_24K: 24000,
    Kind.AUDIO_32K: 32000,
    Kind.AUDIO_44K: 44100,
    Kind.AUDIO_48K: 48000,
    Kind.AUDIO_96K: 96000,
    Kind.AUDIO_192K: 192000,
}
_KIND_FOR_RATE = {rate: Kind(kind) for kind, rate in AUDIO_RATES.items()}

#: Kinds Asterisk accepts from a server (``ast_audiosocket_receive_frame_with_hangup``); any other
#: kind, and an audio message of length 0, makes Asterisk drop the call.
SERVER_KINDS = frozenset({Kind.HANGUP, *AUDIO_RATES})
#: DTMF digits Asterisk can send.
DTMF_DIGITS = frozenset("0123456789*#ABCD")

HEADER = struct.Struct(">BH")
HEADER_SIZE = HEADER.size
#: The length field is 16 bits.
MAX_PAYLOAD = 0xFFFF
#: The largest even payload: audio is whole 16-bit samples.
MAX_AUDIO_PAYLOAD = MAX_PAYLOAD - 1
#: Asterisk sends 20 ms frames (its channel timing); the server paces its audio the same way.
FRAME_MS = 20


def kind_for_rate(rate: int) -> Kind:
    """The audio kind that carries signed linear audio at ``rate`` Hz."""
    try:
        return _KIND_FOR_RATE[rate]
    except KeyError:
        rates = ", ".join(str(r) for r in _KIND_FOR_RATE)
        raise LocalProtocolError(
            f"AudioSocket has no audio kind for {rate} Hz (use {rates})"
        ) from None


def frame_bytes(rate: int) -> int:
    """Bytes of one 20 ms frame of 16-bit mono audio at ``rate`` (320 at 8 kHz)."""
    return rate * FRAME_MS // 1000 * 2


@dataclass(frozen=True, slots=True)
class Message:
    """One raw message: ``kind`` is an int because a peer may send kinds we do not know."""

    kind: int
    payload: bytes = b""

    def to_bytes(self) -> bytes:
        if not 0 <= self.kind <= 0xFF:
            raise LocalProtocolError(f"message kind {self.kind} does not fit in one byte")
        if len(self.payload) > MAX_PAYLOAD:
            raise LocalProtocolError(f"payload of {len(self.payload)} bytes exceeds {MAX_PAYLOAD}")
        return HEADER.pack(self.kind, len(self.payload)) + self.payload

    @classmethod
    def parse(cls, data: bytes) -> Message:
        """Exactly one whole message (no more, no less)."""
        if len(data) < HEADER_SIZE:
            raise RemoteProtocolError(f"{len(data)} bytes is shorter than a message header")
        kind, length = HEADER.unpack_from(data)
        if len(data) != HEADER_SIZE + length:
            raise RemoteProtocolError(
                f"message declares {length} payload bytes but {len(data) - HEADER_SIZE} follow"
            )
        return cls(kind, bytes(data[HEADER_SIZE:]))


# -- encoding: only what Asterisk accepts from a server ---------------------------------------------

HANGUP_MESSAGE = HEADER.pack(Kind.HANGUP, 0)


def encode_audio(pcm: bytes | bytearray | memoryview, rate: int = 8000) -> bytes:
    """One audio message; refuses what Asterisk would drop the call for (empty or odd length)."""
    n = len(pcm)
    if n == 0 or n & 1 or n > MAX_AUDIO_PAYLOAD:
        raise LocalProtocolError(
            f"audio payload of {n} bytes: it must be an even number from 2 to {MAX_AUDIO_PAYLOAD}"
        )
    return HEADER.pack(kind_for_rate(rate), n) + bytes(pcm)


def split_audio(pcm: bytes | bytearray | memoryview, rate: int = 8000) -> list[bytes]:
    """Audio of any even length as messages of at most 65534 bytes each (none for empty audio)."""
    view = memoryview(pcm)
    return [
        encode_audio(view[i : i + MAX_AUDIO_PAYLOAD], rate)
        for i in range(0, len(view), MAX_AUDIO_PAYLOAD)
    ]


def encode_uuid(call_id: uuid_mod.UUID) -> bytes:
    """The first message of every call (sent by Asterisk, or by our Asterisk-like client)."""
    return HEADER.pack(Kind.UUID, 16) + call_id.bytes


def encode_dtmf(digit: str) -> bytes:
    """A DTMF message (Asterisk to server only)."""
    if digit not in DTMF_DIGITS:
        raise LocalProtocolError(f"{digit!r} is not a DTMF digit (0-9, *, #, A-D)")
    return HEADER.pack(Kind.DTMF, 1) + digit.encode("ascii")


def encode_error(code: int) -> bytes:
    """An error message (Asterisk to server only)."""
    return HEADER.pack(Kind.ERROR, 1) + bytes([code])


# -- decoding ----------------------------------------------------------------------------------------


class Decoder:
    """Incremental decoder: feed it bytes as they arrive, in any fragmentation, get whole messages.

    A payload longer than ``max_payload`` is refused as soon as its header arrives, so a peer cannot
    make us buffer more than that: :meth:`feed` returns the messages before it and sets :attr:`error`;
    the stream is dead from then on (further data is ignored). :meth:`pending` tells whether a message
    is half received (a truncated message if the stream ends now).
    """

    __slots__ = ("_buf", "error", "max_payload")

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self.error: str | None = None

    def pending(self) -> int:
        """Bytes of an incomplete message held back."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        if self.error is not None:
            return []
        if self._buf:
            self._buf += data
            data = bytes(self._buf)
            self._buf.clear()
        out: list[Message] = []
        pos = 0
        end = len(data)
        unpack = HEADER.unpack_from
        limit = self.max_payload
        while end - pos >= HEADER_SIZE:
            kind, length = unpack(data, pos)
            if length > limit:
                self.error = f"message of kind 0x{kind:02x} declares {length} bytes, over the limit of {limit}"
                return out
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            out.append(Message(kind, bytes(data[pos + HEADER_SIZE : stop])))
            pos = stop
        if pos < end:
            self._buf += data[pos:]
        return out


# -- events ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """The UUID message arrived: the call has started."""

    uuid: uuid_mod.UUID


@dataclass(frozen=True, slots=True)
class Audio:
    """Audio from the caller: s16le PCM at ``rate`` Hz (decoded first if the call's codec is G.711)."""

    pcm: bytes
    rate: int = 8000


_new = object.__new__
_set_pcm = Audio.__dict__["pcm"].__set__
_set_rate = Audio.__dict__["rate"].__set__


def _audio(pcm: bytes, rate: int) -> Audio:
    """``Audio(pcm, rate)`` for the hot path: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``; the slot descriptors do the same job in about half the time."""
    ev = _new(Audio)
    _set_pcm(ev, pcm)
    _set_rate(ev, rate)
    return ev


@dataclass(frozen=True, slots=True)
class Dtmf:
    """One DTMF digit pressed by the caller."""

    digit: str


@dataclass(frozen=True, slots=True)
class Hangup:
    """The call ended. ``by_peer``: the other side hung up (closed, or sent a hangup message)."""

    by_peer: bool = True
    reason: str = "peer closed the connection"


@dataclass(frozen=True, slots=True)
class Error:
    """Something went wrong. ``fatal`` errors end the call; others (an unknown kind) are reports.

    ``code`` is the :class:`ErrorCode` of an error message from Asterisk, or None for our own findings.
    """

    message: str
    fatal: bool = True
    code: int | None = None


Event = Connected | Audio | Dtmf | Hangup | Error


class State(enum.Enum):
    AWAIT_UUID = "await-uuid"
    ACTIVE = "active"
    CLOSED = "closed"


_ACTIVE = State.ACTIVE
_NO_MESSAGES: tuple[list[bytes], int] = ([], 0)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-call limits of the server side.

    ``max_payload``: larger messages end the call (Asterisk's biggest frame, 20 ms at 192 kHz, is
    7680 bytes). ``uuid_timeout``: seconds a peer may stay connected without sending its UUID.
    """

    max_payload: int = 16384
    uuid_timeout: float = 5.0


class ServerConnection:
    """The server side of one AudioSocket call as a state machine.

    ``receive_data(data)`` with ``b""`` means the peer closed the stream. Time is passed in:
    :attr:`deadline` is when :meth:`handle_timer` must be called while the UUID is awaited.
    ``decode`` converts incoming audio payloads to s16le (for ``Dial()`` calls carrying G.711).
    """

    def __init__(
        self,
        now: float,
        limits: Limits | None = None,
        decode: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.state = State.AWAIT_UUID
        self.uuid: uuid_mod.UUID | None = None
        self.deadline: float | None = now + self.limits.uuid_timeout
        self._decoder = Decoder(self.limits.max_payload)
        self._decode = decode
        # receive_audio's fast path only applies to plain s16le audio; G.711 goes the general way.
        self._max_message = HEADER_SIZE + self.limits.max_payload if decode is None else 0

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def pending(self) -> int:
        """Bytes of a partly received message held back (a read must continue them)."""
        return self._decoder.pending()

    def _fail(self, message: str) -> list[Event]:
        self.state = State.CLOSED
        self.deadline = None
        return [Error(message, fatal=True)]

    def handle_timer(self, now: float) -> list[Event]:
        if self.deadline is not None and now >= self.deadline and self.state is State.AWAIT_UUID:
            return self._fail(f"no UUID within {self.limits.uuid_timeout:g} s of connecting")
        return []

    def close(self, reason: str = "hung up") -> list[Hangup]:
        """We end the call (the adapter sends :data:`HANGUP_MESSAGE` and closes)."""
        if self.state is State.CLOSED:
            return []
        was_active = self.state is State.ACTIVE
        self.state = State.CLOSED
        self.deadline = None
        return [Hangup(by_peer=False, reason=reason)] if was_active else []

    def receive_messages(self, data: bytes, kind: int) -> tuple[list[bytes], int]:
        """The fastest path: the whole audio messages of ``kind`` at the start of ``data`` as raw
        message bytes (header included; ``data`` itself when it is exactly one message), and the
        number of bytes they span. The caller hands them to the application as audio events would
        be (``Audio(message[3:], rate)`` each, in order) and passes the rest, ``data[end:]``, to
        :meth:`receive_data`. Returns ``([], 0)`` whenever the general path has to run: the call is
        not active, part of a message is held back, audio needs decoding (G.711), or the first
        message is anything else (another kind, half a message, an empty or odd payload, over the
        size limit); those are validated there exactly as before.
        """
        n = len(data)
        limit = self._max_message
        if self.state is not _ACTIVE or self._decoder._buf or not limit:
            return _NO_MESSAGES
        out: list[bytes] = []
        pos = 0
        while n - pos > HEADER_SIZE and data[pos] == kind:
            size = HEADER_SIZE + (data[pos + 1] << 8 | data[pos + 2])
            # an even payload makes an odd message; an empty one (size 3) is left to the general path
            if not size & 1 or size == HEADER_SIZE or size > limit or pos + size > n:
                break
            out.append(data if size == n else data[pos : pos + size])
            pos += size
        return out, pos

    def receive_audio(self, data: bytes | bytearray | memoryview) -> Audio | None:
        """The fast path: if ``data`` is exactly one whole audio message of an active call (the usual
        read: Asterisk writes one message per 20 ms frame), its event; otherwise None, and the caller
        passes the same data to :meth:`receive_data`. Nothing is consumed when it returns None.
        """
        n = len(data)
        if (
            self.state is _ACTIVE
            and n & 1  # 3 bytes of header + an even payload: an odd total
            and n - HEADER_SIZE == data[1] << 8 | data[2]
            and n <= self._max_message
            and not self._decoder._buf
        ):
            rate = AUDIO_RATES.get(data[0])
            if rate is not None and n > HEADER_SIZE:
                return _audio(bytes(data[HEADER_SIZE:]), rate)
        return None

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        decoder = self._decoder
        audio = self.receive_audio(data)
        if audio is not None:
            return [audio]
        if self.state is State.CLOSED:
            return []
        if not data:
            return self._eof()
        events: list[Event] = []
        if self.state is State.ACTIVE and not decoder._buf and self._decode is None:
            # Fast path for the common case (whole audio messages, nothing held back): no Message
            # objects, one slice per payload. Anything else falls through to the general path.
            if not isinstance(data, bytes):
                data = bytes(data)
            end = len(data)
            pos = 0
            limit = self.limits.max_payload
            rates = AUDIO_RATES
            while end - pos >= HEADER_SIZE:
                length = data[pos + 1] << 8 | data[pos + 2]
                stop = pos + HEADER_SIZE + length
                rate = rates.get(data[pos])
                if rate is None or stop > end or length > limit or not length or length & 1:
                    break
                events.append(Audio(data[pos + HEADER_SIZE : stop], rate))
                pos = stop
            if pos == end:
                return events
            data = data[pos:]
        for msg in decoder.feed(data):
            ev = self._handle(msg)
            if ev is not None:
                events.append(ev)
                if self.closed:
                    return events
        if decoder.error is not None:
            events += self._fail(decoder.error)
        return events

    def _eof(self) -> list[Event]:
        if self._decoder.pending():
            return self._fail(
                f"connection closed in the middle of a message ({self._decoder.pending()} bytes)"
            )
        if self.state is State.AWAIT_UUID:
            return self._fail("connection closed before the UUID arrived")
        self.state = State.CLOSED
        return [Hangup(by_peer=True, reason="peer closed the connection")]

    def _handle(self, msg: Message) -> Event | None:
        kind = msg.kind
        if self.state is State.AWAIT_UUID:
            if kind != Kind.UUID:
                return self._fail(f"message of kind 0x{kind:02x} before the UUID")[0]
            if len(msg.payload) != 16:
                return self._fail(f"UUID of {len(msg.payload)} bytes (it must be exactly 16)")[0]
            self.uuid = uuid_mod.UUID(bytes=msg.payload)
            self.state = State.ACTIVE
            self.deadline = None
            return Connected(self.uuid)
        rate = AUDIO_RATES.get(kind)
        if rate is not None:
            payload = msg.payload
            if not payload:
                return None  # nothing to hear; Asterisk never sends it
            if self._decode is not None:
                payload = self._decode(payload)
            elif len(payload) & 1:
                return self._fail(f"audio message of odd length {len(payload)}")[0]
            return Audio(payload, rate)
        if kind == Kind.DTMF:
            if len(msg.payload) != 1:
                return Error(f"DTMF message of {len(msg.payload)} bytes skipped", fatal=False)
            return Dtmf(chr(msg.payload[0]))
        if kind == Kind.HANGUP:
            self.state = State.CLOSED
            return Hangup(by_peer=True, reason="peer sent a hangup message")
        if kind == Kind.ERROR:
            code = msg.payload[0] if msg.payload else None
            name = _error_name(code)
            return Error(f"Asterisk reported an error: {name}", fatal=False, code=code)
        if kind == Kind.SILENCE:
            return None
        if kind == Kind.UUID:
            return Error("second UUID message skipped", fatal=False)
        return Error(
            f"unknown message kind 0x{kind:02x} ({len(msg.payload)} bytes) skipped", fatal=False
        )


def _error_name(code: int | None) -> str:
    if code is None:
        return "no code"
    try:
        return f"{ErrorCode(code).name.lower().replace('_', ' ')} (0x{code:02x})"
    except ValueError:
        return f"code 0x{code:02x}"
