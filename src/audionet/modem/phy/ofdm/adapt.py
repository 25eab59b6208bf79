"""Rate adaptation: bit loading from measured SNR, with a margin, stepping down on frame loss.

One :class:`LinkState` per station joins its modulator and demodulator. The receive side measures
the SNR of every carrier on each frame it hears from the peer (the training symbols, and the
pilots of every symbol, which also see intersymbol interference and clicks), takes the median over
the last three frames, and counts the peer's frames whose payload failed to decode. Both travel back to the peer
in the header of every frame this station sends (:class:`~audionet.modem.phy.ofdm.header.Feedback`).
The transmit side turns the peer's latest feedback into its next mode (:func:`choose`): for each
code rate, each carrier group gets the densest constellation whose required SNR, plus the margin,
fits the group's SNR; the rate that carries the most bits wins. Sustained loss (two or more of the
last eight frames failing at the peer) adds 2 dB to the margin, at most once per four reports;
each clean report takes 0.25 dB back off, so the link climbs back as the line allows.

Feedback that stops coming is loss too: the peer answers every frame it decodes, so after two
frames sent without hearing back, each further one adds 3 dB; after eight, a station falls back to
the profile's start mode (QPSK rate 1/2 below ``start_band``), which is also what it sends before
any feedback. A fixed ``mode`` turns all of this off.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from audionet.modem.phy.ofdm.header import Feedback, Header, pack
from audionet.modem.phy.ofdm.mode import LOADS, RATE_VALUES, RATES, Mode
from audionet.modem.phy.ofdm.profile import OfdmProfile

F64 = npt.NDArray[np.float64]

#: Es/N0 in dB at which our receiver (max-log demapper, layered min-sum, 20 iterations) decodes
#: 1944-bit codewords on an AWGN channel with at most 1 % of them failing, per constellation bits
#: and code rate (200 codewords per point, 0.5 dB steps): ``python bench/modem_ofdm.py
#: --thresholds 200``. The margin on top covers what AWGN does not have (estimation, clicks).
REQUIRED_SNR: dict[tuple[int, str], float] = {
    (1, "1/2"): -1.4, (1, "2/3"): 0.6, (1, "3/4"): 1.9, (1, "5/6"): 2.7,
    (2, "1/2"): 1.7, (2, "2/3"): 3.8, (2, "3/4"): 4.8, (2, "5/6"): 6.3,
    (4, "1/2"): 7.4, (4, "2/3"): 9.5, (4, "3/4"): 11.1, (4, "5/6"): 12.2,
    (6, "1/2"): 12.1, (6, "2/3"): 14.8, (6, "3/4"): 16.4, (6, "5/6"): 18.0,
    (8, "1/2"): 15.8, (8, "2/3"): 19.6, (8, "3/4"): 21.2, (8, "5/6"): 23.3,
    (10, "1/2"): 20.0, (10, "2/3"): 24.3, (10, "3/4"): 26.5, (10, "5/6"): 28.7,
}  # fmt: skip

DEFAULT_MARGIN = 3.0  #: dB above the required SNR
LOSS_STEP = 2.0  #: dB added to the margin on sustained loss
RECOVER_STEP = 0.25  #: dB taken back per clean report
MAX_EXTRA = 12.0
UNANSWERED = 2  #: frames we may send without hearing feedback before stepping down ...
SILENCE_STEP = 3.0  #: ... by this many dB for each further one
STALE_FRAMES = 8  #: frames sent without feedback before falling back to the start mode
HISTORY = 8  #: frames the loss count looks back over
MEDIAN_OF = 3  #: frames whose per-carrier SNR the median is taken over


def _echo_key(profile: OfdmProfile, header: Header, payload: bytes) -> bytes:
    """What identifies a frame we sent: its header's bits and a digest of its payload."""
    digest = hashlib.blake2b(payload, digest_size=16).digest()
    return pack(profile, header).tobytes() + digest


def group_snr_db(profile: OfdmProfile, snr: F64) -> F64:
    """Per carrier group, the harmonic mean of the data carriers' linear SNR, in dB (the weakest
    carriers dominate a codeword's errors, so the harmonic mean is the one to load bits by)."""
    lay = profile.layout
    data_pos = np.searchsorted(lay.used, lay.data)
    inv = 1.0 / np.maximum(snr[data_pos], 1e-6)
    sums = np.bincount(lay.group_of, weights=inv, minlength=profile.groups)
    out: F64 = -10.0 * np.log10(sums / lay.group_sizes())
    return out


