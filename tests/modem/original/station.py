"""A station running the original program, on audionet's simulated or virtual cable.

:class:`OriginalStation` wires the emulated classes together as the original's ``main`` methods do
(RealTimeAudioIO, a ``ManchesterCodec`` of bit length 8, ``RealTimeFrameIO``, a ``ConnectionHost``)
and looks like an audionet :class:`~audionet.modem.link.Station` to
:class:`~audionet.modem.backends.SimulatedCable` and :func:`~audionet.modem.realtime.run_realtime`:
``tick(rx, now, n)`` hears float samples and returns the next ``n`` to play.

Inside a tick, time moves in steps of 32 samples (the original's buffer size): each step the
station hears its share of ``rx``, its threads run until they block, and the playback line plays
32 samples. The programs below are what the original's ``main`` methods do, split between two
machines.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from tests.modem.original.audio import Address, ManchesterCodec, RealTimeAudioIO, RealTimeFrameIO
from tests.modem.original.ftp import FileTransferProtocol
from tests.modem.original.host import Connection, ConnectionHost
from tests.modem.original.jvm import Scheduler

STEP = 32


class _Demodulator:
    busy = False


class _Endpoint:
    """What the cable asks of a station's endpoint."""

    def __init__(self, station: OriginalStation, rate: int) -> None:
        self._station = station
        self.rate = rate
        self.demodulator = _Demodulator()

    @property
    def transmitting(self) -> bool:
        return bool(self._station.audio.line_out) and self._station.audio.playing


class OriginalStation:
    """The original program on one machine: host byte ``host``, bit length 8, 44.1 kHz."""

    def __init__(self, host: int, bit_length: int = 8, rate: int = 44100) -> None:
        self.scheduler = Scheduler()
        self.audio = RealTimeAudioIO()
        self.codec = ManchesterCodec(bit_length, self.audio)
        self.frame_io = RealTimeFrameIO(self.codec, self.audio)
        self.host = ConnectionHost(host, self.frame_io, self.audio, self.scheduler)
        self.endpoint = _Endpoint(self, rate)
        self.rate = rate
        self.finished = False
        self._clock = 0.0

    @property
    def deaths(self) -> list[tuple[str, Exception]]:
        """Java threads that died of an uncaught exception: (thread name, exception)."""
        return list(self.scheduler.deaths)

    def main(self, program: Callable[[], Generator[Any, None, Any]]) -> None:
        """Run ``program`` (a generator function: blocking Java calls) on a ``main`` thread."""

        def body() -> Generator[Any, None, None]:
            yield from program()
            self.finished = True

        self.scheduler.start("main", body())

    # -- what SimulatedCable and run_realtime use ---------------------------------------------

    @property
    def done(self) -> bool:
        return self.finished

    def next_timer(self) -> float | None:
        # the sending thread wakes every 20 ms (ConnectionHost.java:37): never skip time
        return self._clock + 0.02

    def tick(self, rx: np.ndarray, now: float, n: int) -> np.ndarray:
        heard = np.clip(np.round(np.asarray(rx, dtype=np.float64) * 128), -128, 127).astype(int)
        steps = max(1, -(-n // STEP))
        out: list[int] = []
        for k in range(steps):
            self._clock = max(self._clock, now + k * STEP / self.rate)
            self.scheduler.clock = self._clock
            self.audio.hear(heard[k * heard.size // steps : (k + 1) * heard.size // steps].tolist())
            self.scheduler.run()
            out += self.audio.play(min(STEP, n - k * STEP))
            self.scheduler.run()  # a drained line wakes its sender at once
        return (np.array(out[:n], dtype=np.float32) / 128.0).astype(np.float32)


# -- programs: what the original's main methods do, one machine each -----------------------------


def file_server(
    station: OriginalStation, port: int, peer: Address, base: str
) -> FileTransferProtocol:
    """FileTransferProtocol.main's ``server`` half (:25-37): a connection from ``port`` to ``peer``,
    added by hand, and its file transfer receiving in a thread."""
    host = station.host
    server = Connection(host, port, peer, "server")  # :26
    host.start_parallel_io()  # :28
    host.add_connection(server)  # :29
    ftp = FileTransferProtocol(server, base, station.scheduler)  # :32-33
    ftp.start_parallel_receive()  # :37
    return ftp


def file_client(
    station: OriginalStation, port: int, peer: Address, base: str, *, syn: bool
) -> FileTransferProtocol:
    """FileTransferProtocol.main's ``client`` half (:27-36), optionally opening with the SYN that
    ``Connection.addSynToSendQueue`` queues (its mains never call it: ConnectionHost.java:102 is commented out)."""
    host = station.host
    client = Connection(host, port, peer, "client")  # :27
    host.start_parallel_io()  # :28
    host.add_connection(client)  # :30
    if syn:
        client.add_syn_to_send_queue()
    ftp = FileTransferProtocol(client, base, station.scheduler)  # :34-35
    ftp.start_parallel_receive()  # :36
    return ftp
