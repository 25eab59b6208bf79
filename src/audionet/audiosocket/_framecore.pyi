from collections import deque
from collections.abc import Callable

class FrameCore:
    due: float
    _grid: float
    _open: float
    _last: float
    _sample: int
    _next_sample: int
    _off_grid: bool
    _stopped: bool
    _echo: bool
    _fast_len: int
    _echoed: int
    _paused: bool
    _ticked: int
    _silenced: int
    _fast_head: bytes
    _msgs: deque[bytes] | None
    _pcm: bytearray
    _write: Callable[[bytes], object]
    def _clock(self, now: float, heard: bool) -> bool: ...
    def data_received(self, data: bytes) -> None: ...
    def tick(self) -> None: ...

def configure(period: float, slot: float, early: float, min_gap: float, aim: float) -> None: ...
