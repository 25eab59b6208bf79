"""A deterministic simulator of audio lines: cables, sound cards and telephone circuits.

Everything is numpy/scipy and seeded, so a test or benchmark sees the same line every time, faster
than real time. Effects, in the order a real line applies them:

1. gain (the sender's volume and the cable's loss);
2. clock drift between the two sound cards, in ppm (:class:`FractionalResampler`, a windowed-sinc
   fractional resampler: a positive value means the receiving card runs fast, so it records more
   samples than were played);
3. the telephone band: resampled to 8 kHz, 300-3400 Hz band-pass, G.711 round trip (mu-law or
   A-law), resampled back;
4. the receiving card's DC-blocking high-pass and its anti-alias low-pass (Butterworth);
5. polarity inversion and a DC offset;
6. white Gaussian noise at an SNR relative to the power of the received signal, and impulse noise
   (clicks: random spikes ringing down over a fraction of a millisecond);
7. clipping and quantisation to 16 or 8 bits.

:func:`simulate` takes a whole signal (and adds the silence padding); :class:`Channel` is the
streaming form for real-time use: ``process(chunk)`` returns the samples completed so far (drift and
resampling change the count) and ``flush()`` the rest. With a fixed ``signal_power`` the streaming
form gives exactly the same samples as :func:`simulate` whatever the chunk sizes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.audio.codecs.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from audionet.errors import ConfigError
from audionet.modem.channel.resample import FractionalResampler

__all__ = [
    "PROFILES",
    "Channel",
    "ChannelConfig",
    "FractionalResampler",
    "active_power",
    "get_profile",
    "simulate",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

PHONE_RATE = 8000  # G.711 runs at 8 kHz (ITU-T G.711)
PHONE_BAND = (300.0, 3400.0)  # the classic voice channel (ITU-T G.712)
CLICK_DECAY = 2e-4  # seconds for an impulse to ring down by 1/e
#: Reference signal power for streaming before any signal was seen: Manchester at amplitude 0.5.
DEFAULT_POWER = 0.2


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One simulated line. ``None`` or 0 turns an effect off."""

    name: str = "custom"
    pad_before: float = 0.0  # seconds of silence before the signal (simulate() only)
    pad_after: float = 0.0  # seconds of silence after it (simulate() only)
    gain_db: float = 0.0
    drift_ppm: float = 0.0
    telephone: bool = False
    telephone_law: str = "ulaw"  # "ulaw" or "alaw"
    highpass_hz: float | None = None
    lowpass_hz: float | None = None
    invert: bool = False
    dc_offset: float = 0.0
    snr_db: float | None = None
    impulse_rate: float = 0.0  # clicks per second (Poisson)
    impulse_level: float = 0.0  # peak of a click, full scale = 1
    bits: int | None = 16  # output quantisation: 16, 8, or None for none

    def __post_init__(self) -> None:
        if self.pad_before < 0 or self.pad_after < 0:
            raise ConfigError("channel padding must be zero or positive seconds")
        if abs(self.drift_ppm) > 20000:
            raise ConfigError(f"clock drift {self.drift_ppm} ppm: use -20000..20000")
        if self.telephone_law not in ("ulaw", "alaw"):
            raise ConfigError(f"telephone law {self.telephone_law!r}: use 'ulaw' or 'alaw'")
        if self.bits not in (None, 8, 16):
            raise ConfigError(f"quantisation to {self.bits} bits: use 16, 8 or none")
        if self.impulse_rate < 0 or self.impulse_level < 0:
            raise ConfigError("impulse rate and level must be zero or positive")
        for f in (self.highpass_hz, self.lowpass_hz):
            if f is not None and f <= 0:
                raise ConfigError("filter corner frequencies must be positive")

    def replace(self, **changes: object) -> ChannelConfig:
        """A copy with some fields changed (``cable.replace(snr_db=20)``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


#: The named lines of SPEC §3 / issue 5.
PROFILES: dict[str, ChannelConfig] = {
    # A perfect line: only 16-bit quantisation.
    "clean": ChannelConfig(name="clean", pad_before=0.05, pad_after=0.05),
    # A good cable between two ordinary sound cards (they measure 35-50 dB SNR and tens of ppm).
    "cable": ChannelConfig(
        name="cable",
        pad_before=0.05,
        pad_after=0.05,
        gain_db=-3.0,
        drift_ppm=50.0,
        highpass_hz=20.0,
        lowpass_hz=18000.0,
        snr_db=40.0,
    ),
    # Cheap cards, a long cable and a noisy room: inverted polarity, DC, a strong high-pass, clicks.
    "cable-hard": ChannelConfig(
        name="cable-hard",
        pad_before=0.05,
        pad_after=0.05,
        gain_db=-6.0,
        drift_ppm=200.0,
        highpass_hz=150.0,
        lowpass_hz=10000.0,
        invert=True,
        dc_offset=0.02,
        snr_db=30.0,
        impulse_rate=0.5,
        impulse_level=0.5,
    ),
    # A telephone call: 300-3400 Hz at 8 kHz through G.711 mu-law, a little drift and line noise.
    "phone": ChannelConfig(
        name="phone",
        pad_before=0.05,
        pad_after=0.05,
        gain_db=-6.0,
        drift_ppm=20.0,
        telephone=True,
        snr_db=35.0,
    ),
}


def get_profile(name: str) -> ChannelConfig:
    """A profile by name; :class:`ConfigError` naming the choices for an unknown one."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown channel profile {name!r}; choose one of: {', '.join(PROFILES)}"
        ) from None


