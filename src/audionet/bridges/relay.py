"""One direction of an AudioSocket bridge, without I/O: audio in, timed audio messages out.

When Asterisk bridges two AudioSocket legs it writes each frame one leg's server sent to the other
leg's server as soon as it has it: between two AudioSocket channels nothing in Asterisk keeps time
(SPEC §4), so the two servers' clocks are the only clocks. :class:`Relay` is that path for one
direction, with what a real network between the legs adds, each optional:

* **G.711** (``codec="ulaw"`` or ``"alaw"``): every frame goes through the codec and back, as a SIP
  trunk that carries the call in G.711 would transcode it. G.711 is 8 kHz audio, so a frame at
  another rate is resampled to 8 kHz and back (with a real resampler, state kept across frames).
* **Frame loss** (``loss``): each frame is lost with that probability, as an RTP packet lost on the
  way. What takes its place (``lost``) is what the receiving side of a real call does:
  ``"plc"`` (the default): the receiver's jitter buffer keeps the call's timeline and Asterisk's
  generic packet-loss concealment fills the 20 ms (:mod:`audionet.audio.plc`, a port of
  ``main/plc.c``: the last pitch period repeated, fading out over 50 ms); ``"silence"``: the hole
  is silent (a receiver without PLC); ``"drop"``: nothing takes its place, the audio is 20 ms
  shorter (a path with no jitter buffer, which passes on what arrives).
* **Jitter** (``jitter`` seconds): each frame is held a random time from 0 to ``jitter``, in order (a
  late frame holds back the ones behind it: the legs are TCP streams).

Randomness comes from a seeded generator, so a run is repeatable. Time is passed in; the adapter
(:mod:`audionet.bridges.bridge`) asks :meth:`Relay.due` for the messages whose time has come and
:meth:`Relay.next_time` for when to ask again.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from audionet.audio.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from audionet.audio.format import AudioFormat
from audionet.audio.plc import Concealer
from audionet.audio.resample import Resampler
from audionet.audiosocket.proto import encode_audio
from audionet.errors import ConfigError

#: Codecs a bridge can carry the call in: signed linear as it is, or G.711.
CODECS = ("slin", "ulaw", "alaw")
#: What takes a lost frame's place (see the module docstring).
LOST = ("plc", "silence", "drop")
#: G.711's sample rate (ITU-T G.711: 8000 samples per second).
G711_RATE = 8000
_G711 = {"ulaw": (ulaw_encode, ulaw_decode), "alaw": (alaw_encode, alaw_decode)}


@dataclass(frozen=True, slots=True)
class Impairments:
    """What the path between the legs does to the audio (see the module docstring)."""

    codec: str = "slin"
    jitter: float = 0.0  #: seconds; each frame is held uniformly 0..jitter
    loss: float = 0.0  #: probability that a frame is lost
    seed: int | None = None
    lost: str = "plc"  #: what takes a lost frame's place: ``plc``, ``silence`` or ``drop``

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ConfigError(f"bridge codec {self.codec!r}: use one of {', '.join(CODECS)}")
        if not 0.0 <= self.loss < 1.0:
            raise ConfigError(f"frame loss {self.loss:g} must be from 0 to below 1 (0.01 is 1%)")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter {self.jitter * 1000:g} ms must be from 0 to 1000 ms")
        if self.lost not in LOST:
            raise ConfigError(f"lost frames {self.lost!r}: use one of {', '.join(LOST)}")


@dataclass(slots=True)
class RelayStats:
    """What one direction carried."""

    frames_in: int = 0  #: audio messages received from the source leg
    frames_out: int = 0  #: audio messages handed on for the other leg
    lost: int = 0  #: lost on purpose (``loss``), whatever took their place
    bytes_in: int = 0
    first: float | None = None  #: time of the first frame in
    last: float | None = None  #: time of the last frame in
    arrivals: list[float] = field(default_factory=list)

    def frames_per_second(self, since: float | None = None) -> float:
        """Mean rate of the frames in, from ``since`` (default: the first frame) to the last."""
        times = self.arrivals if since is None else [t for t in self.arrivals if t >= since]
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


class Relay:
    """One direction of a bridge: feed it the audio one leg's server sent, take out what to write
    to the other leg and when."""

    def __init__(self, impairments: Impairments | None = None, keep_arrivals: bool = True) -> None:
        self.impairments = impairments or Impairments()
        self._rng = random.Random(self.impairments.seed)
        self._queue: deque[tuple[float, bytes]] = deque()
        self._last_release = float("-inf")
        self._codec = _G711.get(self.impairments.codec)
        self._resamplers: dict[int, tuple[Resampler, Resampler]] = {}
        self._plc: dict[int, Concealer] = {}
        self._keep = keep_arrivals
        self.stats = RelayStats()

    def receive(self, pcm: bytes, rate: int, now: float) -> None:
        """A frame of s16le audio at ``rate`` arrived from the source leg at ``now``."""
        st = self.stats
        st.frames_in += 1
        st.bytes_in += len(pcm)
        if st.first is None:
            st.first = now
        st.last = now
        if self._keep:
            st.arrivals.append(now)
        imp = self.impairments
        if imp.loss and self._rng.random() < imp.loss:
            st.lost += 1
            if imp.lost == "drop":
                return
            n = len(pcm) // 2
            pcm = self._concealer(rate).fill(n).tobytes() if imp.lost == "plc" else bytes(2 * n)
        else:
            if self._codec is not None:
                pcm = self._through_g711(pcm, rate)
                if not pcm:
                    return  # the resampler is still filling its filter
            if imp.lost == "plc" and imp.loss:
                pcm = self._concealer(rate).good(np.frombuffer(pcm, "<i2")).tobytes()
        release = now + (self._rng.uniform(0.0, imp.jitter) if imp.jitter else 0.0)
        release = max(release, self._last_release)  # in order: the legs are TCP streams
        self._last_release = release
        self._queue.append((release, encode_audio(pcm, rate)))

    def _concealer(self, rate: int) -> Concealer:
        plc = self._plc.get(rate)
        if plc is None:
            plc = self._plc[rate] = Concealer(rate)
        return plc

    def _through_g711(self, pcm: bytes, rate: int) -> bytes:
        assert self._codec is not None
        encode, decode = self._codec
        if rate == G711_RATE:
            return decode(encode(pcm))
        pair = self._resamplers.get(rate)
        if pair is None:
            leg, g711 = AudioFormat(rate), AudioFormat(G711_RATE)
            pair = self._resamplers[rate] = (Resampler(leg, g711), Resampler(g711, leg))
        down, up = pair
        narrow = down.process(pcm)
        back = up.process(decode(encode(narrow))) if narrow else b""
        return back[: len(back) & ~1]

    def due(self, now: float) -> list[bytes]:
        """The messages whose time has come, in order."""
        out: list[bytes] = []
        q = self._queue
        while q and q[0][0] <= now:
            out.append(q.popleft()[1])
        self.stats.frames_out += len(out)
        return out

    def next_time(self) -> float | None:
        """When the next held message is due (None: nothing held)."""
        return self._queue[0][0] if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)
