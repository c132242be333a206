"""DMPS: the pseudo-likelihood score converges to the exact one where its assumption holds.

For a Gaussian prior ``x0 ~ N(mu, S0)`` the exact ``p(y | x_t)`` is Gaussian:
``p(x0 | x_t) = N(m(x_t), S)`` with ``S = (S0^-1 + (a/b)^2 I)^-1``,
``m = S (S0^-1 mu + a/b^2 x_t)``, so ``p(y | x_t) = N(y; A m, sigma^2 I + A S A^T)`` and
its score is ``(a/b^2) S A^T K^-1 (y - A m)``. DMPS replaces ``(m, S)`` by
``(x_t/a, (b/a)^2 I)``, exact in the limit ``b/a -> 0`` (and for a flat prior).
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close, from_numpy

import invdiff as ivd

PROCESSES = {
    "vp": (ivd.processes.VP.linear(), [400.0, 200.0, 100.0, 50.0, 20.0, 10.0, 5.0, 2.0]),
    "ve": (ivd.processes.VE.geometric(50.0, 0.01, 232), [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01]),
    "flow": (ivd.processes.Flow.rectified(), [0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]),
}


def _gaussian_problem(seed: int, N: int = 6, M: int = 4, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    S0 = scale**2 * (Q * rng.uniform(0.5, 2.0, N)) @ Q.T
    mu = rng.normal(size=N)
    A = rng.normal(size=(M, N)) / np.sqrt(M)
    sigma_y = 0.1
    x0 = mu + np.linalg.cholesky(S0) @ rng.normal(size=N)
    y = A @ x0 + sigma_y * rng.normal(size=M)
    return S0, mu, A, sigma_y, y, rng


def exact_score(x_t, a, b, S0, mu, A, sigma_y, y):
    """grad_{x_t} log p(y | x_t) for the Gaussian prior (rows of x_t are samples)."""
    N = mu.size
    S0inv = np.linalg.inv(S0)
    S = np.linalg.inv(S0inv + (a / b) ** 2 * np.eye(N))
    m = (S @ (S0inv @ mu[:, None] + (a / b**2) * x_t.T)).T
    K = sigma_y**2 * np.eye(A.shape[0]) + A @ S @ A.T
    return (a / b**2) * (S @ A.T @ np.linalg.solve(K, (y - m @ A.T).T)).T


def _relative_error(lik, proc, t, S0, mu, A, sigma_y, y, rng):
    a, b = float(proc.a(t)), float(proc.b(t))
    x0 = mu + rng.normal(size=(16, mu.size)) @ np.linalg.cholesky(S0).T
    x_t = a * x0 + b * rng.normal(size=x0.shape)
    exact = exact_score(x_t, a, b, S0, mu, A, sigma_y, y)
    approx = lik.score(x_t, t)
    return float(np.linalg.norm(approx - exact) / np.linalg.norm(exact)), b / a


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_pseudo_likelihood_converges_as_t_goes_to_zero(name):
    proc, times = PROCESSES[name]
    S0, mu, A, sigma_y, y, _ = _gaussian_problem(0)
    lik = ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(A), y, sigma_y, proc)
    errors, ratios = [], []
    for t in times:
        err, r = _relative_error(lik, proc, t, S0, mu, A, sigma_y, y, np.random.default_rng(1))
        errors.append(err)
        ratios.append(r)
    print(f"\n{name}: b/a = {np.round(ratios, 4).tolist()}\n  rel. error = "
          f"{[f'{e:.1e}' for e in errors]}")
    assert all(e2 < e1 for e1, e2 in zip(errors[:-1], errors[1:], strict=True)), errors
    assert errors[-1] < 1e-3
    # the error of Assumption 1 is O((b/a)^2) once b/a is small
    slope = np.polyfit(np.log(ratios[-3:]), np.log(errors[-3:]), 1)[0]
    assert slope > 1.5, slope


def test_pseudo_likelihood_is_exact_for_a_flat_prior():
    """At fixed t, the error vanishes as the prior covariance grows (uninformative prior)."""
    proc = ivd.processes.VP.linear()
    errors = []
    for scale in (1.0, 10.0, 100.0, 1000.0):
        S0, mu, A, sigma_y, y, _ = _gaussian_problem(2, scale=scale)
        lik = ivd.likelihoods.DMPS(A, y, sigma_y, proc)
        errors.append(_relative_error(lik, proc, 300.0, S0, mu, A, sigma_y, y,
                                      np.random.default_rng(3))[0])
    assert all(e2 < e1 for e1, e2 in zip(errors[:-1], errors[1:], strict=True)), errors
    assert errors[-1] < 1e-4, errors


def test_exact_reference_matches_invdiff_priors():
    """The test's closed form agrees with GaussianPrior.exact_likelihood (an independent code)."""
    priors = pytest.importorskip("invdiff.priors")
    if not hasattr(priors, "GaussianPrior"):
        pytest.skip("invdiff.priors.GaussianPrior not available")
    proc = ivd.processes.VP.linear()
    S0, mu, A, sigma_y, y, rng = _gaussian_problem(4)
    prior = priors.GaussianPrior(mu, S0, process=proc)
    x_t = rng.normal(size=(3, mu.size))
    t = 150.0
    ref = exact_score(x_t, float(proc.a(t)), float(proc.b(t)), S0, mu, A, sigma_y, y)
    np.testing.assert_allclose(prior.exact_likelihood(A, y, sigma_y).score(x_t, t), ref,
                               rtol=1e-8, atol=1e-10)


