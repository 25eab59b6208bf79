"""LDPC coding layer benchmark: frame error rates on BPSK/AWGN, decoder and demapper speed.

Three tables, printed and written to ``bench/results/ldpc_fer.md``:

1. frame error rate of every 802.11n code (n = 648 and 1944, rates 1/2 to 5/6) by Eb/N0, layered
   normalised min-sum, 30 iterations at most, with the Eb/N0 where FER crosses 1e-2, the
   BPSK-input AWGN capacity limit of the rate (computed here) and, for n = 648 rate 5/6, AFF3CT's
   published layered sum-product curve for the same code;
2. decoder throughput (coded and information Mbit/s of one core's CPU time) per rate at n = 1944,
   where it converges in a few iterations and in the waterfall, in frames of 8 codewords (best of 3
   runs), numba kernel against the numpy decoder;
3. soft demapper speed per constellation.

Usage: ``python bench/ldpc_fer.py [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from audionet.modem.phy.ofdm import ldpc_kernel
from audionet.modem.phy.ofdm.ldpc import RATES, SIZES, LdpcCode, get_code
from audionet.modem.phy.ofdm.qam import CONSTELLATIONS

RESULTS = Path(__file__).resolve().parent / "results" / "ldpc_fer.md"

#: Eb/N0 points (dB) per rate, around each code's waterfall.
POINTS = {
    "1/2": [1.0, 1.25, 1.5, 1.75, 2.0, 2.5],
    "2/3": [1.75, 2.0, 2.25, 2.5, 2.75, 3.25],
    "3/4": [2.25, 2.5, 2.75, 3.0, 3.25, 3.75],
    "5/6": [3.0, 3.25, 3.5, 3.75, 4.0, 4.5],
}
#: Where the speed table measures: (a few iterations, in the waterfall).
SPEED_POINTS = {"1/2": (2.5, 1.5), "2/3": (3.0, 2.2), "3/4": (3.5, 2.7), "5/6": (4.0, 3.3)}
#: AFF3CT error_rate_references, LDPC/AWGN/BPSK/BP_HORIZONTAL_LAYERED/SPA/
#: LDPC_N648_K540_hlayered_SPA_i20_Wi-Fi.txt (802.11n n=648 R=5/6, layered sum-product, 20 it.).
AFF3CT_648_R56 = {
    3.0: 4.25e-1,
    3.25: 2.22e-1,
    3.5: 7.48e-2,
    3.75: 2.27e-2,
    4.0: 5.49e-3,
    4.5: 2.2e-4,
}
FRAME = 8  # codewords decoded per call, about one OFDM frame at the top rate
REPEATS = 3  # speeds are the best of this many runs (the machine is shared)


def llr_batch(
    code: LdpcCode, ebn0_db: float, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    info = rng.integers(0, 2, (count, code.k), dtype=np.uint8)
    words = code.encode(info)
    n0 = 1.0 / (code.rate * 10 ** (ebn0_db / 10))
    y = (1.0 - 2.0 * words) + rng.normal(0.0, np.sqrt(n0 / 2), words.shape)
    return info, (4.0 * y / n0).astype(np.float32)


def fer(code: LdpcCode, ebn0_db: float, max_frames: int, seed: int) -> tuple[float, int, float]:
    """FER, frames run, mean iterations: until 100 frame errors or max_frames."""
    rng = np.random.default_rng(seed)
    errors = frames = 0
    iterations = 0.0
    while frames < max_frames and errors < 100:
        count = min(500, max_frames - frames)
        info, llr = llr_batch(code, ebn0_db, count, rng)
        result = code.decode(llr)
        errors += int((~(result.bits == info).all(axis=1)).sum())
        iterations += float(result.iterations.sum())
        frames += count
    return errors / frames, frames, iterations / frames


def crossing(points: list[float], rates: list[float], target: float = 1e-2) -> str:
    pairs = list(zip(points, rates, strict=True))
    for (x0, f0), (x1, f1) in itertools.pairwise(pairs):
        if f0 >= target > f1:
            if f1 == 0:
                return f"< {x1:.2f}"
            t = (np.log10(target) - np.log10(f0)) / (np.log10(f1) - np.log10(f0))
            return f"{x0 + t * (x1 - x0):.2f}"
    return "-"


def biawgn_limit_db(rate: float) -> float:
    """Eb/N0 (dB) at which BPSK-input AWGN capacity equals the rate (Gauss-Hermite + bisection)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(200)
    weights = weights / weights.sum()

    def capacity(sigma: float) -> float:
        y = 1.0 + sigma * nodes
        return 1.0 - float(np.sum(weights * np.logaddexp(0.0, -2.0 * y / sigma**2)) / np.log(2))

    lo, hi = 0.1, 5.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if capacity(mid) > rate else (lo, mid)
    sigma = (lo + hi) / 2
    return float(10 * np.log10(1.0 / (2.0 * rate * sigma**2)))


