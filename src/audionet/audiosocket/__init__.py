"""Asterisk AudioSocket: raw call audio over TCP, as a fast asyncio server, a call API and a client.

* The seed's callback API: :func:`start_server` and :data:`HANGUP_CALL_MESSAGE`.
* The call API: ``async with serve(handler, host, port) as server`` with ``async def handler(call)``.
* An Asterisk-like client: ``call = await connect(host, port)``.
* The protocol core (no I/O): :mod:`audionet.audiosocket.proto`.
"""

from __future__ import annotations

from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.check import AsteriskChecker, Violation
from audionet.audiosocket.client import ClientCall, connect
from audionet.audiosocket.compat import (
    HANGUP_CALL_MESSAGE,
    AsteriskFrameForwardError,
    AsteriskMemoryAllocError,
    AudioSocketReadError,
    start_server,
)
from audionet.audiosocket.metrics import Stats
from audionet.audiosocket.proto import (
    Audio,
    Connected,
    Decoder,
    Dtmf,
    Error,
    ErrorCode,
    Event,
    Hangup,
    Kind,
    Message,
    ServerConnection,
)
from audionet.audiosocket.server import (
    AudioSocketServer,
    CallHandler,
    ServerConfig,
    serve,
)

__all__ = [
    "HANGUP_CALL_MESSAGE",
    "AsteriskChecker",
    "AsteriskFrameForwardError",
    "AsteriskMemoryAllocError",
    "Audio",
    "AudioSocketReadError",
    "AudioSocketServer",
    "Call",
    "CallEvent",
    "CallHandler",
    "ClientCall",
    "Connected",
    "Decoder",
    "Dtmf",
    "Error",
    "ErrorCode",
    "Event",
    "Hangup",
    "Kind",
    "Message",
    "ServerConfig",
    "ServerConnection",
    "Stats",
    "Violation",
    "connect",
    "serve",
    "start_server",
]
