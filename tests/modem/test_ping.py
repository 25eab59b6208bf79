"""Ping: timestamps round trip, RTT and loss statistics over a faulty in-memory link."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audionet.errors import ConfigError
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import ConnectionHost, PingReceived
from audionet.modem.proto.ping import Pinger, PingStats, decode_timestamp, encode_timestamp

from .lossy import Faults, LossyPair


@given(st.floats(0, 1e9, allow_nan=False))
def test_timestamp_round_trip(now: float) -> None:
    payload = encode_timestamp(now)
    assert len(payload) == 8
    assert decode_timestamp(payload) == pytest.approx(now, abs=1e-6)
    assert decode_timestamp(payload + b"x") is None


def run_ping(faults: Faults, count: int = 20) -> tuple[PingStats, LossyPair]:
    pair = LossyPair(ConnectionHost(1, seed=1), ConnectionHost(2, seed=2), random.Random(4), faults)
    pinger = Pinger(Address(2, 0), count=count, interval=0.5, timeout=2.0)
    pinger.poll(pair.a, 0.0)
    seen = 0
    while not pinger.done(pair.now):
        timer = pinger.get_timer()
        assert timer is not None
        pair.run(max(0.0, timer - pair.now) + 1e-6)
        for event in pair.events[0][seen:]:
            if isinstance(event, PingReceived):
                pinger.handle_event(event, event.time)
        seen = len(pair.events[0])
        pinger.poll(pair.a, pair.now)
    return pinger.stats(), pair


def test_ping_measures_rtt_without_loss() -> None:
    stats, pair = run_ping(Faults())
    assert stats.sent == stats.received == 20 and stats.loss == 0
    # request and reply: 21-byte header, 8+4 payload, 10 of gap each way at 5000 bit/s, 20 ms delay
    air = 2 * ((21 + 8 + 4 + 10) * 8 / 5000 + 0.02)
    assert stats.min == pytest.approx(air, rel=0.01) and stats.max == pytest.approx(air, rel=0.01)
    assert "0% loss" in stats.summary() and "rtt min/avg/max" in stats.summary()
    # the peer saw the requests too
    assert sum(isinstance(e, PingReceived) and not e.reply for e in pair.events[1]) == 20


def test_ping_counts_loss() -> None:
    stats, _ = run_ping(Faults(drop=0.3), count=40)
    assert stats.sent == 40
    # each ping needs two frames to survive: expect about 1 - 0.7**2 = 51 % lost
    assert 25 < stats.loss < 75
    assert stats.received == len(stats.rtts) > 0


def test_ping_all_lost_and_bad_config() -> None:
    stats, _ = run_ping(Faults(drop=1.0), count=3)
    assert stats.loss == 100 and stats.min is None and "100% loss" in stats.summary()
    with pytest.raises(ConfigError):
        Pinger(Address(2, 0), count=0)
