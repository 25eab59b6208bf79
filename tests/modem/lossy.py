"""Test helper: two hosts on an in-memory full-duplex link that drops, duplicates, delays,
reorders and corrupts frames, in virtual time (event-driven, so minutes of link time take
milliseconds)."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from audionet.modem.proto.frame import AUDIONET, FrameError, FrameProfile
from audionet.modem.proto.host import ConnectionHost, HostEvent


@dataclass
class Faults:
    drop: float = 0.0  #: probability a frame is lost
    duplicate: float = 0.0  #: probability a frame arrives twice
    reorder: float = 0.0  #: probability a frame is held back by up to ``max_delay``
    corrupt: float = 0.0  #: probability one bit is flipped (the frame checksum must catch it)
    max_delay: float = 1.0


@dataclass
class LossyPair:
    a: ConnectionHost
    b: ConnectionHost
    rng: random.Random
    faults: Faults = field(default_factory=Faults)
    bitrate: float = 5000.0  #: bit/s of each direction (frames take air time)
    delay: float = 0.02  #: propagation and processing delay
    profile: FrameProfile = AUDIONET
    now: float = 0.0
    events: tuple[list[HostEvent], list[HostEvent]] = field(default_factory=lambda: ([], []))
    frames: int = 0
    _arrivals: list[tuple[float, int, int, bytes]] = field(default_factory=list)
    _tx_free: list[float] = field(default_factory=lambda: [0.0, 0.0])
    _busy: list[bool] = field(default_factory=lambda: [False, False])
    _counter: int = 0

    @property
    def hosts(self) -> tuple[ConnectionHost, ConnectionHost]:
        return self.a, self.b

    def _schedule(self, to: int, at: float, data: bytes) -> None:
        self._counter += 1
        heapq.heappush(self._arrivals, (at, self._counter, to, data))

    def _send(self, side: int, data: bytes, end: float) -> None:
        f, to = self.faults, 1 - side
        if self.rng.random() < f.drop:
            return
        copies = 2 if self.rng.random() < f.duplicate else 1
        for _ in range(copies):
            at = end + self.delay
            if self.rng.random() < f.reorder:
                at += self.rng.uniform(0, f.max_delay)
            wire = bytearray(data)
            if self.rng.random() < f.corrupt:
                bit = self.rng.randrange(len(wire) * 8)
                wire[bit // 8] ^= 1 << (bit % 8)
            self._schedule(to, at, bytes(wire))

    def process(self) -> None:
        """Everything due at ``now``: arrivals, timers, then frames onto free lines."""
        while self._arrivals and self._arrivals[0][0] <= self.now:
            _, _, to, data = heapq.heappop(self._arrivals)
            try:
                frame = self.profile.decode(data)
            except FrameError:
                continue
            self.hosts[to].receive_frame(frame, self.now)
        for host in self.hosts:
            timer = host.get_timer()
            if timer is not None and timer <= self.now:
                host.handle_timer(self.now)
        for side, host in enumerate(self.hosts):
            self._busy[side] = False
            if self._tx_free[side] <= self.now:
                frame = host.poll_frame(self.now)
                if frame is not None:
                    data = self.profile.encode(frame)
                    end = self.now + (len(data) + 10) * 8 / self.bitrate
                    self._tx_free[side] = end
                    self._busy[side] = True
                    self.frames += 1
                    self._send(side, data, end)
            else:
                self._busy[side] = True
        for side, host in enumerate(self.hosts):
            while (event := host.next_event()) is not None:
                self.events[side].append(event)

    def next_time(self) -> float | None:
        times = [self._arrivals[0][0]] if self._arrivals else []
        times += [t for h in self.hosts if (t := h.get_timer()) is not None]
        times += [self._tx_free[s] for s in (0, 1) if self._busy[s]]
        return min(times) if times else None

    def run(self, seconds: float, until: object = None, max_steps: int = 200_000) -> bool:
        """Run for ``seconds`` of link time, or until ``until()`` is true; return whether it was."""
        end = self.now + seconds
        check = until if callable(until) else None
        self.process()
        for _ in range(max_steps):
            if check is not None and check():
                return True
            t = self.next_time()
            if t is None or t > end:
                self.now = end
                self.process()
                return check() if check is not None else False
            self.now = max(self.now, t)
            self.process()
        raise AssertionError("simulation did not settle (a timer that never advances?)")
