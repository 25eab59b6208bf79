"""Applications on a station: a file server, a file client and a pinger (time passed in, no I/O).

Each reacts to the host's events (:meth:`handle`) and acts when polled (:meth:`poll`); a
:class:`~audionet.modem.link.Station` drives them in virtual or real time alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from audionet.errors import TransferError
from audionet.modem.proto.arq import (
    ArqConfig,
    Closed,
    Connected,
    Connection,
    MessageReceived,
    State,
)
from audionet.modem.proto.files import (
    DirectoryReceived,
    FileEvent,
    FileReceived,
    FileTransfer,
    Progress,
    TransferFailed,
)
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import (
    ConnectionEvent,
    ConnectionHost,
    HostEvent,
    IncomingConnection,
    PingReceived,
)
from audionet.modem.proto.ping import Pinger, PingLine

log = logging.getLogger(__name__)

#: The port file transfer listens on (FTP's, as a host byte allows).
FILE_PORT = 21


class FileServer:
    """Serves ``root`` on ``port``: stores files sent to it, answers requests; never finishes."""

    def __init__(
        self,
        root: Path,
        port: int = FILE_PORT,
        progress: Progress | None = None,
        on_event: Callable[[FileEvent], None] | None = None,
    ) -> None:
        self.root = root
        self.port = port
        self.progress = progress
        self.on_event = on_event
        self.received: list[FileEvent] = []
        self._sessions: dict[int, FileTransfer] = {}
        self._listening = False

    @property
    def done(self) -> bool:
        return False

    def poll(self, host: ConnectionHost, now: float) -> None:
        if not self._listening:
            host.listen(self.port)
            self._listening = True

    def handle(self, event: HostEvent, host: ConnectionHost, now: float) -> None:
        if isinstance(event, IncomingConnection) and event.connection.local.port == self.port:
            log.info("connection from %s", event.connection.remote)
            self._sessions[id(event.connection)] = FileTransfer(self.root, self.progress)
        elif isinstance(event, ConnectionEvent):
            ft = self._sessions.get(id(event.connection))
            if ft is None:
                return
            if isinstance(event.event, MessageReceived):
                replies, events = ft.receive_message(event.event.data)
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
class FileClient:
    """Sends a file or directory (``send``) or fetches one (``get``), then closes the connection.

    ``send``: ``local`` is sent as ``name``. ``get``: ``name`` is requested (a directory when
    ``directory``) and stored under ``root``.
    """

    remote: Address
    name: str
    root: Path
    local: Path | None = None
    directory: bool = False
    config: ArqConfig | None = None
    progress: Progress | None = None
    events: list[FileEvent] = field(default_factory=list)
    error: str | None = None
    connection: Connection | None = None
    finished: bool = False
    _ft: FileTransfer | None = None
    _sent_all: bool = False
    _closing: bool = False
    _connected: bool = False

    @property
    def done(self) -> bool:
        return self.finished

    @property
    def ok(self) -> bool:
        return self.finished and self.error is None

    def poll(self, host: ConnectionHost, now: float) -> None:
        if self.connection is None:
            config = self.config or host.config
            # whole frames per data message, so no frame goes out half empty
            self._ft = FileTransfer(self.root, self.progress, chunk=16 * config.max_payload)
            self.connection = host.connect(self.remote, now, config=config)
        conn = self.connection
        if self.local is not None and self._sent_all and not self._closing and conn.pending == 0:
            self._close()
        if self._closing and conn.state is State.TIME_WAIT and not self.finished:
            # both FINs exchanged: all is delivered; the linger only re-acknowledges a lost ACK
            self.finished = True

    def _close(self) -> None:
        if self.connection is not None and not self._closing:
            self._closing = True
            self.connection.close()

    def handle(self, event: HostEvent, host: ConnectionHost, now: float) -> None:
        if not isinstance(event, ConnectionEvent) or event.connection is not self.connection:
            return
        assert self._ft is not None
        conn, ev = event.connection, event.event
        if isinstance(ev, Connected):
            self._connected = True
            if self.local is not None:
                messages = (
                    self._ft.send_directory(self.local, self.name)
                    if self.local.is_dir()
                    else self._ft.send_file(self.local, self.name)
                )
                for m in messages:
                    conn.send(m)
                self._sent_all = True
            elif self.directory:
                conn.send(self._ft.request_directory(self.name))
            else:
                conn.send(self._ft.request_file(self.name))
        elif isinstance(ev, MessageReceived):
            _, events = self._ft.receive_message(ev.data)
            self.events.extend(events)
            for e in events:
                if isinstance(e, TransferFailed):
                    self.error = f"{e.path}: {e.reason}"
                    self._close()
                elif isinstance(e, DirectoryReceived) or (
                    isinstance(e, FileReceived) and not self.directory
                ):
                    self._close()
        elif isinstance(ev, Closed) and not self.finished:
            self.finished = True
            if ev.reason is not None and self.error is None:
                self.error = ev.reason
                if not self._connected and "reset" in ev.reason:
                    self.error = (
                        f"{self.remote} refused the connection: nothing listens on that port"
                    )
            if self.local is None and self.error is None and not self.events:
                self.error = "connection closed before anything arrived"

    def raise_for_error(self) -> None:
        if self.error is not None:
            raise TransferError(self.error)


@dataclass
class PingClient:
    """Runs a :class:`~audionet.modem.proto.ping.Pinger` on a station (legacy hosts too)."""

    pinger: Pinger
    on_reply: object = None
    finished: bool = False
    replies: list[tuple[int, float]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.finished

    def poll(self, host: PingLine, now: float) -> None:
        self.pinger.poll(host, now)
        self.finished = self.pinger.done(now)

    def handle(self, event: object, host: PingLine, now: float) -> None:
        if isinstance(event, PingReceived):
            rtt = self.pinger.handle_event(event, now)
            if rtt is not None:
                self.replies.append((event.seq, rtt))
                if callable(self.on_reply):
                    self.on_reply(event.seq, rtt)
