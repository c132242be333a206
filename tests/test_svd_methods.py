"""DDRM, DDNM(+) and MCGdiff: exact moments on Gaussian priors, SMC convergence, bad input.

On a Gaussian prior Tweedie's estimate is affine in x_t, so DDRM's and DDNM's updates are
linear-Gaussian and their output law is Gaussian with moments we propagate here from the
papers' equations, written independently of the library (full SVD, dense matrices). The
samples must match those moments within Monte-Carlo error: this checks the implementation
step by step, not how good the methods are. MCGdiff is a particle filter: it is checked
against exact posteriors (Gaussian and Gaussian mixture) as its particles grow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import to_numpy
from _stats import moment_z_scores, sliced_wasserstein
from hypothesis import given
from hypothesis import strategies as st

import invdiff as ivd
from invdiff.methods.svd import _jump_schedule, _skip_times, _systematic

VP = ivd.processes.VP.linear()
M0 = np.array([0.3, -0.2, 0.1])
C0 = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.3], [0.2, 0.3, 0.5]])
A = np.array([[0.6, 0.8, 0.2], [-0.3, 0.4, 1.0]])
Y = np.array([1.0, -0.4])
#: samples for the moment checks: at 16000, a change of eta from 0.85 to 0.8 is ~4.5 sd
N_MOMENTS = 16000


def _prior():
    return ivd.priors.GaussianPrior(M0, C0, process=VP)


# -- moments of DDRM / DDNM on a Gaussian prior, from the papers' equations -----------------
def _tweedie(k):
    """x0_hat = F x + f and eps_hat = G x + g at DDPM step k for the prior N(M0, C0)."""
    ab = VP.alpha_bar(k)
    a, b = math.sqrt(ab), math.sqrt(1 - ab)
    K = a * C0 @ np.linalg.inv(ab * C0 + (1 - ab) * np.eye(3))
    F, f = K, M0 - K @ (a * M0)
    return F, f, (np.eye(3) - a * F) / b, -a * f / b


def _svd():
    U, s, Vt = np.linalg.svd(A, full_matrices=True)
    r = len(s)
    ybar = np.zeros(3)
    ybar[:r] = (U.T @ Y) / s
    return np.concatenate([s, np.zeros(3 - r)]), Vt.T, ybar


def _ddrm_coefficients(s, sig, sigma_y, eta, eta_b):
    """Per spectral coordinate: out = al x0 + be eps + ga ybar + de z (Kawar et al., Eq. 7)."""
    c = math.sqrt(1 - eta**2)
    al, be, ga, de = np.ones(3), np.full(3, c * sig), np.zeros(3), np.full(3, eta * sig)
    for i, si in enumerate(s):
        if si > 0 and sigma_y > 0 and si * sig < sigma_y:  # less noisy than y
            al[i], be[i], ga[i] = 1 - c * sig * si / sigma_y, 0.0, c * sig * si / sigma_y
        elif si > 0 and si * sig > sigma_y:  # noisier than y
            al[i], be[i], ga[i] = 1 - eta_b, 0.0, eta_b
            de[i] = math.sqrt(max(sig**2 - (eta_b * sigma_y / si) ** 2, 0.0))
    return al, be, ga, de


def _sigma_ve(k):
    return 0.0 if k == 0 else math.sqrt((1 - VP.alpha_bar(k)) / VP.alpha_bar(k))


def _ddrm_moments(times, sigma_y, eta, eta_b, start):
    s, V, ybar = _svd()
    k0 = times[0]
    a0, sig0 = math.sqrt(VP.alpha_bar(k0)), _sigma_ve(k0)
    if start == "ddrm":  # x_T = a_T V xbar, xbar = ybar + std z where s sigma_T > sigma_y
        large = s * sig0 > sigma_y
        std = np.where(large, np.sqrt(np.clip(sig0**2 - (sigma_y / np.where(s > 0, s, 1)) ** 2,
                                              0, None)), sig0)
        mu, cov = a0 * V @ np.where(large, ybar, 0.0), a0**2 * V @ np.diag(std**2) @ V.T
    else:  # pure noise
        mu, cov = np.zeros(3), np.eye(3)
    for k, j in zip(times[:-1], times[1:], strict=True):
        F, f, G, g = _tweedie(k)
        al, be, ga, de = _ddrm_coefficients(s, _sigma_ve(j), sigma_y, eta, eta_b)
        aj = math.sqrt(VP.alpha_bar(j))
        Mx = aj * V @ (np.diag(al) @ V.T @ F + np.diag(be) @ V.T @ G)
        c = aj * V @ (al * (V.T @ f) + be * (V.T @ g) + ga * ybar)
        N = aj * V @ np.diag(de)
        mu, cov = Mx @ mu + c, Mx @ cov @ Mx.T + N @ N.T
    return mu, cov


def _ddnm_moments(times, eta):
    """Noiseless DDNM (Wang et al., Alg. 1): x0 <- x0 - A^+(A x0 - y), then DDIM."""
    s, V, ybar = _svd()
    P_range = V[:, :2] @ V[:, :2].T
    pinv_y = V @ ybar
    mu, cov = np.zeros(3), np.eye(3)
    for k, j in zip(times[:-1], times[1:], strict=True):
        F, f, G, g = _tweedie(k)
        Fp, fp = (np.eye(3) - P_range) @ F, (np.eye(3) - P_range) @ f + pinv_y
        aj, bj = math.sqrt(VP.alpha_bar(j)), math.sqrt(1 - VP.alpha_bar(j))
        Mx = aj * Fp + bj * math.sqrt(1 - eta**2) * G
        c = aj * fp + bj * math.sqrt(1 - eta**2) * g
        mu, cov = Mx @ mu + c, Mx @ cov @ Mx.T + (bj * eta) ** 2 * np.eye(3)
    return mu, cov


@pytest.mark.parametrize("sigma_y", [0.3, 0.02, 0.0])
def test_ddrm_matches_its_exact_gaussian_moments(sigma_y):
    """Sample mean and covariance of DDRM (20 steps, eta = 0.85, eta_b = 1) within 4.5 Monte
    Carlo sd of the moments propagated from the paper's Eq. 7; sigma_y = 0.02 mixes the
    'noisier than y' and 'less noisy than y' cases across the steps."""
    x, info = ivd.methods.ddrm(_prior(), ivd.operators.DenseMatrix(A), Y, sigma_y, rng=0,
                               n=N_MOMENTS, return_info=True)
    assert info["nfe"] == 20
    mu, cov = _ddrm_moments(_skip_times(VP, 20), sigma_y, 0.85, 1.0, "ddrm")
    z_mean, z_cov = moment_z_scores(x, mu, cov)
    assert z_mean < 4.5 and z_cov < 4.5, (z_mean, z_cov)


def test_ddrm_eta_b_below_one_matches_its_moments():
    x = ivd.methods.ddrm(_prior(), ivd.operators.DenseMatrix(A), Y, 0.3, rng=1, n=N_MOMENTS,
                         eta=0.5, eta_b=0.6, steps=10)
    mu, cov = _ddrm_moments(_skip_times(VP, 10), 0.3, 0.5, 0.6, "ddrm")
    z_mean, z_cov = moment_z_scores(x, mu, cov)
    assert z_mean < 4.5 and z_cov < 4.5, (z_mean, z_cov)


def test_ddnm_plus_is_ddrm_with_eta_b_one_from_pure_noise():
    """DDNM+'s SVD form (the authors' Lambda / Lambda_noise) from N(0, I) on DDNM's grid."""
    x, info = ivd.methods.ddnm(_prior(), ivd.operators.DenseMatrix(A), Y, 0.3, rng=2,
                               n=N_MOMENTS, steps=50, return_info=True)
    assert info["nfe"] == 50 and info["method"] == "ddnm+"
    times = [1 + 20 * i for i in range(50)][::-1] + [0]
    mu, cov = _ddrm_moments(times, 0.3, 0.85, 1.0, "noise")
    z_mean, z_cov = moment_z_scores(x, mu, cov)
    assert z_mean < 4.5 and z_cov < 4.5, (z_mean, z_cov)


