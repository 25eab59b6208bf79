"""Link-layer frames: our format (CRC-32) and the original implementation's format (``legacy``).

A :class:`Frame` is profile-neutral; a :class:`FrameProfile` turns it into bytes and back. Both
profiles have the same shape (header, header checksum, then payload and payload checksum when the
payload is not empty), so each also serves as the PHY's
:class:`~audionet.modem.phy.base.FrameLength`: the demodulator collects ``header_size`` bytes
and asks ``total_length(header)`` how many to expect.

``audionet`` (the default), 17-byte header, all multi-byte fields big-endian::

    0 src host | 1 src port | 2 dst host | 3 dst port | 4 flags | 5 protocol |
    6-7 seq | 8-9 ack | 10 window | 11-14 sack bitmap | 15-16 payload length
    then CRC-32 (zlib / IEEE 802.3) of the header, 4 bytes;
    then, if the payload is not empty, the payload and its CRC-32.

Bit ``i`` of the SACK bitmap says the frame with sequence number ``ack + 1 + i`` has arrived
(``ack`` itself is the first one missing, so it never needs a bit).

``legacy`` (the original Java implementation, byte for byte), 9-byte header::

    0 src host | 1 src port | 2 dst host | 3 dst port | 4 seq (8 bit) | 5 flags | 6 protocol |
    7-8 payload length
    then Java ``Arrays.hashCode(byte[])`` of the header as a big-endian int32;
    then, if the payload is not empty, the payload and its ``Arrays.hashCode``.

The legacy header has no acknowledgement number, window or SACK: those fields must be zero when
encoding and are zero when decoding (the original acknowledges with the ACK flag and ``seq``).
Its payload is at most 32767 bytes: the original refuses more when sending
(RealTimeFrameIO.java:16, :66-67) and reads the length as a signed 16-bit number
(``short payloadLength``, :154, then ``if (payloadLength > 0)``, :161), so a longer frame would
reach it as header-only and its payload would be lost.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field, replace

from audionet.errors import ConfigError, LocalProtocolError, RemoteProtocolError

#: Largest payload either format can describe (16-bit length field).
MAX_PAYLOAD = 0xFFFF
#: Largest payload the original reads back (its length field is a Java ``short``).
MAX_LEGACY_PAYLOAD = 0x7FFF


class FrameError(RemoteProtocolError):
    """Bytes that are not a valid frame: too short, a bad checksum, or a wrong length."""


class Flags(enum.IntFlag):
    """Frame flags; the values are the original implementation's (SPEC §3), ``SACK`` is ours."""

    NONE = 0
    SYN = 0x01  #: open a connection (consumes one sequence number, as in TCP, RFC 9293 §3.4)
    ACK = 0x02  #: the acknowledgement field is valid
    FIN = 0x04  #: no more data from the sender (consumes one sequence number)
    RST = 0x08  #: ours: abort the connection (the original leaves 0x08 unused)
    BEG = 0x10  #: first frame of a message
    END = 0x20  #: last frame of a message
    SACK = 0x40  #: ours: the SACK bitmap is valid


class Protocol(enum.IntEnum):
    """What a frame carries (the original's values)."""

    CONNECTION = 0  #: connection set-up, data and teardown
    PING = 1  #: echo request (no ACK flag) or reply (ACK flag); payload is the send timestamp


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """A station address: a host byte unique to the machine and a port byte, as in the original."""

    host: int
    port: int

    def __post_init__(self) -> None:
        if not (0 <= self.host <= 255 and 0 <= self.port <= 255):
            raise ConfigError(f"address {self.host}:{self.port} out of range (0-255:0-255)")

    @classmethod
    def parse(cls, text: str) -> Address:
        """``"HOST:PORT"`` with both in 0-255, e.g. ``"1:7"``."""
        host, sep, port = text.partition(":")
        try:
            numbers = int(host), int(port) if sep else 0
        except ValueError:
            raise ConfigError(f"bad address {text!r}: expected HOST:PORT, e.g. 1:7") from None
        return cls(*numbers)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One link-layer frame, independent of its wire profile."""

    src: Address
    dst: Address
    seq: int = 0
    flags: Flags = Flags.NONE
    protocol: Protocol = Protocol.CONNECTION
    ack: int = 0
    window: int = 0
    sack: int = 0
    payload: bytes = field(default=b"", repr=False)

    def reply(self, **changes: object) -> Frame:
        """A frame back to this frame's sender (addresses swapped), with ``changes`` applied."""
        return replace(self, src=self.dst, dst=self.src, **changes)  # type: ignore[arg-type]


