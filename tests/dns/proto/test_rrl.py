"""The response rate limiter's core with a fake clock: rates, slips, networks, allow-list, table."""

from __future__ import annotations

import ipaddress
import socket

import dns.flags
import dns.message
import pytest

from audionet.dns.proto.rrl import RateLimiter, RrlConfig, Verdict, slip_reply


def v4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def v6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def flood(rrl: RateLimiter, address: bytes, per_second: int, seconds: float) -> list[Verdict]:
    out = []
    for i in range(int(per_second * seconds)):
        out.append(rrl.check(address, i / per_second))
    return out


def test_a_flood_is_held_to_the_rate_with_every_second_limited_answer_slipped() -> None:
    rrl = RateLimiter(RrlConfig(rate=200, slip=2))
    verdicts = flood(rrl, v4("192.0.2.7"), 5000, 10.0)
    answered = verdicts.count(Verdict.ANSWER)
    # One second's burst, then 200 a second.
    assert 200 + 200 * 10 - 2 <= answered <= 200 + 200 * 10 + 1
    limited = [v for v in verdicts if v is not Verdict.ANSWER]
    assert limited[:6] == [Verdict.DROP, Verdict.SLIP] * 3
    assert abs(limited.count(Verdict.SLIP) - limited.count(Verdict.DROP)) <= 1
    # After the first second the answers come evenly: 200 in every second.
    for second in range(2, 10):
        chunk = verdicts[second * 5000 : (second + 1) * 5000]
        assert 199 <= chunk.count(Verdict.ANSWER) <= 201


def test_below_the_rate_nothing_is_limited_and_slip_settings() -> None:
    rrl = RateLimiter(RrlConfig(rate=200))
    assert set(flood(rrl, v4("192.0.2.7"), 190, 30.0)) == {Verdict.ANSWER}
    drop_all = RateLimiter(RrlConfig(rate=10, slip=0))
    assert Verdict.SLIP not in flood(drop_all, v4("192.0.2.7"), 1000, 2.0)
    slip_all = RateLimiter(RrlConfig(rate=10, slip=1))
    assert Verdict.DROP not in flood(slip_all, v4("192.0.2.7"), 1000, 2.0)
    third = RateLimiter(RrlConfig(rate=10, slip=3))
    limited = [v for v in flood(third, v4("192.0.2.7"), 1000, 2.0) if v is not Verdict.ANSWER]
    assert limited[:6] == [Verdict.DROP, Verdict.DROP, Verdict.SLIP] * 2


def test_networks_are_slash_24_and_slash_56_and_mapped_v4_is_v4() -> None:
    rrl = RateLimiter(RrlConfig(rate=5))
    assert rrl.network(v4("192.0.2.1")) == rrl.network(v4("192.0.2.254"))
    assert rrl.network(v4("192.0.2.1")) != rrl.network(v4("192.0.3.1"))
    assert rrl.network(v6("2001:db8:0:ab00::1")) == rrl.network(v6("2001:db8:0:abff:ffff::9"))
    assert rrl.network(v6("2001:db8:0:ab00::1")) != rrl.network(v6("2001:db8:0:ac00::1"))
    assert rrl.network(v6("::ffff:192.0.2.9")) == rrl.network(v4("192.0.2.1"))
    assert rrl.network(v6("::c000:201")) != rrl.network(v4("192.0.2.1"))  # not mapped
    # One network's flood leaves another's answers alone.
    for i in range(100):
        rrl.check(v4(f"192.0.2.{i}"), 0.0)
    assert rrl.check(v4("192.0.2.200"), 0.0) is not Verdict.ANSWER
    assert rrl.check(v4("198.51.100.1"), 0.0) is Verdict.ANSWER
    custom = RateLimiter(RrlConfig(ipv4_prefix=32, ipv6_prefix=64))
    assert custom.network(v4("192.0.2.1")) != custom.network(v4("192.0.2.2"))
    assert custom.network(v6("2001:db8::1")) == custom.network(v6("2001:db8::2"))


