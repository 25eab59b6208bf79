"""OFDM modem benchmark: our OFDM link against amodem 1.16 on the same simulated lines.

Per channel profile (``cable``, ``cable-hard``, ``phone``):

1. **ours, link**: a 1 MB random file through the ARQ link (``run_loopback``: two stations, a
   channel simulator each way, rate adaptation, virtual time); goodput in kbit/s of air time,
   whether the file arrived intact (SHA-256), and the receiving station's CPU time over air time.
2. **ours, one way**: ``--oneway`` bytes as frames in the mode a probe picked for that line,
   written to a WAV-like signal, passed through the channel simulator (the *channel file*), decoded;
   the receiver's CPU time over the file's air time is its speed ("x real time", one core).
3. **amodem 1.16** (PyPI, OFDM-like, no FEC; installed by this script into its own venv with
   numpy < 2, which it needs), one way, the same bytes through the same channel simulator at its
   own sample rate: its fastest preset that delivers the bytes intact (presets tried from the
   fastest down), and its receiver's CPU time over air time.

``--thresholds`` instead measures the SNR each constellation and code rate needs on an AWGN
channel with our demapper and LDPC decoder (the table behind rate adaptation). ``--quick`` runs
smaller files. Writes ``bench/results/modem_ofdm.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np

from audionet.modem.channel import PROFILES, simulate
from audionet.modem.loopback import run_loopback
from audionet.modem.phy.ofdm import OfdmDemodulator, OfdmPhy
from audionet.modem.probe import probe_simulated

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "modem_ofdm.md"
AMODEM_VENV = Path(
    os.environ.get("AUDIONET_BENCH_CACHE", Path.home() / ".cache" / "audionet-bench")
)
AMODEM_VENV = AMODEM_VENV / "amodem-1.16"
LINES = {"cable": "ofdm", "cable-hard": "ofdm", "phone": "ofdm-phone"}
GOALS = {"cable": 100.0, "cable-hard": 50.0, "phone": 14.4}
#: amodem presets (kbit/s) per line, fastest first: its 8 kHz presets for the phone line.
AMODEM_PRESETS = {
    "cable": (48, 42, 36, 32, 24, 16, 8, 2),
    "cable-hard": (48, 32, 24, 16, 8, 4, 2, 1),
    "phone": (8, 4, 2, 1),
}

AMODEM_HELPER = r"""
import io, json, logging, sys, time
import numpy as np
from amodem import common, config, main
logging.disable(logging.CRITICAL)
cmd, rate, src, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cfg = config.bitrates[rate]
if cmd == "send":
    out = io.BytesIO()
    main.send(config=cfg, src=open(src, "rb"), dst=out, gain=0.5)
    np.save(dst, common.loads(out.getvalue()).astype(np.float32))
    print(json.dumps({"fs": cfg.Fs}))
else:
    y = np.load(src).astype(np.float64)
    pcm = (np.clip(y, -1, 1) * common.scaling).astype("int16").tobytes()
    out = io.BytesIO()
    t = time.process_time()
    try:
        ok = bool(main.recv(config=cfg, src=io.BytesIO(pcm), dst=out))
    except Exception:
        ok = False
    cpu = time.process_time() - t
    open(dst, "wb").write(out.getvalue())
    print(json.dumps({"ok": ok, "cpu": cpu}))
"""


def amodem_python() -> Path:
    """The amodem venv's interpreter, creating the venv on first use (needs the package index)."""
    python = AMODEM_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing amodem 1.16 into {AMODEM_VENV} ...", file=sys.stderr, flush=True)
        venv.create(AMODEM_VENV, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "amodem==1.16", "numpy<2"],
            check=True,
        )
    return python


