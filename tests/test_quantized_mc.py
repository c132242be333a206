"""QCS-SGM and QCS-SGM+ against Monte Carlo estimates of the exact box-probability gradient.

For ``y = Q(A x0 + n)`` the pseudo-likelihood is ``P(b) = P(v + b in box)``, ``v ~ N(0, C)``,
``b = A x_t / a_t``, ``C = r_t^2 A A^T + sigma^2 I``, and ``grad_b log P = C^{-1} E[v | box]``.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sc
from _helpers import assert_close, from_numpy, to_numpy

import invdiff as ivd

VE = ivd.processes.VE.geometric(1.0, 0.01, 10)


def _quantize(w: np.ndarray, bits: int):
    """Sign for 1 bit; uniform mid-rise with open outer bins for more (the reference quantizer)."""
    if bits == 1:
        pos = w >= 0
        return np.where(pos, 0.0, -np.inf), np.where(pos, np.inf, 0.0)
    lo, hi = w.min(), w.max()
    delta = (hi - lo) / 2**bits
    k = np.clip(np.floor((w - lo) / delta), 0, 2**bits - 1)
    return (np.where(k == 0, -np.inf, lo + k * delta),
            np.where(k == 2**bits - 1, np.inf, lo + (k + 1) * delta))


def _problem(A: np.ndarray, seed: int, sigma: float, t: float, bits: int):
    """x0 ~ N(0, I), x_t = x0 + t eps (VE), y = Q(A x0 + sigma n)."""
    rng = np.random.default_rng(seed)
    N = A.shape[1]
    x0 = rng.normal(size=N)
    x_t = x0 + t * rng.normal(size=N)
    lower, upper = _quantize(A @ x0 + sigma * rng.normal(size=A.shape[0]), bits)
    return x_t, lower, upper


def _tn_draw(alpha, beta, u):
    """Inverse-CDF draw from N(0,1) truncated to [alpha, beta] and the bin mass (float64)."""
    flip = alpha + beta > 0  # use the side where the CDF values are small (no 1 - tiny)
    a, b = np.where(flip, -beta, alpha), np.where(flip, -alpha, beta)
    p_a, p_b = sc.ndtr(a), sc.ndtr(b)
    z = np.clip(sc.ndtri(np.clip(p_a + u * (p_b - p_a), 1e-300, 1.0)), a, b)
    return np.where(flip, -z, z), p_b - p_a


def ghk_box_gradient(b, C, lower, upper, n: int, seed: int):
    r""":math:`\nabla_b \log P(\text{box})` by GHK importance sampling (Geweke-Hajivassiliou-Keane).

    With :math:`C = L L^\top` and :math:`v = L z`, the :math:`z_i` are drawn one by one from
    their truncated conditionals and weighted by the product of the bin masses; then
    :math:`C^{-1}\mathbb E[v \mid \text{box}] = L^{-\top}\mathbb E[z \mid \text{box}]`.
    """
    L = np.linalg.cholesky(C)
    M = b.size
    u = np.random.default_rng(seed).uniform(size=(n, M))
    z, log_w = np.zeros((n, M)), np.zeros(n)
    for i in range(M):
        shift = b[i] + z[:, :i] @ L[i, :i]
        z[:, i], p = _tn_draw((lower[i] - shift) / L[i, i], (upper[i] - shift) / L[i, i], u[:, i])
        log_w += np.log(p)
    w = np.exp(log_w - log_w.max())
    return np.linalg.solve(L.T, (w / w.sum()) @ z)


# -- QCS-SGM is exact when A A^T is diagonal -------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 3])
def test_qcs_matches_monte_carlo_when_AAT_is_diagonal(bits):
    M, N, sigma, t = 5, 8, 0.3, 0.5
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.normal(size=(N, N)))
    A = q[:M] * np.array([0.5, 1.0, 1.5, 2.0, 3.0])[:, None]  # orthogonal rows, unequal norms
    x_t, lower, upper = _problem(A, 3, sigma, t, bits)
    score = ivd.likelihoods.QuantizedDiagonal(A, lower, upper, sigma, VE).score(x_t, t)
    g = (A @ score) / (A * A).sum(1)  # rows orthogonal: recover g from A^T g
    # Monte Carlo: C is diagonal, so E[v_m | box] only involves coordinate m
    b = A @ x_t
    var = t**2 * (A * A).sum(1) + sigma**2
    v = rng.normal(size=(400_000, M)) * np.sqrt(var)
    inside = (v + b >= lower) & (v + b < upper)
    mean = np.array([v[inside[:, m], m].mean() for m in range(M)])
    se = np.array([v[inside[:, m], m].std() / np.sqrt(inside[:, m].sum()) for m in range(M)])
    g_mc, se_g = mean / var, se / var
    assert np.all(np.abs(g - g_mc) < 5 * se_g + 1e-12), (g, g_mc, se_g)
    assert np.linalg.norm(g - g_mc) < 0.02 * np.linalg.norm(g_mc)


# -- QCS-SGM+ (EP) reduces to QCS-SGM when A A^T is isotropic ---------------------------------
@pytest.mark.parametrize("bits", [1, 3])
@pytest.mark.parametrize("iters", [1, 5])
def test_ep_equals_qcs_when_AAT_is_isotropic(xp, bits, iters):
    M, N, sigma = 16, 32, 0.1
    q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(N, N)))
    A = 1.7 * q[:M]  # A A^T = 1.7^2 I
    x_t, lower, upper = _problem(A, 2, sigma, 0.4, bits)
    x = np.stack([x_t, -x_t, 0.3 * x_t])
    A_, lo_, hi_, x_ = (from_numpy(v, xp) for v in (A, lower, upper, x))
    for t in (0.05, 0.4, 1.0):
        qcs = ivd.likelihoods.QuantizedDiagonal(A_, lo_, hi_, sigma, VE).score(x_, t)
        ep = ivd.likelihoods.QuantizedEP(A_, lo_, hi_, sigma, VE, iters=iters)
        assert_close(ep.score(x_, t), qcs, rtol=1e-9, atol=1e-12)
        iterations = to_numpy(ep.info["iterations"])
        assert iterations.shape == (3,) and np.all((1 <= iterations) & (iterations <= iters))
        assert not np.any(to_numpy(ep.info["fallback"]))


def test_ep_matches_dense_matrix_operator_and_reports_diagnostics():
    rng = ivd.random.Generator(0)
    A = ivd.operators.correlated_matrix(12, 20, rho=0.8, rng=rng)
    x_t, lower, upper = _problem(A, 1, 0.1, 0.3, 1)
    dense = ivd.operators.DenseMatrix(A)
    ep1 = ivd.likelihoods.QuantizedEP(A, lower, upper, 0.1, VE, iters=30)
    ep2 = ivd.likelihoods.QuantizedEP(dense, lower, upper, 0.1, VE, iters=30)
    assert_close(ep1.score(x_t, 0.3), ep2.score(x_t, 0.3), rtol=1e-10, atol=1e-12)
    info = ep1.info
    assert ep1.tol == 1e-5  # 1-bit default
    assert info["iterations"].shape == ()  # one sample
    assert 1 <= info["iterations"] < 30 and info["converged"] == (info["change"] < ep1.tol)
    assert not info["fallback"] and ep1.totals["calls"] == 1 and ep1.totals["fallback"] == 0
    ep3 = ivd.likelihoods.QuantizedEP(A, lower, upper, 0.1, VE, iters=2, tol=1e-300)
    ep3.score(x_t, 0.3)
    assert ep3.info["iterations"] == 2 and not ep3.info["converged"]


# -- QCS-SGM+ is closer than QCS-SGM to the exact gradient for general A ---------------------------
RESULTS: dict = {}


@pytest.mark.parametrize("kind", ["ill_conditioned", "correlated"])
def test_ep_is_closer_than_qcs_to_monte_carlo(kind):
    M, N, sigma, t = 24, 48, 0.1, 0.3
    d_qcs = d_ep = 0.0
    for seed in (0, 1):
        rng = ivd.random.Generator(seed)
        if kind == "ill_conditioned":
            A = ivd.operators.ill_conditioned_matrix(M, N, cond=100.0, rng=rng)
        else:
            A = ivd.operators.correlated_matrix(M, N, rho=0.9, rng=rng)
        for bits in (1, 3):
            x_t, lower, upper = _problem(A, seed, sigma, t, bits)
            C = t**2 * A @ A.T + sigma**2 * np.eye(M)
            ref = A.T @ ghk_box_gradient(A @ x_t, C, lower, upper, n=40_000, seed=seed)
            qcs = ivd.likelihoods.QuantizedDiagonal(A, lower, upper, sigma, VE).score(x_t, t)
            ep = ivd.likelihoods.QuantizedEP(A, lower, upper, sigma, VE).score(x_t, t)
            d_qcs += np.sum((qcs - ref) ** 2)
            d_ep += np.sum((ep - ref) ** 2)
    d_qcs, d_ep = np.sqrt(d_qcs), np.sqrt(d_ep)
    RESULTS[kind] = (d_qcs, d_ep)
    print(f"\n{kind}: ||QCS - MC|| = {d_qcs:.3f}, ||EP - MC|| = {d_ep:.3f}")
    assert d_ep < 0.5 * d_qcs


def test_ghk_reference_is_consistent():
    """The MC reference itself: two seeds agree, and diagonal C reproduces QCS-SGM."""
    A = ivd.operators.correlated_matrix(8, 16, rho=0.9, rng=ivd.random.Generator(3))
    x_t, lower, upper = _problem(A, 3, 0.1, 0.3, 1)
    C = 0.09 * A @ A.T + 0.01 * np.eye(8)
    g1 = ghk_box_gradient(A @ x_t, C, lower, upper, 40_000, 1)
    g2 = ghk_box_gradient(A @ x_t, C, lower, upper, 40_000, 2)
    assert np.linalg.norm(g1 - g2) < 0.05 * np.linalg.norm(g1)
    Cd = np.diag(np.diag(C))
    gd = ghk_box_gradient(A @ x_t, Cd, lower, upper, 40_000, 1)
    sd = np.sqrt(np.diag(C))
    mean, var = ivd.special.truncnorm_moments((lower - A @ x_t) / sd, (upper - A @ x_t) / sd)
    se = np.sqrt(var / 40_000) / sd  # standard error of the GHK average per coordinate
    assert np.all(np.abs(gd - mean / sd) < 5 * se + 1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ill_conditioned", "correlated"])
@pytest.mark.parametrize("t", [0.1, 1.0])
def test_ep_is_closer_than_qcs_more_noise_levels(kind, t):
    M, N, sigma = 24, 48, 0.1
    d_qcs = d_ep = 0.0
    for seed in range(4):
        rng = ivd.random.Generator(seed)
        A = (ivd.operators.ill_conditioned_matrix(M, N, cond=100.0, rng=rng)
             if kind == "ill_conditioned" else ivd.operators.correlated_matrix(M, N, 0.9, rng))
        for bits in (1, 2, 3):
            x_t, lower, upper = _problem(A, seed, sigma, t, bits)
            C = t**2 * A @ A.T + sigma**2 * np.eye(M)
            ref = A.T @ ghk_box_gradient(A @ x_t, C, lower, upper, n=100_000, seed=seed)
            qcs = ivd.likelihoods.QuantizedDiagonal(A, lower, upper, sigma, VE).score(x_t, t)
            ep = ivd.likelihoods.QuantizedEP(A, lower, upper, sigma, VE).score(x_t, t)
            d_qcs += np.sum((qcs - ref) ** 2)
            d_ep += np.sum((ep - ref) ** 2)
    print(f"\n{kind}, t={t}: ||QCS - MC|| = {np.sqrt(d_qcs):.3f}, "
          f"||EP - MC|| = {np.sqrt(d_ep):.3f}")
    assert d_ep < d_qcs


# -- limits and per-sample times -------------------------------------------------------------------
def test_unquantized_limit_is_the_gaussian_term():
    """Zero-width bins are exact measurements: g_m = (y_m - z_m)/v_m, log N(y; z, v)."""
    rng = np.random.default_rng(9)
    A = rng.normal(size=(5, 7))
    y = rng.normal(size=5)
    x = rng.normal(size=(3, 7))
    sigma, t = 0.2, 0.7
    v = sigma**2 + t**2 * (A * A).sum(1)
    z = x @ A.T
    want = ((y - z) / v) @ A
    exact = ivd.likelihoods.QuantizedDiagonal(A, y, y.copy(), sigma, VE)
    np.testing.assert_allclose(exact.score(x, t), want, rtol=1e-12)
    log_n = -0.5 * ((y - z) ** 2 / v + np.log(2 * np.pi * v)).sum(1)
    np.testing.assert_allclose(exact.log_likelihood(x, t), log_n, rtol=1e-12)
    for width in (1e-3, 1e-6, 1e-9):  # narrow bins approach it continuously
        narrow = ivd.likelihoods.QuantizedDiagonal(A, y - width / 2, y + width / 2, sigma, VE)
        np.testing.assert_allclose(narrow.score(x, t), want, rtol=10 * width, atol=10 * width)
    ep = ivd.likelihoods.QuantizedEP(A, y, y.copy(), sigma, VE)
    assert np.isfinite(ep.score(x, t)).all()


@pytest.mark.parametrize("cls", [ivd.likelihoods.QuantizedDiagonal, ivd.likelihoods.QuantizedEP])
def test_per_sample_times_equal_separate_calls(cls):
    A = ivd.operators.correlated_matrix(10, 14, rho=0.7, rng=ivd.random.Generator(2))
    x_t, lower, upper = _problem(A, 4, 0.1, 0.5, 2)
    x = np.stack([x_t, 0.5 * x_t, -x_t])
    times = np.array([0.05, 0.5, 2.0])
    lik = cls(A, lower, upper, 0.1, VE)
    together = lik.score(x, times)
    # EP stops each sample on its own (as the reference does): the same iterations, hence the
    # same numbers, in a batch as alone
    for i, t in enumerate(times):
        np.testing.assert_allclose(together[i], lik.score(x[i:i + 1], float(t))[0],
                                   rtol=1e-12, atol=1e-15)
