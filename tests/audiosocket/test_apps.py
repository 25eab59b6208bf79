"""The CLI's apps over real sockets: echo, record, play, tone, silence."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import numpy as np
import pytest

from audionet.audio.analysis import dominant_frequency
from audionet.audio.format import AudioFormat
from audionet.audio.wav import read_wav, write_wav
from audionet.audiosocket import connect, serve
from audionet.audiosocket.apps import EchoApp, PlayApp, RecordApp, make_app
from audionet.errors import ConfigError

from .util import strip_silence, tagged_audio

F8 = AudioFormat(8000)


async def test_record_writes_exactly_what_was_sent(tmp_path: Path) -> None:
    async with serve(RecordApp(tmp_path), "127.0.0.1", 0) as server:
        calls = [await connect("127.0.0.1", server.port) for _ in range(2)]
        sent = [tagged_audio(0.7, seed=i) for i in range(2)]
        for c, pcm in zip(calls, sent, strict=True):
            c.send_audio(pcm)
        for c in calls:
            await c.drain()
        await asyncio.sleep(0.1)
        for c in calls:
            await c.hangup()
        await asyncio.sleep(0.1)
    for c, pcm in zip(calls, sent, strict=True):
        fmt, data = read_wav(tmp_path / f"{c.uuid}.wav")
        assert fmt == F8 and data == pcm


async def test_play_delivers_a_wav_exactly_at_fifty_frames_a_second(tmp_path: Path) -> None:
    pcm = tagged_audio(1.0, seed=9)
    write_wav(tmp_path / "prompt.wav", F8, pcm)
    async with serve(PlayApp(tmp_path / "prompt.wav"), "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        await asyncio.wait_for(call.wait_closed(), 5)
    assert call.end_reason == "server sent a hangup message" and call.violations == []
    assert strip_silence(call.received) == pcm
    t = call.audio_times
    assert abs((t[-1] - t[0]) / (len(t) - 1) - 0.020) < 0.001
    assert max(b - a for a, b in itertools.pairwise(t)) < 0.060


async def test_play_resamples_other_formats(tmp_path: Path) -> None:
    fmt = AudioFormat(44100, channels=2)
    n = np.arange(44100)
    tone = 0.4 * np.sin(2 * np.pi * 700 * n / 44100)
    write_wav(
        tmp_path / "stereo.wav",
        fmt,
        (np.repeat(tone[:, None], 2, axis=1) * 32767).astype("<i2").tobytes(),
    )
    async with serve(PlayApp(tmp_path / "stereo.wav"), "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        await asyncio.wait_for(call.wait_closed(), 5)
    audio = strip_silence(call.received)
    assert abs(F8.duration(len(audio)) - 1.0) < 0.03
    assert abs(dominant_frequency(audio, F8) - 700) < 10
    assert call.violations == []


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_tone_app(rate: int) -> None:
    async with serve(make_app("tone:440", rate), "127.0.0.1", 0, rate=rate) as server:
        call = await connect("127.0.0.1", server.port, rate=rate)
        await asyncio.sleep(0.6)
        await call.hangup()
    fmt = AudioFormat(rate)
    assert abs(dominant_frequency(bytes(call.received), fmt) - 440) < 5
    assert len(call.received) >= fmt.bytes_for(0.5) and call.violations == []


async def test_silence_and_echo_apps() -> None:
    async with serve(make_app("silence"), "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        call.send_audio(tagged_audio(0.2))
        await asyncio.sleep(0.4)
        await call.hangup()
    assert len(call.received) >= 15 * 320 and not any(call.received)
    async with serve(EchoApp(), "127.0.0.1", 0) as server:
        call = await connect("127.0.0.1", server.port)
        pcm = tagged_audio(0.4)
        call.send_audio(pcm)
        await call.drain()
        await asyncio.sleep(0.2)
        await call.hangup()
    assert strip_silence(call.received) == pcm


def test_make_app_rejects_bad_specs(tmp_path: Path) -> None:
    for spec in (
        "karaoke",
        "tone:abc",
        "tone:5000",
        f"record:{tmp_path}/missing",
        "play:/no/such.wav",
        "echo:1",
    ):
        with pytest.raises(ConfigError):
            make_app(spec)
