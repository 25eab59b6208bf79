"""Against a real Asterisk: the AudioSocket() application, the channel driver, DTMF, hangups both
ways, the seed's API and 100 concurrent calls, each through Asterisk itself.

One Asterisk (the vendored build, see tests/audiosocket/asterisk.py) runs for the module on
loopback with the dialplan below, in a temp dir. Calls are placed with call files (pbx_spool), so
that a Local channel gets the codec the test asks for (``Codecs:``; a Local channel originated from
the CLI is 8 kHz only, and Asterisk would transcode). After every test, Asterisk's log holds no
WARNING or ERROR about AudioSocket, but for the one warning app_audiosocket logs by itself when
Asterisk hangs up an ``AudioSocket()`` application call (SPEC §4; see KNOWN_APP_HANGUP_WARNING in
tests/audiosocket/asterisk.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import struct
import time
import uuid
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import audionet.audiosocket as audiosocket
from audionet.audiosocket import Audio, Call, Dtmf, Error, Hangup, serve
from audionet.audiosocket.apps import make_app
from tests.audiosocket.asterisk import (
    SLIN,
    Asterisk,
    audiosocket_complaints,
    for_test,
    running,
)
from tests.audiosocket.util import tagged_audio

pytestmark = pytest.mark.daemon

EXTENSIONS = r"""
[test]
; what the other side of a call does
exten => mw,1,Answer()
 same => n,Milliwatt()
exten => echo,1,Answer()
 same => n,Echo()
exten => wait,1,Answer()
 same => n,Wait(60)
exten => dtmf,1,Answer()
 same => n,Wait(0.5)
 same => n,SendDTMF(${DIGITS},80)
 same => n,Wait(60)
exten => bye,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()

[app]
; the AudioSocket() application: app-<port>-<name>, MixMonitor recording what the server sent
; (<name>-sent.wav) and what it heard (<name>-heard.wav), and when AudioSocket() ran
exten => _app-.,1,Answer()
 same => n,Set(ARGS=${EXTEN:4})
 same => n,Set(PORT=${SHIFT(ARGS,-)})
 same => n,MixMonitor(${MIXDIR}/${ARGS}.wav,r(${MIXDIR}/${ARGS}-heard.wav)t(${MIXDIR}/${ARGS}-sent.wav))
 same => n,Set(T0=${STRFTIME(,,%s.%6q)})
 same => n,AudioSocket(${UUID()},127.0.0.1:${PORT})
 same => n,Log(NOTICE,call ${ARGS} ran AudioSocket() from ${T0} to ${STRFTIME(,,%s.%6q)})
 same => n,Wait(0.3)  ; (MixMonitor writes a frame only with one of the other direction, or later)
 same => n,Hangup()

[drv]
; the channel driver: drv-<port>-<codec>, e.g. drv-9092-slin16
exten => _drv-.,1,Set(ARGS=${EXTEN:4})
 same => n,Set(PORT=${SHIFT(ARGS,-)})
 same => n,Dial(AudioSocket/127.0.0.1:${PORT}/${UUID()}/c(${ARGS}))
"""


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Asterisk]:
    with running(tmp_path_factory.mktemp("asterisk"), EXTENSIONS) as ast:
        yield ast


@pytest.fixture
async def ast(asterisk: Asterisk, tmp_path: Path) -> AsyncIterator[Asterisk]:
    async with for_test(asterisk, tmp_path) as fresh:
        yield fresh


_calls = itertools.count()


def place(ast: Asterisk, channel: str, exten: str, codec: str = "slin", **variables: str) -> None:
    """Originate a call with a call file: ``channel`` (here a Local channel) is answered by
    ``exten`` of context ``test``; the Local channel carries ``codec``."""
    name = f"call{next(_calls)}-{uuid.uuid4().hex[:8]}.call"
    tmp = ast.dir / "spool" / "tmp" / name
    lines = [
        f"Channel: {channel}",
        f"Codecs: {codec}",
        "Context: test",
        f"Extension: {exten}",
        "Priority: 1",
        *(f"Setvar: {k}={v}" for k, v in variables.items()),
    ]
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(ast.dir / "spool" / "outgoing" / name)  # atomic: pbx_spool never sees half a file


def time_writes(call: Call) -> list[float]:
    """From now on, when the call's clock let each of its frames leave."""
    link: Any = call._link
    write, times = link._write, []

    def timed(message: bytes) -> object:
        times.append(link._last)
        return write(message)

    link._write = timed
    return times


