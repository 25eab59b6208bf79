"""OFDM profiles, carrier layout, payload modes and the PHY header."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audionet.errors import ConfigError
from audionet.modem.phy import get_phy
from audionet.modem.phy.ofdm import header, sync
from audionet.modem.phy.ofdm.header import Feedback, Header
from audionet.modem.phy.ofdm.mode import LOADS, RATES, Mode
from audionet.modem.phy.ofdm.profile import PROFILES, get_profile


@pytest.mark.parametrize("name,rate", [("ofdm", 48000), ("ofdm", 44100), ("ofdm-phone", 8000)])
def test_layout_covers_the_band(name: str, rate: int) -> None:
    p = get_profile(name, rate)
    lay = p.layout
    spacing = rate / p.nfft
    assert lay.used[0] * spacing >= p.band[0] and lay.used[-1] * spacing <= p.band[1]
    assert lay.used[-1] * spacing > p.band[1] - spacing  # up to the top of the band
    assert set(lay.pilots) | set(lay.data) == set(lay.used)
    assert not set(lay.pilots) & set(lay.data)
    assert lay.pilots[-1] == lay.used[-1]  # the pilots span the band
    assert np.all(np.diff(lay.pilots) <= p.pilot_spacing)
    sizes = lay.group_sizes()
    assert sizes.sum() == lay.ndata and sizes.min() >= sizes.max() - 1
    # the cyclic prefix is the same length of time at both cable rates
    assert p.cp / rate == pytest.approx(160 / 48000, rel=0.01) or name == "ofdm-phone"


def test_sync_symbol_has_two_equal_halves() -> None:
    p = PROFILES["ofdm"]
    pre = sync.preamble(p)
    body = pre[p.cp : p.symbol_length]
    half = p.nfft // 2
    assert np.allclose(body[:half], body[half:])
    assert np.sqrt(np.mean(pre**2)) == pytest.approx(p.rms, rel=0.05)


def test_profiles_refuse_other_rates_and_names() -> None:
    with pytest.raises(ConfigError, match="48000 or 44100"):
        get_profile("ofdm", 22050)
    with pytest.raises(ConfigError, match="8000"):
        get_profile("ofdm-phone", 48000)
    with pytest.raises(ConfigError, match="unknown"):
        get_phy("ofdm-fast")
    with pytest.raises(ConfigError, match="mode"):
        get_phy("ofdm", mode="qam512-5/6")
    with pytest.raises(ConfigError, match="rate"):
        get_phy("ofdm", mode="qam64-7/8")


def test_modes_parse_and_print() -> None:
    p = PROFILES["ofdm"]
    m = Mode.parse("qam256-5/6", p)
    assert m.loading == (8,) * p.groups and m.rate == "5/6" and str(m) == "qam256-5/6"
    mixed = Mode((10,) * 20 + (6,) * 6 + (0,) * 6, "3/4")
    assert Mode.parse(str(mixed), p) == mixed
    assert "qam1024 x20" in mixed.describe()
    assert mixed.bits_per_symbol(p) == int(mixed.carrier_bits(p).sum())
    # 1024-QAM 5/6 over 300 Hz - 20 kHz is about 140 kbit/s while data symbols play
    assert 130e3 < Mode.parse("qam1024-5/6", p).bit_rate(p) < 150e3
    with pytest.raises(ConfigError, match="groups"):
        Mode.parse("8,8:1/2", p)
    with pytest.raises(ConfigError, match="at least one"):
        Mode((0,) * p.groups, "1/2")


loads = st.sampled_from(LOADS)


@settings(max_examples=50, deadline=None)
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    length=st.integers(1, header.MAX_PAYLOAD),
    rate=st.sampled_from(RATES),
    seed=st.integers(0, 2**32 - 1),
    feedback=st.booleans(),
    losses=st.integers(0, 3),
)
def test_header_bits_round_trip(
    profile: str, length: int, rate: str, seed: int, feedback: bool, losses: int
) -> None:
    p = PROFILES[profile]
    rng = np.random.default_rng(seed)
    loading = tuple(int(b) for b in rng.choice(LOADS, p.groups))
    if not any(loading):
        loading = (2,) * p.groups
    fb = Feedback(tuple(2.0 * rng.integers(0, 32, p.groups)), losses) if feedback else None
    h = Header(length, Mode(loading, rate), fb)
    bits = header.pack(p, h)
    assert bits.size == header.header_bits(p)
    assert header.unpack(p, bits) == h
    # any single bit error is caught by the CRC
    flipped = bits.copy()
    flipped[int(rng.integers(0, bits.size))] ^= 1
    assert header.unpack(p, flipped) is None


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_coded_header_survives_noise_at_0_db(profile: str) -> None:
    """The header's BPSK/QPSK rate-1/2 code with repetition decodes at an SNR no payload mode
    could use (0 dB per carrier), so a receiver learns the mode of every frame it can detect."""
    p = PROFILES[profile]
    h = Header(1234, Mode.parse("qam1024-5/6", p), Feedback((30.0,) * p.groups, 1))
    coded = header.encode(p, h).astype(np.float64)
    rng = np.random.default_rng(1)
    per_axis = 1.0 if p.header_bits == 1 else 0.5  # symbol energy 1, complex noise variance 1
    ok = 0
    for _ in range(10):
        received = (1 - 2 * coded) * np.sqrt(per_axis) + rng.normal(0, np.sqrt(0.5), coded.size)
        llr = 4 * received * np.sqrt(per_axis) / 1.0
        ok += header.decode(p, llr) == h
    assert ok >= 9
    assert header.decode(p, rng.normal(0, 1, coded.size)) is None  # noise is no header
