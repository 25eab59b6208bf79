"""Passphrase encryption of v2 packs (ChaCha20-Poly1305 AEAD, scrypt key derivation).

- Key: ``scrypt(passphrase, salt, n=2**14, r=8, p=1, 32 bytes)``; the salt is random per server run
  and published in the config record, so each run has its own key and nonces never repeat across
  runs.
- Nonce (12 bytes): ``epoch (4, big-endian) || pack number (4) || 0x00000000``: unique per pack of
a run.
- The pack header is the associated data, so a header cannot be moved onto another pack's body.
- Key check value: ``HMAC-SHA256(key, "aodns-v2 key check")[:8]`` in the config record lets a client
  tell a wrong passphrase at once, before any pack arrives, with a clear error instead of noise.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from audionet.dns.errors import BadRecordError, WrongKeyError

#: RFC 7914 parameters: 16 MiB and ~50 ms per derivation; done once per client start and server run.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_LEN = 32
SALT_LEN = 16
TAG_LEN = 16
KCV_LEN = 8
AEAD_NAME = "chacha20poly1305"
_KCV_LABEL = b"aodns-v2 key check"


def derive_key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=KEY_LEN, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


def key_check(key: bytes) -> bytes:
    return hmac.new(key, _KCV_LABEL, hashlib.sha256).digest()[:KCV_LEN]


def nonce(epoch: int, seq: int) -> bytes:
    return struct.pack(">II", epoch & 0xFFFFFFFF, seq & 0xFFFFFFFF) + b"\0\0\0\0"


class PackCipher:
    """Seals and opens pack bodies with one derived key."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._aead = ChaCha20Poly1305(key)

    @classmethod
    def from_passphrase(cls, passphrase: str, salt: bytes) -> PackCipher:
        return cls(derive_key(passphrase, salt))

    @property
    def check_value(self) -> bytes:
        return key_check(self.key)

    def verify(self, check_value: bytes) -> None:
        """Raise :class:`WrongKeyError` unless ``check_value`` matches this key."""
        if not hmac.compare_digest(check_value, self.check_value):
            raise WrongKeyError("wrong passphrase: the stream was encrypted with another key")

    def seal(self, epoch: int, seq: int, header: bytes, body: bytes) -> bytes:
        return self._aead.encrypt(nonce(epoch, seq), body, header)

    def open(self, epoch: int, seq: int, header: bytes, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(nonce(epoch, seq), sealed, header)
        except InvalidTag as e:
            raise BadRecordError(
                f"pack {seq}: authentication failed (wrong key or tampered)"
            ) from e
