"""Measurement models: Gaussian noise, quantizers (codes consistent with bins), measure()."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close, from_numpy, to_numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import invdiff as ivd
from invdiff.measurements import GaussianNoise, Quantizer, measure

FAST = settings(max_examples=15, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _z(xp, seed, n=257, scale=2.0, dtype=None):
    z = scale * np.random.default_rng(seed).standard_normal(n)
    return from_numpy(z, xp, dtype=dtype)


# -- Gaussian noise ------------------------------------------------------------------------------
def test_gaussian_noise_statistics_and_reproducibility(xp):
    y = xp.zeros((4, 5000), dtype=xp.float32)
    noisy = GaussianNoise(0.1)(y, rng=ivd.random.Generator(3))
    assert ivd._array_api.namespace(noisy) == xp and noisy.dtype == xp.float32
    n = to_numpy(noisy)
    assert abs(n.std() - 0.1) < 0.002 and abs(n.mean()) < 0.002
    again = GaussianNoise(0.1)(y, rng=ivd.random.Generator(3))
    np.testing.assert_array_equal(to_numpy(again), n)
    assert GaussianNoise(0.0)(y, rng=ivd.random.Generator(3)) is y


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf")])
def test_gaussian_noise_rejects_bad_sigma(sigma):
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        GaussianNoise(sigma)


# -- quantizers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(1, 9))
def test_uniform_codes_are_consistent_with_bins(xp, bits):
    q = Quantizer.uniform(bits=bits, low=-1.0, high=1.0)
    assert q.n_levels == 2**bits and q.bits == bits and len(q.thresholds) == 2**bits - 1
    z = _z(xp, bits)
    # include every threshold exactly, values beyond the range, and both signs of zero
    extra = from_numpy(np.array([*q.thresholds, -7.0, 7.0, 0.0, -0.0, -1.0, 1.0]), xp)
    z = xp.concat([z, extra])
    codes = q.quantize(z)
    assert codes.dtype == xp.int64 and tuple(codes.shape) == tuple(z.shape)
    c = to_numpy(codes)
    assert c.min() >= 0 and c.max() <= 2**bits - 1
    lower, upper = q.bins(codes, like=z)
    assert lower.dtype == z.dtype
    zn, lo, up = to_numpy(z), to_numpy(lower), to_numpy(upper)
    assert np.all(lo <= zn) and np.all(zn < up)
    assert np.isneginf(lo[c == 0]).all() and np.isposinf(up[c == 2**bits - 1]).all()
    assert np.isfinite(lo[c > 0]).all() and np.isfinite(up[c < 2**bits - 1]).all()
    v = to_numpy(q.values(codes, like=z))
    assert np.all(lo <= v) and np.all(v < up)


def test_uniform_is_mid_rise():
    q = Quantizer.uniform(bits=3, low=-1.0, high=1.0)
    delta = 2.0 / 8
    assert q.step == delta
    np.testing.assert_allclose(q.levels, [(k - 0.5) * delta * s for s, ks in
                                          ((-1, range(4, 0, -1)), (1, range(1, 5))) for k in ks])
    assert 0.0 not in q.levels
    assert Quantizer.uniform(2, range=(0.0, 4.0)).thresholds == (1.0, 2.0, 3.0)


def test_sign_quantizer():
    q = Quantizer.sign()
    z = np.array([-2.0, -1e-300, 0.0, 3.0])
    codes = q.quantize(z)
    np.testing.assert_array_equal(codes, [0, 0, 1, 1])
    np.testing.assert_array_equal(q(z), [-1.0, -1.0, 1.0, 1.0])
    lower, upper = q.bins(codes)
    np.testing.assert_array_equal(lower, [-np.inf, -np.inf, 0.0, 0.0])
    np.testing.assert_array_equal(upper, [0.0, 0.0, np.inf, np.inf])


def _reference_uniform(y, bits):
    """The QCS-SGM reference quantizer, restated with numpy (min-max step, mid-rise)."""
    L = 2**bits
    delta = (y.max() - y.min()) / L
    k = np.minimum(L / 2, np.ceil(np.abs(y) / delta))
    index = np.sign(y) * (k - 0.5)
    value = index * delta
    lower, upper = index - 0.5, index + 0.5
    lower = np.where(lower == -L / 2, -np.inf, lower * delta)
    upper = np.where(upper == L / 2, np.inf, upper * delta)
    return value, lower, upper


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_from_data_reproduces_the_reference_step(bits):
    y = np.random.default_rng(bits).standard_normal(500) * 3 + 0.7  # asymmetric range
    q = Quantizer.from_data(y, bits)
    value, lower, upper = _reference_uniform(y, bits)
    assert q.step == pytest.approx((y.max() - y.min()) / 2**bits, rel=1e-15)
    codes = q.quantize(y)
    np.testing.assert_allclose(q.values(codes), value, rtol=1e-12)
    lo, up = q.bins(codes)
    np.testing.assert_allclose(lo, lower, rtol=1e-12)
    np.testing.assert_allclose(up, upper, rtol=1e-12)


def test_from_data_one_bit_is_sign():
    y = np.array([-0.5, 2.0, 0.1])
    q = Quantizer.from_data(y, 1)
    np.testing.assert_array_equal(q(y), np.sign(y))


@FAST
@given(data=st.data())
def test_explicit_thresholds_codes_and_bins_agree(xp, data):
    raw = data.draw(st.lists(st.floats(-50, 50), min_size=1, max_size=12, unique=True))
    t = sorted(raw)
    q = Quantizer(t)
    z = from_numpy(np.array(data.draw(st.lists(st.floats(-100, 100), min_size=1, max_size=30))
                            + t), xp)
    codes = q.quantize(z)
    lower, upper = q.bins(codes, like=z)
    zn = to_numpy(z)
    assert np.all(to_numpy(lower) <= zn) and np.all(zn < to_numpy(upper))
    # the code counts the thresholds at or below z
    np.testing.assert_array_equal(to_numpy(codes), (zn[:, None] >= np.array(t)).sum(axis=1))


def test_codes_keep_shape_and_bins_default_dtype(xp):
    q = Quantizer.uniform(3, -1.0, 1.0)
    z = xp.reshape(_z(xp, 0, n=24, dtype=xp.float32), (2, 3, 4))
    codes = q.quantize(z)
    lower, upper = q.bins(codes)
    assert tuple(lower.shape) == (2, 3, 4)
    default = xp.__array_namespace_info__().default_dtypes()["real floating"]
    assert lower.dtype == default and upper.dtype == default
    assert q.bins(codes, like=z)[0].dtype == xp.float32


@pytest.mark.parametrize("bits", [0, -1, 17, 2.5, True, "3", None])
def test_invalid_bits_raise(bits):
    with pytest.raises(ValueError, match="bits must be an integer in 1..16"):
        Quantizer.uniform(bits, -1.0, 1.0)


@pytest.mark.parametrize(("thresholds", "match"), [
    ([1.0, 0.0], "strictly increasing"),
    ([0.0, 0.0], "strictly increasing"),
    ([], "at least one"),
    ([0.0, math.inf], "finite"),
    ([math.nan], "finite"),
])
def test_invalid_thresholds_raise(thresholds, match):
    with pytest.raises(ValueError, match=match):
        Quantizer(thresholds)


def test_other_invalid_quantizer_inputs():
    with pytest.raises(ValueError, match="low < high"):
        Quantizer.uniform(2, 1.0, -1.0)
    with pytest.raises(ValueError, match="levels must have"):
        Quantizer([0.0], levels=[1.0])
    with pytest.raises(ValueError, match="each level must lie in its bin"):
        Quantizer([0.0], levels=[1.0, 2.0])
    with pytest.raises(ValueError, match="must not be constant"):
        Quantizer.from_data(np.ones(4), 3)
    with pytest.raises(ValueError, match="codes must lie in 0..1"):
        Quantizer.sign().bins(np.array([2]))
    with pytest.raises(TypeError, match="codes must be an integer array"):
        Quantizer.sign().bins(np.array([0.0]))
    with pytest.raises(ValueError, match="NaN"):
        Quantizer.sign().quantize(np.array([np.nan]))


# -- measure ------------------------------------------------------------------------------------
def test_measure_linear_and_quantized(xp):
    like = xp.zeros(1, dtype=xp.float64)
    A = ivd.operators.gaussian_matrix(30, 60, rng=ivd.random.Generator(0), like=like)
    x = ivd.random.Generator(1).normal((3, 60), like=like)
    y = measure(A, x, noise=0.1, rng=ivd.random.Generator(2))
    expected = x @ A.T + 0.1 * ivd.random.Generator(2).normal((3, 30), like=like)
    assert_close(y, expected, rtol=1e-12, atol=1e-12)
    op = ivd.operators.DenseMatrix(A)
    assert_close(measure(op, x, GaussianNoise(0.1), rng=ivd.random.Generator(2)), expected,
                 rtol=1e-12, atol=1e-12)
    q = Quantizer.uniform(2, -1.0, 1.0)
    yq, (lower, upper) = measure(op, x, 0.1, q, rng=ivd.random.Generator(2))
    assert_close(yq, q.values(q.quantize(expected), like=expected))
    e = to_numpy(expected)
    assert np.all(to_numpy(lower) <= e) and np.all(e < to_numpy(upper))
    assert_close(measure(op, x), x @ A.T, rtol=1e-12, atol=1e-12)


def test_measure_with_an_image_operator(xp):
    x = from_numpy(np.random.default_rng(0).random((2, 3, 8, 8)), xp)
    op = ivd.operators.SuperResolution(2, (3, 8, 8))
    y = measure(op, x, noise=0.05, rng=ivd.random.Generator(0))
    assert tuple(y.shape) == (2, 3, 4, 4) and ivd._array_api.namespace(y) == xp


def test_measure_rejects_bad_inputs():
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 4\)"):
        measure(np.ones((2, 4)), np.ones(5))
    with pytest.raises(TypeError, match="op must be a LinearOperator or a matrix"):
        measure("A", np.ones(5))
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        measure(np.ones((2, 4)), np.ones(4), noise=-1.0)
