"""The serving side's pipeline: audio source -> codec -> publisher -> server snapshot.

:func:`serve` runs it all on one event loop: the DNS server, and a loop that reads one codec frame of
audio at a time (paced in real time), encodes it, feeds it to the zone publisher and swaps the
server's snapshot whenever a pack is published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from audionet.audio.codecs import get_codec
from audionet.audio.codecs.base import Codec
from audionet.audio.format import AudioFormat
from audionet.audio.sources import Source, open_source
from audionet.dns.errors import StreamConfigError
from audionet.dns.metrics import ServerMetrics
from audionet.dns.proto import v1, v2
from audionet.dns.proto.publisher import V1Stream, V2Stream, ZonePublisher
from audionet.dns.proto.rrl import RateLimiter, RrlConfig
from audionet.dns.publish import DynamicPublisher, TsigKey
from audionet.dns.server import DnsServer
from audionet.dns.workers import WorkerPool

log = logging.getLogger(__name__)

#: Seconds between the server's summary lines at INFO (never one line per query).
REPORT_EVERY = 60.0


#: Response rate limiting as ``dns serve`` applies it by default (NSD's defaults; frozen, shared).
DEFAULT_RRL = RrlConfig()


@dataclass(frozen=True, slots=True)
class ServeOptions:
    zone: str
    address: str = "127.0.0.1"
    port: int = 5053
    source: str = "tone:440"
    codec: str = "opus"
    version: int = 2
    stream: str = "main"
    key: str | None = None
    packs: int = v1.PACKS_KEPT
    bitrate: int | None = None
    encoding: v2.Encoding = v2.Encoding.RAW
    max_pack_seconds: float = 1.0
    #: Also publish into this primary by RFC 2136 dynamic update: (host, port, TSIG key or None).
    publish: tuple[str, int, TsigKey | None] | None = None
    #: Serve Prometheus metrics over HTTP on this port (127.0.0.1 only).
    metrics_port: int | None = None
    #: Server processes sharing the port (SO_REUSEPORT); 1 is this process alone.
    workers: int = 1
    #: UDP I/O: ``auto``, ``mmsg`` (batched recvmmsg/sendmmsg) or ``asyncio`` (see server.UDP_IO).
    udp_io: str = "auto"
    #: Response rate limiting of UDP answers per client network (None: off); every worker
    #: process applies it on its own, as NSD's do.
    rrl: RrlConfig | None = DEFAULT_RRL


def make_codec(name: str, version: int, bitrate: int | None = None) -> Codec:
    """The stream's codec: Opus 16 kHz mono voip 60 ms (the original's), or Codec 2 1200 bit/s."""
    if name == "opus":
        return get_codec("opus", rate=16000, frame_ms=60, application="voip", bitrate=bitrate)
    if name == "codec2":
        if version == 1:
            raise StreamConfigError("v1 clients only know Opus; use --format v2 for codec2")
        return get_codec("codec2", rate=8000, mode=bitrate or 1200)
    raise StreamConfigError(f"unknown codec {name!r}: choose opus or codec2")


def stream_config(codec: Codec, opts: ServeOptions) -> v2.StreamConfig:
    """The v2 config record of a stream encoded with ``codec`` under ``opts``."""
    return v2.StreamConfig(
        codec=codec.name,
        rate=codec.format.rate,
        channels=codec.format.channels,
        frame_ms=round(codec.frame_duration * 1000),
        packs=opts.packs,
        encoding=opts.encoding,
        bitrate=codec.bitrate,
        mode=codec.bitrate if codec.name == "codec2" else 0,
    )


class Broadcaster:
    """Owns the publisher and the server of one zone with one stream fed from one source."""

    def __init__(self, opts: ServeOptions, epoch: int | None = None) -> None:
        self.opts = opts
        self.codec = make_codec(opts.codec, opts.version, opts.bitrate)
        self.publisher = ZonePublisher(opts.zone, _ns_address(opts.address))
        self.metrics = ServerMetrics()
        self.dynamic: DynamicPublisher | None = None
        self.pool: WorkerPool | None = None
        self._started = False  # until run() starts, changes wait in the builder's log
        if opts.publish is not None:
            host, port, key = opts.publish
            self.dynamic = DynamicPublisher(self.publisher.zone, host, port, key)
        if opts.publish is not None or opts.workers > 1:
            self.publisher.builder.changes = []  # record from the first record on
        self.feed: V1Stream | V2Stream
        if opts.version == 1:
            self.feed = self.publisher.add_v1(self.codec.frame_duration, opts.packs)
        else:
            self.feed = self.publisher.add_v2(
                opts.stream,
                stream_config(self.codec, opts),
                opts.key,
                epoch,
                max_pack_seconds=opts.max_pack_seconds,
            )
        rrl = RateLimiter(opts.rrl) if opts.rrl is not None else None
        self.server = DnsServer(self.publisher.snapshot(), self.metrics, rrl)
        self.frames = 0

    def push(self, pcm_frame: bytes) -> None:
        """Encode one frame of PCM and publish it (a new snapshot when a pack closes)."""
        packet = self.codec.encode(pcm_frame)
        self.frames += 1
        if self.feed.feed(packet):
            self.server.swap(self.publisher.snapshot())
            self.metrics.packs_published = self.publisher.packs_published
            if self._started:
                self._distribute()
        self.metrics.frames_dropped = self.publisher.frames_dropped

    def _distribute(self) -> None:
        """Hand the latest record changes to the worker processes and the RFC 2136 publisher."""
        changes = self.publisher.builder.take_changes()
        if self.pool is not None:
            self.pool.send(changes)
        if self.dynamic is not None:
            self.dynamic.submit(changes)

    def prefill(self, source: Source, seconds: float) -> None:
        """Publish ``seconds`` of audio at once (not paced), so listeners can start at once."""
        n = int(seconds / self.codec.frame_duration)
        for _ in range(n):
            pcm = source.read(self.codec.frame_samples)
            if len(pcm) < self.codec.frame_bytes:
                break
            self.push(pcm)

    async def run(
        self, source: Source, started: asyncio.Event | None = None, duration: float | None = None
    ) -> None:
        """Serve until cancelled (or ``duration`` seconds of audio), reading ``source`` in real time."""
        await self.server.start(
            self.opts.address, self.opts.port, self.opts.workers > 1, self.opts.udp_io
        )
        updater: asyncio.Task[None] | None = None
        backlog = self.publisher.builder.take_changes() if self.publisher.builder.changes else []
        if self.opts.workers > 1:
            self.pool = WorkerPool(
                self.publisher.zone,
                _ns_address(self.opts.address),
                self.opts.address,
                self.server.address[1],
                self.opts.workers - 1,
                self.opts.udp_io,
                self.opts.rrl,
            )
            await self.pool.wait_ready()
            self.pool.send(backlog)
        if self.dynamic is not None:
            # Everything so far (config, index, prefilled packs) in one UPDATE; fails loudly.
            await self.dynamic.flush(backlog)
            updater = asyncio.create_task(self.dynamic.run())
        self._started = True
        if started is not None:
            started.set()
        try:
            n = 0
            limit = None if duration is None else int(duration / self.codec.frame_duration)
            loop = asyncio.get_running_loop()
            next_report = loop.time() + REPORT_EVERY
            async for pcm in _paced(source, self.codec.frame_samples, self.codec.frame_duration):
                if len(pcm) < self.codec.frame_bytes:
                    pcm = pcm + bytes(self.codec.frame_bytes - len(pcm))
                self.push(pcm)
                n += 1
                if limit is not None and n >= limit:
                    break
                if loop.time() >= next_report:
                    next_report += REPORT_EVERY
                    m = self.metrics
                    log.info(
                        "%d queries (%d over TCP, %d truncated), %d packs published, %.1f MB out",
                        m.total,
                        m.tcp_queries,
                        m.truncated,
                        m.packs_published,
                        m.bytes_out / 1e6,
                    )
            log.info("source ended after %d frames", n)
        finally:
            if updater is not None:
                updater.cancel()
            if self.pool is not None:
                self.pool.close()
            await self.server.close()


def _ns_address(address: str) -> str:
    return "127.0.0.1" if address in ("", "0.0.0.0") else ("::1" if address == "::" else address)


async def _paced(source: Source, frames: int, frame_seconds: float) -> AsyncIterator[bytes]:
    """Frames of audio in real time: live sources pace themselves, files are paced here."""
    if source.live:
        async for chunk in source.aiter(frames):
            yield chunk
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while True:
        chunk = await asyncio.to_thread(source.read, frames)
        if not chunk:
            return
        yield chunk
        n += 1
        delay = start + n * frame_seconds - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:
            start = loop.time() - n * frame_seconds  # fell behind: resynchronise, do not burst


async def serve(
    opts: ServeOptions,
    started: asyncio.Event | None = None,
    on_ready: Callable[[Broadcaster], None] | None = None,
) -> None:
    """``audionet dns serve``: open the source and run until interrupted."""
    b = Broadcaster(opts)
    if opts.metrics_port is not None:
        from prometheus_client import start_http_server

        from audionet.dns.metrics import register_prometheus

        register_prometheus(b.metrics, lambda: b.pool.reports() if b.pool is not None else [])
        start_http_server(opts.metrics_port, addr="127.0.0.1")
    fmt = AudioFormat(b.codec.format.rate, b.codec.format.channels)
    ready = started or asyncio.Event()
    with open_source(opts.source, fmt, loop=True) as source:
        run = asyncio.create_task(b.run(source, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if ready.is_set() and on_ready is not None:
            on_ready(b)
        await run
