"""The client state machine against a real publisher's snapshots, in memory, with a fake clock."""

from __future__ import annotations

import random

import pytest

from audionet.dns.errors import KeyRequiredError, WrongKeyError
from audionet.dns.proto import v2
from audionet.dns.proto.client import ClientSettings, Kind, StreamClient
from audionet.dns.proto.jitter import ItemKind
from audionet.dns.proto.publisher import ZonePublisher
from tests.dns.helpers import serve_request

ZONE = "radio.test"
FRAME = 0.06


def frame_bytes(n: int) -> bytes:
    """A fake codec packet carrying its own number (so order can be checked)."""
    return n.to_bytes(4, "big") * 40


def run(
    pub: ZonePublisher,
    feed,
    client: StreamClient,
    seconds: float,
    lose: set[int] | None = None,
    rng: random.Random | None = None,
    on_tick=None,
    start: int = 0,
) -> list:
    """Publish one frame per tick and let the client ask and play; return the played items."""
    played = []
    now = 0.0
    n = start
    while now < seconds:
        feed(frame_bytes(n))
        n += 1
        if on_tick:
            on_tick(now)
        for req in client.requests(now):
            if lose and req.kind is Kind.PACK and req.seq in lose:
                from audionet.dns.proto.client import Failure

                client.on_failure(req, Failure.TRANSIENT, now)
                continue
            serve_request(client, pub.snapshot(), req, now, rng)
        if client.ready:
            played.append(client.playout())
        now += FRAME
    return played


def numbers(items) -> list[int]:
    return [int.from_bytes(i.packet[:4], "big") for i in items if i.kind is ItemKind.FRAME]


@pytest.mark.parametrize("version", [1, 2])
def test_plays_everything_in_order_without_underrun(version: int) -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v1() if version == 1 else pub.add_v2("main", v2.StreamConfig(), epoch=5)
    # Let the server run first, as a real listener joins a running stream.
    for i in range(400):
        st.feed(frame_bytes(i))
    client = StreamClient(ClientSettings(ZONE, version=version, target_seconds=1.5))
    items = run(pub, st.feed, client, 20.0, rng=random.Random(1), start=400)
    got = numbers(items)
    assert len(got) > 250
    assert got == sorted(got) and len(set(got)) == len(got)
    assert got == list(range(got[0], got[0] + len(got)))  # contiguous: nothing lost
    assert client.jitter.underruns == 0
    assert client.stats.packs > 10


def test_v2_lost_pack_is_concealed_frame_by_frame() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), epoch=5)
    for i in range(100):
        st.feed(frame_bytes(i))
    client = StreamClient(ClientSettings(ZONE, target_seconds=1.0, retries=1))
    lost_seq = 40
    items = run(pub, st.feed, client, 15.0, lose={lost_seq}, start=100)
    lost_pack = next(p for p in st.kept if p.seq == lost_seq)
    concealed = [i.number for i in items if i.kind is ItemKind.CONCEAL]
    assert concealed == list(range(lost_pack.first_frame, lost_pack.end_frame))
    assert client.stats.packs_lost == 1


def test_v2_encrypted_right_wrong_none() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), passphrase="hunter2", epoch=9)
    for i in range(100):
        st.feed(frame_bytes(i))
    ok = StreamClient(ClientSettings(ZONE, passphrase="hunter2", target_seconds=1.0))
    assert len(numbers(run(pub, st.feed, ok, 5.0, start=100))) > 30
    with pytest.raises(WrongKeyError):
        run(pub, st.feed, StreamClient(ClientSettings(ZONE, passphrase="hunter3")), 1.0)
    with pytest.raises(KeyRequiredError):
        run(pub, st.feed, StreamClient(ClientSettings(ZONE)), 1.0)


