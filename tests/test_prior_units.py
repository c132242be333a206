"""Measured data in another range than the prior's: to_prior_units and bins from values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import invdiff as ivd
from tests._helpers import assert_close, from_numpy, to_numpy


@given(seed=st.integers(0, 2**16), lo=st.floats(-3, 3), width=st.floats(0.1, 5),
       plo=st.floats(-3, 3), pwidth=st.floats(0.1, 5))
def test_the_converted_problem_has_the_same_measurement(seed, lo, width, plo, pwidth):
    g = np.random.default_rng(seed)
    A = g.normal(size=(5, 7))
    dr, pr = (lo, lo + width), (plo, plo + pwidth)
    u = g.uniform(*dr, size=(3, 7))
    x = pr[0] + (u - dr[0]) * (pr[1] - pr[0]) / (dr[1] - dr[0])  # the same signal, prior units
    A2, y2 = ivd.measurements.to_prior_units(A, u @ A.T, data_range=dr, prior_range=pr)
    np.testing.assert_allclose(x @ A2.T, y2, rtol=1e-9, atol=1e-9)


def test_bins_keep_every_measurement_in_its_bin_and_infinite_edges(xp):
    g = np.random.default_rng(0)
    A = from_numpy(g.normal(size=(40, 12)), xp)
    u = from_numpy(g.uniform(0, 1, size=(12,)), xp)
    q = ivd.measurements.Quantizer.uniform(2, -2.0, 2.0)
    lo, hi = q.bins(q.quantize(A @ u))
    A2, lo2, hi2 = ivd.measurements.to_prior_units(A, lo, hi)
    z = A2 @ (2 * u - 1)
    assert bool(xp.all((lo2 <= z + 1e-12) & (z < hi2)))
    assert_close(xp.isinf(lo2), xp.isinf(lo), xp=xp)  # open bins stay open
    assert_close(A2, 0.5 * A, xp=xp)


def test_dense_matrix_in_dense_matrix_out():
    A = np.eye(3, 4)
    A2, y2 = ivd.measurements.to_prior_units(ivd.operators.DenseMatrix(A), np.ones(3))
    assert isinstance(A2, ivd.operators.DenseMatrix)
    np.testing.assert_allclose(A2.A, A / 2)
    np.testing.assert_allclose(y2, np.full(3, 0.5))


def test_the_quantized_likelihood_of_the_converted_problem_is_the_data_likelihood():
    """The quantized likelihood of x in the converted problem is that of the data
    u = (x + 1)/2 in the original one (the noise is unchanged)."""
    g = np.random.default_rng(3)
    A = g.normal(size=(6, 5)) / math.sqrt(6)
    u = g.uniform(0, 1, size=5)
    lo, hi = ivd.measurements.Quantizer.sign().bins_from_values(np.sign(A @ u))
    A2, lo2, hi2 = ivd.measurements.to_prior_units(A, lo, hi)
    x = 2 * u - 1
    sigma = 0.1
    from scipy.stats import norm

    def logp(M, l, h, s):
        z = s @ M.T
        return np.sum(np.log(norm.cdf((h - z) / sigma) - norm.cdf((l - z) / sigma)))

    np.testing.assert_allclose(logp(A2, lo2, hi2, x), logp(A, lo, hi, u), rtol=1e-12)


def test_errors_name_the_argument():
    A = np.eye(2, 3)
    with pytest.raises(ValueError, match="lower must have shape"):
        ivd.measurements.to_prior_units(A, np.zeros(3))
    with pytest.raises(ValueError, match="data_range"):
        ivd.measurements.to_prior_units(A, np.zeros(2), data_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="A must be a 2-D"):
        ivd.measurements.to_prior_units(np.zeros(3), np.zeros(2))
    import torch

    with pytest.raises(TypeError, match="lower"):
        ivd.measurements.to_prior_units(A, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("signs", [np.array([1, -1, 1]), np.array([1.0, -1.0, 1.0]),
                                   np.array([True, False, True])])
def test_bins_from_signs_in_any_encoding(signs):
    lo, hi = ivd.measurements.Quantizer.sign().bins_from_values(signs)
    assert lo.tolist() == [0.0, -math.inf, 0.0] and hi.tolist() == [math.inf, 0.0, math.inf]


def test_bins_from_values_inverts_values(xp):
    q = ivd.measurements.Quantizer.uniform(3, -1.0, 1.0)
    z = from_numpy(np.random.default_rng(0).normal(size=50), xp)
    codes = q.quantize(z)
    lo, hi = q.bins_from_values(q.values(codes, like=z))
    lo_ref, hi_ref = q.bins(codes, like=z)
    assert_close(lo, lo_ref, xp=xp)
    assert_close(hi, hi_ref, xp=xp)


def test_values_that_are_not_levels_are_refused():
    with pytest.raises(ValueError, match=r"levels \(-1.0, 1.0\); received 1 other values "
                                         r"\(first: 0.0\)"):
        ivd.measurements.Quantizer.sign().bins_from_values(np.array([1.0, 0.0, -1.0]))
    with pytest.raises(TypeError, match="boolean"):
        ivd.measurements.Quantizer.uniform(2, -1.0, 1.0).bins_from_values(np.array([True]))
    assert to_numpy(ivd.measurements.Quantizer.sign().bins_from_values(
        np.zeros(0))[0]).shape == (0,)