def active_power(x: npt.ArrayLike, rate: int) -> float | None:
    """Mean power of the parts of ``x`` that carry signal (10 ms blocks within 40 dB of the loudest)."""
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    n = max(1, rate // 100)
    if a.size < n:
        p = float(np.mean(a**2)) if a.size else 0.0
        return p if p > 1e-10 else None
    blocks = np.mean(a[: a.size // n * n].reshape(-1, n) ** 2, axis=1)
    loud = blocks[blocks >= max(blocks.max() * 1e-4, 1e-10)]
    return float(loud.mean()) if loud.size else None


def _quantise(x: F64, bits: int) -> F64:
    full = float(1 << (bits - 1))
    out: F64 = np.clip(np.rint(x * full), -full, full - 1) / full
    return out


class Channel:
    """The streaming channel; see the module docstring. ``seed`` makes it repeatable."""

    def __init__(
        self,
        config: ChannelConfig,
        rate: int,
        seed: int = 0,
        signal_power: float | None = None,
    ) -> None:
        if not 1000 <= rate <= 384000:
            raise ConfigError(f"sample rate {rate} Hz is outside 1000..384000 Hz")
        self.config = config
        self.rate = rate
        self._gain = 10.0 ** (config.gain_db / 20.0)
        self._fixed_power = signal_power
        self._power = signal_power if signal_power is not None else DEFAULT_POWER * self._gain**2
        self._seen_signal = signal_power is not None
        self._drift = (
            FractionalResampler(1.0 / (1.0 + config.drift_ppm * 1e-6)) if config.drift_ppm else None
        )
        # scipy.signal takes about a second to import: only a channel that is used pays for it,
        # not every program that imports this module (the CLI imports it to list the profiles).
        from scipy import signal

        self._signal = signal
        butter, sosfilt_zi = signal.butter, signal.sosfilt_zi
        self._phone: tuple[FractionalResampler, FractionalResampler] | None = None
        self._phone_sos: F64 | None = None
        if config.telephone and rate != PHONE_RATE:
            self._phone = (
                FractionalResampler(rate / PHONE_RATE),
                FractionalResampler(PHONE_RATE / rate),
            )
        if config.telephone:
            self._phone_sos = butter(4, PHONE_BAND, btype="bandpass", fs=PHONE_RATE, output="sos")
        self._filters: list[tuple[F64, F64]] = []
        nyquist = rate / 2
        if config.highpass_hz is not None and config.highpass_hz < nyquist:
            sos = butter(2, config.highpass_hz, btype="highpass", fs=rate, output="sos")
            self._filters.append((sos, sosfilt_zi(sos) * 0.0))
        if config.lowpass_hz is not None and config.lowpass_hz < nyquist:
            sos = butter(4, config.lowpass_hz, btype="lowpass", fs=rate, output="sos")
            self._filters.append((sos, sosfilt_zi(sos) * 0.0))
        if self._phone_sos is not None:
            self._phone_zi = sosfilt_zi(self._phone_sos) * 0.0
        seeds = np.random.SeedSequence(seed).spawn(3)
        self._noise_rng = np.random.default_rng(seeds[0])
        self._click_rng = np.random.default_rng(seeds[1])
        self._click_amp_rng = np.random.default_rng(seeds[2])
        self._click_a = math.exp(-1.0 / (CLICK_DECAY * rate))
        self._click_zi = np.zeros(1)

    # -- the deterministic part ------------------------------------------------------------------

    def _telephone(self, x: F64, final: bool) -> F64:
        assert self._phone_sos is not None
        if self._phone is not None:
            down, _ = self._phone
            x = np.concatenate((down.process(x), down.flush())) if final else down.process(x)
        if x.size:
            x, self._phone_zi = self._signal.sosfilt(self._phone_sos, x, zi=self._phone_zi)
        pcm = np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2").tobytes()
        if self.config.telephone_law == "ulaw":
            pcm = ulaw_decode(ulaw_encode(pcm))
        else:
            pcm = alaw_decode(alaw_encode(pcm))
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
        if self._phone is not None:
            _, up = self._phone
            x = np.concatenate((up.process(x), up.flush())) if final else up.process(x)
        return x

    def shape(self, chunk: npt.ArrayLike, final: bool = False) -> F64:
        """Gain, drift, telephone band and filters: the received signal before noise."""
        x: F64 = np.asarray(chunk, dtype=np.float64).reshape(-1)
        x = np.nan_to_num(x, posinf=0.0, neginf=0.0) * self._gain  # no NaN into filter state
        if x.size == 0 and not final:
            return x
        if self._drift is not None:
            x = (
                np.concatenate((self._drift.process(x), self._drift.flush()))
                if final
                else (self._drift.process(x))
            )
        if self._phone_sos is not None:
            x = self._telephone(x, final)
        if x.size == 0:
            return x
        for i, (sos, zi) in enumerate(self._filters):
            filtered, zi = self._signal.sosfilt(sos, x, zi=zi)
            self._filters[i] = (sos, zi)
            x = np.asarray(filtered, dtype=np.float64)
        if self.config.invert:
            x = -x
        return x

    # -- the random part ---------------------------------------------------------------------------

    def _update_power(self, x: F64) -> None:
        if self._fixed_power is not None:
            return
        p = active_power(x, self.rate)
        if p is not None and p > 1e-8:
            self._power = p if not self._seen_signal else 0.9 * self._power + 0.1 * p
            self._seen_signal = True

    def corrupt(self, x: F64) -> F64:
        """DC offset, noise, clicks, clipping and quantisation of an already shaped signal."""
        cfg = self.config
        y = x + cfg.dc_offset
        if cfg.snr_db is not None:
            sigma = math.sqrt(self._power / 10.0 ** (cfg.snr_db / 10.0))
            y = y + sigma * self._noise_rng.standard_normal(x.size)
        if cfg.impulse_rate > 0 and cfg.impulse_level > 0:
            hits = self._click_rng.random(x.size) < cfg.impulse_rate / self.rate
            amp = self._click_amp_rng.uniform(-1.0, 1.0, x.size)
            spikes = np.where(hits, cfg.impulse_level * (0.5 + 0.5 * np.abs(amp)) * np.sign(amp), 0)
            clicks, self._click_zi = self._signal.lfilter(
                [1.0], [1.0, -self._click_a], spikes, zi=self._click_zi
            )
            y = y + clicks
        y = np.clip(y, -1.0, 1.0)
        if cfg.bits is not None:
            y = _quantise(y, cfg.bits)
        return y

    def process(self, chunk: npt.ArrayLike) -> F32:
        """Run the next chunk through the line; returns the samples it completes (float32)."""
        x = self.shape(chunk)
        self._update_power(x)
        return self.corrupt(x).astype(np.float32)

    def flush(self) -> F32:
        """The samples still held by the resamplers (the input is over)."""
        x = self.shape(np.zeros(0), final=True)
        self._update_power(x)
        return self.corrupt(x).astype(np.float32)


def simulate(
    samples: npt.ArrayLike,
    rate: int,
    config: ChannelConfig,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> F32:
    """The whole of ``samples`` (float in [-1, 1]) through the line, with its silence padding.

    The SNR is relative to the power of the received signal where it is active (silences and the
    padding do not dilute it). ``progress``, if given, is called with the fraction done (0..1) as
    the work goes on (the signal is processed in one-second blocks; the result does not depend on it).
    """
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    pad = (round(config.pad_before * rate), round(config.pad_after * rate))
    x = np.concatenate((np.zeros(pad[0]), x, np.zeros(pad[1])))
    shaper = Channel(config, rate, seed)
    parts = []
    for i in range(0, x.size, rate):
        parts.append(shaper.shape(x[i : i + rate]))
        if progress is not None:
            progress(0.8 * min(1.0, (i + rate) / max(x.size, 1)))
    parts.append(shaper.shape(np.zeros(0), final=True))
    shaped = np.concatenate(parts)
    power = active_power(shaped, rate) or DEFAULT_POWER
    out = Channel(config, rate, seed, signal_power=power).corrupt(shaped).astype(np.float32)
    if progress is not None:
        progress(1.0)
    return out
