"""The bridge's relay core, without sockets: G.711, frame loss and jitter on one direction."""

from __future__ import annotations

import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency, level_dbfs
from audionet.audio.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from audionet.audio.format import AudioFormat
from audionet.audio.sources import ToneSource
from audionet.audiosocket.proto import HEADER_SIZE, Message
from audionet.bridges.relay import Impairments, Relay
from audionet.errors import ConfigError


def frames(seconds: float, rate: int = 8000, freq: float = 440.0) -> list[bytes]:
    src = ToneSource(freq, AudioFormat(rate), amplitude=0.5)
    n = rate // 50
    return [src.read(n) for _ in range(int(seconds * 50))]


def relay_all(relay: Relay, chunks: list[bytes], rate: int = 8000) -> list[bytes]:
    out: list[bytes] = []
    for i, pcm in enumerate(chunks):
        relay.receive(pcm, rate, i * 0.02)
        out += relay.due(i * 0.02)
    out += relay.due(1e9)
    return out


def pcm_of(messages: list[bytes]) -> bytes:
    return b"".join(m[HEADER_SIZE:] for m in messages)


def test_slin_passes_every_frame_unchanged_at_once() -> None:
    chunks = frames(1.0)
    relay = Relay()
    for i, pcm in enumerate(chunks):
        relay.receive(pcm, 8000, i * 0.02)
        (msg,) = relay.due(i * 0.02)  # no clock: out as it comes in
        assert Message.parse(msg) == Message(0x10, pcm)
    assert relay.next_time() is None
    assert relay.stats.frames_in == relay.stats.frames_out == 50
    assert relay.stats.frames_per_second() == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("codec", "enc", "dec"),
    [("ulaw", ulaw_encode, ulaw_decode), ("alaw", alaw_encode, alaw_decode)],
)
def test_g711_at_8khz_is_the_codec_round_trip(codec: str, enc, dec) -> None:  # type: ignore[no-untyped-def]
    chunks = frames(0.5)
    out = relay_all(Relay(Impairments(codec)), chunks)
    assert [m[HEADER_SIZE:] for m in out] == [dec(enc(c)) for c in chunks]
    assert out[0][HEADER_SIZE:] != chunks[0]  # G.711 is lossy: it did something


def test_g711_on_a_wideband_leg_goes_through_8khz() -> None:
    """A 16 kHz leg through a G.711 trunk loses everything above 4 kHz, keeps the rest."""
    low = pcm_of(relay_all(Relay(Impairments("ulaw")), frames(1.0, 16000, 1000.0), 16000))
    high = pcm_of(relay_all(Relay(Impairments("ulaw")), frames(1.0, 16000, 6000.0), 16000))
    fmt = AudioFormat(16000)
    assert abs(dominant_frequency(low[3200:], fmt) - 1000) < 5
    assert level_dbfs(low[3200:], fmt)[0] > -12
    assert level_dbfs(high[3200:], fmt)[0] < -40  # a 6 kHz tone does not cross a G.711 call
    for msg in relay_all(Relay(Impairments("alaw")), frames(0.3, 16000), 16000):
        assert msg[0] == 0x12 and len(msg) > HEADER_SIZE and not (len(msg) - HEADER_SIZE) % 2


def test_loss_drops_that_share_of_frames_repeatably() -> None:
    chunks = frames(40.0)  # 2000 frames
    a = Relay(Impairments(loss=0.05, seed=7, lost="drop"))
    out = relay_all(a, chunks)
    assert a.stats.lost == 2000 - len(out)
    assert 60 <= a.stats.lost <= 140
    b = Relay(Impairments(loss=0.05, seed=7, lost="drop"))
    assert relay_all(b, chunks) == out  # the same seed drops the same frames
    kept = {m[HEADER_SIZE:] for m in out}
    assert all(m in set(chunks) for m in kept)


def test_a_lost_frame_becomes_silence_and_keeps_the_timeline() -> None:
    chunks = frames(10.0)
    relay = Relay(Impairments(loss=0.05, seed=7, lost="silence"))
    out = [m[HEADER_SIZE:] for m in relay_all(relay, chunks)]
    assert len(out) == len(chunks) and relay.stats.lost > 10
    silent = [i for i, m in enumerate(out) if m == bytes(320)]
    assert len(silent) == relay.stats.lost
    assert all(out[i] == chunks[i] for i in range(len(out)) if i not in silent)


def test_a_lost_frame_is_concealed_as_asterisk_does_by_default() -> None:
    """The default, ``plc``: a lost 20 ms of a tone is filled with the tone (Asterisk's generic
    PLC), the timeline is kept, and a frame after a hole is the real audio but for the quarter
    period where the PLC joins the two."""
    chunks = frames(10.0, freq=400.0)  # a 20-sample period: the PLC repeats it exactly
    relay = Relay(Impairments(loss=0.05, seed=7))
    out = [np.frombuffer(m[HEADER_SIZE:], "<i2").astype(float) for m in relay_all(relay, chunks)]
    src = [np.frombuffer(c, "<i2").astype(float) for c in chunks]
    assert len(out) == len(src) and relay.stats.lost > 10
    changed = [i for i in range(len(out)) if not np.array_equal(out[i], src[i])]
    # the lost frames, and the frame after each hole, whose first 10 samples are blended
    assert relay.stats.lost <= len(changed) <= 2 * relay.stats.lost
    for i in changed:
        assert np.corrcoef(out[i], src[i])[0, 1] > 0.9, i  # the tone goes on through the hole
        assert np.max(np.abs(out[i])) > 0.4 * np.max(np.abs(src[i]))  # fading, not gone
        if i + 1 < len(out) and i + 1 not in changed and i - 1 not in changed:
            np.testing.assert_array_equal(out[i + 1], src[i + 1])


def test_jitter_holds_frames_up_to_the_bound_and_keeps_their_order() -> None:
    rng = np.random.default_rng(3)
    chunks = [rng.integers(-9000, 9000, 160).astype("<i2").tobytes() for _ in range(500)]
    relay = Relay(Impairments(jitter=0.02, seed=1))
    released: list[tuple[float, bytes]] = []
    for i, pcm in enumerate(chunks):
        t = i * 0.02
        relay.receive(pcm, 8000, t)
        nxt = relay.next_time()
        assert nxt is not None  # something is held
        for step in np.arange(t, t + 0.02, 0.001):
            released += [(float(step), m) for m in relay.due(float(step))]
    released += [(1e9, m) for m in relay.due(1e9)]
    assert [m[HEADER_SIZE:] for _, m in released] == chunks  # all of them, in order
    delays = [at - i * 0.02 for i, (at, _) in enumerate(released[:-5])]
    assert max(delays) <= 0.02 + 0.021  # its own jitter, plus a frame held behind the previous one
    assert np.mean(delays) > 0.005  # they really were held


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="codec"):
        Impairments("gsm")
    with pytest.raises(ConfigError, match="loss"):
        Impairments(loss=1.0)
    with pytest.raises(ConfigError, match="jitter"):
        Impairments(jitter=-0.01)
    with pytest.raises(ConfigError, match="lost frames 'repeat': use one of plc, silence, drop"):
        Impairments(lost="repeat")
