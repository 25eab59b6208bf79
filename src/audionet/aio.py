"""Running a coroutine on the best event loop available: uvloop (the ``fast`` extra) or asyncio's own."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from audionet.errors import ConfigError

T = TypeVar("T")

#: ``auto`` takes uvloop when it is installed; ``uvloop`` insists on it; ``asyncio`` never uses it.
LOOPS = ("auto", "asyncio", "uvloop")


def run(coro: Coroutine[Any, Any, T], loop: str = "auto") -> T:
    """Run ``coro`` to completion on the chosen event loop (see :data:`LOOPS`)."""
    if loop not in LOOPS:
        coro.close()
        raise ConfigError(f"event loop must be one of {', '.join(LOOPS)}, not {loop!r}")
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                coro.close()
                raise ConfigError("uvloop is not installed: pip install 'audionet[fast]'") from None
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)
