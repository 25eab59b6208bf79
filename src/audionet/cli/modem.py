"""``audionet modem``: a reliable link over an analog audio cable (a software modem)."""

from __future__ import annotations

import argparse

from audionet.cli.main import add_group


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_group(
        sub,
        "modem",
        help="a reliable link over an analog audio cable (a software modem)",
        description="a reliable link over an analog audio cable (a software modem).\n\nNot yet built in this version.",
        epilog="example:\n  audionet modem --help",
    )
