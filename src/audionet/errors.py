"""One exception tree for the whole package.

Every error audionet raises on purpose derives from :class:`AudionetError`, so a caller can catch
everything of ours with one clause and still tell a bad configuration from a misbehaving peer.
Protocol errors follow h11's split: a :class:`LocalProtocolError` is our own misuse of a protocol
(a bug or a bad argument on this side), a :class:`RemoteProtocolError` is something the peer sent.
"""

from __future__ import annotations


class AudionetError(Exception):
    """Base class of every error audionet raises on purpose."""


class ConfigError(AudionetError, ValueError):
    """A setting, argument or combination of them that cannot work; the message says what to change."""


class DependencyError(AudionetError, ImportError):
    """An optional dependency (a library or a system package) is missing; the message says what to install."""


class AudioError(AudionetError):
    """Audio input or output failed: an unreadable file, an unsupported format, a device error."""


class UnsupportedFormatError(AudioError, ConfigError):
    """A sample rate, channel count or sample width that the component cannot handle."""


class CodecError(AudionetError):
    """A codec could not be created, or could not encode or decode a frame."""


class UnknownCodecError(CodecError, ConfigError):
    """The codec name is not one of the known codecs."""


class EncodingError(AudionetError, ValueError):
    """Text encoding or decoding (basE91, base64, ...) failed on invalid input."""


class ProtocolError(AudionetError):
    """A protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow (a bug or bad argument on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class CryptoError(AudionetError):
    """Decryption or authentication failed: a wrong or missing key, or tampered data."""


class TransferError(AudionetError):
    """A data transfer failed: the peer refused it, a resource was missing, or a checksum did not match."""


class TimedOut(AudionetError, TimeoutError):
    """An operation gave up after its time limit (also a builtin ``TimeoutError``)."""
