"""``audionet dns``: AoDNS: stream live audio as DNS TXT records; listen through any resolver."""

from __future__ import annotations

import argparse

from audionet.cli.main import add_group


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_group(
        sub,
        "dns",
        help="AoDNS: stream live audio as DNS TXT records; listen through any resolver",
        description="AoDNS: stream live audio as DNS TXT records; listen through any resolver.\n\nNot yet built in this version.",
        epilog="example:\n  audionet dns --help",
    )
