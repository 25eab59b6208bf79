"""An AudioSocket client that behaves like Asterisk, for tests, demos, load and checking servers.

``call = await connect(host, port)`` opens a call the way Asterisk does: it connects (giving up after
2 s), sends the UUID, then sends queued audio in 20 ms frames on the loop's shared clock. By default
it behaves like Asterisk's channel driver (``Dial(AudioSocket/...)``) and sends no audio until the
server has sent some. Every message from the server goes through an
:class:`~audionet.audiosocket.check.AsteriskChecker`; with ``strict`` (the default) the first message
Asterisk would reject ends the call, as it would in Asterisk. ``call.hangup()`` closes the socket
without a hangup message, as Asterisk does.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
import uuid as uuid_mod
from collections import deque
from typing import Any, cast

from audionet.audiosocket.check import AsteriskChecker, Violation
from audionet.audiosocket.clock import PERIOD, Ticker, get_ticker
from audionet.audiosocket.pacing import OutgoingAudio
from audionet.audiosocket.proto import Audio, Error, Hangup, encode_dtmf, encode_uuid
from audionet.errors import TimedOut

#: Asterisk's connect timeout (``MAX_CONNECT_TIMEOUT_MSEC`` in ``res_audiosocket.c``).
CONNECT_TIMEOUT = 2.0
ClientEvent = Audio | Hangup | Error


class ClientCall(asyncio.Protocol):
    """One Asterisk-like call (create it with :func:`connect`)."""

    def __init__(
        self, call_id: uuid_mod.UUID, rate: int, wait_for_server: bool, strict: bool, record: bool
    ) -> None:
        self.uuid = call_id
        self.rate = rate
        self.wait_for_server = wait_for_server
        self.strict = strict
        self.checker = AsteriskChecker()
        #: Audio queued to send; unbounded on purpose (a test queues a whole file at once).
        self.out = OutgoingAudio(rate, max_bytes=1 << 40, silence=False)
        self.transport: asyncio.Transport | None = None
        self.ticker: Ticker | None = None
        #: The deadline of the next frame (set first by the ticker).
        self.due = 0.0
        #: Everything the server sent as audio, if ``record``.
        self.received = bytearray()
        self._record = record
        #: Arrival times (loop clock) of the server's audio messages.
        self.audio_times: list[float] = []
        self.frames_sent = 0
        self.frames_received = 0
        self._events: deque[ClientEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended = False
        self.end_reason = ""

    @property
    def violations(self) -> list[Violation]:
        return self.checker.violations

    # -- asyncio callbacks -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(encode_uuid(self.uuid))  # Asterisk: the UUID is always first
        self.ticker = get_ticker(asyncio.get_running_loop())
        self.ticker.add(self)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        before = len(self.checker.violations)
        for ev in self.checker.receive_data(data, now):
            if isinstance(ev, Audio):
                self.frames_received += 1
                self.audio_times.append(now)
                if self._record:
                    self.received += ev.pcm
            self._push(ev)
            if isinstance(ev, Hangup):
                self._end(ev.reason)
        if len(self.checker.violations) > before:
            for v in self.checker.violations[before:]:
                self._push(Error(v.message, fatal=self.strict))
            if self.strict:
                self._end(
                    f"Asterisk would drop the call: {self.checker.violations[before].message}"
                )

    def eof_received(self) -> bool:
        self._eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof()
        if self.ticker is not None:
            self.ticker.discard(self)
        if not self._closed.done():
            self._closed.set_result(None)

    def _eof(self) -> None:
        if self.ended:
            return
        now = time.monotonic()
        for ev in self.checker.receive_data(b"", now):
            self._push(ev)
        for v in self.checker.violations:
            if v.message.startswith("server closed"):
                self._push(Error(v.message, fatal=False))
        self._end("server closed the connection")

    # -- the clock ---------------------------------------------------------------------------------

    def tick(self) -> None:
        # Like Asterisk: a frame every 20 ms on its own clock, whatever the server does; the
        # deadlines of a loop held up are skipped, never made up in a burst.
        due = self.due + PERIOD
        now = time.monotonic()
        if due <= now:
            due += math.ceil((now - due) / PERIOD) * PERIOD
        self.due = due
        if self.ended or self.transport is None:
            return
        if self.wait_for_server and not self.frames_received:
            return  # Asterisk's channel driver sends nothing until the server has sent audio
        msg = self.out.next_message()
        if msg is not None:
            self.transport.write(msg)
            self.frames_sent += 1

    # -- the API -----------------------------------------------------------------------------------

    def send_audio(self, pcm: bytes | bytearray | memoryview) -> None:
        """Queue s16le audio at :attr:`rate`; it goes out one 20 ms frame per tick."""
        self.out.push(pcm)

    async def drain(self) -> None:
        """Wait until all queued audio has been sent (or the call ended)."""
        while len(self.out) and not self.ended:
            await asyncio.sleep(0.01)

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF digits, one message per digit, as Asterisk does."""
        if self.transport is not None and not self.ended:
            for d in digits:
                self.transport.write(encode_dtmf(d))

    async def hangup(self) -> None:
        """Hang up like Asterisk: close the socket (Asterisk never sends a hangup message)."""
        self._end("caller hung up")
        await self.wait_closed()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.end_reason = reason
        if self.ticker is not None:
            self.ticker.discard(self)
        if self.transport is not None:
            self.transport.close()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _push(self, ev: ClientEvent) -> None:
        self._events.append(ev)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def __aiter__(self) -> ClientCall:
        return self

    async def __anext__(self) -> ClientEvent:
        while True:
            if self._events:
                return self._events.popleft()
            if self.ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def __aenter__(self) -> ClientCall:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hangup()


async def connect(
    host: str,
    port: int,
    uuid: uuid_mod.UUID | str | None = None,
    rate: int = 8000,
    *,
    wait_for_server: bool = True,
    strict: bool = True,
    record: bool = True,
    timeout: float = CONNECT_TIMEOUT,
    **kwargs: Any,
) -> ClientCall:
    """Place an Asterisk-like call to the AudioSocket server at ``host:port``.

    ``uuid``: the call's UUID (random by default). ``rate``: the audio rate it sends (8000 = kind
    0x10). ``wait_for_server``: send no audio until the server has (Asterisk's channel driver);
    ``False`` behaves like the ``AudioSocket()`` dialplan application. ``record``: keep all audio the
    server sent in ``call.received``. Raises :class:`~audionet.errors.TimedOut` after ``timeout``.
    """
    call_id = (
        uuid
        if isinstance(uuid, uuid_mod.UUID)
        else uuid_mod.UUID(uuid)
        if uuid
        else uuid_mod.uuid4()
    )
    OutgoingAudio(rate)  # validates the rate before connecting
    loop = asyncio.get_running_loop()
    try:
        _, proto = await asyncio.wait_for(
            loop.create_connection(
                lambda: ClientCall(call_id, rate, wait_for_server, strict, record),
                host,
                port,
                **kwargs,
            ),
            timeout,
        )
    except TimeoutError:
        raise TimedOut(
            f"AudioSocket server {host}:{port} did not accept within {timeout:g} s"
        ) from None
    return proto