def test_noiseless_ddnm_matches_its_moments_and_fits_y_exactly():
    x, info = ivd.methods.ddnm(_prior(), ivd.operators.DenseMatrix(A), Y, 0.0, rng=3,
                               n=N_MOMENTS, steps=50, return_info=True)
    assert info["method"] == "ddnm"
    mu, cov = _ddnm_moments([1 + 20 * i for i in range(50)][::-1] + [0], 0.85)
    z_mean, z_cov = moment_z_scores(x, mu, cov)
    assert z_mean < 4.5 and z_cov < 4.5, (z_mean, z_cov)
    np.testing.assert_allclose(to_numpy(x) @ A.T, np.broadcast_to(Y, (N_MOMENTS, 2)), atol=1e-9)


def test_time_grids_follow_the_reference_codes():
    # DDRM runners/diffusion.py: range(0, 1000, 50) 0-indexed, then -1
    assert _skip_times(VP, 20) == [951 - 50 * i for i in range(20)] + [0]
    # DDNM get_schedule_jump(10, 2, 2), worked by hand
    assert _jump_schedule(10, 2, 2) == [9, 8, 7, 6, 7, 8, 7, 6, 5, 4, 5, 6, 5, 4, 3, 2, 3, 4,
                                        3, 2, 1, 0, 1, 2, 1, 0, -1]
    assert _jump_schedule(5, 1, 1) == [4, 3, 2, 1, 0, -1]


