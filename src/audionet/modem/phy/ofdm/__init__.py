"""The OFDM physical layer: real-valued OFDM with LDPC coding and rate adaptation.

``get_phy("ofdm")`` (audio cables, 48 or 44.1 kHz) and ``get_phy("ofdm-phone")`` (telephone lines,
8 kHz through G.711) build an :class:`OfdmPhy`. Modules, one concern each:

* :mod:`.profile`: FFT size, cyclic prefix, band, pilots and carrier groups per profile;
* :mod:`.dsp`: symbols to samples and back, band-limited interpolation;
* :mod:`.sync`: preamble detection, timing, sample-clock offset, channel and noise estimates;
* :mod:`.equalizer`: one-tap equaliser with pilot tracking of phase, timing and level;
* :mod:`.qam`, :mod:`.ldpc`, :mod:`.interleave`: constellations and soft demapping, the 802.11n
  LDPC codes, the bit interleaver;
* :mod:`.mode`, :mod:`.header`, :mod:`.coding`: payload modes, the robust frame header, payload
  bytes to carrier values and back;
* :mod:`.adapt`: rate adaptation (bit loading from the peer's SNR feedback, step-down on loss);
* :mod:`.modulator`, :mod:`.demodulator`: the frame on the air and the streaming receiver.
"""

from __future__ import annotations

from audionet.errors import ConfigError
from audionet.modem.phy.base import FrameLength
from audionet.modem.phy.ofdm.adapt import DEFAULT_MARGIN, LinkState
from audionet.modem.phy.ofdm.demodulator import FrameReport, OfdmDemodulator
from audionet.modem.phy.ofdm.mode import Mode
from audionet.modem.phy.ofdm.modulator import OfdmModulator
from audionet.modem.phy.ofdm.profile import PROFILES, OfdmProfile, get_profile

__all__ = [
    "DEFAULT_MODE",
    "PROFILES",
    "FrameReport",
    "LinkState",
    "Mode",
    "OfdmDemodulator",
    "OfdmModulator",
    "OfdmPhonePhy",
    "OfdmPhy",
    "OfdmProfile",
    "get_profile",
]

#: The mode of one-way transmissions (``modem encode``) with no probe: it survives ``cable``
#: (64-QAM rate 3/4 needs about 17 dB; the cable's carriers measure 35-41 dB) and, on the phone
#: profile, ``phone`` (about 30 dB).
DEFAULT_MODE = {"ofdm": "qam64-3/4", "ofdm-phone": "qam64-3/4"}
#: Payload bytes per frame the link layer should use by default: about 1 s (cable) or 3 s (phone)
#: at the top rate, so the preamble and header (0.2 s, 0.35 s) cost about a tenth, and a lost frame
#: not much more.
SUGGESTED_PAYLOAD = {"ofdm": 16384, "ofdm-phone": 8192}


class OfdmPhy:
    """An OFDM PHY for one station. ``mode``: ``"auto"`` (rate adaptation) or a fixed mode such as
    ``"qam256-5/6"``; ``margin``: dB of SNR kept in reserve when adapting.

    Its modulator and demodulators share one :class:`LinkState`, so build one ``OfdmPhy`` per
    station (two stations sharing one would mix their measurements).
    """

    def __init__(
        self,
        profile: str = "ofdm",
        sample_rate: int | None = None,
        mode: str = "auto",
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        self.profile = get_profile(profile, sample_rate)
        if not 0.0 <= margin <= 30.0:
            raise ConfigError(f"margin {margin} dB: use 0 to 30")
        fixed = None if mode == "auto" else Mode.parse(mode, self.profile)
        self.link = LinkState(self.profile, fixed, margin)

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def sample_rate(self) -> int:
        return self.profile.sample_rate

    @property
    def suggested_payload(self) -> int:
        return SUGGESTED_PAYLOAD[self.profile.name]

    def modulator(self) -> OfdmModulator:
        return OfdmModulator(self.profile, self.link)

    def demodulator(self, framing: FrameLength | None = None) -> OfdmDemodulator:
        """A receiver (``framing`` is not needed: the PHY header carries the frame's length)."""
        return OfdmDemodulator(self.profile, self.link)

    def prepare(self) -> None:
        """Load the compiled kernels now (numba and its cached machine code: about 0.6 s, more
        on a busy machine), not when the first frame is heard: on a call that first decode would
        hold up the call's clock, and a line silent for 2 s is hung up."""
        from audionet.modem.phy.ofdm import ldpc_kernel, resample_kernel

        ldpc_kernel.compiled()
        resample_kernel.compiled()

    def __repr__(self) -> str:
        fixed = self.link.fixed
        return f"OfdmPhy({self.profile.name!r}, {self.sample_rate} Hz, mode={fixed or 'auto'})"


class OfdmPhonePhy(OfdmPhy):
    """The telephone profile (8 kHz, 250-3650 Hz, through G.711)."""

    def __init__(
        self, sample_rate: int | None = None, mode: str = "auto", margin: float = DEFAULT_MARGIN
    ) -> None:
        super().__init__("ofdm-phone", sample_rate, mode, margin)
