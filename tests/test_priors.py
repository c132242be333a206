"""invdiff.priors: exact scores, vjps, sampling and posteriors of Gaussian (mixture) priors."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close, from_numpy, to_numpy
from _stats import moment_z_scores, sliced_wasserstein, sw_floor
from scipy.stats import multivariate_normal

import invdiff as ivd
from invdiff.priors import ExactLikelihood, GaussianMixturePrior, GaussianPrior
from invdiff.processes import PREDICTIONS, VE, VP, Flow

PROCS = {"vp": (VP.linear, 300.5), "ve": (lambda: VE.geometric(20.0, 0.01, 50), 1.3),
         "flow": (Flow.rectified, 0.4)}


def _problem(K=3, d=4, seed=0, diagonal=False):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(K, d))
    if diagonal:
        covs = rng.uniform(0.1, 1.0, size=(K, d))
    else:
        B = rng.normal(size=(K, d, d))
        covs = B @ B.transpose(0, 2, 1) / d + 0.1 * np.eye(d)
    w = rng.uniform(0.2, 1.0, K)
    return w / w.sum(), means, covs


def _dense(covs):
    return covs if covs.ndim == 3 else np.stack([np.diag(c) for c in covs])


def _exact_logpdf(w, means, covs, a, b, x):
    covs = _dense(covs)
    d = means.shape[1]
    dens = [w[k] * multivariate_normal(a * means[k], a * a * covs[k] + b * b * np.eye(d)).pdf(x)
            for k in range(len(w))]
    return np.log(np.sum(dens, axis=0))


def _gmm(xp, w, means, covs, proc, dtype="float64", prediction="eps"):
    dt = getattr(xp, dtype)
    return GaussianMixturePrior(*(from_numpy(v, xp, dtype=dt) for v in (w, means, covs)),
                                process=proc, prediction=prediction)


# -- the score and the density ----------------------------------------------------------
@pytest.mark.parametrize("proc_name", PROCS)
@pytest.mark.parametrize("diagonal", [False, True])
def test_log_prob_and_score_match_scipy(xp, proc_name, diagonal):
    make, t = PROCS[proc_name]
    proc = make()
    w, means, covs = _problem(diagonal=diagonal)
    prior = _gmm(xp, w, means, covs, proc)
    x = np.random.default_rng(1).normal(size=(5, 4))
    a, b = proc.a(t), proc.b(t)
    lp = _exact_logpdf(w, means, covs, a, b, x)
    assert_close(prior.log_prob(from_numpy(x, xp), t), from_numpy(lp, xp), rtol=1e-10)
    h = 1e-5
    fd = np.stack([(_exact_logpdf(w, means, covs, a, b, x + h * e)
                    - _exact_logpdf(w, means, covs, a, b, x - h * e)) / (2 * h)
                   for e in np.eye(4)], axis=-1)
    assert_close(prior.score(from_numpy(x, xp), t), from_numpy(fd, xp), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", PREDICTIONS)
def test_call_is_the_prediction_of_its_kind(kind):
    proc, t = VP.linear(), 250.0
    w, means, covs = _problem()
    prior = GaussianMixturePrior(w, means, covs, process=proc, prediction=kind)
    x = np.random.default_rng(2).normal(size=(3, 4))
    s = prior.score(x, t)
    eps = -proc.b(t) * s
    want = ivd.processes.convert(eps, "eps", kind, x, t, proc)
    np.testing.assert_allclose(prior(x, t), want, rtol=1e-12, atol=1e-14)
    assert prior.prediction == kind and prior.process is proc


@pytest.mark.parametrize("kind", PREDICTIONS)
@pytest.mark.parametrize("diagonal", [False, True])
def test_vjp_matches_finite_difference_jacobian(kind, diagonal):
    proc, t = Flow.rectified(), 0.35
    w, means, covs = _problem(diagonal=diagonal)
    prior = GaussianMixturePrior(w, means, covs, process=proc, prediction=kind)
    rng = np.random.default_rng(3)
    x, c = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    pred, pulled = prior.vjp(x, t, c)
    np.testing.assert_allclose(pred, prior(x, t), rtol=1e-13)
    h = 1e-6
    # J[n, i, j] = d pred_j / d x_i, so (J^T c)_i = sum_j J[n, i, j] c_j
    J = np.stack([(prior(x + h * e, t) - prior(x - h * e, t)) / (2 * h) for e in np.eye(4)], 1)
    np.testing.assert_allclose(pulled, np.einsum("nij,nj->ni", J, c), rtol=1e-6, atol=1e-7)


def test_vjp_accepts_a_callable_cotangent():
    """DPS's cotangent depends on the prediction: a callable gets it, one evaluation."""
    w, means, covs = _problem()
    prior = GaussianMixturePrior(w, means, covs, process=VP.linear(), prediction="x0")
    x = np.random.default_rng(10).normal(size=(3, 4))
    seen = []

    def cotangent(pred):
        seen.append(pred)
        return 2.0 * pred - 1.0

    pred, pulled = prior.vjp(x, 400.0, cotangent)
    np.testing.assert_array_equal(seen[0], pred)
    np.testing.assert_allclose(pulled, prior.vjp(x, 400.0, 2.0 * pred - 1.0)[1], rtol=1e-13)
    assert prior.vjp_accepts_callable


