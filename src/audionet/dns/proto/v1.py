"""AoDNS v1: the original implementation's wire format, byte for byte (SPEC §2 "Seed behaviour").

- ``sequence.Z`` TXT holds one string: ``base91(zlib.compress(",".join(numbers), 9))``; TTL 10 s.
- ``seq_N.Z`` TXT holds one resource record per frame, each one string ``f"{i:03d}'''" +
base91(frame)``.
- A pack is full when the raw lengths of its encoded frames plus the next string (index and
separator
  included) would pass 2000 bytes; one string may be at most 250 bytes. This is exactly the
  original's
  ``FinitePackedData._validate_data_len`` (the pack's own length counts frames without their
  prefix).
- ``seq_N`` TTL is ``max(5, int(pack_seconds * packs_kept * 0.8))`` in real seconds of audio (the
  original divides by 2 once too often; SPEC §2 asks for the real figure).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from audionet.dns.errors import BadRecordError
from audionet.dns.proto import b91
from audionet.errors import EncodingError

SEPARATOR = b"'''"
#: Original defaults: ``--max-data-per-feed 250``, ``--max-bytes-per-record 2000``,
#: ``--max-sequences 75``.
MAX_STRING = 250
MAX_PACK = 2000
PACKS_KEPT = 75
#: ``sequence.Z`` TTL, fixed in the original.
SEQUENCE_TTL = 10
#: Bytes an index prefix adds: three digits and the separator.
PREFIX_LEN = 3 + len(SEPARATOR)
#: zlib level of the sequence list (the original's ``level=9``).
ZLIB_LEVEL = 9
#: Characters of basE91 that one TXT string can hold after the prefix.
MAX_ENCODED_FRAME = MAX_STRING - PREFIX_LEN


@dataclass(frozen=True, slots=True)
class V1Pack:
    """One v1 pack: its sequence number and its frames (codec packets) in order."""

    seq: int
    frames: tuple[bytes, ...]

    def strings(self) -> tuple[bytes, ...]:
        """The TXT strings of ``seq_N``, one per resource record, in index order."""
        return tuple(
            f"{i:03d}".encode() + SEPARATOR + b91.encode(f).encode()
            for i, f in enumerate(self.frames)
        )


def frame_fits(frame: bytes) -> bool:
    """True when one frame's string fits the 250-byte limit once basE91-encoded and prefixed."""
    return len(b91.encode(frame)) + PREFIX_LEN <= MAX_STRING


class V1Packer:
    """Groups encoded frames into packs as the original's ``DataPacker`` does.

    :meth:`feed` returns the finished pack when the new frame no longer fits the current one (the
    new
    frame then starts the next pack), else ``None``. Frames too large for one string raise
    :class:`ValueError` (the original crashes; callers drop them and count).
    """

    def __init__(self, max_string: int = MAX_STRING, max_pack: int = MAX_PACK, first_seq: int = 0):
        self.max_string = max_string
        self.max_pack = max_pack
        self._seq = first_seq
        self._frames: list[bytes] = []
        self._encoded_len = 0

    def feed(self, frame: bytes) -> V1Pack | None:
        enc_len = len(b91.encode(frame))
        total = PREFIX_LEN + enc_len
        if total > self.max_string:
            raise ValueError(
                f"frame of {len(frame)} bytes does not fit a {self.max_string}-byte string"
            )
        done: V1Pack | None = None
        if self._encoded_len + total > self.max_pack:
            done = V1Pack(self._seq, tuple(self._frames))
            self._seq += 1
            self._frames = []
            self._encoded_len = 0
        self._frames.append(frame)
        self._encoded_len += enc_len
        return done


def encode_sequence_list(seqs: Iterable[int]) -> bytes:
    """The one string of ``sequence.Z``."""
    text = ",".join(str(n) for n in seqs).encode()
    return b91.encode(zlib.compress(text, ZLIB_LEVEL)).encode()


def decode_sequence_list(strings: Sequence[bytes]) -> list[int]:
    """Parse ``sequence.Z``'s strings (the first one counts); BadRecordError if bad."""
    if not strings:
        raise BadRecordError("sequence record has no string")
    try:
        text = zlib.decompress(b91.decode(strings[0].decode("ascii"))).decode("ascii")
        return [int(x) for x in text.split(",")] if text else []
    except (UnicodeDecodeError, EncodingError, zlib.error, ValueError) as e:
        raise BadRecordError(f"sequence record is not zlib+basE91 of numbers: {e}") from e


def parse_pack_strings(seq: int, strings: Iterable[bytes]) -> V1Pack:
    """Rebuild a pack from its TXT strings in any order (resolvers shuffle RRsets).

    Each string is ``NNN'''<base91>``; duplicates or a string without the separator are an error.
    """
    indexed: dict[int, bytes] = {}
    for s in strings:
        head, sep, data = s.partition(SEPARATOR)
        if not sep or not head.isdigit():
            raise BadRecordError(f"seq_{seq}: string without an NNN''' index: {s[:20]!r}")
        i = int(head)
        if i in indexed:
            raise BadRecordError(f"seq_{seq}: index {i} twice")
        try:
            indexed[i] = b91.decode(data.decode("ascii"))
        except (UnicodeDecodeError, EncodingError) as e:
            raise BadRecordError(f"seq_{seq}: frame {i} is not basE91: {e}") from e
    return V1Pack(seq, tuple(indexed[i] for i in sorted(indexed)))


def missing_indexes(pack_strings: Iterable[bytes]) -> list[int]:
    """Indexes absent from 0..max (the continuity check the original lacks)."""
    seen = sorted(int(s.partition(SEPARATOR)[0]) for s in pack_strings)
    return sorted(set(range(seen[-1] + 1)) - set(seen)) if seen else []


def pack_ttl(frame_count: int, frame_seconds: float, packs_kept: int = PACKS_KEPT) -> int:
    """TTL of ``seq_N``: 80% of the audio all kept packs hold, at least 5 s."""
    return max(5, int(frame_count * frame_seconds * packs_kept * 0.8))
