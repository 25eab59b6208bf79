"""A jitter buffer of numbered codec frames (pure data structure, no clock).

Frames are put in by number, in any order; :meth:`pop` hands out one item per playout tick: the next
frame, a concealment marker for a frame that is missing while later ones are here (the decoder's
packet-loss concealment fills it), or an underrun marker when nothing is left. Playback starts, and
restarts after an underrun, once ``target`` frames are buffered ahead of the cursor. With
``max_target`` above ``target`` the buffer adapts: an underrun that comes within ``window`` played
frames of the previous one raises the target by half (up to ``max_target``), so a path that
delivers in bursts, such as a resolver that holds answers longer than their TTL, costs a few
rebufferings instead of one every few seconds, while a single outage leaves the target alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ItemKind(Enum):
    FRAME = "frame"  #: a packet to decode
    CONCEAL = "conceal"  #: a lost frame: decode(None)
    WAIT = "wait"  #: not playing (starting or rebuffering): output silence or nothing


@dataclass(frozen=True, slots=True)
class Item:
    kind: ItemKind
    packet: bytes = b""
    number: int = -1


WAIT = Item(ItemKind.WAIT)


class JitterBuffer:
    def __init__(
        self,
        target: int,
        capacity: int = 10_000,
        max_target: int | None = None,
        window: int = 500,
    ) -> None:
        if target < 1:
            raise ValueError("target must be at least one frame")
        self.target = target
        self.max_target = max_target
        self.window = window
        self._last_underrun: int | None = None  # ``played + concealed`` at the last underrun
        self.capacity = capacity
        self._frames: dict[int, bytes] = {}
        self.cursor: int | None = None
        self.playing = False
        self.started = False  #: True once playback began the first time
        self.high = -1  #: highest frame number received
        self.underruns = 0
        self.concealed = 0
        self.late = 0
        self.played = 0
        #: Set when no frame will come after ``high`` (the stream ended): what is here plays out
        #: even below the target, and running dry then is the end, not an underrun.
        self.final = False

    def reset(self) -> None:
        """Forget everything (the stream restarted with new frame numbers)."""
        self._frames.clear()
        self.cursor = None
        self.high = -1
        self.started = False
        self.final = False
        if self.playing:
            self.playing = False
            self.underruns += 1

    def put(self, number: int, packet: bytes) -> bool:
        """Store a frame; False when it is late (already played or concealed) or a duplicate."""
        if self.started and self.cursor is not None and number < self.cursor:
            self.late += 1
            return False
        if number in self._frames:
            return False
        if self.cursor is None or number < self.cursor:
            self.cursor = number  # before playback starts, the oldest frame sets the cursor
        self._frames[number] = packet
        self.high = max(self.high, number)
        if len(self._frames) > self.capacity:
            self._drop_oldest()
        return True

    def _drop_oldest(self) -> None:
        oldest = min(self._frames)
        del self._frames[oldest]
        if self.cursor is not None and self.cursor <= oldest:
            self.cursor = oldest + 1

    @property
    def depth(self) -> int:
        """Frames from the cursor to the highest received (what playback has ahead of it)."""
        if self.cursor is None or self.high < self.cursor:
            return 0
        return self.high - self.cursor + 1

    @property
    def drained(self) -> bool:
        """The stream ended (:attr:`final`) and everything in it has been played."""
        return self.final and self.depth == 0

    def pop(self) -> Item:
        if not self.playing:
            if self.cursor is None or self.depth < (1 if self.final else self.target):
                return WAIT
            self.playing = True
            self.started = True
        assert self.cursor is not None
        n = self.cursor
        if n > self.high:
            self.playing = False
            if self.final:
                return WAIT  # the end of the stream, not an underrun
            self.underruns += 1
            out = self.played + self.concealed
            recurring = self._last_underrun is not None and out - self._last_underrun <= self.window
            self._last_underrun = out
            if recurring and self.max_target is not None and self.target < self.max_target:
                self.target = min(self.max_target, (self.target * 3 + 1) // 2)
            return WAIT
        self.cursor = n + 1
        packet = self._frames.pop(n, None)
        if packet is None:
            self.concealed += 1
            return Item(ItemKind.CONCEAL, number=n)
        self.played += 1
        return Item(ItemKind.FRAME, packet, n)
