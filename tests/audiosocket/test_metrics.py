"""Prometheus exposition of the server's counters."""

from __future__ import annotations

import socket
import time
import urllib.request

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from audionet.audiosocket.metrics import (
    Stats,
    StatsCollector,
    WorkersCollector,
    combine,
    snapshot,
    start_metrics_server,
)


def test_collector_exposes_every_counter() -> None:
    stats = Stats(
        calls_active=2, calls_total=5, frames_in=100, frames_out=90, frames_ticked=4, bytes_in=32000
    )
    stats.error("protocol")
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, lambda q: q / 64))
    text = generate_latest(registry).decode()
    assert "audiosocket_calls_active 2.0" in text
    assert "audiosocket_calls_total 5.0" in text
    assert 'audiosocket_frames_total{direction="in"} 100.0' in text
    assert "audiosocket_frames_ticked_total 4.0" in text
    assert 'audiosocket_errors_total{kind="protocol"} 1.0' in text
    assert 'audiosocket_tick_lateness_seconds{quantile="0.5"} 0.0078125' in text


def test_http_endpoint() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stats = Stats()
    start_metrics_server(port, stats)
    stats.frames_out = 7
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'audiosocket_frames_total{direction="out"} 7.0' in body


def test_workers_collector_sums_counters_and_takes_the_worst_clock() -> None:
    a = Stats(calls_active=1, calls_total=3, frames_in=10)
    a.error("protocol")
    b = Stats(calls_active=2, calls_total=4, frames_in=5)
    b.error("protocol")
    b.error("timeout")
    now = time.monotonic()
    reports = {
        0: (now, snapshot(a, lambda q: q / 100, lambda: ([3] + [0] * 12 + [1], 2.5))),
        # stopped reporting a minute ago
        1: (now - 60, snapshot(b, lambda q: q / 10, lambda: ([1] + [0] * 5 + [2] + [0] * 7, 0.5))),
    }
    registry = CollectorRegistry()
    registry.register(WorkersCollector(lambda: reports))
    text = generate_latest(registry).decode()
    assert "audiosocket_calls_active 3.0" in text
    assert "audiosocket_calls_total 7.0" in text
    assert 'audiosocket_frames_total{direction="in"} 15.0' in text
    assert 'audiosocket_errors_total{kind="protocol"} 2.0' in text
    assert 'audiosocket_errors_total{kind="timeout"} 1.0' in text
    assert 'audiosocket_tick_lateness_seconds{quantile="0.99"} 0.099' in text
    # the histograms are summed: 4 ticks up to 0.5 ms, 2 more up to 7.5 ms, 1 above 1 s
    assert 'audiosocket_clock_lateness_seconds_bucket{le="0.0005"} 4.0' in text
    assert 'audiosocket_clock_lateness_seconds_bucket{le="0.005"} 4.0' in text
    assert 'audiosocket_clock_lateness_seconds_bucket{le="0.0075"} 6.0' in text
    assert 'audiosocket_clock_lateness_seconds_bucket{le="+Inf"} 7.0' in text
    assert "audiosocket_clock_lateness_seconds_count 7.0" in text
    assert "audiosocket_clock_lateness_seconds_sum 3.0" in text
    assert 'audiosocket_worker_up{worker="0"} 1.0' in text
    assert 'audiosocket_worker_up{worker="1"} 0.0' in text
    assert 'audiosocket_worker_calls_total{worker="1"} 4.0' in text


def test_combine_of_nothing_is_zero() -> None:
    total, late, hist = combine([])
    assert total == Stats() and late is None and hist is None