def test_gaussian_is_a_one_component_mixture(xp):
    w, means, covs = _problem(K=1)
    proc, t = VP.linear(), 600.0
    g = GaussianPrior(from_numpy(means[0], xp), from_numpy(covs[0], xp), process=proc)
    m = _gmm(xp, w, means, covs, proc)
    x = from_numpy(np.random.default_rng(4).normal(size=(3, 4)), xp)
    assert_close(g(x, t), m(x, t), rtol=1e-12)
    assert_close(g.mean, from_numpy(means[0], xp))
    assert_close(g.cov, from_numpy(covs[0], xp), rtol=1e-12, atol=1e-14)
    # The closed form of ALGORITHMS.md §6: score = -(a^2 S + b^2 I)^{-1} (x - a mu).
    a, b = proc.a(t), proc.b(t)
    C = a * a * covs[0] + b * b * np.eye(4)
    want = -np.linalg.solve(C, (to_numpy(x) - a * means[0]).T).T
    assert_close(g.score(x, t), from_numpy(want, xp), rtol=1e-10)


def test_batch_shapes_and_per_sample_times():
    proc = VP.linear()
    w, means, covs = _problem()
    prior = GaussianMixturePrior(w, means, covs, process=proc)
    x = np.random.default_rng(5).normal(size=(2, 3, 4))
    t = np.array([[10.0, 200.0, 900.0], [1.0, 500.5, 999.0]])
    out = prior(x, t)
    assert out.shape == x.shape
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(out[i, j], prior(x[i, j][None], float(t[i, j]))[0],
                                       rtol=1e-12, atol=1e-14)
    pred, pulled = prior.vjp(x, t, x)
    assert pred.shape == pulled.shape == x.shape


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_namespace_device_dtype_preserved(xp, dtype):
    proc = VE.geometric(20.0, 0.01, 10)
    w, means, covs = _problem()
    prior = _gmm(xp, w, means, covs, proc)  # float64 parameters serve float32 inputs too
    x = from_numpy(np.ones((2, 4)), xp, dtype=getattr(xp, dtype))
    for out in (prior(x, 1.0), prior.score(x, 1.0), *prior.vjp(x, 1.0, x)):
        assert type(out) is type(x) and out.dtype == x.dtype and out.shape == x.shape
    assert prior.log_prob(x, 1.0).dtype == x.dtype
    own = _gmm(xp, w, means, covs, proc, dtype=dtype)
    s = own.sample(7, ivd.random.Generator(0))
    assert type(s) is type(x) and s.dtype == x.dtype and s.shape == (7, 4)
    post = own.posterior(from_numpy(np.eye(4)[:2], xp, dtype=x.dtype),
                         from_numpy(np.ones(2), xp, dtype=x.dtype), 0.5)
    assert post.means.dtype == x.dtype and type(post.covs) is type(x)


def test_read_only_inputs_are_never_written():
    w, means, covs = _problem()
    arrays = [w.copy(), means.copy(), covs.copy()]
    for a in arrays:
        a.setflags(write=False)
    prior = GaussianMixturePrior(*arrays, process=VP.linear())
    x = np.ones((2, 4))
    x.setflags(write=False)
    A, y = np.eye(4)[:2].copy(), np.ones(2)
    A.setflags(write=False)
    y.setflags(write=False)
    prior(x, 10.0)
    prior.vjp(x, 10.0, x)
    lik = prior.exact_likelihood(A, y, 0.3)
    lik.score(x, 10.0)
    np.testing.assert_array_equal(x, np.ones((2, 4)))
    np.testing.assert_array_equal(arrays[1], means)


