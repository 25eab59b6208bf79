"""Response rate limiting (RRL) without I/O: how many UDP answers a client network may have now.

A 40-byte query for a v2 pack draws ~1,200 bytes of answer. With a forged source address the
server becomes a 30x amplifier aimed at whoever owns that address. Like NSD (``rrl.c``) and Knot
DNS (``mod-rrl``), the server therefore limits the UDP responses each client *network* receives:

* Addresses are grouped into networks: /24 for IPv4 and /56 for IPv6 (NSD's ``rrl-ipv4-prefix-
  length`` and ``rrl-ipv6-prefix-length`` defaults); an IPv4-mapped IPv6 address counts as IPv4.
* Each network has a token bucket: ``rate`` tokens a second (NSD's default ``rrl-ratelimit``: 200),
  at most ``burst`` banked (one second's worth unless set). Every response takes a token.
  NSD counts responses per whole second and halves the previous second's count (its
  ``rate = rate/2 + counter``); a bucket refilled continuously gives the same long-run limit
  without the step at each second boundary, and needs only the current time.
* A response without a token is *limited*. Every ``slip``-th limited response of a network (default 2, as
  NSD's ``rrl-slip`` and Knot's ``slip: 2``) is "slipped": sent as a truncated reply (TC=1, the
  question, no records; never larger than the query), so a real resolver asks again over TCP,
  which is never limited, while a forged victim gets nothing bigger than the attacker sent. The
  other limited responses are dropped. ``slip=0`` drops them all, ``slip=1`` slips them all.
* Allow-listed networks (``allow``: the resolvers of a known deployment) are never limited.

The table of buckets is bounded (``table_size`` networks) and kept in least-recently-seen order:
when it is full, the network seen least recently makes room. A network that is being limited
keeps sending, so it stays; the one pushed out has been quiet the longest, and after ``burst /
rate`` seconds of quiet (one second by default) its bucket is full again, so forgetting it changes
nothing. (Entries pushed out earlier than that are counted in :attr:`RateLimiter.evicted`: a
sweep of more distinct networks per second than the table holds.) NSD keeps a fixed array in
which a colliding network overwrites a slot; Knot a hash table that keeps the most frequent
sources.

The caller passes ``now`` (any monotonic clock in seconds) and decides what "a response" is; the
server asks before answering a UDP query, so a dropped query costs no answer work.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from audionet.dns.proto.wire import AA, HEADER, QR, RD, TC, MalformedQuery, NotAQuery, parse_query

#: NSD's defaults (nsd.conf(5): rrl-ratelimit 200, rrl-slip 2, prefix lengths 24 and 56).
DEFAULT_RATE = 200
DEFAULT_SLIP = 2
IPV4_PREFIX = 24
IPV6_PREFIX = 56
#: Networks tracked at once. Each costs about 250 bytes here (about 16 MB when full); Knot sizes its
#: table as 1.4 x (the server's queries per second / rate): 65536 covers 9 million q/s at 200/s.
TABLE_SIZE = 65536
#: IPv6 keys live above every IPv4 key.
_V6_TAG = 1 << 128
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


class Verdict(IntEnum):
    """What to do with one response."""

    ANSWER = 0
    SLIP = 1  #: send a truncated reply (TC=1, question only)
    DROP = 2


@dataclass(frozen=True, slots=True)
class RrlConfig:
    rate: float = DEFAULT_RATE  #: responses per second per network
    slip: int = DEFAULT_SLIP  #: every slip-th limited response is sent truncated; 0: none
    ipv4_prefix: int = IPV4_PREFIX
    ipv6_prefix: int = IPV6_PREFIX
    allow: tuple[str, ...] = ()  #: networks never limited, as CIDR text ("10.0.0.0/8", "::1")
    burst: float | None = None  #: tokens banked at most (None: one second's worth, ``rate``)
    table_size: int = TABLE_SIZE

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("the rate limit must be above 0 responses per second")
        if self.slip < 0:
            raise ValueError("slip must be 0 (drop every limited answer) or more")
        if not 0 < self.ipv4_prefix <= 32 or not 0 < self.ipv6_prefix <= 128:
            raise ValueError("prefix lengths: 1-32 for IPv4, 1-128 for IPv6")
        if self.burst is not None and self.burst < 1:
            raise ValueError("burst must allow at least one response")
        if self.table_size < 16:
            raise ValueError("the table must hold at least 16 networks")
        for text in self.allow:
            parse_network(text)


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``10.0.0.0/8``, ``2001:db8::/32`` or a single address; ValueError says what is wrong."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as e:
        raise ValueError(f"not a network: {text!r} (example: 192.0.2.0/24 or 2001:db8::/48)") from e


class RateLimiter:
    """Token buckets per client network; see the module's description."""

    def __init__(self, config: RrlConfig = RrlConfig()) -> None:
        self.config = config
        self.rate = float(config.rate)
        self.burst = float(config.burst if config.burst is not None else config.rate)
        self.slip = config.slip
        self._shift4 = 32 - config.ipv4_prefix
        self._shift6 = 128 - config.ipv6_prefix
        self._allow = [
            (net.version, int(net.network_address), net.max_prefixlen - net.prefixlen)
            for net in map(parse_network, config.allow)
        ]
        #: network key -> [tokens, time of that count, limited responses so far (the slip
        #: counter)], least recently seen first
        self._table: OrderedDict[int, list[float]] = OrderedDict()
        #: networks pushed out of the full table before their bucket had refilled
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._table)

    def network(self, address: bytes) -> int | None:
        """The key of the network ``address`` (4 or 16 packed bytes) belongs to; None when it
        is allow-listed (never limited)."""
        if len(address) == 16 and address[:12] == _V4_MAPPED:
            address = address[12:]
        value = int.from_bytes(address, "big")
        version = 4 if len(address) == 4 else 6
        for v, net, host_bits in self._allow:
            if v == version and value >> host_bits == net >> host_bits:
                return None
        if version == 4:
            return value >> self._shift4
        return (value >> self._shift6) | _V6_TAG

    def admit(self, key: int, count: int, now: float) -> int:
        """Take up to ``count`` tokens from ``key``'s bucket: how many of ``count`` responses may
        be answered in full (the rest are limited: see :meth:`limit`)."""
        table = self._table
        entry = table.get(key)
        if entry is None:
            if len(table) >= self.config.table_size:
                _, (old_tokens, old_t, _) = table.popitem(last=False)
                if old_tokens + (now - old_t) * self.rate < self.burst:
                    self.evicted += 1
            tokens = self.burst
            entry = table[key] = [tokens, now, 0]
        else:
            table.move_to_end(key)
            elapsed = now - entry[1]
            tokens = entry[0] + elapsed * self.rate if elapsed > 0 else entry[0]
            if tokens > self.burst:
                tokens = self.burst
            entry[1] = now
        granted = count if tokens >= count else int(tokens)
        entry[0] = tokens - granted
        return granted

    def verdicts(self, keys: Iterable[int | None], now: float) -> list[Verdict] | None:
        """One response for each key in turn (None: an allow-listed source): what to do with
        each, or None when every one may be answered."""
        out: list[Verdict] | None = None
        admit = self.admit
        for i, key in enumerate(keys):
            if key is None or admit(key, 1, now):
                if out is not None:
                    out.append(Verdict.ANSWER)
            else:
                if out is None:
                    out = [Verdict.ANSWER] * i
                out.append(self.limit(key))
        return out

    def limit(self, key: int) -> Verdict:
        """The fate of the next limited response to network ``key`` (just refused by
        :meth:`admit`): every ``slip``-th one of that network slips, the others drop."""
        entry = self._table[key]
        entry[2] += 1
        if self.slip and entry[2] % self.slip == 0:
            return Verdict.SLIP
        return Verdict.DROP

    def check(self, address: bytes, now: float) -> Verdict:
        """One response to ``address``: answer it, slip it or drop it."""
        key = self.network(address)
        if key is None or self.admit(key, 1, now):
            return Verdict.ANSWER
        return self.limit(key)


def slip_reply(query: bytes) -> bytes | None:
    """The truncated reply sent instead of a limited answer: our flags with TC and the query's
    RD, no records and no OPT (as NSD's ``rrl_slip``), so never bigger than the query; None for a
    packet that gets no answer at all."""
    try:
        q = parse_query(query)
    except (NotAQuery, MalformedQuery):
        return None
    flags = QR | AA | TC | (q.flags & RD)
    return HEADER.pack(q.id, flags, 1, 0, 0, 0) + q.question
