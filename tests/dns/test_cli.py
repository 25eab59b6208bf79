"""``audionet dns serve|play|info`` as a user runs them: a server process, the CLI in-process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import pytest

from audionet.audio.analysis import dominant_frequency
from audionet.audio.wav import read_wav
from audionet.cli.main import main
from audionet.dns.localresolver import free_port

ZONE = "cli.example.com"


def serve(*extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "audionet", "dns", "serve", ZONE, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            q = dns.message.make_query(ZONE, "SOA")
            if dns.query.udp(q, "127.0.0.1", port=port, timeout=0.3).answer:
                return proc, port
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError("server did not start")


@pytest.fixture
def server_v2() -> Iterator[int]:
    proc, port = serve("--key", "sesame")
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("fmt", ["v2", "v1"])
def test_serve_then_play_to_wav(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc, port = serve("--format", fmt, "--source", "tone:440")
    try:
        time.sleep(2.5)  # a fresh server: let a little audio accumulate
        out = tmp_path / "x.wav"
        args = ["dns", "play", ZONE, "--server", f"127.0.0.1:{port}", "--format", fmt]
        rc = main([*args, "--out", str(out), "--duration", "3", "--target", "1"])
        assert rc == 0
        fmt_, pcm = read_wav(out)
        assert fmt_.rate == 16000 and len(pcm) == 50 * 1920
        assert abs(dominant_frequency(pcm, fmt_) - 440) < 3
        assert "0 underruns" in capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(10)


def test_info_and_keys(server_v2: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    time.sleep(1.5)
    assert main(["dns", "info", ZONE, "--server", f"127.0.0.1:{server_v2}"]) == 0
    out = capsys.readouterr().out
    assert "main: v2 opus 16000 Hz 1 ch 60 ms frames, encrypted" in out
    play = ["dns", "play", ZONE, "--server", f"127.0.0.1:{server_v2}", "--duration", "1"]
    assert main([*play, "--out", str(tmp_path / "a.wav"), "--key", "wrong"]) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    assert main([*play, "--out", str(tmp_path / "b.wav")]) == 1
    assert "encrypted: pass its passphrase with --key" in capsys.readouterr().err


def test_info_without_stream_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    proc, port = serve()
    try:
        assert main(["dns", "info", "other.example.com", "--server", f"127.0.0.1:{port}"]) == 1
        assert "no AoDNS stream found" in capsys.readouterr().err
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("cmd", ["serve", "play", "info"])
def test_help_has_examples(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["dns", cmd, "--help"])
    assert e.value.code == 0
    assert f"audionet dns {cmd} " in capsys.readouterr().out


def test_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dns", "serve", "bad..zone", "--port", "1"]) == 1
    assert "zone" in capsys.readouterr().err
    assert main(["dns", "play", ZONE, "--server", "127.0.0.1:notaport"]) == 1
    assert "bad port" in capsys.readouterr().err
    assert main(["dns", "serve", ZONE, "--rrl-rate", "0"]) == 1
    assert "rate limiting: the rate limit must be above 0" in capsys.readouterr().err
    assert main(["dns", "serve", ZONE, "--rrl-allow", "10.0.0.0/40"]) == 1
    assert "not a network: '10.0.0.0/40' (example: 192.0.2.0/24" in capsys.readouterr().err
    assert main(["dns", "serve", ZONE, "--rrl-off", "--rrl-allow", "10.0.0.0/8"]) == 1
    assert "--rrl-allow has no effect with --rrl-off" in capsys.readouterr().err


def test_metrics_port() -> None:
    import urllib.request

    mport = free_port()
    proc, port = serve("--metrics-port", str(mport), "--rrl-rate", "5")
    try:
        for name in ("config.main", "nothing"):
            dns.query.udp(
                dns.message.make_query(f"{name}.{ZONE}", "TXT"), "127.0.0.1", port=port, timeout=2
            )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # 20 at once: over the limit
            for _ in range(20):
                s.sendto(dns.message.make_query(ZONE, "SOA").to_wire(), ("127.0.0.1", port))
        time.sleep(0.5)
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
        )
        assert 'aodns_queries_total{qtype="TXT",result="NOERROR"}' in text
        assert 'aodns_queries_total{qtype="TXT",result="NXDOMAIN"}' in text
        # The serve() probe and the two queries took 3 of the 5 banked: about 2 of the 20 are
        # answered (more if the bucket refilled meanwhile, at 5/s), then every second limited
        # answer slipped.
        values = {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("aodns_rrl_")
        }
        slipped, dropped = values["aodns_rrl_slipped_total"], values["aodns_rrl_dropped_total"]
        assert 14 <= slipped + dropped <= 18 and 0 <= dropped - slipped <= 1
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("kind", ["file", "stdin"])
def test_file_and_stdin_sources(kind: str, tmp_path: Path) -> None:
    from audionet.audio.format import AudioFormat
    from audionet.audio.sources import ToneSource
    from audionet.audio.wav import write_wav

    fmt = AudioFormat(16000)
    pcm = ToneSource(660, fmt, seconds=1.0).read(16000)
    if kind == "file":
        wav = tmp_path / "in.wav"
        write_wav(wav, AudioFormat(16000), pcm)
        proc, port = serve("--source", f"file:{wav}")  # 1 s of audio, looped
    else:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "audionet",
            "dns",
            "serve",
            ZONE,
            "--port",
            str(port),
            "--source",
            "stdin",
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert proc.stdin is not None
        proc.stdin.write(pcm * 8)  # 8 s of raw s16le 16 kHz mono
        proc.stdin.flush()
    try:
        time.sleep(3.0)
        out = tmp_path / "out.wav"
        rc = main(
            [
                "dns",
                "play",
                ZONE,
                "--server",
                f"127.0.0.1:{port}",
                "--out",
                str(out),
                "--duration",
                "2",
                "--target",
                "1",
            ]
        )
        assert rc == 0
        fmt_, got = read_wav(out)
        assert abs(dominant_frequency(got, fmt_) - 660) < 3
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize(
    ("choice", "logged"), [("asyncio", "asyncio datagrams"), ("mmsg", "recvmmsg/sendmmsg")]
)
def test_udp_io_choice(choice: str, logged: str) -> None:
    from audionet.dns.mmsg import unavailable

    if choice == "mmsg" and unavailable() is not None:
        pytest.skip(f"no batched UDP here: {unavailable()}")
    port = free_port()
    cmd = [sys.executable, "-m", "audionet", "-v", "dns", "serve", ZONE, "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--udp-io", choice], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "listening" in line:
                assert f"UDP I/O: {logged}" in line
                break
        else:
            pytest.fail("the server never said it was listening")
        q = dns.message.make_query(f"config.main.{ZONE}", "TXT")
        assert dns.query.udp(q, "127.0.0.1", port=port, timeout=5).answer
    finally:
        proc.terminate()
        proc.wait(10)
