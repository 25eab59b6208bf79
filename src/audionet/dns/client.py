"""The listening client: the :mod:`~audionet.dns.proto.client` state machine on dnspython's async API.

Queries go straight to the AoDNS server or to any recursive resolver (the system's when no server is
given), with EDNS and a 1232-byte payload, falling back to TCP when an answer comes back truncated.
Each outcome (answer, NXDOMAIN, NODATA, SERVFAIL, timeout) is handed to the state machine, which
decides on retries and backoff. Playback runs on the event loop's clock, one codec frame per tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from audionet.audio.codecs import get_codec
from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat
from audionet.audio.sinks import Sink
from audionet.dns.errors import DnsError
from audionet.dns.proto import names
from audionet.dns.proto.client import ClientSettings, Failure, Kind, Request, StreamClient
from audionet.dns.proto.jitter import ItemKind
from audionet.errors import AudionetError, CodecError, ConfigError

log = logging.getLogger(__name__)

#: DNS Flag Day 2020: the EDNS payload size that avoids IP fragmentation.
EDNS_PAYLOAD = 1232
QUERY_TIMEOUT = 1.5
DEFAULT_PORT = 53


def parse_server(spec: str | None, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``[V6]:PORT`` or None (the system's first resolver)."""
    if spec is None:
        try:
            ns = dns.resolver.Resolver().nameservers
        except dns.resolver.NoResolverConfiguration as e:
            raise ConfigError("no system resolver configured: pass --server HOST:PORT") from e
        if not ns:
            raise ConfigError("no system resolver configured: pass --server HOST:PORT")
        return str(ns[0]), default_port
    host, port = spec, default_port
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif spec.count(":") == 1:
        host, _, p = spec.partition(":")
        try:
            port = int(p)
        except ValueError:
            raise ConfigError(f"bad port in {spec!r}; example: 127.0.0.1:5053") from None
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} out of range in {spec!r}")
    return host, port


@dataclass(frozen=True, slots=True)
class PlayStatus:
    """What the status line shows."""

    elapsed: float
    playing: bool
    buffered: float
    underruns: int
    concealed: int
    queries: int
    failures: int
    kbps: float
    restarts: int


@dataclass(frozen=True, slots=True)
class PlayReport:
    seconds: float  #: audio written to the sink
    startup: float  #: from start to the first audio written
    frames: int
    concealed: int
    underruns: int
    late: int
    queries: int
    failures: int
    bytes: int
    packs: int
    packs_lost: int
    restarts: int
    tcp_fallbacks: int
    fresh_index: bool = False  #: v2 index read under fresh names (see ClientSettings.fresh_index)
    target: float = 0.0  #: the jitter buffer's target at the end, seconds (it grows on underruns)
    start_target: float = 0.0  #: the target when playback started, seconds
    probes: int = 0  #: v1 look-ahead queries answered "not yet" (straight from the server only)
    #: True: straight from the authoritative server (AA set); False: through a resolver.
    direct: bool | None = None
    ended: bool = False  #: the stream ended (v2 index ``end=1``) and was played to its end


@dataclass(frozen=True, slots=True)
class TxtReply:
    """One TXT query's outcome: the records (or why there are none), their TTL and the AA flag."""

    result: list[tuple[bytes, ...]] | Failure
    ttl: int | None = None  #: the TXT RRset's TTL as received (a resolver counts it down)
    #: The response's AA flag: set by an authoritative server, clear in a resolver's answers.
    #: None when no response came.
    authoritative: bool | None = None


