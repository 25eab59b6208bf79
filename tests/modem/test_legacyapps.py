"""The legacy file server and client: a peer that leaves early, empty directories, odd names."""

from __future__ import annotations

from pathlib import Path

from audionet.modem.legacyapps import LegacyFileClient, LegacyFileServer
from audionet.modem.proto.frame import Address, Flags, Frame
from audionet.modem.proto.legacyfiles import FAIL_MESSAGE, LegacyFileTransfer
from audionet.modem.proto.legacyhost import LegacyHost

PEER, US = Address(1, 10), Address(2, 21)


def pump(host: LegacyHost, app: LegacyFileServer | LegacyFileClient, now: float = 0.0) -> None:
    app.poll(host, now)
    while (event := host.next_event()) is not None:
        app.handle(event, host, now)


def sent(host: LegacyHost) -> list[Frame]:
    return list(iter(lambda: host.poll_frame(0.0), None))


def test_a_peer_that_leaves_before_its_answer_disturbs_nothing(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"file")
    host, server = LegacyHost(2), LegacyFileServer(tmp_path, 21)
    pump(host, server)
    host.receive_frame(Frame(PEER, US, 0, Flags.SYN), 0.0)
    host.receive_frame(
        Frame(PEER, US, 1, Flags.BEG | Flags.END, payload=b"FTP_REQUEST_FILE f"), 0.0
    )
    host.receive_frame(Frame(PEER, US, 2, Flags.FIN), 0.0)
    pump(host, server)  # the request is handled after the FIN closed the connection
    assert [f.flags for f in sent(host)] == [
        Flags.SYN | Flags.ACK,
        Flags.ACK,
        Flags.ACK | Flags.FIN,
    ]
    assert host.connections == []


def test_sending_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    host = LegacyHost(1)
    client = LegacyFileClient(US, "empty", tmp_path, local=tmp_path / "empty", port=10)
    pump(host, client)
    (syn,) = sent(host)
    host.receive_frame(Frame(US, PEER, syn.seq, Flags.SYN | Flags.ACK), 0.1)
    pump(host, client, 0.1)
    assert client.error is not None and "empty directories do not travel" in client.error


def test_files_whose_names_cannot_travel_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ok.txt").write_text("ok")
    (tmp_path / "d" / "bad\nname").write_text("bad")
    ft = LegacyFileTransfer(tmp_path)
    assert list(ft.send_directory(tmp_path / "d", "d")) == [b"FTP_SEND d/ok.txt", b"ok"]
    assert ft.receive_message(b"FTP_REQUEST_FILE d/bad\nname") == ([FAIL_MESSAGE], [])
