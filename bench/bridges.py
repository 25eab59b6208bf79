"""The bridges measured: file goodput over a bridged call, and call-to-listener delay through unbound.

**Goodput**: station 1 sends a random file to station 2 through ``audionet audiosocket bridge``
(both stations AudioSocket servers on loopback, ``transfer_over_call``), in real time, through
signed linear and through G.711 mu-law, without loss and with 1% frame loss and 20 ms jitter.
Goodput is file bits over call time (from the call's start until the file is stored and its SHA-256
checked), so it includes the link's start-up. Two PHYs: Manchester at 2 samples per bit (the
fallback) with an 8 kB file, and the telephone-band OFDM PHY (``ofdm-phone``, the default on a call,
adaptive bit loading) with a 64 kB file in 8 kB frames (its default frame; a smaller file would
measure mostly its start-up). Goals (issue 15): >= 2.4 kbit/s through mu-law with Manchester, >= 9.6
with ofdm-phone. A lost frame is concealed as Asterisk's generic PLC does (the bridge's default).
The cases run at once, each in its own process (they share nothing but the machine; each call is
paced by its own servers' 20 ms clocks).

**Delay**: a caller (an Asterisk-like ``AudioSocket()`` client) sends a quiet 440 Hz tone with a
coded burst every 2 s to the call station (``dns serve --source audiosocket:...``, a stream named by
the call's UUID); a listener plays that stream through unbound (default 3 s target fill) for
``--seconds``. Delay is from a burst reaching the station to the same burst leaving the listener's
decoder (median and worst); underruns are the listener's. Goal: delay <= 5 s, no underrun in 60 s.

    .venv/bin/python bench/bridges.py                  # ~90 s: 8 kB and 64 kB files, 60 s listening
    .venv/bin/python bench/bridges.py --kb 32 --ofdm-kb 256 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ZONE = "calls.example.net"
RATE = 8000
PERIOD = 2.0
BURST = 0.12
CODES = [500 + 200 * i for i in range(8)]


# -- goodput ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    phy: str
    codec: str
    loss: float
    jitter: float
    frame: int  #: payload bytes per modem frame


#: ofdm-phone's frame: its suggested payload (``modem send``'s default on a call)
OFDM_FRAME = 8192
CASES = [
    Case("manchester", "slin", 0.0, 0.0, 256),
    Case("manchester", "ulaw", 0.0, 0.0, 256),
    Case("manchester", "slin", 0.01, 0.02, 128),
    Case("manchester", "ulaw", 0.01, 0.02, 128),
    Case("ofdm-phone", "slin", 0.0, 0.0, OFDM_FRAME),
    Case("ofdm-phone", "ulaw", 0.0, 0.0, OFDM_FRAME),
    Case("ofdm-phone", "slin", 0.01, 0.02, OFDM_FRAME),
    Case("ofdm-phone", "ulaw", 0.01, 0.02, OFDM_FRAME),
]
GOALS = {"manchester": 2400.0, "ofdm-phone": 9600.0}  #: bit/s through mu-law (issue 15)


def run_case(case: Case, kb: int) -> tuple[Case, str, float, float, int, float]:
    """(case, note, goodput bit/s, seconds, retransmissions, frames/s) of one transfer."""
    from audionet.bridges.modem_call import phone_phy
    from audionet.bridges.relay import Impairments
    from audionet.bridges.transfer import transfer_over_call
    from audionet.modem.proto.arq import ArqConfig

    phy = phone_phy(case.phy)
    work = Path(tempfile.mkdtemp(prefix="bridges_bench_"))
    try:
        src = work / "file.bin"
        src.write_bytes(os.urandom(kb * 1024))
        imp = Impairments(case.codec, case.jitter, case.loss, seed=1)
        res = asyncio.run(
            transfer_over_call(
                src, work / "w", impairments=imp, phy=phy,
                config=ArqConfig(max_payload=case.frame), max_seconds=60 + kb * 10,
            )
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (leg,) = res.legs
    fps = min(st.frames_per_second() for st in res.bridge.stats)
    note = "" if res.ok else f"FAILED: {res.error}"
    link = getattr(phy, "link", None)  # OFDM: station 1's link adaptation
    if res.ok and link is not None:
        note = f"mode at the end {link.tx_mode()}"
    return case, note, leg.goodput, leg.seconds, leg.retransmissions, fps


# -- delay ------------------------------------------------------------------------------------


def signal(seconds: float) -> bytes:
    """A quiet 440 Hz tone with a loud coded burst every 2 s (its frequency names the burst)."""
    n = np.arange(int(seconds * RATE))
    t = n / RATE
    x = 0.1 * np.sin(2 * np.pi * 440 * t)
    burst = (n // int(PERIOD * RATE)).astype(int)
    into = t - burst * PERIOD
    freq = np.array(CODES)[burst % 8]
    x = np.where(into < BURST, x + 0.6 * np.sin(2 * np.pi * freq * into), x)
    return (x * 32767).astype("<i2").tobytes()


def burst_code(pcm: np.ndarray, rate: int) -> int:
    spec = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    peak = np.fft.rfftfreq(len(pcm), 1 / rate)[int(np.argmax(spec))]
    return int(np.argmin([abs(peak - c) for c in CODES]))


class TimedSink:
    """Records when each decoded frame was handed over (its playout time)."""

    def __init__(self, fmt: object) -> None:
        self.format = fmt
        self.frames: list[tuple[float, bytes]] = []

    def write(self, pcm: bytes) -> None:
        self.frames.append((time.monotonic(), pcm))

    def close(self) -> None:
        pass

    def onsets(self) -> list[tuple[float, int]]:
        rate = self.format.rate  # type: ignore[attr-defined]
        if not self.frames:
            return []
        times = np.concatenate([t + np.arange(len(p) // 2) / rate for t, p in self.frames])
        x = np.concatenate([np.frombuffer(p, "<i2") for _, p in self.frames]) / 32767
        loud = np.abs(x) > 0.45
        out, i = [], 0
        while i < len(x):
            if loud[i]:
                seg = x[i : i + int(0.1 * rate)]
                if len(seg) >= int(0.05 * rate):
                    out.append((float(times[i]), burst_code(seg, rate)))
                i += rate
            else:
                i += 1
        return out


async def delay_through_unbound(seconds: float) -> tuple[object, list[float]]:
    from audionet.audiosocket import connect
    from audionet.audiosocket.proto import Audio
    from audionet.bridges.call_dns import CallStation
    from audionet.dns.broadcast import ServeOptions
    from audionet.dns.client import DnsFetcher, Player
    from audionet.dns.localresolver import arun_resolver, free_port
    from audionet.dns.proto.client import ClientSettings

    opts = ServeOptions(ZONE, port=0, source=f"audiosocket:127.0.0.1:{free_port()}")
    st = CallStation(opts, per_call=True)
    arrivals: list[tuple[float, int]] = []  # (time, samples of the call before this frame)
    event = st.event

    def timed(call: object, ev: object) -> None:
        if isinstance(ev, Audio):
            done = arrivals[-1][1] + len(ev.pcm) // 2 if arrivals else 0
            arrivals.append((time.monotonic(), done))
        event(call, ev)  # type: ignore[arg-type]

    st.event = timed  # type: ignore[method-assign]
    ready = asyncio.Event()
    running = asyncio.create_task(st.run(ready))
    await ready.wait()
    work = Path(tempfile.mkdtemp(prefix="bridges_delay_"))
    try:
        host, port = st.audiosocket_address
        call = await connect(host, port, wait_for_server=False, record=False)
        call.send_audio(signal(seconds + 20))
        await asyncio.sleep(2.0)
        sinks: list[TimedSink] = []

        def make_sink(fmt: object) -> TimedSink:
            sinks.append(TimedSink(fmt))
            return sinks[0]

        binary = shutil.which("unbound") or "/usr/sbin/unbound"
        async with arun_resolver("unbound", binary, work, ZONE, st.server.address[1]) as via:
            settings = ClientSettings(ZONE, stream=str(call.uuid))
            player = Player(settings, DnsFetcher("127.0.0.1", via), make_sink)
            report = await player.run(seconds, give_up=30)
        await call.hangup()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        shutil.rmtree(work, ignore_errors=True)
    # When each burst's onset sample reached the station: its frame's arrival, minus the samples
    # of that frame that follow the onset.
    starts = {}
    for (t, before), nxt in zip(arrivals, [*arrivals[1:], (0.0, 1 << 62)], strict=True):
        k = -(-before // int(PERIOD * RATE))
        onset = k * int(PERIOD * RATE)
        if before <= onset < nxt[1]:
            starts[k] = t - (nxt[1] - onset) / RATE
    delays = []
    for t_out, code in sinks[0].onsets() if sinks else []:
        cands = [t_out - t for k, t in starts.items() if k % 8 == code and t < t_out]
        if cands:
            delays.append(min(cands))
    return report, delays


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--kb", type=int, default=8, help="file size, Manchester (default 8)")
    ap.add_argument("--ofdm-kb", type=int, default=64, help="file size, ofdm-phone (default 64)")
    ap.add_argument("--seconds", type=float, default=60.0, help="listening time (default 60)")
    args = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(CASES)) as pool:
        sizes = {"manchester": args.kb, "ofdm-phone": args.ofdm_kb}
        pending = pool.starmap_async(run_case, [(c, sizes[c.phy]) for c in CASES])
        report, delays = asyncio.run(delay_through_unbound(args.seconds))
        goodput = pending.get()
    rows = [
        "Goodput: a random file from station 1 to station 2 through "
        "`audionet audiosocket bridge`, both stations AudioSocket servers on loopback, in real "
        "time (all cases at once, one process each). Loss is per 20 ms call frame, concealed as "
        "Asterisk's generic PLC does; jitter is 0-20 ms per frame, order kept. Goals through "
        "mu-law: Manchester >= 2.4 kbit/s, ofdm-phone >= 9.6.",
        "",
        "| PHY | file kB | call codec | loss, jitter | frame bytes | goodput kbit/s | seconds | "
        "retransmissions | call frames/s | note |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for case, note, bps, secs, retx, fps in goodput:
        phy = "Manchester, 2 samples/bit (4 kbit/s raw)" if case.phy == "manchester" else case.phy
        phy = f"{phy} | {sizes[case.phy]}"
        imp = f"{case.loss:.0%}, {case.jitter * 1000:.0f} ms" if case.loss else "none"
        rows.append(
            f"| {phy} | {case.codec} | {imp} | {case.frame} | {bps / 1000:.2f} | {secs:.1f} | "
            f"{retx} | {fps:.1f} | {note} |"
        )
    med = statistics.median(delays) if delays else float("nan")
    worst = max(delays) if delays else float("nan")
    rep = report
    rows += [
        "",
        f"Delay: a caller's coded bursts to a listener of the call's stream through unbound, "
        f"{args.seconds:g} s of listening, client target fill 3 s (the default).",
        "",
        "| path | listened s | bursts timed | delay median s | delay worst s | underruns | "
        "concealed | start-up s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| call -> station -> unbound -> listener | {rep.seconds:.1f} | {len(delays)} | "  # type: ignore[attr-defined]
        f"{med:.2f} | {worst:.2f} | {rep.underruns} | {rep.concealed} | {rep.startup:.2f} |",  # type: ignore[attr-defined]
    ]
    table = "\n".join(rows) + "\n"
    print(table)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bridges.md").write_text(
        "# bridges: modem goodput over a bridged call, call-to-listener delay through unbound\n\n"
        f"`python bench/bridges.py --kb {args.kb} --ofdm-kb {args.ofdm_kb} "
        f"--seconds {args.seconds:g}`\n\n" + table
    )
    ok = all(not n.startswith("FAILED") for _, n, *_ in goodput)
    ok = ok and all(bps >= GOALS[c.phy] for c, _, bps, *_ in goodput if c.codec == "ulaw")
    return 0 if ok and delays and worst <= 5.0 and rep.underruns == 0 else 1  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
