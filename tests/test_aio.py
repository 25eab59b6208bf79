from __future__ import annotations

import asyncio
import sys

import pytest

from audionet.aio import run
from audionet.errors import ConfigError


async def loop_name() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_loop() -> None:
    assert run(loop_name(), "asyncio").startswith("asyncio")


def test_auto_takes_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert run(loop_name()).startswith("uvloop")


def test_auto_falls_back_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert run(loop_name()).startswith("asyncio")
    with pytest.raises(ConfigError, match=r"audionet\[fast\]"):
        run(loop_name(), "uvloop")


def test_unknown_loop() -> None:
    with pytest.raises(ConfigError, match="auto, asyncio, uvloop"):
        run(loop_name(), "trio")