def test_v2_server_restart_resets_and_resumes() -> None:
    pubs = [ZonePublisher(ZONE)]
    streams = [pubs[0].add_v2("main", v2.StreamConfig(), epoch=1)]
    for i in range(100):
        streams[0].feed(frame_bytes(i))

    class Switch:
        def snapshot(self):
            return pubs[-1].snapshot()

    def feed(frame: bytes) -> None:
        streams[-1].feed(frame)

    def restart(now: float) -> None:
        if now >= 6.0 and len(pubs) == 1:
            pubs.append(ZonePublisher(ZONE))
            streams.append(pubs[-1].add_v2("main", v2.StreamConfig(), epoch=2))
            for i in range(300):  # the new run has been going a while (20 s) when we notice
                streams[-1].feed(frame_bytes(i))

    client = StreamClient(ClientSettings(ZONE, target_seconds=1.0))
    items = run(Switch(), feed, client, 16.0, on_tick=restart)  # type: ignore[arg-type]
    assert client.stats.restarts == 1
    # It resumed near the new run's live edge, not from its oldest pack (20 s back).
    resumed = [i.number for i in items[-50:] if i.kind is ItemKind.FRAME]
    assert resumed[0] >= 300 - 40
    late = [i for i in items[-50:] if i.kind is ItemKind.FRAME]
    assert len(late) == 50  # playing the new run again at the end


def test_v1_gone_packs_are_skipped() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v1(packs=5)
    for i in range(200):
        st.feed(frame_bytes(i))
    client = StreamClient(ClientSettings(ZONE, version=1, target_seconds=1.0, retries=1))
    items = run(pub, st.feed, client, 12.0, lose={20, 21}, start=200)
    got = numbers(items)
    assert got == sorted(got)
    assert client.stats.packs_lost >= 2


class HeldIndex:
    """A resolver that keeps ``index.S.Z`` for ``hold`` seconds whatever its TTL (Knot Resolver
    keeps every answer at least 5 s); other names, fresh index names included, pass through."""

    def __init__(self, pub: ZonePublisher, hold: float) -> None:
        self.pub = pub
        self.hold = hold
        self.cached: tuple[float, object] | None = None
        self.names: list[str] = []

    def serve(self, client: StreamClient, req, now: float) -> None:
        self.names.append(req.name)
        snap = self.pub.snapshot()
        if req.name == f"index.main.{ZONE}":
            if self.cached is None or now - self.cached[0] >= self.hold:
                self.cached = (now, snap)
            snap = self.cached[1]
        serve_request(client, snap, req, now)  # type: ignore[arg-type]


def run_held(mode: str, hold: float, seconds: float) -> tuple[StreamClient, HeldIndex, list]:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("main", v2.StreamConfig(), epoch=5)
    for i in range(200):
        st.feed(frame_bytes(i))
    resolver = HeldIndex(pub, hold)
    client = StreamClient(
        ClientSettings(ZONE, target_seconds=3.0, fresh_index=mode, max_target_factor=1.0)
    )
    played = []
    now, n = 0.0, 200
    while now < seconds:
        st.feed(frame_bytes(n))
        n += 1
        for req in client.requests(now):
            resolver.serve(client, req, now)
        if client.ready:
            played.append(client.playout())
        now += FRAME
    return client, resolver, played


def test_auto_reads_the_index_under_fresh_names_when_a_resolver_holds_it() -> None:
    client, resolver, _ = run_held("auto", hold=5.0, seconds=30.0)
    assert client.stats.fresh_index
    assert client.jitter.underruns == 0
    fresh = [n for n in resolver.names if n.endswith(f".index.main.{ZONE}")]
    assert len(fresh) > 30 and len(set(fresh)) == len(fresh)  # every read a new name
    assert all(len(n.split(".")[0]) <= 63 for n in fresh)


def test_never_underruns_behind_a_held_index_and_auto_stays_plain_without_one() -> None:
    client, resolver, _ = run_held("never", hold=5.0, seconds=30.0)
    assert not client.stats.fresh_index
    assert client.jitter.underruns > 0  # what "auto" avoids
    assert all(not n.endswith(f".index.main.{ZONE}") for n in resolver.names)
    client, resolver, _ = run_held("auto", hold=1.0, seconds=30.0)  # the TTL honoured
    assert not client.stats.fresh_index
    assert client.jitter.underruns == 0


def test_always_starts_with_fresh_names_one_read_at_a_time() -> None:
    client = StreamClient(ClientSettings(ZONE, fresh_index="always", target_seconds=1.0))
    client.frame_seconds = FRAME  # as if the config had been read
    first = [r for r in client.requests(0.0) if r.kind is Kind.INDEX]
    again = [r for r in client.requests(1.0) if r.kind is Kind.INDEX]  # the first not answered
    assert len(first) == 1 and first[0].name.endswith(f".index.main.{ZONE}")
    assert again == []
    with pytest.raises(ValueError, match="fresh_index"):
        ClientSettings(ZONE, fresh_index="sometimes")
