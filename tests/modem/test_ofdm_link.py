"""The OFDM PHY under the unchanged link layer: file transfers, a line that gets worse, WAV files
through an independent channel simulator, and the CLI."""

from __future__ import annotations

import random
import wave
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from audionet.cli.main import main
from audionet.modem.backends import SimulatedCable
from audionet.modem.channel import PROFILES, Channel, simulate
from audionet.modem.link import ModemEndpoint, Station
from audionet.modem.loopback import run_loopback
from audionet.modem.phy import get_phy
from audionet.modem.phy.base import Samples
from audionet.modem.phy.ofdm import OfdmPhy
from audionet.modem.proto.host import ConnectionHost
from audionet.modem.proto.ping import Pinger


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.mark.parametrize(
    "channel,phy,size,floor",
    [
        ("cable", "ofdm", 200_000, 90e3),
        ("cable-hard", "ofdm", 150_000, 45e3),
        ("phone", "ofdm-phone", 40_000, 13e3),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_file_transfer_intact(
    tmp_path: Path, channel: str, phy: str, size: int, floor: float, seed: int
) -> None:
    """Smaller files than the benchmark's 1 MB (the handshake and the first frames at the start
    mode weigh more), so the floors sit a little below the goals."""
    src = random_file(tmp_path / "in.bin", size, seed)
    out = tmp_path / "out" / "copy.bin"
    result = run_loopback(src, out, channel=channel, phy=phy, seed=seed)
    assert result.ok, result.error
    assert out.read_bytes() == src.read_bytes()
    assert result.goodput >= floor, result


class Worsening:
    """A cable whose noise rises 18 dB after ``at`` seconds (someone turned up a noisy amplifier)."""

    def __init__(self, rate: int, at: float, seed: int) -> None:
        self.good = Channel(PROFILES["cable"], rate, seed=seed)
        self.bad = Channel(PROFILES["cable"].replace(snr_db=22.0), rate, seed=seed)
        self.at = round(at * rate)
        self.n = 0

    def process(self, samples: Samples) -> Samples:
        self.n += samples.size
        good, bad = self.good.process(samples), self.bad.process(samples)
        return good if self.n < self.at else bad


def test_the_link_steps_down_when_the_line_worsens_and_the_file_still_arrives(
    tmp_path: Path,
) -> None:
    from audionet.modem.apps import FILE_PORT, FileClient, FileServer
    from audionet.modem.proto.frame import Address

    src = random_file(tmp_path / "in.bin", 400_000)
    out = tmp_path / "out" / "copy.bin"
    out.parent.mkdir()
    phys = [OfdmPhy("ofdm"), OfdmPhy("ofdm")]
    server = FileServer(out.parent)
    client = FileClient(Address(2, FILE_PORT), out.name, src.parent, local=src)
    from audionet.modem.loopback import default_config

    config = default_config(phys[0])
    a = Station(ModemEndpoint(ConnectionHost(1, config, seed=1), phys[0]), [client])
    b = Station(ModemEndpoint(ConnectionHost(2, config, seed=2), phys[1]), [server])
    cable = SimulatedCable(a, b, channel="cable", seed=3)
    cable.ab = Worsening(48000, 10.0, seed=4)  # station 1 to station 2 gets worse after 10 s
    modes = []
    cable.run(until=lambda: client.done, seconds=300, on_step=lambda now: modes.append(
        (now, phys[0].link.tx_mode().bit_rate(phys[0].profile))))  # fmt: skip
    client.raise_for_error()
    assert out.read_bytes() == src.read_bytes()
    before = max(r for t, r in modes if 5 < t < 10)
    after = [r for t, r in modes if t > 20]
    assert before > 120e3 and max(after) < 0.8 * before  # it stepped down and stayed there
    assert b.endpoint.stats.frames_good > 0


def test_ping_over_ofdm_phone() -> None:
    from audionet.modem.apps import PingClient
    from audionet.modem.proto.frame import Address

    app = PingClient(Pinger(Address(2, 0), count=4, interval=0.5))
    a = Station(ModemEndpoint(ConnectionHost(1, seed=1), get_phy("ofdm-phone")), [app])
    b = Station(ModemEndpoint(ConnectionHost(2, seed=2), get_phy("ofdm-phone")), [])
    SimulatedCable(a, b, channel="phone").run(until=lambda: app.done, seconds=60)
    assert app.pinger.stats().received == 4


def independent_line(x: np.ndarray, rate: int, seed: int) -> np.ndarray:
    """Not our channel module: scipy's polyphase resampler for a 208 ppm clock offset
    (4801/4800), a 6th-order Chebyshev low-pass at 16 kHz, a 100 Hz high-pass, inverted polarity,
    a DC offset, -10 dB of level, and white noise 36 dB below the signal."""
    y = signal.resample_poly(x, 4801, 4800)
    y = signal.sosfilt(signal.cheby1(6, 0.5, 16000, fs=rate, output="sos"), y)
    y = signal.sosfilt(signal.butter(2, 100, "highpass", fs=rate, output="sos"), y)
    y = -0.316 * y + 0.05
    rms = float(np.sqrt(np.mean(y[np.abs(y) > 1e-4] ** 2)))
    return y + np.random.default_rng(seed).normal(0, rms * 10 ** (-36 / 20), y.size)


def read_pcm(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as w:
        rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    return rate, np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768


def write_pcm(path: Path, rate: int, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes())


@pytest.mark.parametrize("rate", [48000, 44100])
def test_encoded_wav_through_an_independent_channel_decodes_byte_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: int
) -> None:
    data = random.Random(5).randbytes(60_000)
    (tmp_path / "in.bin").write_bytes(data)
    tx, rx, out = tmp_path / "tx.wav", tmp_path / "rx.wav", tmp_path / "out.bin"
    assert main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(tx),
                 "--rate", str(rate)]) == 0  # fmt: skip
    got_rate, x = read_pcm(tx)
    assert got_rate == rate
    write_pcm(rx, rate, independent_line(x, rate, seed=6))
    assert main(["modem", "decode", str(rx), "-o", str(out)]) == 0
    assert out.read_bytes() == data
    assert "0 bad" in capsys.readouterr().out


