"""A v2 stream that ends (a call hung up): the index's ``end=1``, the publisher, the client."""

from __future__ import annotations

import dns.rcode
import pytest

from audionet.dns.errors import StreamConfigError
from audionet.dns.proto import v2
from audionet.dns.proto.client import ClientSettings, StreamClient
from audionet.dns.proto.jitter import ItemKind, JitterBuffer
from audionet.dns.proto.publisher import ZonePublisher
from tests.dns.helpers import serve_request
from tests.dns.proto.test_publisher import ask

ZONE = "calls.test"
FRAME = 0.06


def test_index_end_flag_round_trip_and_old_readers() -> None:
    idx = v2.Index(0x1234ABCD, 7, 3, ended=True)
    assert idx.to_text() == b"epoch=1234abcd first=7 count=3 end=1"
    assert v2.Index.from_text(idx.to_text()) == idx
    assert v2.Index.from_text(b"epoch=1234abcd first=7 count=3") == v2.Index(0x1234ABCD, 7, 3)
    # a reader that only knows epoch/first/count (the same key=value parse) is not disturbed
    kv = dict(w.split("=", 1) for w in idx.to_text().decode().split())
    assert (kv["epoch"], kv["first"], kv["count"]) == ("1234abcd", "7", "3")


def test_ending_a_stream_publishes_its_tail_unlists_it_and_removal_deletes_it() -> None:
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("call-1", v2.StreamConfig(), epoch=5)
    for i in range(10):
        st.feed(bytes([i]) * 150)  # 7 per pack: one full pack, 3 frames waiting
    assert [len(p.frames) for p in st.kept] == [7]
    ended = pub.end_v2("call-1")
    assert ended is st and [len(p.frames) for p in st.kept] == [7, 3]
    idx = v2.Index.from_text(ask(pub, f"index.call-1.{ZONE}").answer[0][0].strings[0])
    assert idx.ended and (idx.first, idx.count) == (0, 2)
    assert [rd.strings for rd in ask(pub, f"streams.{ZONE}").answer[0]] == [(b"",)]
    with pytest.raises(KeyError):
        pub.end_v2("call-1")
    pub.remove_v2(st)
    for name in ("config", "index", "p0-00000005", "p1-00000005", "x.index"):
        assert ask(pub, f"{name}.call-1.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    live = pub.add_v2("call-2", v2.StreamConfig(), epoch=6)
    with pytest.raises(StreamConfigError, match="still live"):
        pub.remove_v2(live)


def play_stream(frames: int, target: float, join_after: int = 0) -> tuple[list, StreamClient]:
    """A stream of ``frames`` frames that then ends, and a client that joined after
    ``join_after`` frames; returns everything it played and the client."""
    pub = ZonePublisher(ZONE)
    st = pub.add_v2("c", v2.StreamConfig(), epoch=1)
    client = StreamClient(ClientSettings(ZONE, stream="c", target_seconds=target))
    played: list = []
    now, n = 0.0, 0
    while now < 60 and not client.finished:
        if n < frames:
            st.feed(n.to_bytes(4, "big") * 40)
            n += 1
            if n == frames:
                pub.end_v2("c")
        if n >= join_after:
            for req in client.requests(now):
                serve_request(client, pub.snapshot(), req, now)
            if client.ready:
                played.append(client.playout())
        now += FRAME
    return played, client


def test_the_client_plays_an_ended_stream_to_its_last_frame_and_finishes() -> None:
    played, client = play_stream(200, target=1.0)
    frames = [int.from_bytes(i.packet[:4], "big") for i in played if i.kind is ItemKind.FRAME]
    assert frames == list(range(frames[0], 200))  # to the very last frame, none missing
    assert client.finished and client.jitter.underruns == 0
    # once finished it stays so, and playout gives nothing more
    assert client.playout().kind is ItemKind.WAIT and client.finished


def test_a_call_shorter_than_the_buffer_target_still_plays() -> None:
    played, client = play_stream(20, target=3.0)  # 1.2 s of audio, 3 s target
    frames = [int.from_bytes(i.packet[:4], "big") for i in played if i.kind is ItemKind.FRAME]
    assert frames == list(range(20)) and client.finished


def test_joining_after_the_end_plays_the_tail_and_a_stream_with_nothing_ends_at_once() -> None:
    played, client = play_stream(100, target=1.0, join_after=100)
    frames = [int.from_bytes(i.packet[:4], "big") for i in played if i.kind is ItemKind.FRAME]
    assert frames and frames[-1] == 99 and client.finished
    pub = ZonePublisher(ZONE)
    pub.add_v2("c", v2.StreamConfig(), epoch=1)
    pub.end_v2("c")
    empty = StreamClient(ClientSettings(ZONE, stream="c"))
    for _ in range(5):
        for req in empty.requests(0.0):
            serve_request(empty, pub.snapshot(), req, 0.0)
    assert empty.finished


def test_a_final_buffer_plays_below_target_and_running_dry_is_not_an_underrun() -> None:
    jb = JitterBuffer(target=10)
    for n in range(3):
        jb.put(n, b"x")
    assert jb.pop().kind is ItemKind.WAIT  # 3 < 10: waits
    jb.final = True
    assert [jb.pop().kind for _ in range(4)] == [ItemKind.FRAME] * 3 + [ItemKind.WAIT]
    assert jb.drained and jb.underruns == 0


def test_removing_an_ended_run_keeps_a_new_run_under_the_same_name() -> None:
    pub = ZonePublisher(ZONE)
    old = pub.add_v2("c", v2.StreamConfig(), epoch=1)
    for i in range(8):
        old.feed(bytes([i]) * 150)
    pub.end_v2("c")
    new = pub.add_v2("c", v2.StreamConfig(), epoch=2)  # the same UUID calls again
    for i in range(8):
        new.feed(bytes([i]) * 150)
    pub.remove_v2(old)
    cfg = v2.StreamConfig.from_text(ask(pub, f"config.c.{ZONE}").answer[0][0].strings[0])
    idx = v2.Index.from_text(ask(pub, f"index.c.{ZONE}").answer[0][0].strings[0])
    assert cfg.epoch == 2 and idx.epoch == 2 and not idx.ended
    assert ask(pub, f"p0-00000001.c.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    assert ask(pub, f"p0-00000002.c.{ZONE}").rcode() == dns.rcode.NOERROR
