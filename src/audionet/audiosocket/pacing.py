"""The outgoing side of a call as a plain data structure: a bounded queue read by a 20 ms clock.

Asterisk writes whatever audio a server sends to the call at once, without buffering, so the server
has to send it in real time: one 20 ms frame per tick, and silence when nothing is queued (Asterisk's
channel driver sends no audio until the server does, and silence also keeps its 2 s inactivity timer
quiet). This module holds no clock: the adapter calls :meth:`OutgoingAudio.next_message` once per tick.
"""

from __future__ import annotations

from audionet.audiosocket.proto import HEADER, frame_bytes, kind_for_rate
from audionet.errors import LocalProtocolError

#: Default bound of a call's outgoing queue: one second of audio. ``send`` drops the oldest audio
#: beyond it (live audio: latency matters more than completeness); ``write`` waits for room.
DEFAULT_QUEUE_SECONDS = 1.0


class OutgoingAudio:
    """Queued PCM for one call, taken one frame per tick as a ready-to-write message.

    ``rate`` fixes the audio kind and the frame size; ``max_bytes`` bounds the queue;
    ``silence``: send a silent frame on ticks with nothing queued.
    """

    __slots__ = (
        "_buf",
        "_frame",
        "_header",
        "dropped",
        "max_bytes",
        "rate",
        "silence",
        "silence_message",
    )

    def __init__(
        self, rate: int = 8000, max_bytes: int | None = None, silence: bool = True
    ) -> None:
        kind = kind_for_rate(rate)
        self.rate = rate
        self._frame = frame_bytes(rate)
        self.max_bytes = max(
            self._frame,
            max_bytes if max_bytes is not None else int(DEFAULT_QUEUE_SECONDS * rate * 2),
        )
        self._header = HEADER.pack(kind, self._frame)
        self.silence_message = self._header + bytes(self._frame)
        self._buf = bytearray()
        self.silence = silence
        #: Bytes dropped from the front of the queue because ``push`` overflowed it.
        self.dropped = 0

    @property
    def frame_size(self) -> int:
        return self._frame

    def __len__(self) -> int:
        """Bytes queued."""
        return len(self._buf)

    def room(self) -> int:
        return self.max_bytes - len(self._buf)

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
        over = len(buf) - (self.max_bytes if limit is None else min(limit, self.max_bytes))
        if over > 0:
            over += over & 1
            del buf[:over]
            self.dropped += over
            return over
        return 0

    def clear(self) -> None:
        self._buf.clear()

    def next_message(self) -> bytes | None:
        """The message to send this tick: the next frame, the short tail of the queue, or silence."""
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