def test_cli_loopback_ofdm_phone_and_fixed_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = random_file(tmp_path / "in.bin", 30_000)
    args = ["modem", "loopback", str(src), "-o", str(tmp_path / "o.bin"), "--channel", "phone"]
    assert main([*args, "--phy", "ofdm-phone"]) == 0
    out = capsys.readouterr().out
    assert "SHA-256 matches" in out and "ofdm-phone" in out
    args = ["modem", "loopback", str(src), "-o", str(tmp_path / "p.bin"), "--channel", "cable"]
    assert main([*args, "--mode", "qam256-5/6"]) == 0
    rate = float(capsys.readouterr().out.split("goodput ")[1].split()[0])
    assert rate > 60


def test_cli_rejects_a_bad_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = random_file(tmp_path / "in.bin", 100)
    assert main(["modem", "encode", str(src), "-o", str(tmp_path / "t.wav"), "--mode", "x"]) == 1
    assert "unknown mode" in capsys.readouterr().err


def test_probe_both_directions_of_a_simulated_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["modem", "probe", "--channel", "cable-hard"]) == 0
    out = capsys.readouterr().out
    assert "out (we send" in out and "in (the peer sends" in out
    # the 10 kHz low-pass: the lowest group carries 256-QAM or more, the highest is off
    body = [r for r in out.splitlines() if r.startswith("| ") and r[2].isdigit()]
    assert len(body) == 32
    first, last = body[0].split("|"), body[-1].split("|")
    assert int(first[3]) >= 8 and last[3].strip() == "0" and last[5].strip() == "0"
    assert float(first[2]) > 25 and float(last[2]) < 10


def test_analyze_draws_the_picture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = random.Random(7).randbytes(40_000)
    (tmp_path / "in.bin").write_bytes(data)
    tx, rx, png = tmp_path / "tx.wav", tmp_path / "rx.wav", tmp_path / "rx.png"
    assert main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(tx)]) == 0
    rate, x = read_pcm(tx)
    y = np.asarray(simulate(x, rate, PROFILES["cable"], seed=3), dtype=np.float64)
    y[rate : rate + 40000] = 0.0  # a drop-out of 0.8 s: that frame will be bad
    write_pcm(rx, rate, y)
    capsys.readouterr()
    assert main(["modem", "analyze", str(rx), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "3 frames in" in out and out.count("good") == 2 and out.count("BAD") == 1
    assert "clock   +50" in out or "clock   +49" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_analyze_without_matplotlib_says_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    data = random.Random(8).randbytes(3000)
    (tmp_path / "in.bin").write_bytes(data)
    tx = tmp_path / "tx.wav"
    assert main(["modem", "encode", str(tmp_path / "in.bin"), "-o", str(tx)]) == 0
    real = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["modem", "analyze", str(tx), "--plot", str(tmp_path / "x.png")]) == 1
    assert "pip install 'audionet[plot]'" in capsys.readouterr().err
