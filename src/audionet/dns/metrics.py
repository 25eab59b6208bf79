"""Server and client counters, cheap enough to update on every query.

Plain integers and dicts (no locks, no per-query label look-ups); :func:`register_prometheus` exposes
them through ``prometheus_client`` as a collector read only when scraped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
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
    #: Answers not sent because the socket's send buffer was full (batched UDP never blocks).
    send_dropped: int = 0
    #: Response rate limiting: UDP answers replaced by a truncated reply, and not sent at all.
    rrl_slipped: int = 0
    rrl_dropped: int = 0

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
            "answers_dropped": self.send_dropped,
            "rrl_slipped": self.rrl_slipped,
            "rrl_dropped": self.rrl_dropped,
        }

    def snapshot(self) -> dict[str, Any]:
        """A picklable copy (a worker process reports it to the main one)."""
        snap: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        snap["queries"] = dict(self.queries)
        return snap

    def add(self, snap: dict[str, Any]) -> None:
        """Add another process's :meth:`snapshot` to these counters."""
        for f in fields(self):
            if f.name == "queries":
                self.queries.update(snap["queries"])
            else:  # (packs and dropped frames stay 0 in workers: only the main process encodes)
                setattr(self, f.name, getattr(self, f.name) + snap[f.name])

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
            ("aodns_answers_dropped_total", self.send_dropped),
            ("aodns_rrl_slipped_total", self.rrl_slipped),
            ("aodns_rrl_dropped_total", self.rrl_dropped),
        ):
            lines += [f"# TYPE {name} counter", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def register_prometheus(
    metrics: ServerMetrics,
    workers: Callable[[], Iterable[dict[str, Any]]] | None = None,
    registry: Any = None,
) -> None:
    """Expose ``metrics`` in prometheus_client's default registry (read at scrape time).

    ``workers`` (``serve --workers``) returns the other processes' latest :meth:`snapshot`;
    they are added in, so one endpoint counts every query the port answered. ``registry``: a
    ``prometheus_client`` registry (default: the global one).
    """
    from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

    class _Collector:
        def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
            total = metrics
            reports = list(workers()) if workers is not None else []
            if reports:
                total = ServerMetrics()
                total.add(metrics.snapshot())
                for snap in reports:
                    total.add(snap)
            q = CounterMetricFamily(
                "aodns_queries", "Queries by type and result", labels=["qtype", "result"]
            )
            for (t, r), n in sorted(total.queries.items()):
                q.add_metric([type_name(t), rcode_name(r)], n)
            yield q
            for name, doc, value in (
                ("aodns_bytes_in", "Query bytes received", total.bytes_in),
                ("aodns_bytes_out", "Response bytes sent", total.bytes_out),
                ("aodns_truncated", "UDP answers sent with TC", total.truncated),
                ("aodns_tcp_queries", "Queries over TCP", total.tcp_queries),
                ("aodns_internal_errors", "Packets that raised inside", total.internal_errors),
                ("aodns_packs_published", "Packs published", total.packs_published),
                ("aodns_frames_dropped", "Codec frames too big for a pack", total.frames_dropped),
                (
                    "aodns_answers_dropped",
                    "UDP answers not sent: the socket's send buffer was full or the address refused",
                    total.send_dropped,
                ),
                (
                    "aodns_rrl_slipped",
                    "UDP answers rate limiting replaced by a truncated reply (TC=1)",
                    total.rrl_slipped,
                ),
                (
                    "aodns_rrl_dropped",
                    "UDP answers rate limiting did not send",
                    total.rrl_dropped,
                ),
            ):
                yield CounterMetricFamily(name, doc, value=value)
            if workers is not None:
                yield GaugeMetricFamily(
                    "aodns_processes_reporting",
                    "Server processes counted above (the main one and reporting workers)",
                    value=1 + len(reports),
                )

    (REGISTRY if registry is None else registry).register(_Collector())
