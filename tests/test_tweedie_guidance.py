"""DPS and PiGDM: guidance equals autodiff through Tweedie's estimate; one network pass per step."""

from __future__ import annotations

import math

import numpy as np
import pytest

import invdiff as ivd
from invdiff.processes import convert

torch = pytest.importorskip("torch")


class TinyNet:
    """A small nonlinear torch ScoreModel (any prediction kind) with an autograd ``vjp``.

    ``callable_cotangent=True`` makes ``vjp`` accept a function of the prediction, evaluated
    between the forward and the backward pass (one network pass for DPS/PiGDM).
    """

    def __init__(self, process, prediction, n, *, callable_cotangent=False, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.W1 = torch.randn(n, 8, generator=g, dtype=torch.float64) / math.sqrt(n)
        self.W2 = torch.randn(8, n, generator=g, dtype=torch.float64) / math.sqrt(8)
        self.process, self.prediction = process, prediction
        self.vjp_accepts_callable = callable_cotangent
        self.forward_calls = 0

    def _f(self, x, t):
        self.forward_calls += 1
        return torch.tanh(x @ self.W1 + 0.01 * t) @ self.W2 + 0.3 * x

    def __call__(self, x_t, t):
        with torch.no_grad():
            return self._f(x_t, t)

    def vjp(self, x_t, t, cotangent):
        x = x_t.detach().requires_grad_(True)
        with torch.enable_grad():
            pred = self._f(x, t)
            c = cotangent(pred.detach()) if callable(cotangent) else cotangent
            (pulled,) = torch.autograd.grad(pred, x, grad_outputs=c)
        return pred.detach(), pulled


KINDS = [("vp", "eps"), ("vp", "x0"), ("ve", "score"), ("flow", "velocity")]
PROCS = {"vp": (ivd.processes.VP.linear(), 300.0), "ve": (ivd.processes.VE.geometric(), 2.0),
         "flow": (ivd.processes.Flow.rectified(), 0.4)}


def _setup(proc_name, kind, single):
    proc, t = PROCS[proc_name]
    rng = np.random.default_rng(0)
    N, M = 6, 4
    A = torch.tensor(rng.normal(size=(M, N)) / 2)
    y = torch.tensor(rng.normal(size=M))
    x = torch.tensor(rng.normal(size=(3, N)))
    model = TinyNet(proc, kind, N, callable_cotangent=single)
    return proc, t, A, y, x, model


@pytest.mark.parametrize("proc_name,kind", KINDS)
@pytest.mark.parametrize("single", [True, False])
def test_dps_is_minus_zeta_grad_of_per_sample_residual_norm(proc_name, kind, single):
    proc, t, A, y, x, model = _setup(proc_name, kind, single)
    dps = ivd.likelihoods.DPS(A, y, model, zeta=0.7)
    assert dps.needs_model and dps.single_pass == single
    model.forward_calls = 0
    g, eps = dps.score_and_eps(x, t)
    assert model.forward_calls == (1 if single else 2)
    # reference: autograd of sum_i ||y - A x0_i(x_i)|| (samples are independent)
    xr = x.clone().requires_grad_(True)
    x0 = convert(model._f(xr, t), kind, "x0", xr, t, proc)
    norms = torch.linalg.norm(y - x0 @ A.T, dim=-1)
    (grad,) = torch.autograd.grad(norms.sum(), xr)
    torch.testing.assert_close(g, -0.7 * grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(eps, convert(model(x, t), kind, "eps", x, t, proc))
    torch.testing.assert_close(dps.info["residual_norm"], norms.detach())
    torch.testing.assert_close(dps.score(x, t), g)


def test_dps_norm_is_per_sample():
    """Scaling one sample's residual must not change another sample's guidance."""
    proc, t, A, y, x, model = _setup("vp", "eps", True)
    dps = ivd.likelihoods.DPS(A, y, model, zeta=1.0)
    g = dps.score(x, t)
    x2 = x.clone()
    x2[1] = 50.0 * x2[1]
    g2 = dps.score(x2, t)
    torch.testing.assert_close(g2[0], g[0])
    torch.testing.assert_close(g2[2], g[2])


@pytest.mark.parametrize("proc_name,kind", KINDS)
@pytest.mark.parametrize("single", [True, False])
def test_pigdm_is_grad_through_x0_with_fixed_covariance(proc_name, kind, single):
    proc, t, A, y, x, model = _setup(proc_name, kind, single)
    sigma_y = 0.2
    lik = ivd.likelihoods.PiGDM(ivd.operators.DenseMatrix(A), y, sigma_y, model)
    model.forward_calls = 0
    g, eps = lik.score_and_eps(x, t)
    assert model.forward_calls == (1 if single else 2)
    a, b = proc.a(t), proc.b(t)
    r2 = b * b / (a * a + b * b)
    K = r2 * A @ A.T + sigma_y**2 * torch.eye(A.shape[0], dtype=A.dtype)
    xr = x.clone().requires_grad_(True)
    e = y - convert(model._f(xr, t), kind, "x0", xr, t, proc) @ A.T
    objective = -0.5 * (e * torch.linalg.solve(K, e.T).T).sum()
    (grad,) = torch.autograd.grad(objective, xr)
    torch.testing.assert_close(g, grad, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(eps, convert(model(x, t), kind, "eps", x, t, proc))


def test_work_with_analytic_priors_in_numpy():
    """The core's own ScoreModels (invdiff.priors) provide an exact vjp: no torch needed."""
    proc = ivd.processes.VP.linear()
    prior = ivd.priors.GaussianPrior(np.zeros(3), np.eye(3), process=proc)
    A = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    y = np.array([0.5, -1.0])
    x = np.random.default_rng(0).normal(size=(2, 3))
    for lik in (ivd.likelihoods.DPS(A, y, prior, zeta=0.3),
                ivd.likelihoods.PiGDM(A, y, 0.1, prior)):
        g, eps = lik.score_and_eps(x, 100.0)
        assert g.shape == x.shape and np.isfinite(g).all()
        np.testing.assert_allclose(eps, prior(x, 100.0))
    # for N(0, I), x0_hat = a x_t (linear): PiGDM has a closed form to compare with
    a, b = proc.a(100.0), proc.b(100.0)
    r2 = b * b / (a * a + b * b)
    K = r2 * A @ A.T + 0.01 * np.eye(2)
    want = a * (A.T @ np.linalg.solve(K, (y - a * x @ A.T).T)).T
    np.testing.assert_allclose(ivd.likelihoods.PiGDM(A, y, 0.1, prior).score(x, 100.0), want,
                               rtol=1e-10)
