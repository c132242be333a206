"""DiffPIR, DAPS and RED-diff on exact Gaussian priors, where the answer is known in closed form.

* DiffPIR is affine in its state and its noise on a Gaussian prior: the law of its output
  (mean and covariance) follows from a recursion with dense matrices, independent of the
  SVD data step; with lambda = 1 on a white prior its mean is the MAP.
* DAPS: the posterior mean within Monte Carlo error (linear-Gaussian and 1-bit quantized,
  the latter against importance sampling of the exact posterior).
* RED-diff: with the paper's random time order its stationary point is the minimiser of a
  quadratic, in closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import from_numpy, to_numpy
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import log_ndtr

import invdiff as ivd
from invdiff.methods._fidelity import SVDProximal
from invdiff.methods.diffpir import quad_times
from invdiff.methods.red_diff import reference_times

D = 4
VP = ivd.processes.VP.linear()


def _problem(seed=1, white=False):
    """A correlated (or white) Gaussian prior, a generic 2 x 4 A and a measurement."""
    rs = np.random.default_rng(seed)
    if white:
        S, m = np.eye(D), np.zeros(D)
    else:
        L = rs.normal(size=(D, D))
        S, m = L @ L.T / D + 0.3 * np.eye(D), 0.5 * rs.normal(size=D)
    A = rs.normal(size=(2, D))
    return ivd.priors.GaussianPrior(m, S, process=VP), S, m, A


# -- DiffPIR ---------------------------------------------------------------------------------
def _diffpir_law(S, m, A, y, sigma_y, lam, zeta, steps):
    """Exact mean and covariance of DiffPIR's output on the prior N(m, S) (no clipping).

    Every step is affine: x0_hat = F x + f (Tweedie, exact), the data step
    (A^T A + rho I)^{-1}(A^T y + rho x0_hat) solved densely, then the re-noising.
    """
    I = np.eye(D)
    mu, P = np.zeros(D), I.copy()  # x_T ~ N(0, I)
    times = quad_times(VP.T, steps)
    for t, s in zip(times, times[1:] + [0], strict=True):
        a, b = math.sqrt(VP.alpha_bar(t)), math.sqrt(1 - VP.alpha_bar(t))
        Ci = np.linalg.inv(a * a * S + b * b * I)
        F, f = a * S @ Ci, m - a * a * S @ Ci @ m
        rho = lam * sigma_y**2 * (a / b) ** 2
        K = np.linalg.inv(A.T @ A + rho * I)
        G, g = rho * K @ F, rho * K @ f + K @ A.T @ y
        if s == 0:
            return G @ mu + g, G @ P @ G.T
        a_s, b_s = math.sqrt(VP.alpha_bar(s)), math.sqrt(1 - VP.alpha_bar(s))
        c = b_s * math.sqrt(1 - zeta) / b
        H, h = a_s * G + c * (I - a * G), a_s * g - c * a * g
        mu, P = H @ mu + h, H @ P @ H.T + b_s**2 * zeta * I
    raise AssertionError("unreachable")


@pytest.mark.parametrize("lam,zeta", [(1.75, 0.3), (0.5, 1.0), (4.0, 0.0)])
def test_diffpir_output_follows_its_exact_gaussian_law(lam, zeta):
    """Sample mean within 4 Monte Carlo standard errors of the exact law's mean; variances
    within 15 %. A wrong rho_t (e.g. deepinv's 2 rho_t), a wrong re-noising weight or a wrong
    time grid moves the mean by several standard errors (checked by hand: lam -> 2 lam
    shifts it by > 0.05 here, the bound is 0.04)."""
    prior, S, m, A = _problem()
    y, sigma_y, n = np.array([0.7, -0.3]), 0.3, 4000
    x, info = ivd.methods.diffpir(prior, A, y, sigma_y, rng=0, n=n, steps=20, lam=lam,
                                  zeta=zeta, clip_x0=None, return_info=True)
    mean, cov = _diffpir_law(S, m, A, y, sigma_y, lam, zeta, steps=20)
    x = to_numpy(x)
    assert info["nfe"] == 20
    se = np.sqrt(np.diag(cov) / n)
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mean), 4 * se + 1e-9)
    np.testing.assert_allclose(x.var(axis=0), np.diag(cov), rtol=0.15, atol=1e-6)


@pytest.mark.parametrize("lam", [1.0, 4.0])
def test_diffpir_fixed_point_is_the_map_on_a_white_prior(lam):
    """The data step is the MAP step of N(x0_hat, r_t^2 I) x N(y; Ax, lam sigma_y^2): on a
    white prior with A = [I 0] the output mean is the MAP y / (1 + lam sigma_y^2) up to
    O(r_t^2) of the late steps (measured within 0.01); lam = 1 is the true posterior mean.
    The two lambdas' answers are 0.09 apart."""
    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    A, y, sigma_y = np.eye(2, D), np.array([0.5, -0.5]), 0.3
    map_ = np.concatenate([y / (1 + lam * sigma_y**2), np.zeros(2)])
    if lam == 1.0:
        np.testing.assert_allclose(map_, to_numpy(prior.posterior(A, y, sigma_y).mean))
    mean, _ = _diffpir_law(np.eye(D), np.zeros(D), A, y, sigma_y, lam, 1.0, steps=100)
    np.testing.assert_allclose(mean, map_, atol=0.01)
    x = to_numpy(ivd.methods.diffpir(prior, A, y, sigma_y, rng=1, n=2000, lam=lam, zeta=1.0,
                                     clip_x0=None))
    np.testing.assert_allclose(x.mean(axis=0), map_, atol=0.05)
    np.testing.assert_allclose(x.mean(axis=0)[:2], map_[:2], atol=0.015)


def _operators():
    rs = np.random.default_rng(3)
    ops = ivd.operators
    return [ops.DenseMatrix(rs.normal(size=(3, 5))),
            ops.Inpainting(rs.random((1, 4, 4)) < 0.5),
            ops.SuperResolution(2, (1, 4, 4), "bicubic"),
            ops.SeparableBlur.gaussian((1, 6, 6), sigma=1.0, size=3),
            ops.Colorization((3, 2, 2))]


@given(k=st.integers(0, 4), log_rho=st.floats(-6.0, 3.0), seed=st.integers(0, 2**16))
def test_svd_proximal_map_solves_the_normal_equations(k, log_rho, seed):
    """(A^T A + rho I)^{-1}(A^T y + rho z) through the SVD = the dense solve, any operator."""
    op = _operators()[k]
    rs = np.random.default_rng(seed)
    z = rs.normal(size=op.in_shape)
    y = rs.normal(size=op.out_shape)
    rho = 10.0**log_rho
    N = math.prod(op.in_shape)
    Amat = np.stack([op.apply(e.reshape(op.in_shape)).ravel() for e in np.eye(N)], axis=1)
    want = np.linalg.solve(Amat.T @ Amat + rho * np.eye(N), Amat.T @ y.ravel() + rho * z.ravel())
    got = SVDProximal(op, y)(z, rho)
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-7, atol=1e-9 * (1 + 1 / rho))


