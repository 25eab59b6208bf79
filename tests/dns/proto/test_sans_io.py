"""The protocol cores import no event loop, socket, clock or sound library (walked, not assumed)."""

import ast
from pathlib import Path

import audionet.dns.proto as proto

FORBIDDEN = {"asyncio", "socket", "time", "selectors", "threading", "sounddevice", "av", "uvloop"}


def test_proto_modules_import_no_io() -> None:
    root = Path(proto.__file__).parent
    files = sorted(root.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
