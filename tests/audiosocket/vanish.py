"""A peer that vanishes without a FIN or RST, for real: run by test_gone.py as
``unshare -rn python -m tests.audiosocket.vanish`` (a network namespace of its own, so nothing here touches the
machine's network). Prints one JSON object.

In the namespace: two servers (one sending silence, one with ``silence=False``, so idle), each
called by a peer in a nested namespace over a veth pair (10.77.0.2 -> 10.77.0.1); once the calls
are up the peers' link goes down, so every packet between them and us is lost and nothing
(no FIN, no RST, no ACK) comes back, as when a host disappears. Meanwhile a good caller talks to
the first server over loopback. Reported: when each vanished call ended and why, the server
port's entries in /proc/net/tcp, the calls left, tasks left, and the good call's frame times.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from audionet.audiosocket import Audio, Call, Error, Hangup, connect, serve
from tests.audiosocket.util import socket_states

PEER = r"""
import socket, sys, time, uuid
for port in sys.argv[1:]:
    for _ in range(500):
        try:
            s = socket.create_connection(("10.77.0.1", int(port)), timeout=1)
            break
        except OSError:
            time.sleep(0.01)
    s.sendall(b"\x01\x00\x10" + uuid.uuid4().bytes + b"\x10\x01\x40" + bytes(320))
    globals().setdefault("socks", []).append(s)
print("up", flush=True)
time.sleep(60)
"""

TIMEOUT = 2.0  # write_timeout: TCP_USER_TIMEOUT
KEEPALIVE = 1.0


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


class Watch:
    def __init__(self) -> None:
        self.ends: dict[str, tuple[float, str, str]] = {}

    async def __call__(self, call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Hangup | Error):
                reason = ev.reason if isinstance(ev, Hangup) else ev.message
                self.ends[str(call.peer[0])] = (time.monotonic(), type(ev).__name__, reason)
            elif isinstance(ev, Audio):
                pass


async def main() -> dict[str, Any]:
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    sh("ip", "addr", "add", "10.77.0.1/24", "dev", "v0")
    sh("ip", "link", "set", "v0", "up")
    watches = [Watch(), Watch()]
    options = {"write_timeout": TIMEOUT, "keepalive": KEEPALIVE}
    async with (
        serve(watches[0], "0.0.0.0", 0, **options) as active,
        serve(watches[1], "0.0.0.0", 0, silence=False, **options) as idle,
    ):
        peer = subprocess.Popen(
            ["unshare", "-n", sys.executable, "-c", PEER, str(active.port), str(idle.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        netns = f"--net=/proc/{peer.pid}/ns/net"
        for _ in range(100):  # until the child has its own namespace
            if os.readlink(f"/proc/{peer.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                break
            time.sleep(0.01)
        sh("ip", "link", "set", "v1", "netns", str(peer.pid))
        sh("nsenter", netns, "ip", "addr", "add", "10.77.0.2/24", "dev", "v1")
        sh("nsenter", netns, "ip", "link", "set", "v1", "up")
        assert peer.stdout is not None
        assert peer.stdout.readline().strip() == "up"
        good = await connect("127.0.0.1", active.port)
        good.send_audio(bytes(320) * 300)  # 6 s of audio, like Asterisk
        await asyncio.sleep(1.0)
        calls_before = (len(active.connections), len(idle.connections))
        sh("nsenter", netns, "ip", "link", "set", "v1", "down")  # the peer is gone
        vanished = time.monotonic()
        for _ in range(100):
            if len(watches[0].ends) == 1 and len(watches[1].ends) == 1:
                break
            await asyncio.sleep(0.1)
        peer.kill()
        peer.wait()
        await asyncio.sleep(0.2)
        after = {
            "active": socket_states(active.port),
            "idle": socket_states(idle.port),
            "calls": (len(active.connections), len(idle.connections)),
        }
        await good.drain()
        await good.hangup()
    await asyncio.sleep(0.1)
    ends = {
        name: w.ends.get("10.77.0.2") for name, w in zip(("active", "idle"), watches, strict=True)
    }
    return {
        "calls_before": calls_before,
        "ended_after": {k: (v[0] - vanished if v else None) for k, v in ends.items()},
        "ends": ends,
        "after": after,
        "tasks_left": len(asyncio.all_tasks()) - 1,
        "good_times": good.audio_times,
        "good_violations": [v.message for v in good.violations],
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