def test_ddnm_time_travel_costs_the_extra_steps_and_still_fits_y():
    x, info = ivd.methods.ddnm(_prior(), ivd.operators.DenseMatrix(A), Y, 0.0, rng=4, n=200,
                               steps=20, travel_length=2, travel_repeat=3, return_info=True)
    # jumps at 0, 2, ..., 16 (9 of them), each repeated twice, 2 steps long
    assert info["nfe"] == 20 + 9 * 2 * 2
    np.testing.assert_allclose(to_numpy(x) @ A.T, np.broadcast_to(Y, (200, 2)), atol=1e-9)


# -- MCGdiff -------------------------------------------------------------------------------
def _gaussian_2d():
    prior = ivd.priors.GaussianPrior(np.zeros(2), np.array([[1.0, 0.8], [0.8, 1.0]]),
                                     process=VP)
    a, y, sigma_y = np.array([[1.0, 0.0]]), np.array([1.5]), 0.3
    return prior, a, y, sigma_y, prior.posterior(a, y, sigma_y)


def _mcgdiff_moments(steps, particles, seeds):
    prior, a, y, sigma_y, _ = _gaussian_2d()
    runs = [to_numpy(ivd.methods.mcgdiff(prior, ivd.operators.DenseMatrix(a), y, sigma_y,
                                         n_particles=particles, steps=steps, rng=seed, n=2000))
            for seed in range(seeds)]
    return np.mean([x.mean(axis=0) for x in runs], axis=0), \
        np.mean([x.var(axis=0) for x in runs], axis=0)


def test_mcgdiff_counts_a_noisy_observation_once():
    """Noisy 2-D Gaussian, one observed coordinate: posterior mean (1.376, 1.101), variance
    0.083 on the observed coordinate.

    At the default 100 DDIM steps the observed coordinate's variance comes out 0.71 of the
    exact one (the coarse chain between tau_i ~ t = 90 and 0 adds too little noise; 0.92 at
    1000 steps, next test). Dividing the weight by the potential when tau_i is passed and
    multiplying by the likelihood at the end (the reference code's weights) counts the
    observation twice: 0.43 of it, and the mean moves 0.05 towards y.
    """
    *_, post = _gaussian_2d()
    mean, var = _mcgdiff_moments(steps=100, particles=256, seeds=2)
    np.testing.assert_allclose(mean, post.mean, atol=0.06)
    assert 0.6 < var[0] / post.cov[0, 0] < 1.1, var


