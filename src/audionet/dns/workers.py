"""Worker processes that answer on the same port (SO_REUSEPORT), fed with the zone's changes.

One Python process answers about as many queries as its event loop can carry; ``serve --workers N``
starts N-1 more processes, each with its own :class:`~audionet.dns.server.DnsServer` bound to the same
address with SO_REUSEPORT. The main process (which encodes the audio) sends every batch of record
changes (the same change log RFC 2136 publishing uses) down a pipe; each worker applies the batch to
its own :class:`~audionet.dns.proto.snapshot.SnapshotBuilder` and swaps in the new snapshot. A pack
and the index that lists it arrive in one batch, so each worker's zone is always consistent; across
workers a batch lands within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection

from audionet.aio import run
from audionet.dns.proto.snapshot import Change, SnapshotBuilder
from audionet.dns.server import DnsServer

log = logging.getLogger(__name__)


def _worker(
    zone: str, ns_address: str, host: str, port: int, udp_io: str, conn: Connection
) -> None:
    """A worker process's body: serve, and apply change batches from ``conn`` until it closes."""

    async def main() -> None:
        builder = SnapshotBuilder(zone, ns_address)
        server = DnsServer(builder.build())
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

        threading.Thread(target=reader, daemon=True).start()
        conn.send("ready")
        await stop.wait()
        await server.close()

    run(main())


class WorkerPool:
    """``count`` extra server processes on ``host:port`` (which must be a fixed, non-zero port)."""

    def __init__(
        self, zone: str, ns_address: str, host: str, port: int, count: int, udp_io: str = "auto"
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker, args=(zone, ns_address, host, port, udp_io, child), daemon=True
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
