"""Files between two modem stations through a simulated phone call, in real time over real sockets.

Both stations are AudioSocket servers on loopback (``--audio audiosocket-listen:...``), joined by an
:class:`~audionet.bridges.bridge.Bridge` (optionally G.711, jitter and frame loss), each driven by
:func:`~audionet.modem.realtime.run_realtime` on its call: exactly what
``audionet modem listen/send`` and ``audionet audiosocket bridge`` do as three processes, here in one
event loop. Each station may send a file to the other at the same time (the line is full duplex).
Used by the tests, the demo and ``bench/bridges.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audionet.bridges.bridge import Bridge, BridgeResult
from audionet.bridges.modem_call import CallAudio, open_call_audio, phone_config, phone_phy
from audionet.bridges.relay import Impairments
from audionet.modem.apps import FILE_PORT, FileClient, FileServer
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.phy import Phy
from audionet.modem.proto.arq import ArqConfig
from audionet.modem.proto.files import FileReceived
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.realtime import run_realtime


@dataclass(frozen=True, slots=True)
class Leg:
    """One direction's file: ``sent`` by one station, ``stored`` by the other."""

    sent: Path
    stored: Path
    size: int  #: bytes of the file
    seconds: float  #: from the call's start until it was stored and verified (inf: never)
    ok: bool  #: stored, and its SHA-256 equals the original's
    retransmissions: int

    @property
    def goodput(self) -> float:
        """File bits per second of call time (0 if it did not arrive whole)."""
        return 8 * self.size / self.seconds if self.ok and self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class TransferResult:
    legs: tuple[Leg, ...]  #: station 1 -> 2, then (if sent) 2 -> 1
    bridge: BridgeResult
    error: str | None  #: why a station gave up, if one did

    @property
    def ok(self) -> bool:
        return all(leg.ok for leg in self.legs)


def _sha(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def _until(finished: Callable[[int], bool], i: int) -> Callable[[], bool]:
    return lambda: finished(i)


async def transfer_over_call(
    first: Path,
    workdir: Path,
    second: Path | None = None,
    *,
    impairments: Impairments | None = None,
    phy: Phy | None = None,
    config: ArqConfig | None = None,
    hangup_after: float | None = None,
    max_seconds: float = 600.0,
) -> TransferResult:
    """Station 1 sends ``first`` to station 2 (and station 2 sends ``second`` to station 1, at the
    same time) through a bridged call; files land in ``workdir/at1`` and ``workdir/at2``.

    ``hangup_after``: the bridge hangs up after that many seconds (a caller hanging up mid-transfer).
    ``phy``: station 1's physical layer; station 2 gets a copy of it as it is (a PHY may keep
    state of its own station, as OFDM's link adaptation does: two stations sharing one would
    take each other's frames for their own echoes and never adapt).
    """
    from audionet.dns.localresolver import free_port

    phy = phy or phone_phy()
    phys = (phy, copy.deepcopy(phy))
    config = phone_config(config or ArqConfig(max_payload=256))
    dirs = (workdir / "at1", workdir / "at2")
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    ports = (free_port(), free_port())
    sends = [(first, 0)] + ([(second, 1)] if second is not None else [])
    servers = [FileServer(d, FILE_PORT) for d in dirs]
    clients: list[FileClient | None] = [None, None]
    for path, who in sends:
        clients[who] = FileClient(Address(2 - who, FILE_PORT), path.name, path.parent, local=path)
    stations = [
        Station(
            ModemEndpoint(ConnectionHost(i + 1, config, seed=i), phys[i]),
            [servers[i], *([c] if (c := clients[i]) is not None else [])],
        )
        for i in range(2)
    ]
    start = time.monotonic()
    arrived: dict[int, float] = {}  # receiving station -> seconds

    def received(i: int) -> bool:
        if i not in arrived and any(isinstance(e, FileReceived) for e in servers[i].received):
            arrived[i] = time.monotonic() - start
        return i in arrived

    wanted = {1 - who for _, who in sends}  # stations that must receive a file

    def finished(i: int) -> bool:
        mine = clients[i]
        return all(received(j) for j in wanted) or (mine is not None and mine.error is not None)

    opening = [
        asyncio.create_task(open_call_audio(f"audiosocket-listen:127.0.0.1:{p}")) for p in ports
    ]
    await asyncio.sleep(0.05)  # both listening
    b = Bridge(("127.0.0.1", ports[0]), ("127.0.0.1", ports[1]), impairments)
    error: str | None = None
    lines: list[CallAudio] = []
    try:
        await b.connect()
        lines = list(await asyncio.gather(*opening))
        start = time.monotonic()
        bridging = asyncio.create_task(b.run(hangup_after))
        runs = [
            asyncio.create_task(run_realtime(stations[i], lines[i], until=_until(finished, i)))
            for i in range(2)
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*runs), max_seconds)
        for i, line in enumerate(lines):
            if not line.connected and not all(received(j) for j in wanted):
                error = f"station {i + 1}: {line.end_reason}"
        for c in clients:
            if c is not None and c.error is not None:
                error = error or c.error
        if error is None and not all(received(j) for j in wanted):
            error = f"gave up after {max_seconds:g} s"
        b.hangup("transfer over")
        result = await bridging
    finally:
        for t in opening:
            t.cancel()
        b.hangup()
        for line in lines:
            await line.close()
    legs = []
    for path, who in sends:
        stored = dirs[1 - who] / path.name
        ok = (1 - who) in arrived and stored.exists() and _sha(stored) == _sha(path)
        client = clients[who]
        conn = client.connection if client is not None else None
        legs.append(
            Leg(
                path,
                stored,
                path.stat().st_size,
                arrived.get(1 - who, float("inf")),
                ok,
                conn.stats.retransmissions if conn is not None else 0,
            )
        )
    return TransferResult(tuple(legs), result, error)