@pytest.mark.slow
def test_mcgdiff_variance_converges_with_many_steps():
    """1000 steps, 512 particles: the observed coordinate's variance within 20 % of the exact
    one (measured 0.92 of it; the reference code's weights give 0.50)."""
    *_, post = _gaussian_2d()
    mean, var = _mcgdiff_moments(steps=1000, particles=512, seeds=3)
    np.testing.assert_allclose(mean, post.mean, atol=0.08)
    assert abs(var[0] / post.cov[0, 0] - 1) < 0.2, var


def test_mcgdiff_noiseless_pins_the_observed_coordinates():
    x, info = ivd.methods.mcgdiff(_prior(), ivd.operators.DenseMatrix(A), Y, 0.0, rng=5, n=300,
                                  n_particles=64, steps=50, return_info=True)
    assert info["nfe"] == 50 * 64 and info["network_calls"] == 50  # one per particle
    resid = to_numpy(x) @ A.T - Y
    assert np.max(np.abs(resid)) < 0.1  # kappa = 1e-4: within a few sqrt(kappa) * |A|
    ess = to_numpy(info["ess"])
    assert ess.shape == (50,) and np.all((ess >= 1 - 1e-9) & (ess <= 64 + 1e-9))
    np.testing.assert_allclose(to_numpy(info["final_ess"]), 64.0)  # sigma_y = 0: no reweighting


def _small_mixture():
    means = np.array([[-3.0, -3.0, 0.0], [3.0, -3.0, 1.0], [-3.0, 3.0, -1.0], [3.0, 3.0, 0.0],
                      [0.0, 0.0, 2.0]])
    return ivd.priors.GaussianMixturePrior(np.array([0.3, 0.1, 0.2, 0.25, 0.15]), means,
                                           np.full((5, 3), 0.5), process=VP)


def test_mcgdiff_sliced_wasserstein_falls_as_particles_grow():
    """5-component mixture in 3-D, one noisy measurement: the posterior has several modes.

    The SW distance to exact posterior samples, as a ratio to the floor between two exact
    sets, is the median of 3 independent particle systems for each count; it must fall from 8
    to 512 particles and end within 2x the floor (measured: 5.2 -> 1.7).
    """
    prior = _small_mixture()
    a, sigma_y = np.array([[1.0, 0.7, 0.0]]), 0.5
    y = np.array([0.9])
    post = prior.posterior(a, y, sigma_y)
    rng = ivd.random.Generator(11)
    n = 500
    ref, ref2 = post.sample(n, rng), post.sample(n, rng)
    floor = sliced_wasserstein(ref, ref2)
    ratios = {}
    for P in (8, 512):
        runs = [ivd.methods.mcgdiff(prior, ivd.operators.DenseMatrix(a), y, sigma_y,
                                    n_particles=P, steps=50, rng=100 * P + r, n=n)
                for r in range(3)]
        ratios[P] = float(np.median([sliced_wasserstein(to_numpy(x), ref) / floor
                                     for x in runs]))
    assert ratios[512] < 0.6 * ratios[8], ratios
    assert ratios[512] < 2.0, ratios


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12).filter(lambda w: sum(w) > 1e-3),
       st.integers(1, 40), st.integers(0, 2**31))
def test_systematic_resampling_gives_each_particle_floor_or_ceil_of_its_share(w, n, seed):
    """Systematic resampling: particle i appears floor(n w_i) or ceil(n w_i) times."""
    import array_api_compat.numpy as xp

    w = np.asarray(w) / np.sum(w)
    idx = to_numpy(_systematic(xp, xp.asarray(w[:, None]), n, ivd.random.Generator(seed)))
    assert idx.shape == (n, 1)
    counts = np.bincount(idx[:, 0], minlength=len(w))
    share = n * w
    assert np.all(counts >= np.floor(share - 1e-9)) and np.all(counts <= np.ceil(share + 1e-9))


