"""Whatever the peer does, a call sends one frame per 20 ms: over real sockets, on both event loops.

The peers (tests/audiosocket/peers.py) run in a process of their own with their own clocks: peers
that write our audio straight back (as Asterisk's ``Echo()`` does) at once or after 1, 5, 10 or
19 ms, callers that send in clumps, faster or slower than 50 frames/s, or nothing at all. For every
call the server's clock must send 50 frames/s (±0.5, as the peer hears them), at most 51 in any
1 s window (more only in a catch-up after a stall of the server's own loop, which the clock counts)
and never two closer than 10 ms (the times the clock decided each frame leaves).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

from audionet.audiosocket import Call, serve
from audionet.audiosocket.apps import make_app
from audionet.audiosocket.schedule import MIN_GAP
from tests.audiosocket.test_fastpath import run_on
from tests.audiosocket.util import tagged_audio

PEERS = Path(__file__).with_name("peers.py")
SECONDS = 4.0


class Timed:
    """Notes, for each call of an app, when its clock let each frame leave (the ``now`` of the
    decision, which the connection keeps as ``_last``) and how many frames had then left late
    or in a catch-up (a loop held up: what may put a 52nd frame in a second)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: dict[str, list[float]] = {}
        self.excused: dict[str, list[int]] = {}
        self.links: dict[str, Any] = {}
        started = app.started

        def timed_started(call: Call) -> None:
            started(call)
            link = call._link
            write = link._write  # type: ignore[attr-defined]
            times = self.times.setdefault(str(call.uuid), [])
            excused = self.excused.setdefault(str(call.uuid), [])
            self.links[str(call.uuid)] = link

            def timed(message: bytes) -> object:
                times.append(link._last)  # type: ignore[attr-defined]
                excused.append(link.late + link.caught_up)  # type: ignore[attr-defined]
                return write(message)

            link._write = timed  # type: ignore[attr-defined]

        app.started = timed_started


async def run_peers(peers: list[dict[str, Any]], seconds: float = SECONDS) -> list[dict[str, Any]]:
    spec = json.dumps({"seconds": seconds, "peers": peers})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PEERS), spec, stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), seconds + 20)
    assert proc.returncode == 0
    result: list[dict[str, Any]] = json.loads(out)
    return result


def max_in_window(times: list[float], excused: list[int], window: float = 1.0) -> int:
    """The most frames in any ``window`` s, less those of them excused (a frame that left late
    or in a catch-up may bring one more into its second)."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        before = excused[j - 1] if j else 0  # (the count includes the frame it was noted at)
        best = max(best, i - j + 1 - (excused[i] - before))
    return best


def middle_rate(times: list[float], trim: float = 0.5) -> float:
    """Frames a second over ``times`` without their first and last ``trim`` s."""
    middle = [t for t in times if times[0] + trim <= t <= times[-1] - trim]
    return (len(middle) - 1) / (middle[-1] - middle[0])


def check_paced(name: str, heard: list[float], sent: list[float], excused: list[int]) -> None:
    """The peer heard 50 frames/s (±0.5) and the clock let them leave at most 51 in any second
    (but for a frame more in a second where the loop was held up), never two within MIN_GAP."""
    # (over the middle of the call: the peer's first reads may come late, in one batch, as its
    # threads start, and a first frame of ours that left late, as the servers and peers all
    # start at once, shortens the span of a whole call; every second is checked below)
    rate = middle_rate(heard)
    assert abs(rate - 50) <= 0.5, f"{name}: the peer heard {rate:.2f} frames/s"
    assert len(heard) >= 50 * (SECONDS - 0.5), f"{name}: {len(heard)} frames heard"
    sent_rate = middle_rate(sent)
    assert abs(sent_rate - 50) <= 0.5, f"{name}: the server sent {sent_rate:.2f} frames/s"
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= MIN_GAP - 1e-9, f"{name}: two frames {min(gaps) * 1000:.2f} ms apart"
    most = max_in_window(sent, excused)
    assert most <= 51, f"{name}: {most} frames in one second ({excused[-1]} late or caught up)"


def play_file(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tagged_audio(seconds))
    return path


async def every_app(tmp: Path) -> None:
    apps = {
        "echo": "echo",
        "tone": "tone:440",
        "silence": "silence",
        "play": f"play:{play_file(tmp / 'long.wav', SECONDS + 2)}",
        "record": f"record:{tmp}",
    }
    timed = {name: Timed(make_app(spec)) for name, spec in apps.items()}
    servers = [await serve(t.app, "127.0.0.1", 0) for t in timed.values()]
    try:
        results = await run_peers([{"port": s.port, "kind": "echo"} for s in servers])
    finally:
        for s in servers:
            s.close()
        for s in servers:
            await s.wait_closed()
    for (name, t), r in zip(timed.items(), results, strict=True):
        u = r["uuid"]
        check_paced(f"{name} app", r["heard"], t.times[u], t.excused[u])
        assert r["hangup"] or name != "play"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_every_app_sends_50_frames_a_second_to_a_peer_that_echoes_at_once(
    loop: str, tmp_path: Path
) -> None:
    run_on(loop, every_app(tmp_path))


BEHAVIOURS: dict[str, dict[str, Any]] = {
    "echo at once": {"kind": "echo"},
    "echo after 1 ms": {"kind": "echo", "delay": 0.001},
    "echo after 5 ms": {"kind": "echo", "delay": 0.005},
    "echo after 10 ms": {"kind": "echo", "delay": 0.010},
    "echo after 19 ms": {"kind": "echo", "delay": 0.019},
    "clumps of five": {"kind": "caller", "burst": 5},
    "silent": {"kind": "silent"},
    "faster, 55 frames/s": {"kind": "caller", "rate": 55.0},
    "slower, 45 frames/s": {"kind": "caller", "rate": 45.0},
    "steady 50 frames/s": {"kind": "caller", "phase": 0.007},
    "steady, waits for our audio": {"kind": "caller", "wait": True},
}


async def every_behaviour() -> None:
    timed = Timed(make_app("echo"))
    async with serve(timed.app, "127.0.0.1", 0) as server:
        peers = [{"port": server.port, **b} for b in BEHAVIOURS.values()]
        results = await run_peers(peers)
    for name, r in zip(BEHAVIOURS, results, strict=True):
        u = r["uuid"]
        check_paced(name, r["heard"], timed.times[u], timed.excused[u])
        echoed = [t for t in r["tags"] if t >= 0]
        if BEHAVIOURS[name]["kind"] == "caller" and name != "faster, 55 frames/s":
            # every frame the caller sent came back once, in order (the last few may still have
            # been queued when it hung up)
            assert echoed == list(range(len(echoed))), name
            assert len(echoed) >= len(r["sent"]) - 12, name
    fast = results[list(BEHAVIOURS).index("faster, 55 frames/s")]
    # a caller faster than the clock fills the echo's queue, which drops the oldest beyond 0.2 s
    assert len([t for t in fast["tags"] if t >= 0]) < len(fast["sent"])


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_whatever_the_peer_does_each_call_sends_50_frames_a_second(loop: str) -> None:
    run_on(loop, every_behaviour())