# -- DAPS --------------------------------------------------------------------------------------
# Langevin run to equilibrium at every level (constant step, 25 levels): the tests check the
# annealing and the likelihood, not how far the reference's short chains get.
DAPS_EQ = {"annealing_steps": 25, "lr": 3e-3, "lr_min_ratio": 1.0, "langevin_steps": 100,
           "tau": None}


def test_daps_recovers_the_posterior_mean_on_a_white_prior():
    """Mean of 1000 DAPS samples within 4 standard errors + 0.02 of the exact posterior mean
    (measured: within 0.01). Ignoring y (mean 0) misses by 0.9 or more.

    The slack covers DAPS's own bias: its N(ODE(x_t), sigma^2) stands in for p(x0 | x_t),
    whose mean is Tweedie's x_t / (1 + sigma^2) on this prior, not the ODE's
    x_t / sqrt(1 + sigma^2); where the prior carries weight the sample mean overshoots the
    posterior mean (measured 0.08-0.11 with sigma_y = 1). Here the measurement dominates."""
    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    A = np.random.default_rng(1).normal(size=(2, D))
    y, sigma_y, n = np.array([2.0, -1.5]), 0.3, 1000
    post = to_numpy(prior.posterior(A, y, sigma_y).mean)
    x, info = ivd.methods.daps(prior, A, y, sigma_y, rng=0, n=n, return_info=True, **DAPS_EQ)
    x = to_numpy(x)
    assert info["nfe"] == 25 * 5 and np.all(np.isfinite(x))
    bound = 4 * x.std(axis=0) / math.sqrt(n) + 0.02
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - post), bound)
    assert np.abs(post).max() > 0.9


