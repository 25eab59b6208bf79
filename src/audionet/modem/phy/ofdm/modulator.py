"""Frame bytes to OFDM samples: preamble, header symbols, payload symbols, gap.

On the air, at the profile's rate: the sync symbol and two training symbols
(:mod:`~audionet.modem.phy.ofdm.sync`), ``header_symbols`` header symbols in the robust mode
(:mod:`~audionet.modem.phy.ofdm.header`), the payload's symbols in the frame's mode
(:mod:`~audionet.modem.phy.ofdm.coding`), each with its cyclic prefix and the pilots on their
carriers, then ``gap`` samples of silence. Samples are float32 at the profile's RMS level,
clipped to [-1, 1] (6 standard deviations at the default level: practically never reached).
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from audionet.errors import LocalProtocolError
from audionet.modem.phy.base import Samples
from audionet.modem.phy.ofdm import coding, header
from audionet.modem.phy.ofdm.adapt import LinkState
from audionet.modem.phy.ofdm.dsp import to_time
from audionet.modem.phy.ofdm.header import Header
from audionet.modem.phy.ofdm.mode import Mode
from audionet.modem.phy.ofdm.profile import OfdmProfile
from audionet.modem.phy.ofdm.qam import get_constellation
from audionet.modem.phy.ofdm.sync import preamble

C128 = npt.NDArray[np.complex128]

#: Symbols before the header: sync and two training symbols.
PREAMBLE_SYMBOLS = 3


@functools.cache
def _preamble(profile: OfdmProfile) -> Samples:
    out: Samples = preamble(profile).astype(np.float32)
    return out


def header_values(profile: OfdmProfile, h: Header) -> C128:
    """Data-carrier values of the header symbols ``(header_symbols, data carriers)``."""
    bits = header.encode(profile, h)
    qam = get_constellation("bpsk" if profile.header_bits == 1 else "qpsk")
    out: C128 = qam.modulate(bits).reshape(profile.header_symbols, -1)
    return out


def spectra(profile: OfdmProfile, values: C128) -> C128:
    """Full spectra ``(symbols, nfft//2+1)``: data carriers from ``values``, pilots, the rest empty."""
    lay = profile.layout
    out = np.zeros((values.shape[0], profile.nfft // 2 + 1), dtype=np.complex128)
    out[:, lay.data] = values
    out[:, lay.pilots] = lay.pilot_values
    return out


def frame_samples(profile: OfdmProfile, data: bytes, mode: Mode, h: Header) -> Samples:
    """All samples of one frame."""
    values = np.concatenate((header_values(profile, h), coding.encode(profile, mode, data)))
    body = to_time(profile, spectra(profile, values)).reshape(-1)
    out = np.concatenate(
        (_preamble(profile), body.astype(np.float32), np.zeros(profile.gap, dtype=np.float32))
    )
    np.clip(out, -1.0, 1.0, out=out)
    return out


def frame_symbols(profile: OfdmProfile, mode: Mode, nbytes: int) -> int:
    """OFDM symbols of a frame of ``nbytes``, preamble and header included."""
    return PREAMBLE_SYMBOLS + profile.header_symbols + coding.plan(profile, mode, nbytes).symbols


class OfdmModulator:
    """Frames to samples in the mode the station's :class:`LinkState` picks."""

    def __init__(self, profile: OfdmProfile, link: LinkState) -> None:
        self.profile = profile
        self.link = link

    @property
    def sample_rate(self) -> int:
        return self.profile.sample_rate

    def modulate(self, frame: bytes) -> Samples:
        if not 1 <= len(frame) <= header.MAX_PAYLOAD:
            raise LocalProtocolError(
                f"an OFDM frame carries 1 to {header.MAX_PAYLOAD} bytes, not {len(frame)}"
            )
        mode = self.link.tx_mode()
        h = Header(len(frame), mode, self.link.feedback())
        self.link.sent(h, bytes(frame))
        return frame_samples(self.profile, bytes(frame), mode, h)

    def duration(self, nbytes: int) -> float:
        p = self.profile
        symbols = frame_symbols(p, self.link.tx_mode(), max(1, nbytes))
        return (symbols * p.symbol_length + p.gap) / p.sample_rate
