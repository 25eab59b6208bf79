"""Our basE91 against the ``base91`` PyPI package the original AoDNS used."""

import base91
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.dns.proto import b91
from audionet.errors import EncodingError


@given(st.binary(max_size=600))
def test_encode_matches_reference(data: bytes) -> None:
    assert b91.encode(data) == base91.encode(data)


@given(st.binary(max_size=600))
def test_round_trip_and_bound(data: bytes) -> None:
    text = b91.encode(data)
    assert b91.decode(text) == data
    assert bytes(base91.decode(text)) == data
    assert len(text) <= b91.encoded_length_bound(len(data))
    assert "'" not in text  # the v1 separator can never appear in data


def test_golden() -> None:
    assert b91.encode(bytes(range(16))) == ":C#(:C?hVB$MSiVEwndB"


def test_bad_character() -> None:
    with pytest.raises(EncodingError):
        b91.decode("abc'def")