def java_hash(data: bytes) -> int:
    """Java's ``Arrays.hashCode(byte[])``: ``h = 31*h + b`` over signed bytes from 1, int32."""
    h = 1
    for b in data:
        h = (31 * h + (b - 256 if b > 127 else b)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def _java_hash_bytes(data: bytes) -> bytes:
    return struct.pack(">i", java_hash(data))


def _crc_bytes(data: bytes) -> bytes:
    return struct.pack(">I", zlib.crc32(data))


class FrameProfile:
    """A wire format for :class:`Frame`; also the PHY's ``FrameLength`` for that format."""

    name: str
    #: Header bytes without the checksum.
    header_bytes: int
    #: Bytes of each checksum.
    check_bytes: int = 4
    #: Largest payload a frame of this format may carry.
    max_payload: int = MAX_PAYLOAD

    @property
    def header_size(self) -> int:
        """Header and its checksum: what a demodulator needs to know the frame's length."""
        return self.header_bytes + self.check_bytes

    def total_length(self, header: bytes) -> int | None:
        """Frame length from its first ``header_size`` bytes; ``None`` on a bad header checksum."""
        if len(header) < self.header_size:
            return None
        head = header[: self.header_bytes]
        if self._check(head) != header[self.header_bytes : self.header_size]:
            return None
        n = self._payload_length(head)
        return self.header_size + (n + self.check_bytes if n else 0)

    def overhead(self, payload: int) -> int:
        """Bytes on the wire for a payload of ``payload`` bytes."""
        return self.header_size + (payload + self.check_bytes if payload else 0)

    def encode(self, frame: Frame) -> bytes:
        if len(frame.payload) > self.max_payload:
            raise LocalProtocolError(
                f"payload of {len(frame.payload)} bytes > {self.max_payload} ({self.name} frames)"
            )
        head = self._pack_header(frame)
        out = head + self._check(head)
        if frame.payload:
            out += frame.payload + self._check(frame.payload)
        return out

    def decode(self, data: bytes) -> Frame:
        """Parse exactly one whole frame; :class:`FrameError` if corrupt, short or too long."""
        size = self.total_length(data[: self.header_size])
        if size is None:
            if len(data) < self.header_size:
                raise FrameError(f"{self.name} frame too short: {len(data)} bytes")
            raise FrameError(f"{self.name} frame header checksum mismatch")
        if len(data) != size:
            raise FrameError(f"{self.name} frame of {len(data)} bytes, header says {size}")
        frame = self._unpack_header(data[: self.header_bytes])
        if size > self.header_size:
            payload = data[self.header_size : -self.check_bytes]
            if self._check(payload) != data[-self.check_bytes :]:
                raise FrameError(f"{self.name} frame payload checksum mismatch")
            frame = replace(frame, payload=payload)
        return frame

    def split(self, data: bytes) -> tuple[Frame | None, int]:
        """The first frame of a byte stream: ``(frame, bytes used)``; ``(None, 0)`` if incomplete.

        A corrupt header cannot say how long the frame is, so it raises :class:`FrameError` (the
        caller resynchronises); a bad payload checksum also raises, once the length is known.
        """
        if len(data) < self.header_size:
            return None, 0
        size = self.total_length(data[: self.header_size])
        if size is None:
            raise FrameError(f"{self.name} frame header checksum mismatch")
        if len(data) < size:
            return None, 0
        return self.decode(data[:size]), size

    def _check(self, data: bytes) -> bytes:
        raise NotImplementedError

    def _payload_length(self, head: bytes) -> int:
        raise NotImplementedError

    def _pack_header(self, frame: Frame) -> bytes:
        raise NotImplementedError

    def _unpack_header(self, head: bytes) -> Frame:
        raise NotImplementedError


def _flags(value: int, known: Flags) -> Flags:
    if value & ~int(known):
        raise FrameError(f"unknown flag bits 0x{value & ~int(known):02x}")
    return Flags(value)


def _protocol(value: int) -> Protocol:
    try:
        return Protocol(value)
    except ValueError:
        raise FrameError(f"unknown protocol {value}") from None


class AudionetProfile(FrameProfile):
    """Our format: 16-bit sequence and acknowledgement numbers, window, SACK, CRC-32 checksums."""

    name = "audionet"
    _header = struct.Struct(">BBBBBBHHBIH")
    header_bytes = _header.size

    def _check(self, data: bytes) -> bytes:
        return _crc_bytes(data)

    def _payload_length(self, head: bytes) -> int:
        return int.from_bytes(head[-2:], "big")

    def _pack_header(self, f: Frame) -> bytes:
        try:
            return self._header.pack(
                f.src.host, f.src.port, f.dst.host, f.dst.port, int(f.flags), int(f.protocol),
                f.seq, f.ack, f.window, f.sack, len(f.payload),
            )  # fmt: skip
        except struct.error as exc:
            raise LocalProtocolError(f"frame field out of range: {exc}") from None

    def _unpack_header(self, head: bytes) -> Frame:
        sh, sp, dh, dp, flags, proto, seq, ack, window, sack, _ = self._header.unpack(head)
        return Frame(
            Address(sh, sp), Address(dh, dp), seq, _flags(flags, _ALL_FLAGS), _protocol(proto),
            ack, window, sack,
        )  # fmt: skip


_ALL_FLAGS = Flags.SYN | Flags.ACK | Flags.FIN | Flags.RST | Flags.BEG | Flags.END | Flags.SACK
_LEGACY_FLAGS = Flags.SYN | Flags.ACK | Flags.FIN | Flags.BEG | Flags.END


class LegacyProfile(FrameProfile):
    """The original implementation's frame, byte for byte (8-bit sequence, Java hash checksums)."""

    name = "legacy"
    _header = struct.Struct(">BBBBBBBH")
    header_bytes = _header.size
    max_payload = MAX_LEGACY_PAYLOAD

    def _check(self, data: bytes) -> bytes:
        return _java_hash_bytes(data)

    def _payload_length(self, head: bytes) -> int:
        return int.from_bytes(head[-2:], "big")

    def _pack_header(self, f: Frame) -> bytes:
        if f.ack or f.window or f.sack or f.flags & ~_LEGACY_FLAGS:
            raise LocalProtocolError(
                "the legacy frame has no ack number, window, SACK or RST: use the audionet profile"
            )
        try:
            return self._header.pack(
                f.src.host, f.src.port, f.dst.host, f.dst.port, f.seq, int(f.flags),
                int(f.protocol), len(f.payload),
            )  # fmt: skip
        except struct.error as exc:
            raise LocalProtocolError(f"frame field out of range: {exc}") from None

    def _unpack_header(self, head: bytes) -> Frame:
        sh, sp, dh, dp, seq, flags, proto, _ = self._header.unpack(head)
        return Frame(
            Address(sh, sp), Address(dh, dp), seq, _flags(flags, _LEGACY_FLAGS), _protocol(proto)
        )


AUDIONET = AudionetProfile()
LEGACY = LegacyProfile()
PROFILES: dict[str, FrameProfile] = {p.name: p for p in (AUDIONET, LEGACY)}


def get_profile(name: str) -> FrameProfile:
    """The frame profile called ``name`` (``audionet`` or ``legacy``)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown frame profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None
