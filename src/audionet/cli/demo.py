"""``audionet demo``: every system on loopback on its built-in defaults, ending in one summary table."""

from __future__ import annotations

import argparse
import importlib
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from audionet.cli.main import add_command
from audionet.demo import SYSTEM_DEMOS, DemoRow


def cmd_demo(args: argparse.Namespace) -> int:
    console = Console()
    rows: list[DemoRow] = []
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="audionet-demo-") as tmp:
        for system, module_name in SYSTEM_DEMOS:
            if args.only and system not in args.only:
                continue
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                missing.append(system)
                continue
            workdir = Path(tmp) / system
            workdir.mkdir()
            console.print(f"[bold]{system}[/bold]: running...")
            start = time.monotonic()
            try:
                got = module.run(workdir)
            except Exception as exc:  # the demo reports a failing system and goes on
                got = [DemoRow(system, "run", f"failed: {type(exc).__name__}: {exc}", False)]
            rows.extend(got)
            console.print(f"  done in {time.monotonic() - start:.1f} s")
    table = Table(title="audionet demo: summary")
    for col in ("system", "what", "result", "ok"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.system, r.what, r.result, "[green]yes[/green]" if r.ok else "[red]NO[/red]")
    for system in missing:
        table.add_row(system, "-", "not built yet", "-")
    console.print(table)
    failed = [r for r in rows if not r.ok]
    console.print(
        f"{len(rows) - len(failed)} of {len(rows)} checks passed"
        + (f"; not built yet: {', '.join(missing)}" if missing else "")
    )
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = add_command(
        sub,
        "demo",
        cmd_demo,
        help="run every system on loopback and print a summary table",
        epilog="examples:\n  audionet demo\n  audionet demo --only audio dns",
    )
    cmd.add_argument(
        "--only",
        nargs="+",
        choices=[s for s, _ in SYSTEM_DEMOS],
        help="run only these systems",
    )
