"""Text encodings that carry binary data in DNS TXT strings: basE91 and base16/32/64/85.

basE91 (Joachim Henke's algorithm, the alphabet of the ``base91`` package on PyPI) is the densest of
them for DNS: about 23% overhead against base64's 33%. It never uses the apostrophe ``'``, which is why
AoDNS v1 can separate a frame's index from its data with ``'''``.

Unlike the ``base91`` package, :func:`base91_decode` refuses characters outside the alphabet instead of
skipping them silently: corrupted data must be an error, not different audio.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from audionet.errors import EncodingError

BASE91_ALPHABET = (
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&()*+,./:;<=>?@[]^_`{|}~"'
)
_B91_DECODE = {c: i for i, c in enumerate(BASE91_ALPHABET)}


def base91_encode(data: bytes | bytearray | memoryview) -> str:
    """basE91-encode ``data`` (byte-for-byte the output of ``base91.encode`` from PyPI)."""
    out: list[str] = []
    b = 0
    n = 0
    alphabet = BASE91_ALPHABET
    for byte in bytes(data):
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
            out.append(alphabet[v % 91])
            out.append(alphabet[v // 91])
    if n:
        out.append(alphabet[b % 91])
        if n > 7 or b > 90:
            out.append(alphabet[b // 91])
    return "".join(out)


def base91_decode(text: str) -> bytes:
    """Decode basE91 text; raises :class:`EncodingError` on a character outside the alphabet."""
    out = bytearray()
    v = -1
    b = 0
    n = 0
    table = _B91_DECODE
    for pos, ch in enumerate(text):
        c = table.get(ch)
        if c is None:
            raise EncodingError(f"invalid basE91 character {ch!r} at position {pos}")
        if v < 0:
            v = c
            continue
        v += c * 91
        b |= v << n
        n += 13 if (v & 8191) > 88 else 14
        while True:
            out.append(b & 255)
            b >>= 8
            n -= 8
            if n <= 7:
                break
        v = -1
    if v >= 0:
        out.append((b | v << n) & 255)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class TextEncoding:
    """A named binary-to-text encoding."""

    name: str
    encode: Callable[[bytes], str]
    decode: Callable[[str], bytes]
    #: Output characters per input byte, for sizing (asymptotic).
    expansion: float


def _wrap_std(
    name: str, enc: Callable[[bytes], bytes], dec: Callable[[bytes], bytes]
) -> tuple[Callable[[bytes], str], Callable[[str], bytes]]:
    def encode(data: bytes) -> str:
        return enc(bytes(data)).decode("ascii")

    def decode(text: str) -> bytes:
        try:
            return dec(text.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise EncodingError(f"invalid {name} text: {exc}") from exc

    return encode, decode


def _b64_strict(data: bytes) -> bytes:
    return base64.b64decode(data, validate=True)


def _b16(data: bytes) -> bytes:
    return base64.b16decode(data, casefold=True)


ENCODINGS: dict[str, TextEncoding] = {
    "base91": TextEncoding("base91", base91_encode, base91_decode, 16 / 13),
    "base16": TextEncoding("base16", *_wrap_std("base16", base64.b16encode, _b16), 2.0),
    "base32": TextEncoding("base32", *_wrap_std("base32", base64.b32encode, base64.b32decode), 1.6),
    "base64": TextEncoding("base64", *_wrap_std("base64", base64.b64encode, _b64_strict), 4 / 3),
    "base85": TextEncoding(
        "base85", *_wrap_std("base85", base64.b85encode, base64.b85decode), 1.25
    ),
}


def get_encoding(name: str) -> TextEncoding:
    """The encoding called ``name``; :class:`EncodingError` lists the known names otherwise."""
    try:
        return ENCODINGS[name.lower()]
    except KeyError:
        raise EncodingError(
            f"unknown text encoding {name!r}; choose one of {', '.join(ENCODINGS)}"
        ) from None