# -- the implementation paths agree ---------------------------------------------------------
def test_svd_and_row_orthogonal_paths_agree():
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    A = q[:6] * rng.uniform(0.3, 2.0, 6)[:, None]
    y = rng.normal(size=6)
    x = rng.normal(size=(4, 10))
    proc = ivd.processes.Flow.rectified()
    fast = ivd.likelihoods.DMPS(A, y, 0.2, proc)
    svd = ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(A), y, 0.2, proc)
    assert fast.row_orthogonal and not svd.row_orthogonal
    for t in (0.05, 0.5, np.array([0.1, 0.2, 0.3, 0.9])):
        assert_close(fast.score(x, t), svd.score(x, t), rtol=1e-10, atol=1e-12)
        assert_close(fast.log_likelihood(x, t), svd.log_likelihood(x, t), rtol=1e-10)
    # a general matrix given as an array goes through DenseMatrix
    B = rng.normal(size=(6, 10))
    assert_close(ivd.likelihoods.DMPS(B, y, 0.2, proc).score(x, 0.3),
                 ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(B), y, 0.2, proc).score(x, 0.3),
                 rtol=1e-12, atol=1e-12)


def test_matches_the_explicit_formula_for_image_operators():
    """Blur on images: the SVD formula equals A^T (sigma^2 I + r^2 A A^T)^-1 (y - A x/a) / a."""
    op = ivd.operators.SeparableBlur.gaussian((1, 6, 6), sigma=1.0, size=3)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 1, 6, 6))
    y = op.apply(rng.normal(size=(1, 6, 6))) + 0.05 * rng.normal(size=(1, 6, 6))
    proc = ivd.processes.VP.linear()
    t = 80.0
    a, b = proc.a(t), proc.b(t)
    A = np.stack([op.apply(e.reshape(1, 6, 6)).ravel() for e in np.eye(36)], axis=1)
    K = 0.05**2 * np.eye(36) + (b / a) ** 2 * A @ A.T
    want = (A.T @ np.linalg.solve(K, (y.ravel()[None] - x.reshape(2, 36) @ A.T / a).T)).T / a
    got = ivd.likelihoods.DMPS(op, y, 0.05, proc).score(x, t)
    np.testing.assert_allclose(got.reshape(2, 36), want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_backend_keeps_namespace_dtype_device(xp, dtype):
    rng = np.random.default_rng(8)
    A = rng.normal(size=(5, 7))
    y = rng.normal(size=5)
    x = rng.normal(size=(3, 7))
    proc = ivd.processes.VE.geometric(10.0, 0.01, 20)
    ref = ivd.likelihoods.DMPS(A, y, 0.1, proc)
    A_, y_ = from_numpy(A, xp), from_numpy(y, xp)
    x_ = from_numpy(x, xp, dtype=getattr(xp, dtype))
    lik = ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(A_), y_, 0.1, proc)
    rtol = 1e-10 if dtype == "float64" else 2e-4
    got = lik.score(x_, 0.3)
    assert got.dtype == x_.dtype
    assert_close(got, from_numpy(ref.score(x, 0.3), xp, dtype=x_.dtype, like=x_), rtol=rtol,
                 atol=rtol)
    ll = lik.log_likelihood(x_, 0.3)
    assert ll.shape == (3,) and ll.dtype == x_.dtype
