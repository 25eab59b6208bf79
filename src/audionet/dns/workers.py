"""Worker processes that answer on the same port (SO_REUSEPORT), fed with the zone's changes.

One Python process answers about as many queries as its event loop can carry; ``serve --workers N``
starts N-1 more processes, each with its own :class:`~audionet.dns.server.DnsServer` bound to the same
address with SO_REUSEPORT. The main process (which encodes the audio) sends every batch of record
changes (the same change log RFC 2136 publishing uses) down a pipe; each worker applies the batch to
its own :class:`~audionet.dns.proto.snapshot.SnapshotBuilder` and swaps in the new snapshot. A pack
and the index that lists it arrive in one batch, so each worker's zone is always consistent; across
workers a batch lands within milliseconds. Back up the same pipe, each worker reports its counters
once a second, so the main process's metrics count every query the port answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from audionet.aio import run
from audionet.dns.proto.rrl import RateLimiter, RrlConfig
from audionet.dns.proto.snapshot import Change, SnapshotBuilder
from audionet.dns.server import DnsServer

log = logging.getLogger(__name__)

#: Seconds between a worker's metric reports.
REPORT_INTERVAL = 1.0
#: A worker whose last report is older than this is left out of the metrics (it is gone).
REPORT_STALE = 5.0


def _worker(
    zone: str,
    ns_address: str,
    host: str,
    port: int,
    udp_io: str,
    rrl: RrlConfig | None,
    conn: Connection,
) -> None:
    """A worker process's body: serve, and apply change batches from ``conn`` until it closes."""

    async def main() -> None:
        builder = SnapshotBuilder(zone, ns_address)
        server = DnsServer(builder.build(), rrl=RateLimiter(rrl) if rrl is not None else None)
        await server.start(host, port, reuse_port=True, udp_io=udp_io)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def apply(batch: list[Change]) -> None:
            for name, ttl, rrs in batch:
                if rrs is None:
                    builder.remove(name)
                else:
                    builder.set_txt(name, ttl, rrs)
            server.swap(builder.build())

        def reader() -> None:
            while True:
                try:
                    batch = conn.recv()
                except (EOFError, OSError):
                    loop.call_soon_threadsafe(stop.set)
                    return
                loop.call_soon_threadsafe(apply, batch)

        async def report() -> None:
            while True:
                await asyncio.sleep(REPORT_INTERVAL)
                try:
                    conn.send(("metrics", server.metrics.snapshot()))
                except OSError:
                    return

        threading.Thread(target=reader, daemon=True).start()
        conn.send("ready")
        reporting = asyncio.create_task(report())
        await stop.wait()
        reporting.cancel()
        await server.close()

    run(main())


class WorkerPool:
    """``count`` extra server processes on ``host:port`` (which must be a fixed, non-zero port)."""

    def __init__(
        self,
        zone: str,
        ns_address: str,
        host: str,
        port: int,
        count: int,
        udp_io: str = "auto",
        rrl: RrlConfig | None = None,
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        #: worker index -> (time.monotonic() of its last report, its metrics snapshot)
        self._reports: dict[int, tuple[float, dict[str, Any]]] = {}
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                args=(zone, ns_address, host, port, udp_io, rrl, child),
                daemon=True,
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        for conn in self._conns:
            ok = await asyncio.wait_for(asyncio.to_thread(conn.recv), timeout)
            if ok != "ready":
                raise RuntimeError(f"worker said {ok!r}")
        for index, conn in enumerate(self._conns):
            threading.Thread(
                target=self._read_reports, args=(index, conn), name=f"worker-{index}", daemon=True
            ).start()

    def _read_reports(self, index: int, conn: Connection) -> None:
        while True:
            try:
                kind, snap = conn.recv()
            except (EOFError, OSError, TypeError, ValueError):
                return
            if kind == "metrics":
                self._reports[index] = (time.monotonic(), snap)

    def reports(self) -> list[dict[str, Any]]:
        """The latest metrics snapshot of every worker that reported in the last few seconds."""
        now = time.monotonic()
        return [snap for at, snap in list(self._reports.values()) if now - at <= REPORT_STALE]

    def send(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        batch = list(changes)
        for conn in self._conns:
            try:
                conn.send(batch)
            except (OSError, BrokenPipeError):
                log.warning("a worker process is gone; its share of clients gets no answers")

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