# -- sampling ---------------------------------------------------------------------------
@pytest.mark.parametrize("diagonal", [False, True])
def test_gmm_samples_have_the_right_moments(xp, diagonal):
    w, means, covs = _problem(K=3, d=2, diagonal=diagonal)
    prior = _gmm(xp, w, means, covs, VP.linear())
    n = 20000
    x = to_numpy(prior.sample(n, ivd.random.Generator(1)))
    dense = _dense(covs)
    mean = w @ means
    cov = sum(w[k] * (dense[k] + np.outer(means[k] - mean, means[k] - mean)) for k in range(3))
    z_mean, z_cov = moment_z_scores(x, mean, cov)
    # Not Gaussian, but the sd formulas hold to within the fourth-moment excess: 6 sd bounds.
    assert z_mean < 6 and z_cov < 6


def test_sampling_is_reproducible_and_validated():
    w, means, covs = _problem()
    prior = GaussianMixturePrior(w, means, covs, process=VP.linear())
    a = prior.sample(5, ivd.random.Generator(3))
    np.testing.assert_array_equal(a, prior.sample(5, ivd.random.Generator(3)))
    with pytest.raises(TypeError, match="rng must be an invdiff.random.Generator"):
        prior.sample(5, 3)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        prior.sample(-1, ivd.random.Generator(0))


def test_zero_weight_component_is_never_sampled():
    means = np.array([[0.0], [100.0]])
    prior = GaussianMixturePrior(np.array([1.0, 0.0]), means, np.ones((2, 1)), process=Flow())
    x = prior.sample(2000, ivd.random.Generator(0))
    assert np.all(np.abs(x) < 10)
    np.testing.assert_allclose(prior.weights, [1.0, 0.0])
    assert np.all(np.isfinite(prior.score(np.array([[50.0]]), 0.3)))


# -- posteriors and the exact likelihood ------------------------------------------------
def _measurement(d=4, M=2, seed=7):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(M, d)), rng.normal(size=M), 0.4


def test_gaussian_posterior_closed_form(xp):
    _, means, covs = _problem(K=1)
    A, y, sy = _measurement()
    prior = GaussianPrior(from_numpy(means[0], xp), from_numpy(covs[0], xp), process=VP.linear())
    post = prior.posterior(from_numpy(A, xp), from_numpy(y, xp), sy)
    # Information form, independent of the Kalman form used by the code.
    P = np.linalg.inv(np.linalg.inv(covs[0]) + A.T @ A / sy**2)
    m = P @ (np.linalg.solve(covs[0], means[0]) + A.T @ y / sy**2)
    assert_close(post.mean, from_numpy(m, xp), rtol=1e-10)
    assert_close(post.cov, from_numpy(P, xp), rtol=1e-9, atol=1e-12)
    assert isinstance(post, GaussianPrior) and post.process is prior.process


def test_gmm_posterior_weights_means_covs():
    w, means, covs = _problem(K=3)
    A, y, sy = _measurement()
    post = GaussianMixturePrior(w, means, covs, process=VP.linear()).posterior(A, y, sy)
    ev = np.array([w[k] * multivariate_normal(A @ means[k], A @ covs[k] @ A.T
                                              + sy**2 * np.eye(2)).pdf(y) for k in range(3)])
    np.testing.assert_allclose(post.weights, ev / ev.sum(), rtol=1e-10)
    for k in range(3):
        P = np.linalg.inv(np.linalg.inv(covs[k]) + A.T @ A / sy**2)
        m = P @ (np.linalg.solve(covs[k], means[k]) + A.T @ y / sy**2)
        np.testing.assert_allclose(post.means[k], m, rtol=1e-10)
        np.testing.assert_allclose(post.covs[k], P, rtol=1e-9, atol=1e-12)


