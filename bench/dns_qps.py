"""Queries per second: our AoDNS server against NSD serving the same records, same run, dnsperf.

Starts ``audionet dns serve`` (v2, a 440 Hz tone, the live stream running), copies every record it
serves (config, index, all packs, apex) into a zone file, serves that file with NSD (response rate
limiting off: ``rrl-ratelimit: 0``), then runs dnsperf against each, with and without EDNS, on a query
mix of 1 index : 1 config : 8 pack queries (what listeners send). Both on loopback high ports, each
single-threaded. Our server runs its default UDP I/O (``--udp-io auto``: batched recvmmsg/sendmmsg on
Linux; ``--udp-io asyncio`` measures the event loop's per-datagram path instead). A third target, a
uvloop UDP server that answers by flipping the QR bit and does no DNS work, shows the ceiling of a
Python asyncio server that handles one datagram per callback, on the same machine in the same run.
With one process, our server is measured twice: with response rate limiting off (``--rrl-off``, as
NSD here) and on at a rate far above what dnsperf offers (``--rrl-rate 10000000``: every query
goes through the check, none is limited; the server's metrics confirm it), so the cost of the
check shows. Prints a markdown table and writes it to ``bench/results/dns_qps.md``.

    .venv/bin/python bench/dns_qps.py            # ~1 minute
    .venv/bin/python bench/dns_qps.py --seconds 5 --rounds 1
    .venv/bin/python bench/dns_qps.py --udp-io asyncio --processes 1
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from audionet.dns.localresolver import free_port, run_resolver
from audionet.dns.proto import names, v2

ZONE = "bench.example.net"
HERE = Path(__file__).resolve().parent
#: Responses per second per network for the rate-limited run: far above dnsperf's load here
#: (~150k q/s), so every query is checked and none limited.
RRL_RATE = 10_000_000


def query(port: int, name: str, rdtype: str = "TXT") -> dns.message.Message:
    return dns.query.tcp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=3)


#: The framework's ceiling: a uvloop UDP server that only flips the QR bit (no DNS work at all).
ECHO = """
import asyncio, sys
try:
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run
class P(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, d, a): self.t.sendto(d[:2] + bytes([d[2] | 0x80]) + d[3:], a)
async def main():
    await asyncio.get_running_loop().create_datagram_endpoint(P, local_addr=("127.0.0.1", int(sys.argv[1])))
    await asyncio.sleep(3600)
