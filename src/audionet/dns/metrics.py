"""Server and client counters, cheap enough to update on every query.

Plain integers and dicts (no locks, no per-query label look-ups); :func:`register_prometheus` exposes
them through ``prometheus_client`` as a collector read only when scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from audionet.dns.proto.wire import Rcode, Type


def type_name(qtype: int) -> str:
    try:
        return Type(qtype).name
    except ValueError:
        return f"TYPE{qtype}"


def rcode_name(rcode: int) -> str:
    if rcode < 0:
        return "DROPPED"
    try:
        return Rcode(rcode).name
    except ValueError:
        return f"RCODE{rcode}"


@dataclass
class ServerMetrics:
    """What the server counts: queries by (type, result), bytes, truncations, TCP, errors, packs."""

    queries: Counter[tuple[int, int]] = field(default_factory=Counter)
    bytes_in: int = 0
    bytes_out: int = 0
    truncated: int = 0
    tcp_queries: int = 0
    tcp_connections: int = 0
    internal_errors: int = 0
    packs_published: int = 0
    frames_dropped: int = 0

    @property
    def total(self) -> int:
        return sum(self.queries.values())

    def summary(self) -> dict[str, Any]:
        by = {f"{type_name(t)}/{rcode_name(r)}": n for (t, r), n in sorted(self.queries.items())}
        return {
            "queries": self.total,
            "by_type_result": by,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "truncated": self.truncated,
            "tcp_queries": self.tcp_queries,
            "internal_errors": self.internal_errors,
            "packs_published": self.packs_published,
        }

    def prometheus_text(self) -> str:
        """The counters in Prometheus' text exposition format."""
        lines = ["# TYPE aodns_queries_total counter"]
        for (t, r), n in sorted(self.queries.items()):
            lines.append(
                f'aodns_queries_total{{qtype="{type_name(t)}",result="{rcode_name(r)}"}} {n}'
            )
        for name, value in (
            ("aodns_bytes_in_total", self.bytes_in),
            ("aodns_bytes_out_total", self.bytes_out),
            ("aodns_truncated_total", self.truncated),
            ("aodns_tcp_queries_total", self.tcp_queries),
            ("aodns_internal_errors_total", self.internal_errors),
            ("aodns_packs_published_total", self.packs_published),
            ("aodns_frames_dropped_total", self.frames_dropped),
        ):
            lines += [f"# TYPE {name} counter", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def register_prometheus(metrics: ServerMetrics) -> None:
    """Expose ``metrics`` in prometheus_client's default registry (read at scrape time)."""
    from prometheus_client.core import REGISTRY, CounterMetricFamily

    class _Collector:
        def collect(self) -> Iterator[CounterMetricFamily]:
            q = CounterMetricFamily(
                "aodns_queries", "Queries by type and result", labels=["qtype", "result"]
            )
            for (t, r), n in metrics.queries.items():
                q.add_metric([type_name(t), rcode_name(r)], n)
            yield q
            for name, value in (
                ("aodns_bytes_out", metrics.bytes_out),
                ("aodns_truncated", metrics.truncated),
                ("aodns_packs_published", metrics.packs_published),
            ):
                yield CounterMetricFamily(name, name.replace("_", " "), value=value)

    REGISTRY.register(_Collector())
