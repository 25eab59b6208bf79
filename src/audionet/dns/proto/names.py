"""Zone and record names of AoDNS v1 and v2.

v1 (the original, SPEC §2): ``sequence.Z`` and ``seq_N.Z``.
v2 (``docs/aodns-v2.md``): per stream ``S``: ``config.S.Z``, ``index.S.Z`` and the packs
``pN-EEEEEEEE.S.Z`` (``N`` the pack number, ``E`` the server run's epoch in hex, so a pack cached
by a
resolver from before a restart can never be mistaken for a new one). ``streams.Z`` lists the
streams.
Names are handled as lower-case text without the final dot; DNS compares names case-insensitively
(RFC 4343).
"""

from __future__ import annotations

import re

from audionet.dns.errors import StreamConfigError

#: RFC 1035 §2.3.4: a label is at most 63 bytes, a name at most 255 on the wire.
MAX_LABEL = 63
MAX_NAME_WIRE = 255

_LABEL_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$")
_STREAM_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
#: Labels a stream may not be called, because v2 uses them at the zone's top.
RESERVED = frozenset({"streams", "sequence", "ns"})


def wire_length(name: str) -> int:
    """Bytes the name takes on the wire (length bytes, labels and the root byte)."""
    if not name:
        return 1
    return sum(1 + len(label) for label in name.split(".")) + 1


def normalize_zone(zone: str) -> str:
    """Lower-case the zone, drop a final dot, check the labels; StreamConfigError if bad."""
    z = zone.strip().rstrip(".").lower()
    if not z:
        raise StreamConfigError("the zone is empty: give a domain such as music.example.com")
    for label in z.split("."):
        if len(label) > MAX_LABEL or not _LABEL_RE.match(label):
            raise StreamConfigError(
                f"bad zone label {label!r} in {zone!r}: use letters, digits, '-' and '_', "
                f"at most {MAX_LABEL} per label"
            )
    # Leave room for the longest v2 name below the zone (pNNNNNNNNNN-EEEEEEEE.<stream>.).
    if wire_length(z) > MAX_NAME_WIRE - 64:
        raise StreamConfigError(f"zone {zone!r} is too long to hold AoDNS names (max ~190 bytes)")
    return z


def check_stream(stream: str) -> str:
    """Check a v2 stream name (one label) and return it lower-cased."""
    s = stream.strip().lower()
    if not s or len(s) > 40 or not _STREAM_RE.match(s) or s in RESERVED:
        raise StreamConfigError(
            f"bad stream name {stream!r}: one label of letters, digits and '-', at most 40, "
            f"not one of {sorted(RESERVED)}"
        )
    return s


def v1_sequence_name(zone: str) -> str:
    return f"sequence.{zone}"


def v1_pack_name(zone: str, seq: int) -> str:
    return f"seq_{seq}.{zone}"


def v2_streams_name(zone: str) -> str:
    return f"streams.{zone}"


def v2_config_name(zone: str, stream: str) -> str:
    return f"config.{stream}.{zone}"


def v2_index_name(zone: str, stream: str) -> str:
    return f"index.{stream}.{zone}"


def v2_index_wildcard(zone: str, stream: str) -> str:
    """``*.index.S.Z``: answers any ``X.index.S.Z`` with the index (RFC 4592 wildcard)."""
    return f"*.index.{stream}.{zone}"


def v2_fresh_index_name(zone: str, stream: str, nonce: str) -> str:
    """A name no resolver has cached: the index read through the wildcard (``nonce`` one label)."""
    return f"{nonce}.index.{stream}.{zone}"


def v2_pack_name(zone: str, stream: str, seq: int, epoch: int) -> str:
    return f"p{seq}-{epoch:08x}.{stream}.{zone}"


def in_zone(name: str, zone: str) -> bool:
    """True when ``name`` (lower case, no final dot) is the zone or below it."""
    return name == zone or name.endswith("." + zone)
