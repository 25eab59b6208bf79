"""File transfer: files and trees both ways on a faulty link, requests, refusals, damage caught."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audionet.errors import TransferError
from audionet.modem.proto.arq import ArqConfig, Connection, MessageReceived
from audionet.modem.proto.files import (
    DirectoryReceived,
    FileEvent,
    FileReceived,
    FileTransfer,
    TransferFailed,
    safe_path,
)
from audionet.modem.proto.frame import Address
from audionet.modem.proto.host import ConnectionEvent, ConnectionHost, IncomingConnection

from .lossy import Faults, LossyPair


class Session:
    """A client and a server joined by a connection on a lossy pair, each with a FileTransfer."""

    def __init__(self, tmp: Path, faults: Faults | None = None) -> None:
        (tmp / "client").mkdir()
        (tmp / "server").mkdir()
        config = ArqConfig(max_payload=200)
        self.pair = LossyPair(ConnectionHost(1, config, seed=1), ConnectionHost(2, config, seed=2),
                              random.Random(7), faults or Faults(), bitrate=50_000)  # fmt: skip
        self.pair.b.listen(21)
        self.progress: list[tuple[str, int, int]] = []
        self.ft = (
            FileTransfer(tmp / "client", progress=lambda *p: self.progress.append(p), chunk=1000),
            FileTransfer(tmp / "server", chunk=1000),
        )
        self.conn: list[Connection | None] = [self.pair.a.connect(Address(2, 21), 0.0), None]
        self.file_events: tuple[list[FileEvent], list[FileEvent]] = ([], [])
        self._seen = [0, 0]

    def send(self, side: int, messages: object) -> None:
        conn = self.conn[side]
        assert conn is not None
        for m in messages:  # type: ignore[attr-defined]
            conn.send(m)

    def pump(self) -> None:
        for side in (0, 1):
            events = self.pair.events[side]
            for e in events[self._seen[side] :]:
                if isinstance(e, IncomingConnection):
                    self.conn[side] = e.connection
                elif isinstance(e, ConnectionEvent) and isinstance(e.event, MessageReceived):
                    replies, fevents = self.ft[side].receive_message(e.event.data)
                    self.file_events[side].extend(fevents)
                    self.send(side, replies)
            self._seen[side] = len(events)

    def run_until(self, side: int, count: int, seconds: float = 600) -> list[FileEvent]:
        def enough() -> bool:
            self.pump()
            return len(self.file_events[side]) >= count

        assert self.pair.run(seconds, until=enough)
        return self.file_events[side]


def make_tree(root: Path) -> dict[str, bytes]:
    rng = random.Random(3)
    files = {
        "a.txt": b"hello",
        "empty.bin": b"",
        "sub/b.bin": rng.randbytes(5000),
        "sub/deeper/c.bin": rng.randbytes(1234),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "emptydir").mkdir()
    return files


def test_send_file_with_progress_and_sha256(tmp_path: Path) -> None:
    s = Session(tmp_path, Faults(drop=0.1, reorder=0.1, duplicate=0.1))
    data = random.Random(1).randbytes(20_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    s.send(0, s.ft[0].send_file(src, "copy.bin"))
    (event,) = s.run_until(1, 1)
    assert isinstance(event, FileReceived) and event.size == 20_000
    assert event.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "server" / "copy.bin").read_bytes() == data
    assert not (tmp_path / "server" / "copy.bin.part").exists()


def test_request_file_reports_progress(tmp_path: Path) -> None:
    s = Session(tmp_path)
    data = bytes(range(256)) * 20
    (tmp_path / "server" / "docs").mkdir()
    (tmp_path / "server" / "docs" / "f.bin").write_bytes(data)
    s.send(0, [s.ft[0].request_file("docs/f.bin")])
    (event,) = s.run_until(0, 1)
    assert isinstance(event, FileReceived)
    assert (tmp_path / "client" / "docs" / "f.bin").read_bytes() == data
    assert [p[1] for p in s.progress] == [1000, 2000, 3000, 4000, 5000, 5120]
    assert {p[2] for p in s.progress} == {5120}


def test_directory_tree_both_ways(tmp_path: Path) -> None:
    s = Session(tmp_path, Faults(drop=0.1))
    (tmp_path / "tree").mkdir()
    files = make_tree(tmp_path / "tree")
    s.send(0, s.ft[0].send_directory(tmp_path / "tree", "t"))
    events = s.run_until(1, len(files) + 1)
    assert events[-1] == DirectoryReceived("t", len(files))
    for name, data in files.items():
        assert (tmp_path / "server" / "t" / name).read_bytes() == data
    assert (tmp_path / "server" / "t" / "emptydir").is_dir()
    # and back again, by request
    s.send(0, [s.ft[0].request_directory("t")])
    events = s.run_until(0, len(files) + 1)
    assert events[-1] == DirectoryReceived("t", len(files))
    for name, data in files.items():
        assert (tmp_path / "client" / "t" / name).read_bytes() == data


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_missing_resource_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    s = Session(tmp_path)
    ft = s.ft[0]
    s.send(0, [ft.request_file("nope.txt") if kind == "file" else ft.request_directory("nope")])
    (event,) = s.run_until(0, 1)
    assert isinstance(event, TransferFailed) and event.reason == "resource not found"


@pytest.mark.parametrize(
    "name", ["../secret", "/etc/passwd", "a/../../secret", "a\\..\\b", "", "C:/x", "a/./../..", "."]
)
def test_path_traversal_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / "secret").write_bytes(b"top secret")
    root = tmp_path / "shared"
    root.mkdir()
    with pytest.raises(TransferError):
        safe_path(root, name)
    ft = FileTransfer(root)
    # a request for it looks like a missing file
    replies, _ = ft.receive_message(f"FTP_REQUEST_FILE {name}".encode())
    assert replies == [f"FTP_REQUEST_FAIL: resource not found {name}".encode()]
    # a file pushed to it is refused, its data swallowed, nothing written outside
    _, events = ft.receive_message(
        f"FTP_SEND {name}\n3 {hashlib.sha256(b'bad').hexdigest()}".encode()
    )
    assert events == []
    _, events = ft.receive_message(b"bad")
    assert len(events) == 1 and isinstance(events[0], TransferFailed)
    assert (tmp_path / "secret").read_bytes() == b"top secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret", "shared"]


def test_symlink_out_of_root_refused(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(TransferError, match="link"):
        safe_path(root, "link/x")
    assert safe_path(root, "sub/x") == (root / "sub" / "x").resolve()


def test_damaged_file_is_rejected_and_removed(tmp_path: Path) -> None:
    ft = FileTransfer(tmp_path)
    _, events = ft.receive_message(
        b"FTP_SEND f.bin\n4 " + hashlib.sha256(b"good").hexdigest().encode()
    )
    _, events = ft.receive_message(b"evil")
    assert len(events) == 1 and isinstance(events[0], TransferFailed)
    assert "SHA-256" in events[0].reason
    assert list(tmp_path.iterdir()) == []


def test_unknown_and_malformed_messages(tmp_path: Path) -> None:
    ft = FileTransfer(tmp_path)
    _, events = ft.receive_message(b"HELLO there")
    assert isinstance(events[0], TransferFailed) and "unknown" in events[0].reason
    _, events = ft.receive_message(b"FTP_SEND x\nnot-a-size")
    assert isinstance(events[0], TransferFailed) and "malformed" in events[0].reason


kinds = st.sampled_from(["FTP_SEND", "FTP_MKDIR", "FTP_DONE", "FTP_REQUEST_FILE",
                         "FTP_REQUEST_DIR", "FTP_REQUEST_FAIL:", "X"])  # fmt: skip


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=60),
                          st.tuples(kinds, st.text(max_size=300), st.binary(max_size=20)).map(
                              lambda t: f"{t[0]} {t[1]}".encode("utf-8", "surrogatepass")
                              + b"\n" + t[2]))))  # fmt: skip
@example([b"FTP_DONE \xc2\xb9"])  # "¹": isdigit() says yes, int() says no
def test_any_messages_give_events_never_crashes(tmp_path: Path, messages: list[bytes]) -> None:
    root = tmp_path / "fuzz"
    root.mkdir(exist_ok=True)
    ft = FileTransfer(root)
    for m in messages:
        replies, events = ft.receive_message(m)
        assert all(isinstance(r, bytes) for r in replies)
        assert all(isinstance(e, (FileReceived, DirectoryReceived, TransferFailed)) for e in events)
    # nothing ever lands outside the root
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fuzz"]
