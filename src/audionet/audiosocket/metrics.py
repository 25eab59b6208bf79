"""Counters of an AudioSocket server and their Prometheus exposition.

The hot path only increments plain integer attributes of :class:`Stats` (a Prometheus ``Counter``
takes a lock per increment, which at 100,000 frames a second is measurable); a custom collector reads
them when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry


@dataclass
class Stats:
    """What a server has done so far (mutable; read them any time)."""

    calls_active: int = 0
    calls_total: int = 0
    calls_rejected: int = 0
    frames_in: int = 0
    bytes_in: int = 0
    dtmf_in: int = 0
    frames_out: int = 0
    silence_frames_out: int = 0
    bytes_out: int = 0
    bytes_dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class StatsCollector(Collector):
    """Exposes :class:`Stats` (and, if given, the ticker's lateness) as ``audiosocket_*`` metrics."""

    def __init__(self, stats: Stats, lateness: Callable[[float], float] | None = None) -> None:
        self.stats = stats
        self.lateness = lateness

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = self.stats
        yield GaugeMetricFamily(
            "audiosocket_calls_active", "Calls in progress", value=s.calls_active
        )
        yield CounterMetricFamily("audiosocket_calls", "Calls started", value=s.calls_total)
        yield CounterMetricFamily(
            "audiosocket_calls_rejected",
            "Connections refused (over --max-calls)",
            value=s.calls_rejected,
        )
        frames = CounterMetricFamily("audiosocket_frames", "Audio messages", labels=["direction"])
        frames.add_metric(["in"], s.frames_in)
        frames.add_metric(["out"], s.frames_out)
        yield frames
        yield CounterMetricFamily(
            "audiosocket_silence_frames",
            "Silence frames sent when nothing was queued",
            value=s.silence_frames_out,
        )
        nbytes = CounterMetricFamily(
            "audiosocket_bytes", "Audio payload bytes", labels=["direction"]
        )
        nbytes.add_metric(["in"], s.bytes_in)
        nbytes.add_metric(["out"], s.bytes_out)
        yield nbytes
        yield CounterMetricFamily("audiosocket_dtmf", "DTMF digits received", value=s.dtmf_in)
        yield CounterMetricFamily(
            "audiosocket_dropped_bytes",
            "Outgoing audio dropped from full queues",
            value=s.bytes_dropped,
        )
        errors = CounterMetricFamily("audiosocket_errors", "Errors by kind", labels=["kind"])
        for kind, n in sorted(s.errors.items()):
            errors.add_metric([kind], n)
        yield errors
        if self.lateness is not None:
            late = GaugeMetricFamily(
                "audiosocket_tick_lateness_seconds",
                "Lateness of the 20 ms send clock over the last minute (after the last call was served)",
                labels=["quantile"],
            )
            for q in (0.5, 0.99, 1.0):
                late.add_metric([str(q)], self.lateness(q))
            yield late


def start_metrics_server(
    port: int,
    stats: Stats,
    lateness: Callable[[float], float] | None = None,
    addr: str = "127.0.0.1",
) -> CollectorRegistry:
    """Serve the metrics over HTTP on ``addr:port`` (a daemon thread) and return the registry."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, lateness))
    start_http_server(port, addr=addr, registry=registry)
    return registry
