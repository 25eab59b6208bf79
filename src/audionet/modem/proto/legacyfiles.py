"""The original's file transfer messages (``FileTransferProtocol.java``), with safe paths (no I/O
but the files under ``root``).

Each is one connection message; text is UTF-8 (Java's ``getBytes()``/``new String`` on a UTF-8
platform)::

    FTP_SEND <path>                 then the next message is the file's bytes (:50-58)
    FTP_REQUEST_FILE <path>         please send this file (:84-86)
    FTP_REQUEST_DIR <path>          please send every file under this directory (:95-97)
    FTP_REQUEST_FAIL: resource not found                                        (:135, :142)

A directory is sent as ``FTP_SEND`` pairs for each file under it, named by its path relative to the
root (:63-76); there is no message for a directory itself or for its end, so empty directories do
not travel and the receiver cannot tell when a tree is complete (a client decides by silence, see
:class:`~audionet.modem.legacyapps.LegacyFileClient`). There is no size or digest: the frame
checksums are the only check.

What we do differently, never visible to the original as a failure:

- Paths are sanitised (the original resolves any path, ``..`` and absolute ones included, against
  its folder, :122-123, :131-132): a name is refused unless it stays inside ``root``
  (:func:`~audionet.modem.proto.files.safe_path`). A ``\\`` counts as a separator, since an
  original on Windows names files that way. A refused request is answered as missing.
- A request we cannot serve (missing, refused, a directory asked for as a file or the reverse) is
  answered with ``FTP_REQUEST_FAIL``; the original sends nothing for the last two (it fails to read
  them and swallows the error, :51-57, :64-75).
- A received file is written to ``<name>.part`` and renamed when whole.
- An unknown message is an event, not an exception that ends the receiving thread (:147).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from audionet.errors import TransferError
from audionet.modem.proto.files import (
    FileEvent,
    FileReceived,
    TransferFailed,
    safe_path,
)

log = logging.getLogger(__name__)

SEND = "FTP_SEND "
REQUEST_FILE = "FTP_REQUEST_FILE "
REQUEST_DIR = "FTP_REQUEST_DIR "
FAIL = "FTP_REQUEST_FAIL"
#: The whole failure message the original sends (FileTransferProtocol.java:135, :142).
FAIL_MESSAGE = b"FTP_REQUEST_FAIL: resource not found"
NOT_FOUND = "resource not found"


@dataclass(frozen=True, slots=True)
class RequestFailed:
    """The peer answered our request with ``FTP_REQUEST_FAIL`` (it names no path)."""

    reason: str


LegacyFileEvent = FileEvent | RequestFailed


def wire_name(name: str) -> str:
    """A path as the original may write it (``\\`` from Windows) as our relative ``/`` path."""
    return name.replace("\\", "/")


def check_name(name: str) -> str:
    """``name`` if it is a relative path that stays inside a folder, else :class:`TransferError`.

    The original resolves whatever path it is sent against its folder (absolute paths and ``..``
    included), so we never send one that would leave it.
    """
    pure = PurePosixPath(wire_name(name))
    if (
        not name
        or "\x00" in name
        or "\n" in name
        or pure.is_absolute()
        or ".." in pure.parts
        or not pure.parts
        or ":" in pure.parts[0]
    ):
        raise TransferError(
            f"refused path {name!r}: give a relative path inside the folder, without '..'"
        )
    return name


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # an original on a platform with another default charset
        return data.decode("latin-1")


def _header(kind: str, path: str) -> bytes:
    return (kind + check_name(path)).encode()


class LegacyFileTransfer:
    """One side of the original's file transfer on one connection, serving and storing in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pending: str | None = None  # name of the FTP_SEND whose content comes next

    # -- what to send -----------------------------------------------------------------------

    def send_file(self, local: Path, name: str) -> Iterator[bytes]:
        """``FTP_SEND <name>`` and the file's bytes (FileTransferProtocol.java:50-58)."""
        data = local.read_bytes()
        yield _header(SEND, name)
        yield data

    def send_directory(self, local: Path, name: str) -> Iterator[bytes]:
        """Every file under ``local`` as ``name/<relative path>``, in sorted order (:63-76)."""
        for dirpath, dirnames, filenames in os.walk(local):
            dirnames.sort()
            rel = Path(dirpath).relative_to(local)
            for f in sorted(filenames):
                path = Path(dirpath, f)
                wire = str(PurePosixPath(name, *rel.parts, f))
                if not path.is_file():
                    continue
                try:
                    check_name(wire)
                except TransferError as exc:  # e.g. a newline in a file name: skip that file
                    log.warning("not sending %s: %s", path, exc)
                    continue
                yield from self.send_file(path, wire)

    def request_file(self, name: str) -> bytes:
        return _header(REQUEST_FILE, name)

    def request_directory(self, name: str) -> bytes:
        return _header(REQUEST_DIR, name)

    @property
    def expecting_content(self) -> bool:
        """An ``FTP_SEND`` arrived and its content is the next message."""
        return self._pending is not None

    # -- what arrives -----------------------------------------------------------------------

    def receive_message(self, message: bytes) -> tuple[list[bytes], list[LegacyFileEvent]]:
        """Handle one message: ``(messages to send back, events)``."""
        if self._pending is not None:
            name, self._pending = self._pending, None
            return [], [self._store(name, message)]
        text = _text(message)
        if text.startswith(SEND):  # :120
            self._pending = text[len(SEND) :]
            return [], []
        if text.startswith(REQUEST_FILE):  # :130
            return self._serve(text[len(REQUEST_FILE) :], directory=False), []
        if text.startswith(REQUEST_DIR):  # :137
            return self._serve(text[len(REQUEST_DIR) :], directory=True), []
        if text.startswith(FAIL):  # :144
            reason = text[len(FAIL) :].lstrip(": ") or NOT_FOUND
            return [], [RequestFailed(reason)]
        return [], [TransferFailed("", f"unknown file-transfer message {message[:40]!r}")]

    def _serve(self, name: str, *, directory: bool) -> list[bytes]:
        try:
            target: Path | None = safe_path(self.root, wire_name(name))
        except TransferError as exc:
            log.info("refused request for %r: %s", name, exc)
            target = None  # refused paths look missing: reveal nothing about the disk
        try:
            if target is not None and not directory and target.is_file():
                return list(self.send_file(target, name))
            if target is not None and directory and target.is_dir():
                messages = list(self.send_directory(target, wire_name(name)))
                if not messages:
                    log.info("%r holds no files: nothing to send", name)
                return messages
        except (OSError, TransferError) as exc:  # unreadable, or a name we cannot send
            log.info("cannot serve %r: %s", name, exc)
        return [FAIL_MESSAGE]

    def _store(self, name: str, data: bytes) -> LegacyFileEvent:
        digest = hashlib.sha256(data).hexdigest()
        try:
            target = safe_path(self.root, wire_name(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + ".part")
            part.write_bytes(data)
            part.replace(target)
        except (TransferError, OSError) as exc:
            return TransferFailed(name, str(exc))
        return FileReceived(name, len(data), digest, target)
