"""Rate adaptation: bit loading from SNR, margin, step-down on loss and recovery."""

from __future__ import annotations

import numpy as np

from audionet.modem.phy.ofdm import OfdmPhy
from audionet.modem.phy.ofdm.adapt import (
    LOSS_STEP,
    REQUIRED_SNR,
    STALE_FRAMES,
    LinkState,
    choose,
    group_snr_db,
    start_mode,
)
from audionet.modem.phy.ofdm.header import Feedback, Header
from audionet.modem.phy.ofdm.mode import Mode
from audionet.modem.phy.ofdm.profile import PROFILES
from tests.modem.phy.ofdm.ofdm_helpers import receive, transmit

P = PROFILES["ofdm"]


def test_more_snr_more_bits_and_margin_costs_bits() -> None:
    rates = []
    for snr in (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0):
        mode = choose(P, (snr,) * P.groups, 3.0)
        assert mode is not None
        rates.append(mode.bit_rate(P))
        # every group's constellation fits with the margin
        for b in set(mode.loading) - {0}:
            assert REQUIRED_SNR[(b, mode.rate)] <= snr - 3.0
    assert rates == sorted(rates) and rates[-1] > 5 * rates[0]
    assert str(choose(P, (40.0,) * P.groups, 3.0)) == "qam1024-5/6"
    low = choose(P, (40.0,) * P.groups, 15.0)
    assert low is not None and low.bit_rate(P) < rates[-1]
    assert choose(P, (-10.0,) * P.groups, 3.0) is None


def test_loading_follows_a_low_pass_line() -> None:
    """Groups above a 10 kHz low-pass (4th order: 24 dB down at 20 kHz) get fewer bits."""
    bounds = np.array([hi for _, hi in P.layout.group_bounds])
    snr = np.where(bounds < 10000, 32.0, 32.0 - 40 * np.log10(bounds / 10000) * 2)
    mode = choose(P, snr, 3.0)
    assert mode is not None
    loads = np.array(mode.loading)
    assert np.all(np.diff(loads[bounds > 10000]) <= 0)
    assert loads[0] >= 8 and loads[-1] <= 2


def test_group_snr_is_dominated_by_weak_carriers() -> None:
    snr = np.full(P.layout.used.size, 1000.0)  # 30 dB
    snr[::7] = 10.0  # a seventh of the carriers at 10 dB
    g = group_snr_db(P, snr)
    assert np.all(g < 20.0) and np.all(g > 10.0)


def feedback(db: float, losses: int = 0) -> Header:
    return Header(100, Mode.parse("qpsk-1/2", P), Feedback((db,) * P.groups, losses))


def test_step_down_on_sustained_loss_then_back_up() -> None:
    link = LinkState(P)
    assert link.tx_mode() == start_mode(P)  # nothing heard yet
    snr = np.full(P.layout.used.size, 10**3.6)
    link.heard(snr, feedback(33.0), True)
    top = link.tx_mode()
    assert str(top) == "qam1024-5/6"
    for _ in range(4):  # the peer reports two losses in its last eight frames, again and again
        link.heard(snr, feedback(33.0, losses=2), True)
    assert link.extra == LOSS_STEP
    lower = link.tx_mode()
    assert lower.bit_rate(P) < top.bit_rate(P)
    for _ in range(4):
        link.heard(snr, feedback(33.0, losses=3), True)
    assert link.extra == 2 * LOSS_STEP
    for _ in range(40):  # clean reports: the margin comes back down, the rate back up
        link.heard(snr, feedback(33.0), True)
    assert link.extra == 0.0 and link.tx_mode() == top


def test_feedback_goes_stale_and_the_link_falls_back() -> None:
    link = LinkState(P)
    link.heard(np.full(P.layout.used.size, 1e3), feedback(30.0), True)
    assert link.tx_mode() != start_mode(P)
    for _ in range(STALE_FRAMES):
        link.sent()
    assert link.tx_mode() == start_mode(P)


def test_one_bad_frame_does_not_move_the_snr_two_do() -> None:
    link = LinkState(P)
    good = np.full(P.layout.used.size, 1e4)
    link.heard(good, feedback(30.0), True)
    link.heard(good, feedback(30.0), True)
    link.heard(np.full(P.layout.used.size, 1.0), feedback(30.0), False)  # a frame hit by a burst
    fb = link.feedback()
    assert fb is not None and fb.losses == 1
    assert min(fb.snr_db) > 38.0
    link.heard(np.full(P.layout.used.size, 10.0), feedback(30.0), True)  # the line got worse
    fb = link.feedback()
    assert fb is not None and max(fb.snr_db) < 11.0


def test_a_fixed_mode_is_kept() -> None:
    phy = OfdmPhy("ofdm", mode="qam16-2/3")
    phy.link.heard(np.full(P.layout.used.size, 1e4), feedback(40.0), True)
    assert str(phy.link.tx_mode()) == "qam16-2/3"


def test_a_station_ignores_its_own_frames_on_a_shared_line() -> None:
    link = LinkState(P)
    mine = Header(500, Mode.parse("qam64-3/4", P), Feedback((12.0,) * P.groups, 3))
    link.sent(mine, b"x" * 500)
    link.heard(np.full(P.layout.used.size, 10.0), mine, True, b"x" * 500)  # our own echo
    assert link.frames_heard == 0 and link.peer is None and link.feedback() is None
    link.heard(np.full(P.layout.used.size, 1e3), feedback(30.0), True)
    assert link.frames_heard == 1 and link.peer is not None


def test_the_peers_frame_with_our_header_is_the_peers() -> None:
    """Two stations on a full-duplex line (a phone call) that start together send equal headers
    (the same length, the start mode, no feedback yet): the payload tells the peer's frame from
    our own echo, so each station learns the line and leaves the start mode."""
    a, b = OfdmPhy("ofdm-phone"), OfdmPhy("ofdm-phone")
    rng = np.random.default_rng(5)
    mine, theirs = rng.bytes(400), rng.bytes(400)
    # equal headers: the same length, mode and (no) feedback
    assert a.link.tx_mode() == b.link.tx_mode() and a.link.feedback() is b.link.feedback() is None
    tx_a, tx_b = transmit(a, [mine]), transmit(b, [theirs])
    assert [f.data for f in receive(a, tx_a)] == [mine]
    assert a.link.frames_heard == 0  # its own echo teaches nothing
    assert [f.data for f in receive(a, tx_b)] == [theirs]
    assert a.link.frames_heard == 1 and a.link.feedback() is not None  # the peer's frame does
