from __future__ import annotations

import base91
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.encodings import (
    BASE91_ALPHABET,
    ENCODINGS,
    base91_decode,
    base91_encode,
    get_encoding,
)
from audionet.errors import EncodingError

# Known vectors, computed with the reference implementation (the `base91` package on PyPI).
VECTORS = [
    (b"", ""),
    (b"a", "GB"),
    (b"hello", "TPwJh>A"),
    (b"test", "fPNKd"),
    (b"Hello, World!", ">OwJh>}AQ;r@@Y?F"),
    (bytes(range(8)), ":C#(:C?hVB"),
]


@pytest.mark.parametrize(("raw", "text"), VECTORS)
def test_known_vectors(raw: bytes, text: str) -> None:
    assert base91_encode(raw) == text
    assert base91_decode(text) == raw


def test_vectors_match_the_reference_package() -> None:
    for raw, text in VECTORS:
        assert base91.encode(raw) == text


@given(st.binary(max_size=600))
def test_byte_compatible_with_reference(data: bytes) -> None:
    text = base91_encode(data)
    assert text == base91.encode(data)
    assert base91_decode(text) == data
    assert bytes(base91.decode(text)) == data


def test_alphabet_has_no_apostrophe() -> None:
    # AoDNS v1 separates the frame index from the data with ''' for this reason.
    assert "'" not in BASE91_ALPHABET
    assert len(set(BASE91_ALPHABET)) == 91


@pytest.mark.parametrize("bad", ["abc'", "a b", "é", "\\"])
def test_invalid_base91_is_an_error(bad: str) -> None:
    with pytest.raises(EncodingError, match="invalid basE91 character"):
        base91_decode(bad)


@pytest.mark.parametrize("name", sorted(ENCODINGS))
@given(data=st.binary(max_size=300))
def test_every_encoding_round_trips(name: str, data: bytes) -> None:
    enc = get_encoding(name)
    text = enc.encode(data)
    assert text.isascii()
    assert enc.decode(text) == data


@pytest.mark.parametrize("name", ["base16", "base32", "base64", "base85"])
def test_invalid_text_is_an_error(name: str) -> None:
    with pytest.raises(EncodingError):
        get_encoding(name).decode("!!!~~~")


def test_unknown_encoding() -> None:
    with pytest.raises(EncodingError, match="choose one of base91"):
        get_encoding("base999")


def test_base91_is_denser_than_base64() -> None:
    data = bytes(range(256)) * 4
    assert len(base91_encode(data)) < len(get_encoding("base64").encode(data))
