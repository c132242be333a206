"""Bad inputs to the likelihoods raise ValueError/TypeError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import invdiff as ivd

VE = ivd.processes.VE.geometric(1.0, 0.01, 10)
VP = ivd.processes.VP.linear()
A = np.random.default_rng(0).normal(size=(4, 6))
LOWER = np.array([-np.inf, 0.0, -np.inf, 0.0])
UPPER = np.array([0.0, np.inf, 0.0, np.inf])
QUANTIZED = (ivd.likelihoods.QuantizedDiagonal, ivd.likelihoods.QuantizedEP)


class _Model:
    process, prediction = VP, "eps"

    def __call__(self, x, t):
        return 0.0 * x

    def vjp(self, x, t, cotangent):
        return 0.0 * x, 0.0 * x


# -- measurements --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda y: ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(A), y, 0.1, VP),
    lambda y: ivd.likelihoods.DMPS(np.eye(4, 6), y, 0.1, VP),  # row-orthogonal shortcut
    lambda y: ivd.likelihoods.DPS(A, y, _Model(), zeta=1.0),
    lambda y: ivd.likelihoods.PiGDM(A, y, 0.1, _Model()),
])
def test_bad_y(make):
    with pytest.raises(ValueError, match=r"y must have shape \(\*batch, 4\); received shape \(5"):
        make(np.zeros(5))
    with pytest.raises(ValueError, match="y must not contain NaN"):
        make(np.array([0.0, np.nan, 1.0, 2.0]))
    with pytest.raises(ValueError, match="y must be finite"):
        make(np.array([0.0, np.inf, 1.0, 2.0]))
    with pytest.raises(TypeError, match="y must be an array"):
        make([0.0, 1.0, 2.0, 3.0])


@pytest.mark.parametrize("sigma", [0.0, -0.1, float("nan"), float("inf")])
def test_noise_level_must_be_positive(sigma):
    with pytest.raises(ValueError, match="sigma_y must be a finite number > 0"):
        ivd.likelihoods.DMPS(A, np.zeros(4), sigma, VP)
    with pytest.raises(ValueError, match="sigma_y must be a finite number > 0"):
        ivd.likelihoods.PiGDM(A, np.zeros(4), sigma, _Model())
    for cls in QUANTIZED:
        with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
            cls(A, LOWER, UPPER, sigma, VE)
    with pytest.raises(ValueError, match="zeta must be a finite number > 0"):
        ivd.likelihoods.DPS(A, np.zeros(4), _Model(), zeta=sigma)


# -- bins ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", QUANTIZED)
def test_bad_bins(cls):
    with pytest.raises(ValueError, match=r"lower must have shape \(\*batch, 4\)"):
        cls(A, LOWER[:3], UPPER, 0.1, VE)
    with pytest.raises(ValueError, match=r"upper must have shape \(\*batch, 4\)"):
        cls(A, LOWER, np.append(UPPER, 1.0), 0.1, VE)
    with pytest.raises(ValueError, match="lower must be <= upper.*lower=1.0, upper=0.5"):
        cls(A, np.array([-np.inf, 1.0, 0.0, 0.0]), np.array([0.0, 0.5, 1.0, 1.0]), 0.1, VE)
    with pytest.raises(ValueError, match="lower must not contain NaN"):
        cls(A, np.array([np.nan, 0.0, 0.0, 0.0]), UPPER, 0.1, VE)
    with pytest.raises(ValueError, match="upper must not contain NaN"):
        cls(A, LOWER, np.array([np.nan, 0.0, 0.0, 0.0]), 0.1, VE)
    with pytest.raises(ValueError, match=r"lower must be < \+inf"):
        cls(A, np.array([np.inf, 0.0, 0.0, 0.0]), np.full(4, np.inf), 0.1, VE)
    with pytest.raises(ValueError, match="upper must be > -inf"):
        cls(A, np.full(4, -np.inf), np.array([-np.inf, 1.0, 1.0, 1.0]), 0.1, VE)
    with pytest.raises(TypeError, match="lower must have a real floating dtype"):
        cls(A, np.zeros(4, dtype=int), UPPER, 0.1, VE)


@pytest.mark.parametrize("cls", QUANTIZED)
def test_bad_matrix_and_shapes(cls):
    with pytest.raises(ValueError, match=r"A must be a 2-D matrix \(M, N\); received shape \(4,\)"):
        cls(A[:, 0], LOWER, UPPER, 0.1, VE)
    with pytest.raises(ValueError, match="A must hold finite numbers"):
        cls(np.where(A > 1, np.nan, A), LOWER, UPPER, 0.1, VE)
    with pytest.raises(ValueError, match=r"in_shape must have 6 elements"):
        cls(A, LOWER, UPPER, 0.1, VE, in_shape=(2, 2))
    lik = cls(A, LOWER, UPPER, 0.1, VE, in_shape=(1, 2, 3))
    assert lik.score(np.zeros((5, 1, 2, 3)), 0.5).shape == (5, 1, 2, 3)
    with pytest.raises(ValueError, match=r"x_t must have shape \(\*batch, 1, 2, 3\)"):
        lik.score(np.zeros((5, 6)), 0.5)
    with pytest.raises(TypeError, match="x_t must have a real floating dtype"):
        lik.score(np.zeros((5, 1, 2, 3), dtype=int), 0.5)
    with pytest.raises(TypeError, match="process must be a ForwardProcess"):
        cls(A, LOWER, UPPER, 0.1, "ve")


def test_ep_parameters():
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="iters must be a positive integer"):
            ivd.likelihoods.QuantizedEP(A, LOWER, UPPER, 0.1, VE, iters=bad)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"damping must be in \[0, 1\)"):
            ivd.likelihoods.QuantizedEP(A, LOWER, UPPER, 0.1, VE, damping=bad)
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        ivd.likelihoods.QuantizedEP(A, LOWER, UPPER, 0.1, VE, tol=0.0)
    multi = ivd.likelihoods.QuantizedEP(A, np.array([-1.0, 0.0, -np.inf, 0.0]), UPPER, 0.1, VE)
    assert multi.tol == 1e-3


# -- operators, models, backends, time ------------------------------------------------------------
def test_bad_operator_and_model():
    with pytest.raises(TypeError, match="op must be an SVDOperator"):
        ivd.likelihoods.DMPS(object(), np.zeros(4), 0.1, VP)
    with pytest.raises(ValueError, match=r"op must be a 2-D matrix"):
        ivd.likelihoods.DMPS(np.zeros(4), np.zeros(4), 0.1, VP)
    with pytest.raises(TypeError, match="model must be a ScoreModel with process, prediction"):
        ivd.likelihoods.DPS(A, np.zeros(4), lambda x, t: x, zeta=1.0)
    with pytest.raises(TypeError, match="op must be a linear operator"):
        ivd.likelihoods.DPS(object(), np.zeros(4), _Model(), zeta=1.0)


def test_mixed_backends_are_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="one backend"):
        ivd.likelihoods.QuantizedDiagonal(A, torch.tensor(LOWER), UPPER, 0.1, VE)
    lik = ivd.likelihoods.QuantizedDiagonal(A, LOWER, UPPER, 0.1, VE)
    with pytest.raises(TypeError, match="one backend"):
        lik.score(torch.zeros(2, 6, dtype=torch.float64), 0.5)
    dmps = ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(A), np.zeros(4), 0.1, VP)
    with pytest.raises(TypeError, match="one backend"):
        dmps.score(torch.zeros(2, 6, dtype=torch.float64), 10.0)
    with pytest.raises(TypeError, match="one backend"):
        ivd.likelihoods.DMPS(ivd.operators.DenseMatrix(A), torch.zeros(4, dtype=torch.float64),
                             0.1, VP)


def test_time_where_a_vanishes_is_refused():
    flow = ivd.processes.Flow.rectified()
    lik = ivd.likelihoods.DMPS(A, np.zeros(4), 0.1, flow)
    with pytest.raises(ValueError, match=r"t must be a time with a_t > 0.*t=1.0"):
        lik.score(np.zeros((1, 6)), 1.0)
    q = ivd.likelihoods.QuantizedDiagonal(A, LOWER, UPPER, 0.1, flow)
    with pytest.raises(ValueError, match="t must be a time with a_t > 0"):
        q.score(np.zeros((1, 6)), 1.0)
