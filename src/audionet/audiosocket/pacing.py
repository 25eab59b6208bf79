"""The outgoing side of a call as a plain data structure: a bounded queue read by a 20 ms clock.

Asterisk writes whatever audio a server sends to the call at once, without buffering, so the server
has to send it in real time: one 20 ms frame per tick, and silence when nothing is queued (Asterisk's
channel driver sends no audio until the server does, and silence also keeps its 2 s inactivity timer
quiet). This module holds no clock: the adapter calls :meth:`OutgoingAudio.next_message` once per tick.
"""

from __future__ import annotations

import functools
from collections import deque

from audionet.audiosocket.proto import HEADER, HEADER_SIZE, frame_bytes, kind_for_rate
from audionet.errors import LocalProtocolError

#: Default bound of a call's outgoing queue: one second of audio. ``send`` drops the oldest audio
#: beyond it (live audio: latency matters more than completeness); ``write`` waits for room.
DEFAULT_QUEUE_SECONDS = 1.0


@functools.cache
def _constants(rate: int) -> tuple[int, bytes, bytes]:
    """Frame size, the header of a whole frame, and a silent frame, for ``rate``: one set of
    objects shared by every call at that rate (fewer distinct objects touched per frame)."""
    frame = frame_bytes(rate)
    header = HEADER.pack(kind_for_rate(rate), frame)
    return frame, header, header + bytes(frame)


class OutgoingAudio:
    """Queued PCM for one call, taken one frame per tick as a ready-to-write message.

    ``rate`` fixes the audio kind and the frame size; ``max_bytes`` bounds the queue;
    ``silence``: send a silent frame on ticks with nothing queued.

    Whole frames that arrive as ready messages (:meth:`push_message`: an echo of the caller's own
    frames) are queued as they are and written back unchanged, with no re-encoding; any other audio
    is queued as PCM behind them. Both count the same towards the bound and come out in order.
    """

    __slots__ = (
        "_buf",
        "_frame",
        "_header",
        "_msgs",
        "dropped",
        "max_bytes",
        "rate",
        "silence",
        "silence_message",
    )

    def __init__(
        self, rate: int = 8000, max_bytes: int | None = None, silence: bool = True
    ) -> None:
        self.rate = rate
        self._frame, self._header, self.silence_message = _constants(rate)
        self.max_bytes = max(
            self._frame,
            max_bytes if max_bytes is not None else int(DEFAULT_QUEUE_SECONDS * rate * 2),
        )
        #: Whole frames as messages (header included), ahead of ``_buf``.
        self._msgs: deque[bytes] = deque()
        self._buf = bytearray()
        self.silence = silence
        #: Bytes dropped from the front of the queue because ``push`` overflowed it.
        self.dropped = 0

    @property
    def frame_size(self) -> int:
        return self._frame

    def __len__(self) -> int:
        """Bytes queued."""
        return len(self._msgs) * self._frame + len(self._buf)

    def room(self) -> int:
        return self.max_bytes - len(self)

    def push(self, pcm: bytes | bytearray | memoryview, limit: int | None = None) -> int:
        """Queue ``pcm`` (whole 16-bit samples); drop the oldest audio beyond ``limit`` bytes (at
        most :attr:`max_bytes`). Returns the number of bytes dropped.
        """
        if len(pcm) & 1:
            raise LocalProtocolError(
                f"{len(pcm)} bytes of audio is not a whole number of 16-bit samples"
            )
        buf = self._buf
        buf += pcm
        over = (
            len(buf)
            + len(self._msgs) * self._frame
            - (self.max_bytes if limit is None else min(limit, self.max_bytes))
        )
        return self._drop(over) if over > 0 else 0

    def push_message(self, message: bytes) -> int:
        """Queue one audio message (header included) of this queue's kind: a whole frame is kept as
        it is and sent unchanged; anything else is queued as its PCM. Returns the bytes dropped."""
        if message.startswith(self._header) and not self._buf:
            msgs = self._msgs
            msgs.append(message)
            frame = self._frame
            over = len(msgs) * frame - self.max_bytes
            if over <= 0:
                return 0
            if over == frame:  # a full queue of whole frames: the oldest goes (a behind server)
                msgs.popleft()
                self.dropped += frame
                return frame
            return self._drop(over)
        return self.push(memoryview(message)[HEADER_SIZE:])

    def _drop(self, over: int) -> int:
        """Drop the oldest ``over`` bytes (rounded up to a whole sample)."""
        over += over & 1
        msgs = self._msgs
        frame = self._frame
        n = over
        while n >= frame and msgs:
            msgs.popleft()
            n -= frame
        if n and msgs:  # part of a whole-frame message: turn the rest of them into PCM
            self._buf[:0] = b"".join(m[HEADER_SIZE:] for m in msgs)
            msgs.clear()
        del self._buf[:n]
        self.dropped += over
        return over

    def clear(self) -> None:
        self._msgs.clear()
        self._buf.clear()

    def next_message(self) -> bytes | None:
        """The message to send this tick: the next frame, the short tail of the queue, or silence."""
        if self._msgs:
            return self._msgs.popleft()
        buf = self._buf
        n = len(buf)
        frame = self._frame
        if n >= frame:
            msg = self._header + buf[:frame]
            del buf[:frame]
            return msg
        if n:
            msg = HEADER.pack(kind_for_rate(self.rate), n) + buf
            buf.clear()
            return msg
        return self.silence_message if self.silence else None
