"""``audionet modem analyze``: what an OFDM receiver saw in a recording, as numbers and a picture.

:func:`analyze_wav` runs a recording receiver over a WAV file and checks each frame's CRC-32;
:func:`plot` draws the constellation, the SNR per carrier, the estimated clock offset of each
frame and the frames good and bad on a timeline into a PNG. matplotlib is an optional extra
(``pip install 'audionet[plot]'``), imported only here and only when a picture is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audionet.audio.format import to_float
from audionet.audio.wav import read_wav
from audionet.errors import ConfigError, DependencyError
from audionet.modem.phy.ofdm import FrameReport, OfdmDemodulator, get_profile
from audionet.modem.phy.ofdm.mode import NAMES
from audionet.modem.phy.ofdm.profile import OfdmProfile
from audionet.modem.proto.frame import AUDIONET, FrameError


@dataclass(frozen=True, slots=True)
class Analysis:
    profile: OfdmProfile
    seconds: float
    frames: list[FrameReport]
    good: list[bool]  #: per frame: its CRC-32 passed

    def lines(self) -> list[str]:
        out = [f"{len(self.frames)} frames in {self.seconds:.1f} s ({self.profile.name})"]
        for r, ok in zip(self.frames, self.good, strict=True):
            snr = 10 * np.log10(np.median(r.snr))
            out.append(
                f"{r.position / self.profile.sample_rate:8.2f} s  {r.length:6d} B  "
                f"{str(r.mode)[:24]:24s}  {'good' if ok else 'BAD '}  SNR {snr:4.1f} dB  "
                f"clock {r.drift_ppm:+7.1f} ppm  quality {r.quality:.3f}"
            )
        return out


def analyze_wav(path: Path, phy: str | None = None) -> Analysis:
    """Every OFDM frame in the WAV file at ``path`` (``phy``: ``ofdm`` or ``ofdm-phone``; by
    default chosen from the file's rate: 8 kHz is the phone profile)."""
    fmt, pcm = read_wav(path)
    name = phy or ("ofdm-phone" if fmt.rate == 8000 else "ofdm")
    if name not in ("ofdm", "ofdm-phone"):
        raise ConfigError("analyze reads OFDM recordings: use --phy ofdm or ofdm-phone")
    profile = get_profile(name, fmt.rate)
    samples = to_float(pcm, fmt.channels)
    if samples.ndim > 1:
        samples = samples[:, 0]
    rx = OfdmDemodulator(profile, record=True)
    good: list[bool] = []
    for i in range(0, samples.size + profile.sample_rate, profile.sample_rate):
        block = samples[i : i + profile.sample_rate]
        if block.size < profile.sample_rate:  # let the last frame end
            block = np.concatenate((block, np.zeros(profile.sample_rate, np.float32)))
        for frame in rx.feed(np.ascontiguousarray(block, dtype=np.float32)):
            try:
                AUDIONET.decode(frame.data)
                good.append(True)
            except FrameError:
                good.append(False)
    return Analysis(profile, samples.size / fmt.rate, rx.reports, good)


def plot(analysis: Analysis, out: Path) -> None:
    """Constellation, SNR per carrier, clock offset and frames good/bad, as a PNG at ``out``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DependencyError(
            "the plot needs matplotlib: pip install 'audionet[plot]' (or pip install matplotlib)"
        ) from None
    p = analysis.profile
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    ax = axes[0][0]
    if analysis.frames:
        values = np.concatenate([r.values for r in analysis.frames])
        bits = np.concatenate([r.bits for r in analysis.frames])
        for b in sorted(set(bits.tolist())):
            sel = bits == b
            ax.scatter(values[sel].real, values[sel].imag, s=1, alpha=0.5, label=NAMES[b])
        ax.legend(loc="upper right", markerscale=8)
    ax.set_title("equalised constellation (all frames)")
    ax.set_aspect("equal")
    ax.set_xlabel("in-phase")
    ax.set_ylabel("quadrature")
    ax = axes[0][1]
    freqs = p.layout.used * p.sample_rate / p.nfft
    for i, r in enumerate(analysis.frames[:20]):
        ax.plot(
            freqs, 10 * np.log10(r.snr), lw=0.6, alpha=0.6, label="per frame" if i == 0 else None
        )
    if analysis.frames:
        mean = 10 * np.log10(np.mean([r.snr for r in analysis.frames], axis=0))
        ax.plot(freqs, mean, color="black", lw=1.2, label="mean")
        ax.legend()
    ax.set_title("SNR per carrier")
    ax.set_xlabel("Hz")
    ax.set_ylabel("dB")
    ax.grid(alpha=0.3)
    times = [r.position / p.sample_rate for r in analysis.frames]
    ax = axes[1][0]
    ax.plot(times, [r.drift_ppm for r in analysis.frames], "o-")
    ax.set_title("estimated sample-clock offset per frame")
    ax.set_xlabel("s")
    ax.set_ylabel("ppm")
    ax.grid(alpha=0.3)
    ax = axes[1][1]
    colors = ["tab:green" if ok else "tab:red" for ok in analysis.good]
    durations = [
        (r.length * 8 / max(r.mode.bit_rate(p), 1.0)) for r in analysis.frames
    ]  # data air time, for the bar widths
    ax.barh(
        [1 if ok else 0 for ok in analysis.good], durations, left=times, color=colors, height=0.6
    )
    ax.set_yticks([0, 1], ["bad", "good"])
    ax.set_xlim(0, max(analysis.seconds, 1e-3))
    ngood = sum(analysis.good)
    ax.set_title(f"frames: {ngood} good, {len(analysis.good) - ngood} bad")
    ax.set_xlabel("s")
    fig.suptitle(f"OFDM receiver analysis ({p.name}, {p.sample_rate} Hz)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
