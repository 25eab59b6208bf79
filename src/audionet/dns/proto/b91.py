"""basE91 as AoDNS uses it (the shared :mod:`audionet.encodings` implementation).

The original AoDNS encodes frames with the ``base91`` PyPI package; ours is byte-compatible with it.
Its alphabet never contains ``'``, which is why ``'''`` can separate a frame's index from its data.
"""

from __future__ import annotations

from audionet.encodings import BASE91_ALPHABET as ALPHABET
from audionet.encodings import base91_decode as decode
from audionet.encodings import base91_encode as encode

__all__ = ["ALPHABET", "decode", "encode", "encoded_length_bound"]


def encoded_length_bound(n: int) -> int:
    """Upper bound on ``len(encode(x))`` for ``len(x) == n`` (13 bits per 2 characters at worst)."""
    return (n * 8 + 12) // 13 * 2
