"""A phone call broadcast over DNS: ``audionet dns serve ZONE --source audiosocket:HOST:PORT``.

The station is two servers on one event loop: an AudioSocket server that Asterisk connects calls to,
and the zone's authoritative DNS server. Each call's audio (any AudioSocket rate) is resampled to the
stream's codec rate, encoded frame by frame as it arrives (the caller's clock paces the stream) and
published as AoDNS v2 packs.

* **One stream per call** (no ``--stream``): each call becomes a stream named after its UUID (as
  the dialplan writes it), listed in ``streams.Z`` while the call lasts (``audionet dns info`` shows
  the live calls). When the call ends, its last frames are published and its index says ``end=1``:
  a listener plays to the end and stops, instead of waiting on a stalled stream. The ended stream's
  records stay :data:`ENDED_KEPT` seconds for listeners still behind, then go.
* **One named stream** (``--stream NAME``): calls feed it one at a time; a second caller meanwhile
  is refused (a log line and a hangup). Between calls, and when a caller's audio stops coming, the
  station's own clock fills the stream with silence, so its listeners never stall.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat
from audionet.audio.resample import Resampler
from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.proto import Audio, Error, Hangup
from audionet.audiosocket.server import AudioSocketServer, serve
from audionet.dns.broadcast import ServeOptions, _ns_address, make_codec, stream_config
from audionet.dns.metrics import ServerMetrics
from audionet.dns.proto.publisher import V1Stream, V2Stream, ZonePublisher
from audionet.dns.server import DnsServer
from audionet.errors import ConfigError

log = logging.getLogger(__name__)

#: Seconds an ended call's stream stays in the zone (its index saying ``end=1``): a listener is its
#: buffer (3 s by default, up to 12 s after underruns) plus the index's TTL behind the call.
ENDED_KEPT = 30.0
#: On a named stream, a caller whose audio has not come for this long is filled in with silence.
CALLER_LATE = 0.25
SOURCE_PREFIX = "audiosocket:"


def parse_source(source: str) -> tuple[str, int]:
    """``audiosocket:HOST:PORT`` as (host, port)."""
    rest = source[len(SOURCE_PREFIX) :] if source.startswith(SOURCE_PREFIX) else ""
    host, _, port = rest.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(
            f"source {source!r}: use audiosocket:HOST:PORT, e.g. audiosocket:127.0.0.1:9093"
        )
    return host.strip("[]"), int(port)


class StreamFeed:
    """Call audio into one stream: resampled to the codec's format, cut into codec frames, encoded
    and fed to the publisher as it arrives."""

    def __init__(self, codec: Codec, stream: V1Stream | V2Stream) -> None:
        self.codec = codec
        self.stream = stream
        self._pcm = bytearray()
        self._resampler: Resampler | None = None
        self._rate = 0
        self.frames = 0

    def push(self, pcm: bytes, rate: int) -> bool:
        """Audio of the caller; True when a pack closed (the zone has a new snapshot)."""
        if rate != self._rate:
            self._pcm += self._drain_resampler()
            self._rate = rate
            fmt = self.codec.format
            self._resampler = None if rate == fmt.rate else Resampler(AudioFormat(rate), fmt)
        self._pcm += self._resampler.process(pcm) if self._resampler is not None else pcm
        return self._encode()

    def _drain_resampler(self) -> bytes:
        return self._resampler.flush() if self._resampler is not None else b""

    def _encode(self) -> bool:
        n = self.codec.frame_bytes
        published = False
        while len(self._pcm) >= n:
            published |= self.stream.feed(self.codec.encode(bytes(self._pcm[:n])))
            del self._pcm[:n]
            self.frames += 1
        return published

    def end_call(self) -> bool:
        """The call ended: its last samples go out, padded with silence to a whole frame."""
        self._pcm += self._drain_resampler()
        self._resampler = None
        self._rate = 0
        if self._pcm:
            self._pcm += bytes(self.codec.frame_bytes - len(self._pcm))
        return self._encode()

    def silence(self) -> bool:
        """One frame of silence (a named stream between calls)."""
        self._pcm += bytes(self.codec.frame_bytes)
        return self._encode()


@dataclass
class _Live:
    """What the station keeps per call."""

    feed: StreamFeed
    name: str
    last_audio: float


class CallStation:
    """The AudioSocket server (a :class:`~audionet.audiosocket.server.CallHandler`) and the DNS
    server of one zone. ``opts.stream`` None: one stream per call; else the calls feed that stream
    one at a time. ``notify`` receives a line for each call that starts, ends or is refused."""

    def __init__(
        self,
        opts: ServeOptions,
        per_call: bool,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        if opts.workers > 1 or opts.publish is not None:
            raise ConfigError(
                "--workers and --publish are not available with an audiosocket source yet: the "
                "calls' streams are served by this process alone"
            )
        if per_call and opts.version == 1:
            raise ConfigError(
                "a v1 zone holds one stream: give it a name with --stream (calls take turns)"
            )
        self.opts = opts
        self.per_call = per_call
        self.notify = notify or (lambda line: log.info("%s", line))
        self.audiosocket_address = parse_source(opts.source)
        self.publisher = ZonePublisher(opts.zone, _ns_address(opts.address))
        self.metrics = ServerMetrics()
        self.named: StreamFeed | None = None
        if not per_call:
            codec = make_codec(opts.codec, opts.version, opts.bitrate)
            stream: V1Stream | V2Stream
            if opts.version == 1:
                stream = self.publisher.add_v1(codec.frame_duration, opts.packs)
            else:
                stream = self._add_v2(opts.stream, codec)
            self.named = StreamFeed(codec, stream)
        self.server = DnsServer(self.publisher.snapshot(), self.metrics)
        self.calls: dict[Call, _Live] = {}
        self.ended: list[str] = []  #: names of the per-call streams that ended
        self.audiosocket: AudioSocketServer | None = None
        self._removals: dict[str, asyncio.TimerHandle] = {}

    def _add_v2(self, name: str, codec: Codec) -> V2Stream:
        o = self.opts
        cfg = stream_config(codec, o)
        return self.publisher.add_v2(name, cfg, o.key, max_pack_seconds=o.max_pack_seconds)

    def _publish(self) -> None:
        self.server.swap(self.publisher.snapshot())
        self.metrics.packs_published = self.publisher.packs_published

    # -- CallHandler -------------------------------------------------------------------------------

    def started(self, call: Call) -> None:
        now = time.monotonic()
        if self.named is not None:
            busy = next(iter(self.calls), None)
            if busy is not None:
                line = (
                    f"refused call {call.uuid} from {call.peer}: stream {self.opts.stream!r} is "
                    f"taken by call {busy.uuid}; calls take turns"
                )
                log.warning("%s", line)
                self.notify(line)
                asyncio.get_running_loop().create_task(call.hangup("stream busy"))
                return
            self.calls[call] = _Live(self.named, self.opts.stream, now)
        else:
            name = str(call.uuid)
            if name in self.publisher.streams:
                line = f"refused call {call.uuid} from {call.peer}: a call with its UUID is live"
                log.warning("%s", line)
                self.notify(line)
                asyncio.get_running_loop().create_task(call.hangup("UUID in use"))
                return
            codec = make_codec(self.opts.codec, self.opts.version, self.opts.bitrate)
            self.calls[call] = _Live(StreamFeed(codec, self._add_v2(name, codec)), name, now)
            self._publish()
        self.notify(f"call {call.uuid} from {call.peer}: live as stream {self.calls[call].name!r}")

    def event(self, call: Call, event: CallEvent) -> None:
        live = self.calls.get(call)
        if live is None:
            return
        if isinstance(event, Audio):
            live.last_audio = time.monotonic()
            if live.feed.push(event.pcm, event.rate):
                self._publish()
        elif isinstance(event, Hangup) or (isinstance(event, Error) and event.fatal):
            self._call_ended(call, live)

    def failed(self, peer: Any, error: Error) -> None:
        log.info("connection from %s failed: %s", peer, error.message)

    def _call_ended(self, call: Call, live: _Live) -> None:
        del self.calls[call]
        live.feed.end_call()
        if self.per_call:
            stream = self.publisher.end_v2(live.name)
            self.ended.append(live.name)
            loop = asyncio.get_running_loop()
            self._removals[live.name] = loop.call_later(ENDED_KEPT, self._remove, stream)
        self._publish()
        after = "ended" if self.per_call else "goes on with silence"
        self.notify(f"call {call.uuid} ended: stream {live.name!r} {after}")

    def _remove(self, stream: V2Stream) -> None:
        self._removals.pop(stream.stream, None)
        self.publisher.remove_v2(stream)
        self._publish()

    # -- running -----------------------------------------------------------------------------------

    async def run(self, started: asyncio.Event | None = None) -> None:
        """Serve DNS and take calls until cancelled."""
        o = self.opts
        await self.server.start(o.address, o.port, False, o.udp_io)
        host, port = self.audiosocket_address
        try:
            self.audiosocket = await serve(self, host, port)
        except OSError as exc:
            await self.server.close()
            raise ConfigError(f"cannot take calls on {host}:{port}: {exc}") from None
        if started is not None:
            started.set()
        try:
            if self.named is not None:
                await self._fill_silence(self.named)
            else:
                await asyncio.Event().wait()
        finally:
            for h in self._removals.values():
                h.cancel()
            self.audiosocket.close()
            await self.audiosocket.wait_closed()
            await self.server.close()

    async def _fill_silence(self, feed: StreamFeed) -> None:
        """The named stream's own clock: silence whenever no caller's audio is coming."""
        fs = feed.codec.frame_duration
        due = time.monotonic()
        while True:
            now = time.monotonic()
            live = next(iter(self.calls.values()), None)
            if live is not None and now - live.last_audio < CALLER_LATE:
                due = now + fs  # the caller paces the stream
            else:
                published = False
                while due <= now:
                    published |= feed.silence()
                    due += fs
                if published:
                    self._publish()
                if now - due > 1.0:
                    due = now  # the loop stalled: do not burst
            await asyncio.sleep(max(0.0, due - time.monotonic()))


async def serve_calls(
    opts: ServeOptions,
    per_call: bool,
    notify: Callable[[str], None] | None = None,
    on_ready: Callable[[CallStation], None] | None = None,
) -> None:
    """``audionet dns serve ZONE --source audiosocket:HOST:PORT``: run until interrupted."""
    station = CallStation(opts, per_call, notify)
    if opts.metrics_port is not None:
        from prometheus_client import start_http_server

        from audionet.dns.metrics import register_prometheus

        register_prometheus(station.metrics)
        start_http_server(opts.metrics_port, addr="127.0.0.1")
    ready = asyncio.Event()
    run = asyncio.create_task(station.run(ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if ready.is_set() and on_ready is not None:
        on_ready(station)
    await run
