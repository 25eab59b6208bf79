"""The audio layer's part of ``audionet demo``: a tone through every codec, checked by its frequency."""

from __future__ import annotations

from pathlib import Path

from audionet.audio.analysis import dominant_frequency
from audionet.audio.codecs import get_codec
from audionet.audio.sources import ToneSource
from audionet.audio.wav import read_wav, write_wav
from audionet.demo import DemoRow

#: (codec, rate, frame duration in ms); None takes the codec's default.
CASES: tuple[tuple[str, int | None, int | None], ...] = (
    ("opus", 16000, 60),
    ("codec2", None, None),
    ("ulaw", None, None),
    ("alaw", None, None),
)


def run(workdir: Path) -> list[DemoRow]:
    rows = []
    for name, rate, frame_ms in CASES:
        codec = get_codec(name, rate=rate, frame_ms=frame_ms)
        fmt = codec.format
        with ToneSource(440, fmt, seconds=2.0) as src:
            frames = list(src.chunks(codec.frame_samples))
        packets = [codec.encode(f) for f in frames if len(f) == codec.frame_bytes]
        out = b"".join(codec.decode(p) for p in packets)
        path = workdir / f"tone-{name}.wav"
        write_wav(path, fmt, out)
        _, back = read_wav(path)
        freq = dominant_frequency(back[len(back) // 4 :], fmt)
        kbps = 8 * sum(map(len, packets)) / (len(packets) * codec.frame_duration) / 1000
        ok = abs(freq - 440) < 15 and back == out
        rows.append(
            DemoRow("audio", f"440 Hz through {name}", f"{freq:.1f} Hz at {kbps:.1f} kbit/s", ok)
        )
    return rows
