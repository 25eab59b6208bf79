"""Peers that go away badly: one that shuts down its write side, one that stops reading, one that
vanishes without a FIN. Each call ends, our end of its socket is closed (never left in CLOSE_WAIT,
checked in the kernel's socket table), no task is left behind, and the other calls go on.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from audionet.audiosocket import Audio, Call, Error, Hangup, connect, serve
from audionet.audiosocket.proto import encode_audio, encode_uuid
from tests.audiosocket.test_fastpath import run_on
from tests.audiosocket.util import ends_with_hangup, socket_states, strip_silence, tagged_audio

REPO = Path(__file__).resolve().parents[2]


class Ends:
    """A call-API echo noting how each call ended."""

    def __init__(self) -> None:
        self.ends: list[Hangup | Error] = []

    async def __call__(self, call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Audio):
                call.send(ev.pcm)
            elif isinstance(ev, Hangup) or (isinstance(ev, Error) and ev.fatal):
                self.ends.append(ev)


async def good_call(port: int, seconds: float) -> tuple[list[float], bytes, list[str]]:
    """An Asterisk-like call beside the bad ones: its frame times, its echo, its violations."""
    call = await connect("127.0.0.1", port)
    pcm = tagged_audio(seconds, seed=9)
    call.send_audio(pcm)
    await call.drain()
    await asyncio.sleep(0.3)
    await call.hangup()
    return call.audio_times, strip_silence(call.received), [v.message for v in call.violations]


async def echo(call: Call) -> None:
    async for ev in call:
        if isinstance(ev, Audio):
            call.send(ev.pcm)


def ours_in_close_wait(port: int) -> list[tuple[int, int, str]]:
    """Our (the server's) ends of its connections that the peer closed but we did not."""
    return [s for s in socket_states(port) if s[0] == port and s[2] == "CLOSE_WAIT"]


FRAME = encode_audio(bytes(320))
HALF_CLOSES = {
    "before its UUID": b"",
    "after its UUID": b"",
    "mid-call": FRAME * 10,
    "in the middle of a message": FRAME * 3 + FRAME[:100],
}


async def half_closers() -> None:
    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.port
        good = asyncio.create_task(good_call(server.port, 1.5))
        loop = asyncio.get_running_loop()
        socks = []
        for name, data in HALF_CLOSES.items():
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, ("127.0.0.1", server.port))
            if name != "before its UUID":
                data = encode_uuid(uuid.uuid4()) + data
            if data:
                await loop.sock_sendall(sock, data)
            await asyncio.sleep(0.2)
            sock.shutdown(socket.SHUT_WR)  # a FIN: no more from us, but we still read
            socks.append(sock)
        for name, sock in zip(HALF_CLOSES, socks, strict=True):
            received = b""
            while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
                received += chunk
            assert ends_with_hangup(received), name  # a hangup message, then the server closed
        await asyncio.sleep(0.1)
        assert ours_in_close_wait(server.port) == []
        assert len(server.connections) == 1  # the good call, still going
        for sock in socks:
            sock.close()
        times, echoed, violations = await good
        assert echoed == tagged_audio(1.5, seed=9) and violations == []
        rate = (len(times) - 1) / (times[-1] - times[0])
        assert rate == pytest.approx(50, abs=1.5)
    assert ours_in_close_wait(port) == []
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) == 1  # only this coroutine's own task


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_peers_that_shut_down_their_write_side(loop: str) -> None:
    run_on(loop, half_closers())


async def a_peer_that_stops_reading() -> None:
    ends = Ends()
    async with serve(ends, "127.0.0.1", 0, write_timeout=1.0, send_buffer=4096) as server:
        good = asyncio.create_task(good_call(server.port, 2.5))
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        await loop.sock_sendall(sock, encode_uuid(uuid.uuid4()))  # then reads nothing
        for _ in range(100):
            if ends.ends:
                break
            await asyncio.sleep(0.05)
        # dropped after write_timeout: by our clock (the queue stands unread) or, first, by the
        # kernel (TCP_USER_TIMEOUT: its zero-window probes unanswered)
        assert len(ends.ends) == 1
        end = ends.ends[0]
        assert (isinstance(end, Error) and "read nothing" in end.message) or (
            isinstance(end, Hangup) and "timed out" in end.reason
        ), end
        await asyncio.sleep(0.1)
        assert ours_in_close_wait(server.port) == []
        ours = [s for s in socket_states(server.port) if s[0] == server.port and s[1] != 0]
        assert len(ours) == 1  # the good call's: the dropped one's socket is gone
        assert len(server.connections) == 1
        sock.close()
        _, echoed, violations = await good
        assert violations == [] and len(echoed) == 2.5 * 16000
    await asyncio.sleep(0.05)
    assert len(asyncio.all_tasks()) == 1


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_peer_that_stops_reading(loop: str) -> None:
    run_on(loop, a_peer_that_stops_reading())


def test_a_peer_that_vanishes_without_a_fin() -> None:
    """A peer whose host disappears (its link goes down: no FIN, no RST, no ACK ever again), in a
    network namespace of the test's own (tests/audiosocket/vanish.py). The kernel ends the call
    that sends (TCP_USER_TIMEOUT = write_timeout, 2 s there) and the idle one (silence off:
    keepalive probes after 1 s); nothing is left in the socket table or the task list, and a
    call over loopback beside them goes on."""
    result = None
    errors = []
    for unshare in (["unshare", "-rn"], ["unshare", "-n"]):  # (a user namespace, or root)
        proc = subprocess.run(
            [*unshare, sys.executable, "-m", "tests.audiosocket.vanish"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if proc.returncode == 0:
            result = json.loads(proc.stdout)
            break
        errors.append(proc.stderr.strip().splitlines()[-1:] or [str(proc.returncode)])
    if result is None:
        message = f"cannot make a network namespace here (unshare): {errors}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {message}")
        pytest.skip(message)
    check_vanished(result)


def check_vanished(r: dict[str, Any]) -> None:
    assert r["calls_before"] == [2, 1]  # the vanishing call and the good one; the idle one
    for name, within in (("active", 3.0), ("idle", 3.0)):
        _, kind, reason = r["ends"][name]
        assert r["ended_after"][name] < within, (name, r["ended_after"])
        assert kind == "Hangup" and "timed out" in reason, (name, reason)
    # no socket of the vanished calls is left (our ends of both are gone)
    assert [s for s in r["after"]["idle"] if s[2] != "LISTEN"] == []
    active = [s for s in r["after"]["active"] if s[2] != "LISTEN"]
    assert len(active) == 2 and all(s[2] == "ESTABLISHED" for s in active)  # the good call
    assert r["after"]["calls"] == [1, 0]
    assert r["tasks_left"] == 0
    times = r["good_times"]
    assert (len(times) - 1) / (times[-1] - times[0]) == pytest.approx(50, abs=1.5)
    assert r["good_violations"] == []