def ours_link(line: str, size: int, seed: int) -> dict[str, float | bool | str]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.bin"
        src.write_bytes(np.random.default_rng(seed).bytes(size))
        t = time.process_time()
        r = run_loopback(src, Path(tmp) / "out" / "copy.bin", channel=line, phy=LINES[line],
                         seed=seed)  # fmt: skip
        cpu = time.process_time() - t
    return {"kbps": r.goodput / 1000, "ok": r.ok, "air": r.seconds, "cpu": cpu,
            "frames": r.frames_sent, "retx": r.retransmissions}  # fmt: skip


def ours_oneway(line: str, data: bytes, seed: int) -> dict[str, float | bool | str]:
    """Frames in the probed mode through the channel, decoded; CPU time of the receiver only."""
    probe = probe_simulated(line, LINES[line], seed=seed)
    mode = probe.outbound.mode
    phy = OfdmPhy(LINES[line], mode=str(mode))
    size = phy.suggested_payload
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    mod = phy.modulator()
    tx = np.concatenate([mod.modulate(c) for c in chunks])
    rx = simulate(tx, phy.sample_rate, PROFILES[line], seed=seed)
    demod = OfdmDemodulator(phy.profile)
    t = time.process_time()
    got = []
    for i in range(0, rx.size + phy.sample_rate, 4096):
        block = rx[i : i + 4096]
        got += demod.feed(block if block.size else np.zeros(4096, np.float32))
    cpu = time.process_time() - t
    intact = sum(len(c) for c in chunks if c in {f.data for f in got})
    air = rx.size / phy.sample_rate
    return {"kbps": 8 * intact / air / 1000, "ok": intact == len(data), "air": air, "cpu": cpu,
            "mode": mode.describe() if mode else "-", "intact": intact}  # fmt: skip


def amodem_oneway(line: str, data: bytes, seed: int) -> dict[str, float | bool | str]:
    python = amodem_python()
    with tempfile.TemporaryDirectory() as tmp:
        helper, src = Path(tmp) / "helper.py", Path(tmp) / "in.bin"
        helper.write_text(AMODEM_HELPER)
        src.write_bytes(data)
        best: dict[str, float | bool | str] = {"kbps": 0.0, "ok": False, "preset": "none passed"}
        for preset in AMODEM_PRESETS[line]:
            tx, rx, out = Path(tmp) / "tx.npy", Path(tmp) / "rx.npy", Path(tmp) / "out.bin"
            run = [str(python), str(helper)]
            sent = json.loads(subprocess.run([*run, "send", str(preset), str(src), str(tx)],
                                             capture_output=True, text=True, check=True).stdout)  # fmt: skip
            fs = int(sent["fs"])
            y = simulate(np.load(tx), fs, PROFILES[line], seed=seed)
            np.save(rx, y)
            got = json.loads(subprocess.run([*run, "recv", str(preset), str(rx), str(out)],
                                            capture_output=True, text=True, check=True).stdout)  # fmt: skip
            air = y.size / fs
            intact = bool(got["ok"]) and out.read_bytes() == data
            if intact:
                return {"kbps": 8 * len(data) / air / 1000, "ok": True, "air": air,
                        "cpu": got["cpu"], "preset": f"{preset} kbit/s ({fs // 1000} kHz)"}  # fmt: skip
    return best