def test_allow_listed_networks_are_never_limited() -> None:
    rrl = RateLimiter(RrlConfig(rate=1, allow=("10.1.0.0/16", "2001:db8:5::/48", "127.0.0.2")))
    assert rrl.network(v4("10.1.200.3")) is None
    assert rrl.network(v6("2001:db8:5:ffff::1")) is None
    assert rrl.network(v4("127.0.0.2")) is None
    assert rrl.network(v4("127.0.0.3")) is not None
    assert rrl.network(v4("10.2.0.1")) is not None
    assert set(flood(rrl, v4("10.1.2.3"), 1000, 1.0)) == {Verdict.ANSWER}
    with pytest.raises(ValueError, match="not a network"):
        RrlConfig(allow=("10.0.0.0/33",))


def test_verdicts_for_a_run_of_responses() -> None:
    rrl = RateLimiter(RrlConfig(rate=2, slip=2))
    a, b = rrl.network(v4("192.0.2.1")), rrl.network(v4("198.51.100.1"))
    assert rrl.verdicts([a, b, None, a], 0.0) is None  # all within the buckets: no list
    got = rrl.verdicts([None, a, a, b, a, None], 0.0)
    assert got == [Verdict.ANSWER, Verdict.DROP, Verdict.SLIP, Verdict.ANSWER, Verdict.DROP, 0]


def test_bad_settings_are_refused() -> None:
    for kw in ({"rate": 0}, {"slip": -1}, {"ipv4_prefix": 0}, {"ipv6_prefix": 129}, {"burst": 0}):
        with pytest.raises(ValueError):
            RrlConfig(**kw)  # type: ignore[arg-type]


def test_admit_grants_part_of_a_batch_and_refills_with_time() -> None:
    rrl = RateLimiter(RrlConfig(rate=100))
    key = rrl.network(v4("203.0.113.5"))
    assert key is not None
    assert rrl.admit(key, 64, 0.0) == 64
    assert rrl.admit(key, 64, 0.0) == 36  # one second's burst: 100
    assert rrl.admit(key, 64, 0.0) == 0
    assert rrl.admit(key, 64, 0.25) == 25  # 100 a second
    assert rrl.admit(key, 10, 0.2) == 0  # a clock going back gives nothing
    assert rrl.admit(key, 500, 60.0) == 100  # never more than one burst banked


def test_the_table_is_bounded_and_keeps_the_networks_it_limits() -> None:
    rrl = RateLimiter(RrlConfig(rate=10, table_size=100))
    busy = v4("198.51.100.1")
    for _ in range(50):
        rrl.check(busy, 0.0)  # emptied its bucket: limited from now
    # A sweep of spoofed sources, each asking once, far more networks than the table holds,
    # while the busy network keeps flooding.
    answered = 0
    for i in range(5000):
        t = 0.5 + i / 10000
        rrl.check(int(ipaddress.IPv4Address("10.0.0.0") + (i << 8)).to_bytes(4, "big"), t)
        if i % 10 == 0:
            answered += rrl.check(busy, t) is Verdict.ANSWER
        assert len(rrl) <= 100
    assert rrl.evicted > 0  # the sweep's one-off entries pushed each other out
    # The busy network got what its bucket allows over the half second (5 banked, 5 refilled),
    # never a fresh burst as a forgotten network would.
    assert answered <= 11
    assert rrl.check(busy, 1.0) is not Verdict.ANSWER  # still known, still limited
    # After a quiet second every bucket is full again: what makes room loses nothing.
    before = rrl.evicted
    for i in range(100):
        rrl.check(v4(f"172.16.{i}.1"), 100.0)
    assert rrl.evicted == before
    assert len(rrl) == 100


def test_slip_reply_is_truncated_and_no_bigger_than_the_query() -> None:
    q = dns.message.make_query("P0-0.main.Radio.example.org", "TXT", use_edns=0, payload=1232)
    q.flags |= dns.flags.CD
    wire = q.to_wire()
    out = slip_reply(wire)
    assert out is not None and len(out) < len(wire)
    r = dns.message.from_wire(out)
    assert r.id == q.id and r.flags & dns.flags.TC and r.flags & dns.flags.QR
    assert r.flags & dns.flags.RD
    assert str(r.question[0].name) == "P0-0.main.Radio.example.org."  # case kept
    assert not r.answer and not r.authority and r.edns < 0
    assert slip_reply(b"\x00") is None
    assert slip_reply(out) is None  # a response is never answered