def test_gmm_posterior_samples_match_posterior(xp):
    """Exact posterior samples against importance-weighted prior samples (SW within 2x floor)."""
    w, means, covs = _problem(K=3, d=2)
    A, y, sy = np.array([[1.0, 0.5]]), np.array([0.3]), 0.8
    prior = _gmm(xp, w, means, covs, VP.linear())
    post = prior.posterior(from_numpy(A, xp), from_numpy(y, xp), sy)
    rng = ivd.random.Generator(2)
    n = 2000
    floor = sw_floor(lambda: post.sample(n, rng))
    # Resample prior draws by their likelihood: an independent route to p(x | y).
    big = to_numpy(prior.sample(40 * n, rng))
    lw = -0.5 * ((big @ A.T - y) ** 2).sum(1) / sy**2
    p = np.exp(lw - lw.max())
    idx = np.random.default_rng(0).choice(len(big), size=n, p=p / p.sum())
    assert sliced_wasserstein(big[idx], post.sample(n, rng)) < 2 * floor


@pytest.mark.parametrize("proc_name", PROCS)
def test_exact_likelihood_score_gaussian_closed_form(xp, proc_name):
    """grad log p(y | x_t) = a C^{-1} S A^T R^{-1} (y - A m(x_t)) for the Gaussian prior."""
    make, t = PROCS[proc_name]
    proc = make()
    _, means, covs = _problem(K=1)
    mu, S = means[0], covs[0]
    A, y, sy = _measurement()
    prior = GaussianPrior(from_numpy(mu, xp), from_numpy(S, xp), process=proc)
    lik = prior.exact_likelihood(from_numpy(A, xp), from_numpy(y, xp), sy)
    x = np.random.default_rng(8).normal(size=(3, 4))
    a, b = proc.a(t), proc.b(t)
    C = a * a * S + b * b * np.eye(4)
    gain = a * S @ np.linalg.inv(C)  # E[x0 | x_t] = mu + gain (x_t - a mu)
    m = mu + (x - a * mu) @ gain.T
    P0 = S - gain @ (a * S)  # Cov[x0 | x_t]
    R = A @ P0 @ A.T + sy**2 * np.eye(2)
    want = (np.linalg.solve(R, (y - m @ A.T).T).T @ A) @ gain
    assert_close(lik.score(from_numpy(x, xp), t), from_numpy(want, xp), rtol=1e-8, atol=1e-10)
    assert lik.needs_model is False and lik.process is proc


def test_exact_likelihood_score_gmm_finite_differences():
    """The GMM likelihood score is the gradient of log p_t(x|y) - log p_t(x)."""
    w, means, covs = _problem(K=3)
    A, y, sy = _measurement()
    proc, t = VP.linear(), 150.0
    prior = GaussianMixturePrior(w, means, covs, process=proc)
    lik = prior.exact_likelihood(A, y, sy)
    x = np.random.default_rng(9).normal(size=(3, 4))

    def log_lik(z):  # log p(y | x_t) up to a constant
        return lik.posterior.log_prob(z, t) - prior.log_prob(z, t)

    h = 1e-5
    fd = np.stack([(log_lik(x + h * e) - log_lik(x - h * e)) / (2 * h) for e in np.eye(4)], -1)
    np.testing.assert_allclose(lik.score(x, t), fd, rtol=1e-6, atol=1e-7)
    # Independent check through the joint: p(y | x_t) = sum_k r_k(x_t) N(y; A m_k, A P_k A^T + R).
    a, b = proc.a(t), proc.b(t)

    def log_lik_direct(z):
        out = []
        for k in range(3):
            C = a * a * covs[k] + b * b * np.eye(4)
            G = a * covs[k] @ np.linalg.inv(C)
            m = means[k] + (z - a * means[k]) @ G.T
            R = A @ (covs[k] - G @ (a * covs[k])) @ A.T + sy**2 * np.eye(2)
            rk = w[k] * multivariate_normal(a * means[k], C).pdf(z)
            out.append(rk * np.array([multivariate_normal(A @ mi, R).pdf(y) for mi in m]))
        num = np.sum(out, axis=0)
        den = np.exp(_exact_logpdf(w, means, covs, a, b, z))
        return np.log(num / den)

    fd2 = np.stack([(log_lik_direct(x + h * e) - log_lik_direct(x - h * e)) / (2 * h)
                    for e in np.eye(4)], -1)
    np.testing.assert_allclose(lik.score(x, t), fd2, rtol=1e-5, atol=1e-6)


