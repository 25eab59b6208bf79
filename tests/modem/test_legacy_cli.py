"""``audionet modem ... --legacy`` against the emulated original program, in real time over the
TCP virtual cable (the original runs in this process, the command in its own), and the legacy
limits of every command."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from audionet.audio.format import AudioFormat
from audionet.audio.wav import write_wav
from audionet.cli.main import main
from audionet.errors import AudioError
from audionet.modem.backends import make_channel, to_pcm
from audionet.modem.phy import ManchesterPhy
from audionet.modem.proto.frame import LEGACY, Address, Flags, Frame
from audionet.modem.realtime import TcpCable, run_realtime
from tests.modem.original.audio import Address as JAddress
from tests.modem.original.station import OriginalStation, file_client, file_server
from tests.modem.test_cli import free_port

CLI = [sys.executable, "-m", "audionet", "modem"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


class RealTime:
    """An original station on one end of the virtual cable, driven in real time in a thread."""

    def __init__(self, station: OriginalStation, port: int, *, serve: bool) -> None:
        self.station = station
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(port, serve), daemon=True)
        self._thread.start()

    def _run(self, port: int, serve: bool) -> None:
        async def main() -> None:
            line = make_channel("cable", 44100, seed=port)
            if serve:
                cable = await TcpCable.serve("127.0.0.1", port, line)
            else:
                for _ in range(100):  # the listener may still be starting
                    try:
                        cable = await TcpCable.connect("127.0.0.1", port, line)
                        break
                    except AudioError:
                        await asyncio.sleep(0.2)
                else:
                    raise AssertionError("no listener on the cable")
            try:
                await run_realtime(self.station, cable, until=self.stop.is_set)  # type: ignore[arg-type]
            finally:
                await cable.close()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by close()
            self.error = exc

    def close(self) -> None:
        self.stop.set()
        self._thread.join(10)
        assert self.error is None, self.error
        assert self.station.deaths == [], self.station.deaths


def audionet(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip


def test_ping_and_send_against_the_original(tmp_path: Path) -> None:
    port = free_port()
    base = tmp_path / "original"
    base.mkdir()
    orig = OriginalStation(55)
    file_server(orig, 20, JAddress(1, 10), str(base))
    line = RealTime(orig, port, serve=True)
    audio = ["--legacy", "--audio", f"cable:127.0.0.1:{port}", "--timeout", "40"]
    upload = tmp_path / "report.bin"
    upload.write_bytes(random.Random(8).randbytes(1500))
    try:
        ping = audionet("ping", "--peer", "55", "--count", "2", "--interval", "0.3", *audio)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert "2 sent" in ping.stdout and "rtt min/avg/max" in ping.stdout
    finally:
        line.close()
    # the original program holds one session per start: a fresh one for the transfer
    orig = OriginalStation(55)
    file_server(orig, 20, JAddress(1, 10), str(base))
    line = RealTime(orig, port, serve=True)
    try:
        sent = audionet("send", str(upload), "--peer", "55:20", "--address", "1:10", *audio)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "sent" in sent.stdout
    finally:
        line.close()
    assert (base / "report.bin").read_bytes() == upload.read_bytes()


def test_get_from_the_original_and_listen_for_it(tmp_path: Path) -> None:
    base = tmp_path / "original"
    (base / "folder1").mkdir(parents=True)
    (base / "folder1" / "notes.txt").write_text("from the original\n")
    port = free_port()
    orig = OriginalStation(55)
    file_server(orig, 20, JAddress(1, 10), str(base))
    line = RealTime(orig, port, serve=True)
    audio = ["--legacy", "--audio", f"cable:127.0.0.1:{port}", "--timeout", "40"]
    try:
        got = audionet("get", "folder1/notes.txt", "-o", str(tmp_path / "got"), "--peer", "55:20",
                       "--address", "1:10", *audio)  # fmt: skip
        assert got.returncode == 0, got.stdout + got.stderr
    finally:
        line.close()
    assert (tmp_path / "got" / "folder1" / "notes.txt").read_text() == "from the original\n"

    # the original is the client: it sends a file to 'audionet modem listen --legacy'
    port = free_port()
    served = tmp_path / "served"
    listener = subprocess.Popen(
        [*CLI, "listen", "--root", str(served), "--address", "2:21", "--legacy",
         "--audio", f"cable:127.0.0.1:{port}", "--timeout", "60"],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    orig = OriginalStation(55)
    ftp = file_client(orig, 10, JAddress(2, 21), str(base), syn=False)
    orig.main(lambda: (ftp.send_file("folder1/notes.txt"), (yield from ()))[1])
    line = RealTime(orig, port, serve=False)
    target = served / "folder1" / "notes.txt"
    try:
        deadline = time.monotonic() + 40
        while not target.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        line.close()
        listener.terminate()
        out, _ = listener.communicate(timeout=10)
    assert target.read_text() == "from the original\n", out
    assert "received" in out and "notes.txt(18bytes)" in "".join(out.split())


COMMANDS_WITH_FRAME_SIZE: list[list[str]] = [
    ["loopback", "{file}", "-o", "{out}"],
    ["encode", "{file}", "-o", "{out}"],
    ["listen", "--root", "{out}"],
    ["send", "{file}"],
    ["get", "x", "-o", "{out}"],
    ["ping"],
]


@pytest.mark.parametrize("command", COMMANDS_WITH_FRAME_SIZE, ids=lambda c: c[0])
def test_legacy_refuses_frames_the_original_reads_as_header_only(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f.bin").write_bytes(b"x")
    args = [a.format(file=tmp_path / "f.bin", out=tmp_path / "o") for a in command]
    assert main(["modem", *args, "--legacy", "--frame-size", "40000"]) == 1
    err = capsys.readouterr().err
    assert "32767" in err and "header-only" in err
    assert not (tmp_path / "o").exists()  # refused before anything started


def test_a_legacy_loopback_is_full_duplex_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f.bin").write_bytes(b"x")
    args = ["modem", "loopback", str(tmp_path / "f.bin"), "-o", str(tmp_path / "o")]
    assert main([*args, "--legacy", "--half-duplex"]) == 1
    assert "carrier sense" in capsys.readouterr().err


def test_the_largest_legacy_frame_goes_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = random.Random(5).randbytes(32767)
    (tmp_path / "in.bin").write_bytes(data)
    wav, out = tmp_path / "tx.wav", tmp_path / "out.bin"
    base = ["--legacy", "--bit-length", "4"]
    assert main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(wav), "--frame-size", "32767", *base]) == 0  # fmt: skip
    assert main(["modem", "decode", str(wav), "-o", str(out), *base]) == 0
    assert out.read_bytes() == data and "1 frames good, 0 bad" in capsys.readouterr().out


@pytest.mark.parametrize("legacy", [True, False])
def test_decode_counts_frames_whose_header_checksum_fails(
    legacy: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audionet.modem.proto.frame import AUDIONET

    profile = LEGACY if legacy else AUDIONET
    phy = ManchesterPhy(legacy=legacy, amplitude=1.0 if legacy else None)
    mod = phy.modulator()
    chunks = [b"first ", b"second ", b"third"]
    parts = [np.zeros(4410, np.float32)]
    for i, chunk in enumerate(chunks):
        flags = (Flags.BEG if i == 0 else Flags.NONE) | (Flags.END if i == 2 else Flags.NONE)
        wire = bytearray(
            profile.encode(Frame(Address(1, 0), Address(2, 0), i, flags, payload=chunk))
        )
        if i == 1:
            wire[1] ^= 0x04  # one bit of the header: its checksum fails
        parts.append(mod.modulate(bytes(wire)))
    parts.append(np.zeros(4410, np.float32))
    wav = tmp_path / "rx.wav"
    write_wav(wav, AudioFormat(44100, 1, 1 if legacy else 2), to_pcm(np.concatenate(parts)))
    flag = ["--legacy"] if legacy else ["--phy", "manchester"]  # ofdm is the default PHY
    assert main(["modem", "decode", str(wav), "-o", str(tmp_path / "out"), *flag]) == 1
    assert "2 frames good, 1 bad" in capsys.readouterr().out
