"""Fixtures for the PHY tests."""

from __future__ import annotations

import numpy as np
import pytest

from tests.modem.phy.phy_helpers import LengthFraming


@pytest.fixture
def framing() -> LengthFraming:
    return LengthFraming()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
