"""The call API: one :class:`Call` object per AudioSocket call on the server.

``async for event in call`` yields :class:`~audionet.audiosocket.proto.Audio`,
:class:`~audionet.audiosocket.proto.Dtmf`, :class:`~audionet.audiosocket.proto.Error` and finally
:class:`~audionet.audiosocket.proto.Hangup`. Audio goes out through the call's paced clock:
:meth:`Call.send` queues and never waits (the oldest audio is dropped if the queue is full: right for
live audio), :meth:`Call.write` and :meth:`Call.play` wait for room (backpressure: right for files).
"""

from __future__ import annotations

import asyncio
import uuid as uuid_mod
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from audionet.audio.format import AudioFormat
from audionet.audiosocket.pacing import OutgoingAudio
from audionet.audiosocket.proto import Audio, Dtmf, Error, Hangup

if TYPE_CHECKING:
    from audionet.audio.sources import Source

CallEvent = Audio | Dtmf | Hangup | Error


class CallLink(Protocol):
    """What a call needs from its connection (implemented by the server's protocol)."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def hangup(self, reason: str) -> None: ...


class Call:
    """One call. ``uuid`` is a :class:`uuid.UUID` (``str(call.uuid)`` is the canonical 36-character form,
    as in the dialplan's ``AudioSocket(<uuid>,host:port)``), ``peer`` the caller's address, ``format`` the
    format of the audio this call sends and expects (s16le mono at the server's rate, 8 kHz by default).
    """

    def __init__(
        self,
        uuid: uuid_mod.UUID,
        peer: Any,
        out: OutgoingAudio,
        link: CallLink,
        max_events: int = 250,
    ) -> None:
        self.uuid = uuid
        self.peer = peer
        self.format = AudioFormat(out.rate)
        self.out = out
        self._link = link
        self._events: deque[CallEvent] = deque()
        self._max_events = max_events
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._room_waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._closed: asyncio.Future[None] | None = None
        #: Set by handlers that keep per-call state (e.g. the record app's WAV file).
        self.state: Any = None

    def __repr__(self) -> str:
        return f"<Call {self.uuid} from {self.peer}{' ended' if self._ended else ''}>"

    # -- events ------------------------------------------------------------------------------------

    def _deliver(self, event: CallEvent) -> None:
        """Queue an event for ``async for`` (called by the connection)."""
        self._events.append(event)
        if len(self._events) >= self._max_events and not self._reading_paused:
            self._reading_paused = (
                True  # backpressure: stop reading the socket until the handler catches up
            )
            self._link.pause_reading()
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _finish(self) -> None:
        """The call is over: wake everyone who waits on it."""
        self._ended = True
        for w in (self._waiter, self._room_waiter):
            if w is not None and not w.done():
                w.set_result(None)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def __aiter__(self) -> Call:
        return self

    async def __anext__(self) -> CallEvent:
        while True:
            if self._events:
                ev = self._events.popleft()
                if self._reading_paused and len(self._events) <= self._max_events // 2:
                    self._reading_paused = False
                    if not self._ended:
                        self._link.resume_reading()
                return ev
            if self._ended:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    @property
    def ended(self) -> bool:
        return self._ended

    async def wait_closed(self) -> None:
        if self._ended:
            return
        if self._closed is None:
            self._closed = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed)

    # -- audio out ---------------------------------------------------------------------------------

    def send(self, pcm: bytes | bytearray | memoryview) -> None:
        """Queue audio (s16le in :attr:`format`) for the paced clock; never waits.

        Beyond the queue's bound (one second by default) the oldest queued audio is dropped.
        """
        if not self._ended:
            self.out.push(pcm)

    async def write(self, pcm: bytes | bytearray | memoryview) -> None:
        """Queue audio, waiting while the queue is full (backpressure). Returns early if the call ends."""
        view = memoryview(pcm)
        step = self.out.max_bytes - (self.out.max_bytes & 1)
        for i in range(0, len(view), step):
            chunk = view[i : i + step]
            while not self._ended and self.out.room() < len(chunk):
                self._room_waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._room_waiter
                finally:
                    self._room_waiter = None
            if self._ended:
                return
            self.out.push(chunk)

    def _on_sent(self) -> None:
        """Called after each tick; wakes a waiting writer."""
        w = self._room_waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def drain(self) -> None:
        """Wait until everything queued has been sent (or the call ended): woken by the clock as
        it sends each frame, so that what follows (a hangup) comes right after the last."""
        while len(self.out) and not self._ended:
            if self._room_waiter is not None:  # a writer waits too (another task): poll
                await asyncio.sleep(self.out.frame_size / (2 * self.out.rate))
                continue
            self._room_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._room_waiter
            finally:
                self._room_waiter = None

    async def play(self, source: Source, *, drain: bool = True) -> None:
        """Play ``source`` into the call in real time (resampled to :attr:`format` if needed).

        The call's clock does the pacing: files and generators (tone, silence) are read as fast as
        the bounded queue takes them; sources that block (sound card, stdin) are iterated through
        their own ``aiter``. Returns when the source ends (and, with ``drain``, has been sent) or when
        the call ends.
        """
        from audionet.audio.sources import ResampledSource, Source

        src = source if source.format == self.format else ResampledSource(source, self.format)
        frames = self.out.frame_size // 2
        if type(source).aiter is not Source.aiter:  # blocking source: reads run in a thread
            async for chunk in src.aiter(frames):
                if self._ended:
                    break
                await self.write(chunk)
        else:
            while not self._ended:
                chunk = src.read(frames * 5)
                if not chunk:
                    break
                await self.write(chunk)
        if drain:
            await self.drain()

    async def hangup(self, reason: str = "server hung up") -> None:
        """Send the hangup message, close the connection and wait until it is closed."""
        if not self._ended:
            self._link.hangup(reason)
        await self.wait_closed()
