"""The lower tail of N(0, 1) conditioned on X <= x (x < -6, -3 in float32): the rational
functions of ``u = 1/x^2`` in ``special._below`` against mpmath on a dense grid and across
the switch from the direct formula, on every backend, float64 and float32."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from _helpers import from_numpy, to_numpy

from invdiff import special

mp = pytest.importorskip("mpmath")

# relative error allowed in the tail: a few ulps (the fit itself is 2.3e-16 / 2.7e-8)
RTOL = {"float64": 2e-15, "float32": 1e-6}
# just above the switch the direct formula loses eps x^4 (5e-13 at x = -6, 1.5e-5 at -3)
RTOL_DIRECT = {"float64": 1e-12, "float32": 2e-5}


@functools.cache
def _reference(xs: tuple[float, ...]) -> np.ndarray:
    """``(x - mean, var)`` of N(0, 1) given X <= x, from the Mills ratio at 80 digits."""
    out = []
    with mp.workdps(80):
        for x in xs:
            lam = 2 * mp.npdf(x) / mp.erfc(-mp.mpf(x) / mp.sqrt(2))  # phi(x) / Phi(x)
            delta = x + lam
            out.append((float(delta), float(1 - lam * delta)))
    return np.array(out)


def _moments(x, xp, dtype):
    """``(delta, var)`` from ``_below`` (both) and ``var`` from the EP fast path."""
    xa = from_numpy(x, xp, getattr(xp, dtype))
    lam = special._hazard(xa, xp)
    delta, var = special._below(xa, lam, xp)
    var_ep = special._halfline_moments(xa, xp)[1]
    return to_numpy(delta), to_numpy(var), to_numpy(var_ep)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tail_moments_match_mpmath_on_a_dense_grid(xp, dtype):
    start = special._TAIL_START[dtype]
    z = np.concatenate([np.linspace(start, 40.0, 601)[1:], [start * (1 + 1e-6), 1e3, 1e6]])
    x = (-z).astype(dtype)  # the arguments the dtype holds, and the reference at them
    ref = _reference(tuple(float(v) for v in x))
    delta, var, var_ep = _moments(x, xp, dtype)
    np.testing.assert_allclose(delta, ref[:, 0], rtol=RTOL[dtype])
    np.testing.assert_allclose(var, ref[:, 1], rtol=RTOL[dtype])
    np.testing.assert_array_equal(var_ep, var)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tail_switch_is_continuous(xp, dtype):
    start = special._TAIL_START[dtype]
    step = 1e-12 if dtype == "float64" else 1e-6
    x = np.array([-start * (1 + step), -start * (1 - step)], dtype=dtype)
    ref = _reference(tuple(float(v) for v in x))
    delta, var, _ = _moments(x, xp, dtype)
    # the rational side (first) to a few ulps, the direct side to its own accuracy
    for got, want in ((delta, ref[:, 0]), (var, ref[:, 1])):
        np.testing.assert_allclose(got[:1], want[:1], rtol=RTOL[dtype])
        np.testing.assert_allclose(got[1:], want[1:], rtol=RTOL_DIRECT[dtype])
        assert abs(got[1] / got[0] - 1) < RTOL_DIRECT[dtype] + 4 * step  # no jump


@pytest.mark.slow
def test_tail_fit_is_reproducible():
    """``python -m benchmarks.fit_tail`` gives back the table in ``special._TAIL_FIT``."""
    fit_tail = pytest.importorskip("benchmarks.fit_tail")
    with mp.workdps(60):
        for name, (start, deg, _) in fit_tail.FITS.items():
            coef, _ = fit_tail.fit(start, deg)
            np.testing.assert_allclose(np.array(coef), np.array(special._TAIL_FIT[name]),
                                       rtol=1e-12)