def test_noiseless_posterior():
    prior = GaussianPrior(np.zeros(2), np.eye(2), process=VP.linear())
    post = prior.posterior(np.array([[1.0, 0.0]]), np.array([0.7]), 0.0)
    np.testing.assert_allclose(post.mean, [0.7, 0.0], atol=1e-12)
    np.testing.assert_allclose(post.cov, [[0.0, 0.0], [0.0, 1.0]], atol=1e-12)
    assert np.all(np.isfinite(post.score(np.ones((1, 2)), 20.0)))


# -- bad inputs -----------------------------------------------------------------------
def test_bad_inputs_raise():
    proc = VP.linear()
    with pytest.raises(TypeError, match="mean must have a real floating dtype"):
        GaussianPrior(np.zeros(2, dtype=int), np.eye(2), process=proc)
    with pytest.raises(ValueError, match=r"cov must have shape \(2,\) \(diagonal\) or \(2, 2\)"):
        GaussianPrior(np.zeros(2), np.eye(3), process=proc)
    with pytest.raises(ValueError, match="cov must be symmetric"):
        GaussianPrior(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), process=proc)
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        GaussianPrior(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), process=proc)
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        GaussianPrior(np.zeros(2), np.array([1.0, -1.0]), process=proc)
    with pytest.raises(ValueError, match="mean must be finite"):
        GaussianPrior(np.array([0.0, np.nan]), np.ones(2), process=proc)
    with pytest.raises(TypeError, match="process must be an invdiff.processes.ForwardProcess"):
        GaussianPrior(np.zeros(2), np.ones(2), process="vp")
    with pytest.raises(ValueError, match="prediction must be one of"):
        GaussianPrior(np.zeros(2), np.ones(2), process=proc, prediction="noise")
    with pytest.raises(ValueError, match=r"weights must have shape \(2,\)"):
        GaussianMixturePrior(np.ones(3), np.zeros((2, 2)), np.ones((2, 2)), process=proc)
    with pytest.raises(ValueError, match="weights must be finite, non-negative"):
        GaussianMixturePrior(np.array([1.0, -1.0]), np.zeros((2, 2)), np.ones((2, 2)),
                             process=proc)
    with pytest.raises(ValueError, match=r"covs must have shape \(2, 2\) \(diagonal\)"):
        GaussianMixturePrior(np.ones(2), np.zeros((2, 2)), np.ones((2, 3)), process=proc)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one backend"):
        GaussianPrior(np.zeros(2), torch.ones(2, dtype=torch.float64), process=proc)


def test_bad_call_and_measurement_inputs():
    prior = GaussianPrior(np.zeros(2), np.ones(2), process=VP.linear())
    with pytest.raises(ValueError, match=r"x_t must have shape \(\*batch, 2\); received \(3, 3\)"):
        prior(np.zeros((3, 3)), 10.0)
    with pytest.raises(TypeError, match="x_t must have a real floating dtype"):
        prior(np.zeros((3, 2), dtype=int), 10.0)
    with pytest.raises(ValueError, match="t must be a scalar or have the batch shape"):
        prior(np.zeros((3, 2)), np.ones(2))
    with pytest.raises(ValueError, match="cotangent must have the shape of x_t"):
        prior.vjp(np.zeros((3, 2)), 10.0, np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"A must have shape \(M, 2\); received \(1, 3\)"):
        prior.posterior(np.ones((1, 3)), np.ones(1), 0.1)
    with pytest.raises(ValueError, match=r"y must have shape \(1,\) \(one measurement\)"):
        prior.posterior(np.ones((1, 2)), np.ones((2, 1)), 0.1)
    with pytest.raises(ValueError, match="sigma_y must be a finite number >= 0"):
        prior.exact_likelihood(np.ones((1, 2)), np.ones(1), -0.1)
    with pytest.raises(TypeError, match="sigma_y must be a real number"):
        prior.posterior(np.ones((1, 2)), np.ones(1), "big")
    with pytest.raises(TypeError, match="A must be an array"):
        prior.posterior([[1.0, 0.0]], np.ones(1), 0.1)
    with pytest.raises(TypeError, match="prior must be a GaussianPrior"):
        ExactLikelihood(object(), np.ones((1, 2)), np.ones(1), 0.1)
    degenerate = GaussianPrior(np.zeros(2), np.array([1.0, 0.0]), process=VP.linear())
    with pytest.raises(ValueError, match="singular"):
        degenerate.posterior(np.array([[0.0, 1.0]]), np.ones(1), 0.0)
