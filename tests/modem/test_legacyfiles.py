"""The original's FTP_* messages (LegacyFileTransfer): formats, safe paths, odd input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audionet.errors import TransferError
from audionet.modem.proto.files import FileReceived, TransferFailed
from audionet.modem.proto.legacyfiles import (
    FAIL_MESSAGE,
    LegacyFileTransfer,
    RequestFailed,
    check_name,
)


def test_messages_are_the_originals(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_bytes(b"bee")
    (tmp_path / "d" / "e" / "a.txt").write_bytes(b"")
    ft = LegacyFileTransfer(tmp_path)
    # FileTransferProtocol.java:53-54, :85, :96, :135
    assert list(ft.send_file(tmp_path / "d" / "b.txt", "x/b.txt")) == [b"FTP_SEND x/b.txt", b"bee"]
    assert ft.request_file("a b.txt") == b"FTP_REQUEST_FILE a b.txt"
    assert ft.request_directory("d") == b"FTP_REQUEST_DIR d"
    assert FAIL_MESSAGE == b"FTP_REQUEST_FAIL: resource not found"
    # a tree: FTP_SEND pairs named relative to the root, no message for directories
    assert list(ft.send_directory(tmp_path / "d", "d")) == [
        b"FTP_SEND d/b.txt", b"bee", b"FTP_SEND d/e/a.txt", b""]  # fmt: skip


def test_a_file_arrives_as_two_messages(tmp_path: Path) -> None:
    ft = LegacyFileTransfer(tmp_path)
    assert ft.receive_message(b"FTP_SEND sub/f.bin") == ([], [])
    assert ft.expecting_content
    replies, events = ft.receive_message(b"FTP_SEND looks like a header, is content")
    assert replies == [] and isinstance(events[0], FileReceived)
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"FTP_SEND looks like a header, is content"
    assert not (tmp_path / "sub" / "f.bin.part").exists()


def test_windows_separators_from_an_original_on_windows(tmp_path: Path) -> None:
    ft = LegacyFileTransfer(tmp_path)
    ft.receive_message(b"FTP_SEND folder1\\hello world.txt")
    ft.receive_message(b"hi")
    assert (tmp_path / "folder1" / "hello world.txt").read_bytes() == b"hi"
    (tmp_path / "folder1" / "x.txt").write_text("x")
    assert ft.receive_message(b"FTP_REQUEST_FILE folder1\\x.txt")[0] == [
        b"FTP_SEND folder1\\x.txt", b"x"]  # fmt: skip


@pytest.mark.parametrize("name", ["../up.txt", "/etc/passwd", "a/../../b", "..\\win.ini", "c:x"])
def test_paths_leaving_the_folder_are_refused_and_their_content_swallowed(
    tmp_path: Path, name: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    ft = LegacyFileTransfer(root)
    ft.receive_message(f"FTP_SEND {name}".encode())
    _, events = ft.receive_message(b"payload")
    assert isinstance(events[0], TransferFailed) and "refused path" in events[0].reason
    assert not ft.expecting_content  # the next message is a header again
    assert [p.name for p in tmp_path.iterdir()] == ["root"] and not any(root.iterdir())
    # asking for such a path is answered as a missing resource, revealing nothing
    assert ft.receive_message(f"FTP_REQUEST_FILE {name}".encode()) == ([FAIL_MESSAGE], [])
    with pytest.raises(TransferError):
        check_name(name)


def test_requests_we_cannot_serve_fail(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_bytes(b"f")
    ft = LegacyFileTransfer(tmp_path)
    for message in (b"FTP_REQUEST_FILE nope", b"FTP_REQUEST_DIR nope",
                    b"FTP_REQUEST_FILE d", b"FTP_REQUEST_DIR f"):  # fmt: skip
        assert ft.receive_message(message) == ([FAIL_MESSAGE], [])
    assert ft.receive_message(b"FTP_REQUEST_DIR d") == ([], [])  # empty: nothing to send


def test_failures_and_unknown_messages_are_events(tmp_path: Path) -> None:
    ft = LegacyFileTransfer(tmp_path)
    assert ft.receive_message(FAIL_MESSAGE) == ([], [RequestFailed("resource not found")])
    _, events = ft.receive_message(b"HELLO there")
    assert isinstance(events[0], TransferFailed) and "unknown" in events[0].reason
    _, events = ft.receive_message(b"FTP_SEND caf\xe9")  # latin-1 from an older platform
    ft.receive_message(b"x")
    assert (tmp_path / "caf\u00e9").read_bytes() == b"x"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8))
def test_random_messages_never_crash_or_escape(messages: list[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        ft = LegacyFileTransfer(root)
        for m in messages:
            ft.receive_message(b"FTP_SEND " + m if len(m) % 2 else m)
        assert [p.name for p in Path(tmp).iterdir()] == ["root"]
