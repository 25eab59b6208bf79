"""Ready-made call handlers for ``audionet audiosocket serve --app APP``.

``echo`` (every frame back, through the paced clock), ``record:DIR`` (one WAV per call named by its
UUID), ``play:FILE`` (any file the audio layer reads, resampled to the call's rate, paced, then hang up),
``tone:HZ`` (a steady tone until the caller hangs up) and ``silence`` (the clock's silence only).
All are :class:`~audionet.audiosocket.server.CallHandler` objects: their event methods run inline,
without a task per call, which is what lets one process carry thousands of echo calls.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from audionet.audio.format import AudioFormat
from audionet.audio.resample import Resampler
from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.proto import Audio, Error, Hangup
from audionet.audiosocket.server import echoes
from audionet.errors import ConfigError

log = logging.getLogger(__name__)

APP_SPECS = (
    "echo, record:DIR, play:FILE, tone:HZ, silence, dns:ZONE[,server=HOST:PORT][,stream=NAME]"
)


class _Base:
    def started(self, call: Call) -> None:
        pass

    def event(self, call: Call, event: CallEvent) -> None:
        pass

    def failed(self, peer: Any, error: Error) -> None:
        log.info("connection from %s failed: %s", peer, error.message)


class EchoApp(_Base):
    """Sends every frame of the caller back (resampled if the caller's rate differs from the call's).

    The echo is live audio, so its queue is kept short: when the clock has fallen behind (an
    overloaded or descheduled process skips ticks rather than bursting) the oldest audio beyond
    ``max_delay`` seconds is dropped instead of letting the delay grow for the rest of the call.
    """

    def __init__(self, max_delay: float = 0.2) -> None:
        self.max_delay = max_delay

    def started(self, call: Call) -> None:
        out = call.out
        out.max_bytes = min(out.max_bytes, max(out.frame_size, int(self.max_delay * out.rate) * 2))

    @echoes
    def audio_message(self, call: Call, message: bytes) -> bytes:
        """The fast path: a whole audio message at the call's own rate is its own reply (so the
        server, seeing it marked, sends the frame back without calling it)."""
        return message

    def event(self, call: Call, event: CallEvent) -> None:
        if type(event) is Audio:
            if event.rate == call.out.rate:
                call.out.push(event.pcm)
            else:
                if call.state is None:
                    call.state = Resampler(AudioFormat(event.rate), call.format)
                call.out.push(call.state.process(event.pcm))


class SilenceApp(_Base):
    """Answers with silence (the paced clock's own) and ignores what it hears."""


class RecordApp(_Base):
    """Writes each call's audio to ``DIR/<uuid>.wav`` (at the rate the caller sends)."""

    def __init__(self, directory: Path | str) -> None:
        from audionet.audio.sinks import WavSink

        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(f"record directory {self.directory} does not exist; create it first")
        self._sink = WavSink

    def path_for(self, call: Call) -> Path:
        return self.directory / f"{call.uuid}.wav"

    def event(self, call: Call, event: CallEvent) -> None:
        if type(event) is Audio:
            if call.state is None:
                call.state = self._sink(self.path_for(call), AudioFormat(event.rate))
            call.state.write(event.pcm)
        elif isinstance(event, Hangup | Error) and (isinstance(event, Hangup) or event.fatal):
            if call.state is not None:
                call.state.close()
            else:  # a call with no audio still leaves a (empty) recording
                self._sink(self.path_for(call), call.format).close()


class _PlayerApp(_Base):
    """Plays a source into each call from a task; ends the task when the call ends."""

    hangup_after = False

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def source(self, fmt: AudioFormat) -> Any:
        raise NotImplementedError

    def started(self, call: Call) -> None:
        task = asyncio.get_running_loop().create_task(self._play(call))
        call.state = task
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _play(self, call: Call) -> None:
        try:
            with self.source(call.format) as src:
                await call.play(src)
            if self.hangup_after:
                await call.hangup("playback finished")
        except Exception as exc:
            log.error("playback to call %s failed: %s", call.uuid, exc)
            await call.hangup("playback failed")

    def event(self, call: Call, event: CallEvent) -> None:
        if isinstance(event, Hangup) or (isinstance(event, Error) and event.fatal):
            task = call.state
            if isinstance(task, asyncio.Task) and not task.done():
                task.cancel()


class ToneApp(_PlayerApp):
    def __init__(self, freq: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude

    def source(self, fmt: AudioFormat) -> Any:
        from audionet.audio.sources import ToneSource

        return ToneSource(self.freq, fmt, amplitude=self.amplitude)


class PlayApp(_PlayerApp):
    """Plays FILE (any format the audio layer reads) into each call, then hangs up."""

    hangup_after = True

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"file to play {self.path} does not exist")

    def source(self, fmt: AudioFormat) -> Any:
        from audionet.audio.sources import FileSource

        return FileSource(self.path, fmt)


def make_app(spec: str, rate: int = 8000) -> Any:
    """The handler for an ``--app`` spec (``echo``, ``record:DIR``, ``play:FILE``, ``tone:HZ``,
    ``silence``, or ``dns:ZONE[,...]``: a DNS stream, see :mod:`audionet.bridges.dns_call`)."""
    name, _, arg = spec.partition(":")
    if name == "dns" and arg:
        from audionet.bridges.dns_call import DnsApp

        return DnsApp.from_spec(arg)
    if name == "echo" and not arg:
        return EchoApp()
    if name == "silence" and not arg:
        return SilenceApp()
    if name == "record" and arg:
        return RecordApp(arg)
    if name == "play" and arg:
        return PlayApp(arg)
    if name == "tone" and arg:
        try:
            freq = float(arg)
        except ValueError:
            raise ConfigError(
                f"tone frequency {arg!r} is not a number (example: tone:440)"
            ) from None
        if not 0 < freq < rate / 2:
            raise ConfigError(f"a {freq:g} Hz tone cannot be carried at {rate} Hz")
        return ToneApp(freq)
    raise ConfigError(f"unknown app {spec!r}; use one of: {APP_SPECS}")