class DnsFetcher:
    """Sends TXT queries to one address and classifies what comes back."""

    def __init__(self, host: str, port: int, timeout: float = QUERY_TIMEOUT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tcp_fallbacks = 0

    async def txt(self, name: str) -> list[tuple[bytes, ...]] | Failure:
        return (await self.ask(name)).result

    async def ask(self, name: str) -> TxtReply:
        q = dns.message.make_query(name + ".", dns.rdatatype.TXT, use_edns=0, payload=EDNS_PAYLOAD)
        try:
            resp, used_tcp = await dns.asyncquery.udp_with_fallback(
                q, self.host, timeout=self.timeout, port=self.port
            )
        except (dns.exception.DNSException, OSError, EOFError) as e:
            log.debug("%s: %s", name, e)
            return TxtReply(Failure.TRANSIENT)
        if used_tcp:
            self.tcp_fallbacks += 1
        aa = bool(resp.flags & dns.flags.AA)
        rcode = resp.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return TxtReply(Failure.NXDOMAIN, authoritative=aa)
        if rcode != dns.rcode.NOERROR:
            return TxtReply(Failure.TRANSIENT)
        txt = [rrset for rrset in resp.answer if rrset.rdtype == dns.rdatatype.TXT]
        rrs = [tuple(rd.strings) for rrset in txt for rd in rrset]
        if not rrs:
            return TxtReply(Failure.NODATA, authoritative=aa)
        return TxtReply(rrs, min(rrset.ttl for rrset in txt), aa)


def codec_for(client: StreamClient) -> Codec:
    """The decoder the stream needs (v2: from its config; v1: the original's fixed Opus)."""
    cfg = client.config
    if cfg is None:
        return get_codec("opus", rate=16000, frame_ms=60, application="voip")
    try:
        if cfg.codec == "codec2":
            return get_codec("codec2", rate=cfg.rate, mode=cfg.mode or 1200)
        return get_codec(
            cfg.codec,
            rate=cfg.rate,
            channels=cfg.channels,
            frame_ms=cfg.frame_ms,
            application="voip",
        )
    except AudionetError as e:
        raise CodecError(
            f"the stream uses {cfg.codec} {cfg.rate} Hz, which cannot be played: {e}"
        ) from e


class Player:
    """Runs one listening session: fetches, buffers, decodes and writes to a sink."""

    def __init__(
        self,
        settings: ClientSettings,
        fetcher: DnsFetcher,
        sink_factory: Callable[[AudioFormat], Sink],
        status: Callable[[PlayStatus], None] | None = None,
    ) -> None:
        self.client = StreamClient(settings)
        self.fetcher = fetcher
        self.sink_factory = sink_factory
        self.status = status
        self._wake = asyncio.Event()
        self._fatal: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.codec: Codec | None = None
        self.sink: Sink | None = None
        self.frames_written = 0
        self.first_audio: float | None = None
        self.start_target = 0.0  # the buffer target (seconds) when playback started
        self._nx_seen = False

    async def _fetch(self, req: Request) -> None:
        reply = await self.fetcher.ask(req.name)
        result = reply.result
        now = asyncio.get_running_loop().time()
        try:
            if result is Failure.NXDOMAIN and req.kind is not Kind.PACK and not self._nx_seen:
                self._nx_seen = True
                await self._wrong_format_hint()
            if isinstance(result, Failure):
                self.client.on_failure(req, result, now, reply.authoritative)
            else:
                self.client.on_answer(req, result, now, reply.ttl, reply.authoritative)
        except Exception as e:
            # A wrong/missing key, an unplayable codec (or a bug) ends the session with that error
            # instead of leaving the player waiting silently.
            self._fatal = e
        self._wake.set()

    async def _wrong_format_hint(self) -> None:
        """The stream's first record does not exist: say so plainly if the other format is there."""
        zone = self.client.zone
        if self.client.s.version == 2:
            other = await self.fetcher.txt(names.v1_sequence_name(zone))
            if isinstance(other, list):
                raise ConfigError(f"{zone} serves the original v1 format: play it with --format v1")
            streams = await self.fetcher.txt(names.v2_streams_name(zone))
            listed_names = (
                [n for rr in streams if (n := b"".join(rr).decode("ascii", "replace"))]
                if isinstance(streams, list)
                else []
            )
            if isinstance(streams, list) and self.client.stream not in listed_names:
                listed = ", ".join(listed_names) or "none live now"
                raise ConfigError(
                    f"{zone} has no stream {self.client.stream!r}; its streams: {listed} (--stream)"
                )
        else:
            other = await self.fetcher.txt(names.v2_streams_name(zone))
            if isinstance(other, list):
                raise ConfigError(f"{zone} serves v2 streams: play it without --format v1")

    def _spawn(self, now: float) -> None:
        for req in self.client.requests(now):
            t = asyncio.create_task(self._fetch(req))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    def _play_one(self) -> None:
        assert self.codec is not None
        item = self.client.playout()
        if item.kind is ItemKind.WAIT and not self.client.jitter.started:
            return  # not started yet: nothing to write
        if item.kind is ItemKind.FRAME:
            try:
                pcm = self.codec.decode(item.packet)
            except AudionetError:
                pcm = self.codec.decode(None)
        elif item.kind is ItemKind.CONCEAL:
            pcm = self.codec.decode(None)
        else:
            pcm = bytes(self.codec.frame_bytes)  # rebuffering after an underrun: silence
        if self.sink is None:
            self.sink = self.sink_factory(self.codec.format)
        self.sink.write(pcm)
        self.frames_written += 1

    async def run(self, duration: float | None = None, give_up: float | None = 60.0) -> PlayReport:
        """Play ``duration`` seconds of audio (None: until cancelled); DnsError if nothing after
        ``give_up`` seconds."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        next_tick: float | None = None
        next_status = t0
        want = None
        try:
            while True:
                now = loop.time()
                if self._fatal is not None:
                    raise self._fatal
                if self.client.finished:
                    break  # the stream ended and all of it was played
                self._spawn(now)
                if self.codec is None and self.client.ready:
                    self.codec = codec_for(self.client)
                    want = None if duration is None else round(duration / self.codec.frame_duration)
                    next_tick = now
                if self.codec is not None and next_tick is not None:
                    # (a late loop catches up several frames, but never past ``want``)
                    while now >= next_tick and (want is None or self.frames_written < want):
                        before = self.frames_written
                        self._play_one()
                        if self.frames_written and not before:
                            self.first_audio = now
                            self.start_target = (
                                self.client.jitter.target * self.codec.frame_duration
                            )
                        next_tick += self.codec.frame_duration
                        if now - next_tick > 1.0:
                            next_tick = now  # the loop stalled: do not burst
                    if want is not None and self.frames_written >= want:
                        break
                if self.first_audio is None and give_up is not None and now - t0 > give_up:
                    raise DnsError(
                        f"no audio after {give_up:g} s: {self.client.stats.queries} queries, "
                        f"{self.client.stats.failures} failed; is the zone served and the "
                        "server/resolver address right?"
                    )
                if self.status is not None and now >= next_status:
                    next_status = now + 0.5
                    self.status(self._status(now - t0))
                wake = min(self.client.next_wakeup(now), next_status)
                if next_tick is not None:
                    wake = min(wake, next_tick)
                self._wake.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, wake - loop.time()))
        finally:
            for t in list(self._tasks):
                t.cancel()
            if self.sink is not None:
                self.sink.close()
        st = self.client.stats
        jb = self.client.jitter
        fs = self.codec.frame_duration if self.codec else 0.0
        return PlayReport(
            seconds=self.frames_written * fs,
            startup=(self.first_audio - t0) if self.first_audio is not None else -1.0,
            frames=jb.played,
            concealed=jb.concealed,
            underruns=jb.underruns,
            late=jb.late,
            queries=st.queries,
            failures=st.failures,
            bytes=st.bytes,
            packs=st.packs,
            packs_lost=st.packs_lost,
            restarts=st.restarts,
            tcp_fallbacks=self.fetcher.tcp_fallbacks,
            fresh_index=st.fresh_index,
            target=jb.target * self.client.frame_seconds,
            start_target=self.start_target,
            probes=st.probes,
            direct=st.direct,
            ended=self.client.finished,
        )

    def _status(self, elapsed: float) -> PlayStatus:
        st = self.client.stats
        jb = self.client.jitter
        return PlayStatus(
            elapsed=elapsed,
            playing=jb.playing,
            buffered=self.client.buffered_seconds,
            underruns=jb.underruns,
            concealed=jb.concealed,
            queries=st.queries,
            failures=st.failures,
            kbps=st.bytes * 8 / 1000 / elapsed if elapsed > 0 else 0.0,
            restarts=st.restarts,
        )


async def play(
    settings: ClientSettings,
    server: str | None,
    sink_factory: Callable[[AudioFormat], Sink],
    duration: float | None = None,
    status: Callable[[PlayStatus], None] | None = None,
    default_port: int = DEFAULT_PORT,
) -> PlayReport:
    host, port = parse_server(server, default_port)
    player = Player(settings, DnsFetcher(host, port), sink_factory, status)
    return await player.run(duration)
