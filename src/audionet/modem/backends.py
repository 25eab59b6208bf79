"""Where the modem's samples go without a clock: WAV files and a simulated cable in virtual time.

- :func:`encode_wav` / :func:`decode_wav`: one-way frames through WAV files (the seed's test backend).
- :class:`SimulatedCable`: two stations joined by a full-duplex cable, each direction through its own
  channel simulator, in virtual time: a 40-minute transfer runs in seconds.

The real-time backends (the TCP virtual cable, the sound card) are in :mod:`audionet.modem.realtime`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audionet.audio.format import AudioFormat, from_array, to_float
from audionet.audio.wav import read_wav, write_wav
from audionet.errors import AudioError, ConfigError
from audionet.modem.link import CountedFraming, Station
from audionet.modem.phy.base import Phy, Samples
from audionet.modem.proto.frame import AUDIONET, Frame, FrameError, FrameProfile

log = logging.getLogger(__name__)


class ChannelLike(Protocol):
    def process(self, samples: Samples) -> Samples: ...


class _Wire:
    """A perfect cable (no channel simulator)."""

    def process(self, samples: Samples) -> Samples:
        return samples


def make_channel(profile: str | None, rate: int, seed: int) -> ChannelLike:
    """A streaming channel simulator for ``profile`` (``None``: a perfect wire)."""
    if profile is None or profile == "none":
        return _Wire()
    from audionet.modem import channel

    if profile not in channel.PROFILES:
        raise ConfigError(
            f"unknown channel profile {profile!r}; choose one of {', '.join(channel.PROFILES)}"
        )
    return channel.Channel(channel.PROFILES[profile], rate, seed=seed)


def to_pcm(samples: Samples) -> bytes:
    """Float samples in [-1, 1] as s16le PCM."""
    return from_array(np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16))


# -- WAV files -------------------------------------------------------------------------------


def encode_wav(
    frames: list[Frame],
    path: Path,
    phy: Phy,
    profile: FrameProfile = AUDIONET,
    *,
    eight_bit: bool = False,
) -> float:
    """Write ``frames`` as audio to ``path``; returns the seconds of audio written."""
    mod = phy.modulator()
    lead = np.zeros(phy.sample_rate // 10, dtype=np.float32)  # 0.1 s of silence first
    parts = [lead] + [mod.modulate(profile.encode(f)) for f in frames] + [lead]
    samples = np.concatenate(parts)
    fmt = AudioFormat(phy.sample_rate, 1, 1 if eight_bit else 2)
    write_wav(path, fmt, to_pcm(samples))
    return samples.size / phy.sample_rate


@dataclass
class DecodeResult:
    frames: list[Frame]
    bad: int  #: frames found on the line whose header or payload checksum failed
    seconds: float


def decode_wav(path: Path, phy: Phy, profile: FrameProfile = AUDIONET) -> DecodeResult:
    """All frames in the WAV file at ``path`` (its rate must be the PHY's)."""
    fmt, pcm = read_wav(path)
    if fmt.rate != phy.sample_rate:
        raise AudioError(
            f"{path}: {fmt.rate} Hz, but the modem runs at {phy.sample_rate} Hz; "
            f"pass --rate {fmt.rate} or resample it with 'audionet audio convert'"
        )
    samples = to_float(pcm, fmt.channels)
    if samples.ndim > 1:
        samples = samples[:, 0]
    frames: list[Frame] = []
    bad = 0

    def bad_header() -> None:  # dropped by the demodulator: a frame all the same
        nonlocal bad
        bad += 1

    demod = phy.demodulator(CountedFraming(profile, bad_header))
    step = phy.sample_rate  # feed in one-second blocks, as a stream would
    blocks = [samples[i : i + step] for i in range(0, samples.size, step)]
    blocks.append(np.zeros(phy.sample_rate // 10, dtype=np.float32))  # let the last frame end
    for block in blocks:
        for rx in demod.feed(np.ascontiguousarray(block, dtype=np.float32)):
            try:
                frames.append(profile.decode(rx.data))
            except FrameError:
                bad += 1
    return DecodeResult(frames, bad, samples.size / fmt.rate)


# -- simulated cable in virtual time ----------------------------------------------------------


class SimulatedCable:
    """Two stations on a simulated cable (one channel per direction, or with ``duplex=False`` one
    shared half-duplex line), in virtual time.

    Time advances in blocks of ``block`` samples; each block, each station hears what the other
    played one block earlier (through its channel, and ``latency`` seconds later still, as sound-card
    buffers delay a real line) and plays its next block. While both stations
    are silent and no frame is on the line, time jumps to the next protocol timer.
    """

    def __init__(
        self,
        a: Station,
        b: Station,
        channel: str | None = "cable",
        seed: int = 0,
        block: int = 2048,
        latency: float = 0.0,
        duplex: bool = True,
    ) -> None:
        rate = a.endpoint.rate
        if b.endpoint.rate != rate:
            raise ConfigError("both stations of a cable need the same sample rate")
        self.a, self.b = a, b
        self.rate = rate
        #: False: one shared line (half duplex): both stations hear the sum of what both play
        self.duplex = duplex
        self.block = block
        self.ab = make_channel(channel, rate, seed)
        self.ba = make_channel(channel, rate, seed + 1)
        self.samples = 0  #: samples elapsed (virtual time = samples / rate)
        self._rx_a: Samples = np.zeros(0, dtype=np.float32)
        self._rx_b: Samples = np.zeros(0, dtype=np.float32)
        # Sound-card buffers delay each direction: a line of ``latency`` seconds of samples.
        self._delay = round(latency * rate)
        self._line_ab: Samples = np.zeros(self._delay, dtype=np.float32)
        self._line_ba: Samples = np.zeros(self._delay, dtype=np.float32)
        self._idle_blocks = 0

    @property
    def now(self) -> float:
        return self.samples / self.rate

    def step(self) -> None:
        now = self.now
        tx_a = self.a.tick(self._rx_a, now, self.block)
        tx_b = self.b.tick(self._rx_b, now, self.block)
        if self.duplex:
            self._line_ab = np.concatenate((self._line_ab, self.ab.process(tx_a)))
            self._line_ba = np.concatenate((self._line_ba, self.ba.process(tx_b)))
        else:
            heard = self.ab.process(tx_a + tx_b)
            self._line_ab = np.concatenate((self._line_ab, heard))
            self._line_ba = np.concatenate((self._line_ba, heard))
        self._rx_b, self._line_ab = np.split(self._line_ab, [self._line_ab.size - self._delay])
        self._rx_a, self._line_ba = np.split(self._line_ba, [self._line_ba.size - self._delay])
        self.samples += self.block
        quiet = not (
            tx_a.any() or tx_b.any() or self.a.endpoint.transmitting or self.b.endpoint.transmitting
        )
        self._idle_blocks = self._idle_blocks + 1 if quiet else 0

    def _skip_idle(self) -> None:
        # A few quiet blocks flush the channel filters; then nothing can happen before a timer.
        if self._idle_blocks < 10:
            return
        if self.a.endpoint.demodulator.busy or self.b.endpoint.demodulator.busy:
            return
        timers = [t for t in (self.a.next_timer(), self.b.next_timer()) if t is not None]
        if not timers:
            return
        target = int(min(timers) * self.rate) // self.block * self.block
        if target > self.samples + self.block:
            self.samples = target

    def run(
        self,
        until: Callable[[], bool] | None = None,
        seconds: float = 3600.0,
        on_step: Callable[[float], None] | None = None,
    ) -> bool:
        """Run until ``until()`` (default: both stations done) or ``seconds`` of virtual time."""
        check = until or (lambda: self.a.done and self.b.done)
        end = self.samples + int(seconds * self.rate)
        while self.samples < end:
            if check():
                return True
            self.step()
            if on_step is not None:
                on_step(self.now)
            self._skip_idle()
        return check()
