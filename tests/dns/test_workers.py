"""``serve --workers``: extra processes on the same port answer from the same, current zone."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.message
import dns.rcode
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from audionet.dns.broadcast import ServeOptions
from audionet.dns.metrics import register_prometheus
from audionet.dns.proto import v2
from tests.dns.helpers import broadcast

ZONE = "workers.example.com"


def _samples(text: str, name: str) -> list[Sample]:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


async def test_all_workers_answer_current_records() -> None:
    async with broadcast(ServeOptions(ZONE, port=0, workers=3), prefill=2.0) as b:
        port = b.server.address[1]
        await asyncio.sleep(1.0)
        seen_index: set[str] = set()
        answered_by_main = b.metrics.total
        # Each query from a new socket (a new source port): the kernel spreads them over the
        # three processes.
        for _ in range(60):
            q = dns.message.make_query(f"index.main.{ZONE}", "TXT")
            r = await dns.asyncquery.udp(q, "127.0.0.1", port=port, timeout=2)
            assert r.rcode() == dns.rcode.NOERROR
            idx = v2.Index.from_text(r.answer[0][0].strings[0])
            # Every process lists packs that it (and the others) can serve.
            q2 = dns.message.make_query(
                f"p{idx.last}-{idx.epoch:08x}.main.{ZONE}", "TXT", use_edns=0
            )
            r2 = await dns.asyncquery.udp(q2, "127.0.0.1", port=port, timeout=2)
            assert r2.rcode() == dns.rcode.NOERROR and r2.answer
            seen_index.add(str(idx))
        answered_elsewhere = 120 - (b.metrics.total - answered_by_main)
        assert answered_elsewhere > 10  # the workers took part
        assert b.pool is not None
        # The workers report their counters once a second; the main process's metrics add them.
        await asyncio.sleep(1.5)
        reports = b.pool.reports()
        assert len(reports) == 2
        registry = CollectorRegistry()
        register_prometheus(b.metrics, b.pool.reports, registry)
        text = generate_latest(registry).decode()
        total = sum(s.value for s in _samples(text, "aodns_queries_total"))
        assert total == b.metrics.total + sum(sum(r["queries"].values()) for r in reports)
        assert total >= 120 + answered_by_main  # every query this test sent is counted once
        assert _samples(text, "aodns_processes_reporting")[0].value == 3
