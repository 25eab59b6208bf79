"""The interpolator's inner loop, compiled with numba when it is available.

Resampling a frame to undo the clock offset is a 28-tap filter whose taps change from sample to
sample (the polyphase row follows the fractional position). numpy does it by gathering a
``(samples, 28)`` block of inputs and another of taps and summing them: memory-bound, the largest
cost of the receiver. The same loop compiled runs several times faster. As with the LDPC kernel
(:mod:`.ldpc_kernel`), there is no numba import at module level: :func:`compiled` compiles on first
use and returns ``None`` when numba is missing or fails, and :class:`~.dsp.Interpolator` falls back
to numpy (the two agree to rounding: the sums run in another order).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

log = logging.getLogger(__name__)

Kernel = Callable[..., None]


def interpolate_loop(
    xp: NDArray[np.float64],
    start: NDArray[np.int64],
    phase: NDArray[np.int64],
    table: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """``out[i] = sum_j xp[start[i] + j] * table[phase[i], j]``."""
    taps = table.shape[1]
    for i in range(out.size):
        s = start[i]
        row = phase[i]
        acc = 0.0
        for j in range(taps):
            acc += xp[s + j] * table[row, j]
        out[i] = acc


@functools.cache
def compiled() -> Kernel | None:
    """The numba-compiled :func:`interpolate_loop`, or ``None`` when numba cannot be used."""
    try:
        import numba
    except ImportError:
        log.info("numba is not installed: resampling uses the slower numpy version")
        return None
    try:
        kernel: Any = numba.njit(cache=True, nogil=True)(interpolate_loop)
        kernel(
            np.zeros(4),
            np.zeros(1, dtype=np.int64),
            np.zeros(1, dtype=np.int64),
            np.zeros((1, 2)),
            np.zeros(1),
        )
    except Exception as exc:  # numba raises many kinds; any of them means "use numpy"
        log.warning("numba could not compile the resampling kernel (%s): using numpy", exc)
        return None
    result: Kernel = kernel
    return result
