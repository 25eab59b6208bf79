"""basE91 (Joachim Henke's alphabet), byte-compatible with the ``base91`` PyPI package.

The original AoDNS encodes frames with that package; its alphabet never contains ``'``, which is why
``'''`` can separate a frame's index from its data (SPEC §2). This is a small local copy so the DNS
cores do not depend on anything but the standard library.
"""

from __future__ import annotations

from audionet.errors import EncodingError

ALPHABET = (
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,./:;<=>?@[]^_`{|}~"'
)
_DECODE = {c: i for i, c in enumerate(ALPHABET)}


def encode(data: bytes) -> str:
    """Encode bytes as a basE91 string."""
    out: list[str] = []
    b = 0
    n = 0
    for byte in data:
        b |= byte << n
        n += 8
        if n > 13:
            v = b & 8191
            if v > 88:
                b >>= 13
                n -= 13
            else:
                v = b & 16383
                b >>= 14
                n -= 14
            out.append(ALPHABET[v % 91])
            out.append(ALPHABET[v // 91])
    if n:
        out.append(ALPHABET[b % 91])
        if n > 7 or b > 90:
            out.append(ALPHABET[b // 91])
    return "".join(out)


def decode(text: str) -> bytes:
    """Decode a basE91 string; :class:`EncodingError` on a character outside the alphabet."""
    out = bytearray()
    v = -1
    b = 0
    n = 0
    for ch in text:
        c = _DECODE.get(ch)
        if c is None:
            raise EncodingError(f"not a basE91 character: {ch!r}")
        if v < 0:
            v = c
            continue
        v += c * 91
        b |= v << n
        n += 13 if (v & 8191) > 88 else 14
        while n > 7:
            out.append(b & 255)
            b >>= 8
            n -= 8
        v = -1
    if v + 1:
        out.append((b | v << n) & 255)
    return bytes(out)


def encoded_length_bound(n: int) -> int:
    """Upper bound on ``len(encode(x))`` for ``len(x) == n`` (13 bits per 2 characters at worst)."""
    return (n * 8 + 12) // 13 * 2
