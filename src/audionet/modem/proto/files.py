"""File transfer on a connection: send or request files and directory trees, SHA-256 checked.

Messages (each one connection message; text is UTF-8; the original's names)::

    FTP_SEND <path>\\n<size> <sha256-hex>     then <size> bytes in following messages (chunks)
    FTP_MKDIR <path>                         a directory of a tree being sent (also empty ones)
    FTP_DONE <path> <files>                  the end of a directory tree
    FTP_REQUEST_FILE <path>                  please send this file
    FTP_REQUEST_DIR <path>                   please send this directory tree
    FTP_REQUEST_FAIL: resource not found <path>

Paths on the wire are relative, with ``/`` separators; both sides resolve them strictly inside their
chosen root folder (:func:`safe_path`), so a peer can neither read nor write anything outside it.
A received file is written to ``<name>.part`` and renamed only when its SHA-256 matches.

:class:`FileTransfer` does no network or clock I/O: it turns requests into messages to send, and
received messages into replies and events. It reads and writes files under its root.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from audionet.errors import TransferError

log = logging.getLogger(__name__)

#: Bytes per data message: big enough to keep the window full, small enough for smooth progress.
CHUNK = 8192
NOT_FOUND = "resource not found"


@dataclass(frozen=True, slots=True)
class FileReceived:
    path: str  #: as sent (relative)
    size: int
    sha256: str
    local: Path


@dataclass(frozen=True, slots=True)
class DirectoryReceived:
    path: str
    files: int


@dataclass(frozen=True, slots=True)
class TransferFailed:
    """A request the peer could not serve, or a file that arrived damaged or with a refused path."""

    path: str
    reason: str


FileEvent = FileReceived | DirectoryReceived | TransferFailed
Progress = Callable[[str, int, int], None]


def safe_path(root: Path, name: str) -> Path:
    """``name`` (a relative ``/`` path) inside ``root``; :class:`TransferError` otherwise."""
    if not name or "\x00" in name or "\\" in name:
        raise TransferError(f"refused path {name!r}: empty, NUL or backslash")
    pure = PurePosixPath(name)
    if not pure.parts:
        raise TransferError(f"refused path {name!r}: names no file")
    if pure.is_absolute() or any(p in ("..", "") for p in pure.parts) or ":" in pure.parts[0]:
        raise TransferError(f"refused path {name!r}: must stay inside the shared folder")
    try:
        base = root.resolve()
        target = (base / Path(*pure.parts)).resolve()
    except (OSError, RuntimeError) as exc:  # a name too long, a symbolic-link loop
        raise TransferError(f"refused path {name!r}: {exc}") from None
    if target != base and base not in target.parents:
        raise TransferError(f"refused path {name!r}: leaves the shared folder through a link")
    return target


def _header(kind: str, path: str) -> bytes:
    if "\n" in path:
        raise TransferError(f"refused path {path!r}: contains a newline")
    return f"{kind} {path}".encode()


class FileTransfer:
    """One side of file transfer on one connection, serving and storing under ``root``."""

    def __init__(self, root: Path, progress: Progress | None = None, chunk: int = CHUNK) -> None:
        self.root = root
        self.progress = progress
        self.chunk = chunk
        self._incoming: _Incoming | None = None
        self._dir_files = 0

    # -- what to send -----------------------------------------------------------------------

    def send_file(self, local: Path, name: str) -> Iterator[bytes]:
        """Messages that send ``local`` to the peer as ``name``."""
        data = local.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        yield _header("FTP_SEND", name) + f"\n{len(data)} {digest}".encode()
        for i in range(0, len(data), self.chunk):
            yield data[i : i + self.chunk]

    def send_directory(self, local: Path, name: str) -> Iterator[bytes]:
        """Messages that send the tree ``local`` as ``name`` (files in sorted order)."""
        files = 0
        yield _header("FTP_MKDIR", name)
        for dirpath, dirnames, filenames in os.walk(local):
            dirnames.sort()
            rel = Path(dirpath).relative_to(local)
            prefix = str(PurePosixPath(name, *rel.parts))
            for d in dirnames:
                yield _header("FTP_MKDIR", f"{prefix}/{d}")
            for f in sorted(filenames):
                path = Path(dirpath, f)
                if path.is_file():
                    files += 1
                    yield from self.send_file(path, f"{prefix}/{f}")
        yield _header("FTP_DONE", name) + f" {files}".encode()

    def request_file(self, name: str) -> bytes:
        return _header("FTP_REQUEST_FILE", name)

    def request_directory(self, name: str) -> bytes:
        return _header("FTP_REQUEST_DIR", name)

    # -- what arrives -----------------------------------------------------------------------

    def receive_message(self, message: bytes) -> tuple[list[bytes], list[FileEvent]]:
        """Handle one message: ``(messages to send back, events)``."""
        if self._incoming is not None:
            return [], self._data(message)
        line, _, rest = message.partition(b"\n")
        kind, _, arg = line.decode("utf-8", "replace").partition(" ")
        if kind == "FTP_SEND":
            return [], self._start(arg, rest)
        if kind == "FTP_MKDIR":
            try:
                safe_path(self.root, arg).mkdir(parents=True, exist_ok=True)
            except (TransferError, OSError) as exc:
                return [], [TransferFailed(arg, str(exc))]
            return [], []
        if kind == "FTP_DONE":
            name, _, count = arg.rpartition(" ")
            # (isdigit() alone also takes digits that int() refuses, such as "¹")
            ok = count.isascii() and count.isdecimal()
            return [], [DirectoryReceived(name, int(count) if ok else 0)]
        if kind in ("FTP_REQUEST_FILE", "FTP_REQUEST_DIR"):
            return self._serve(kind, arg), []
        if kind == "FTP_REQUEST_FAIL:":
            reason, _, path = arg.rpartition(" ")
            return [], [TransferFailed(path, reason or NOT_FOUND)]
        return [], [TransferFailed("", f"unknown file-transfer message {line[:40]!r}")]

    def _serve(self, kind: str, name: str) -> list[bytes]:
        try:
            target = safe_path(self.root, name)
        except TransferError:
            target = None  # refused paths look missing: reveal nothing about the disk
        try:
            if kind == "FTP_REQUEST_FILE" and target is not None and target.is_file():
                return list(self.send_file(target, name))
            if kind == "FTP_REQUEST_DIR" and target is not None and target.is_dir():
                return list(self.send_directory(target, name))
        except OSError as exc:  # unreadable, or a name the file system refuses
            log.info("cannot serve %r: %s", name, exc)
        return [f"FTP_REQUEST_FAIL: {NOT_FOUND} {name}".encode()]

    def _start(self, name: str, meta: bytes) -> list[FileEvent]:
        try:
            size_text, digest = meta.decode().split()
            size = int(size_text)
        except ValueError:
            return [TransferFailed(name, "malformed FTP_SEND header")]
        incoming = _Incoming(name, size, digest)
        try:
            incoming.target = safe_path(self.root, name)
            incoming.target.parent.mkdir(parents=True, exist_ok=True)
            incoming.part = incoming.target.with_name(incoming.target.name + ".part")
            incoming.file = incoming.part.open("wb")
        except (TransferError, OSError) as exc:
            incoming.error = str(exc)  # still swallow its data messages
        self._incoming = incoming
        return self._finish() if size == 0 else []

    def _data(self, data: bytes) -> list[FileEvent]:
        inc = self._incoming
        assert inc is not None
        inc.sha.update(data)
        inc.done += len(data)
        if inc.file is not None:
            inc.file.write(data)
        if self.progress is not None:
            self.progress(inc.name, inc.done, inc.size)
        return self._finish() if inc.done >= inc.size else []

    def _finish(self) -> list[FileEvent]:
        inc = self._incoming
        assert inc is not None
        self._incoming = None
        if inc.file is not None:
            inc.file.close()
        if inc.error is not None:
            return [TransferFailed(inc.name, inc.error)]
        assert inc.part is not None and inc.target is not None
        if inc.done != inc.size or inc.sha.hexdigest() != inc.digest:
            inc.part.unlink(missing_ok=True)
            return [TransferFailed(inc.name, "SHA-256 mismatch: the file arrived damaged")]
        inc.part.replace(inc.target)
        return [FileReceived(inc.name, inc.size, inc.digest, inc.target)]


class _Incoming:
    def __init__(self, name: str, size: int, digest: str) -> None:
        self.name, self.size, self.digest = name, size, digest
        self.done = 0
        self.sha = hashlib.sha256()
        self.target: Path | None = None
        self.part: Path | None = None
        self.file: BinaryIO | None = None
        self.error: str | None = None
