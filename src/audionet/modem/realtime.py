"""Real-time backends: a virtual cable between two processes over TCP, and the sound card.

- :class:`TcpCable`: one end of a cable to another process on the same machine; each side sends
  its samples as s16le over TCP and runs the channel simulator on what it hears.
- :class:`DeviceAudio`: the sound card, full duplex, through ``sounddevice`` (imported only when
  used, with a clear error when it or PortAudio is missing).
- :func:`run_realtime` drives a :class:`~audionet.modem.link.Station` on either, paced by the clock;
  :func:`open_audio` turns ``device`` or ``cable:HOST:PORT`` into one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from audionet.audio.format import to_float
from audionet.errors import AudioError, ConfigError, DependencyError
from audionet.modem.backends import ChannelLike, make_channel, to_pcm
from audionet.modem.link import Station
from audionet.modem.phy.base import Samples

log = logging.getLogger(__name__)


class AudioPort(Protocol):
    """Real-time audio for :func:`run_realtime`: samples in, samples out."""

    async def exchange(self, tx: Samples) -> Samples:
        """Play ``tx``; return whatever has been heard since the last call (possibly nothing)."""
        ...

    async def close(self) -> None: ...


class TcpCable:
    """One end of a virtual cable to another process: s16le samples over a TCP stream."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, channel: ChannelLike
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._channel = channel
        self._buffer = bytearray()
        self._task = asyncio.get_running_loop().create_task(self._read())
        self.connected = True

    @classmethod
    async def connect(cls, host: str, port: int, channel: ChannelLike) -> TcpCable:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise AudioError(
                f"no virtual cable at {host}:{port} ({exc}); start 'audionet modem listen "
                f"--audio cable:{host}:{port}' first"
            ) from None
        return cls(reader, writer, channel)

    @classmethod
    async def serve(cls, host: str, port: int, channel: ChannelLike) -> TcpCable:
        """Wait for the other end to plug in."""
        plugged: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        plugged = asyncio.get_running_loop().create_future()

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if plugged.done():
                w.close()
            else:
                plugged.set_result((r, w))

        server = await asyncio.start_server(accept, host, port)
        try:
            reader, writer = await plugged
        finally:
            server.close()
        return cls(reader, writer, channel)

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(65536):
                self._buffer += data
        except OSError:
            pass
        self.connected = False

    async def exchange(self, tx: Samples) -> Samples:
        if self._writer.is_closing():
            self.connected = False
        else:
            try:
                self._writer.write(to_pcm(tx))
                await self._writer.drain()
            except OSError:  # the other end unplugged mid-write
                self.connected = False
        usable = len(self._buffer) // 2 * 2
        pcm = bytes(self._buffer[:usable])
        del self._buffer[:usable]
        return self._channel.process(to_float(pcm)) if pcm else np.zeros(0, dtype=np.float32)

    async def close(self) -> None:
        self._task.cancel()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class DeviceAudio:
    """The sound card, full duplex, through ``sounddevice`` (an optional dependency)."""

    def __init__(self, rate: int) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as exc:
            raise DependencyError(
                f"the sound-card backend needs sounddevice and PortAudio ({exc}): "
                "pip install 'audionet[device]' and apt install libportaudio2, "
                "or use --audio cable:HOST:PORT"
            ) from None
        self._sd: Any = sounddevice
        self._in: list[Samples] = []
        self._stream = sounddevice.Stream(
            samplerate=rate, channels=1, dtype="float32", callback=self._callback
        )
        self._out = np.zeros(0, dtype=np.float32)
        self._stream.start()

    def _callback(self, indata: Any, outdata: Any, frames: int, t: Any, status: Any) -> None:
        self._in.append(indata[:, 0].copy())
        take = self._out[:frames]
        outdata[: take.size, 0] = take
        outdata[take.size :, 0] = 0
        self._out = self._out[frames:]

    async def exchange(self, tx: Samples) -> Samples:
        self._out = np.concatenate((self._out, tx))
        chunks, self._in = self._in, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    async def close(self) -> None:
        self._stream.stop()
        self._stream.close()


async def run_realtime(
    station: Station,
    port: AudioPort,
    until: Callable[[], bool] | None = None,
    tick: float = 0.02,
    on_tick: Callable[[float], None] | None = None,
) -> bool:
    """Drive ``station`` in real time on ``port`` until ``until()`` (default: its apps are done)."""
    check = until or (lambda: station.done)
    rate = station.endpoint.rate
    start = time.monotonic()
    played = 0
    rx: Samples = np.zeros(0, dtype=np.float32)
    wanted = getattr(port, "wanted", None)  # a port with its own clock (a call) says how much
    while not check():
        now = time.monotonic() - start
        due = int((now + tick) * rate) - played  # keep one tick of audio queued ahead
        if wanted is not None:
            due = wanted()
        tx = station.tick(rx, now, max(0, due))
        played += tx.size
        rx = await port.exchange(tx)
        if on_tick is not None:
            on_tick(now)
        if not getattr(port, "connected", True):  # the other end unplugged or hung up
            return check()
        await asyncio.sleep(tick)
    return True


async def open_audio(spec: str, rate: int, channel: str | None, serve: bool) -> AudioPort:
    """``device``, ``cable:HOST:PORT`` (``serve``: wait for the other end to plug in), or a phone
    call: ``audiosocket-listen:HOST:PORT`` / ``audiosocket:HOST:PORT`` (see
    :mod:`audionet.bridges.modem_call`; the call is the line, no channel simulator)."""
    if spec == "device":
        return DeviceAudio(rate)
    if spec.startswith("audiosocket"):
        from audionet.bridges.modem_call import open_call_audio

        return await open_call_audio(spec)
    kind, _, rest = spec.partition(":")
    host, _, port = rest.rpartition(":")
    if kind != "cable" or not host or not (port.isascii() and port.isdigit()):
        raise ConfigError(
            f"--audio {spec!r}: use 'device', 'cable:HOST:PORT', 'audiosocket-listen:HOST:PORT' "
            "or 'audiosocket:HOST:PORT'"
        )
    line = make_channel(channel, rate, seed=int(port) + serve)
    if serve:
        return await TcpCable.serve(host, int(port), line)
    return await TcpCable.connect(host, int(port), line)