def rate(times: list[float], trim: float = 0.5) -> float:
    """Frames per second over ``times`` without their first and last ``trim`` s."""
    middle = [t for t in times if times[0] + trim <= t <= times[-1] - trim]
    return (len(middle) - 1) / (middle[-1] - middle[0])


def seq_frame(seq: int, size: int) -> bytes:
    """A frame of ``size`` bytes that says which it is (never all zero)."""
    return struct.pack(">I", seq + 1) + b"\xa5\xa5\xa5\xa5" + bytes(range(256)) * (size // 256 + 1)


def seq_of(pcm: bytes) -> int:
    """The sequence number of a frame made by :func:`seq_frame`, -1 for anything else."""
    if pcm[4:8] != b"\xa5\xa5\xa5\xa5":
        return -1
    return int(struct.unpack_from(">I", pcm)[0]) - 1


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# -- the AudioSocket() application ------------------------------------------------------------


async def test_app_on_a_local_channel_fed_by_milliwatt(ast: Asterisk, tmp_path: Path) -> None:
    """The recording app writes Milliwatt()'s 1004 Hz; the call API hears 50 frames/s."""
    recordings = tmp_path / "rec"
    recordings.mkdir()
    heard: list[float] = []
    pcm = bytearray()
    ended: list[Hangup | Error] = []

    async def listener(call: Call) -> None:
        async for ev in call:
            if isinstance(ev, Audio):
                heard.append(time.monotonic())
                pcm.extend(ev.pcm)
            elif isinstance(ev, Hangup | Error):
                ended.append(ev)

    async with (
        serve(make_app(f"record:{recordings}"), "127.0.0.1", 0) as rec,
        serve(listener, "127.0.0.1", 0) as api,
    ):
        place(ast, f"Local/app-{rec.port}-rec@app/n", "mw")
        place(ast, f"Local/app-{api.port}-api@app/n", "mw")
        await wait_for(lambda: len(heard) >= 160, 15, "3 s of audio")
        await ast.rx("channel request hangup all")  # Asterisk hangs up
        await wait_for(lambda: not rec.calls and not api.calls, 5, "both calls to end")
    wav = next(recordings.glob("*.wav"))
    with wave.open(str(wav)) as w:
        assert w.getframerate() == 8000
        recorded = w.readframes(w.getnframes())
    assert len(recorded) >= 2 * 8000 * 2.5
    assert dominant_hz(recorded[16000:], 8000) == pytest.approx(1004, abs=2)
    assert dominant_hz(bytes(pcm[16000:]), 8000) == pytest.approx(1004, abs=2)
    assert rate(heard) == pytest.approx(50, abs=0.5)
    assert len(ended) == 1 and isinstance(ended[0], Hangup) and ended[0].by_peer
    assert not audiosocket_complaints(ast, allow_app_hangup_warning=True)


def play_file(path: Path, seconds: float) -> bytes:
    audio = tagged_audio(seconds, seed=5)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(audio)
    return audio


class TimedPlay:
    """The play app, noting when the echo of each frame of the file came back (Echo())."""

    def __init__(self, app: Any, audio: bytes) -> None:
        self.app = app
        self.frames = {audio[i : i + 320]: i // 320 for i in range(0, len(audio), 320)}
        self.echoes: dict[str, dict[int, float]] = {}
        event = app.event

        def timed_event(call: Call, ev: Any) -> None:
            if isinstance(ev, Audio) and (k := self.frames.get(ev.pcm)) is not None:
                self.echoes.setdefault(str(call.uuid), {}).setdefault(k, time.monotonic())
            event(call, ev)

        app.event = timed_event


async def test_a_5_s_file_is_heard_sample_for_sample_and_lasts_5_s(
    ast: Asterisk, tmp_path: Path
) -> None:
    """`--app play:FILE` through the AudioSocket() application, with Echo(), Milliwatt() and
    Wait() on the other side: MixMonitor records the file's audio sample for sample, and it is
    played in 5.00 s: AudioSocket() returns (the app hangs up after the file) 5.00 s after it
    started, within 40 ms; through Echo(), the file's frames come back 20 ms apart, as they were
    sent (a line through their times says 5.00 s for the file, within 10 ms)."""
    audio = play_file(tmp_path / "five.wav", 5.0)
    timed = TimedPlay(make_app(f"play:{tmp_path / 'five.wav'}"), audio)
    async with serve(timed.app, "127.0.0.1", 0) as server:
        for other in ("echo", "mw", "wait"):
            place(ast, f"Local/app-{server.port}-{other}@app/n", other)
        await wait_for(lambda: len(audiosocket_runs(ast)) == 3, 20, "the three calls")
    runs = audiosocket_runs(ast)
    await ast.wait_no_channels()  # MixMonitor has closed its files
    for other in ("echo", "mw", "wait"):
        start, end = runs[other]
        assert end - start == pytest.approx(5.00, abs=0.040), (other, end - start)
        with wave.open(str(tmp_path / f"{other}-sent.wav")) as w:
            sent = w.readframes(w.getnframes())
        frames = [sent[i : i + 320] for i in range(0, len(sent), 320)]
        while frames and not any(frames[0]):  # silence the clock sent before the file began
            frames.pop(0)
        while frames and not any(frames[-1]):  # and after it (MixMonitor records to the end)
            frames.pop()
        recorded = b"".join(frames)
        if other == "echo" and recorded == audio[320:]:
            # MixMonitor's audiohook flushes both directions when the first frame of one comes
            # more than 100 ms after it attached (AST_AUDIOHOOK_SYNC_TOLERANCE, main/audiohook.c):
            # the echo of our first frame does when the call is slow to start, and the flush
            # takes our first frame, still waiting there for its partner. Asterisk's doing.
            continue
        assert recorded == audio, other
    (echoes,) = timed.echoes.values()
    # every frame came back but the last, sent just before the app's hangup (it arrives after)
    n = len(audio) // 320 - 1
    assert sorted(echoes) == list(range(n))
    # one frame per 20 ms, over the whole file (a line through when each came back)
    slope, _ = np.polyfit(np.arange(n), [echoes[k] for k in range(n)], 1)
    assert slope * (n + 1) == pytest.approx(5.00, abs=0.010)
    assert not audiosocket_complaints(ast)


def audiosocket_runs(ast: Asterisk) -> dict[str, tuple[float, float]]:
    """When AudioSocket() started and returned, for each call of [app] that logged it."""
    with ast.log.open("rb") as f:
        f.seek(ast._log_from)
        text = f.read().decode(errors="replace")
    pattern = r"call (\w+) ran AudioSocket\(\) from ([\d.]+) to ([\d.]+)"
    return {m[1]: (float(m[2]), float(m[3])) for m in re.finditer(pattern, text)}


# -- the channel driver -------------------------------------------------------------------------


class Echoed:
    """What one call of :class:`EchoCheck` sent and heard."""

    def __init__(self, call: Call, seconds: float) -> None:
        self.rate = call.format.rate
        self.uuid = call.uuid
        self.sent = tagged_audio(seconds, seed=self.rate % 997, rate=self.rate)
        self.writes = time_writes(call)
        self.heard = bytearray()
        self.times: list[float] = []
        self.kinds: set[int] = set()
        self.events: list[Any] = []

    def check(self) -> None:
        """It heard its own audio back exactly (nothing lost, nothing changed), 50 frames/s each
        way, and the call ended with our hangup, no error."""
        frame = self.rate // 50 * 2
        frames = [self.heard[i : i + frame] for i in range(0, len(self.heard), frame)]
        while frames and not any(frames[0]):  # (the echo of the clock's silence before it)
            frames.pop(0)
        while frames and not any(frames[-1]):
            frames.pop()
        assert b"".join(frames) == self.sent, f"{self.rate} Hz: the echo is not what was sent"
        assert self.kinds == {self.rate}
        assert rate(self.writes) == pytest.approx(50, abs=0.5), f"{self.rate} Hz: sent"
        assert rate(self.times) == pytest.approx(50, abs=0.5), f"{self.rate} Hz: heard"
        assert [type(e) for e in self.events] == [Hangup], self.events
        assert not self.events[0].by_peer


class EchoCheck:
    """A call-API handler: plays ``seconds`` of tagged audio at the call's rate, hears it come
    back, and hangs up 0.3 s after its audio has left (its echo is back by then)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[Echoed] = []

    async def __call__(self, call: Call) -> None:
        echoed = Echoed(call, self.seconds)
        self.calls.append(echoed)

        async def play() -> None:
            await call.write(echoed.sent)
            await call.drain()
            await asyncio.sleep(0.3)
            await call.hangup()

        player = asyncio.create_task(play())
        async for ev in call:
            if isinstance(ev, Audio):
                echoed.times.append(time.monotonic())
                echoed.heard.extend(ev.pcm)
                echoed.kinds.add(ev.rate)
            else:
                echoed.events.append(ev)
        await player


async def test_the_channel_driver_at_every_signed_linear_rate_into_echo(ast: Asterisk) -> None:
    """``Dial(AudioSocket/127.0.0.1:PORT/UUID/c(slinNN))`` at each of this Asterisk's nine
    signed-linear rates, into Echo(): each call hears exactly what it sent, 50 frames/s each way."""
    checks = {r: EchoCheck(3.0) for r in SLIN}
    async with contextlib.AsyncExitStack() as stack:
        for r, check in checks.items():
            server = await stack.enter_async_context(serve(check, "127.0.0.1", 0, rate=r))
            place(ast, f"Local/drv-{server.port}-{SLIN[r]}@drv/n", "echo", codec=SLIN[r])
        await wait_for(lambda: all(len(c.calls) == 1 for c in checks.values()), 10, "9 calls")
        await wait_for(lambda: all(c.calls[0].events for c in checks.values()), 15, "the ends")
    for check in checks.values():
        check.calls[0].check()
    assert not audiosocket_complaints(ast)


# -- DTMF and hangups -------------------------------------------------------------------------


class Listener:
    """A call-API handler that notes every event, and hangs up after ``hangup_after`` s."""

    def __init__(self, hangup_after: float | None = None) -> None:
        self.hangup_after = hangup_after
        self.events: dict[str, list[Any]] = {}
        self.audio: dict[str, int] = {}
        self.lasted: dict[str, float] = {}

    async def __call__(self, call: Call) -> None:
        events = self.events.setdefault(str(call.uuid), [])
        self.audio[str(call.uuid)] = 0
        start = time.monotonic()
        if self.hangup_after is not None:
            asyncio.get_running_loop().call_later(
                self.hangup_after, lambda: asyncio.ensure_future(call.hangup())
            )
        async for ev in call:
            if isinstance(ev, Audio):
                self.audio[str(call.uuid)] += 1
            else:
                events.append(ev)
        self.lasted[str(call.uuid)] = time.monotonic() - start

    def ended(self) -> bool:
        return bool(self.events) and all(
            e and isinstance(e[-1], Hangup | Error) for e in self.events.values()
        )


async def test_dtmf_from_senddtmf_arrives_in_order_on_both_paths(ast: Asterisk) -> None:
    digits = "0123456789*#"
    app, drv = Listener(hangup_after=3.0), Listener(hangup_after=3.0)
    async with serve(app, "127.0.0.1", 0) as a, serve(drv, "127.0.0.1", 0) as d:
        place(ast, f"Local/app-{a.port}-dtmf@app/n", "dtmf", DIGITS=digits)
        place(ast, f"Local/drv-{d.port}-slin@drv/n", "dtmf", DIGITS=digits)
        await wait_for(lambda: app.ended() and drv.ended(), 15, "both calls")
    for listener in (app, drv):
        ((events),) = listener.events.values()
        assert "".join(e.digit for e in events if isinstance(e, Dtmf)) == digits
        assert [type(e) for e in events if not isinstance(e, Dtmf)] == [Hangup]
    assert not audiosocket_complaints(ast)


@pytest.mark.parametrize("path", ["app", "drv"])
async def test_asterisk_hangs_up(ast: Asterisk, path: str) -> None:
    """The other side hangs up after 1 s: a clean Hangup event (by the peer), no error."""
    listener = Listener()
    async with serve(listener, "127.0.0.1", 0) as server:
        place(
            ast, f"Local/{path}-{server.port}-{'bye' if path == 'app' else 'slin'}@{path}/n", "bye"
        )
        await wait_for(listener.ended, 10, "the hangup")
        await ast.wait_no_channels()
    ((events),) = listener.events.values()
    assert len(events) == 1 and isinstance(events[0], Hangup) and events[0].by_peer, events
    (lasted,) = listener.lasted.values()
    assert lasted < 1.3  # ended by the other side's Hangup() after Wait(1)
    # Only on the AudioSocket() application path does Asterisk log its own warning then.
    assert not audiosocket_complaints(ast, allow_app_hangup_warning=path == "app")


@pytest.mark.parametrize("path", ["app", "drv"])
async def test_we_hang_up(ast: Asterisk, path: str) -> None:
    """Our handler hangs up after 1 s: Asterisk ends the channel, with no warning or error about
    AudioSocket in its log (the application returns and the dialplan goes on)."""
    listener = Listener(hangup_after=1.0)
    async with serve(listener, "127.0.0.1", 0) as server:
        name = "ours" if path == "app" else "slin"
        place(ast, f"Local/{path}-{server.port}-{name}@{path}/n", "wait")
        await wait_for(listener.ended, 10, "the hangup")
        await ast.wait_no_channels()
    ((events),) = listener.events.values()
    assert len(events) == 1 and isinstance(events[0], Hangup) and not events[0].by_peer
    if path == "app":
        assert "ours" in audiosocket_runs(ast)  # AudioSocket() returned, the dialplan went on
    assert not audiosocket_complaints(ast)


# -- the seed's API -----------------------------------------------------------------------------


async def test_the_seeds_callback_api_through_asterisk(ast: Asterisk, tmp_path: Path) -> None:
    """The seed's README, word for word: ``start_server(on_audio, on_exception, address, port)``
    and ``serve_forever()``; ``on_audio(uuid, peer_name, audio)`` returns the audio to send back,
    ``HANGUP_CALL_MESSAGE`` to hang up, and gets an empty ``bytearray`` once the call is over.
    Through the AudioSocket() application fed by Milliwatt(): what it returned is what Asterisk
    recorded as sent (MixMonitor), in order, to the sample."""

    class Callbacks:  # the seed recommends methods of a class
        def __init__(self) -> None:
            self.uuids: set[str] = set()
            self.peers: set[Any] = set()
            self.returned = bytearray()
            self.frames = 0
            self.ended = 0
            self.errors: list[BaseException] = []

        def on_audio(self, uuid: str, peer_name: Any, audio: bytearray) -> bytes | None:
            assert type(audio) is bytearray
            self.uuids.add(uuid)
            self.peers.add(peer_name)
            if len(audio) == 0:
                self.ended += 1
                return None
            self.frames += 1
            if self.frames == 100:
                return audiosocket.HANGUP_CALL_MESSAGE
            self.returned += audio
            return bytes(audio)

        def on_exception(self, uuid: str, peer_name: Any, error: BaseException) -> None:
            self.errors.append(error)

    cb = Callbacks()
    server = await audiosocket.start_server(cb.on_audio, cb.on_exception, "127.0.0.1", 0)
    serving = asyncio.create_task(server.serve_forever())
    try:
        port = server.sockets[0].getsockname()[1]
        place(ast, f"Local/app-{port}-seed@app/n", "mw")
        await wait_for(lambda: cb.ended == 1, 15, "the call to end")
        await ast.wait_no_channels()
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    assert cb.errors == []
    (uid,) = cb.uuids
    assert str(uuid.UUID(uid)) == uid  # the dialplan's form: 36 characters
    ((host, _port),) = cb.peers
    assert host == "127.0.0.1"
    assert cb.frames == 100 and len(cb.returned) == 99 * 320
    with wave.open(str(tmp_path / "seed-sent.wav")) as w:
        sent = w.readframes(w.getnframes())
    assert bytes(cb.returned) in sent
    assert not any(sent.replace(bytes(cb.returned), b"", 1))  # the rest is the clock's silence
    assert "seed" in audiosocket_runs(ast)  # the hangup ended AudioSocket(), the dialplan went on
    assert not audiosocket_complaints(ast)


# -- load -----------------------------------------------------------------------------------------


async def test_100_concurrent_calls_through_asterisk_for_20_s(ast: Asterisk) -> None:
    """100 channel-driver calls into Echo() at once, 20 s of audio each: all complete, each hears
    all its audio back unchanged (nothing lost), 50 frames/s each way."""
    check = EchoCheck(20.0)
    async with serve(check, "127.0.0.1", 0) as server:
        for _ in range(100):
            place(ast, f"Local/drv-{server.port}-slin@drv/n", "echo")
        await wait_for(lambda: len(check.calls) == 100, 15, "100 calls")
        await wait_for(lambda: all(c.events for c in check.calls), 40, "100 calls to end")
        await ast.wait_no_channels(15)
    assert len({c.uuid for c in check.calls}) == 100
    for c in check.calls:
        c.check()
    assert not audiosocket_complaints(ast)
