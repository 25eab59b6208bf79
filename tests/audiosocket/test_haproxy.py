"""Behind a real HAProxy in ``mode tcp`` (what docs/audiosocket.md recommends across machines):
calls spread over two servers, echo stays exact, hangups pass both ways, a bad call ends alone."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from audionet.audiosocket import connect, serve
from audionet.audiosocket.apps import EchoApp
from audionet.audiosocket.call import Call
from audionet.dns.localresolver import free_port
from tests.audiosocket.util import RawPeer, ends_with_hangup, strip_silence, tagged_audio
from tests.conftest import require_binary

pytestmark = [pytest.mark.daemon]


def haproxy_cfg(port: int, backends: list[int]) -> str:
    servers = "\n".join(f"    server s{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    return f"""global
    maxconn 1000
    nbthread 1  # one thread: round robin in exact connection order
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend audiosocket
    bind 127.0.0.1:{port}
    default_backend calls
backend calls
    balance roundrobin
{servers}
"""


@contextlib.asynccontextmanager
async def haproxy(tmp_path: Path, backends: list[int]) -> AsyncIterator[int]:
    binary = require_binary("haproxy")
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(haproxy_cfg(port, backends))
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        for _ in range(100):  # until it accepts
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            await asyncio.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


async def test_echo_calls_spread_over_two_servers(tmp_path: Path) -> None:
    async with (
        serve(EchoApp(), "127.0.0.1", 0) as a,
        serve(EchoApp(), "127.0.0.1", 0) as b,
        haproxy(tmp_path, [a.port, b.port]) as port,
    ):
        calls = [await connect("127.0.0.1", port) for _ in range(6)]
        sent = [tagged_audio(0.4, seed=i) for i in range(6)]
        for call, pcm in zip(calls, sent, strict=True):
            call.send_audio(pcm)
        for call in calls:
            await call.drain()
        await asyncio.sleep(0.3)
        for call in calls:
            await call.hangup()  # Asterisk's way: close; the proxy passes the EOF on
        for _ in range(50):
            if not a.calls and not b.calls:
                break
            await asyncio.sleep(0.05)
        assert not a.calls and not b.calls
        served = (a.stats.calls_total, b.stats.calls_total)
    for call, pcm in zip(calls, sent, strict=True):
        assert strip_silence(call.received) == pcm
        assert call.violations == []
    assert served == (3, 3)  # round robin through the proxy


async def test_server_hangup_and_a_bad_call_through_the_proxy(tmp_path: Path) -> None:
    async def handler(call: Call) -> None:
        await asyncio.sleep(0.2)
        await call.hangup()

    async with (
        serve(handler, "127.0.0.1", 0) as server,
        haproxy(tmp_path, [server.port]) as port,
    ):
        good = await connect("127.0.0.1", port)
        bad = await RawPeer.open(port, send_uuid=False)
        bad.send(b"\x10\x00\x04abcd")  # audio before the UUID: a protocol violation
        data = await bad.read_all()
        await asyncio.wait_for(good.wait_closed(), 5)
    assert ends_with_hangup(data)
    assert good.end_reason == "server sent a hangup message" and good.violations == []
