"""Key derivation, key check value and AEAD sealing."""

import pytest

from audionet.dns.errors import BadRecordError, WrongKeyError
from audionet.dns.proto import crypto


def test_derive_is_deterministic_and_salted() -> None:
    k1 = crypto.derive_key("pass", b"s" * 16)
    assert k1 == crypto.derive_key("pass", b"s" * 16)
    assert len(k1) == 32
    assert k1 != crypto.derive_key("pass", b"t" * 16)
    assert k1 != crypto.derive_key("Pass", b"s" * 16)


def test_key_check() -> None:
    right = crypto.PackCipher.from_passphrase("open sesame", b"\x01" * 16)
    wrong = crypto.PackCipher.from_passphrase("open sesamE", b"\x01" * 16)
    right.verify(right.check_value)
    with pytest.raises(WrongKeyError, match="wrong passphrase"):
        wrong.verify(right.check_value)


def test_seal_open_nonce_per_pack() -> None:
    c = crypto.PackCipher(bytes(range(32)))
    sealed = c.seal(1, 2, b"hdr", b"body")
    assert len(sealed) == 4 + crypto.TAG_LEN
    assert c.open(1, 2, b"hdr", sealed) == b"body"
    assert c.seal(1, 3, b"hdr", b"body") != sealed
    for args in [(1, 3, b"hdr"), (2, 2, b"hdr"), (1, 2, b"hdX")]:
        with pytest.raises(BadRecordError):
            c.open(*args, sealed)
    assert crypto.nonce(1, 2) == b"\0\0\0\x01\0\0\0\x02\0\0\0\0"
