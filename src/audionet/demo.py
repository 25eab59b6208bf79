"""The demo's building blocks: each system contributes rows to one summary table.

Each system has a module ``audionet.<system>.demo`` with a function ``run(workdir: Path) -> list[DemoRow]``
that runs that system on loopback on its built-in defaults, checks what came out, and returns one row
per check. ``audionet demo`` (``make demo``) runs them all and prints one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class DemoRow:
    """One line of the demo's summary: which system, what was done, what came out, and whether it passed."""

    system: str
    what: str
    result: str
    ok: bool


DemoFunction = Callable[[Path], list[DemoRow]]

#: Modules with a ``run(workdir)`` function, in the order the demo runs them.
SYSTEM_DEMOS = (
    ("audio", "audionet.audio.demo"),
    ("audiosocket", "audionet.audiosocket.demo"),
    ("dns", "audionet.dns.demo"),
    ("modem", "audionet.modem.demo"),
    ("bridges", "audionet.bridges.demo"),
)
