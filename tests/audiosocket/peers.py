"""AudioSocket peers with their own timing, run in a process of their own by the tests (so that
their clocks do not share the server's interpreter): ``python peers.py SPEC_JSON`` prints JSON.

SPEC: ``{"seconds": S, "peers": [{"port": P, "kind": K, ...}, ...]}``; kinds:

* ``echo`` (``delay`` s, default 0): writes every audio message it receives back, ``delay`` after
  it arrived, as Asterisk's ``Echo()`` does (at once).
* ``caller`` (``rate`` frames/s, ``phase`` s, ``burst`` frames per write, ``wait``): sends tagged
  320-byte frames on its own clock, like Asterisk's ``AudioSocket()`` application (``wait``: not
  before the server's first audio, like the channel driver).
* ``silent``: sends the UUID and nothing else.

Each peer sends its UUID, runs ``seconds``, then closes without a hangup message (as Asterisk
does). Output per peer: ``heard`` (arrival times of the server's audio messages, time.monotonic),
``tags`` (per message: the caller frame it echoes, -1 for anything else), ``sent`` (send times of
the peer's own frames), ``uuid``, ``hangup`` (the server sent a hangup message).
"""

from __future__ import annotations

import contextlib
import heapq
import json
import socket
import struct
import sys
import threading
import time
import uuid
from typing import Any

FRAME = 320
HEAD = struct.Struct(">BH")


class Peer:
    def __init__(self, spec: dict[str, Any], seconds: float) -> None:
        self.spec = spec
        self.seconds = seconds
        self.uuid = uuid.uuid4()
        self.heard: list[float] = []
        self.tags: list[int] = []
        self.sent: list[float] = []
        self.hangup = False
        self.first = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.pending: list[tuple[float, int, bytes]] = []  # echoes to write later
        self.wake = threading.Condition(self.lock)
        self.order = 0

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.spec["port"]), timeout=5)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        sock.sendall(HEAD.pack(0x01, 16) + self.uuid.bytes)
        threads = [threading.Thread(target=self.read)]
        kind = self.spec["kind"]
        if kind == "caller":
            threads.append(threading.Thread(target=self.call))
        elif kind == "echo" and self.spec.get("delay", 0) > 0:
            threads.append(threading.Thread(target=self.delayed))
        for t in threads:
            t.start()
        time.sleep(self.seconds)
        self.stop.set()
        with self.lock:
            self.wake.notify_all()
        for t in threads[1:]:
            t.join()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)  # Asterisk closes without a hangup message
        threads[0].join(5)
        sock.close()

    def read(self) -> None:
        buf = b""
        delay = self.spec.get("delay", 0)
        echo = self.spec["kind"] == "echo"
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            now = time.monotonic()
            if not data:
                return
            buf += data
            while len(buf) >= 3:
                kind, length = HEAD.unpack_from(buf)
                if len(buf) < 3 + length:
                    break
                msg, buf = buf[: 3 + length], buf[3 + length :]
                if kind == 0x00:
                    self.hangup = True
                    continue
                if 0x10 <= kind <= 0x18:
                    self.heard.append(now)
                    payload = msg[3:]
                    tag = struct.unpack_from(">I", payload)[0] - 1 if len(payload) >= 4 else -1
                    self.tags.append(tag if payload[4:8] == b"\xa5\xa5\xa5\xa5" else -1)
                    self.first.set()
                    if echo and not self.stop.is_set():
                        if delay <= 0:
                            try:
                                self.sock.sendall(msg)
                            except OSError:
                                return
                        else:
                            with self.lock:
                                self.order += 1
                                heapq.heappush(self.pending, (now + delay, self.order, msg))
                                self.wake.notify()

    def delayed(self) -> None:
        with self.lock:
            while not self.stop.is_set():
                if not self.pending:
                    self.wake.wait(0.05)
                    continue
                at = self.pending[0][0]
                wait = at - time.monotonic()
                if wait > 0:
                    self.wake.wait(wait)
                    continue
                _, _, msg = heapq.heappop(self.pending)
                try:
                    self.sock.sendall(msg)
                except OSError:
                    return

    def call(self) -> None:
        rate = self.spec.get("rate", 50.0)
        burst = self.spec.get("burst", 1)
        if self.spec.get("wait", False) and not self.first.wait(5):
            return
        start = time.monotonic() + self.spec.get("phase", 0.0)
        k = 0
        while not self.stop.is_set():
            at = start + (k + burst - 1) / rate
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            batch = b""
            for seq in range(k, k + burst):
                batch += HEAD.pack(0x10, FRAME) + struct.pack(">I", seq + 1)
                batch += b"\xa5" * 4 + bytes(FRAME - 8)
            now = time.monotonic()
            try:
                self.sock.sendall(batch)
            except OSError:
                return
            self.sent.extend([now] * burst)
            k += burst

    def result(self) -> dict[str, Any]:
        return {
            "uuid": str(self.uuid),
            "heard": self.heard,
            "tags": self.tags,
            "sent": self.sent,
            "hangup": self.hangup,
        }


def main() -> None:
    spec = json.loads(sys.argv[1])
    peers = [Peer(p, spec["seconds"]) for p in spec["peers"]]
    threads = [threading.Thread(target=p.run) for p in peers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump([p.result() for p in peers], sys.stdout)


if __name__ == "__main__":
    main()
