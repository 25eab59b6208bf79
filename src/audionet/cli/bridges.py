"""The bridges' command-line pieces, registered into the groups of the systems they join.

``audionet audiosocket bridge`` is defined here; the bridges' options of ``dns serve`` (an
``audiosocket:`` source) and of the modem stations (``--audio audiosocket...``) are handled by the
modules in :mod:`audionet.bridges`, called from those groups.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING

from audionet.aio import run
from audionet.cli.main import add_command
from audionet.errors import ConfigError

if TYPE_CHECKING:
    from audionet.dns.broadcast import ServeOptions


def add_bridge_command(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        group,
        "bridge",
        cmd_bridge,
        help="join two AudioSocket servers in one call, as Asterisk bridges two legs",
        description="Join two AudioSocket servers in one call the way Asterisk bridges two\n"
        "AudioSocket legs: connect to both as the Asterisk-like client and relay each\n"
        "server's audio to the other as it arrives. The bridge keeps no clock of its own\n"
        "(neither does Asterisk): the two servers' 20 ms clocks are the only clocks.\n"
        "Optionally the call goes through G.711 (as a SIP trunk would transcode it), with\n"
        "random delay (jitter, order kept) and frame loss. Ends when a server hangs up, when a\n"
        "server sends what Asterisk would drop the call for (exit status 1), after 2 s\n"
        "without audio from a server, or after --seconds.",
        epilog="examples:\n"
        "  audionet audiosocket bridge 127.0.0.1:9301 127.0.0.1:9302\n"
        "  audionet audiosocket bridge 127.0.0.1:9301 127.0.0.1:9302 --codec ulaw --jitter 20 "
        "--loss 0.01\n"
        "two modem stations exchanging a file through it:\n"
        "  audionet modem listen --root in/ --audio audiosocket-listen:127.0.0.1:9301\n"
        "  audionet modem send photo.jpg --audio audiosocket-listen:127.0.0.1:9302\n"
        "  audionet audiosocket bridge 127.0.0.1:9301 127.0.0.1:9302 --codec ulaw",
    )
    p.add_argument("first", metavar="HOST1:PORT1", help="the first leg's AudioSocket server")
    p.add_argument("second", metavar="HOST2:PORT2", help="the second leg's AudioSocket server")
    p.add_argument(
        "--codec",
        choices=["slin", "ulaw", "alaw"],
        default="slin",
        help="carry the call in signed linear as it is (default) or through G.711 mu-law/A-law",
    )
    p.add_argument(
        "--jitter", type=float, default=0.0, help="hold each frame 0..MS milliseconds (order kept)"
    )
    p.add_argument(
        "--loss", type=float, default=0.0, help="probability of losing each frame (0.01 = 1%%)"
    )
    p.add_argument(
        "--lost",
        choices=["plc", "silence", "drop"],
        default="plc",
        help="what takes a lost frame's place: plc (a jitter buffer keeps the timeline and "
        "Asterisk's generic packet-loss concealment fills the 20 ms, as on a SIP call; the "
        "default), silence, or drop (nothing: the audio is 20 ms shorter)",
    )
    p.add_argument("--seconds", type=float, help="hang up after this long (default: never)")
    p.add_argument("--seed", type=int, help="seed of the jitter and loss (default: random)")


def cmd_bridge(args: argparse.Namespace) -> int:
    from audionet.bridges.bridge import Bridge
    from audionet.bridges.relay import Impairments
    from audionet.cli.audiosocket import parse_address

    first, second = parse_address(args.first), parse_address(args.second)
    if args.seconds is not None and args.seconds <= 0:
        raise ConfigError("--seconds must be positive")
    imp = Impairments(args.codec, args.jitter / 1000, args.loss, args.seed, args.lost)

    async def main() -> int:
        import asyncio

        b = Bridge(first, second, imp)
        await b.connect()
        for leg, (host, port) in zip(b.legs, b.addresses, strict=True):
            print(f"leg {leg.index + 1}: call {leg.uuid} to {host}:{port}", file=sys.stderr)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, b.hangup, "interrupted")
        result = await b.run(args.seconds)
        for i, st in enumerate(result.stats):
            print(
                f"leg {i + 1} -> leg {2 - i}: {st.frames_in} frames in "
                f"({st.frames_per_second():.2f} frames/s), {st.frames_out} relayed, "
                f"{st.lost} lost ({args.lost})",
                file=sys.stderr,
            )
        for end in result.ends:
            who = "its server" if end.by_server else "the bridge"
            print(f"leg {end.leg + 1} ended by {who}: {end.reason}", file=sys.stderr)
        print(f"bridged {result.seconds:.1f} s ({args.codec})", file=sys.stderr)
        return 1 if result.error is not None else 0

    return run(main())


def serve_calls(opts: ServeOptions, args: argparse.Namespace) -> int:
    """``audionet dns serve ZONE --source audiosocket:HOST:PORT``."""
    from audionet.bridges.call_dns import CallStation, serve_calls

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def ready(station: CallStation) -> None:
        host, port = station.server.address
        ahost, aport = station.audiosocket_address
        what = (
            "each call a stream named by its UUID"
            if args.stream is None
            else f"calls feed stream {args.stream!r} one at a time"
        )
        say(
            f"serving {station.publisher.zone} on {host} port {port}, UDP and TCP; taking "
            f"AudioSocket calls on {ahost}:{aport} ({what}); Ctrl-C stops"
        )

    run(serve_calls(opts, args.stream is None, say, ready))
    return 0