def _one_bit_posterior_mean(A, lower, upper, sigma, draws=400_000):
    """E[x | y] for x ~ N(0, I) and 1-bit y, by importance weighting of prior draws."""
    x = np.random.default_rng(5).normal(size=(draws, A.shape[1]))
    z = x @ A.T
    logw = np.where(np.isinf(upper), log_ndtr((z - lower) / sigma),
                    log_ndtr((upper - z) / sigma)).sum(axis=1)
    w = np.exp(logw - logw.max())
    return (w[:, None] * x).sum(axis=0) / w.sum()


def test_quantized_daps_recovers_the_one_bit_posterior_mean():
    """1-bit y = sign(Ax + n), 3 measurements of a white 4-d prior: the mean of 500 DAPS
    samples lies within 0.15 (4 standard errors) of the importance-sampling posterior mean,
    whose entries reach 0.9; dropping the likelihood misses by 0.9, flipping its sign by 1.8.

    Loose on purpose: the answer depends on the Langevin budget (DAPS_EQ's step 3e-3
    overshoots to 1.07 where the truth is 0.91, the overdispersion of the N(x0_hat,
    sigma^2) approximation meeting the sign constraints; at 1e-3, used here, within 0.05)."""
    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    A = np.random.default_rng(2).normal(size=(3, D))
    lower, upper = np.array([0.0, -np.inf, 0.0]), np.array([np.inf, 0.0, np.inf])
    sigma = 0.3
    want = _one_bit_posterior_mean(A, lower, upper, sigma)
    assert np.abs(want).max() > 0.9
    x = to_numpy(ivd.methods.daps(prior, A, (lower, upper), sigma, rng=0, n=500,
                                  **{**DAPS_EQ, "lr": 1e-3}))
    np.testing.assert_allclose(x.mean(axis=0), want, atol=0.15)
    z = x @ A.T
    assert np.mean((z >= 0) == (lower == 0.0)) > 0.8


def test_quantized_daps_with_narrow_bins_is_gaussian_daps():
    """Bins [y - w/2, y + w/2] of width w -> 0 give the Gaussian likelihood: with the same
    random stream the two runs agree to O(w^2) (checks the scale of the quantized gradient,
    E[n | bin] / sigma^2, not only its direction)."""
    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    A = np.random.default_rng(4).normal(size=(3, D))
    y, sigma, w = np.array([0.8, -0.4, 1.1]), 0.4, 1e-4
    kw = {"rng": 0, "n": 50, "annealing_steps": 10, "langevin_steps": 20, "lr": 1e-3,
          "tau": None}
    gauss = to_numpy(ivd.methods.daps(prior, A, y, sigma, **kw))
    binned = to_numpy(ivd.methods.daps(prior, A, (y - w / 2, y + w / 2), sigma, **kw))
    np.testing.assert_allclose(binned, gauss, atol=1e-6)


def test_daps_tau_sharpens_the_likelihood():
    """tau < sigma_y weights the Gaussian likelihood by (sigma_y / tau)^2: a sharp likelihood
    (the default is the reference's 0.0071) pulls A x onto y much closer than the exact one."""
    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    A, y = np.eye(2, D), np.array([1.0, -1.0])
    kw = {"rng": 0, "n": 200, "annealing_steps": 20, "langevin_steps": 50}
    exact = to_numpy(ivd.methods.daps(prior, A, y, 0.5, tau=None, **kw))
    sharp = to_numpy(ivd.methods.daps(prior, A, y, 0.5, tau=0.05, **kw))
    err = [np.abs((s @ A.T).mean(axis=0) - y).max() for s in (exact, sharp)]
    assert err[1] < 0.5 * err[0]