def fer_table(quick: bool) -> list[str]:
    max_frames = {648: 1000 if quick else 6000, 1944: 300 if quick else 3000}
    head = ["code", *[f"pt {i + 1}" for i in range(6)], "FER 1e-2 at", "BI-AWGN limit", "gap"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for n in SIZES:
        for rate in RATES:
            code = get_code(rate, n)
            points = POINTS[rate]
            rates = []
            cells = []
            for i, ebn0 in enumerate(points):
                f, frames, its = fer(code, ebn0, max_frames[n], seed=1000 * i + n)
                rates.append(f)
                cells.append(f"{ebn0:.2f} dB: {f:.1e} ({frames} fr, {its:.1f} it)")
            at = crossing(points, rates)
            limit = biawgn_limit_db(code.rate)
            gap = f"{float(at) - limit:.2f}" if at[0].isdigit() else "-"
            lines.append(
                f"| n={n} R={rate} | " + " | ".join(cells) + f" | {at} | {limit:.2f} | {gap} |"
            )
            print(lines[-1], flush=True)
    ref = ", ".join(f"{k:.2f} dB: {v:.1e}" for k, v in AFF3CT_648_R56.items())
    lines.append("")
    lines.append(f"Reference, n=648 R=5/6, AFF3CT layered sum-product, 20 iterations: {ref}.")
    return lines


def speed_table(quick: bool) -> list[str]:
    frames = 40 if quick else 200
    kernel = ldpc_kernel.compiled()
    lines = [
        "| rate | Eb/N0 dB | mean iterations | FER | numba coded Mbit/s | numba info Mbit/s "
        "| numpy coded Mbit/s | numba / numpy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rate in RATES:
        code = get_code(rate, 1944)
        for ebn0 in SPEED_POINTS[rate]:
            rng = np.random.default_rng(7)
            _, llr = llr_batch(code, ebn0, frames, rng)
            speeds = {}
            if kernel is not None:  # the first call after loading pays for dispatch set-up
                code._decode_kernel(kernel, llr[:FRAME], 30)
            for name in ("numba", "numpy"):
                best = float("inf")
                for _ in range(REPEATS):
                    start = time.process_time()
                    its = []
                    ok = []
                    for i in range(0, frames, FRAME):
                        chunk = llr[i : i + FRAME]
                        if name == "numba" and kernel is not None:
                            _, good, it = code._decode_kernel(kernel, chunk, 30)
                        else:
                            _, good, it = code._decode_numpy(chunk, 30)
                        its.append(it)
                        ok.append(good)
                    best = min(best, time.process_time() - start)
                speeds[name] = frames * code.n / best / 1e6
            mean_it = float(np.concatenate(its).mean())
            f = 1.0 - float(np.concatenate(ok).mean())
            lines.append(
                f"| {rate} | {ebn0:.1f} | {mean_it:.1f} | {f:.3f} | {speeds['numba']:.2f} "
                f"| {speeds['numba'] * code.rate:.2f} | {speeds['numpy']:.2f} "
                f"| {speeds['numba'] / speeds['numpy']:.1f}x |"
            )
            print(lines[-1], flush=True)
    return lines


def demap_table() -> list[str]:
    rng = np.random.default_rng(3)
    lines = [
        "| constellation | max-log Msymbol/s | max-log Mbit/s | exact Mbit/s |",
        "|---|---:|---:|---:|",
    ]
    for name, c in CONSTELLATIONS.items():
        symbols = c.modulate(rng.integers(0, 2, 50_000 * c.bits_per_symbol, dtype=np.uint8))
        y = symbols + 0.01 * (rng.normal(size=50_000) + 1j * rng.normal(size=50_000))
        rates = []
        for exact in (False, True):
            start = time.process_time()
            c.demap(y, 0.0002, exact=exact)
            rates.append(50_000 / (time.process_time() - start) / 1e6)
        lines.append(
            f"| {name} | {rates[0]:.2f} | {rates[0] * c.bits_per_symbol:.1f} "
            f"| {rates[1] * c.bits_per_symbol:.1f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer frames (a rough look in seconds)")
    args = ap.parse_args()
    ldpc_kernel.compiled()  # compile (or load) before timing anything
    out = ["# LDPC coding layer", ""]
    command = "python bench/ldpc_fer.py" + (" --quick" if args.quick else "")
    out += [f"Command: `{command}` (BPSK over AWGN, LLR = 4y/N0; one core, CPU time).", ""]
    out += [
        "## Frame error rate (layered normalised min-sum, alpha 0.8, at most 30 iterations)",
        "",
    ]
    out += [*fer_table(args.quick), ""]
    out += [f"## Decoder speed, n=1944, frames of {FRAME} codewords", ""]
    out += [*speed_table(args.quick), ""]
    out += ["## Soft demapper speed (50,000 symbols, one noise variance)", ""]
    out += [*demap_table(), ""]
    text = "\n".join(out)
    print(text)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
