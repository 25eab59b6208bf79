"""File transfer with a station running the original program (time passed in, no I/O).

:class:`LegacyFileServer` and :class:`LegacyFileClient` are :class:`~audionet.modem.apps.FileServer`
and :class:`~audionet.modem.apps.FileClient` for a :class:`~audionet.modem.proto.legacyhost.LegacyHost`
and the original's ``FTP_*`` messages (:mod:`~audionet.modem.proto.legacyfiles`). The ping client
(:class:`~audionet.modem.apps.PingClient`) works on a legacy host unchanged.

The original says nothing when a directory it sends is complete, nor when it cannot read what was
asked for; a client that asked for a directory (or got no answer) therefore ends when the peer has
been silent for ``quiet`` seconds while nothing of ours waits for an acknowledgement. The original
sends the next frame of a reply within 20 ms of our ACK (its sending thread polls every 20 ms,
ConnectionHost.java:31-42) and repeats a lost one every 700 ms, so 5 s of silence means it is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audionet.errors import TransferError
from audionet.modem.proto.arqtypes import Closed, Connected, MessageReceived
from audionet.modem.proto.files import FileReceived, TransferFailed
from audionet.modem.proto.frame import Address
from audionet.modem.proto.legacy import LegacyConfig, LegacyConnection
from audionet.modem.proto.legacyfiles import LegacyFileEvent, LegacyFileTransfer, RequestFailed
from audionet.modem.proto.legacyhost import (
    LegacyConnectionEvent,
    LegacyHost,
    LegacyHostEvent,
    LegacyIncoming,
)

log = logging.getLogger(__name__)

#: The original's file-transfer client port (``FileTransferProtocol.main``'s ``client``, :27).
CLIENT_PORT = 10
#: Seconds of silence after which the original has nothing more to send.
QUIET = 5.0


class LegacyFileServer:
    """Serves ``root`` on ``port`` to original stations; never finishes."""

    def __init__(
        self,
        root: Path,
        port: int,
        on_event: Callable[[LegacyFileEvent], None] | None = None,
    ) -> None:
        self.root = root
        self.port = port
        self.on_event = on_event
        self.received: list[LegacyFileEvent] = []
        self._sessions: dict[int, LegacyFileTransfer] = {}
        self._listening = False

    @property
    def done(self) -> bool:
        return False

    def poll(self, host: LegacyHost, now: float) -> None:
        if not self._listening:
            host.listen(self.port)
            self._listening = True

    def handle(self, event: LegacyHostEvent, host: LegacyHost, now: float) -> None:
        if isinstance(event, LegacyIncoming) and event.connection.local.port == self.port:
            log.info("legacy connection from %s", event.connection.remote)
            self._sessions[id(event.connection)] = LegacyFileTransfer(self.root)
        elif isinstance(event, LegacyConnectionEvent):
            ft = self._sessions.get(id(event.connection))
            if ft is None:
                return
            if isinstance(event.event, MessageReceived):
                replies, events = ft.receive_message(event.event.data)
                if replies and event.connection.is_closed:
                    log.info("%s left before its answer", event.connection.remote)
                    replies = []
                for reply in replies:
                    event.connection.send(reply)
                for e in events:
                    log.info("%s", e)
                    if self.on_event is not None:
                        self.on_event(e)
                self.received.extend(events)
            elif isinstance(event.event, Closed):
                del self._sessions[id(event.connection)]


@dataclass
class LegacyFileClient:
    """Sends a file or directory (``local`` given) or fetches one, then closes with FIN.

    ``port`` is our end of the connection: the original only hears the address its ``Connection``
    was made for. ``get`` stores what arrives under ``root``; a directory fetch ends after
    ``quiet`` seconds of silence (see the module docstring).
    """

    remote: Address
    name: str
    root: Path
    local: Path | None = None
    directory: bool = False
    port: int = CLIENT_PORT
    config: LegacyConfig | None = None
    quiet: float = QUIET
    events: list[LegacyFileEvent] = field(default_factory=list)
    error: str | None = None
    connection: LegacyConnection | None = None
    finished: bool = False
    _ft: LegacyFileTransfer | None = None
    _closing: bool = False
    _connected: bool = False
    _sent: bool = False

    @property
    def done(self) -> bool:
        return self.finished

    @property
    def ok(self) -> bool:
        return self.finished and self.error is None

    @property
    def files(self) -> list[FileReceived]:
        return [e for e in self.events if isinstance(e, FileReceived)]

    def poll(self, host: LegacyHost, now: float) -> None:
        if self.connection is None:
            self._ft = LegacyFileTransfer(self.root)
            self.connection = host.connect(self.remote, now, port=self.port, config=self.config)
        conn = self.connection
        if self._closing or not self._sent or not conn.idle:
            return
        if self.local is not None:
            self._close()  # everything we sent is acknowledged
        elif now - conn.last_heard >= self.quiet and not (self._ft and self._ft.expecting_content):
            if not self.files:
                what = "directory holds no files or is not a directory" if self.directory else (
                    "is it a directory? (use --dir) or unreadable"
                )  # fmt: skip
                self.error = f"{self.name}: no answer in {self.quiet:g} s ({what})"
            self._close()

    def _close(self) -> None:
        if self.connection is not None and not self._closing:
            self._closing = True
            self.connection.close()

    def handle(self, event: LegacyHostEvent, host: LegacyHost, now: float) -> None:
        if not isinstance(event, LegacyConnectionEvent) or event.connection is not self.connection:
            return
        assert self._ft is not None
        conn, ev = event.connection, event.event
        if isinstance(ev, Connected):
            self._connected = True
            if conn.is_closed:
                return  # closed right after it opened: the Closed event follows
            if self.local is not None:
                messages = list(
                    self._ft.send_directory(self.local, self.name)
                    if self.local.is_dir()
                    else self._ft.send_file(self.local, self.name)
                )
                if not messages:  # the original's protocol has no message for a directory
                    self.error = f"{self.local}: no files to send (empty directories do not travel)"
                for m in messages:
                    conn.send(m)
            elif self.directory:
                conn.send(self._ft.request_directory(self.name))
            else:
                conn.send(self._ft.request_file(self.name))
            self._sent = True
        elif isinstance(ev, MessageReceived):
            _, events = self._ft.receive_message(ev.data)
            self.events.extend(events)
            for e in events:
                if isinstance(e, RequestFailed):
                    self.error = f"{self.name}: {e.reason}"
                    self._close()
                elif isinstance(e, TransferFailed):
                    self.error = f"{e.path}: {e.reason}"
                    self._close()
                elif isinstance(e, FileReceived) and not self.directory:
                    self._close()
        elif isinstance(ev, Closed) and not self.finished:
            self.finished = True
            if ev.reason is not None and self.error is None:
                self.error = ev.reason
                if not self._connected:
                    self.error = f"{self.remote} never answered our SYN ({ev.reason})"

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise TransferError(self.error)
