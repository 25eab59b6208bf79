"""An original-style v1 client (dnspython's plain Resolver, the ``base91`` package, zlib) reads our
v1 server exactly as the original AoDNS client does: no EDNS (so packs come back truncated and the
resolver retries over TCP), ``sequence`` decoded with base91+zlib, frames split on ``'''``."""

from __future__ import annotations

import asyncio
import zlib

import base91
import dns.nameserver
import dns.resolver

from audionet.audio.analysis import dominant_frequency
from audionet.audio.codecs import get_codec
from tests.dns.test_client import ZONE, broadcasting


def original_style_read(port: int) -> tuple[list[int], list[list[bytes]]]:
    res = dns.resolver.Resolver(configure=False)
    res.lifetime = 2.0
    res.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", port=port)]

    def txt(name: str) -> list[bytes]:
        response = res.resolve(name, "TXT").response
        assert len(response.answer) == 1
        return [bytes(t.strings[0]) for t in response.answer[0]]

    seq_strings = txt(f"sequence.{ZONE}")
    seqs = [
        int(n) for n in zlib.decompress(bytes(base91.decode(seq_strings[0].decode()))).split(b",")
    ]
    packs = []
    for s in seqs[-4:]:
        indexed = []
        for t in txt(f"seq_{s}.{ZONE}"):
            index_bytes, frame = t.split(b"'''")
            indexed.append((int(index_bytes), frame))
        packs.append([bytes(base91.decode(f.decode())) for _, f in sorted(indexed)])
    return seqs, packs


async def test_original_client_reads_our_v1_stream() -> None:
    async with broadcasting(1, prefill=4.0) as b:
        seqs, packs = await asyncio.to_thread(original_style_read, b.server.address[1])
        assert b.metrics.truncated >= 1 and b.metrics.tcp_queries >= 4
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    codec = get_codec("opus", rate=16000, frame_ms=60, application="voip")
    pcm = b"".join(codec.decode(f) for p in packs for f in p)
    assert len(pcm) > 1920 * 20
    assert abs(dominant_frequency(pcm[1920 * 2 :], codec.format) - 440) < 3
