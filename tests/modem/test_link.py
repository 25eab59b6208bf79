"""ModemEndpoint: frames out as samples, samples in as frames, damaged frames counted, air time."""

from __future__ import annotations

import numpy as np

from audionet.modem.link import ModemEndpoint
from audionet.modem.phy import get_phy
from audionet.modem.proto.frame import AUDIONET, Address, Flags, Frame, Protocol
from audionet.modem.proto.host import ConnectionHost, PingReceived


def endpoint(host: int) -> ModemEndpoint:
    return ModemEndpoint(ConnectionHost(host), get_phy("manchester"))


def test_tick_plays_exactly_n_samples_and_frames_follow_back_to_back() -> None:
    a = endpoint(1)
    for seq in range(3):
        a.host.ping(Address(2, 0), seq, b"12345678")
    empty = np.zeros(0, dtype=np.float32)
    blocks = [a.tick(empty, 0.0, 1000) for _ in range(40)]
    assert all(b.size == 1000 for b in blocks)
    assert a.stats.frames_sent == 3
    played = np.concatenate(blocks)
    frame_samples = a.modulator.modulate(AUDIONET.encode(
        Frame(Address(1, 0), Address(2, 0), 0, Flags.NONE, Protocol.PING, payload=b"12345678")))  # fmt: skip
    # three frames, then silence: nothing but the PHY's own gap between them
    assert np.count_nonzero(played[: 3 * frame_samples.size]) > 0.9 * 3 * frame_samples.size * 0.5
    assert not played[3 * frame_samples.size :].any()
    assert a.airtime(8) == a.modulator.duration(AUDIONET.overhead(8))


def test_samples_in_become_frames_and_damage_is_counted() -> None:
    a, b = endpoint(1), endpoint(2)
    a.host.ping(Address(2, 0), 1, b"abcdefgh")
    a.host.ping(Address(2, 0), 2, b"abcdefgh")
    line = np.concatenate([a.transmit(50_000, 0.0), np.zeros(2000, dtype=np.float32)])
    # complement 8 bits of the second frame's payload (preamble 64 bits, header 21 bytes, at 8
    # samples per bit): the frame is still found, but its payload CRC fails
    size = line.size - 2000 - (50_000 - a.stats.samples_sent)
    start = size // 2 + (64 + 21 * 8 + 8) * 8
    line[start : start + 64] *= -1
    b.receive(line, 1.0)
    events = []
    while (e := b.host.next_event()) is not None:
        events.append(e)
    assert [e.seq for e in events if isinstance(e, PingReceived)] == [1]
    assert (b.stats.frames_good, b.stats.frames_bad) == (1, 1)
    assert 0.9 < b.stats.quality <= 1.0


def test_a_frame_the_profile_cannot_carry_is_dropped_not_fatal() -> None:
    from audionet.modem.proto.frame import LEGACY

    legacy = ModemEndpoint(ConnectionHost(1), get_phy("manchester", legacy=True), LEGACY)
    legacy.host.connect(Address(2, 7), 0.0)  # a SYN carries a window: not in the legacy header
    legacy.host.ping(Address(2, 0), 300, b"12345678")  # seq 300 does not fit 8 bits
    legacy.host.ping(Address(2, 0), 5, b"12345678")  # this one is fine
    out = legacy.transmit(20_000, 0.0)
    assert legacy.stats.frames_sent == 1 and out.any()
