"""Run every benchmark script in this folder with its defaults, one after another.

Each script prints a markdown table and writes it to ``bench/results/<script>.md``; the README quotes
those tables with the command that produced them. Usage: ``make bench`` or ``python bench/run_all.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(
        p for p in HERE.glob("*.py") if p.name != "run_all.py" and not p.name.startswith("_")
    )
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        start = time.monotonic()
        proc = subprocess.run([sys.executable, str(script)], check=False)
        print(
            f"== {script.name}: exit {proc.returncode} in {time.monotonic() - start:.0f} s",
            flush=True,
        )
        if proc.returncode:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