run(main())
"""


def same_answer(ours: int, theirs: int, name: str) -> bool:
    """The same TXT records from both servers, over TCP and over UDP with EDNS (4096 bytes)."""
    answers = []
    for port in (ours, theirs):
        tcp = query(port, name).answer
        q = dns.message.make_query(name, "TXT", use_edns=0, payload=4096)
        udp = dns.query.udp(q, "127.0.0.1", port=port, timeout=3).answer
        answers.append([sorted(r.strings for r in rrs[0]) if rrs else None for rrs in (tcp, udp)])
    return answers[0] == answers[1] and answers[0][0] is not None


def wait_server(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if query(port, ZONE, "SOA").answer:
                return
        except Exception:
            time.sleep(0.2)
    raise TimeoutError("our server did not start")


def snapshot_records(port: int) -> tuple[list[str], list[str]]:
    """Zone file lines for everything the server holds now, and the query names."""
    lines: list[str] = []
    for name, rdtype in [(ZONE, "SOA"), (ZONE, "NS"), (f"ns.{ZONE}", "A")]:
        lines += [r.to_text() for r in query(port, name, rdtype).answer]
    stream = "main"
    cfg_name = names.v2_config_name(ZONE, stream)
    idx_name = names.v2_index_name(ZONE, stream)
    cfg = query(port, cfg_name)
    idx_msg = query(port, idx_name)
    idx = v2.Index.from_text(b"".join(idx_msg.answer[0][0].strings))
    lines += [r.to_text() for r in cfg.answer] + [r.to_text() for r in idx_msg.answer]
    lines += [r.to_text() for r in query(port, names.v2_streams_name(ZONE)).answer]
    packs = [names.v2_pack_name(ZONE, stream, s, idx.epoch) for s in range(idx.first, idx.last + 1)]
    for p in packs:
        lines += [r.to_text() for r in query(port, p).answer]
    qnames = []
    for i, p in enumerate(packs):
        qnames.append(p)
        if i % 8 == 0:
            qnames += [idx_name, cfg_name]
    return lines, qnames


def dnsperf(
    port: int, datafile: Path, seconds: float, clients: int, edns: bool
) -> dict[str, float]:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(datafile), "-l", str(seconds)]
    cmd += ["-c", str(clients), "-q", "200", "-t", "2"]
    if edns:
        cmd.append("-e")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout

    def grab(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else float("nan")

    return {
        "qps": grab(r"Queries per second:\s+([\d.]+)"),
        "lost": grab(r"Queries lost:\s+(\d+)"),
        "sent": grab(r"Queries sent:\s+(\d+)"),
        "resp_size": grab(r"Average packet size:\s+request \d+, response (\d+)"),
        "latency_ms": grab(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=6.0, help="each dnsperf run (default 6)")
    ap.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds per setting (default 2)"
    )
    ap.add_argument(
        "--clients", type=int, default=4, help="dnsperf clients per process (default 4)"
    )
    ap.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also compare with this many processes on each side (default 2; 1 to skip)",
    )
    ap.add_argument(
        "--udp-io",
        default="auto",
        choices=["auto", "mmsg", "asyncio"],
        help="our server's UDP I/O (default auto: batched recvmmsg/sendmmsg on Linux)",
    )
    args = ap.parse_args()
    for tool in ("dnsperf", "nsd"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            print(f"{tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 2
    nsd_bin = shutil.which("nsd") or "/usr/sbin/nsd"
    counts = [1] if args.processes <= 1 else [1, args.processes]
    tables = [measure(procs, args, nsd_bin) for procs in counts]
    text = "\n".join(tables)
    print(text)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "dns_qps.md").write_text(
        "# dns_qps: AoDNS server vs NSD (dnsperf, loopback)\n\n"
        f"Command: `{' '.join(['.venv/bin/python', 'bench/dns_qps.py', *sys.argv[1:]])}`\n\n" + text
    )
    return 0


def start_ours(
    procs: int, args: argparse.Namespace, *extra: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "audionet", "-q", "dns", "serve", ZONE, "--port", str(port)]
    cmd += ["--packs", "2000", "--workers", str(procs), "--udp-io", args.udp_io, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), port


def rrl_counts(metrics_port: int) -> tuple[float, float]:
    """(slipped, dropped) from a server's Prometheus endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read()
    values = {}
    for line in text.decode().splitlines():
        if line.startswith("aodns_rrl_"):
            name, value = line.split()
            values[name] = float(value)
    return values["aodns_rrl_slipped_total"], values["aodns_rrl_dropped_total"]


