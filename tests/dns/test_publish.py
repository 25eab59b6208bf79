"""RFC 2136 publishing: the UPDATE messages, and a real BIND primary fed by our broadcaster."""

from __future__ import annotations

import base64
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

from audionet.audio.analysis import dominant_frequency
from audionet.dns.broadcast import ServeOptions
from audionet.dns.client import DnsFetcher, Player
from audionet.dns.errors import DnsError
from audionet.dns.localresolver import run_resolver
from audionet.dns.proto.client import ClientSettings
from audionet.dns.publish import DynamicPublisher, TsigKey, build_update
from audionet.errors import ConfigError
from tests.conftest import require_binary
from tests.dns.helpers import SinkBox, broadcast

ZONE = "pub.example.com"
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_tsig_key_parse() -> None:
    assert TsigKey.parse(f"up:{SECRET}") == TsigKey("up", SECRET)
    assert TsigKey.parse(f"hmac-sha512:up:{SECRET}").algorithm == "hmac-sha512"
    for bad in ["nokey", "a:b:c:d", "up:not*base64"]:
        with pytest.raises(ConfigError):
            TsigKey.parse(bad)


def test_build_update_sections_and_signature() -> None:
    changes = [
        (f"p1.main.{ZONE}", 20, ((b"a", b"b"),)),
        (f"index.main.{ZONE}", 1, ((b"epoch=1 first=0 count=2",),)),
        (f"p0.main.{ZONE}", 0, None),
    ]
    u = build_update(ZONE, changes, TsigKey("up", SECRET))
    wire = u.to_wire()
    back = dns.message.from_wire(wire, keyring=TsigKey("up", SECRET).keyring())
    assert back.had_tsig
    names = [str(r.name) for r in back.update]  # type: ignore[attr-defined]
    assert f"p0.main.{ZONE}." in names and f"p1.main.{ZONE}." in names
    adds = [r for r in back.update if r.ttl == 20]  # type: ignore[attr-defined]
    assert adds and adds[0][0].strings == (b"a", b"b")


def test_added_and_expired_in_one_batch_is_only_deleted() -> None:
    name = f"p5.main.{ZONE}"
    u = build_update(ZONE, [(name, 20, ((b"x",),)), (name, 0, None)], None)
    assert all(r.rdclass != dns.rdataclass.IN or r.ttl == 0 for r in u.update)  # type: ignore[attr-defined]


@pytest.mark.daemon
async def test_bind_primary_carries_the_stream(tmp_path: Path) -> None:
    binary = require_binary("named", "bind9")
    key = ("up", SECRET, "hmac-sha256")
    with run_resolver("named-primary", binary, tmp_path / "bind", ZONE, 0, key) as bind_port:
        opts = ServeOptions(ZONE, port=0, publish=("127.0.0.1", bind_port, TsigKey(*key)))
        async with broadcast(opts) as b:
            box = SinkBox()
            settings = ClientSettings(ZONE, target_seconds=1.0)
            # The listener asks BIND, not our server.
            player = Player(settings, DnsFetcher("127.0.0.1", bind_port), box)
            report = await player.run(4.0, give_up=15)
            assert b.dynamic is not None and b.dynamic.sent > 3 and b.dynamic.failed == 0
            assert b.metrics.total == 0  # nobody asked our own server
        assert box.sink is not None
        assert abs(dominant_frequency(box.sink.pcm, box.sink.format) - 440) < 3
        assert report.underruns == 0 and report.concealed == 0

        bad = DynamicPublisher(
            ZONE, "127.0.0.1", bind_port, TsigKey("up", base64.b64encode(b"x" * 32).decode())
        )
        with pytest.raises(DnsError, match=r"NOTAUTH|BADSIG|refused|failed"):
            await bad.send([(f"x.{ZONE}", 5, ((b"x",),))])
