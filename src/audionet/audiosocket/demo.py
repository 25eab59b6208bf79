"""AudioSocket's part of ``audionet demo``: one Asterisk-like call to the echo server on loopback.

The call behaves like Asterisk's channel driver (it sends nothing until the server speaks), plays
2 s of a 440 Hz tone and presses ``1 2 3 #``; the demo checks that the echo is exact, that the server's
audio arrived at 50 frames a second, that every digit arrived as an event, and that every message
the server sent is one Asterisk accepts. A second, short call goes to a server written with the
seed's callback API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from audionet.audio.format import AudioFormat
from audionet.audio.sources import ToneSource
from audionet.audiosocket.apps import EchoApp
from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.client import ClientCall, connect
from audionet.audiosocket.compat import start_server
from audionet.audiosocket.proto import Dtmf
from audionet.audiosocket.server import serve
from audionet.demo import DemoRow

FMT = AudioFormat(8000)
DIGITS = "123#"


class _EchoWithDigits(EchoApp):
    def __init__(self) -> None:
        super().__init__()
        self.digits: list[str] = []

    def event(self, call: Call, event: CallEvent) -> None:
        if isinstance(event, Dtmf):
            self.digits.append(event.digit)
        else:
            super().event(call, event)


def _strip_silence(received: bytes | bytearray) -> bytes:
    zero = bytes(320)
    return b"".join(
        received[i : i + 320] for i in range(0, len(received), 320) if received[i : i + 320] != zero
    )


async def _call(port: int, pcm: bytes, digits: str = "") -> ClientCall:
    call = await connect("127.0.0.1", port)
    call.send_audio(pcm)
    for d in digits:
        call.send_dtmf(d)
        await asyncio.sleep(0.1)
    await call.drain()
    await asyncio.sleep(0.3)
    await call.hangup()
    return call


async def _main() -> list[DemoRow]:
    rows: list[DemoRow] = []
    with ToneSource(440, FMT, seconds=2.0, amplitude=0.3) as src:
        tone = src.read(FMT.rate * 2)
    app = _EchoWithDigits()
    async with serve(app, "127.0.0.1", 0) as server:
        call = await _call(server.port, tone, DIGITS)
    echoed = _strip_silence(call.received)
    t = call.audio_times
    fps = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0
    rows.append(
        DemoRow(
            "audiosocket",
            "2 s tone call to the echo server",
            f"{len(echoed) // 320} of {len(tone) // 320} frames echoed "
            f"{'exactly' if echoed == tone else 'WRONG'}, {fps:.1f} frames/s",
            echoed == tone and 48 < fps < 52,
        )
    )
    rows.append(
        DemoRow(
            "audiosocket",
            f"DTMF {' '.join(DIGITS)}",
            f"server got {' '.join(app.digits) or 'nothing'}",
            "".join(app.digits) == DIGITS,
        )
    )
    rows.append(
        DemoRow(
            "audiosocket",
            "server messages vs Asterisk's rules",
            f"{call.frames_received} audio messages, {len(call.violations)} violations",
            not call.violations and call.frames_received > 0,
        )
    )

    def on_audio(uuid: str, peer_name: Any, audio: bytearray) -> bytes | None:
        return bytes(audio) if audio else None

    def on_exception(uuid: str, peer_name: Any, error: BaseException) -> None:
        pass

    seed = await start_server(on_audio, on_exception, "127.0.0.1", 0)
    short = tone[: FMT.bytes_for(0.5)]
    call = await _call(seed.port, short)
    seed.close()
    await seed.wait_closed()
    ok = _strip_silence(call.received) == short and not call.violations
    rows.append(
        DemoRow(
            "audiosocket",
            "seed API (start_server) echo, 0.5 s",
            "exact echo" if ok else f"{len(call.violations)} violations / wrong echo",
            ok,
        )
    )
    return rows


def run(workdir: Path) -> list[DemoRow]:
    return asyncio.run(_main())
