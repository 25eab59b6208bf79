"""The modem over a phone call: an AudioSocket call as the audio line of a real-time station.

``--audio audiosocket-listen:HOST:PORT``: the station is an AudioSocket server and waits for Asterisk
(or ``audionet audiosocket bridge``) to connect the call (``,ulaw`` or ``,alaw`` after the port: the
call is a ``Dial()`` leg forced to G.711, whose audio Asterisk labels signed linear all the same);
``--audio audiosocket:HOST:PORT``: the
station dials out to an AudioSocket server as Asterisk's channel driver does (UUID first, no audio
until the server has sent some). Both carry 8 kHz signed linear both ways (kind 0x10), as a call
does; a call at another rate is refused (force ``c(slin)`` in the dialplan).

**Pacing.** The call's 20 ms clock takes the station's samples, so the call, not the station,
decides how fast samples go: :meth:`CallAudio.wanted` asks the station for just enough to keep
``LEAD`` of audio queued (a sound card's buffer, in effect). The queue never runs dry mid-frame
(a silent gap would cut a modem frame in two) and never grows, whatever the call's clock does.

**The physical layer** on a call is a parameter (:func:`phone_phy`): by default the telephone-band
OFDM PHY (``ofdm-phone``); Manchester at :data:`PHONE_BIT_LENGTH` samples per bit when a bit length
or the legacy line asks for it; any registered PHY that runs at 8 kHz by its name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

import numpy as np

from audionet.audio.format import to_float
from audionet.audiosocket.call import Call, CallEvent
from audionet.audiosocket.client import ClientCall, connect
from audionet.audiosocket.proto import Audio, Error, Hangup
from audionet.audiosocket.server import AudioSocketServer, serve
from audionet.errors import AudioError, ConfigError
from audionet.modem.backends import to_pcm
from audionet.modem.phy import PHYS, Phy, get_phy
from audionet.modem.phy.base import Samples
from audionet.modem.proto.arq import ArqConfig

log = logging.getLogger(__name__)

#: A call's audio: signed linear at 8 kHz (AudioSocket kind 0x10; G.711's rate).
PHONE_RATE = 8000
#: Manchester samples per bit on a call: one sample per half-bit, 4000 bit/s. A digital call path
#: (AudioSocket, Asterisk, a G.711 trunk) carries every sample, so the line code needs no more; an
#: analog telephone line (300-3400 Hz) needs 5 or more (20 with the `phone` channel simulator).
PHONE_BIT_LENGTH = 2
#: Audio kept queued ahead of the call's clock (5 frames): covers the station loop's 20 ms tick and
#: a few tens of ms of scheduling delay, so the call never sends a gap inside a modem frame.
LEAD = 0.1
#: Largest retransmission timeout on a call. A call loses frames at random, not from congestion:
#: RFC 6298's doubling up to 60 s would leave the line idle for most of a lossy transfer (and
#: meet the 60 s silent-peer timeout); 4 s is still several round trips of a 0.6 s frame.
PHONE_RTO_MAX = 4.0
KINDS = ("audiosocket", "audiosocket-listen")
#: PHYs for a call, best first: the telephone-band OFDM PHY when it is built, else Manchester.
PREFERRED = ("ofdm-phone", "manchester")


def phone_phy(
    name: str | None = None,
    samples_per_bit: float | None = None,
    rate: int | None = None,
    legacy: bool = False,
    mode: str = "auto",
    margin: float | None = None,
) -> Phy:
    """The physical layer for a call: ``manchester`` (at :data:`PHONE_BIT_LENGTH` samples per bit
    unless given) or any registered PHY running at 8 kHz (``mode`` and ``margin`` are OFDM's).
    ``None``: the first of :data:`PREFERRED` that is registered (the telephone-band OFDM PHY), or
    Manchester when a bit length, or the legacy line, asks for it. A PHY with compiled kernels
    loads them here, before the call (see :meth:`OfdmPhy.prepare`)."""
    if rate not in (None, PHONE_RATE):
        raise ConfigError(
            f"an AudioSocket call carries {PHONE_RATE} Hz audio, not {rate} Hz: drop --rate"
        )
    if name is None:
        manchester = samples_per_bit is not None or legacy
        name = "manchester" if manchester else next(n for n in PREFERRED if n in PHYS)
    if name == "manchester":
        bit = PHONE_BIT_LENGTH if samples_per_bit is None else samples_per_bit
        return get_phy("manchester", sample_rate=PHONE_RATE, samples_per_bit=bit, legacy=legacy)
    if samples_per_bit is not None:
        raise ConfigError(f"--bit-length is a Manchester setting; the {name} PHY has none")
    params: dict[str, object] = {"mode": mode}
    if margin is not None:
        params["margin"] = margin
    phy = get_phy(name, **params)
    if phy.sample_rate != PHONE_RATE:
        raise ConfigError(
            f"the {name} physical layer runs at {phy.sample_rate} Hz; a call carries {PHONE_RATE} Hz"
        )
    prepare = getattr(phy, "prepare", None)
    if prepare is not None:
        prepare()  # before the call: its clock waits for nothing
    return phy


def phone_config(config: ArqConfig) -> ArqConfig:
    """The link settings for a call: ``config`` with the timeout capped at :data:`PHONE_RTO_MAX`."""
    return replace(config, rto_max=min(config.rto_max, PHONE_RTO_MAX))


def parse_spec(spec: str) -> tuple[str, str, int, str]:
    """``audiosocket:HOST:PORT`` or ``audiosocket-listen:HOST:PORT[,ulaw|,alaw]`` as (kind, host,
    port, codec). The codec is what ``Dial(AudioSocket/...c(ulaw))`` really sends in messages
    labelled signed linear (SPEC §4); the station's own audio goes out as signed linear."""
    address, _, codec = spec.partition(",")
    kind, _, rest = address.partition(":")
    host, _, port = rest.rpartition(":")
    codec = codec or "slin"
    if (
        kind not in KINDS
        or not host
        or not (port.isascii() and port.isdigit())
        or codec not in ("slin", "ulaw", "alaw")
        or (kind == "audiosocket" and codec != "slin")
    ):
        raise ConfigError(
            f"--audio {spec!r}: use audiosocket-listen:HOST:PORT (wait for the call; add ,ulaw or "
            ",alaw for a Dial() leg forced to G.711) or audiosocket:HOST:PORT (dial out), e.g. "
            "audiosocket-listen:127.0.0.1:9301"
        )
    return kind, host.strip("[]"), int(port), codec


class CallAudio:
    """A call as a station's audio port (:class:`~audionet.modem.realtime.AudioPort`)."""

    def __init__(self, out: Any, description: str) -> None:
        self._out = out  # the call's OutgoingAudio (server call or client call)
        self._rx = bytearray()
        self._lead = int(LEAD * PHONE_RATE) * 2
        self.description = description
        self.connected = True
        self.end_reason = ""

    # -- what the call delivers (called by the adapters below) -------------------------------------

    def _heard(self, ev: CallEvent) -> None:
        if isinstance(ev, Audio):
            if ev.rate != PHONE_RATE:
                self._end(
                    f"the call sends {ev.rate} Hz audio; the modem needs {PHONE_RATE} Hz signed "
                    "linear (force c(slin) in the dialplan)"
                )
            else:
                self._rx += ev.pcm
        elif isinstance(ev, Hangup):
            self._end(f"the call ended ({ev.reason})")
        elif isinstance(ev, Error) and ev.fatal:
            self._end(f"the call failed ({ev.message})")

    def _end(self, reason: str) -> None:
        if self.connected:
            self.connected = False
            self.end_reason = reason
            log.info("%s: %s", self.description, reason)

    # -- AudioPort ---------------------------------------------------------------------------------

    def wanted(self) -> int:
        """Samples the station should play now: enough to keep :data:`LEAD` queued on the call."""
        return max(0, self._lead - len(self._out)) // 2

    async def exchange(self, tx: Samples) -> Samples:
        if tx.size and self.connected:
            self._send(to_pcm(tx))
        pcm = bytes(self._rx)
        self._rx.clear()
        return to_float(pcm) if pcm else np.zeros(0, dtype=np.float32)

    def _send(self, pcm: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _Listener:
    """The AudioSocket server's handler: takes one call at a time, refuses a second."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.arrived: asyncio.Future[ServerCallAudio] = asyncio.get_running_loop().create_future()

    def started(self, call: Call) -> None:
        if self.arrived.done():
            log.warning(
                "%s: refused call %s from %s: the line is busy with another call",
                self.description,
                call.uuid,
                call.peer,
            )
            asyncio.get_running_loop().create_task(call.hangup("line busy"))
            return
        call.state = ServerCallAudio(call, f"call {call.uuid} from {call.peer}")
        self.arrived.set_result(call.state)

    def event(self, call: Call, event: CallEvent) -> None:
        if isinstance(call.state, ServerCallAudio):
            call.state._heard(event)

    def failed(self, peer: Any, error: Error) -> None:
        log.info("%s: connection from %s failed: %s", self.description, peer, error.message)


class ServerCallAudio(CallAudio):
    """The station as an AudioSocket server, on the one call Asterisk connected."""

    def __init__(self, call: Call, description: str) -> None:
        super().__init__(call.out, description)
        self.call = call
        self.server: AudioSocketServer | None = None

    def _send(self, pcm: bytes) -> None:
        self.call.send(pcm)

    async def close(self) -> None:
        self._end("closed")
        if not self.call.ended:
            await self.call.hangup("modem station closed")
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class ClientCallAudio(CallAudio):
    """The station dialled out to an AudioSocket server (like Asterisk's channel driver)."""

    def __init__(self, call: ClientCall, description: str) -> None:
        super().__init__(call.out, description)
        self.call = call
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for ev in self.call:
            self._heard(ev)
        self._end(f"the call ended ({self.call.end_reason})")

    def _send(self, pcm: bytes) -> None:
        self.call.send_audio(pcm)

    async def close(self) -> None:
        self._end("closed")
        await self.call.hangup()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def open_call_audio(spec: str) -> CallAudio:
    """Open the call of ``--audio audiosocket-listen:HOST:PORT`` (wait for it) or
    ``--audio audiosocket:HOST:PORT`` (dial it)."""
    kind, host, port, codec = parse_spec(spec)
    if kind == "audiosocket":
        try:
            call = await connect(host, port, rate=PHONE_RATE, record=False)
        except (OSError, TimeoutError) as exc:
            raise AudioError(
                f"no AudioSocket server at {host}:{port} ({exc}); start the other station with "
                f"--audio audiosocket-listen:{host}:{port} first"
            ) from None
        return ClientCallAudio(call, f"call {call.uuid} to {host}:{port}")
    listener = _Listener(f"AudioSocket station on {host}:{port}")
    try:
        server = await serve(listener, host, port, rate=PHONE_RATE, input_codec=codec)
    except OSError as exc:
        raise AudioError(f"cannot listen for calls on {host}:{port}: {exc}") from None
    try:
        audio = await listener.arrived
    except BaseException:
        server.close()
        await server.wait_closed()
        raise
    audio.server = server
    return audio
