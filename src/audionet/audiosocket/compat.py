"""The seed's callback API, unchanged for code written against it::

    server = await audiosocket.start_server(on_audio, on_exception, host, port, **kwargs)
    await server.serve_forever()

``on_audio(uuid, peer_name, audio)`` is called with each piece of audio as a ``bytearray``; ``uuid``
is the call's UUID as a hexadecimal string in the canonical 36-character form (``str(uuid.UUID)``, the
form the dialplan's ``AudioSocket(<uuid>,host:port)`` argument has; SPEC §4). Code written against the
seed's 32 digits without dashes (``bytes.hex()``) passes ``uuid_format="hex"``.
``peer_name`` is the caller's ``(host, port)``. After the call ends it is called once more with an empty
``bytearray``. It may return audio to send back (8 kHz s16le; any length, split into messages as
needed), or :data:`HANGUP_CALL_MESSAGE` / an empty ``bytearray`` to hang up. ``on_exception(uuid,
peer_name, error)`` receives every error of a call. Both may be plain functions or coroutines.

What differs from the seed, on purpose: returned audio goes out through the call's paced 20 ms clock
(Asterisk plays whatever arrives at once, so unpaced audio is heard as its tail only), silence is sent
while nothing is queued (Asterisk's ``Dial()`` path sends no audio until the server does), messages
split anywhere by TCP are reassembled, and a bad call is ended alone. Keyword arguments named like
:class:`~audionet.audiosocket.server.ServerConfig` fields (``max_calls``, ``input_codec``, ...),
``on_dtmf(uuid, peer_name, digit)`` and ``uuid_format`` (``"canonical"`` or ``"hex"``) configure
audionet; all others go to ``loop.create_server``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.proto import Audio, Dtmf, Error, ErrorCode, Hangup
from audionet.audiosocket.server import AudioSocketServer, ServerConfig
from audionet.errors import ConfigError, LocalProtocolError, RemoteProtocolError

log = logging.getLogger(__name__)

HANGUP_CALL_MESSAGE = b""
"""Return this from ``on_audio`` to hang up the call."""

#: How ``uuid`` reaches the callbacks: ``str(uuid.UUID)`` (36 characters) or ``uuid.UUID.hex`` (32).
UUID_FORMATS = ("canonical", "hex")

#: The seed sent returned audio at once; we queue it for the paced clock, so allow a long prompt.
COMPAT_QUEUE_SECONDS = 30.0


class AudioSocketReadError(RemoteProtocolError):
    """The peer broke the protocol (a bad or missing UUID, an oversize or truncated message...)."""


class AsteriskFrameForwardError(RemoteProtocolError):
    """Asterisk reported that it could not forward an audio frame (error code 0x02)."""


class AsteriskMemoryAllocError(RemoteProtocolError):
    """Asterisk reported a memory allocation failure (error code 0x04)."""


def _as_exception(error: Error) -> Exception:
    if error.code == ErrorCode.FRAME_FORWARDING:
        return AsteriskFrameForwardError(error.message)
    if error.code == ErrorCode.MEMORY:
        return AsteriskMemoryAllocError(error.message)
    return AudioSocketReadError(error.message)


AudioCallback = Callable[[str, Any, bytearray], Any]
ExceptionCallback = Callable[[str, Any, BaseException], Any]


class SeedHandler:
    """Adapts the seed's two callbacks to the server's :class:`~audionet.audiosocket.server.CallHandler`."""

    def __init__(
        self,
        on_audio: AudioCallback,
        on_exception: ExceptionCallback | None,
        on_dtmf: Callable[[str, Any, str], Any] | None = None,
        uuid_format: str = "canonical",
    ) -> None:
        if uuid_format not in UUID_FORMATS:
            raise ConfigError(f"uuid_format must be one of {UUID_FORMATS}, not {uuid_format!r}")
        self.hex_uuid = uuid_format == "hex"
        self.on_audio = on_audio
        self.on_exception = on_exception
        self.on_dtmf = on_dtmf
        self.tasks: set[asyncio.Future[Any]] = set()

    # -- CallHandler -------------------------------------------------------------------------------

    def started(self, call: Call) -> None:
        call.state = call.uuid.hex if self.hex_uuid else str(call.uuid)

    def event(self, call: Call, event: CallEvent) -> None:
        uid: str = call.state
        if type(event) is Audio:
            self._deliver(call, uid, bytearray(event.pcm))
        elif isinstance(event, Dtmf):
            if self.on_dtmf is not None:
                self._run(self.on_dtmf, uid, call.peer, event.digit)
        elif isinstance(event, Error):
            self._exception(uid, call.peer, _as_exception(event))
            if event.fatal:  # the call is over: the seed always ended with an empty bytearray
                self._deliver(call, uid, bytearray())
        elif isinstance(event, Hangup):
            self._deliver(call, uid, bytearray())

    def failed(self, peer: Any, error: Error) -> None:
        self._exception("", peer, _as_exception(error))

    # -- internals ---------------------------------------------------------------------------------

    def _deliver(self, call: Call, uid: str, audio: bytearray) -> None:
        try:
            result = self.on_audio(uid, call.peer, audio)
        except Exception as exc:
            self._exception(uid, call.peer, exc)
            if not call.ended:
                call._link.hangup("on_audio raised")
            return
        if inspect.isawaitable(result):
            self._later(result, lambda r: self._result(call, uid, r))
        else:
            self._result(call, uid, result)

    def _result(self, call: Call, uid: str, result: Any) -> None:
        if result is None or call.ended:
            return
        if len(result) == 0:
            call._link.hangup("on_audio asked for hangup")
            return
        if len(result) & 1:
            self._exception(
                uid,
                call.peer,
                LocalProtocolError(
                    f"on_audio returned {len(result)} bytes (odd); last byte dropped"
                ),
            )
            result = result[:-1]
        call.send(result)

    def _exception(self, uid: str, peer: Any, exc: BaseException) -> None:
        if self.on_exception is None:
            log.warning("call %s from %s: %s", uid or "(no UUID)", peer, exc)
            return
        self._run(self.on_exception, uid, peer, exc)

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            result = fn(*args)
        except Exception:
            log.exception("AudioSocket callback %s failed", getattr(fn, "__name__", fn))
            return
        if inspect.isawaitable(result):
            self._later(result, lambda _: None)

    def _later(self, awaitable: Awaitable[Any], then: Callable[[Any], None]) -> None:
        fut = asyncio.ensure_future(awaitable)
        self.tasks.add(fut)

        def done(f: asyncio.Future[Any]) -> None:
            self.tasks.discard(f)
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                log.error("AudioSocket callback failed: %r", exc)
                return
            then(f.result())

        fut.add_done_callback(done)


async def start_server(
    on_audio_callback: AudioCallback,
    on_exception_callback: ExceptionCallback | None,
    host: str | None = None,
    port: int | None = None,
    **kwargs: Any,
) -> AudioSocketServer:
    """Start an AudioSocket server with the seed's callbacks (see the module documentation).

    Returns a server that behaves like ``asyncio.Server`` (``serve_forever()``, ``close()``,
    ``wait_closed()``, ``sockets``), as the seed's did.
    """
    on_dtmf = kwargs.pop("on_dtmf", None)
    uuid_format = kwargs.pop("uuid_format", "canonical")
    kwargs.setdefault("queue_seconds", COMPAT_QUEUE_SECONDS)
    config, server_kwargs = ServerConfig.split(kwargs)
    handler = SeedHandler(on_audio_callback, on_exception_callback, on_dtmf, uuid_format)
    return await AudioSocketServer(handler, config).start(host, port, **server_kwargs)
