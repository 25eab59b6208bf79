"""Real DNS daemons started on loopback, for tests, benchmarks and trying AoDNS through a resolver.

unbound runs with a stub zone pointing at our server, BIND ``named`` as a forwarding resolver, Knot
Resolver ``kresd`` with a STUB policy for the zone (its defaults kept: answers are cached at least
5 s whatever their TTL), NSD as
an authoritative peer serving a zone file (for the benchmark); each in its own directory, on a free
high port, without DNSSEC validation for the zone, privilege dropping, chroot or remote control.
They are stopped by their own process id on exit.

:class:`DaemonOptions` changes what tests need to vary: the loopback address a resolver listens on
and sends from (``127.0.0.2`` is another client network to a server's rate limiter), unbound's
0x20 letter-case randomisation, and NSD's response rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    #: unbound and NSD: the loopback address to listen on, and unbound's outgoing address too
    address: str = "127.0.0.1"
    #: unbound: ``use-caps-for-id`` (0x20). Its default is off; on here unless a test needs the
    #: default (the original AoDNS server compares names case-sensitively and fails with 0x20).
    use_caps_for_id: bool = True
    #: NSD: ``rrl-ratelimit`` (responses per second per /24; 0 turns rate limiting off)
    rrl_rate: int = 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port: int = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
            return port
    raise OSError("no free port")


def unbound_conf(
    workdir: Path, port: int, zone: str, upstream: int, opts: DaemonOptions = DaemonOptions()
) -> str:
    caps = "yes" if opts.use_caps_for_id else "no"
    return f"""server:
    interface: {opts.address}
    outgoing-interface: {opts.address}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: "{workdir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    domain-insecure: "{zone}"
    module-config: "iterator"
    qname-minimisation: no
    # 0x20: unbound randomises the letter case of its queries and rejects answers that differ.
    use-caps-for-id: {caps}
    minimal-responses: yes
    edns-buffer-size: 1232
remote-control:
    control-enable: no
stub-zone:
    name: "{zone}"
    stub-addr: 127.0.0.1@{upstream}
"""


def named_conf(workdir: Path, port: int, upstream: int) -> str:
    return f"""options {{
    directory "{workdir}";
    pid-file "{workdir}/named.pid";
    session-keyfile "{workdir}/session.key";
    managed-keys-directory "{workdir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion yes;
    allow-query {{ 127.0.0.1; }};
    allow-recursion {{ 127.0.0.1; }};
    forwarders {{ 127.0.0.1 port {upstream}; }};
    forward only;
    dnssec-validation no;
    edns-udp-size 1232;
    max-udp-size 1232;
}};
controls {{ }};
"""


def kresd_conf(workdir: Path, port: int, zone: str, upstream: int) -> str:
    """Knot Resolver 5 (Lua): the zone's queries go to our server; the cache keeps its defaults."""
    return f"""net.ipv6 = false
net.listen('127.0.0.1', {port}, {{ kind = 'dns' }})
cache.open(16 * MB, 'lmdb://{workdir}/cache')
trust_anchors.remove('.')
policy.add(policy.suffix(policy.STUB({{'127.0.0.1@{upstream}'}}), {{todname('{zone}.')}}))
"""


def nsd_conf(
    workdir: Path,
    port: int,
    zone: str,
    zonefile: Path,
    servers: int = 1,
    opts: DaemonOptions = DaemonOptions(),
) -> str:
    """NSD as a plain authoritative server; ``rrl-ratelimit: 0`` turns response rate limiting off."""
    return f"""server:
    ip-address: {opts.address}
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{workdir}"
    pidfile: "{workdir}/nsd.pid"
    database: ""
    zonelistfile: "{workdir}/zone.list"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}"
    logfile: "{workdir}/nsd.log"
    server-count: {servers}
    reuseport: yes
    verbosity: 0
    rrl-ratelimit: {opts.rrl_rate}
remote-control:
    control-enable: no
zone:
    name: "{zone}"
    zonefile: "{zonefile}"
"""


