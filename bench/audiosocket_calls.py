"""How many concurrent 8 kHz AudioSocket echo calls one server process sustains.

Ours (``audionet audiosocket serve --app echo``: protocol parsing, per-call paced 20 ms clock,
silence fill, limits, metrics) against a bare ~30-line asyncio ``Protocol`` that writes back whatever
it reads (the practical ceiling of an asyncio loop), each with uvloop and with the standard loop.

For every server and loop the call count climbs through ``--steps`` (uvloop: 750 to 1,500 calls;
``--asyncio-steps`` for the standard loop, which carries fewer: 500 to 1,000); at each step, ours
and bare in turn, a fresh server runs
alone, pinned to ``--server-cpus`` (one core: CPU 0), and the load generator
(``audionet.audiosocket.loadgen``: plain sockets and one epoll, all calls driven from one timer per
2.5 ms slot, in ``--gen-procs`` processes pinned to ``--gen-cpus``: CPU 1) places the calls for
``--duration`` seconds. Both run at nice -10 when permitted, so unrelated processes on a shared
machine delay them little. (``--rt N`` gives them SCHED_FIFO priority N instead; not the default:
the kernel throttles real-time tasks that use over 95% of a CPU for the rest of each second, which
stalls a server near saturation for up to 50 ms at a time, a stall no server at normal priority
sees, and its calls keep the backlog.) A step passes
with every call completed, zero lost frames, echo latency p99 under 60 ms (as measured by the
generator, so it includes the generator's own receive path), and, for ours, the send lateness p99 of
its paced 20 ms clock under 5 ms while the calls send audio (from the server's
``audiosocket_clock_lateness_seconds`` histogram, scraped as the audio starts and as it stops, so
the burst of call set-ups before is not counted, as it is not for the generator; the bare echo has
no send schedule to be late against: it writes back at once). A step is valid only while the generator itself keeps up: if its own send lateness p99
reaches 5 ms (marked *) or it sends under 98% of the 50 frames per second per call, the step is
"generator overloaded" (no verdict on the server: neither a pass nor a failure). "Max calls passed"
is the last step that passed before the server's first failure; the climb goes on after a failure (larger steps that pass are listed, and their CPU
per call is measured) and stops only when a larger step would tell nothing more: the generator
could not send at the call rate, or the server or the generator used a whole core.

Lost frames are counted on every call, but echo latency only on a sample of them
(``--latency-sample``, an eighth by default, spread over all slots): the generator wakes for those
calls' echoes and times each from its send to the moment it is read, and reads every other call in
batches, five frames a ``recv``, without being woken. Reading every echo as it arrived cost the
generator about as much again as sending, so it, not the server, was the limit at about 1,000
calls; and on loopback the echo's ``send`` runs the generator's receive side, so the server's CPU
is now charged with the wake-up of the generator for the sampled calls only (closer to a remote
caller, whose receive work is not on the server's machine at all).

The calls start their audio an eighth at a time over ``--ramp`` seconds (0.5 s; every call's 30 s
are counted from when the last has started): a paced server answers each call with silence until
the caller speaks, and a thousand callers who all start in the same 20 ms switch every call's
clock at once, a burst no real exchange sends (with ``--ramp 0`` ours fell behind there at 1,250
calls in most runs, and once behind its reads carry several frames, cost more, and every call keeps
its backlog: the echo never bursts to catch up).

    .venv/bin/python bench/audiosocket_calls.py       # the README table: 30 s steps, 500 to 1,500 calls
    .venv/bin/python bench/audiosocket_calls.py --duration 5 --steps 500,1000 --loops uvloop
    .venv/bin/python bench/audiosocket_calls.py --lock /tmp/bench.lock   # each step under flock
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "audiosocket_calls.md"
LATENESS_LIMIT = 0.005
LATENCY_LIMIT = 0.060
FRAMES_PER_SECOND = 50  # 20 ms frames
#: A server that sends any call more frames a second than this fails the step (a clock that runs
#: fast: one frame per 20 ms is 50, and the measure is exact to a frame over the step).
MAX_SERVER_RATE = 50.5
GO_ECHO = HERE / "go_echo"


def build_go_echo(out: Path) -> Path | None:
    """Build the Go echo (bench/go_echo) into ``out``; None, after one line saying what to
    install, when there is no Go toolchain."""
    go = shutil.which("go")
    if go is None:
        print(
            "no Go toolchain: apt-get install golang-go to add the Go echo to this table",
            file=sys.stderr,
        )
        return None
    binary = out / "go_echo"
    env = {**os.environ, "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0"}
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_ECHO, env=env, check=True)
    return binary


# -- the bare peer: the practical limit of an asyncio loop ------------------------------------------


class BareEcho(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def bare_main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(BareEcho, "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


def run_loop(coro: object, loop: str) -> object:
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


# -- one generator process --------------------------------------------------------------------------


def gen_main(
    port: int, calls: int, duration: float, latency_sample: float, ramp: float, call_rate: float
) -> None:
    from audionet.audiosocket.loadgen import drive_load

    def mark(started: bool) -> None:
        print("audio started" if started else "audio stopped", flush=True)

    res = drive_load(
        "127.0.0.1",
        port,
        calls,
        duration,
        on_audio=mark,
        latency_sample=latency_sample,
        ramp=ramp,
        call_rate=call_rate,
    )
    print(json.dumps(dataclasses.asdict(res)))


# -- the driver -------------------------------------------------------------------------------------


@dataclass
class Step:
    server: str
    loop: str
    calls: int
    completed: int = 0
    sent: int = 0
    lost: int = 0
    lat_p50: float = 0.0
    lat_p99: float = 0.0
    server_late_p99: float | None = None
    #: Calls the server refused (a hangup message at once), of ``calls`` placed, and (ours) why.
    refused: int = 0
    refused_why: str = ""
    #: Frames the server sent per second per call while measured: the mean, and the most any
    #: call got.
    server_rate: float = 0.0
    server_rate_max: float = 0.0
    #: Ours: the share of its frames sent as the caller's frame arrived (the rest by its clock).
    answered: float | None = None
    gen_late_p99: float = 0.0
    gen_cpu: float = 0.0
    #: Frames the generator sent per second per call while measured (50 when it kept up).
    rate: float = 0.0
    cpu: float = 0.0
    cpu_wait: float = 0.0
    verdict: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_delay(pid: int) -> float:
    """Seconds the process has spent runnable but waiting for a CPU (scheduler statistics)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            return str(reply.read().decode())
    except OSError:
        return None


