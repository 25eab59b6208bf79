"""Streaming cost and delay of AoDNS v1 and v2, straight from the server and through unbound.

For each format and path: a live 440 Hz tone with a coded burst every 2 s (its frequency, one of 16,
names the burst) is served; a listener joins after a warm-up and plays for ``--seconds``. Reported:
audio seconds per query, queries per minute per listener (at the listener and at the authoritative
server), start-up delay (listener start to first audio) and glass-to-glass latency (a burst entering
the encoder to the same burst leaving the decoder; median). Prints a markdown table and writes it to
``bench/results/dns_stream.md``.

    .venv/bin/python bench/dns_stream.py              # ~2 minutes
    .venv/bin/python bench/dns_stream.py --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audionet.audio.format import AudioFormat
from audionet.dns.broadcast import Broadcaster, ServeOptions
from audionet.dns.client import DnsFetcher, Player, PlayReport
from audionet.dns.localresolver import arun_resolver
from audionet.dns.proto.client import ClientSettings

ZONE = "stream.example.net"
HERE = Path(__file__).resolve().parent
RATE = 16000
FRAME = 960
PERIOD = 2.0  # seconds between bursts
BURST = 0.12
#: Burst frequencies: the burst's number mod 16. 16 codes 2 s apart tell delays apart up to 32 s
#: (v1 through a resolver plays ~17 s behind; 8 codes aliased that to ~1 s).
CODES = [500 + 200 * i for i in range(16)]


def source_frame(k: int) -> bytes:
    """Frame ``k`` of the test signal: a quiet 440 Hz tone, loud coded bursts every 2 s."""
    n = np.arange(k * FRAME, (k + 1) * FRAME)
    t = n / RATE
    x = 0.1 * np.sin(2 * np.pi * 440 * t)
    burst = (n // int(PERIOD * RATE)).astype(int)
    into = t - burst * PERIOD
    on = into < BURST
    freq = np.array(CODES)[burst % len(CODES)]
    x = np.where(on, x + 0.6 * np.sin(2 * np.pi * freq * into), x)
    return (x * 32767).astype("<i2").tobytes()


def burst_code(pcm: np.ndarray) -> int:
    spec = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    freqs = np.fft.rfftfreq(len(pcm), 1 / RATE)
    peak = freqs[int(np.argmax(spec))]
    return int(np.argmin([abs(peak - c) for c in CODES]))


class TimedSink:
    """Records when each frame was handed over (playout time) and finds burst onsets."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        self.frames: list[tuple[float, bytes]] = []

    def write(self, pcm: bytes) -> None:
        self.frames.append((asyncio.get_running_loop().time(), pcm))

    def close(self) -> None:
        pass

    def onsets(self) -> list[tuple[float, int]]:
        """(time the onset sample played, burst code) for each burst heard."""
        if not self.frames:
            return []
        times = np.concatenate([t + np.arange(len(p) // 2) / RATE for t, p in self.frames])
        x = np.concatenate([np.frombuffer(p, "<i2") for _, p in self.frames]).astype(float) / 32767
        loud = np.abs(x) > 0.45
        out = []
        i = 0
        while i < len(x):
            if loud[i]:
                seg = x[i : i + int(0.1 * RATE)]
                if len(seg) >= int(0.05 * RATE):
                    out.append((float(times[i]), burst_code(seg)))
                i += int(1.0 * RATE)  # skip the rest of this burst
            else:
                i += 1
        return out


@dataclass
class Result:
    label: str
    report: PlayReport
    server_queries: int
    seconds: float
    latencies: list[float]


async def run_case(version: int, via: str, seconds: float, warmup: float, work: Path) -> Result:
    b = Broadcaster(ServeOptions(ZONE, port=0, version=version))
    loop = asyncio.get_running_loop()
    await b.server.start("127.0.0.1", 0)
    onsets: dict[int, float] = {}  # burst number -> capture time of its onset
    stop = asyncio.Event()

    async def produce() -> None:
        t0 = loop.time()
        k = 0
        while not stop.is_set():
            first = k * FRAME
            burst = -(-first // int(PERIOD * RATE))
            onset = burst * int(PERIOD * RATE)
            if first <= onset < first + FRAME:
                # The onset sample is captured when its frame is complete, minus what follows it.
                onsets[burst] = loop.time() - (first + FRAME - onset) / RATE
            b.push(source_frame(k))
            k += 1
            delay = t0 + k * FRAME / RATE - loop.time()
            await asyncio.sleep(max(0.0, delay))

    prod = asyncio.create_task(produce())
    await asyncio.sleep(warmup)
    sink: list[TimedSink] = []

    def make_sink(fmt: AudioFormat) -> TimedSink:
        sink.append(TimedSink(fmt))
        return sink[0]

    async def listen(port: int) -> PlayReport:
        settings = ClientSettings(ZONE, version=version)
        player = Player(settings, DnsFetcher("127.0.0.1", port), make_sink)
        return await player.run(seconds, give_up=30)

    before = b.metrics.total
    t_start = loop.time()
    try:
        if via == "direct":
            report = await listen(b.server.address[1])
        else:
            binary = shutil.which("unbound") or "/usr/sbin/unbound"
            async with arun_resolver(
                "unbound", binary, work / f"u{version}", ZONE, b.server.address[1]
            ) as p:
                before = b.metrics.total
                t_start = loop.time()
                report = await listen(p)
    finally:
        elapsed = loop.time() - t_start
        stop.set()
        await prod
        await b.server.close()
    latencies = []
    for t_out, code in sink[0].onsets() if sink else []:
        # The burst with this code whose capture precedes the output most closely.
        cands = [t_out - t for n, t in onsets.items() if n % len(CODES) == code and t < t_out]
        if cands:
            latencies.append(min(cands))
    return Result(f"v{version} {via}", report, b.metrics.total - before, elapsed, latencies)


async def main_async(args: argparse.Namespace) -> list[Result]:
    work = Path(tempfile.mkdtemp(prefix="dns_stream_"))
    results = []
    for version in (2, 1):
        for via in ("direct", "unbound"):
            r = await run_case(version, via, args.seconds, args.warmup, work)
            print(f"  {r.label}: {r.report}", file=sys.stderr)
            results.append(r)
    shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--seconds", type=float, default=20.0, help="listening time per case (default 20)"
    )
    ap.add_argument(
        "--warmup", type=float, default=6.0, help="server runs this long first (default 6)"
    )
    args = ap.parse_args()
    try:
        import uvloop

        results = uvloop.run(main_async(args))
    except ImportError:
        results = asyncio.run(main_async(args))
    rows = [
        f"{args.seconds:g} s of listening per case after a {args.warmup:g} s warm-up; Opus 16 kHz "
        "60 ms ~20 kbit/s; client target fill 3 s (the default; v1 through a resolver raises it to "
        "~12.8 s, "
        "see docs/dns.md); unbound as a stub-zone resolver on loopback.",
        "",
        "| case | audio s / query | queries/min (listener) | queries/min (at server) | "
        "start-up s | glass-to-glass s (median) | underruns | concealed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rep = r.report
        lat = statistics.median(r.latencies) if r.latencies else float("nan")
        rows.append(
            f"| {r.label} | {rep.seconds / max(1, rep.queries):.2f} | "
            f"{rep.queries / r.seconds * 60:.0f} | {r.server_queries / r.seconds * 60:.0f} | "
            f"{rep.startup:.2f} | {lat:.2f} | {rep.underruns} | {rep.concealed} |"
        )
    table = "\n".join(rows) + "\n"
    print(table)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dns_stream.md").write_text(
        "# dns_stream: AoDNS v1 and v2, direct and through unbound\n\n"
        "Command: `.venv/bin/python bench/dns_stream.py`\n\n" + table
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