# -- RED-diff ----------------------------------------------------------------------------------
def _red_diff_fixed_point(S, m, A, y, lam, steps):
    """Zero of the expected RED-diff gradient with t uniform on the grid:
    A^T (A mu - y) / M + (lam / N) mean_t[b_t^2 C_t^{-1}] (mu - m) = 0,  C_t = a_t^2 S + b_t^2 I,
    since E[eps_hat - eps] = a_t b_t C_t^{-1} (mu - m) for the exact Gaussian denoiser."""
    M = A.shape[0]
    R = np.zeros((D, D))
    times = reference_times(VP.T, steps)
    for t in times:
        ab = VP.alpha_bar(t)
        R += (1 - ab) * np.linalg.inv(ab * S + (1 - ab) * np.eye(D))
    R *= lam / D / len(times)
    return np.linalg.solve(A.T @ A / M + R, A.T @ y / M + R @ m)


@pytest.mark.parametrize("lam", [0.25, 4.0])
def test_red_diff_random_schedule_reaches_its_closed_form_fixed_point(lam):
    """Mean of 200 runs within 0.02 of the closed-form stationary point (measured 0.004);
    the two lambdas' fixed points are 0.15 or more apart, so a wrong weight fails."""
    prior, S, m, A = _problem()
    y = np.array([0.7, -0.3])
    x, info = ivd.methods.red_diff(prior, A, y, rng=0, n=200, lam=lam, lr=0.02,
                                   schedule="random", return_info=True)
    assert info["nfe"] == 1000 and info["schedule"] == "random"
    want = _red_diff_fixed_point(S, m, A, y, lam, 1000)
    np.testing.assert_allclose(to_numpy(x).mean(axis=0), want, atol=0.02)
    other = _red_diff_fixed_point(S, m, A, y, 4.25 - lam, 1000)
    assert np.abs(other - want).max() > 0.1


def test_red_diff_starts_from_the_pseudo_inverse_and_fits_y():
    """Default start A^+ y (the reference); the descending run keeps A mu close to y."""
    prior, _, _, A = _problem(white=True)
    y = np.array([0.7, -0.3])
    x = to_numpy(ivd.methods.red_diff(prior, A, y, rng=0, steps=50))
    np.testing.assert_allclose(x @ A.T, y, atol=0.1)
    x0 = to_numpy(ivd.methods.red_diff(prior, A, y, rng=0, steps=1, lr=1e-12))
    np.testing.assert_allclose(x0, np.linalg.pinv(A) @ y, atol=1e-9)


# -- shared: backends, counting, errors ---------------------------------------------------------
def _small_calls(prior, op, y):
    return {
        "diffpir": lambda: ivd.methods.diffpir(prior, op, y, 0.1, rng=0, n=3, steps=5,
                                               clip_x0=None, return_info=True),
        "daps": lambda: ivd.methods.daps(prior, op, y, 0.1, rng=0, n=3, annealing_steps=3,
                                         ode_steps=2, langevin_steps=2, return_info=True),
        "red_diff": lambda: ivd.methods.red_diff(prior, op, y, rng=0, n=3, steps=4,
                                                 return_info=True),
    }


@pytest.mark.parametrize("name,nfe", [("diffpir", 5), ("daps", 6), ("red_diff", 4)])
def test_methods_stay_on_the_callers_backend(xp, name, nfe):
    mean = from_numpy(np.zeros(D), xp)
    prior = ivd.priors.GaussianPrior(mean, from_numpy(np.eye(D), xp), process=VP)
    op = ivd.operators.DenseMatrix(from_numpy(np.eye(2, D), xp))
    y = from_numpy(np.array([0.5, -0.5]), xp)
    x, info = _small_calls(prior, op, y)[name]()
    assert type(x) is type(mean) and x.dtype == mean.dtype and tuple(x.shape) == (3, D)
    assert info["nfe"] == nfe and info["seconds"] > 0
    assert np.all(np.isfinite(to_numpy(x)))


