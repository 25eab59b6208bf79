"""The v1 listener behind a caching resolver, in memory with a fake clock.

The resolver model keeps each answer for its TTL (counting it down in whole seconds, as unbound
does) and each "no such name" for a negative TTL: 60 s models the original AoDNS server, whose
NODATA answers carry an SOA of TTL 60 (RFC 2308: min(SOA TTL, SOA minimum 3600)). Answers from it
carry no AA flag, as a resolver's do.
"""

from __future__ import annotations

import math

import dns.rcode

from audionet.dns.proto import names
from audionet.dns.proto.client import ClientSettings, Failure, Kind, Request, StreamClient
from audionet.dns.proto.jitter import ItemKind
from audionet.dns.proto.publisher import V1Stream, ZonePublisher
from tests.dns.helpers import ask
from tests.dns.proto.test_client import FRAME, ZONE, frame_bytes, numbers


class CachingResolver:
    def __init__(self, pub: ZonePublisher, negative_ttl: int = 60) -> None:
        self.pub = pub
        self.negative_ttl = negative_ttl
        #: name -> (expiry, TXT strings per RR or None for a cached negative, TTL)
        self.cache: dict[str, tuple[float, list[tuple[bytes, ...]] | None, int]] = {}
        self.asked: list[tuple[float, str]] = []  # what the client asked, when
        self.upstream: list[str] = []  # what reached the server
        self.unlisted: list[str] = []  # pack names asked upstream before the server had them
        self.hide_once: set[str] = set()  # names the server answers NODATA once (mid-rebuild)

    def _fetch(self, name: str, now: float) -> None:
        self.upstream.append(name)
        snap = self.pub.snapshot()
        resp = ask(snap, name)
        rrs = [tuple(rd.strings) for rrset in resp.answer for rd in rrset]
        if name in self.hide_once:
            self.hide_once.discard(name)
            rrs = []
        if resp.rcode() == dns.rcode.NXDOMAIN or not rrs:
            if name.startswith("seq_"):
                self.unlisted.append(name)
            self.cache[name] = (now + self.negative_ttl, None, self.negative_ttl)
        else:
            ttl = resp.answer[0].ttl
            self.cache[name] = (now + ttl, rrs, ttl)

    def serve(self, client: StreamClient, req: Request, now: float) -> None:
        self.asked.append((now, req.name))
        hit = self.cache.get(req.name)
        if hit is None or hit[0] < now:
            self._fetch(req.name, now)
            hit = self.cache[req.name]
        expiry, rrs, _ = hit
        if rrs is None:
            client.on_failure(req, Failure.NODATA, now, authoritative=False)
        else:
            client.on_answer(req, rrs, now, math.floor(expiry - now), authoritative=False)


def play_v1(
    resolver_of, seconds: float, prefill: int = 300, target: float = 3.0
) -> tuple[StreamClient, CachingResolver, list, V1Stream]:
    pub = ZonePublisher(ZONE)
    st = pub.add_v1()
    for i in range(prefill):  # the station has been on the air a while
        st.feed(frame_bytes(i))
    resolver = resolver_of(pub)
    client = StreamClient(ClientSettings(ZONE, version=1, target_seconds=target))
    played = []
    now, n = 0.0, prefill
    while now < seconds:
        st.feed(frame_bytes(n))
        n += 1
        for req in client.requests(now):
            resolver.serve(client, req, now)
        played.append(client.playout())
        now += FRAME
    return client, resolver, played, st


