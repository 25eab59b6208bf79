"""A DNS stream played into phone calls: ``audionet audiosocket serve --app dns:ZONE[,...]``.

Every caller hears the AoDNS stream: one listening session per app (the AoDNS client's
:class:`~audionet.dns.client.Player`: its jitter buffer, Opus concealment of lost frames, and
silence while it rebuffers) writes each decoded frame to every call in progress, resampled to the
call's rate. Each call's own 20 ms clock sends the audio to Asterisk; a call that joins is given
:data:`CUSHION` of silence first (and again after the audio stopped), so the listener's 60 ms
frames never leave that clock a gap.

The session starts with the first call and stops when the last one hangs up (the next caller
waits the buffer's fill, 3 s by default). A DNS outage is silence in the calls, never a dropped
call: the player rebuffers, and a session that fails outright (the zone gone, a wrong key) is
logged and started again after :data:`RETRY` seconds while the calls hear silence. A stream that
ends (its caller hung up, SPEC §5 call -> DNS) hangs up the calls that were hearing it.

Options after the zone: ``server=HOST:PORT`` (default: the system's resolver), ``stream=NAME``
(default ``main``), ``key=PASSPHRASE`` (an encrypted stream), ``target=SECONDS`` (buffer).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from audionet.audio.format import AudioFormat
from audionet.audio.resample import Resampler
from audionet.audio.sinks import Sink
from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.proto import Error, Hangup
from audionet.dns.client import DnsFetcher, Player, parse_server
from audionet.dns.proto import names
from audionet.dns.proto.client import ClientSettings
from audionet.errors import AudionetError, ConfigError

log = logging.getLogger(__name__)

#: Silence queued ahead of a call that joins: one 60 ms codec frame and 20 ms to spare, so the
#: listener's frame-sized writes keep the call's 20 ms clock fed.
CUSHION = 0.08
#: Seconds before a failed listening session is started again.
RETRY = 5.0
SPEC_HELP = "dns:ZONE[,server=HOST:PORT][,stream=NAME][,key=PASSPHRASE][,target=SECONDS]"


def parse_app_spec(arg: str) -> tuple[ClientSettings, tuple[str, int]]:
    """``ZONE[,server=HOST:PORT][,stream=NAME][,key=...][,target=S]`` (after ``dns:``)."""
    zone, *opts = arg.split(",")
    kv: dict[str, str] = {}
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep or key not in ("server", "stream", "key", "target") or key in kv:
            raise ConfigError(f"app option {opt!r}: use {SPEC_HELP}")
        kv[key] = value
    try:
        target = float(kv.get("target", "3"))
    except ValueError:
        raise ConfigError(f"target={kv['target']!r} is not a number of seconds") from None
    if not 0 < target <= 60:
        raise ConfigError("target must be above 0 and at most 60 seconds")
    names.normalize_zone(zone)  # a clear error for a bad zone now, not at the first call
    settings = ClientSettings(
        zone,
        stream=names.check_stream(kv.get("stream", "main")),
        passphrase=kv.get("key"),
        target_seconds=target,
    )
    return settings, parse_server(kv.get("server"))


class _FanOut(Sink):
    """The player's sink: every decoded frame goes to every call, resampled to its rate."""

    def __init__(self, app: DnsApp, fmt: AudioFormat) -> None:
        self.format = fmt
        self.app = app

    def write(self, pcm: bytes) -> None:
        for call, resampler in list(self.app.calls.items()):
            if resampler is None or resampler.src != self.format:
                resampler = self.app.calls[call] = Resampler(self.format, call.format)
            if len(call.out) < call.out.frame_size:  # starting (or restarting): a cushion first
                call.send(bytes(int(CUSHION * call.format.rate) * 2))
            call.send(resampler.process(pcm))
        self.written += len(pcm)


class DnsApp:
    """A :class:`~audionet.audiosocket.server.CallHandler` playing one AoDNS stream into every call."""

    def __init__(self, settings: ClientSettings, server: tuple[str, int]) -> None:
        self.settings = settings
        self.server = server
        self.calls: dict[Call, Resampler | None] = {}
        self.task: asyncio.Task[None] | None = None
        self.sessions = 0  #: listening sessions started
        self.tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_spec(cls, arg: str) -> DnsApp:
        return cls(*parse_app_spec(arg))

    def started(self, call: Call) -> None:
        self.calls[call] = None
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._listen())

    def event(self, call: Call, event: CallEvent) -> None:
        if isinstance(event, Hangup) or (isinstance(event, Error) and event.fatal):
            self.calls.pop(call, None)
            if not self.calls and self.task is not None:
                self.task.cancel()  # nobody listens: stop asking the DNS
                self.task = None

    def failed(self, peer: Any, error: Error) -> None:
        log.info("connection from %s failed: %s", peer, error.message)

    async def _listen(self) -> None:
        """Listening sessions while calls are up; each session's audio goes to every call."""
        s = self.settings
        what = f"stream {s.stream!r} of {s.zone} via {self.server[0]}:{self.server[1]}"
        while self.calls:
            self.sessions += 1
            player = Player(s, DnsFetcher(*self.server), lambda fmt: _FanOut(self, fmt))
            try:
                report = await player.run(None, give_up=None)
            except AudionetError as exc:
                log.error("%s: %s; the calls hear silence, trying again in %g s", what, exc, RETRY)
                await asyncio.sleep(RETRY)
                continue
            if report.ended:
                log.info("%s ended: hanging up its %d calls", what, len(self.calls))
                for call in list(self.calls):
                    self._spawn(call.hangup("the DNS stream ended"))
                return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
