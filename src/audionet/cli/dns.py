"""``audionet dns``: AoDNS: stream live audio as DNS TXT records; listen through any resolver."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from audionet.aio import run
from audionet.cli.main import add_command, add_group
from audionet.errors import ConfigError


def _format(text: str) -> int:
    if text not in ("v1", "v2"):
        raise ConfigError(f"--format must be v1 or v2, not {text!r}")
    return int(text[1])


def _publish_target(spec: str | None, tsig: str | None) -> tuple[str, int, Any] | None:
    if spec is None:
        if tsig is not None:
            raise ConfigError("--tsig needs --publish HOST:PORT")
        return None
    from audionet.dns.client import parse_server
    from audionet.dns.publish import TsigKey

    host, port = parse_server(spec)
    return host, port, TsigKey.parse(tsig) if tsig else None


def _rrl(args: argparse.Namespace) -> Any:
    """The rate limiting settings of ``serve``, or None for ``--rrl-off``."""
    from audionet.dns.proto.rrl import RrlConfig

    if args.rrl_off:
        if args.rrl_allow:
            raise ConfigError("--rrl-allow has no effect with --rrl-off")
        return None
    try:
        return RrlConfig(rate=args.rrl_rate, slip=args.rrl_slip, allow=tuple(args.rrl_allow))
    except ValueError as e:
        raise ConfigError(f"rate limiting: {e}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from audionet.dns.broadcast import Broadcaster, ServeOptions, serve
    from audionet.dns.proto import v2

    opts = ServeOptions(
        zone=args.zone,
        address=args.address,
        port=args.port,
        source=args.source,
        codec=args.codec,
        version=_format(args.format),
        stream=args.stream or "main",
        key=args.key,
        packs=args.packs,
        bitrate=args.bitrate,
        encoding=v2.Encoding.BASE91 if args.text else v2.Encoding.RAW,
        publish=_publish_target(args.publish, args.tsig),
        metrics_port=args.metrics_port,
        workers=args.workers,
        udp_io=args.udp_io,
        rrl=_rrl(args),
    )
    if not 1 <= args.workers <= 64:
        raise ConfigError("--workers must be between 1 and 64")
    if args.packs < 2 or args.packs > 10_000:
        raise ConfigError("--packs must be between 2 and 10000")

    if args.source.startswith("audiosocket:"):
        from audionet.cli.bridges import serve_calls

        return serve_calls(opts, args)

    def ready(b: Broadcaster) -> None:
        host, port = b.server.address
        what = f"stream {args.stream!r}" if args.format == "v2" else "the zone top"
        rrl = opts.rrl
        limiting = (
            "no rate limiting"
            if rrl is None
            else f"UDP answers limited to {rrl.rate:g}/s per /24 and /56 network (slip {rrl.slip}"
            + "".join(f", {n} allowed" for n in rrl.allow)
            + ")"
        )
        print(
            f"serving {b.publisher.zone} ({args.format}, {what}, {b.codec.describe()}) from "
            f"{args.source} on {host} port {port}, UDP and TCP; {limiting}; Ctrl-C stops",
            file=sys.stderr,
        )

    run(serve(opts, on_ready=ready))
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from rich.console import Console

    from audionet.audio.sinks import open_sink
    from audionet.dns.client import PlayStatus, play
    from audionet.dns.proto.client import ClientSettings

    console = Console(stderr=True)
    settings = ClientSettings(
        zone=args.zone,
        stream=args.stream,
        version=_format(args.format),
        passphrase=args.key,
        target_seconds=args.target,
        fresh_index=args.fresh_index,
    )
    show = console.is_terminal and args.out != "-"

    def status(s: PlayStatus) -> None:
        if show:
            state = "playing" if s.playing else "buffering"
            console.print(
                f"{s.elapsed:6.1f}s {state:9} buffer {s.buffered:4.1f}s  underruns {s.underruns}  "
                f"concealed {s.concealed}  queries {s.queries} ({s.failures} failed)  "
                f"{s.kbps:5.1f} kbit/s  restarts {s.restarts}",
                end="\r",
                highlight=False,
            )

    report = run(
        play(settings, args.server, lambda fmt: open_sink(args.out, fmt), args.duration, status)
    )
    if show:
        console.print()
    console.print(
        f"played {report.seconds:.1f} s (start-up {report.startup:.2f} s): {report.frames} frames, "
        f"{report.concealed} concealed, {report.underruns} underruns; {report.queries} queries, "
        f"{report.failures} failed, {report.tcp_fallbacks} over TCP, {report.bytes} bytes; "
        f"{report.packs_lost} packs skipped",
        highlight=False,
    )
    if report.ended:
        console.print("the stream ended (its caller hung up, or its source stopped)")
    if report.start_target > args.target + 1.0 and report.direct is False:
        console.print(
            f"note: v1 through a resolver buffers {report.start_target:.1f} s before playing: the "
            "resolver refreshes the sequence list only when its copy expires (10 s), and the "
            "player never asks for a pack the list has not shown (a resolver would cache the "
            "'no such name' and hide the pack after it appears)",
            highlight=False,
        )
    if report.target > report.start_target + 0.01 and report.start_target:
        console.print(
            f"note: after underruns the buffer target grew from {report.start_target:.1f} s to "
            f"{report.target:.1f} s (start with a larger --target to avoid them)",
            highlight=False,
        )
    if report.fresh_index and args.fresh_index == "auto":
        console.print(
            "note: the resolver held the index past its 1 s TTL, so it was read under fresh names "
            "(each such read reaches the server; --fresh-index always starts that way)",
            highlight=False,
        )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from audionet.dns.client import DnsFetcher, parse_server
    from audionet.dns.info import zone_info

    host, port = parse_server(args.server)
    infos = run(zone_info(args.zone, DnsFetcher(host, port)))
    for info in infos:
        print(info.describe())
    if not infos:
        print(f"{args.zone} serves AoDNS v2 but no stream is live now")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = add_group(
        sub,
        "dns",
        help="AoDNS: stream live audio as DNS TXT records; listen through any resolver",
        description="AoDNS: stream live audio as DNS TXT records; listen through any resolver.\n"
        "v2 (default) adds a config record, a compact index, packs that fit 1232-byte answers,\n"
        "numbered frames, named streams and passphrase encryption; v1 is the original format.",
        epilog="examples:\n  audionet dns serve music.example.com --source tone:440\n"
        "  audionet dns play music.example.com --server 127.0.0.1:5053 --out x.wav --duration 10\n"
        "  audionet dns info music.example.com --server 127.0.0.1:5053",
    )
    serve = add_command(
        group,
        "serve",
        cmd_serve,
        help="be the authoritative DNS server of ZONE and stream audio into it",
        epilog="examples:\n  audionet dns serve music.example.com --source tone:440\n"
        "  audionet dns serve music.example.com --source file:song.mp3 --key 'secret words'\n"
        "  audionet dns serve music.example.com --format v1 --port 5053\n"
        "  audionet dns serve music.example.com --publish 10.0.0.53:53 --tsig hmac-sha256:up:c2VjcmV0\n"
        "  audionet dns serve music.example.com --port 53 --workers 2 --udp-io mmsg\n"
        "  audionet dns serve music.example.com --port 53 --rrl-rate 500 --rrl-allow 192.0.2.0/24\n"
        "  audionet dns serve calls.example.com --source audiosocket:127.0.0.1:9093",
    )
    serve.add_argument("zone", help="the zone to serve, e.g. music.example.com")
    serve.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serve.add_argument("--port", type=int, default=5053, help="UDP and TCP port (default 5053)")
    serve.add_argument(
        "--source",
        default="tone:440",
        help="tone:HZ, file:PATH (loops), mic, stdin, or audiosocket:HOST:PORT: phone calls "
        "(Asterisk connects them here; each call is a stream named by its UUID, or with --stream "
        "the calls feed that stream one at a time) (default tone:440)",
    )
    serve.add_argument("--codec", default="opus", choices=["opus", "codec2"], help="default opus")
    serve.add_argument(
        "--format", default="v2", choices=["v2", "v1"], help="record format (default v2)"
    )
    serve.add_argument("--stream", help="v2 stream name (default main)")
    serve.add_argument("--key", help="v2: encrypt with this passphrase (listeners need it too)")
    serve.add_argument("--packs", type=int, default=75, help="packs kept (default 75)")
    serve.add_argument("--bitrate", type=int, help="codec bit rate in bit/s (Opus default ~20000)")
    serve.add_argument(
        "--text", action="store_true", help="v2: basE91 text payloads instead of raw bytes"
    )
    serve.add_argument(
        "--publish",
        metavar="HOST:PORT",
        help="also push the records into this primary server by RFC 2136 dynamic update",
    )
    serve.add_argument(
        "--tsig", metavar="[ALG:]NAME:SECRET", help="TSIG key for --publish (like nsupdate -y)"
    )
    serve.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on 127.0.0.1:PORT/metrics"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port with SO_REUSEPORT (default 1; --metrics-port "
        "counts them all)",
    )
    serve.add_argument(
        "--udp-io",
        default="auto",
        choices=["auto", "mmsg", "asyncio"],
        help="UDP I/O: mmsg answers batches of datagrams with recvmmsg/sendmmsg (Linux), asyncio "
        "uses the event loop's datagram transport (anywhere); auto (default) takes mmsg where it "
        "is available",
    )

    rrl = serve.add_argument_group(
        "response rate limiting",
        "UDP answers per client network (/24 IPv4, /56 IPv6) are limited, as NSD and Knot do, so the "
        "server cannot be used to amplify traffic at a forged source address; TCP is never limited.",
    )
    rrl.add_argument(
        "--rrl-rate",
        type=float,
        default=200,
        metavar="N",
        help="UDP answers per second each client network gets (default 200, NSD's)",
    )
    rrl.add_argument(
        "--rrl-slip",
        type=int,
        default=2,
        metavar="N",
        help="every N-th limited answer is sent truncated (TC=1) so real resolvers retry over TCP, "
        "the others are dropped (default 2; 0 drops all, 1 truncates all)",
    )
    rrl.add_argument(
        "--rrl-allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="never limit this network, e.g. your resolvers' (repeatable: --rrl-allow 10.0.0.0/8 "
        "--rrl-allow 2001:db8::/32)",
    )
    rrl.add_argument(
        "--rrl-off", action="store_true", help="no rate limiting (benchmarks, trusted networks)"
    )

    play_cmd = add_command(
        group,
        "play",
        cmd_play,
        help="listen to a stream through a resolver or straight from the server",
        epilog="examples:\n  audionet dns play music.example.com --server 127.0.0.1:5053 --out x.wav --duration 10\n"
        "  audionet dns play music.example.com --out speaker   (the system's resolver)\n"
        "  audionet dns play music.example.com --server 127.0.0.1:5053 --out - | aplay -r16000 -fS16_LE",
    )
    play_cmd.add_argument("zone", help="the zone, e.g. music.example.com")
    play_cmd.add_argument(
        "--server",
        help="HOST:PORT of the AoDNS server or a resolver (default: the system's resolver)",
    )
    play_cmd.add_argument("--stream", default="main", help="v2 stream name (default main)")
    play_cmd.add_argument("--format", default="v2", choices=["v2", "v1"], help="default v2")
    play_cmd.add_argument("--key", help="passphrase of an encrypted stream")
    play_cmd.add_argument(
        "--out", default="speaker", help="FILE.wav, - (raw PCM to stdout) or speaker"
    )
    play_cmd.add_argument(
        "--duration", type=float, help="seconds of audio to play (default: forever)"
    )
    play_cmd.add_argument(
        "--target", type=float, default=3.0, help="seconds buffered before playing (default 3)"
    )
    play_cmd.add_argument(
        "--fresh-index",
        default="auto",
        choices=["auto", "always", "never"],
        help="v2: read the index as <nonce>.index.STREAM.ZONE, a name no resolver has cached, so a "
        "resolver that keeps answers longer than their TTL (Knot Resolver: 5 s at least) cannot "
        "hold playback back; auto (default) switches to it when the index stops advancing",
    )

    info = add_command(
        group,
        "info",
        cmd_info,
        help="show the streams of a zone: codec, encryption and buffer depth",
        epilog="example:\n  audionet dns info music.example.com --server 127.0.0.1:5053",
    )
    info.add_argument("zone", help="the zone, e.g. music.example.com")
    info.add_argument("--server", help="HOST:PORT (default: the system's resolver)")