def test_v1_through_a_resolver_asks_only_listed_packs_and_plays_without_a_gap() -> None:
    client, resolver, played, _ = play_v1(CachingResolver, 60.0)
    assert client.stats.direct is False
    assert resolver.unlisted == []  # never a name the list had not shown
    assert client.stats.probes == 0
    # The buffer outlasts the resolver's 10 s hold on the list: no underrun once playing.
    assert client.jitter.target * FRAME >= 10 + 1.5
    start = next(i for i, item in enumerate(played) if item.kind is ItemKind.FRAME)
    assert start * FRAME < 1.0  # the station's past packs fill it at once
    assert all(item.kind is ItemKind.FRAME for item in played[start:])
    got = numbers(played)
    assert got == list(range(got[0], got[0] + len(got)))  # in order, nothing skipped
    assert client.jitter.underruns == 0 and client.stats.packs_lost == 0
    # The list is read again as the resolver's copy expires: about every 10 s, not every 4 s.
    reads = [t for t, name in resolver.asked if name == names.v1_sequence_name(ZONE)]
    fresh = [n for n in resolver.upstream if n == names.v1_sequence_name(ZONE)]
    assert 6 <= len(fresh) <= 7
    assert len(reads) <= 2 * len(fresh) + 1


def test_v1_skips_a_listed_pack_the_resolver_says_is_not_there() -> None:
    """The original rebuilds its zone in place: a query in between gets NODATA, which a resolver
    then keeps for 60 s. The listener moves on at once, counting the pack, and keeps playing."""

    def hiding(pub: ZonePublisher) -> CachingResolver:
        r = CachingResolver(pub)
        r.hide_once = {names.v1_pack_name(ZONE, 45)}  # published ~17 s into the test
        return r

    client, resolver, played, _ = play_v1(hiding, 40.0)
    assert client.stats.packs_lost == 1
    assert resolver.unlisted == [names.v1_pack_name(ZONE, 45)]  # (hidden, not unlisted)
    asked = [name for _, name in resolver.asked if name == names.v1_pack_name(ZONE, 45)]
    assert len(asked) == 1  # no retries against a cached negative
    start = next(i for i, item in enumerate(played) if item.kind is ItemKind.FRAME)
    assert all(item.kind is ItemKind.FRAME for item in played[start:])  # no stall, no gap
    got = numbers(played)
    missing = sorted(set(range(got[0], got[-1] + 1)) - set(got))
    # Exactly the frames of the one hidden pack: 45 packs of 10 fake frames (160 bytes) each.
    assert missing == list(range(450, 460))
    assert client.jitter.underruns == 0


class OriginalDirect:
    """Straight from a server that answers missing names NODATA with AA, as the original does."""

    def __init__(self, pub: ZonePublisher) -> None:
        self.pub = pub

    def serve(self, client: StreamClient, req: Request, now: float) -> None:
        resp = ask(self.pub.snapshot(), req.name)
        rrs = [tuple(rd.strings) for rrset in resp.answer for rd in rrset]
        if not rrs:  # NXDOMAIN from our snapshot: the original says NOERROR with no data
            client.on_failure(req, Failure.NODATA, now, authoritative=True)
        else:
            client.on_answer(req, rrs, now, resp.answer[0].ttl, authoritative=True)


def test_v1_straight_from_the_original_probes_and_counts_nodata_as_probes() -> None:
    client, _, played, _ = play_v1(OriginalDirect, 20.0, target=1.5)
    assert client.stats.direct is True
    assert client.stats.probes > 5  # it looks ahead for the next pack ...
    assert client.stats.failures == 0  # ... and "not there yet" is no failure
    assert client.jitter.target * FRAME < 2.0  # no resolver to outlast: the asked-for target
    got = numbers(played)
    assert len(got) > 250 and got == list(range(got[0], got[0] + len(got)))
    assert client.jitter.underruns == 0


def test_v1_probe_for_the_next_pack_waits_for_the_first_answer() -> None:
    """Before any answer says whether a resolver is in between, no pack is asked ahead of the
    list."""
    client = StreamClient(ClientSettings(ZONE, version=1))
    first = client.requests(0.0)
    assert [r.kind for r in first] == [Kind.INDEX]
    client.on_failure(first[0], Failure.TRANSIENT, 0.1)
    assert client.stats.direct is None
    later = client.requests(5.0)
    assert all(r.kind is Kind.INDEX for r in later)
