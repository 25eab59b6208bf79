"""The legacy line is the original's waveform, sample for sample, and both receivers read it."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from audionet.modem.backends import encode_wav
from audionet.modem.channel import PROFILES, simulate
from audionet.modem.phy import ManchesterPhy
from audionet.modem.proto.frame import LEGACY, Address, Flags, Frame
from tests.modem.original.audio import (
    PREAMBLE,
    ManchesterCodec,
    RealTimeAudioIO,
    RealTimeFrameIO,
    WavFileAudioIO,
)
from tests.modem.original.audio import Address as JAddress
from tests.modem.original.audio import Frame as JFrame
from tests.modem.original.jvm import Scheduler
from tests.modem.phy.phy_helpers import LengthFraming


def original_wav_samples(data: bytes, bit_length: int = 8) -> list[int]:
    """What the original's codec writes for one frame's bytes into a WAV file (full scale)."""
    wav = WavFileAudioIO()
    codec = ManchesterCodec(bit_length, wav)  # type: ignore[arg-type]
    codec.encode_bytes(PREAMBLE)  # RealTimeFrameIO.java:69, :105-106
    codec.encode_bytes(data)
    codec.encode_bytes(bytes(2))
    return wav.samples


def original_line_samples(frame: JFrame) -> list[int]:
    """What the original plays for one frame on a sound card (divided by 3, 64 zeros after)."""
    audio = RealTimeAudioIO()
    codec = ManchesterCodec(8, audio)
    RealTimeFrameIO(codec, audio).encode(frame)
    return list(audio.line_out) + audio._out_buf  # the last partial buffer too


@pytest.mark.parametrize("spb", [8, 6, 10, 16])
def test_full_scale_matches_the_original_writer(spb: int) -> None:
    rng = np.random.default_rng(spb)
    mod = ManchesterPhy(samples_per_bit=spb, legacy=True, amplitude=1.0).modulator()
    for size in (0, 1, 13, 300):
        data = rng.bytes(size)
        ours = mod.modulate(data) * 128
        want = original_wav_samples(data, spb) + [0] * 64
        assert ours.tolist() == want


def test_sound_card_level_matches_what_the_original_plays() -> None:
    """Frame bytes and samples alike: our legacy frame on our legacy line, against the original's
    RealTimeFrameIO.encode through its codec and RealTimeAudioIO (a third of full scale)."""
    rng = np.random.default_rng(5)
    mod = ManchesterPhy(legacy=True).modulator()
    for seq, flags, payload in [(0, Flags.SYN, b""), (200, Flags.ACK | Flags.FIN, b""),
                                (7, Flags.BEG | Flags.END, rng.bytes(256))]:  # fmt: skip
        ours = Frame(Address(1, 10), Address(55, 20), seq, flags, payload=payload)
        theirs = JFrame(JAddress(1, 10), JAddress(55, 20), seq, bool(flags & Flags.SYN),
                        bool(flags & Flags.ACK), bool(flags & Flags.FIN), bool(flags & Flags.BEG),
                        bool(flags & Flags.END), 0, payload)  # fmt: skip
        assert (mod.modulate(LEGACY.encode(ours)) * 128).tolist() == original_line_samples(theirs)
    levels = set((mod.modulate(b"\x00\xff") * 128).tolist())
    assert levels == {42, -42, 25, -25, 0}  # 127/3, -128/3, 76/3, -76/3 in Java's integer division


def test_eight_bit_wav_holds_the_original_bytes(tmp_path: Path) -> None:
    frame = Frame(Address(1, 0), Address(2, 0), 3, Flags.BEG | Flags.END, payload=b"hello")
    phy = ManchesterPhy(legacy=True, amplitude=1.0)
    encode_wav([frame], tmp_path / "tx.wav", phy, LEGACY, eight_bit=True)
    with wave.open(str(tmp_path / "tx.wav")) as w:
        raw = w.readframes(w.getnframes())
    lead = phy.sample_rate // 10
    body = raw[lead : -lead - 64]
    want = [s + 128 for s in original_wav_samples(LEGACY.encode(frame))]  # WAV 8-bit: unsigned
    assert list(body) == want


@pytest.mark.parametrize("channel", ["clean", "cable", "cable-hard"])
def test_our_receiver_reads_the_original_line(channel: str) -> None:
    rng = np.random.default_rng(9)
    frames = [LengthFraming.make(rng.bytes(int(rng.integers(5, 300)))) for _ in range(6)]
    audio = RealTimeAudioIO()
    codec = ManchesterCodec(8, audio)
    played: list[int] = [0] * 500
    for f in frames:  # the original's writer, as it plays on a sound card
        codec.encode_bytes(PREAMBLE)
        codec.encode_bytes(f)
        codec.encode_bytes(bytes(2))
        played += list(audio.line_out) + [0] * 64
        audio.line_out.clear()
    x = np.array(played + [0] * 2000, dtype=np.float32) / 128
    y = simulate(x, 44100, PROFILES[channel].replace(bits=8), seed=4)
    dem = ManchesterPhy(legacy=True).demodulator(LengthFraming())
    got = [r.data for r in dem.feed(y.astype(np.float32))]
    assert got == frames


@pytest.mark.parametrize("channel", ["clean", "cable"])
def test_the_original_receiver_reads_our_line(channel: str) -> None:
    """The original's transition-counting decoder (ManchesterCodec.decodeBit) on our legacy line."""
    rng = np.random.default_rng(11)
    mod = ManchesterPhy(legacy=True).modulator()
    frames = [
        Frame(Address(1, 10), Address(55, 20), i, Flags.BEG | Flags.END, payload=rng.bytes(100))
        for i in range(4)
    ]
    x = np.concatenate(
        [np.zeros(300, np.float32)] + [mod.modulate(LEGACY.encode(f)) for f in frames]
    )
    y = simulate(x, 44100, PROFILES[channel].replace(bits=8), seed=2)
    audio = RealTimeAudioIO()
    frame_io = RealTimeFrameIO(ManchesterCodec(8, audio), audio)
    got: list[JFrame] = []

    def reader():  # type: ignore[no-untyped-def]
        while True:
            got.append((yield from frame_io.decode()))

    scheduler = Scheduler()
    scheduler.start("receiver", reader())
    samples = np.clip(np.round(y * 128), -128, 127).astype(int).tolist()
    for i in range(0, len(samples), 1024):
        audio.hear(samples[i : i + 1024])
        scheduler.run()
    assert [(f.seq, f.payload) for f in got] == [(f.seq, f.payload) for f in frames]
