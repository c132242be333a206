"""No silent wrong answers: inputs that used to give garbage now give the exact answer or an
error naming the argument, on every backend (the ``xp`` fixture)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close, to_numpy

import invdiff as ivd
from invdiff.processes import VE, VP, Flow

VP_ = VP.linear(T=1000)
METHODS = ("a", "b", "da", "db")


def _ints(xp, values):
    return xp.asarray(values, dtype=xp.int64)


# -- integer times are exact ------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_integer_times_equal_float_times(xp, method):
    steps = list(range(0, 1001, 37)) + [1, 999, 1000]
    f = getattr(VP_, method)
    got = f(_ints(xp, steps))
    want = f(xp.asarray(steps, dtype=xp.float64))
    assert got.dtype == xp.float64
    assert np.array_equal(to_numpy(got), to_numpy(want))  # bit-identical, not just close
    for k in steps[:5]:  # 0-d integer arrays, one step at a time (the `for t in arange` loop)
        one = f(xp.asarray(k, dtype=xp.int64))
        assert tuple(one.shape) == ()
        assert float(one) == pytest.approx(f(float(k)), rel=1e-14)  # libm vs backend exp


def test_numpy_integer_scalar_time_is_the_ddpm_step():
    # the reported bug: tables cast to int64 gave a = 1, b = 0
    a, b = VP_.a(np.int64(150)), VP_.b(np.int64(150))
    assert a == pytest.approx(VP_.a(150.0), rel=1e-14)
    assert b == pytest.approx(VP_.b(150.0), rel=1e-14)
    assert 0.8 < a < 0.9 and b > 0.4
    assert a * a == pytest.approx(VP_.alpha_bar(150), rel=1e-12)
    for t in np.arange(1000):
        assert VP_.a(t) == pytest.approx(VP_.a(float(t)), rel=1e-14)


def test_torch_long_time_is_exact():
    torch = pytest.importorskip("torch")
    t = torch.arange(0, 1001, 50)
    got = VP_.b(t)
    assert got.dtype == torch.float64
    assert np.array_equal(got.numpy(), VP_.b(t.double()).numpy())
    assert float(VP_.a(torch.tensor(150))) == pytest.approx(VP_.a(150.0), rel=1e-14)


@pytest.mark.parametrize("proc", [VE.geometric(5.0, 0.01, 10), Flow.rectified()],
                         ids=["VE", "Flow"])
def test_integer_times_on_other_processes(xp, proc):
    t = _ints(xp, [0, 1])
    for m in METHODS:
        got = getattr(proc, m)(t)
        assert xp.isdtype(got.dtype, "real floating")
        assert_close(got, getattr(proc, m)(xp.asarray([0.0, 1.0], dtype=xp.float64)))


# -- per-sample time arrays work on every backend -----------------------------------------
@pytest.mark.parametrize("shape", [(), (3,), (3, 1), (2, 2)])
@pytest.mark.parametrize("method", METHODS)
def test_per_sample_times_any_shape(xp, shape, method):
    rng = np.random.default_rng(0)
    t_np = rng.uniform(0.0, 1000.0, size=shape)
    got = getattr(VP_, method)(xp.asarray(t_np, dtype=xp.float64))
    assert tuple(got.shape) == shape
    want = np.vectorize(getattr(VP_, method))(t_np)
    np.testing.assert_allclose(to_numpy(got), want, rtol=1e-12)


def test_gaussian_prior_per_sample_times_on_vp(xp):
    prior = ivd.priors.GaussianPrior(xp.zeros(2, dtype=xp.float64),
                                     xp.eye(2, dtype=xp.float64), process=VP_)
    x = xp.reshape(xp.arange(6, dtype=xp.float64), (3, 2))
    t = xp.asarray([10.0, 500.0, 990.0], dtype=xp.float64)
    got = prior(x, t)
    for i, ti in enumerate([10.0, 500.0, 990.0]):
        assert_close(got[i:i + 1, :], prior(x[i:i + 1, :], ti), rtol=1e-12)
    assert_close(prior(x, xp.asarray([10, 500, 990], dtype=xp.int64)), got, rtol=1e-12)


# -- times outside the domain are refused, never clamped ----------------------------------
@pytest.mark.parametrize("t", [-1.0, 1000.5, 5000, math.nan, -1e-6])
def test_vp_time_outside_domain(t):
    for m in METHODS:
        with pytest.raises(ValueError, match=r"t must lie in \[0, 1000\]"):
            getattr(VP_, m)(t)


def test_array_times_outside_domain(xp):
    for proc, bad in ((VP_, [0.0, 1001.0]), (Flow.rectified(), [0.5, 1.5]),
                      (VE.geometric(), [-0.1, 1.0]), (VP_, [math.nan, 3.0])):
        with pytest.raises(ValueError, match="t must lie in"):
            proc.b(xp.asarray(bad, dtype=xp.float64))


def test_negative_ve_level_and_flow_time():
    with pytest.raises(ValueError, match=r"t must lie in \[0, inf\)"):
        VE.geometric().b(-0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        Flow.rectified().a(1.2)
    assert Flow.rectified().a(-1e-17) == 1.0  # rounding of a time grid is not an error


def test_bad_time_types(xp):
    with pytest.raises(TypeError, match="not a bool"):
        VP_.a(True)
    with pytest.raises(TypeError, match="real"):
        VP_.a(xp.asarray([True, False]))
    with pytest.raises(TypeError, match="not a str"):
        VP_.a("10")


def test_flow_ratio_at_one_is_infinite():
    assert Flow.rectified().ratio(1.0) == math.inf


# -- recipes: counts, weights, non-finite inputs ------------------------------------------
def _vp_setup(xp):
    prior = ivd.priors.GaussianPrior(xp.zeros(4, dtype=xp.float64),
                                     xp.eye(4, dtype=xp.float64), process=VP_)
    A = xp.asarray(np.eye(2, 4), dtype=xp.float64)
    return prior, ivd.operators.DenseMatrix(A), xp.asarray([0.5, -0.5], dtype=xp.float64)


def test_fractional_sample_count_is_refused(xp):
    prior, op, y = _vp_setup(xp)
    for n in (2.5, 0, -1, True):
        with pytest.raises((ValueError, TypeError), match="n must be a positive integer"):
            ivd.methods.dmps(prior, op, y, 0.1, n=n, steps=3, rng=0)
    x = ivd.methods.dmps(prior, op, y, 0.1, n=2.0, steps=3, rng=0, clip_x0=None)
    assert tuple(x.shape) == (2, 4)  # an integral float is a count


@pytest.mark.parametrize("name, value", [("lam", -1.0), ("lam", math.nan), ("steps", 0),
                                         ("steps", 2.5), ("guidance_at", "x0")])
def test_dmps_hyperparameters(xp, name, value):
    prior, op, y = _vp_setup(xp)
    kw = {"steps": 3, name: value}
    with pytest.raises((ValueError, TypeError), match=name):
        ivd.methods.dmps(prior, op, y, 0.1, rng=0, **kw)


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_measurement_and_start_are_refused(xp, bad):
    prior, op, y = _vp_setup(xp)
    y_bad = xp.asarray([0.5, bad], dtype=xp.float64)
    x_bad = xp.asarray([[0.0, bad, 0.0, 0.0]], dtype=xp.float64)
    for method in (ivd.methods.dmps, ivd.methods.pigdm):
        with pytest.raises(ValueError, match="y must be finite"):
            method(prior, op, y_bad, 0.1, steps=3, rng=0)
        with pytest.raises(ValueError, match="x_init must be finite"):
            method(prior, op, y, 0.1, steps=3, rng=0, x_init=x_bad)
    with pytest.raises(ValueError, match="y must be finite"):
        ivd.methods.dps(prior, op, y_bad, steps=3, rng=0)


def test_quantized_bins_keep_infinite_edges_but_not_nan(xp):
    ve = VE.geometric(5.0, 0.01, 4)
    prior = ivd.priors.GaussianPrior(xp.zeros(4, dtype=xp.float64),
                                     xp.eye(4, dtype=xp.float64), process=ve)
    A = xp.asarray([[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]], dtype=xp.float64)
    lo = xp.asarray([0.0, -math.inf], dtype=xp.float64)
    hi = xp.asarray([math.inf, 0.0], dtype=xp.float64)
    x = ivd.methods.qcs_sgm(prior, A, lo, hi, 0.1, rng=0, n=2)  # ±inf edges are legitimate
    assert bool(xp.all(xp.isfinite(x)))
    with pytest.raises(ValueError, match="lower must not contain NaN"):
        ivd.methods.qcs_sgm(prior, A, xp.asarray([math.nan, 0.0], dtype=xp.float64), hi, 0.1,
                            rng=0)
    for name, kw in (("gamma", {"gamma": -1.0}), ("eps", {"eps": 0.0}),
                     ("steps_each", {"steps_each": 0})):
        with pytest.raises(ValueError, match=name):
            ivd.methods.qcs_sgm(prior, A, lo, hi, 0.1, rng=0, **kw)
    x_inf = xp.asarray([[math.inf, 0.0, 0.0, 0.0]], dtype=xp.float64)
    with pytest.raises(ValueError, match="x_init must be finite"):
        ivd.methods.qcs_sgm(prior, A, lo, hi, 0.1, rng=0, x_init=x_inf)


def test_flow_recipes_start_and_steps(xp):
    prior = ivd.priors.GaussianPrior(xp.zeros(4, dtype=xp.float64),
                                     xp.eye(4, dtype=xp.float64), process=Flow.rectified())
    op = ivd.operators.DenseMatrix(xp.asarray(np.eye(2, 4), dtype=xp.float64))
    y = xp.asarray([0.5, -0.5], dtype=xp.float64)
    with pytest.raises(ValueError, match="steps must be >= 2 when t_start is not given"):
        ivd.methods.dmps_flow(prior, op, y, 0.1, steps=1, rng=0)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        ivd.methods.dmps_flow(prior, op, y, 0.1, steps=0, rng=0)
    with pytest.raises(ValueError, match="t_start must be finite"):
        ivd.methods.ot_ode(prior, op, y, 0.1, t_start=math.nan, rng=0)
    with pytest.raises(ValueError, match=r"t_start must lie in \(0, 1\)"):
        ivd.methods.ot_ode(prior, op, y, 0.1, t_start=1.0, rng=0)
    with pytest.raises(TypeError, match="t_start must be given"):
        ivd.methods.ot_ode(prior, op, y, 0.1, t_start=None, rng=0)
    # steps=1 with an explicit start is one Euler step
    x = ivd.methods.dmps_flow(prior, op, y, 0.1, steps=1, t_start=0.5, rng=0, n=2)
    assert tuple(x.shape) == (2, 4)


def test_recipes_never_write_into_inputs_and_repeat_bit_for_bit():
    prior, op, y = _vp_setup(__import__("array_api_compat.numpy", fromlist=["x"]))
    y.flags.writeable = False
    x0 = np.random.default_rng(0).standard_normal((2, 4))
    x0.flags.writeable = False
    runs = [ivd.methods.dmps(prior, op, y, 0.1, steps=5, rng=3, x_init=x0, clip_x0=None)
            for _ in range(2)]
    assert runs[0].tobytes() == runs[1].tobytes()
    runs = [ivd.methods.pigdm(prior, op, y, 0.1, steps=5, rng=3, n=2) for _ in range(2)]
    assert runs[0].tobytes() == runs[1].tobytes()


# -- the torch adapter: integer inputs are not "predictions" --------------------------------
def test_torch_score_model_refuses_integer_input():
    torch = pytest.importorskip("torch")
    from invdiff_models.adapter import TorchScoreModel

    model = TorchScoreModel(torch.nn.Conv2d(1, 1, 1), VP_, "eps", forward=lambda n, x, t: n(x))
    with pytest.raises(TypeError, match="x_t must have a real floating dtype"):
        model(np.zeros((1, 1, 4, 4), dtype=np.int64), 10)
    with pytest.raises(TypeError, match="x_t must have a real floating dtype"):
        model(torch.zeros((1, 1, 4, 4), dtype=torch.long), 10)
    out = model(np.zeros((1, 1, 4, 4), dtype=np.float32), np.int64(10))  # integer t is fine
    assert out.dtype == np.float32
