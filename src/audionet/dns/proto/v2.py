"""AoDNS v2 records: config, index and packs (the byte-level description is ``docs/aodns-v2.md``).

- ``config.S.Z`` TXT, one string of ``key=value`` words: codec, rate, channels, frame length,
payload
  encoding, epoch, packs kept and the encryption parameters. A client needs only the zone and
  stream.
- ``index.S.Z`` TXT, one string ``epoch=E first=F count=C``: the packs that exist are ``F ..
F+C-1``.
- ``pN-E.S.Z`` TXT, one resource record (so resolvers cannot reorder it) whose strings,
concatenated,
  are the pack payload: a 15-byte header (version, flags, epoch, pack number, first frame number,
  frame count) and the frames, each with a 2-byte length; the body is AEAD-sealed when encrypted.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from audionet.dns.errors import BadRecordError, KeyRequiredError, StreamConfigError
from audionet.dns.proto import b91
from audionet.dns.proto.crypto import TAG_LEN, PackCipher
from audionet.errors import EncodingError

VERSION = 2
#: RFC 1035 §3.3.14: a TXT character-string is one length byte and at most 255 bytes.
MAX_STRING = 255
#: DNS Flag Day 2020: 1232 bytes of UDP payload pass IPv6 and IPv4 paths without fragmentation.
ANSWER_LIMIT = 1232
#: Bytes kept free for what resolvers may add to an answer (EDNS options such as cookies, padding).
ANSWER_MARGIN = 40
HEADER = struct.Struct(">BBIIIB")
HEADER_LEN = HEADER.size  # 15
FRAME_LEN = struct.Struct(">H")
MAX_FRAMES = 255


class Flags(IntFlag):
    """Pack header flags (byte 1)."""

    ENCRYPTED = 0x01


class Encoding(IntEnum):
    """How the pack payload is written into TXT strings (config ``enc=``)."""

    RAW = 0  #: the payload bytes as they are (TXT strings are 8-bit clean on the wire)
    BASE91 = 1  #: basE91 text, for paths that only pass printable TXT

    @property
    def label(self) -> str:
        return "raw" if self is Encoding.RAW else "b91"

    @classmethod
    def parse(cls, text: str) -> Encoding:
        for e in cls:
            if e.label == text:
                return e
        raise BadRecordError(f"unknown payload encoding {text!r}")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What a client needs to play a stream; the ``config.S.Z`` record."""

    codec: str = "opus"
    rate: int = 16000
    channels: int = 1
    frame_ms: int = 60
    epoch: int = 0
    packs: int = 75
    encoding: Encoding = Encoding.RAW
    bitrate: int = 0
    mode: int = 0  #: codec2 mode (bit/s), 0 when not used
    aead: str = ""  #: "" (clear) or "chacha20poly1305"
    salt: bytes = b""
    kcv: bytes = b""
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def encrypted(self) -> bool:
        return bool(self.aead)

    @property
    def frame_seconds(self) -> float:
        return self.frame_ms / 1000

    def to_text(self) -> bytes:
        words = [
            f"v={VERSION}",
            f"codec={self.codec}",
            f"rate={self.rate}",
            f"ch={self.channels}",
            f"fms={self.frame_ms}",
            f"enc={self.encoding.label}",
            f"epoch={self.epoch:08x}",
            f"packs={self.packs}",
        ]
        if self.bitrate:
            words.append(f"br={self.bitrate}")
        if self.mode:
            words.append(f"mode={self.mode}")
        if self.aead:
            words += [
                f"aead={self.aead}",
                "kdf=scrypt",
                f"salt={self.salt.hex()}",
                f"kcv={self.kcv.hex()}",
            ]
        words += [f"{k}={v}" for k, v in self.extra]
        text = " ".join(words).encode("ascii")
        if len(text) > MAX_STRING:
            raise StreamConfigError(
                f"config record of {len(text)} bytes does not fit one TXT string"
            )
        return text

    @classmethod
    def from_text(cls, text: bytes) -> StreamConfig:
        try:
            kv = dict(w.split("=", 1) for w in text.decode("ascii").split())
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRecordError(f"config record is not key=value words: {text[:40]!r}") from e
        if kv.get("v") != str(VERSION):
            raise BadRecordError(
                f"config record version {kv.get('v')!r}, this client reads v{VERSION}"
            )
        known = {"v", "codec", "rate", "ch", "fms", "enc", "epoch", "packs", "br", "mode"}
        known |= {"aead", "kdf", "salt", "kcv"}
        try:
            aead = kv.get("aead", "")
            if aead and (aead != "chacha20poly1305" or kv.get("kdf") != "scrypt"):
                raise BadRecordError(f"unsupported encryption {aead}/{kv.get('kdf')}")
            return cls(
                codec=kv["codec"],
                rate=int(kv["rate"]),
                channels=int(kv["ch"]),
                frame_ms=int(kv["fms"]),
                encoding=Encoding.parse(kv.get("enc", "raw")),
                epoch=int(kv["epoch"], 16),
                packs=int(kv.get("packs", "75")),
                bitrate=int(kv.get("br", "0")),
                mode=int(kv.get("mode", "0")),
                aead=aead,
                salt=bytes.fromhex(kv.get("salt", "")),
                kcv=bytes.fromhex(kv.get("kcv", "")),
                extra=tuple((k, v) for k, v in kv.items() if k not in known),
            )
        except (KeyError, ValueError) as e:
            raise BadRecordError(f"config record misses or garbles {e}: {text[:60]!r}") from e


