"""Errors of the AoDNS system (all :class:`~audionet.errors.AudionetError` subclasses)."""

from __future__ import annotations

from audionet.errors import AudionetError, ConfigError, CryptoError, RemoteProtocolError


class DnsError(AudionetError):
    """Something went wrong talking DNS (resolution failed for good, server unreachable)."""


class BadRecordError(RemoteProtocolError):
    """A TXT record did not have the shape the AoDNS format says (a broken or foreign record)."""


class StreamConfigError(ConfigError):
    """A zone, stream name or stream setting that cannot work (bad label, too long a name...)."""


class KeyRequiredError(CryptoError):
    """The stream is encrypted and no passphrase was given."""


class WrongKeyError(CryptoError):
    """The passphrase does not match the one the stream was encrypted with."""
