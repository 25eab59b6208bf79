"""A real Asterisk for the tests: found, configured in a temp dir, started on loopback, stopped.

The build comes from ``../shared/vendor/asterisk/build.sh PREFIX`` (``.ci/run`` runs it). The binary
is found from ``AUDIONET_ASTERISK`` (the binary, or the prefix it was built into), else
``/opt/audionet-asterisk``. Locally a missing build skips the tests that need it, with the reason;
under ``CI`` it fails them.

Each :class:`Asterisk` has its own configuration directory (``asterisk -C DIR/asterisk.conf -f``,
commands through ``asterisk -C ... -rx``), listens on nothing but its control socket in that
directory, and logs notices, warnings and errors to ``DIR/log/messages.log``, which
:meth:`Asterisk.complaints` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

DEFAULT_PREFIX = Path("/opt/audionet-asterisk")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """(In the child) ask Linux to stop this Asterisk if the test process dies without stopping
    it: a shared machine keeps no stray Asterisk."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


MODULES = [
    "res_timing_timerfd",
    "pbx_config",
    "res_clioriginate",
    "pbx_spool",
    "res_audiosocket",
    "app_audiosocket",
    "chan_audiosocket",
    "app_echo",
    "app_milliwatt",
    "app_senddtmf",
    "app_dial",
    "app_playback",
    "app_mixmonitor",
    "app_verbose",
    "bridge_simple",
    "codec_resample",
    "codec_ulaw",
    "codec_alaw",
    "format_wav",
    "format_sln",
    "format_pcm",
    "func_channel",
    "func_strings",
    "func_uuid",
]

#: The signed-linear formats this Asterisk has (``core show codecs audio``: slin to slin192), by rate.
SLIN = {
    8000: "slin",
    12000: "slin12",
    16000: "slin16",
    24000: "slin24",
    32000: "slin32",
    44100: "slin44",
    48000: "slin48",
    96000: "slin96",
    192000: "slin192",
}


def find_asterisk() -> Path:
    """The asterisk binary of the vendored build; skip (fail under CI) when there is none."""
    env = os.environ.get("AUDIONET_ASTERISK")
    candidates = []
    if env:
        p = Path(env)
        candidates += [p, p / "sbin" / "asterisk"]
    candidates.append(DEFAULT_PREFIX / "sbin" / "asterisk")
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    message = (
        "no Asterisk build found (looked at "
        + ", ".join(str(c) for c in candidates)
        + "): build it with ../shared/vendor/asterisk/build.sh /opt/audionet-asterisk"
        " (.ci/run does) or set AUDIONET_ASTERISK"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {message}")
    pytest.skip(message)


class Asterisk:
    """One Asterisk with its own configuration in ``directory``."""

    def __init__(self, binary: Path, directory: Path, extensions: str) -> None:
        self.binary = binary
        self.prefix = binary.parent.parent
        self.dir = directory
        self.conf = directory / "asterisk.conf"
        self.log = directory / "log" / "messages.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_from = 0
        for sub in ("run", "log", "spool/outgoing", "spool/tmp", "lib", "db", "monitor"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        d = directory
        (d / "asterisk.conf").write_text(
            # "[directories]", exactly: "[directories](!)" would be a template Asterisk ignores
            "[directories]\n"
            f"astetcdir => {d}\n"
            f"astmoddir => {self.prefix / 'lib' / 'asterisk' / 'modules'}\n"
            f"astvarlibdir => {d / 'lib'}\nastdbdir => {d / 'db'}\nastkeydir => {d / 'lib'}\n"
            f"astdatadir => {d / 'lib'}\nastagidir => {d / 'lib'}\n"
            f"astspooldir => {d / 'spool'}\nastrundir => {d / 'run'}\n"
            f"astlogdir => {d / 'log'}\nastsbindir => {self.prefix / 'sbin'}\n"
            "[options]\nnofork = yes\n"
        )
        (d / "modules.conf").write_text(
            "[modules]\nautoload = no\n" + "".join(f"load => {m}.so\n" for m in MODULES)
        )
        (d / "logger.conf").write_text(
            "[general]\n[logfiles]\nconsole => error\nmessages.log => notice,warning,error\n"
        )
        (d / "extensions.conf").write_text("[general]\n" + extensions)

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [str(self.binary), "-C", str(self.conf), "-f"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"Asterisk exited at start ({self.proc.returncode}): {self.tail()}"
                )
            out = subprocess.run(
                [str(self.binary), "-C", str(self.conf), "-rx", "core waitfullybooted"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if "fully booted" in out.stdout:
                return
            time.sleep(0.2)
        raise RuntimeError(f"Asterisk did not start within {timeout:g} s: {self.tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            subprocess.run(
                [str(self.binary), "-C", str(self.conf), "-rx", "core stop now"],
                capture_output=True,
                timeout=10,
            )
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    async def rx(self, command: str, timeout: float = 10.0) -> str:
        """Run one CLI command in the running Asterisk; its output."""
        proc = await asyncio.create_subprocess_exec(
            str(self.binary),
            "-C",
            str(self.conf),
            "-rx",
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        return out.decode(errors="replace")

    async def channels(self) -> int:
        """How many channels are up (``core show channels count``)."""
        out = await self.rx("core show channels count")
        m = re.search(r"(\d+) active channel", out)
        return int(m.group(1)) if m else -1

    async def wait_no_channels(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while (n := await self.channels()) != 0:
            assert time.monotonic() < end, f"{n} channels still up after {timeout:g} s"
            await asyncio.sleep(0.1)

    def mark(self) -> None:
        """What :meth:`complaints` reads starts here."""
        self._log_from = self.log.stat().st_size if self.log.exists() else 0

    def complaints(self) -> list[str]:
        """Asterisk's WARNING and ERROR lines since :meth:`mark`."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as f:
            f.seek(self._log_from)
            text = f.read().decode(errors="replace")
        return [line for line in text.splitlines() if "WARNING[" in line or "ERROR[" in line]


#: app_audiosocket logs this by itself when Asterisk hangs up an AudioSocket() application call
#: (its read of the hung-up channel fails; apps/app_audiosocket.c), whatever the server does
#: (SPEC §4). The only complaint about AudioSocket a test may allow, and only a test in which
#: Asterisk hangs up such a call.
KNOWN_APP_HANGUP_WARNING = "Failed to receive frame from channel"


def audiosocket_complaints(ast: Asterisk, allow_app_hangup_warning: bool = False) -> list[str]:
    """Asterisk's warnings and errors about AudioSocket since :meth:`Asterisk.mark`."""
    found = [c for c in ast.complaints() if "audiosocket" in c.lower()]
    if allow_app_hangup_warning:
        found = [c for c in found if KNOWN_APP_HANGUP_WARNING not in c]
    return found


@contextlib.contextmanager
def running(directory: Path, extensions: str) -> Iterator[Asterisk]:
    """An Asterisk with the dialplan ``extensions`` in ``directory``, for a test module."""
    ast = Asterisk(find_asterisk(), directory, extensions)
    ast.start()
    try:
        yield ast
    finally:
        ast.stop()


@contextlib.asynccontextmanager
async def for_test(asterisk: Asterisk, tmp_path: Path) -> AsyncIterator[Asterisk]:
    """The module's Asterisk for one test: its recordings (the dialplan's ``MIXDIR``) going to
    the test's ``tmp_path``, its log marked; after the test, every channel hung up."""
    await asterisk.rx(f"dialplan set global MIXDIR {tmp_path}")
    asterisk.mark()
    yield asterisk
    await asterisk.rx("channel request hangup all")
    await asterisk.wait_no_channels()