# -- every backend, every method ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["ddrm", "ddnm", "mcgdiff"])
def test_svd_methods_stay_in_the_callers_namespace(xp, method):
    dtype = xp.float64
    prior = ivd.priors.GaussianPrior(xp.asarray(M0, dtype=dtype), xp.asarray(C0, dtype=dtype),
                                     process=VP)
    op = ivd.operators.DenseMatrix(xp.asarray(A, dtype=dtype))
    y = xp.asarray(np.stack([Y, -Y]), dtype=dtype)  # a batch of two measurements
    kw = {"mcgdiff": {"n_particles": 8, "steps": 10}, "ddnm": {"steps": 10}, "ddrm": {}}[method]
    x, info = getattr(ivd.methods, method)(prior, op, y, 0.1, rng=0, n=3, return_info=True,
                                           **kw)
    assert ivd._array_api.namespace(x=x).__name__ == xp.__name__
    assert x.dtype == dtype and tuple(x.shape) == (3, 2, 3)
    assert bool(xp.all(xp.isfinite(x)))


def test_methods_are_reexpressed_to_the_ddpm_process():
    """A VE-trained prior gives the same law as its VP twin (all three need VP steps)."""
    ve = ivd.priors.GaussianPrior(M0, C0, process=ivd.processes.VE.geometric(80.0, 0.002, 50))
    x = ivd.methods.ddrm(ve, ivd.operators.DenseMatrix(A), Y, 0.3, rng=0, n=4000)
    mu, cov = _ddrm_moments(_skip_times(VP, 20), 0.3, 0.85, 1.0, "ddrm")
    assert moment_z_scores(x, mu, cov)[0] < 4.5


# -- bad input ---------------------------------------------------------------------------------
class _NoSVD(ivd.operators.LinearOperator):
    in_shape, out_shape = (3,), (2,)

    def apply(self, x):
        return x[..., :2]

    def adjoint(self, y):
        return np.concatenate([y, np.zeros(y.shape[:-1] + (1,))], axis=-1)


@pytest.mark.parametrize("method", ["ddrm", "ddnm", "mcgdiff"])
def test_an_operator_without_svd_is_refused_naming_the_requirement(method):
    with pytest.raises(TypeError, match=rf"{method} .*needs an operator with an SVD"):
        getattr(ivd.methods, method)(_prior(), _NoSVD(), Y, 0.1)


@pytest.mark.parametrize("method", ["ddrm", "ddnm", "mcgdiff"])
def test_a_plain_matrix_is_decomposed_like_a_dense_matrix(method):
    kw = {"mcgdiff": {"n_particles": 8, "steps": 10}, "ddnm": {"steps": 10}, "ddrm": {}}[method]
    run = getattr(ivd.methods, method)
    a = run(_prior(), A, Y, 0.1, rng=0, n=5, **kw)
    b = run(_prior(), ivd.operators.DenseMatrix(A), Y, 0.1, rng=0, n=5, **kw)
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda p, op: ivd.methods.ddrm(p, op, Y, -0.1), "sigma_y"),
    (lambda p, op: ivd.methods.ddrm(p, op, Y, 0.1, eta=1.5), "eta"),
    (lambda p, op: ivd.methods.ddrm(p, op, Y, 0.1, eta_b=-0.1), "eta_b"),
    (lambda p, op: ivd.methods.ddrm(p, op, Y, 0.1, steps=1001), "steps"),
    (lambda p, op: ivd.methods.ddnm(p, op, Y, 0.1, travel_length=0), "travel_length"),
    (lambda p, op: ivd.methods.ddnm(p, op, Y, 0.1, clip_x0=(1.0, -1.0)), "clip_x0"),
    (lambda p, op: ivd.methods.mcgdiff(p, op, Y, 0.1, n_particles=0), "n_particles"),
    (lambda p, op: ivd.methods.mcgdiff(p, op, Y, 0.1, kappa=0.0), "kappa"),
    (lambda p, op: ivd.methods.mcgdiff(p, op, Y, 0.1, n=0), "n"),
    (lambda p, op: ivd.methods.mcgdiff(p, op, np.ones(3), 0.1), "y"),
])
def test_bad_arguments_name_themselves(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(_prior(), ivd.operators.DenseMatrix(A))
