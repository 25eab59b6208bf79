"""``audionet audio``: make tones, hear what a codec does, and inspect audio files."""

from __future__ import annotations

import argparse

from audionet.audio.analysis import dominant_frequency, level_dbfs
from audionet.audio.codecs import CODECS, get_codec
from audionet.audio.format import AudioFormat
from audionet.cli.main import add_command, add_group


def read_any(path: str) -> tuple[AudioFormat, bytes]:
    """A whole audio file as s16le: WAV directly, anything else through FFmpeg."""
    from audionet.audio.sources import FileSource, WavSource
    from audionet.errors import AudioError

    try:
        src: WavSource | FileSource = WavSource(path)
    except AudioError:
        src = FileSource(path)
    with src:
        return src.format, b"".join(src.chunks(4096))


def cmd_tone(args: argparse.Namespace) -> int:
    from audionet.audio.sources import ToneSource
    from audionet.audio.wav import write_wav

    fmt = AudioFormat(args.rate, args.channels)
    with ToneSource(args.freq, fmt, seconds=args.seconds, amplitude=args.amplitude) as src:
        pcm = src.read(fmt.frames_for(args.seconds))
    write_wav(args.output, fmt, pcm)
    print(f"wrote {args.output}: {args.freq:g} Hz, {args.seconds:g} s, {fmt}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    # PyAV (FFmpeg) is imported only by the commands that use it, not by every ``audionet`` run.
    from audionet.audio.codecs.opus import OPUS_RATES
    from audionet.audio.resample import resample
    from audionet.audio.wav import write_wav

    in_fmt, pcm = read_any(args.input)
    rate = args.rate
    if rate is None and args.codec in ("opus", "pcm"):
        # Keep the input's rate where the codec can take it (Opus: 8/12/16/24/48 kHz).
        rate = in_fmt.rate if args.codec == "pcm" or in_fmt.rate in OPUS_RATES else 48000
    codec = get_codec(
        args.codec,
        rate=rate,
        channels=1 if args.codec == "codec2" else min(in_fmt.channels, 2),
        frame_ms=args.frame_ms,
        bitrate=args.bitrate,
    )
    cfmt = codec.format
    pcm = resample(pcm, AudioFormat(in_fmt.rate, in_fmt.channels), cfmt)
    pad = (-len(pcm)) % codec.frame_bytes
    pcm += bytes(pad)
    out = bytearray()
    compressed = 0
    for i in range(0, len(pcm), codec.frame_bytes):
        packet = codec.encode(pcm[i : i + codec.frame_bytes])
        compressed += len(packet)
        out += codec.decode(packet)
    seconds = cfmt.duration(len(pcm))
    write_wav(args.output, cfmt, bytes(out))
    kbps = 8 * compressed / seconds / 1000 if seconds else 0.0
    print(f"{codec.describe()}")
    print(
        f"wrote {args.output}: {seconds:.2f} s, {compressed} bytes compressed = {kbps:.2f} kbit/s "
        f"(PCM {cfmt.bytes_per_second * 8 / 1000:g} kbit/s, ratio {len(pcm) / max(compressed, 1):.1f}:1)"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    fmt, pcm = read_any(args.file)
    rms, peak = level_dbfs(pcm, fmt)
    print(f"file:      {args.file}")
    print(f"format:    {fmt}")
    print(f"duration:  {fmt.duration(len(pcm)):.3f} s ({len(pcm) // fmt.frame_bytes} frames)")
    print(f"level:     RMS {rms:.1f} dBFS, peak {peak:.1f} dBFS")
    print(f"dominant:  {dominant_frequency(pcm, fmt):.1f} Hz")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = add_group(
        sub,
        "audio",
        help="audio tools: tones, codec round trips, file info",
        description="The shared audio layer's tools: generate tones, run audio through a codec, inspect files.",
        epilog="examples:\n  audionet audio tone 440 --seconds 3 -o t.wav\n"
        "  audionet audio convert t.wav o.wav --codec opus\n  audionet audio info o.wav",
    )
    tone = add_command(
        group,
        "tone",
        cmd_tone,
        help="write a sine tone to a WAV file",
        epilog="example:\n  audionet audio tone 440 --seconds 3 -o t.wav",
    )
    tone.add_argument("freq", type=float, help="frequency in Hz")
    tone.add_argument("--seconds", type=float, default=3.0, help="duration (default 3)")
    tone.add_argument("--rate", type=int, default=8000, help="sample rate in Hz (default 8000)")
    tone.add_argument("--channels", type=int, default=1, help="channels (default 1)")
    tone.add_argument(
        "--amplitude", type=float, default=0.5, help="0..1 of full scale (default 0.5)"
    )
    tone.add_argument("-o", "--output", required=True, help="output WAV file")

    conv = add_command(
        group,
        "convert",
        cmd_convert,
        help="encode and decode audio through a codec, to hear and measure what it does",
        epilog="examples:\n  audionet audio convert t.wav o.wav --codec opus\n"
        "  audionet audio convert song.mp3 low.wav --codec codec2\n"
        "  audionet audio convert t.wav o.wav --codec opus --rate 16000 --bitrate 12000",
    )
    conv.add_argument("input", help="any audio file (WAV, MP3, FLAC, Ogg, ...)")
    conv.add_argument("output", help="output WAV file (the decoded audio)")
    conv.add_argument("--codec", required=True, choices=CODECS, help="codec to run through")
    conv.add_argument("--rate", type=int, help="codec sample rate (default: the codec's own)")
    conv.add_argument("--bitrate", type=int, help="target bit rate in bit/s (Opus; Codec 2 mode)")
    conv.add_argument("--frame-ms", type=float, help="codec frame duration in ms")

    info = add_command(
        group,
        "info",
        cmd_info,
        help="show an audio file's format, duration, level and dominant frequency",
        epilog="example:\n  audionet audio info o.wav",
    )
    info.add_argument("file", help="any audio file")
