"""Likelihood scores are gradients of their closed-form log-likelihoods (DMPS, QCS-SGM).

Each example batches many (sample, measurement) cases: the score must equal torch autodiff of
``log_likelihood`` and central finite differences (float64), and nothing may be NaN/inf, for
standardized residuals up to 40, one-sided bins, tiny and zero-width bins, 1..4-bit quantizers,
every process and random operators.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import from_numpy, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import invdiff as ivd

torch = pytest.importorskip("torch")

PROCESSES = {
    "vp": ivd.processes.VP.linear(),
    "ve": ivd.processes.VE.geometric(50.0, 0.01, 232),
    "flow": ivd.processes.Flow.rectified(),
}


def _time(proc, u: float) -> float:
    """A time of ``proc`` from ``u`` in [0, 1] (low noise to high noise, a_t > 0)."""
    if isinstance(proc, ivd.processes.VP):
        return 1.0 + u * 998.0
    if isinstance(proc, ivd.processes.VE):
        return float(proc.t_min * (proc.t_max / proc.t_min) ** u)
    return 0.01 + 0.97 * u


def _matrix(kind: str, M: int, N: int, seed: int) -> np.ndarray:
    rng = ivd.random.Generator(seed)
    if kind == "gaussian":
        return ivd.operators.gaussian_matrix(M, N, rng)
    if kind == "ill":
        return ivd.operators.ill_conditioned_matrix(M, N, cond=1e3, rng=rng)
    if kind == "correlated":
        return ivd.operators.correlated_matrix(M, N, rho=0.8, rng=rng)
    # row-orthogonal with unequal row norms and a zero row (M <= N)
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(N, N)))
    scales = np.random.default_rng(seed + 1).uniform(0.2, 3.0, M)
    scales[0] = 0.0 if M > 1 else scales[0]
    return q[:M] * scales[:, None]


def _quantizer_bins(w: np.ndarray, bits: int):
    """Bins of the reference quantizer: sign for 1 bit; uniform mid-rise, open outer bins."""
    if bits == 1:
        pos = w >= 0
        return np.where(pos, 0.0, -np.inf), np.where(pos, np.inf, 0.0)
    lo, hi = w.min(), w.max()
    delta = (hi - lo) / 2**bits
    k = np.clip(np.floor((w - lo) / delta), 0, 2**bits - 1)
    lower = np.where(k == 0, -np.inf, lo + k * delta)
    upper = np.where(k == 2**bits - 1, np.inf, lo + (k + 1) * delta)
    return lower, upper


def _stress_bins(z: np.ndarray, sd: np.ndarray, rng: np.random.Generator):
    """Bins placed in standardized units around ``z``: tails to +-40, tiny and zero widths."""
    shape = z.shape
    alpha = rng.uniform(-40.0, 40.0, shape)
    kind = rng.integers(0, 6, shape)
    width = np.select(
        [kind == 0, kind == 1, kind == 2],
        [10.0 ** rng.uniform(-12, -6, shape), rng.uniform(0.01, 3.0, shape),
         np.zeros(shape)],
        default=10.0 ** rng.uniform(-3, 1.5, shape),
    )
    lower = z + alpha * sd
    upper = lower + width * sd
    lower = np.where(kind == 3, -np.inf, lower)  # (-inf, u]
    upper = np.where(kind == 4, np.inf, upper)  # [l, inf)
    return lower, upper


def _qcs_case(seed, M, N, B, kind, proc_name, u, log_sigma, bits, stress, per_sample_t):
    rng = np.random.default_rng(seed)
    proc = PROCESSES[proc_name]
    t = _time(proc, u)
    sigma = 10.0**log_sigma
    A = _matrix(kind, M, N, seed)
    x = rng.normal(size=(B, N))
    if per_sample_t:
        ts = np.array([_time(proc, v) for v in rng.uniform(0, 1, B)])
    else:
        ts = np.full(B, t)
    a = np.array([proc.a(float(v)) for v in ts])[:, None]
    b = np.array([proc.b(float(v)) for v in ts])[:, None]
    z = x @ A.T / a
    sd = np.sqrt(sigma**2 + (b / a) ** 2 * (A * A).sum(1))
    if stress:
        lower, upper = _stress_bins(z, sd, rng)
    else:
        lower, upper = _quantizer_bins(z + sd * rng.normal(size=z.shape), bits)
    return proc, (torch.tensor(ts) if per_sample_t else t), sigma, A, x, lower, upper, sd


def _terms(proc, t, A, x, lower, upper, sd):
    """max_j sum_m |A_mj| |g_m| / a_t per sample: the scale of the sum A^T g / a_t."""
    times = np.broadcast_to(to_numpy(t) if torch.is_tensor(t) else t, (x.shape[0],))
    a = np.array([float(proc.a(float(v))) for v in times])[:, None]
    z = x @ A.T / a
    g = ivd.special.truncnorm_mean((lower - z) / sd, (upper - z) / sd) / sd
    return (np.abs(g) @ np.abs(A)).max(-1) / a[:, 0]


def _check_gradient(lik, x: np.ndarray, t, step: float, terms=None):
    """Score vs torch autodiff and central differences; return max relative errors.

    ``terms`` (per sample): the size of the largest sum the score is made of, when it can
    exceed the score itself (per-measurement terms that cancel); errors are relative to it.
    """
    xt = torch.tensor(x, requires_grad=True)
    lik.log_likelihood(xt, t).sum().backward()
    auto = xt.grad.numpy()
    score = to_numpy(lik.score(torch.tensor(x), t))
    assert np.isfinite(score).all() and np.isfinite(auto).all()
    B = x.shape[0]
    score, auto = score.reshape(B, -1), auto.reshape(B, -1)
    scale = np.abs(score).max(axis=-1, keepdims=True) + 1e-300
    if terms is not None:
        scale = np.maximum(scale, terms.reshape(B, 1))
    err_auto = float((np.abs(score - auto) / scale).max())
    # central differences of log p along a random unit direction per sample
    d = np.random.default_rng(0).normal(size=score.shape)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    plus = to_numpy(lik.log_likelihood(torch.tensor(x + step * d.reshape(x.shape)), t))
    minus = to_numpy(lik.log_likelihood(torch.tensor(x - step * d.reshape(x.shape)), t))
    assert plus.shape == (B,) and np.isfinite(plus).all() and np.isfinite(minus).all()
    fd = (plus - minus) / (2 * step)
    directional = (score * d).sum(-1)
    # central differences round to ~ eps |log p| / step: that much is allowed on top
    rounding = 1e2 * np.finfo(np.float64).eps * (np.abs(plus) + 1.0) / step
    err_fd = float((np.abs(fd - directional) / (np.linalg.norm(score, axis=-1) + rounding)).max())
    return err_auto, err_fd


MAX_ERR = {"auto": 0.0, "fd": 0.0, "cases": 0}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    M=st.integers(1, 12),
    N=st.integers(1, 12),
    kind=st.sampled_from(["gaussian", "ill", "correlated", "orthogonal"]),
    proc_name=st.sampled_from(sorted(PROCESSES)),
    u=st.floats(0.0, 1.0),
    log_sigma=st.floats(-3.0, 0.0),
    bits=st.integers(1, 4),
    stress=st.booleans(),
    per_sample_t=st.booleans(),
)
def test_qcs_score_is_gradient_of_log_likelihood(seed, M, N, kind, proc_name, u, log_sigma, bits,
                                                 stress, per_sample_t):
    if kind in ("orthogonal",) and M > N:
        M = N
    B = 16
    proc, t, sigma, A, x, lower, upper, sd = _qcs_case(
        seed, M, N, B, kind, proc_name, u, log_sigma, bits, stress, per_sample_t)
    lik = ivd.likelihoods.QuantizedDiagonal(torch.tensor(A), torch.tensor(lower),
                                            torch.tensor(upper), sigma, proc)
    # a step of 1e-4 standardized units along the most sensitive row
    times = np.atleast_1d(to_numpy(t) if torch.is_tensor(t) else t)
    a_min = min(float(proc.a(float(v))) for v in times)
    step = 1e-4 * float(sd.min()) * a_min / max(float(np.linalg.norm(A, axis=1).max()), 1e-12)
    err_auto, err_fd = _check_gradient(lik, x, t, step, _terms(proc, t, A, x, lower, upper, sd))
    assert err_auto < 1e-10, err_auto
    assert err_fd < 3e-5, err_fd
    MAX_ERR["auto"] = max(MAX_ERR["auto"], err_auto)
    MAX_ERR["fd"] = max(MAX_ERR["fd"], err_fd)
    MAX_ERR["cases"] += B * M


def _dmps_operator(kind: str, M: int, N: int, seed: int):
    rng = np.random.default_rng(seed)
    if kind == "dense":
        A = rng.normal(size=(M, N)) / math.sqrt(M)
        if M > 2:  # rank deficient: zero singular values must contribute nothing
            A[-1] = A[0] + A[1]
        op = ivd.operators.DenseMatrix(torch.tensor(A))
        return op, (N,), (M,)
    if kind == "orthogonal":
        A = _matrix("orthogonal", min(M, N), N, seed)
        return torch.tensor(A), (N,), (A.shape[0],)
    mask = rng.uniform(size=(2, 3, 3)) < 0.6
    mask[0, 0, 0] = True
    op = ivd.operators.Inpainting(torch.tensor(mask))
    return op, (2, 3, 3), (2, 3, 3)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    M=st.integers(1, 10),
    N=st.integers(1, 10),
    kind=st.sampled_from(["dense", "orthogonal", "inpainting"]),
    proc_name=st.sampled_from(sorted(PROCESSES)),
    u=st.floats(0.0, 1.0),
    log_sigma=st.floats(-3.0, 0.0),
    per_sample_t=st.booleans(),
)
def test_dmps_score_is_gradient_of_log_likelihood(seed, M, N, kind, proc_name, u, log_sigma,
                                                  per_sample_t):
    rng = np.random.default_rng(seed)
    proc = PROCESSES[proc_name]
    op, in_shape, out_shape = _dmps_operator(kind, M, N, seed)
    B = 8
    x = rng.normal(size=(B, *in_shape))
    y = rng.normal(size=out_shape) * 3.0
    sigma_y = 10.0**log_sigma
    lik = ivd.likelihoods.DMPS(op, torch.tensor(y), sigma_y, proc)
    assert lik.row_orthogonal == (kind == "orthogonal")
    if per_sample_t:
        t = torch.tensor([_time(proc, v) for v in rng.uniform(0, 1, B)])
    else:
        t = _time(proc, u)
    # log p~ is quadratic in x_t: central differences are exact up to rounding, so a large
    # step keeps the rounding error eps |log p~| / step small
    err_auto, err_fd = _check_gradient(lik, x, t, step=1e-2)
    assert err_auto < 1e-10, err_auto
    assert err_fd < 1e-5, err_fd
    MAX_ERR["auto"] = max(MAX_ERR["auto"], err_auto)
    MAX_ERR["fd"] = max(MAX_ERR["fd"], err_fd)


def test_thousands_of_extreme_cases_stay_finite_and_exact():
    """One batched sweep: 64 samples x 48 measurements = 3,072 stress cases per process."""
    for proc_name in sorted(PROCESSES):
        proc, t, sigma, A, x, lower, upper, sd = _qcs_case(
            7, 48, 20, 64, "gaussian", proc_name, 0.3, -2.0, 1, True, False)
        lik = ivd.likelihoods.QuantizedDiagonal(torch.tensor(A), torch.tensor(lower),
                                                torch.tensor(upper), sigma, proc)
        a_t = float(proc.a(t))
        step = 1e-4 * float(sd.min()) * a_t / float(np.linalg.norm(A, axis=1).max())
        err_auto, err_fd = _check_gradient(lik, x, t, step)
        assert err_auto < 1e-10 and err_fd < 1e-5, (proc_name, err_auto, err_fd)
        # the per-measurement factor g_m (before A^T) is the truncated mean / sd, finite everywhere
        z = x @ A.T / a_t
        alpha = (lower - z) / sd
        beta = (upper - z) / sd
        g = to_numpy(ivd.special.truncnorm_mean(torch.tensor(alpha), torch.tensor(beta)))
        assert np.isfinite(g).all() and g.size == 3072
        assert np.all((g >= alpha) & (g <= beta))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_no_nan_or_inf_on_every_backend(xp, dtype):
    """QCS and EP scores, QCS log-likelihood: 2,560 stress cases, every backend, both dtypes."""
    proc = PROCESSES["ve"]
    _, t, sigma, A, x, lower, upper, _ = _qcs_case(3, 40, 16, 64, "correlated", "ve", 0.2, -2.0,
                                                   1, True, False)
    cast = lambda v: from_numpy(v, xp, dtype=getattr(xp, dtype))  # noqa: E731
    A_, lo_, hi_, x_ = cast(A), cast(lower), cast(upper), cast(x)
    qcs = ivd.likelihoods.QuantizedDiagonal(A_, lo_, hi_, sigma, proc)
    ep = ivd.likelihoods.QuantizedEP(A_, lo_, hi_, sigma, proc)
    for out in (qcs.score(x_, t), ep.score(x_, t), qcs.log_likelihood(x_, t)):
        assert out.dtype == x_.dtype
        assert bool(xp.all(xp.isfinite(out))), "non-finite output"
    assert lower.size == 2560


def test_reported_maximum_errors():
    """Runs last in this module: print the worst errors seen (for the record)."""
    print(f"\nmax |score - autodiff| / max|score| = {MAX_ERR['auto']:.2e}; "
          f"max |FD - <score, d>| / |score| = {MAX_ERR['fd']:.2e}; "
          f"QCS cases checked by hypothesis: {MAX_ERR['cases']}")
