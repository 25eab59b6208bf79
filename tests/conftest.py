"""Shared test helpers.

``make test`` runs the suite in two phases: first every test not marked ``paced`` on both cores
(``pytest -n 2``, pytest-xdist), then the ``paced`` ones alone, one at a time. A ``paced`` test
measures a real-time clock against the wall clock (an AudioSocket call's 50 frames/s, a bridge
between two calls, a real Asterisk): run beside a CPU-heavy test (the OFDM modem, LDPC), its
tolerances would measure the neighbour. Every test under tests/audiosocket and tests/bridges is
``paced``; a test elsewhere can be marked by hand.

``require_binary`` is how tests that need a real system daemon (unbound, named, ...) find it: locally a
missing binary skips the test, but when the ``CI`` environment variable is set it is an error, so CI can
never pass by silently skipping the tests that matter (``.ci/run`` installs the packages).
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str, package: str | None = None) -> str:
    """Path of executable ``name``; skip locally, fail under CI, when it is missing."""
    path = shutil.which(name) or next(
        (
            p
            for d in ("/usr/sbin", "/sbin", "/usr/local/sbin")
            if os.access(p := f"{d}/{name}", os.X_OK)
        ),
        None,
    )
    if path:
        return path
    message = f"{name} not found: install the Debian package {package or name!r} (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}")
    pytest.skip(message)


_PACED_DIRS = ("audiosocket", "bridges")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        if "tests" in parts and parts[parts.index("tests") + 1] in _PACED_DIRS:
            item.add_marker(pytest.mark.paced)
