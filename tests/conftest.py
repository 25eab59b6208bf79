"""Shared test helpers.

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