def measure(procs: int, args: argparse.Namespace, nsd_bin: str) -> str:
    """One comparison: our server with ``procs`` processes against NSD with ``procs`` servers."""
    work = Path(tempfile.mkdtemp(prefix="dns_qps_"))
    server, port = start_ours(procs, args, "--rrl-off")
    limited: subprocess.Popen[bytes] | None = None
    rrl_port = rrl_metrics = 0
    if procs == 1:
        rrl_metrics = free_port()
        limited, rrl_port = start_ours(
            procs, args, "--rrl-rate", str(RRL_RATE), "--metrics-port", str(rrl_metrics)
        )
    echo: subprocess.Popen[bytes] | None = None
    targets = ["aodns", "nsd"] + (["aodns-rrl", "echo"] if procs == 1 else [])
    slipped = dropped = float("nan")
    try:
        wait_server(port, server)
        if limited is not None:
            wait_server(rrl_port, limited)
        time.sleep(6)  # let a dozen packs accumulate
        lines, qnames = snapshot_records(port)
        (work / "nsd").mkdir()
        (work / "nsd" / f"{ZONE}.zone").write_text("\n".join(lines) + "\n")
        datafile = work / "queries.txt"
        datafile.write_text("".join(f"{q} TXT\n" for q in qnames))
        datafiles = {"aodns": datafile, "nsd": datafile, "echo": datafile}
        if limited is not None:
            # The same mix of the second server's own records (its run has its own epoch).
            _, rrl_names = snapshot_records(rrl_port)
            datafiles["aodns-rrl"] = work / "queries-rrl.txt"
            datafiles["aodns-rrl"].write_text("".join(f"{q} TXT\n" for q in rrl_names))
        echo_port = free_port()
        if procs == 1:
            echo = subprocess.Popen([sys.executable, "-c", ECHO, str(echo_port)])
        with run_resolver("nsd", nsd_bin, work / "nsd", ZONE, 0, servers=procs) as nsd_port:
            # Every name but the index, which our live stream rewrites with each new pack.
            idx_name = names.v2_index_name(ZONE, "main")
            same = all(same_answer(port, nsd_port, q) for q in sorted(set(qnames) - {idx_name}))
            ports = {"aodns": port, "nsd": nsd_port, "echo": echo_port, "aodns-rrl": rrl_port}
            results: dict[tuple[bool, str], list[dict[str, float]]] = {}
            clients = args.clients * procs
            for _ in range(args.rounds):
                for edns in (False, True):
                    for who in targets:
                        r = dnsperf(ports[who], datafiles[who], args.seconds, clients, edns)
                        results.setdefault((edns, who), []).append(r)
                        print(
                            f"  {procs}p {who:9} edns={edns!s:5} {r['qps']:9.0f} q/s",
                            file=sys.stderr,
                        )
        if limited is not None:
            slipped, dropped = rrl_counts(rrl_metrics)
    finally:
        for proc in (server, limited, echo):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    uv = "uvloop" if _has_uvloop() else "asyncio"
    io = udp_io_used(args.udp_io)
    head = (
        f"**{procs} process{'es' if procs > 1 else ''}** (ours: `--workers {procs}`; NSD: "
        f"`server-count: {procs}`). Query mix: {len(qnames)} names (1 index : 1 config : 8 packs), "
        f"{len(lines)} records; answers identical on both servers: {'yes' if same else 'NO'}; "
        f"our server on {uv} with UDP I/O {io}, response rate limiting off (`--rrl-off`; NSD: "
        f"`rrl-ratelimit: 0`); {args.rounds} alternating rounds of {args.seconds:g} s, "
        f"{args.clients * procs} dnsperf clients, best round shown."
    )
    rows = [head, ""]
    if procs == 1:
        rows += [
            "| EDNS | AoDNS q/s | NSD q/s | AoDNS / NSD | uvloop echo q/s (per-datagram ceiling) "
            "| AoDNS / echo "
            "| avg response bytes (ours / NSD) | lost (ours / NSD) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        rows += [
            "| EDNS | AoDNS q/s | NSD q/s | AoDNS / NSD | avg response bytes (ours / NSD) "
            "| lost (ours / NSD) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    best = {k: max(v, key=lambda r: r["qps"]) for k, v in results.items()}
    for edns in (False, True):
        a, n = best[(edns, "aodns")], best[(edns, "nsd")]
        label = "on (4096)" if edns else "off (512, packs truncated)"
        row = f"| {label} | {a['qps']:.0f} | {n['qps']:.0f} | {a['qps'] / n['qps']:.0%} | "
        if procs == 1:
            e = best[(edns, "echo")]
            row += f"{e['qps']:.0f} | {a['qps'] / e['qps']:.0%} | "
        row += f"{a['resp_size']:.0f} / {n['resp_size']:.0f} | {a['lost']:.0f} / {n['lost']:.0f} |"
        rows.append(row)
    if procs == 1:
        rows += ["", ECHO_NOTE[io.startswith("mmsg")], ""]
        rows += [
            f"**With response rate limiting on** (`--rrl-rate {RRL_RATE}`: every query is "
            "checked against its network's bucket, none is limited: the server counted "
            f"{slipped:.0f} slipped and {dropped:.0f} dropped answers). NSD as above.",
            "",
            "| EDNS | AoDNS q/s, limiting off | AoDNS q/s, limiting on | on / off | NSD q/s "
            "| AoDNS (limiting on) / NSD | lost (limiting on) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for edns in (False, True):
            a, r, n = best[(edns, "aodns")], best[(edns, "aodns-rrl")], best[(edns, "nsd")]
            label = "on (4096)" if edns else "off (512, packs truncated)"
            rows.append(
                f"| {label} | {a['qps']:.0f} | {r['qps']:.0f} | {r['qps'] / a['qps']:.0%} | "
                f"{n['qps']:.0f} | {r['qps'] / n['qps']:.0%} | {r['lost']:.0f} |"
            )
    return "\n".join(rows) + "\n"


#: What the echo column means for each kind of UDP I/O (the echo itself is always per-datagram).
ECHO_NOTE = {
    False: "The echo answers one datagram per event-loop callback, as our asyncio path does, so "
    "'AoDNS / echo' is the share of that ceiling our DNS work leaves.",
    True: "The echo answers one datagram per event-loop callback (one recvfrom and one sendto "
    "each); our batched path (recvmmsg/sendmmsg, up to 64 datagrams per call) does not go "
    "through that per-datagram path, so the echo is no ceiling for it: 'AoDNS / echo' above "
    "100% is what batching gains over the best per-datagram asyncio server.",
}


def udp_io_used(choice: str) -> str:
    """What ``--udp-io choice`` runs on this machine, for the table."""
    from audionet.dns.mmsg import unavailable

    if choice == "asyncio" or (choice == "auto" and unavailable() is not None):
        return "asyncio (one datagram per callback)"
    return "mmsg (recvmmsg/sendmmsg batches)"


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