@dataclass(frozen=True, slots=True)
class Index:
    """The ``index.S.Z`` record: packs ``first .. first+count-1`` of run ``epoch`` exist.

    ``ended``: the stream is over (e.g. the phone call it carried hung up): no pack will follow
    ``last``, written ``end=1`` (clients that do not know the key ignore it).
    """

    epoch: int
    first: int
    count: int
    ended: bool = False

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def to_text(self) -> bytes:
        end = " end=1" if self.ended else ""
        return f"epoch={self.epoch:08x} first={self.first} count={self.count}{end}".encode("ascii")

    @classmethod
    def from_text(cls, text: bytes) -> Index:
        try:
            kv = dict(w.split("=", 1) for w in text.decode("ascii").split())
            idx = cls(
                int(kv["epoch"], 16), int(kv["first"]), int(kv["count"]), kv.get("end") == "1"
            )
        except (UnicodeDecodeError, ValueError, KeyError) as e:
            raise BadRecordError(
                f"index record is not 'epoch= first= count=': {text[:40]!r}"
            ) from e
        if idx.first < 0 or idx.count < 0:
            raise BadRecordError(f"index record with negative numbers: {text!r}")
        return idx


@dataclass(frozen=True, slots=True)
class Pack:
    """One v2 pack: its frames carry numbers ``first_frame ..``; ``seq`` is the pack number."""

    epoch: int
    seq: int
    first_frame: int
    frames: tuple[bytes, ...]

    @property
    def end_frame(self) -> int:
        """Frame number just after this pack's last frame."""
        return self.first_frame + len(self.frames)

    def header(self, encrypted: bool) -> bytes:
        flags = Flags.ENCRYPTED if encrypted else 0
        return HEADER.pack(VERSION, flags, self.epoch, self.seq, self.first_frame, len(self.frames))

    def body(self) -> bytes:
        return b"".join(FRAME_LEN.pack(len(f)) + f for f in self.frames)

    def to_payload(self, cipher: PackCipher | None = None) -> bytes:
        header = self.header(cipher is not None)
        body = self.body()
        if cipher is not None:
            body = cipher.seal(self.epoch, self.seq, header, body)
        return header + body

    @classmethod
    def from_payload(cls, payload: bytes, cipher: PackCipher | None = None) -> Pack:
        if len(payload) < HEADER_LEN:
            raise BadRecordError(f"pack payload of {len(payload)} bytes is shorter than its header")
        header = payload[:HEADER_LEN]
        version, flags, epoch, seq, first, count = HEADER.unpack(header)
        if version != VERSION:
            raise BadRecordError(f"pack version {version}, expected {VERSION}")
        body = payload[HEADER_LEN:]
        if flags & Flags.ENCRYPTED:
            if cipher is None:
                raise KeyRequiredError("the stream is encrypted: pass the passphrase (--key)")
            body = cipher.open(epoch, seq, header, body)
        frames: list[bytes] = []
        pos = 0
        for _ in range(count):
            if pos + 2 > len(body):
                raise BadRecordError(f"pack {seq}: frame {len(frames)} cut short")
            (n,) = FRAME_LEN.unpack_from(body, pos)
            if pos + 2 + n > len(body):
                raise BadRecordError(f"pack {seq}: frame {len(frames)} cut short")
            frames.append(body[pos + 2 : pos + 2 + n])
            pos += 2 + n
        if pos != len(body):
            raise BadRecordError(f"pack {seq}: {len(body) - pos} bytes after the last frame")
        return cls(epoch, seq, first, tuple(frames))


