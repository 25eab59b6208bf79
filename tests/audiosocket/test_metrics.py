"""Prometheus exposition of the server's counters."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from audionet.audiosocket.metrics import Stats, StatsCollector, start_metrics_server


def test_collector_exposes_every_counter() -> None:
    stats = Stats(calls_active=2, calls_total=5, frames_in=100, frames_out=90, bytes_in=32000)
    stats.error("protocol")
    registry = CollectorRegistry()
    registry.register(StatsCollector(stats, lambda q: q / 64))
    text = generate_latest(registry).decode()
    assert "audiosocket_calls_active 2.0" in text
    assert "audiosocket_calls_total 5.0" in text
    assert 'audiosocket_frames_total{direction="in"} 100.0' in text
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
