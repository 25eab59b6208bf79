"""``audionet``: the command-line entry point.

Each system registers its own subcommand group from its own module (``audionet.cli.audio``,
``audionet.cli.dns``, ``audionet.cli.modem``, ``audionet.cli.audiosocket``); this module only builds
the top-level parser, sets up logging (``-v``/``-q``, nowhere else) and turns our errors into a short
message and a non-zero exit status instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from audionet import __version__
from audionet.errors import AudionetError

#: Modules that each define ``register(subparsers)``; order is the order in ``--help``.
COMMAND_MODULES = (
    "audionet.cli.audio",
    "audionet.cli.dns",
    "audionet.cli.modem",
    "audionet.cli.channel",
    "audionet.cli.audiosocket",
    "audionet.cli.demo",
)

EPILOG = """\
examples:
  audionet audio tone 440 --seconds 3 -o t.wav
  audionet audio convert t.wav o.wav --codec opus
  audionet dns serve music.example.com --source tone:440
  audionet modem loopback photo.jpg -o copy.jpg --channel cable
  audionet audiosocket serve --app echo --port 9092
  audionet demo
"""

Handler = Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and examples."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audionet",
        description="Sound and data over unusual carriers: audio over DNS, a software modem "
        "over audio cables, and Asterisk AudioSocket.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"audionet {__version__}")
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    verbosity.add_argument("-q", "--quiet", action="store_true", help="only errors")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def setup_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        # A group given without a subcommand: show that group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except AudionetError as exc:
        print(f"audionet: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"audionet: error: {exc}", file=sys.stderr)
        return 1


def add_group(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    description: str,
    epilog: str,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add a subcommand group (``audionet NAME ...``) and return its own subparsers."""
    group = sub.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter
    )
    group.set_defaults(group_parser=group)
    return group.add_subparsers(dest="command", metavar="COMMAND")


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help: str,
    epilog: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """Add one command; ``epilog`` must hold at least one example line."""
    cmd = sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )
    cmd.set_defaults(handler=handler)
    return cmd
