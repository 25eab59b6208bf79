"""audionet's ``--legacy`` stations against an emulation of the original program, both roles.

The original station (tests/modem/original/, the Java source line by line) and ours are joined by
the simulated cable with the ``cable`` profile (40 dB SNR, 50 ppm drift, filters) in virtual time.
Every test also checks that no thread of the original died: a station of ours must never crash it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from audionet.modem.apps import PingClient
from audionet.modem.backends import SimulatedCable
from audionet.modem.legacyapps import LegacyFileClient, LegacyFileServer
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.phy import get_phy
from audionet.modem.proto.arqtypes import Connected
from audionet.modem.proto.files import FileReceived, TransferFailed
from audionet.modem.proto.frame import LEGACY, Address, java_hash
from audionet.modem.proto.legacyhost import LegacyConnectionEvent, LegacyHost
from audionet.modem.proto.ping import Pinger
from tests.modem.original.audio import Address as JAddress
from tests.modem.original.ftp import FileTransferProtocol
from tests.modem.original.station import OriginalStation, file_client, file_server

ORIGINAL = 55  # the host byte of the original's own examples (FileTransferProtocol.java:25)
PHY = get_phy("manchester", legacy=True)
DATA = random.Random(13).randbytes(3000)  # 12 frames of 256 bytes: sequence numbers run on


def ours(host: int, apps: list[object]) -> Station:
    return Station(ModemEndpoint(LegacyHost(host, seed=host), PHY, LEGACY), apps)  # type: ignore[list-item]


def run(a: Station, b: OriginalStation, until: Callable[[], bool], seconds: float = 60) -> float:
    cable = SimulatedCable(a, b, channel="cable", seed=7)  # type: ignore[arg-type]
    assert cable.run(until=until, seconds=seconds), f"not done after {seconds} s of air time"
    assert b.deaths == [], f"a thread of the original died: {b.deaths}"
    return cable.now


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "folder1" / "sub").mkdir(parents=True)
    (root / "folder1" / "a.bin").write_bytes(DATA)
    (root / "folder1" / "sub" / "b.txt").write_text("hello from a subfolder\n")
    (root / "top.bin").write_bytes(DATA[:700])
    return root


# -- audionet is the client, the original serves (FileTransferProtocol.main's server half) ------


def serving(tmp_path: Path, base: Path) -> tuple[OriginalStation, FileTransferProtocol]:
    orig = OriginalStation(ORIGINAL)
    return orig, file_server(orig, 20, JAddress(1, 10), str(base))


def test_we_ping_the_original() -> None:
    orig = OriginalStation(ORIGINAL)
    orig.host.start_parallel_io()
    app = PingClient(Pinger(Address(ORIGINAL, 0), count=4, interval=0.4))
    run(ours(1, [app]), orig, lambda: app.done)
    stats = app.pinger.stats()
    assert stats.received == 4 and stats.max is not None and stats.max < 0.5


def test_we_get_a_file_from_the_original(tmp_path: Path, tree: Path) -> None:
    orig, _ = serving(tmp_path, tree)
    client = LegacyFileClient(Address(ORIGINAL, 20), "top.bin", tmp_path / "got")
    run(ours(1, [client]), orig, lambda: client.done)
    assert client.ok, client.error
    assert (tmp_path / "got" / "top.bin").read_bytes() == DATA[:700]


def test_we_get_a_directory_from_the_original(tmp_path: Path, tree: Path) -> None:
    orig, _ = serving(tmp_path, tree)
    client = LegacyFileClient(Address(ORIGINAL, 20), "folder1", tmp_path / "got", directory=True)
    air = run(ours(1, [client]), orig, lambda: client.done)
    assert client.ok, client.error
    assert (tmp_path / "got" / "folder1" / "a.bin").read_bytes() == DATA
    assert (
        tmp_path / "got" / "folder1" / "sub" / "b.txt"
    ).read_text() == "hello from a subfolder\n"
    assert sorted(f.path for f in client.files) == ["folder1/a.bin", "folder1/sub/b.txt"]
    assert air > client.quiet  # the original never says a tree is complete: silence does


def test_we_send_a_file_to_the_original(tmp_path: Path, tree: Path) -> None:
    orig, _ = serving(tmp_path, tree)
    (tmp_path / "mine.bin").write_bytes(DATA)
    client = LegacyFileClient(
        Address(ORIGINAL, 20), "up/mine.bin", tmp_path, local=tmp_path / "mine.bin"
    )
    run(ours(1, [client]), orig, lambda: client.done)
    assert client.ok, client.error
    assert (tree / "up" / "mine.bin").read_bytes() == DATA
    # our FIN closed the connection on the original's side (ConnectionHost.java:134-145)
    assert orig.host.connections.items == []


def test_we_send_a_directory_to_the_original(tmp_path: Path, tree: Path) -> None:
    orig, _ = serving(tmp_path, tree)
    client = LegacyFileClient(Address(ORIGINAL, 20), "copy", tree, local=tree / "folder1")
    run(ours(1, [client]), orig, lambda: client.done)
    assert client.ok, client.error
    assert (tree / "copy" / "a.bin").read_bytes() == DATA
    assert (tree / "copy" / "sub" / "b.txt").read_text() == "hello from a subfolder\n"


def test_an_empty_file_reaches_the_original(tmp_path: Path, tree: Path) -> None:
    # the original itself would send no content message at all (Connection.java:56)
    orig, ftp = serving(tmp_path, tree)
    (tmp_path / "empty").write_bytes(b"")
    client = LegacyFileClient(Address(ORIGINAL, 20), "empty", tmp_path, local=tmp_path / "empty")
    run(ours(1, [client]), orig, lambda: client.done)
    assert client.ok and (tree / "empty").read_bytes() == b""
    assert ftp.handled == ["FTP_SEND empty"]  # and the empty message as its content


def test_the_original_answers_a_missing_resource(tmp_path: Path, tree: Path) -> None:
    orig, _ = serving(tmp_path, tree)
    client = LegacyFileClient(Address(ORIGINAL, 20), "no/such.file", tmp_path / "got")
    run(ours(1, [client]), orig, lambda: client.done)
    assert client.error == "no/such.file: resource not found"
    assert not (tmp_path / "got").exists() or not any((tmp_path / "got").iterdir())


def test_a_directory_asked_for_as_a_file_ends_by_silence(tmp_path: Path, tree: Path) -> None:
    # the original fails to read it and sends nothing (FileTransferProtocol.java:51-57)
    orig, ftp = serving(tmp_path, tree)
    client = LegacyFileClient(Address(ORIGINAL, 20), "folder1", tmp_path / "got", quiet=2.0)
    run(ours(1, [client]), orig, lambda: client.done)
    assert client.error is not None and "--dir" in client.error
    assert ftp.stack_traces  # its IOException, printed and swallowed


class Opener:
    """Opens a connection and notes when the handshake completed."""

    def __init__(self, remote: Address) -> None:
        self.remote = remote
        self.connection = None
        self.connected_at: float | None = None

    done = property(lambda self: self.connected_at is not None)

    def poll(self, host: LegacyHost, now: float) -> None:
        if self.connection is None:
            self.connection = host.connect(self.remote, now, port=10)

    def handle(self, event: object, host: LegacyHost, now: float) -> None:
        if isinstance(event, LegacyConnectionEvent) and isinstance(event.event, Connected):
            self.connected_at = now


def test_an_original_not_set_up_for_us_costs_one_resend_of_the_syn() -> None:
    """SPEC §3: its ConnectionHost swallows the first SYN of an unknown peer
    (ConnectionHost.java:131-133): our SYN is answered only when resent, 700 ms later."""
    orig = OriginalStation(ORIGINAL)
    orig.host.start_parallel_io()  # no Connection made for us
    app = Opener(Address(ORIGINAL, 20))
    run(ours(1, [app]), orig, lambda: app.done)
    assert app.connection is not None and app.connection.stats.retransmissions == 1
    assert app.connected_at is not None and app.connected_at > 0.7
    assert len(orig.host.connections.items) == 1  # the SYN made it one


# -- the original is the client, audionet listens -----------------------------------------------


def listening(
    tmp_path: Path, *, syn: bool
) -> tuple[OriginalStation, FileTransferProtocol, LegacyFileServer, Station]:
    orig = OriginalStation(ORIGINAL)
    (tmp_path / "orig").mkdir()
    ftp = file_client(orig, 10, JAddress(2, 21), str(tmp_path / "orig"), syn=syn)
    server = LegacyFileServer(tmp_path / "served", 21)
    return orig, ftp, server, ours(2, [server])


def main_does(orig: OriginalStation, action: Callable[[], None]) -> None:
    def program() -> Iterator[None]:
        action()
        yield from ()

    orig.main(program)


def test_the_original_pings_us() -> None:
    orig = OriginalStation(ORIGINAL)
    orig.host.start_parallel_io()
    result: list[bool] = []

    def program() -> Iterator[object]:
        result.append((yield from orig.host.ping(2, 5, 100, 500)))  # as ConnectionHost.java:97

    orig.main(program)
    run(ours(2, []), orig, lambda: orig.done)
    assert result == [True] and len(orig.host.last_ping.rtts) == 5


@pytest.mark.parametrize("syn", [False, True], ids=["as-its-mains", "with-syn"])
def test_the_original_sends_us_a_file(tmp_path: Path, tree: Path, syn: bool) -> None:
    orig, ftp, server, station = listening(tmp_path, syn=syn)
    (tmp_path / "orig" / "a.bin").write_bytes(DATA)
    main_does(orig, lambda: ftp.send_file("a.bin"))
    run(station, orig, lambda: bool(server.received))
    assert [type(e) for e in server.received] == [FileReceived]
    assert (tmp_path / "served" / "a.bin").read_bytes() == DATA


def test_the_original_sends_us_a_directory(tmp_path: Path) -> None:
    orig, ftp, server, station = listening(tmp_path, syn=True)
    (tmp_path / "orig" / "d" / "e").mkdir(parents=True)
    (tmp_path / "orig" / "d" / "one.bin").write_bytes(DATA[:900])
    (tmp_path / "orig" / "d" / "e" / "two.txt").write_text("two")
    main_does(orig, lambda: ftp.send_directory("d"))
    run(station, orig, lambda: len(server.received) == 2)
    assert (tmp_path / "served" / "d" / "one.bin").read_bytes() == DATA[:900]
    assert (tmp_path / "served" / "d" / "e" / "two.txt").read_text() == "two"


@pytest.mark.parametrize("syn", [False, True], ids=["as-its-mains", "with-syn"])
def test_the_original_gets_a_file_from_us(tmp_path: Path, syn: bool) -> None:
    orig, ftp, _, station = listening(tmp_path, syn=syn)
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "doc.bin").write_bytes(DATA)
    main_does(orig, lambda: ftp.request_file("doc.bin"))
    got = tmp_path / "orig" / "doc.bin"
    run(station, orig, lambda: got.exists() and got.read_bytes() == DATA)


def test_the_original_gets_a_directory_from_us(tmp_path: Path) -> None:
    orig, ftp, _, station = listening(tmp_path, syn=True)
    (tmp_path / "served" / "d" / "e").mkdir(parents=True)
    (tmp_path / "served" / "d" / "x.bin").write_bytes(DATA[:1000])
    (tmp_path / "served" / "d" / "e" / "y.txt").write_text("why")
    main_does(orig, lambda: ftp.request_directory("d"))
    x, y = tmp_path / "orig" / "d" / "x.bin", tmp_path / "orig" / "d" / "e" / "y.txt"
    run(station, orig, lambda: x.exists() and y.exists() and x.stat().st_size == 1000)
    assert x.read_bytes() == DATA[:1000] and y.read_text() == "why"


def test_the_original_asks_us_for_a_missing_resource(tmp_path: Path) -> None:
    orig, ftp, _, station = listening(tmp_path, syn=True)
    main_does(orig, lambda: ftp.request_file("nothing/here"))
    run(station, orig, lambda: bool(ftp.handled) and ftp.handled[-1].startswith("FTP_REQUEST_FAIL"))
    assert ftp.handled == ["FTP_REQUEST_FAIL: resource not found"]


def test_a_path_leaving_our_folder_is_refused(tmp_path: Path) -> None:
    """The original sends whatever path it is given (``../``); we store nothing outside."""
    orig, ftp, server, station = listening(tmp_path, syn=True)
    (tmp_path / "secret.txt").write_text("outside")
    main_does(orig, lambda: ftp.send_file("../secret.txt"))
    run(station, orig, lambda: bool(server.received))
    (event,) = server.received
    assert isinstance(event, TransferFailed) and "refused path" in event.reason
    assert {p.name for p in tmp_path.iterdir()} <= {"orig", "secret.txt", "served"}
    assert not (tmp_path / "served").exists() or not any((tmp_path / "served").rglob("*"))
    assert (tmp_path / "secret.txt").read_text() == "outside"


def test_a_frame_of_32768_bytes_reaches_the_original_header_only() -> None:
    """Why --legacy refuses bigger frames: the original reads the length as a Java short
    (RealTimeFrameIO.java:154) and takes such a frame as header-only (:161, :170)."""
    from tests.modem.original.audio import ManchesterCodec, RealTimeAudioIO, RealTimeFrameIO
    from tests.modem.original.jvm import Scheduler

    payload = bytes(range(256)) * 128  # 32768 bytes
    head = bytes([1, 10, 55, 20, 0, 0x30, 0]) + len(payload).to_bytes(2, "big")
    wire = head + java_hash(head).to_bytes(4, "big", signed=True)
    wire += payload + java_hash(payload).to_bytes(4, "big", signed=True)
    x = np.concatenate([np.zeros(100, np.float32), PHY.modulator().modulate(wire)])
    audio = RealTimeAudioIO()
    frame_io = RealTimeFrameIO(ManchesterCodec(8, audio), audio)
    got = []

    def reader():  # type: ignore[no-untyped-def]
        got.append((yield from frame_io.decode()))

    scheduler = Scheduler()
    scheduler.start("receiver", reader())
    samples = np.round(x * 128).astype(int).tolist()
    for i in range(0, len(samples), 4096):
        audio.hear(samples[i : i + 4096])
        scheduler.run()
        if got:
            break
    assert len(got) == 1 and got[0].payload == b""  # the 32768 bytes are lost