def encode_payload(payload: bytes, encoding: Encoding) -> tuple[bytes, ...]:
    """Cut a payload into TXT strings of at most 255 bytes (one RR, order kept)."""
    data = payload if encoding is Encoding.RAW else b91.encode(payload).encode("ascii")
    return tuple(data[i : i + MAX_STRING] for i in range(0, len(data), MAX_STRING)) or (b"",)


def decode_payload(strings: Sequence[bytes], encoding: Encoding) -> bytes:
    data = b"".join(strings)
    if encoding is Encoding.RAW:
        return data
    try:
        return b91.decode(data.decode("ascii"))
    except (UnicodeDecodeError, EncodingError) as e:
        raise BadRecordError(f"pack payload is not basE91: {e}") from e


def rdata_budget(
    qname_wire_len: int, limit: int = ANSWER_LIMIT, margin: int = ANSWER_MARGIN
) -> int:
    """Largest TXT payload (before string length bytes) whose whole answer fits ``limit``.

    Answer = header 12 + question (name + 4) + one RR (compressed owner 2 + 10) + the TXT rdata
    (payload + one length byte per 255) + our OPT record 11; ``margin`` is left for resolvers.
    """
    avail = limit - margin - 12 - (qname_wire_len + 4) - 12 - 11
    strings = -(-avail // (MAX_STRING + 1))
    return max(0, avail - strings)


def encoded_size(raw_len: int, encoding: Encoding) -> int:
    return raw_len if encoding is Encoding.RAW else b91.encoded_length_bound(raw_len)


class V2Packer:
    """Groups codec frames into packs whose answers fit ``budget`` bytes of TXT payload.

    :meth:`feed` returns the pack that the new frame closed (when it would not fit, or when
    ``max_frames`` is reached), else ``None``. A frame too large for an empty pack raises
    ValueError.
    """

    def __init__(
        self,
        epoch: int,
        budget: int,
        encoding: Encoding = Encoding.RAW,
        encrypted: bool = False,
        max_frames: int = 32,
        first_seq: int = 0,
        first_frame: int = 0,
    ) -> None:
        self.epoch = epoch
        self.budget = budget
        self.encoding = encoding
        self.overhead = HEADER_LEN + (TAG_LEN if encrypted else 0)
        self.max_frames = min(max_frames, MAX_FRAMES)
        self._seq = first_seq
        self._next_frame = first_frame
        self._first = first_frame
        self._frames: list[bytes] = []
        self._raw = self.overhead

    def _fits(self, raw_len: int) -> bool:
        return encoded_size(raw_len, self.encoding) <= self.budget

    def feed(self, frame: bytes) -> Pack | None:
        add = 2 + len(frame)
        if not self._fits(self.overhead + add):
            raise ValueError(f"frame of {len(frame)} bytes does not fit a pack of {self.budget}")
        done: Pack | None = None
        if not self._fits(self._raw + add) or len(self._frames) >= self.max_frames:
            done = self.flush()
        self._frames.append(frame)
        self._raw += add
        self._next_frame += 1
        return done

    def flush(self) -> Pack | None:
        """Close the current pack now (``None`` when it is empty)."""
        if not self._frames:
            return None
        pack = Pack(self.epoch, self._seq, self._first, tuple(self._frames))
        self._seq += 1
        self._first = self._next_frame
        self._frames = []
        self._raw = self.overhead
        return pack
