"""Counters of an AudioSocket server and their Prometheus exposition.

The hot path only increments plain integer attributes of :class:`Stats` (a Prometheus ``Counter``
takes a lock per increment, which at 100,000 frames a second is measurable), and the straight echo
path not even those: it counts on its connection, added here once a second (see
``AudioSocketServer.stats``); a custom collector reads them when Prometheus scrapes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from audionet.audiosocket.clock import LATENESS_BUCKETS


@dataclass
class Stats:
    """What a server has done so far (mutable; read them any time)."""

    calls_active: int = 0
    calls_total: int = 0
    calls_rejected: int = 0
    #: Of ``calls_rejected``, by reason: ``max_calls``, ``load`` (the calls up would need more
    #: than ``max_load`` of a core), ``lag`` (the clock ran late).
    refused: dict[str, int] = field(default_factory=dict)
    frames_in: int = 0
    bytes_in: int = 0
    dtmf_in: int = 0
    frames_out: int = 0
    #: Of ``frames_out``: sent by the shared clock at their deadline (the others left from the
    #: receive callback as the caller's frame arrived, see ``schedule.FrameClock``).
    frames_ticked: int = 0
    silence_frames_out: int = 0
    bytes_out: int = 0
    bytes_dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


#: Quantiles of the send clock's lateness that are exposed.
QUANTILES = (0.5, 0.99, 1.0)

#: The clock's lateness histogram: counts per bucket of ``LATENESS_BUCKETS`` (and one above), sum.
Histogram = tuple[list[int], float]


def snapshot(
    stats: Stats,
    lateness: Callable[[float], float] | None = None,
    histogram: Callable[[], Histogram] | None = None,
) -> dict[str, Any]:
    """A picklable copy of ``stats`` (and the lateness quantiles and histogram), for a worker to
    report."""
    snap = dataclasses.asdict(stats)
    if lateness is not None:
        snap["lateness"] = {q: lateness(q) for q in QUANTILES}
    if histogram is not None:
        snap["histogram"] = histogram()
    return snap


def combine(
    snapshots: Iterable[dict[str, Any]],
) -> tuple[Stats, dict[float, float] | None, Histogram | None]:
    """The sum of several workers' counters, the worst of their clocks' lateness and the sum of
    their lateness histograms."""
    total = Stats()
    late: dict[float, float] | None = None
    hist: Histogram | None = None
    for snap in snapshots:
        if "histogram" in snap:
            counts, total_s = snap["histogram"]
            if hist is None:
                hist = (list(counts), total_s)
            else:
                hist = ([a + b for a, b in zip(hist[0], counts, strict=True)], hist[1] + total_s)
        for f in dataclasses.fields(Stats):
            if f.name in ("errors", "refused"):
                mine = getattr(total, f.name)
                for kind, n in snap.get(f.name, {}).items():
                    mine[kind] = mine.get(kind, 0) + n
            else:
                setattr(total, f.name, getattr(total, f.name) + snap[f.name])
        if "lateness" in snap:
            late = late or {}
            for q, v in snap["lateness"].items():
                late[q] = max(late.get(q, 0.0), v)
    return total, late, hist


class StatsCollector(Collector):
    """Exposes :class:`Stats` (and, if given, the ticker's lateness quantiles and histogram) as
    ``audiosocket_*`` metrics."""

    def __init__(
        self,
        stats: Stats,
        lateness: Callable[[float], float] | None = None,
        histogram: Callable[[], Histogram] | None = None,
    ) -> None:
        self.stats = stats
        self.lateness = lateness
        self.histogram = histogram

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        s = self.stats
        yield GaugeMetricFamily(
            "audiosocket_calls_active", "Calls in progress", value=s.calls_active
        )
        yield CounterMetricFamily("audiosocket_calls", "Calls started", value=s.calls_total)
        yield CounterMetricFamily(
            "audiosocket_calls_rejected",
            "Connections refused with a hangup message (over --max-calls, --max-load or --max-lag)",
            value=s.calls_rejected,
        )
        refused = CounterMetricFamily(
            "audiosocket_calls_refused",
            "Connections refused, by reason: max_calls, load, lag",
            labels=["reason"],
        )
        for reason, n in sorted(s.refused.items()):
            refused.add_metric([reason], n)
        yield refused
        frames = CounterMetricFamily("audiosocket_frames", "Audio messages", labels=["direction"])
        frames.add_metric(["in"], s.frames_in)
        frames.add_metric(["out"], s.frames_out)
        yield frames
        yield CounterMetricFamily(
            "audiosocket_frames_ticked",
            "Frames sent by the clock at their deadline (the others left as the caller's arrived)",
            value=s.frames_ticked,
        )
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
            for q in QUANTILES:
                late.add_metric([str(q)], self.lateness(q))
            yield late
        if self.histogram is not None:
            counts, total = self.histogram()
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, LATENESS_BUCKETS), "+Inf"), counts, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            yield HistogramMetricFamily(
                "audiosocket_clock_lateness_seconds",
                "Lateness of every tick of the 20 ms send clock since the start (after the last "
                "call was served)",
                buckets=buckets,
                sum_value=total,
            )


class WorkersCollector(Collector):
    """``--workers``: one exposition for every worker process, from the snapshots they report.

    ``latest()`` returns ``{worker index: (time.monotonic() of the report, snapshot)}``. Counters
    are summed, the clock lateness is the worst worker's, and two per-worker series tell how the
    kernel spread the calls and whether every worker is reporting.
    """

    #: A worker whose last report is older than this is counted as not up.
    STALE = 5.0

    def __init__(self, latest: Callable[[], dict[int, tuple[float, dict[str, Any]]]]) -> None:
        self.latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        reports = self.latest()
        total, late, hist = combine(snap for _, snap in reports.values())
        yield from StatsCollector(
            total, late.__getitem__ if late else None, (lambda: hist) if hist else None
        ).collect()
        now = time.monotonic()
        up = GaugeMetricFamily(
            "audiosocket_worker_up", "1 if the worker reported in the last 5 s", labels=["worker"]
        )
        calls = CounterMetricFamily(
            "audiosocket_worker_calls", "Calls started, per worker", labels=["worker"]
        )
        for index, (at, snap) in sorted(reports.items()):
            up.add_metric([str(index)], 1.0 if now - at <= self.STALE else 0.0)
            calls.add_metric([str(index)], snap["calls_total"])
        yield up
        yield calls


def serve_collector(collector: Collector, port: int, addr: str = "127.0.0.1") -> CollectorRegistry:
    """Serve ``collector`` over HTTP on ``addr:port`` (a daemon thread) and return its registry."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(collector)
    start_http_server(port, addr=addr, registry=registry)
    return registry


def start_metrics_server(
    port: int,
    stats: Stats,
    lateness: Callable[[float], float] | None = None,
    addr: str = "127.0.0.1",
    histogram: Callable[[], Histogram] | None = None,
) -> CollectorRegistry:
    """Serve one server's metrics over HTTP on ``addr:port`` (a daemon thread)."""
    return serve_collector(StatsCollector(stats, lateness, histogram), port, addr)