def histogram(text: str) -> list[tuple[float, float]]:
    """The server clock's lateness histogram: (upper bound, cumulative count) per bucket."""
    buckets = []
    for line in text.splitlines():
        if line.startswith("audiosocket_clock_lateness_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.split()[-1])))
    return buckets


def counter(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def refusals(text: str) -> str:
    """The server's refused calls by reason, from a scrape: "load 12, lag 3"."""
    out = []
    for line in text.splitlines():
        if line.startswith("audiosocket_calls_refused_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out.append(f"{reason} {float(line.split()[-1]):.0f}")
    return ", ".join(out)


def answered(before: str, after: str) -> float | None:
    """The share of the server's frames sent from the receive callback (not by the clock)."""
    out = counter(after, 'audiosocket_frames_total{direction="out"}') - counter(
        before, 'audiosocket_frames_total{direction="out"}'
    )
    ticked = counter(after, "audiosocket_frames_ticked_total") - counter(
        before, "audiosocket_frames_ticked_total"
    )
    return 1 - ticked / out if out > 0 else None


def histogram_quantile(
    q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> float | None:
    """The ``q`` quantile of what was counted between two scrapes, interpolated within its bucket
    like Prometheus's ``histogram_quantile`` (the top bucket gives its lower bound)."""
    counts = [(b, a - c) for (b, a), (_, c) in zip(after, before, strict=True)]
    total = counts[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cum in counts:
        if cum >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(cum - below, 1e-9)
        lower, below = bound, cum
    return lower


def pin(pid: int, cpus: set[int] | None, nice: int = 0, rt: int = 0) -> None:
    """Pin a process to ``cpus``; give it real-time priority ``rt`` (SCHED_FIFO: it runs as soon as
    it is runnable, ahead of unrelated processes on a shared machine) or else ``nice``. Both need the
    privilege; without it the default priority is kept."""
    if cpus:
        os.sched_setaffinity(pid, cpus)
    if rt:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(rt))
            return
    if nice:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, nice)


def priority(nice: int, rt: int) -> str:
    if rt and os.geteuid() == 0:
        return f", both at real-time priority {rt} (SCHED_FIFO)"
    if nice and os.geteuid() == 0:
        return f", both at nice {nice}"
    return ""


def run_step(
    server: str,
    loop: str,
    calls: int,
    duration: float,
    gen_procs: int,
    server_cpus: set[int] | None = None,
    gen_cpus: set[int] | None = None,
    nice: int = 0,
    rt: int = 0,
    latency_sample: float = 0.125,
    ramp: float = 0.5,
    go_echo: Path | None = None,
    call_rate: float = 0.0,
    ours_args: Sequence[str] = (),
) -> Step:
    port = free_port()
    mport = free_port()
    env = None
    if server == "ours":
        cmd = [sys.executable, "-m", "audionet", "-q", "audiosocket", "serve", "--app", "echo",
               "--port", str(port), "--metrics-port", str(mport), "--loop", loop, *ours_args]  # fmt: skip
    elif server == "go":
        assert go_echo is not None
        cmd = [str(go_echo), "-port", str(port)]
        env = {**os.environ, "GOMAXPROCS": str(len(server_cpus) if server_cpus else 1)}
    else:
        cmd = [sys.executable, __file__, "--serve-bare", str(port), "--loop", loop]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=env)
    step = Step(server, loop, calls)
    try:
        pin(proc.pid, server_cpus, nice, rt)
        wait_port(port)
        per = [calls // gen_procs + (1 if i < calls % gen_procs else 0) for i in range(gen_procs)]
        gens = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--gen",
                    str(port),
                    str(n),
                    str(duration),
                    "--latency-sample",
                    str(latency_sample),
                    "--ramp",
                    str(ramp),
                    "--call-rate",
                    str(call_rate / len([n for n in per if n])),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in per
            if n
        ]
        for g in gens:
            pin(g.pid, gen_cpus, nice, rt)

        def until(line: str) -> None:  # the first generator marks when its audio starts and stops
            assert gens[0].stdout is not None
            while (got := gens[0].stdout.readline()) and got.strip() != line:
                pass

        # The server's CPU over exactly the time the calls send audio (not connecting, not settling).
        until("audio started")
        cpu0, wait0, t0 = cpu_seconds(proc.pid), run_delay(proc.pid), time.monotonic()
        text0 = scrape(mport) if server == "ours" else None
        until("audio stopped")
        wall = time.monotonic() - t0
        text1 = scrape(mport) if server == "ours" else None
        step.cpu = (cpu_seconds(proc.pid) - cpu0) / wall
        step.cpu_wait = (run_delay(proc.pid) - wait0) / wall
        results = []
        for g in gens:
            # (not communicate(): with two pipes it reads the file descriptors, and would miss
            # what the readline() of until() already buffered)
            assert g.stdout is not None and g.stderr is not None
            out, err = g.stdout.read(), g.stderr.read()
            g.wait(timeout=duration + 120)
            if not out.strip():
                why = err.strip().splitlines()[-1] if err.strip() else f"exit status {g.returncode}"
                raise RuntimeError(f"the load generator failed: {why}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        if text1:
            step.refused_why = refusals(text1)
        if text0 and text1:  # the clock's lateness while the calls sent audio
            step.server_late_p99 = histogram_quantile(0.99, histogram(text0), histogram(text1))
            step.answered = answered(text0, text1)
    except Exception as exc:  # a failed step is a result, not a crash of the benchmark
        step.verdict = f"error: {exc}"
        return step
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    step.completed = sum(r["completed"] for r in results)
    step.sent = sum(r["frames_sent"] for r in results)
    step.lost = sum(r["frames_lost"] for r in results)
    step.lat_p50 = max(r["latency_p50"] for r in results)
    step.lat_p99 = max(r["latency_p99"] for r in results)
    step.gen_late_p99 = max(r["gen_lateness_p99"] for r in results)
    step.gen_cpu = sum(r["gen_cpu"] for r in results)
    step.refused = sum(r["refused"] for r in results)
    up = calls - step.refused
    step.rate = sum(r["send_rate"] * (r["calls"] - r["refused"]) for r in results) / max(1, up)
    step.server_rate = sum(r["recv_rate"] * (r["calls"] - r["refused"]) for r in results) / max(
        1, up
    )
    step.server_rate_max = max(r["recv_rate_max"] for r in results)
    if step.completed < up:
        step.verdict = f"{up - step.completed} calls failed"
    elif step.server_rate_max > MAX_SERVER_RATE:
        step.verdict = f"server sends {step.server_rate_max:.1f} frames/s on a call"
    elif step.lost:
        step.verdict = f"{step.lost} frames lost"
    elif step.gen_late_p99 >= LATENESS_LIMIT or step.rate < 0.98 * FRAMES_PER_SECOND:
        step.verdict = "generator overloaded"
    elif server == "ours" and (
        step.server_late_p99 is None or step.server_late_p99 >= LATENESS_LIMIT
    ):
        step.verdict = "server clock late"
    elif step.lat_p99 >= LATENCY_LIMIT:
        step.verdict = "echo latency"
    else:
        step.verdict = "ok"
    return step


#: A server at this share of its core or more is saturated: it no longer does the whole work.
SATURATED = 0.9


def full_work(step: Step) -> bool:
    """Whether the step's CPU per call is a fair measure: every frame was sent and handled."""
    return (
        step.completed == step.calls - step.refused
        and step.rate >= 0.98 * FRAMES_PER_SECOND
        and step.lost <= 0.01 * step.sent
        and step.cpu < SATURATED
    )


def saturated(step: Step) -> bool:
    """Whether a larger step would tell nothing more: the generator could not send at the call rate,
    or the server or the generator used a whole core (a step that merely failed, e.g. on lateness,
    does not stop the climb: the CPU per call of the larger steps is still measured)."""
    return (
        step.verdict.startswith("error")
        or step.rate < 0.98 * FRAMES_PER_SECOND
        or step.cpu >= 0.95
        or step.gen_cpu >= 0.95
    )


def cpu_set(spec: str) -> set[int] | None:
    return None if spec == "none" else {int(c) for c in spec.split(",")}


@contextlib.contextmanager
def step_lock(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pinning(server_cpus: set[int] | None, gen_cpus: set[int] | None) -> str:
    def cpus(c: set[int] | None) -> str:
        return "any CPU" if c is None else "CPU " + ",".join(str(x) for x in sorted(c))

    return f"server pinned to {cpus(server_cpus)}, load generator to {cpus(gen_cpus)}"


def ms(x: float | None) -> str:
    return "-" if x is None else f"{1000 * x:.1f}"


def gen(x: float) -> str:
    return ms(x) + (" *" if x >= LATENESS_LIMIT else "")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--steps",
        default="500,1000,1500",
        help="call counts, ascending: the Go echo, and ours with uvloop (and bare, if asked)",
    )
    ap.add_argument(
        "--asyncio-steps",
        default="500,1000",
        help="call counts to try with the standard asyncio loop (ours, bare), ascending",
    )
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per step")
    ap.add_argument("--gen-procs", type=int, default=1, help="load generator processes")
    ap.add_argument(
        "--server-cpus", default="0", help="CPUs the server is pinned to ('none': not pinned)"
    )
    ap.add_argument(
        "--gen-cpus", default="1", help="CPUs the generators are pinned to ('none': not pinned)"
    )
    ap.add_argument(
        "--nice",
        type=int,
        default=-10,
        help="niceness of server and generators (negative needs root; ignored without it)",
    )
    ap.add_argument(
        "--rt",
        type=int,
        default=0,
        help="SCHED_FIFO priority of server and generators (needs root; 0, the default: use --nice; "
        "the kernel throttles real-time tasks above 95%% of a CPU for the rest of each second, "
        "stalling a server near saturation for up to 50 ms at a time)",
    )
    ap.add_argument(
        "--lock",
        metavar="FILE",
        help="hold an flock on FILE during each step (so steps never overlap other benchmarks)",
    )
    ap.add_argument(
        "--latency-sample",
        type=float,
        default=0.125,
        help="share of the calls whose echo latency is measured (the others are read in batches)",
    )
    ap.add_argument(
        "--ramp",
        type=float,
        default=0.5,
        help="seconds over which the calls start their audio, an eighth at a time (0: all at once)",
    )
    ap.add_argument(
        "--call-rate",
        type=float,
        default=250.0,
        help="calls placed a second (as they come in; 0: all at once)",
    )
    ap.add_argument(
        "--servers",
        default="ours,go",
        help="ours, go (the Go echo, bench/go_echo), bare (a bare asyncio echo)",
    )
    ap.add_argument("--loops", default="uvloop,asyncio", help="event loops for ours (and bare)")
    ap.add_argument(
        "--ours-args",
        default="",
        help="more options for ours' command line, e.g. '--max-load 0.8' (default: none, as a "
        "user runs it)",
    )
    ap.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--loop", default="uvloop", help=argparse.SUPPRESS)
    ap.add_argument("--gen", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_bare:
        run_loop(bare_main(args.serve_bare), args.loop)
        return 0
    if args.gen:
        gen_main(
            int(args.gen[0]),
            int(args.gen[1]),
            float(args.gen[2]),
            args.latency_sample,
            args.ramp,
            args.call_rate,
        )
        return 0

    steps_of = {
        "uvloop": [int(s) for s in args.steps.split(",")],
        "asyncio": [int(s) for s in args.asyncio_steps.split(",")],
    }
    server_cpus = cpu_set(args.server_cpus)
    gen_cpus = cpu_set(args.gen_cpus)
    servers = args.servers.split(",")
    loops = args.loops.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        go_echo = build_go_echo(Path(tmp)) if "go" in servers else None
        if go_echo is None and "go" in servers:
            servers.remove("go")
        # What runs: the Go echo (no event loop: "go") at the uvloop steps, ours and bare on each
        # loop at its steps. At each call count they take turns (a shared machine's speed drifts
        # over minutes, and the two sides of a ratio should be measured as close in time as can be).
        runs = [("go", "go")] if "go" in servers else []
        runs += [(srv, lp) for lp in loops for srv in servers if srv != "go"]
        counts = sorted({c for lp in ("uvloop", *loops) for c in steps_of[lp]})
        all_steps: list[Step] = []
        best: dict[tuple[str, str], Step | None] = dict.fromkeys(runs)
        failed = dict.fromkeys(runs, False)
        done = dict.fromkeys(runs, False)
        for calls in counts:
            for server, loop in runs:
                if (
                    done[(server, loop)]
                    or calls not in steps_of["uvloop" if loop == "go" else loop]
                ):
                    continue
                with step_lock(args.lock):
                    step = run_step(
                        server,
                        loop,
                        calls,
                        args.duration,
                        args.gen_procs,
                        server_cpus,
                        gen_cpus,
                        args.nice,
                        args.rt,
                        args.latency_sample,
                        args.ramp,
                        go_echo,
                        args.call_rate,
                        shlex.split(args.ours_args),
                    )
                all_steps.append(step)
                print(
                    f"{server:5} {loop:8} {calls:5} calls: {step.verdict} (refused {step.refused}"
                    f"{' (' + step.refused_why + ')' if step.refused_why else ''}, "
                    f"lost {step.lost}, server sends {step.server_rate:.2f} frames/s per call "
                    f"(max {step.server_rate_max:.2f}), echo p99 {ms(step.lat_p99)} ms, "
                    f"server late p99 {ms(step.server_late_p99)} ms, "
                    f"generator late p99 {ms(step.gen_late_p99)} ms (CPU {100 * step.gen_cpu:.0f}%), "
                    f"server CPU {100 * step.cpu:.0f}%, "
                    f"waiting for a CPU {100 * step.cpu_wait:.0f}%)",
                    file=sys.stderr,
                )
                if step.verdict == "generator overloaded":
                    pass  # says nothing about the server: neither a pass nor a failure
                elif not step.ok:
                    failed[(server, loop)] = True
                elif not failed[(server, loop)]:
                    best[(server, loop)] = step
                done[(server, loop)] = saturated(step)
    all_steps.sort(key=lambda st: (runs.index((st.server, st.loop)), st.calls))
    text = report(args, all_steps, best, runs, server_cpus, gen_cpus)
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    return 0


def report(
    args: argparse.Namespace,
    all_steps: list[Step],
    best: dict[tuple[str, str], Step | None],
    runs: list[tuple[str, str]],
    server_cpus: set[int] | None,
    gen_cpus: set[int] | None,
) -> str:
    lines = [
        "## AudioSocket: concurrent 8 kHz echo calls per server process",
        "",
        f"Command: `python bench/audiosocket_calls.py --steps {args.steps} --asyncio-steps {args.asyncio_steps} --duration {args.duration:g} "
        f"--gen-procs {args.gen_procs} --server-cpus {args.server_cpus} --gen-cpus {args.gen_cpus} "
        f"--nice {args.nice} --rt {args.rt} --latency-sample {args.latency_sample:g} --ramp {args.ramp:g} --call-rate {args.call_rate:g} "
        f"--servers {args.servers} --loops {args.loops}"
        + (f" --ours-args {shlex.quote(args.ours_args)}" if args.ours_args else "")
        + f"`; machine: {os.cpu_count()} cores; "
        f"{pinning(server_cpus, gen_cpus)}{priority(args.nice, args.rt)}; load average before: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        "",
        "| server | loop | max calls passed | frames/s per call sent (mean / max) | refused | echo p50 / p99 (ms) "
        "| server clock late p99 (ms) | generator late p99 (ms) | server CPU (1 core = 100%) | next step | larger steps passed |",
        "|---|---|---:|---|---:|---|---:|---:|---:|---|---|",
    ]

    def next_step(server: str, loop: str) -> Step | None:
        """The first step above the server's best that did not pass."""
        top = best[(server, loop)]
        floor = top.calls if top is not None else 0
        return next(
            (
                s
                for s in all_steps
                if s.server == server and s.loop == loop and not s.ok and s.calls > floor
            ),
            None,
        )

    for (server, loop), top in best.items():
        nxt = next_step(server, loop)
        nxt_txt = f"{nxt.calls}: {nxt.verdict}" if nxt else "(all steps passed)"
        later = ", ".join(
            str(s.calls)
            for s in all_steps
            if (s.server, s.loop) == (server, loop) and s.ok and nxt and s.calls > nxt.calls
        )
        if top is None:
            lines.append(
                f"| {server} | {loop} | 0 | - | - | - | - | - | - | {nxt_txt} | {later or '-'} |"
            )
            continue
        lines.append(
            f"| {server} | {loop} | {top.calls} | {top.server_rate:.2f} / {top.server_rate_max:.2f} "
            f"| {top.refused} | {ms(top.lat_p50)} / {ms(top.lat_p99)} | "
            f"{ms(top.server_late_p99)} | {gen(top.gen_late_p99)} | {100 * top.cpu:.0f}% | {nxt_txt} "
            f"| {later or '-'} |"
        )
    lines += [
        "",
        "CPU per call at the same load, against the Go echo (contention on a shared machine makes",
        "lateness, and so the max-calls figure, noisy; CPU time is not): calls one core could carry",
        "= calls up / CPU. Only loads where both servers did the whole work: every call up sent at",
        f"least 98% of its frames, at most 1% was lost, and neither server used {100 * SATURATED:.0f}% of its",
        "core or more (a saturated server skips ticks and drops frames, so its CPU per call looks",
        "cheaper than it is). Below 1.00 ours costs less per call than the Go echo.",
        "",
        "| ours on | calls | ours CPU | Go CPU | ours calls/core | Go calls/core | ours / Go (CPU per call) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for loop in ("uvloop", "asyncio"):
        for o2 in all_steps:
            if (o2.server, o2.loop) != ("ours", loop):
                continue
            g2 = next((s for s in all_steps if s.server == "go" and s.calls == o2.calls), None)
            if g2 is None or not o2.cpu or not g2.cpu or not (full_work(o2) and full_work(g2)):
                continue
            o_up, g_up = o2.calls - o2.refused, g2.calls - g2.refused
            lines.append(
                f"| {loop} | {o2.calls} | {100 * o2.cpu:.0f}% | {100 * g2.cpu:.0f}% | "
                f"{o_up / o2.cpu:.0f} | {g_up / g2.cpu:.0f} | "
                f"{(o2.cpu / o_up) / (g2.cpu / g_up):.2f} |"
            )
    lines += [
        "",
        'All steps (*: generator send lateness p99 over 5 ms; "frames/s per call sent": what the',
        f"server sent each call a second while measured, mean and most, over {MAX_SERVER_RATE} fails the step;",
        '"refused": calls the server ended at once with a hangup message (lost frames are counted on',
        'the calls it kept); "waiting for a CPU": share of the step the server process was runnable',
        'but not running, i.e. the machine\'s cores were busy; "answered on arrival": share of our',
        "frames sent as the caller's frame arrived, the rest by the clock at their deadline):",
        "",
    ]
    lines += ["| server | loop | calls | verdict | refused | lost | frames/s per call sent (mean / max) | echo p99 | "
              "server late p99 | answered on arrival | generator late p99 | generator frames/s per call | server CPU | server waiting for a CPU | generator CPU |", "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for s in all_steps:
        share = "-" if s.answered is None else f"{100 * s.answered:.0f}%"
        lines.append(
            f"| {s.server} | {s.loop} | {s.calls} | {s.verdict} | {s.refused} | {s.lost} | "
            f"{s.server_rate:.2f} / {s.server_rate_max:.2f} | {ms(s.lat_p99)} | "
            f"{ms(s.server_late_p99)} | {share} | {gen(s.gen_late_p99)} | "
            f"{s.rate:.1f} | {100 * s.cpu:.0f}% | {100 * s.cpu_wait:.0f}% | "
            f"{100 * s.gen_cpu:.0f}% |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
