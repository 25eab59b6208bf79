"""``audionet audiosocket``: Asterisk AudioSocket server and Asterisk-like client."""

from __future__ import annotations

import argparse

from audionet.cli.main import add_group


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_group(
        sub,
        "audiosocket",
        help="Asterisk AudioSocket server and Asterisk-like client",
        description="Asterisk AudioSocket server and Asterisk-like client.\n\nNot yet built in this version.",
        epilog="example:\n  audionet audiosocket --help",
    )
