"""``audionet modem``: loopback, encode/decode, the real-time commands over the virtual cable."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audionet.cli.main import build_parser, main

COMMANDS = ("loopback", "encode", "decode", "listen", "send", "get", "ping")


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["modem", cmd, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "example" in out and f"audionet modem {cmd}" in out


def test_loopback_reports_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(random.Random(1).randbytes(20_000))
    status = main(
        ["modem", "loopback", str(src), "-o", str(tmp_path / "out.bin"), "--channel", "cable"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    assert "SHA-256 matches" in out
    rate = float(out.split("goodput ")[1].split()[0])
    assert rate >= 3.0


def test_loopback_exit_1_when_the_line_cannot_carry_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 500)
    args = ["modem", "loopback", str(src), "-o", str(tmp_path / "out.bin"), "--channel", "phone"]
    assert main(args) == 1
    assert "DIFFERS" in capsys.readouterr().out


def test_encode_decode_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = random.Random(3).randbytes(2500)
    (tmp_path / "in.bin").write_bytes(data)
    for extra in ([], ["--legacy"], ["--bit-length", "6"]):
        wav, out = tmp_path / "tx.wav", tmp_path / "out.bin"
        assert main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(wav), *extra]) == 0
        assert main(["modem", "decode", str(wav), "-o", str(out), *extra]) == 0
        assert out.read_bytes() == data
        assert "0 bad" in capsys.readouterr().out


def test_legacy_sequence_numbers_wrap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = random.Random(6).randbytes(300 * 20)  # 300 frames of 20 bytes: seq wraps past 255
    (tmp_path / "in.bin").write_bytes(data)
    wav = tmp_path / "tx.wav"
    base = ["--legacy", "--bit-length", "5"]
    assert main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(wav), "--frame-size", "20",
                 *base]) == 0  # fmt: skip
    assert main(["modem", "decode", str(wav), "-o", str(tmp_path / "out.bin"), *base]) == 0
    assert (tmp_path / "out.bin").read_bytes() == data
    assert "300 frames good" in capsys.readouterr().out


def test_decode_with_the_wrong_profile_finds_nothing(tmp_path: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"hello")
    main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(tmp_path / "tx.wav"), "--legacy"])
    assert main(["modem", "decode", str(tmp_path / "tx.wav"), "-o", str(tmp_path / "o")]) == 1


def test_errors_are_messages_not_tracebacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["modem", "loopback", str(tmp_path / "missing"), "-o", str(tmp_path / "o")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["modem", "ping", "--audio", "bogus"]) == 1
    assert "cable:HOST:PORT" in capsys.readouterr().err
    assert main(["modem", "ping", "--peer", "300"]) == 1
    assert "out of range" in capsys.readouterr().err
    assert main(["modem", "send", str(tmp_path / "o"), "--legacy"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["modem", "get", "../x", "--legacy", "-o", str(tmp_path)]) == 1
    assert "refused path" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_listen_send_get_ping_between_two_processes(tmp_path: Path) -> None:
    """Real processes joined by the TCP virtual cable: one listener serves four clients in turn."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "doc.txt").write_text("served to the client\n")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(random.Random(4).randbytes(700))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "audionet", "modem"]
    audio = ["--audio", f"cable:127.0.0.1:{free_port()}"]
    listener = subprocess.Popen(
        [*cli, "listen", "--root", str(shared), *audio, "--timeout", "120"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def client(*args: str) -> subprocess.CompletedProcess[str]:
        for _ in range(40):  # the listener may still be starting, or re-plugging
            done = subprocess.run(
                [*cli, *args, *audio, "--timeout", "25"], env=env, capture_output=True,
                text=True, timeout=60, check=False,
            )  # fmt: skip
            if "no virtual cable" not in done.stderr:
                return done
            time.sleep(0.25)
        raise AssertionError("the listener never accepted the cable")

    try:
        ping = client("ping", "--count", "2", "--interval", "0.3")
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # a starved machine may lose one to the 3 s timeout; exit 0 needs at least one reply
        assert "2 sent" in ping.stdout and "rtt min/avg/max" in ping.stdout

        sent = client("send", str(upload))
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert (shared / "upload.bin").read_bytes() == upload.read_bytes()

        got_dir = tmp_path / "got"
        got = client("get", "doc.txt", "-o", str(got_dir))
        assert got.returncode == 0, got.stdout + got.stderr
        assert (got_dir / "doc.txt").read_text() == "served to the client\n"

        missing = client("get", "../etc/passwd", "-o", str(got_dir))
        assert missing.returncode == 1 and "resource not found" in missing.stderr
    finally:
        listener.terminate()
        out, _ = listener.communicate(timeout=10)
    assert "unplugged" in out
    assert "upload.bin (700 bytes, SHA-256 verified)" in " ".join(out.split())