def thresholds(words: int) -> list[str]:
    """SNR (dB, Es/N0) at which each constellation and rate decodes ``words`` codewords with at
    most 1 % of them failing, on AWGN, in 0.5 dB steps."""
    from audionet.modem.phy.ofdm import ldpc
    from audionet.modem.phy.ofdm.mode import NAMES, RATES
    from audionet.modem.phy.ofdm.qam import get_constellation

    rng = np.random.default_rng(1)
    rows = ["| bits | " + " | ".join(RATES) + " |", "|---|" + "---:|" * len(RATES)]
    found: dict[tuple[int, str], float] = {}
    for b, name in NAMES.items():
        qam = get_constellation(name)
        cells = []
        for rate in RATES:
            code = ldpc.get_code(rate, 1944)
            snr = -3.0 + 3.2 * b * code.k / code.n
            while True:
                info = rng.integers(0, 2, (words, code.k)).astype(np.uint8)
                coded = code.encode(info)
                bits = coded.reshape(-1)
                pad = (-bits.size) % b
                sym = qam.modulate(np.concatenate((bits, np.zeros(pad, np.uint8))))
                nv = 10 ** (-snr / 10)
                noise = rng.normal(0, np.sqrt(nv / 2), (sym.size, 2)) @ np.array([1, 1j])
                llr = qam.demap((sym + noise)[None, :], nv).reshape(-1)[: bits.size]
                result = code.decode(llr.reshape(words, code.n), max_iterations=20)
                fer = 1.0 - float(np.mean(result.ok & np.all(result.bits == info, axis=1)))
                if fer <= 0.01:
                    break
                snr += 0.5
            found[(b, rate)] = snr
            cells.append(f"{snr:.1f}")
        rows.append(f"| {b} ({name}) | " + " | ".join(cells) + " |")
    rows.append("")
    rows.append("REQUIRED_SNR = " + repr(found))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000, help="file bytes for the link (1 MB)")
    ap.add_argument("--oneway", type=int, default=32_768, help="bytes one way (32 kB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="200 kB link, 16 kB one way")
    ap.add_argument("--no-amodem", action="store_true", help="skip amodem")
    ap.add_argument("--thresholds", type=int, default=0, metavar="WORDS",
                    help="measure the AWGN SNR thresholds with WORDS codewords per point")  # fmt: skip
    args = ap.parse_args()
    if args.thresholds:
        print("\n".join(thresholds(args.thresholds)))
        return 0
    size, oneway = (200_000, 16_384) if args.quick else (args.size, args.oneway)
    data = np.random.default_rng(args.seed + 100).bytes(oneway)
    command = "python bench/modem_ofdm.py" + (" --quick" if args.quick else "")
    rows = [
        "| line | modem | goodput kbit/s | goal | intact | air s | receiver x real time | notes |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    verdict = True
    for line in LINES:
        link = ours_link(line, size, args.seed)
        # The receiving station decodes the data frames; the CPU time is the whole simulation's
        # (both stations, both channels), so the receiver alone is faster than this ratio.
        met = bool(link["ok"]) and float(link["kbps"]) >= GOALS[line]
        verdict &= met
        rows.append(
            f"| {line} | ours ({LINES[line]}), ARQ link, {size // 1000} kB | "
            f"**{float(link['kbps']):.1f}** | {GOALS[line]:g} | {'yes' if link['ok'] else 'NO'} | "
            f"{float(link['air']):.1f} | {float(link['air']) / float(link['cpu']):.0f}x (whole sim) | "
            f"{link['frames']} frames, {link['retx']} resent{'' if met else ', GOAL MISSED'} |"
        )
        one = ours_oneway(line, data, args.seed)
        rows.append(
            f"| {line} | ours ({LINES[line]}), one way, {oneway // 1024} kB | "
            f"{float(one['kbps']):.1f} | | {'yes' if one['ok'] else 'NO'} | {float(one['air']):.1f} | "
            f"{float(one['air']) / float(one['cpu']):.0f}x | probed mode: {one['mode']} |"
        )
        if not args.no_amodem:
            am = amodem_oneway(line, data, args.seed)
            speed = f"{float(am['air']) / float(am['cpu']):.0f}x" if am["ok"] else "-"
            air = f"{float(am['air']):.1f}" if am["ok"] else "-"
            rows.append(
                f"| {line} | amodem 1.16, one way, {oneway // 1024} kB | {float(am['kbps']):.1f} | | "
                f"{'yes' if am['ok'] else 'NO'} | {air} | {speed} | best preset: {am['preset']} |"
            )
    text = "\n".join(
        [
            "# OFDM modem against amodem",
            "",
            f"Command: `{command}` (seed {args.seed}; CPU times on one core of a shared machine).",
            "",
            *rows,
            "",
        ]
    )
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    print(f"goals {'met' if verdict else 'NOT met'} ({digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
