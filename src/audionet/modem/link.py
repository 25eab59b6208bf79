"""A station's modem: the link layer on a PHY, driven block by block of samples, with no clock.

:class:`ModemEndpoint` joins a :class:`~audionet.modem.proto.host.ConnectionHost` (or a
:class:`~audionet.modem.proto.legacyhost.LegacyHost`) to a PHY: received
samples go through the demodulator and the frame profile into the host; when the transmitter runs
dry the host is asked for its next frame, which is modulated and queued, so frames follow each other
with only the PHY's inter-frame gap. Each :meth:`ModemEndpoint.tick` takes the samples heard during
one block and returns the samples to play during the next; time (``now``) is passed in. The same
endpoint therefore runs in virtual time (:class:`~audionet.modem.backends.SimulatedCable`) and in
real time (:func:`~audionet.modem.backends.run_realtime`).

:class:`Station` adds the applications (file transfer, ping) that react to the host's events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from audionet.errors import LocalProtocolError
from audionet.modem.phy.base import Phy, Samples
from audionet.modem.proto.frame import AUDIONET, Frame, FrameError, FrameProfile

log = logging.getLogger(__name__)


@dataclass
class LineStats:
    """What one endpoint put on and heard from the line."""

    frames_sent: int = 0
    frames_good: int = 0
    frames_bad: int = 0  #: demodulated but failed a frame checksum (header or payload)
    samples_sent: int = 0  #: samples of frames (air time), gaps included
    quality_sum: float = 0.0

    @property
    def quality(self) -> float:
        """Mean PHY quality of the good frames (1 = perfect)."""
        return self.quality_sum / self.frames_good if self.frames_good else 0.0


class LineHost(Protocol):
    """What an endpoint needs of a station's link layer: a
    :class:`~audionet.modem.proto.host.ConnectionHost` or a
    :class:`~audionet.modem.proto.legacyhost.LegacyHost` (the original's protocol)."""

    airtime: Callable[[int], float] | None

    def receive_frame(self, frame: Frame, now: float) -> None: ...

    def poll_frame(self, now: float) -> Frame | None: ...

    def get_timer(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...

    def set_carrier(self, busy: bool, now: float) -> None: ...

    def next_event(self) -> Any: ...


class CountedFraming:
    """A frame profile as the demodulator's ``FrameLength`` that calls ``on_bad`` for each header
    failing its checksum: the demodulator drops such a frame by itself (it cannot know its
    length), but it is a damaged frame all the same and must be counted as one."""

    def __init__(self, profile: FrameProfile, on_bad: Callable[[], None]) -> None:
        self._profile = profile
        self._on_bad = on_bad
        self.header_size = profile.header_size

    def total_length(self, header: bytes) -> int | None:
        total = self._profile.total_length(header)
        if total is None:
            self._on_bad()
        return total


class ModemEndpoint:
    """One station on an audio line (see the module docstring)."""

    def __init__(self, host: LineHost, phy: Phy, profile: FrameProfile = AUDIONET) -> None:
        self.host = host
        self.phy = phy
        self.profile = profile
        self.rate = phy.sample_rate
        self.modulator = phy.modulator()
        self.stats = LineStats()
        self.demodulator = phy.demodulator(CountedFraming(profile, self._bad_header))
        self._tx: list[Samples] = []
        self._tx_len = 0
        if host.airtime is None:
            host.airtime = self.airtime

    def _bad_header(self) -> None:
        self.stats.frames_bad += 1

    def airtime(self, payload: int) -> float:
        """Seconds on the line for a frame with ``payload`` bytes (preamble and gap included)."""
        return self.modulator.duration(self.profile.overhead(payload))

    @property
    def transmitting(self) -> bool:
        return self._tx_len > 0

    def receive(self, samples: Samples, now: float) -> None:
        """Samples heard on the line up to ``now``."""
        if samples.size:
            for rx in self.demodulator.feed(samples):
                try:
                    frame = self.profile.decode(rx.data)
                except FrameError as exc:
                    self.stats.frames_bad += 1
                    log.debug("dropped a frame at sample %d: %s", rx.position, exc)
                    continue
                self.stats.frames_good += 1
                self.stats.quality_sum += rx.quality
                self.host.receive_frame(frame, now)
        self.host.set_carrier(self.demodulator.busy or self.transmitting, now)

    def transmit(self, n: int, now: float) -> Samples:
        """The next ``n`` samples to play; new frames are fetched as the transmitter runs dry."""
        timer = self.host.get_timer()
        if timer is not None and now >= timer:
            self.host.handle_timer(now)
        while self._tx_len < n:
            if self._tx_len == 0:
                self.host.set_carrier(self.demodulator.busy, now)
            frame = self.host.poll_frame(now)
            if frame is None:
                break
            try:
                data = self.profile.encode(frame)
            except LocalProtocolError as exc:  # e.g. a connection frame on the legacy profile
                log.warning("cannot send %s on the %s profile: %s", frame, self.profile.name, exc)
                continue
            samples = self.modulator.modulate(data)
            self._tx.append(samples)
            self._tx_len += samples.size
            self.stats.frames_sent += 1
            self.stats.samples_sent += samples.size
        out = np.zeros(n, dtype=np.float32)
        filled = 0
        while self._tx and filled < n:
            head = self._tx[0]
            take = min(n - filled, head.size)
            out[filled : filled + take] = head[:take]
            filled += take
            if take == head.size:
                self._tx.pop(0)
            else:
                self._tx[0] = head[take:]
        self._tx_len -= filled
        return out

    def tick(self, rx: Samples, now: float, n: int) -> Samples:
        """Hear ``rx``, then return the ``n`` samples to play next."""
        self.receive(rx, now)
        return self.transmit(n, now)


class App(Protocol):
    """An application on a station: reacts to host events and acts on ``poll``.

    ``host`` is the station's host (a :class:`ConnectionHost`, or a ``LegacyHost`` for the legacy
    applications) and ``event`` one of its events."""

    def handle(self, event: Any, host: Any, now: float) -> None: ...

    def poll(self, host: Any, now: float) -> None: ...

    @property
    def done(self) -> bool: ...


class Station:
    """An endpoint with its applications; every host event is offered to every application."""

    def __init__(self, endpoint: ModemEndpoint, apps: list[App] | None = None) -> None:
        self.endpoint = endpoint
        self.apps: list[App] = list(apps or [])

    @property
    def host(self) -> LineHost:
        return self.endpoint.host

    def pump(self, now: float) -> None:
        host = self.endpoint.host
        for app in self.apps:
            app.poll(host, now)
        while (event := host.next_event()) is not None:
            for app in self.apps:
                app.handle(event, host, now)

    def tick(self, rx: Samples, now: float, n: int) -> Samples:
        self.endpoint.receive(rx, now)
        self.pump(now)
        return self.endpoint.transmit(n, now)

    @property
    def done(self) -> bool:
        return all(app.done for app in self.apps)

    def next_timer(self) -> float | None:
        return self.endpoint.host.get_timer()
