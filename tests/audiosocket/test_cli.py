"""``audionet audiosocket serve / call / bench`` as a user runs them (real processes, real sockets)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from audionet.audio.format import AudioFormat
from audionet.audio.wav import read_wav, write_wav
from audionet.cli.main import main

from .util import tagged_audio

CLI = [sys.executable, "-m", "audionet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(*args: str) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([*CLI, "audiosocket", "serve", "--port", str(port), *args])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "audiosocket", *args], capture_output=True, text=True, timeout=120)


def test_call_plays_into_the_record_app(tmp_path: Path) -> None:
    rec = tmp_path / "calls"
    rec.mkdir()
    pcm = tagged_audio(1.0)
    write_wav(tmp_path / "in.wav", AudioFormat(8000), pcm)
    with server("--app", f"record:{rec}"):
        pass
    with server("--app", f"record:{rec}") as port:
        res = cli(
            "call", f"127.0.0.1:{port}", "--play", str(tmp_path / "in.wav"),
            "--record", str(tmp_path / "out.wav"), "--dtmf", "12",
            "--uuid", "40325ec2-5efd-4bd3-805f-53576e581d13",
        )  # fmt: skip
        time.sleep(0.3)
    assert res.returncode == 0, res.stderr
    assert "sent 50 frames" in res.stderr
    _fmt, data = read_wav(rec / "40325ec2-5efd-4bd3-805f-53576e581d13.wav")
    assert data == pcm
    _, back = read_wav(tmp_path / "out.wav")
    assert len(back) > 0 and not any(back)  # the record app answers with the clock's silence


def test_bench_against_the_echo_server_with_two_workers() -> None:
    mport = free_port()
    with server("--app", "echo", "--workers", "2", "--metrics-port", str(mport)) as port:
        res = cli("bench", f"127.0.0.1:{port}", "--calls", "40", "--duration", "1")
        time.sleep(1.5)  # every worker reports once a second
        text = (
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
        )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "40 / 40" in res.stdout and "frames lost" in res.stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # One exposition for both processes: the totals are the sum of the workers' own counts.
    assert samples[("audiosocket_calls_total", ())] == 40
    per_worker = {k[1]: v for k, v in samples.items() if k[0] == "audiosocket_worker_calls_total"}
    assert len(per_worker) == 2 and sum(per_worker.values()) == 40
    assert samples[("audiosocket_worker_up", (("worker", "0"),))] == 1
    assert samples[("audiosocket_worker_up", (("worker", "1"),))] == 1
    assert samples[("audiosocket_frames_total", (("direction", "in"),))] >= 40 * 40


def test_bench_fails_when_frames_are_lost() -> None:
    with server("--app", "silence") as port:  # answers, never echoes
        res = cli("bench", f"127.0.0.1:{port}", "--calls", "3", "--duration", "0.5")
    assert res.returncode == 1


def test_bench_with_every_call_timed() -> None:
    with server("--app", "echo") as port:
        res = cli(
            "bench", f"127.0.0.1:{port}", "--calls", "16", "--duration", "1",
            "--latency-sample", "1",
        )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "16 / 16" in res.stdout and "echo latency p99" in res.stdout


@pytest.mark.parametrize("command", ["serve", "call", "bench"])
def test_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["audiosocket", command, "--help"])
    assert "audionet audiosocket " + command in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["audiosocket", "serve", "--app", "karaoke"],
        ["audiosocket", "call", "nohostport"],
        ["audiosocket", "call", "127.0.0.1:\u00b9"],  # isdigit() says yes, int() says no
        ["audiosocket", "call", "127.0.0.1:9", "--dtmf", "x"],
        ["audiosocket", "bench", "127.0.0.1:9", "--calls", "0"],
        ["audiosocket", "bench", "127.0.0.1:9", "--latency-sample", "0"],
        ["audiosocket", "bench", "127.0.0.1:9", "--latency-sample", "1.5"],
    ],
)
def test_bad_arguments_give_clear_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    assert "audionet: error:" in capsys.readouterr().err
