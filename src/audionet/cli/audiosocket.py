"""``audionet audiosocket``: Asterisk AudioSocket server, Asterisk-like client and load generator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

from audionet.aio import LOOPS, run
from audionet.cli.main import add_command, add_group
from audionet.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = add_group(
        sub,
        "audiosocket",
        help="Asterisk AudioSocket server, Asterisk-like client and load generator",
        description="Asterisk AudioSocket: call audio over TCP.\n\n"
        "Asterisk connects to the server (dialplan: AudioSocket(<uuid>,host:port) or\n"
        "Dial(AudioSocket/host:port/<uuid>)) and exchanges 20 ms frames of call audio.",
        epilog="examples:\n"
        "  audionet audiosocket serve --app echo --port 9092\n"
        "  audionet audiosocket call 127.0.0.1:9092 --play hello.wav --record reply.wav\n"
        "  audionet audiosocket bench 127.0.0.1:9092 --calls 500 --duration 10\n"
        "  audionet audiosocket bridge 127.0.0.1:9301 127.0.0.1:9302 --codec ulaw",
    )
    p = add_command(
        group,
        "serve",
        cmd_serve,
        help="run an AudioSocket server with a built-in app",
        description="Run an AudioSocket server. APP is one of: echo, record:DIR (one WAV per call,\n"
        "named by UUID), play:FILE (paced, resampled; hangs up at the end), tone:HZ, silence,\n"
        "dns:ZONE[,server=HOST:PORT][,stream=NAME] (every caller hears that AoDNS stream).\n"
        "Every call's outgoing side is paced at 20 ms and sends silence when idle.",
        epilog="examples:\n"
        "  audionet audiosocket serve --app echo --port 9092\n"
        "  audionet audiosocket serve --app record:/var/spool/calls --max-calls 200\n"
        "  audionet audiosocket serve --app play:welcome.mp3 --workers 2 --metrics-port 9100\n"
        "  audionet audiosocket serve --app dns:music.example.com,server=127.0.0.1:5053 --port 9094\n"
        "dialplan: exten => 100,1,Answer()\n"
        "                  same => n,AudioSocket(40325ec2-5efd-4bd3-805f-53576e581d13,127.0.0.1:9092)",
    )
    p.add_argument(
        "--app",
        default="echo",
        help="echo, record:DIR, play:FILE, tone:HZ, silence or dns:ZONE[,server=HOST:PORT][,stream=NAME]",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9092, help="TCP port (default 9092)")
    p.add_argument("--max-calls", type=int, default=10000, help="concurrent calls per process")
    p.add_argument(
        "--max-load",
        type=float,
        default=0.6,
        help="refuse a new call (a hangup message, a log line, a metric) when one more call would "
        "need more than this share of a core at the measured CPU cost per call (default 0.6: "
        "calls cost more once they talk and the more of them there are, and the clock runs late "
        "in bursts above about 80%%; 0: off)",
    )
    p.add_argument(
        "--max-lag",
        type=float,
        default=0.010,
        help="refuse new calls while the send clock runs more than this many seconds late "
        "(p90 over the last second; default 0.010; 0: off)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics here (with --workers: the sum over all workers)",
    )
    p.add_argument("--rate", type=int, default=8000, help="audio rate sent to Asterisk (Hz)")
    p.add_argument(
        "--input-codec",
        default="slin",
        choices=["slin", "ulaw", "alaw"],
        help="what Dial() calls really send as 0x10 audio (default slin)",
    )
    p.add_argument("--uuid-timeout", type=float, default=5.0, help="seconds to wait for the UUID")
    _loop_arg(p)

    p = add_command(
        group,
        "call",
        cmd_call,
        help="place one Asterisk-like call to a server",
        description="Place one call the way Asterisk does: UUID first, then paced 20 ms audio and DTMF;\n"
        "every message from the server is checked against what Asterisk accepts. By default it\n"
        "waits for the server's audio before sending any (Asterisk's channel driver).",
        epilog="examples:\n"
        "  audionet audiosocket call 127.0.0.1:9092 --play hello.wav --record reply.wav\n"
        "  audionet audiosocket call 127.0.0.1:9092 --dtmf 123# --seconds 3",
    )
    p.add_argument("address", help="HOST:PORT of the AudioSocket server")
    p.add_argument("--uuid", help="the call's UUID (random by default)")
    p.add_argument("--play", help="audio file to send (any format; resampled)")
    p.add_argument("--record", help="WAV file for the audio the server sends")
    p.add_argument("--dtmf", default="", help="DTMF digits to send, one every 200 ms")
    p.add_argument("--rate", type=int, default=8000, help="audio rate of the call (Hz)")
    p.add_argument("--seconds", type=float, help="call length (default: the file's, or 3 s)")
    p.add_argument(
        "--no-wait", action="store_true", help="send at once (like the AudioSocket() app)"
    )

    p = add_command(
        group,
        "bench",
        cmd_bench,
        help="load an echo server with many concurrent calls",
        description="Run N concurrent Asterisk-like calls against an echo server (all driven by one\n"
        "20 ms timer) and report frames sent, echoed and lost, echo latency and the generator's own\n"
        "send lateness. Exit status 1 if any frame was lost.",
        epilog="example:\n  audionet audiosocket bench 127.0.0.1:9092 --calls 500 --duration 10",
    )
    p.add_argument("address", help="HOST:PORT of an echo server")
    p.add_argument("--calls", type=int, default=100, help="concurrent calls (default 100)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of audio per call")
    p.add_argument("--rate", type=int, default=8000, help="audio rate (Hz)")
    p.add_argument(
        "--latency-sample",
        type=float,
        default=0.125,
        help="share of the calls whose echoes are timed as they arrive (default 0.125; the others "
        "are read in batches, their lost frames counted all the same)",
    )
    p.add_argument(
        "--ramp",
        type=float,
        default=0.5,
        help="seconds over which the calls start their audio, an eighth at a time (default 0.5; "
        "0: all in the same 20 ms); --duration counts from when all have started",
    )
    _loop_arg(p)

    from audionet.cli.bridges import add_bridge_command

    add_bridge_command(group)


def _loop_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default="auto",
        help="event loop (auto: uvloop if installed)",
    )


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ConfigError(f"address {address!r} must be HOST:PORT, e.g. 127.0.0.1:9092")
    return host.strip("[]") or "127.0.0.1", int(port)


# -- serve ------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from audionet.audiosocket.apps import make_app

    make_app(args.app, args.rate)  # validate before forking workers
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.workers == 1:
        run(_serve(args, 0), args.loop)
        return 0
    ctx = multiprocessing.get_context("spawn")
    settings = argparse.Namespace(**{k: getattr(args, k) for k in _SERVE_SETTINGS})
    reports: multiprocessing.Queue[tuple[int, dict[str, Any]]] | None = None
    if args.metrics_port:
        reports = ctx.Queue()
        _serve_workers_metrics(args.metrics_port, reports)
    procs = [
        ctx.Process(target=_worker, args=(settings, i, reports), daemon=True)
        for i in range(args.workers)
    ]
    for proc in procs:
        proc.start()
    print(f"{args.workers} workers on {args.host}:{args.port} (SO_REUSEPORT)", file=sys.stderr)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    return 0


_SERVE_SETTINGS = (
    "app", "host", "port", "max_calls", "max_load", "max_lag", "workers", "metrics_port", "rate",
    "input_codec",
    "uuid_timeout", "loop",
)  # fmt: skip


#: Seconds between a worker's metric reports to the parent process.
REPORT_INTERVAL = 1.0


def _serve_workers_metrics(port: int, reports: multiprocessing.Queue[Any]) -> None:
    """The parent's metrics: a thread keeps each worker's latest report; scrapes sum them."""
    from audionet.audiosocket.metrics import WorkersCollector, serve_collector

    latest: dict[int, tuple[float, dict[str, Any]]] = {}

    def drain() -> None:
        while True:
            index, snap = reports.get()
            latest[index] = (time.monotonic(), snap)

    threading.Thread(target=drain, name="worker-reports", daemon=True).start()
    serve_collector(WorkersCollector(lambda: dict(latest)), port)


def _worker(
    args: argparse.Namespace, index: int, reports: multiprocessing.Queue[Any] | None = None
) -> None:
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        run(_serve(args, index, reports), args.loop)


async def _serve(
    args: argparse.Namespace, index: int, reports: multiprocessing.Queue[Any] | None = None
) -> None:
    from audionet.audiosocket.apps import make_app
    from audionet.audiosocket.metrics import snapshot, start_metrics_server
    from audionet.audiosocket.server import serve

    app = make_app(args.app, args.rate)
    extra: dict[str, Any] = {"reuse_port": True} if args.workers > 1 else {}
    server = await serve(
        app,
        args.host,
        args.port,
        rate=args.rate,
        max_calls=args.max_calls,
        max_load=args.max_load,
        max_lag=args.max_lag,
        input_codec=args.input_codec,
        uuid_timeout=args.uuid_timeout,
        **extra,
    )
    report_task: asyncio.Task[None] | None = None
    if reports is not None:

        async def report() -> None:
            while True:
                ticker = server.ticker
                snap = snapshot(server.stats, ticker.lateness, ticker.lateness_histogram)
                reports.put((index, snap))
                await asyncio.sleep(REPORT_INTERVAL)

        report_task = asyncio.create_task(report())
    elif args.metrics_port:
        start_metrics_server(
            args.metrics_port,
            server.stats,
            server.ticker.lateness,
            histogram=server.ticker.lateness_histogram,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if index == 0:
        print(f"audiosocket {args.app} server on {args.host}:{server.port}", file=sys.stderr)
    await stop.wait()
    if report_task is not None:
        report_task.cancel()
    server.close()
    await server.wait_closed()
    s = server.stats
    print(
        f"worker {index}: {s.calls_total} calls, {s.frames_in} frames in, {s.frames_out} out, "
        f"{sum(s.errors.values())} errors",
        file=sys.stderr,
    )


# -- call -------------------------------------------------------------------------------------------


def cmd_call(args: argparse.Namespace) -> int:
    return run(_call(args))


async def _call(args: argparse.Namespace) -> int:
    from audionet.audio.format import AudioFormat
    from audionet.audio.sources import FileSource
    from audionet.audio.wav import write_wav
    from audionet.audiosocket.client import connect
    from audionet.audiosocket.proto import DTMF_DIGITS

    host, port = parse_address(args.address)
    bad = [d for d in args.dtmf if d not in DTMF_DIGITS]
    if bad:
        raise ConfigError(f"DTMF digits must be 0-9, *, #, A-D (got {''.join(bad)!r})")
    fmt = AudioFormat(args.rate)
    pcm = b""
    if args.play:
        if not Path(args.play).is_file():
            raise ConfigError(f"file to play {args.play} does not exist")
        with FileSource(args.play, fmt) as src:
            pcm = b"".join(src.chunks(fmt.rate))
    seconds = (
        args.seconds if args.seconds is not None else (fmt.duration(len(pcm)) + 0.5 if pcm else 3.0)
    )
    call = await connect(host, port, args.uuid, args.rate, wait_for_server=not args.no_wait)
    print(f"call {call.uuid} to {host}:{port}", file=sys.stderr)
    call.send_audio(pcm)
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    digits = list(args.dtmf)
    while loop.time() < end and not call.ended:
        if digits:
            call.send_dtmf(digits.pop(0))
        await asyncio.sleep(0.2)
    if not call.ended:
        await call.hangup()
    else:
        await call.wait_closed()
    if args.record:
        write_wav(args.record, fmt, bytes(call.received))
    gaps = [b - a for a, b in zip(call.audio_times, call.audio_times[1:], strict=False)]
    pace = f", mean interval {1000 * sum(gaps) / len(gaps):.2f} ms" if gaps else ""
    print(
        f"sent {call.frames_sent} frames, received {call.frames_received}{pace}; "
        f"ended: {call.end_reason}",
        file=sys.stderr,
    )
    for v in call.violations:
        print(f"VIOLATION at {v.at:.3f}: {v.message}", file=sys.stderr)
    return 1 if call.violations else 0


# -- bench ------------------------------------------------------------------------------------------


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from audionet.audiosocket.loadgen import run_load

    host, port = parse_address(args.address)
    if args.calls < 1 or args.duration <= 0:
        raise ConfigError("--calls must be at least 1 and --duration positive")
    if not 0 < args.latency_sample <= 1:
        raise ConfigError("--latency-sample must be above 0 and at most 1")
    if args.ramp < 0:
        raise ConfigError("--ramp must be 0 or more seconds")
    console = Console(stderr=True)
    with console.status(f"{args.calls} calls for {args.duration:g} s ..."):
        load = run_load(
            host,
            port,
            args.calls,
            args.duration,
            args.rate,
            latency_sample=args.latency_sample,
            ramp=args.ramp,
        )
        res = run(load, args.loop)
    table = Table(title=f"AudioSocket load on {host}:{port}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("calls completed", f"{res.completed} / {res.calls}"),
        ("frames sent", str(res.frames_sent)),
        ("frames echoed", str(res.frames_echoed)),
        ("frames lost", str(res.frames_lost)),
        ("echo latency p50", f"{1000 * res.latency_p50:.1f} ms"),
        ("echo latency p99", f"{1000 * res.latency_p99:.1f} ms"),
        ("send lateness p99 (generator)", f"{1000 * res.gen_lateness_p99:.2f} ms"),
        ("generator ticks skipped", str(res.gen_ticks_skipped)),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
    return 0 if res.ok else 1
