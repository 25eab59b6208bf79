"""``audionet channel``: run a WAV file through the simulated audio line (cable, sound card, phone)."""

from __future__ import annotations

import argparse
import logging

import numpy as np
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from audionet.audio.format import AudioFormat, from_array, to_float
from audionet.audio.wav import read_wav, write_wav
from audionet.cli.main import add_command
from audionet.errors import UnsupportedFormatError
from audionet.modem.channel import PROFILES, get_profile, simulate

log = logging.getLogger(__name__)

EPILOG = """\
examples:
  audionet channel tx.wav rx.wav --profile cable
  audionet channel tx.wav rx.wav --profile cable-hard --seed 7
  audionet channel tx.wav rx.wav --profile clean --snr 20 --drift 300 --bits 8

profiles:
""" + "\n".join(
    f"  {name:<11} SNR {cfg.snr_db if cfg.snr_db is not None else '-'} dB, "
    f"drift {cfg.drift_ppm:g} ppm"
    + (", telephone band + G.711" if cfg.telephone else "")
    + (", clicks" if cfg.impulse_rate else "")
    + (", inverted" if cfg.invert else "")
    for name, cfg in PROFILES.items()
)


def run(args: argparse.Namespace) -> int:
    cfg = get_profile(args.profile)
    if args.snr is not None:
        cfg = cfg.replace(snr_db=args.snr)
    if args.drift is not None:
        cfg = cfg.replace(drift_ppm=args.drift)
    if args.bits is not None:
        cfg = cfg.replace(bits=args.bits)
    fmt, pcm = read_wav(args.input)
    if fmt.channels != 1:
        raise UnsupportedFormatError(
            f"{args.input}: {fmt.channels} channels; the channel simulator takes a mono WAV file"
        )
    bits = cfg.bits if cfg.bits is not None else 8 * fmt.sample_width
    out_fmt = AudioFormat(fmt.rate, 1, 1 if bits == 8 else 2)
    x = to_float(pcm).reshape(-1)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=x.size < 30 * fmt.rate,  # only worth a bar for half a minute of audio or more
    ) as bar:
        task = bar.add_task(f"channel {cfg.name}", total=1.0)
        y = simulate(
            x, fmt.rate, cfg, seed=args.seed, progress=lambda done: bar.update(task, completed=done)
        )
    write_wav(args.output, out_fmt, from_array(np.clip(y, -1.0, 32767 / 32768)))
    log.info("%s: %d samples in, %d out (%s)", args.output, x.size, y.size, cfg)
    print(
        f"{args.input} -> {args.output}: profile {cfg.name}, seed {args.seed}, "
        f"{x.size / fmt.rate:.2f} s in, {y.size / fmt.rate:.2f} s out, {8 * out_fmt.sample_width}-bit"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = add_command(
        sub,
        "channel",
        run,
        help="run a WAV file through a simulated audio line (noise, drift, filters, phone band)",
        epilog=EPILOG,
        description="Run a mono WAV file through the modem's channel simulator: a deterministic "
        "model of a cable between two sound cards or of a telephone call (gain, clock drift, "
        "DC-blocking and low-pass filters, noise at an SNR, clicks, G.711, quantisation).",
    )
    cmd.add_argument("input", metavar="IN.wav", help="mono 8- or 16-bit WAV file")
    cmd.add_argument("output", metavar="OUT.wav", help="where to write the received signal")
    cmd.add_argument(
        "--profile", "-p", choices=list(PROFILES), default="cable", help="line (default: cable)"
    )
    cmd.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    cmd.add_argument("--snr", type=float, help="override the profile's SNR in dB")
    cmd.add_argument("--drift", type=float, help="override the profile's clock drift in ppm")
    cmd.add_argument(
        "--bits", type=int, choices=(8, 16), help="output sample size (default: the profile's)"
    )
