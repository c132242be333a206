"""invdiff.processes: schedules, derivatives, prediction conversions, re-expression."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close, from_numpy
from hypothesis import given
from hypothesis import strategies as st

import invdiff as ivd
from invdiff.processes import PREDICTIONS, VE, VP, Flow, convert, predict, reexpress

PROCESSES = {
    "vp-linear": lambda: VP.linear(T=1000),
    "vp-cosine": lambda: VP.cosine(T=1000),
    "ve": lambda: VE.geometric(50.0, 0.01, 232),
    "flow": lambda: Flow.rectified(),
}


def _interior(proc, u: float) -> float:
    """A time strictly inside (t_min, t_max) at fraction u in (0, 1)."""
    return proc.t_min + (proc.t_max - proc.t_min) * u


# -- schedules ------------------------------------------------------------------------
def test_vp_linear_matches_ddpm():
    proc = VP.linear(T=1000)
    betas = np.linspace(1e-4, 0.02, 1000)
    np.testing.assert_allclose(proc.betas, betas, rtol=1e-12)
    ab = np.cumprod(1 - betas)
    for k in (1, 2, 500, 1000):
        assert proc.alpha_bar(k) == pytest.approx(ab[k - 1], rel=1e-12)
        assert proc.a(float(k)) ** 2 == pytest.approx(ab[k - 1], rel=1e-12)
        assert proc.alpha(k) == pytest.approx(1 - betas[k - 1])
    assert proc.alpha_bar(0) == 1.0 and proc.a(0.0) == 1.0 and proc.b(0.0) == 0.0
    k = 300
    expected = betas[k - 1] * (1 - ab[k - 2]) / (1 - ab[k - 1])
    assert proc.beta_tilde(k) == pytest.approx(expected, rel=1e-12)


def test_vp_cosine_schedule():
    proc = VP.cosine(T=1000)
    f = lambda k: math.cos((k / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert proc.alpha_bar(500) == pytest.approx(f(500) / f(0), rel=1e-9)
    assert max(proc.betas) <= 0.999


def test_ve_geometric_levels():
    ve = VE.geometric(50.0, 0.01, 232)
    s = np.array(ve.sigmas)
    assert len(s) == 232 and s[0] == 50.0 and s[-1] == 0.01
    np.testing.assert_allclose(s[1:] / s[:-1], (0.01 / 50.0) ** (1 / 231), rtol=1e-10)
    grid = ve.time_grid(4)
    np.testing.assert_allclose(grid, 50.0 * (0.01 / 50.0) ** (np.arange(5) / 4))


def test_flow_and_time_grids():
    f = Flow.rectified()
    assert (f.a(0.3), f.b(0.3), f.da(0.3), f.db(0.3)) == (0.7, 0.3, -1.0, 1.0)
    assert VP.linear(T=10).time_grid(5) == [10.0, 8.0, 6.0, 4.0, 2.0, 0.0]


@pytest.mark.parametrize("name", PROCESSES)
@given(u=st.floats(0.001, 0.999))
def test_derivatives_match_finite_differences(name, u):
    proc = PROCESSES[name]()
    t = _interior(proc, u)
    if isinstance(proc, VP):  # log alphabar is piecewise linear: stay inside one interval
        t = math.floor(t) + 0.5
    h = 1e-6 * (proc.t_max - proc.t_min)
    assert proc.da(t) == pytest.approx((proc.a(t + h) - proc.a(t - h)) / (2 * h), rel=1e-5,
                                       abs=1e-9)
    assert proc.db(t) == pytest.approx((proc.b(t + h) - proc.b(t - h)) / (2 * h), rel=1e-5,
                                       abs=1e-9)


@pytest.mark.parametrize("name", PROCESSES)
@given(u=st.floats(0.001, 0.999))
def test_t_of_ratio_inverts_ratio(name, u):
    proc = PROCESSES[name]()
    t = _interior(proc, u)
    assert proc.t_of_ratio(proc.ratio(t)) == pytest.approx(t, rel=1e-9, abs=1e-9)


@given(t=st.floats(0.0, 1000.0))
def test_vp_is_variance_preserving(t):
    proc = VP.linear()
    assert proc.a(t) ** 2 + proc.b(t) ** 2 == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", PROCESSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_array_times_keep_namespace_and_dtype(xp, name, dtype):
    proc = PROCESSES[name]()
    ts = [_interior(proc, u) for u in (0.1, 0.45, 0.8)]
    t = from_numpy(np.array(ts), xp, dtype=getattr(xp, dtype))
    rtol = 1e-5 if dtype == "float32" else 1e-10
    for f in (proc.a, proc.b, proc.da, proc.db):
        expected = from_numpy(np.array([f(v) for v in ts]), xp, dtype=getattr(xp, dtype))
        assert_close(f(t), expected, rtol=rtol, atol=1e-6 if dtype == "float32" else 0)


def test_bad_schedules():
    with pytest.raises(ValueError, match="betas"):
        VP([0.1, 1.5])
    with pytest.raises(ValueError, match="T must be a positive integer"):
        VP.linear(T=0)
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        VE(0.1, 1.0)
    with pytest.raises(ValueError, match="L must be at least 2"):
        VE.geometric(1.0, 0.1, 1)
    with pytest.raises(ValueError, match="step k must be an integer in 1..10"):
        VP.linear(T=10).beta(11)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        Flow().time_grid(2.5)


# -- conversions ----------------------------------------------------------------------
@pytest.mark.parametrize("name", PROCESSES)
@given(u=st.floats(0.01, 0.99))
def test_conversions_are_consistent_with_the_definitions(name, u):
    proc = PROCESSES[name]()
    t = _interior(proc, u)
    rng = np.random.default_rng(0)
    x0, eps = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    a, b, da, db = proc.a(t), proc.b(t), proc.da(t), proc.db(t)
    x_t = a * x0 + b * eps
    truth = {"eps": eps, "x0": x0, "score": -eps / b, "velocity": da * x0 + db * eps}
    for src in PREDICTIONS:
        for dst in PREDICTIONS:
            out = convert(truth[src], src, dst, x_t, t, proc)
            np.testing.assert_allclose(out, truth[dst], rtol=1e-7, atol=1e-7 * (1 + 1 / b),
                                       err_msg=f"{src} -> {dst} at t={t}")


@pytest.mark.parametrize("name", PROCESSES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_eps_x0_score_velocity(xp, name, dtype):
    proc = PROCESSES[name]()
    rng = np.random.default_rng(1)
    for u in (0.05, 0.5, 0.95):
        t = _interior(proc, u)
        x_t = from_numpy(rng.normal(size=(2, 5)), xp, dtype=getattr(xp, dtype))
        eps = from_numpy(rng.normal(size=(2, 5)), xp, dtype=getattr(xp, dtype))
        x0 = ivd.processes.to_x0(eps, "eps", x_t, t, proc)
        score = ivd.processes.to_score(x0, "x0", x_t, t, proc)
        vel = ivd.processes.to_velocity(score, "score", x_t, t, proc)
        back = ivd.processes.to_eps(vel, "velocity", x_t, t, proc)
        # Each step is affine with coefficients up to ~1/a, 1/b: float tolerance scaled by them.
        cond = 1 + abs(1 / proc.a(t)) + abs(proc.b(t) / proc.a(t)) + abs(1 / proc.b(t))
        tol = (1e-6 if dtype == "float32" else 1e-13) * cond
        assert_close(back, eps, rtol=tol, atol=tol)


def test_convert_rejects_unknown_kind():
    with pytest.raises(ValueError, match=r"dst must be one of .*received 'noise'"):
        convert(np.zeros(1), "eps", "noise", np.zeros(1), 0.5, Flow())
    with pytest.raises(ValueError, match=r"src must be one of"):
        convert(np.zeros(1), "v", "eps", np.zeros(1), 0.5, Flow())


# -- re-expression: one trained model, three processes ---------------------------------
def _gmm(process, xp=None, prediction="eps"):
    import array_api_compat.numpy as npx

    xp = npx if xp is None else xp
    rng = np.random.default_rng(2)
    K, d = 8, 3
    means = rng.normal(size=(K, d))
    B = rng.normal(size=(K, d, d))
    covs = B @ B.transpose(0, 2, 1) / d + 0.05 * np.eye(d)
    w = rng.uniform(0.5, 1.5, K)
    return ivd.priors.GaussianMixturePrior(*(from_numpy(v, xp) for v in (w, means, covs)),
                                           process=process, prediction=prediction)


@pytest.mark.parametrize("target", ["ve", "flow", "vp-cosine"])
def test_vp_model_reexpressed_equals_exact_score(xp, target):
    vp = VP.linear()
    proc = PROCESSES[target]()
    model = reexpress(_gmm(vp, xp), proc)
    exact = _gmm(proc, xp)
    x = from_numpy(np.random.default_rng(3).normal(size=(6, 3)) * 2, xp)
    # Times inside the VP's reach (noise-to-signal ratio below sqrt(1/alphabar_T - 1) ~ 157).
    for u in (0.02, 0.3, 0.7):
        t = _interior(proc, u)
        assert_close(predict(model, x, t, "score"), exact.score(x, t), rtol=1e-8, atol=1e-10)
        assert_close(model(x, t), exact(x, t), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kind", PREDICTIONS)
def test_reexpressed_vjp_and_other_directions(kind):
    ve, flow, vp = VE.geometric(50.0, 0.01, 10), Flow(), VP.linear()
    x = np.random.default_rng(4).normal(size=(5, 3))
    c = np.random.default_rng(5).normal(size=(5, 3))
    for src, dst, t in [(ve, vp, 400.0), (flow, ve, 1.7), (flow, vp, 250.0), (vp, flow, 0.6)]:
        model = reexpress(_gmm(src, prediction=kind), dst)
        exact = _gmm(dst)
        pred, pulled = model.vjp(x, t, c)
        want_pred, want_pulled = exact.vjp(x, t, c)
        np.testing.assert_allclose(pred, want_pred, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(pulled, want_pulled, rtol=1e-7, atol=1e-9)


def test_predict_uses_model_prediction_kind():
    proc = VP.linear()
    x = np.random.default_rng(6).normal(size=(4, 3))
    ref = _gmm(proc, prediction="eps")
    for kind in PREDICTIONS:
        model = _gmm(proc, prediction=kind)
        np.testing.assert_allclose(predict(model, x, 123.0, "eps"), ref(x, 123.0), rtol=1e-9,
                                   atol=1e-12)