def test_image_operators_and_a_vp_model_under_another_process():
    """Image-shaped SVD operators, and a VE-trained prior in the VP recipes (re-expressed)."""
    ve = ivd.processes.VE.geometric(80.0, 0.002, 50)
    prior = ivd.priors.GaussianPrior(np.zeros(16), np.eye(16), process=ve)
    flat = ivd.priors.GaussianPrior(np.zeros(16), np.eye(16), process=VP)
    op = ivd.operators.SuperResolution(2, (1, 4, 4))
    x_true = np.random.default_rng(0).normal(size=(1, 4, 4))
    y = op.apply(x_true)

    class Image:  # the flat prior seen as (1, 4, 4) images
        process, prediction = flat.process, flat.prediction

        def __call__(self, x, t):
            return flat(x.reshape(x.shape[:-3] + (16,)), t).reshape(x.shape)

    for model in (prior, Image()):
        if model is prior:  # the VE prior on flat vectors needs a flat operator
            A = np.stack([op.apply(e.reshape(1, 4, 4)).ravel() for e in np.eye(16)], axis=1)
            args = (A, y.ravel())
        else:
            args = (op, y)
        for fn in (ivd.methods.diffpir, ivd.methods.red_diff):
            kw = {"sigma_y": 0.05} if fn is ivd.methods.diffpir else {}
            out = fn(model, *args, rng=0, steps=10, **kw) if fn is ivd.methods.red_diff else \
                fn(model, *args, 0.05, rng=0, steps=10, clip_x0=None)
            assert np.all(np.isfinite(out))


@pytest.mark.parametrize("call,match", [
    (lambda p, A, y: ivd.methods.diffpir(p, A, y, 0.0), "sigma_y"),
    (lambda p, A, y: ivd.methods.diffpir(p, A, y, 0.1, zeta=1.5), "zeta"),
    (lambda p, A, y: ivd.methods.diffpir(p, A, y, 0.1, lam=-1.0), "lam"),
    (lambda p, A, y: ivd.methods.diffpir(p, A, y, 0.1, steps=0), "steps"),
    (lambda p, A, y: ivd.methods.diffpir(p, A, y[:1], 0.1), "y must have shape"),
    (lambda p, A, y: ivd.methods.diffpir(p, A, y, 0.1, clip_x0=(1.0, -1.0)), "clip_x0"),
    (lambda p, A, y: ivd.methods.daps(p, A, y, 0.1, lr=0.0), "lr"),
    (lambda p, A, y: ivd.methods.daps(p, A, y, 0.1, sigma_min=200.0), "sigma_min"),
    (lambda p, A, y: ivd.methods.daps(p, A, y, 0.1, langevin_steps=2.5), "langevin_steps"),
    (lambda p, A, y: ivd.methods.daps(p, A, (y, y, y), 0.1), "pair"),
    (lambda p, A, y: ivd.methods.daps(p, A, (y - 1, y), 0.1, tau=0.1), "tau"),
    (lambda p, A, y: ivd.methods.daps(p, A, (y, y - 1), 0.1), "lower must be <= upper"),
    (lambda p, A, y: ivd.methods.red_diff(p, A, y, schedule="up"), "schedule"),
    (lambda p, A, y: ivd.methods.red_diff(p, A, y, lr=-0.1), "lr"),
    (lambda p, A, y: ivd.methods.red_diff(p, A, y * np.nan), "NaN"),
])
def test_bad_input_names_the_argument(call, match):
    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    with pytest.raises((ValueError, TypeError), match=match):
        call(prior, np.eye(2, D), np.array([0.5, -0.5]))


def test_an_operator_without_svd_is_refused():
    class Plain(ivd.operators.LinearOperator):
        in_shape, out_shape = (D,), (D,)

        def apply(self, x):
            return x

        def adjoint(self, y):
            return y

    prior = ivd.priors.GaussianPrior(np.zeros(D), np.eye(D), process=VP)
    for fn in (ivd.methods.diffpir, ivd.methods.red_diff):
        args = (np.zeros(D), 0.1) if fn is ivd.methods.diffpir else (np.zeros(D),)
        with pytest.raises(TypeError, match="op must be an SVDOperator"):
            fn(prior, Plain(), *args)