def choose(profile: OfdmProfile, snr_db: F64 | tuple[float, ...], margin: float) -> Mode | None:
    """The mode carrying the most bits with ``margin`` dB to spare, or ``None`` if none fits."""
    sizes = profile.layout.group_sizes()
    snr = np.asarray(snr_db, dtype=np.float64) - margin
    best: tuple[float, Mode] | None = None
    for rate in RATES:
        loading = []
        for g in range(profile.groups):
            fits = [b for b in LOADS[1:] if REQUIRED_SNR[(b, rate)] <= snr[g]]
            loading.append(max(fits) if fits else 0)
        bits = float(np.dot(sizes, loading)) * RATE_VALUES[rate]
        if bits > 0 and (best is None or bits > best[0]):
            best = (bits, Mode(tuple(loading), rate))
    return best[1] if best else None


def start_mode(profile: OfdmProfile) -> Mode:
    return Mode.uniform(profile, 2, "1/2", top=profile.start_band)


@dataclass
class PeerReport:
    feedback: Feedback
    sent_since: int = 0  #: frames we sent since it arrived


class LinkState:
    """The adaptation state of one station (see the module docstring)."""

    def __init__(self, profile: OfdmProfile, mode: Mode | None = None, margin: float = 3.0) -> None:
        self.profile = profile
        self.fixed = mode
        self.margin = margin
        self.extra = 0.0  #: dB added to the margin after losses
        self._db: F64 | None = None  #: per used carrier, SNR in dB over recent frames
        self._recent: deque[F64] = deque(maxlen=MEDIAN_OF)
        self._outcomes: deque[bool] = deque(maxlen=HISTORY)
        self.peer: PeerReport | None = None
        self._reports_since_step = 4
        self.frames_heard = 0
        self._sent_headers: deque[bytes] = deque(maxlen=HISTORY)

    # -- receive side ----------------------------------------------------------------------

    def heard(self, snr: F64, header: Header, ok: bool, payload: bytes = b"") -> None:
        """A frame from the peer: its per-carrier SNR, its header, whether its payload decoded
        (and the payload as decoded).

        On a shared (half-duplex) line a station also hears its own frames: a frame equal to one
        it sent recently, header and payload, is its own echo and teaches nothing about the peer.
        The header alone does not tell: two stations on a full-duplex line that start at the
        same moment send equal headers (the same length and mode, and the same feedback on a
        symmetric line, such as a phone call through G.711), and each would take the other's
        frames for its own echoes forever (and never leave the start mode).
        """
        if _echo_key(self.profile, header, payload) in self._sent_headers:
            return
        self.frames_heard += 1
        # The median of the last three frames per carrier: one frame hit by a burst does not
        # move it, a line that changed moves it within two frames.
        self._recent.append(10.0 * np.log10(np.maximum(snr, 1e-6)))
        self._db = np.median(np.stack(self._recent), axis=0)
        self._outcomes.append(ok)
        if header.feedback is not None:
            self._on_feedback(header.feedback)

    def heard_bad_payload(self) -> None:
        """A frame whose header decoded but whose payload could not be demodulated at all."""
        self._outcomes.append(False)

    @property
    def snr(self) -> F64 | None:
        """Averaged SNR per used carrier of what we hear (linear), or ``None`` before any frame."""
        return None if self._db is None else 10.0 ** (self._db / 10.0)

    def feedback(self) -> Feedback | None:
        """What to tell the peer in our next header."""
        if self._db is None:
            return None
        snr = tuple(float(v) for v in group_snr_db(self.profile, 10.0 ** (self._db / 10.0)))
        return Feedback(snr, sum(1 for ok in self._outcomes if not ok))

    # -- transmit side ---------------------------------------------------------------------

    def _on_feedback(self, fb: Feedback) -> None:
        self.peer = PeerReport(fb)
        self._reports_since_step += 1
        if fb.losses >= 2 and self._reports_since_step >= 4:
            self.extra = min(MAX_EXTRA, self.extra + LOSS_STEP)
            self._reports_since_step = 0
        elif fb.losses == 0:
            self.extra = max(0.0, self.extra - RECOVER_STEP)

    def tx_mode(self) -> Mode:
        """The mode for our next frame."""
        if self.fixed is not None:
            return self.fixed
        if self.peer is None or self.peer.sent_since >= STALE_FRAMES:
            return start_mode(self.profile)
        # Frames sent without an answer: in a transfer every frame the peer decodes is answered
        # (the acknowledgement carries fresh feedback), so silence means it decodes nothing.
        silent = max(0, self.peer.sent_since - UNANSWERED) * SILENCE_STEP
        mode = choose(self.profile, self.peer.feedback.snr_db, self.margin + self.extra + silent)
        return mode or Mode.uniform(self.profile, 1, "1/2", top=self.profile.start_band)

    def sent(self, header: Header | None = None, payload: bytes = b"") -> None:
        """We sent a frame with ``header`` and ``payload`` (ages the peer's report)."""
        if header is not None:
            self._sent_headers.append(_echo_key(self.profile, header, payload))
        if self.peer is not None:
            self.peer.sent_since += 1