def named_primary_conf(workdir: Path, port: int, zone: str, key: tuple[str, str, str]) -> str:
    """BIND as the primary of ``zone``, accepting RFC 2136 updates signed with ``key``."""
    name, secret, algorithm = key
    return f"""key "{name}" {{ algorithm {algorithm}; secret "{secret}"; }};
options {{
    directory "{workdir}";
    pid-file "{workdir}/named.pid";
    session-keyfile "{workdir}/session.key";
    managed-keys-directory "{workdir}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
controls {{ }};
zone "{zone}" {{
    type primary;
    file "{workdir}/{zone}.db";
    allow-update {{ key "{name}"; }};
}};
"""


def primary_zone_text(zone: str) -> str:
    return (
        f"$ORIGIN {zone}.\n$TTL 60\n"
        f"@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 1\n"
        f"@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
    )


def _probe_ok(port: int, zone: str, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(Exception):
        r = dns.query.udp(dns.message.make_query(zone, "SOA"), host, port=port, timeout=0.5)
        return bool(r.answer)
    return False


def _check_alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"resolver exited with {proc.returncode}: {err[-2000:]}")


def start_resolver(
    kind: str,
    binary: str,
    workdir: Path,
    zone: str,
    upstream: int,
    key: tuple[str, str, str] | None = None,
    servers: int = 1,
    opts: DaemonOptions = DaemonOptions(),
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``unbound``, ``named`` or ``kresd`` forwarding ``zone`` to ``127.0.0.1:upstream`` (not waited for)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(opts.address)
    conf = workdir / f"{kind}.conf"
    if kind == "unbound":
        conf.write_text(unbound_conf(workdir, port, zone, upstream, opts))
        cmd = [binary, "-d", "-c", str(conf)]
    elif kind == "named":
        conf.write_text(named_conf(workdir, port, upstream))
        cmd = [binary, "-g", "-c", str(conf), "-n", "1"]
    elif kind == "kresd":
        conf.write_text(kresd_conf(workdir, port, zone, upstream))
        cmd = [binary, "-n", "-c", str(conf), str(workdir)]
    elif kind == "named-primary":
        if key is None:
            raise ValueError("named-primary needs a TSIG key (name, secret, algorithm)")
        (workdir / f"{zone}.db").write_text(primary_zone_text(zone))
        conf.write_text(named_primary_conf(workdir, port, zone, key))
        cmd = [binary, "-g", "-c", str(conf), "-n", "1"]
    elif kind == "nsd":
        # ``upstream`` is unused: NSD serves ``workdir/<zone>.zone``, written by the caller.
        conf.write_text(nsd_conf(workdir, port, zone, workdir / f"{zone}.zone", servers, opts))
        cmd = [binary, "-d", "-c", str(conf)]
    else:
        raise ValueError(f"unknown daemon {kind!r}: unbound, named, kresd or nsd")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), port


def stop_resolver(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def run_resolver(
    kind: str,
    binary: str,
    workdir: Path,
    zone: str,
    upstream: int,
    key: tuple[str, str, str] | None = None,
    servers: int = 1,
    opts: DaemonOptions = DaemonOptions(),
) -> Iterator[int]:
    """Synchronous use (the upstream server runs in another process or thread)."""
    proc, port = start_resolver(kind, binary, workdir, zone, upstream, key, servers, opts)
    try:
        deadline = time.monotonic() + 15
        while not _probe_ok(port, zone, opts.address):
            _check_alive(proc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} on port {port} did not answer for {zone}")
            time.sleep(0.1)
        yield port
    finally:
        stop_resolver(proc)


@contextlib.asynccontextmanager
async def arun_resolver(
    kind: str,
    binary: str,
    workdir: Path,
    zone: str,
    upstream: int,
    opts: DaemonOptions = DaemonOptions(),
) -> AsyncIterator[int]:
    """Asynchronous use: the upstream server runs on this event loop, so waiting must not block it."""
    proc, port = start_resolver(kind, binary, workdir, zone, upstream, opts=opts)
    try:
        deadline = time.monotonic() + 15
        while not await asyncio.to_thread(_probe_ok, port, zone, opts.address):
            _check_alive(proc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{kind} on port {port} did not answer for {zone}")
            await asyncio.sleep(0.1)
        yield port
    finally:
        stop_resolver(proc)
