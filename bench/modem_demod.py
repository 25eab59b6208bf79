"""Manchester PHY benchmark: demodulation speed, error rates per channel profile, amodem alongside.

Three tables, printed and written to ``bench/results/modem_demod.md``:

1. speed: seconds of audio demodulated per second of CPU time (x real time, best of 3), per bit
   length, fed in chunks of 2048 samples as a sound card would deliver them (the goal is 50x or more),
   and per chunk size;
2. errors: frames of 256 bytes sent through each channel profile of :mod:`audionet.modem.channel`,
   frame error rate (missing or failing CRC-32), bit error rate over the frames found, quality, and
   payload rate per second of air time;
3. side by side with amodem (PyPI ``amodem``, OFDM/QAM, optional: skipped when not installed) on the
   same simulated channels: the same bytes sent one way, success, air time and receive speed.

Usage: ``python bench/modem_demod.py [--frames N] [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from audionet.modem.channel import PROFILES, simulate
from audionet.modem.phy import ManchesterPhy

RESULTS = Path(__file__).resolve().parent / "results" / "modem_demod.md"
PAYLOAD = 256  # bytes per frame, the seed's frame size
CHUNK = 2048  # samples per feed() call (a typical sound-card buffer)


class Framing:
    """Stand-in frame layer: length, its complement, payload, CRC-32 (like our real frames)."""

    header_size = 4

    def total_length(self, header: bytes) -> int | None:
        n = int.from_bytes(header[:2], "big")
        return 8 + n if int.from_bytes(header[2:4], "big") == n ^ 0xFFFF else None

    @staticmethod
    def make(payload: bytes) -> bytes:
        n = len(payload)
        head = n.to_bytes(2, "big") + (n ^ 0xFFFF).to_bytes(2, "big")
        return head + payload + zlib.crc32(payload).to_bytes(4, "big")

    @staticmethod
    def valid(frame: bytes) -> bool:
        return zlib.crc32(frame[4:-4]).to_bytes(4, "big") == frame[-4:]


def transmit(
    phy: ManchesterPhy, count: int, seed: int
) -> tuple[np.ndarray, list[bytes], list[int]]:
    rng = np.random.default_rng(seed)
    mod = phy.modulator()
    frames = [Framing.make(rng.bytes(PAYLOAD)) for _ in range(count)]
    parts, starts, pos = [np.zeros(2000, np.float32)], [], 2000
    for f in frames:
        s = mod.modulate(f)
        starts.append(pos)
        parts.append(s)
        pos += s.size
    parts.append(np.zeros(2000, np.float32))
    return np.concatenate(parts), frames, starts


def demodulate(phy: ManchesterPhy, x: np.ndarray, chunk: int = CHUNK) -> tuple[list[Any], float]:
    dem = phy.demodulator(Framing())
    t = time.process_time()  # CPU time: the machine may be shared with other work
    got = []
    for i in range(0, x.size, chunk):
        got += dem.feed(x[i : i + chunk])
    return got, time.process_time() - t


def chunk_table(count: int) -> list[str]:
    phy = ManchesterPhy(samples_per_bit=8)
    x, frames, _ = transmit(phy, count, seed=3)
    audio = x.size / phy.sample_rate
    rows = ["| samples per feed() | demod x real time | frames ok |", "|---:|---:|---:|"]
    for chunk in (256, 1024, 2048, 8192, 44100):
        got, _ = demodulate(phy, x, chunk)
        best = min(demodulate(phy, x, chunk)[1] for _ in range(3))
        rows.append(
            f"| {chunk} | {audio / best:.0f}x | {sum(f.data in frames for f in got)}/{count} |"
        )
    return rows


def speed_table(count: int) -> list[str]:
    rows = [
        "| samples/bit | bit/s | audio s | demod s | demod x real time | mod x real time | frames ok |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for spb in (5, 6, 8, 10, 12, 16):
        phy = ManchesterPhy(samples_per_bit=spb)
        t = time.process_time()
        x, frames, _ = transmit(phy, count, seed=spb)
        mod_s = time.process_time() - t
        audio = x.size / phy.sample_rate
        best = min(demodulate(phy, x)[1] for _ in range(3))
        got, _ = demodulate(phy, x)
        ok = sum(f.data in frames for f in got)
        rows.append(
            f"| {spb} | {phy.bit_rate:.0f} | {audio:.1f} | {best:.2f} | {audio / best:.0f}x "
            f"| {audio / mod_s:.0f}x | {ok}/{count} |"
        )
    return rows


def error_row(profile: str, spb: int, count: int) -> str:
    phy = ManchesterPhy(samples_per_bit=spb)
    x, frames, starts = transmit(phy, count, seed=100 + spb)
    cfg = PROFILES[profile]
    y = simulate(x, phy.sample_rate, cfg, seed=spb)
    got, _ = demodulate(phy, y)
    lead = round(cfg.pad_before * phy.sample_rate)
    expected = np.array([lead + s * (1 + cfg.drift_ppm * 1e-6) for s in starts])
    tolerance = phy.modulator().duration(len(frames[0])) * phy.sample_rate / 4
    good, bit_errors, bits, quality = 0, 0, 0, []
    for f in got:
        i = int(np.argmin(np.abs(expected - f.position)))
        if abs(expected[i] - f.position) > tolerance or len(f.data) != len(frames[i]):
            continue
        sent = np.unpackbits(np.frombuffer(frames[i], np.uint8))
        seen = np.unpackbits(np.frombuffer(f.data, np.uint8))
        bit_errors += int(np.count_nonzero(sent != seen))
        bits += sent.size
        good += Framing.valid(f.data) and f.data == frames[i]
        quality.append(f.quality)
    air = y.size / phy.sample_rate
    fer = 1 - good / count
    ber = f"{bit_errors / bits:.1e}" if bits else "-"
    q = f"{np.mean(quality):.2f}" if quality else "-"
    return (
        f"| {profile} | {spb} | {phy.bit_rate:.0f} | {len(got)}/{count} | {fer:.1%} | {ber} | {q} "
        f"| {good * PAYLOAD * 8 / air / 1000:.2f} |"
    )


def error_table(count: int) -> list[str]:
    rows = [
        "| profile | samples/bit | bit/s | frames found | FER | BER (found frames) | quality "
        "| payload kbit/s of air time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for profile in PROFILES:
        for spb in (8, 12, 16, 20, 24):
            rows.append(error_row(profile, spb, count))
    return rows


def amodem_table(nbytes: int) -> list[str]:
    try:
        from amodem import common, config, main
    except ImportError:
        return ["(amodem not installed: `pip install amodem` to add this table)"]
    import logging

    logging.getLogger("amodem").setLevel(logging.CRITICAL)
    # amodem 1.16 calls ndarray.tostring(), which numpy 2 removed.
    common.dumps = lambda sym: (sym.real * common.scaling).astype("int16").tobytes()
    data = np.random.default_rng(1).bytes(nbytes)
    rows = [
        "| modem | profile | bytes intact | air time s | payload kbit/s of air time "
        "| receive x real time | vs Manchester-8 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ours: dict[str, float] = {}
    phy = ManchesterPhy(samples_per_bit=8)
    frames_needed = -(-nbytes // PAYLOAD)
    for profile, cfg in PROFILES.items():
        x, frames, _ = transmit(phy, frames_needed, seed=7)
        y = simulate(x, phy.sample_rate, cfg, seed=3)
        got, dt = demodulate(phy, y)
        ok = {f.data for f in got if Framing.valid(f.data)} & set(frames)
        air = y.size / phy.sample_rate
        intact = len(ok) * PAYLOAD
        ours[profile] = intact * 8 / air / 1000
        rows.append(
            f"| Manchester 8 samples/bit (frames, no ARQ) | {profile} | {intact}/{frames_needed * PAYLOAD} "
            f"| {air:.1f} | {ours[profile]:.2f} | {air / dt:.0f}x | 1.00 |"
        )
    for rate in (8, 24, 48):
        acfg = config.bitrates[rate]
        tx = io.BytesIO()
        main.send(config=acfg, src=io.BytesIO(data), dst=tx, gain=0.5)
        audio = common.loads(tx.getvalue())
        for profile, cfg in PROFILES.items():
            fs = int(acfg.Fs)
            y = simulate(audio, fs, cfg, seed=3).astype(np.float64)
            rx = io.BytesIO()
            t = time.process_time()
            try:
                success = main.recv(config=acfg, src=io.BytesIO(common.dumps(y)), dst=rx)
            except Exception:
                success = False
            dt = time.process_time() - t
            intact = success and rx.getvalue() == data
            air = y.size / fs
            goodput = nbytes * 8 / air / 1000 if intact else 0.0
            ratio = f"{goodput / ours[profile]:.2f}" if ours[profile] else "-"
            rows.append(
                f"| amodem {rate} kbit/s ({fs // 1000} kHz) | {profile} "
                f"| {nbytes if intact else 0}/{nbytes} | {air:.1f} | {goodput:.2f} "
                f"| {air / dt:.0f}x | {ratio} |"
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=40, help="frames per measurement (default 40)")
    ap.add_argument("--quick", action="store_true", help="10 frames, a quick look")
    ap.add_argument("--amodem-bytes", type=int, default=4096, help="bytes sent one way (4096)")
    args = ap.parse_args()
    count = 10 if args.quick else args.frames
    command = "python bench/modem_demod.py" + (" --quick" if args.quick else "")
    out = [
        "# Manchester PHY: demodulation speed and error rates",
        "",
        f"Command: `{command}` ({count} frames of {PAYLOAD} bytes per row; "
        f"feed() in chunks of {CHUNK} samples; 44.1 kHz; speeds in CPU time).",
        "",
        "## Speed",
        "",
        *speed_table(count),
        "",
        "Per `feed()` call there is a fixed cost of about 0.2 ms, so block size matters (8 samples/bit):",
        "",
        *chunk_table(count),
        "",
        "## Errors per channel profile",
        "",
        *error_table(count),
        "",
        f"## Side by side with amodem ({args.amodem_bytes} bytes one way, same channel simulator)",
        "",
        *amodem_table(args.amodem_bytes),
        "",
    ]
    text = "\n".join(out)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
