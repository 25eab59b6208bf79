"""Test helpers: drive a client state machine against a publisher's snapshot, all in memory."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from audionet.audio.sources import ToneSource
from audionet.dns.broadcast import Broadcaster, ServeOptions
from audionet.dns.proto.client import Failure, Request, StreamClient
from audionet.dns.proto.snapshot import Snapshot


def ask(
    snapshot: Snapshot, name: str, rdtype: str = "TXT", edns: int | None = 1232
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, use_edns=edns is not None, payload=edns or 512)
    wire, _, _ = snapshot.respond(q.to_wire())
    assert wire is not None
    resp = dns.message.from_wire(wire)
    if resp.flags & dns.flags.TC:
        wire, _, _ = snapshot.respond(q.to_wire(), 65535)
        assert wire is not None
        resp = dns.message.from_wire(wire)
    return resp


def serve_request(
    client: StreamClient,
    snapshot: Snapshot,
    req: Request,
    now: float,
    rng: random.Random | None = None,
) -> None:
    """Answer ``req`` from ``snapshot`` as the server does (``rng``: shuffle the RRs as a resolver
    would), feed the client with the response's TTL and AA flag."""
    resp = ask(snapshot, req.name)
    rc = resp.rcode()
    aa = bool(resp.flags & dns.flags.AA)
    if rc == dns.rcode.NXDOMAIN:
        client.on_failure(req, Failure.NXDOMAIN, now, aa)
        return
    if rc != dns.rcode.NOERROR:
        client.on_failure(req, Failure.TRANSIENT, now)
        return
    rrs = [
        tuple(rd.strings)
        for rrset in resp.answer
        if rrset.rdtype == dns.rdatatype.TXT
        for rd in rrset
    ]
    if not rrs:
        client.on_failure(req, Failure.NODATA, now, aa)
        return
    if rng is not None:
        rng.shuffle(rrs)
    client.on_answer(req, rrs, now, resp.answer[0].ttl, aa)


class MemorySink:
    """Collects PCM in memory (a Sink for tests)."""

    def __init__(self, fmt) -> None:
        self.format = fmt
        self.chunks: list[bytes] = []

    def write(self, pcm: bytes) -> None:
        self.chunks.append(pcm)

    def close(self) -> None:
        pass

    @property
    def pcm(self) -> bytes:
        return b"".join(self.chunks)


class SinkBox:
    """A sink factory that remembers the sink it made."""

    def __init__(self) -> None:
        self.sink: MemorySink | None = None

    def __call__(self, fmt) -> MemorySink:
        self.sink = MemorySink(fmt)
        return self.sink


@contextlib.asynccontextmanager
async def broadcast(
    options: ServeOptions, prefill: float = 3.0, epoch: int | None = None
) -> AsyncIterator[Broadcaster]:
    """A station streaming a 440 Hz tone with ``prefill`` seconds already published, for a test."""
    b = Broadcaster(options, epoch=epoch)
    src = ToneSource(440, b.codec.format)
    b.prefill(src, prefill)
    started = asyncio.Event()
    task = asyncio.create_task(b.run(src, started))
    await started.wait()
    try:
        yield b
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
