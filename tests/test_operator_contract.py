"""The public SVDOperator contract: a user's subclass with the public hooks, check_svd."""

from __future__ import annotations

import math

import numpy as np
import pytest

import invdiff as ivd
from tests._helpers import assert_close, from_numpy


class BinColumns(ivd.operators.SVDOperator):
    """Average pairs of columns: s = 1/sqrt(2), U = I (the docstring's worked example)."""

    def __init__(self, in_shape):
        C, H, W = in_shape
        super().__init__(in_shape, (C, H, W // 2))

    def factors(self, xp, device):
        return {"s": xp.full((math.prod(self.out_shape),), 1 / math.sqrt(2), dtype=xp.float64,
                             device=device)}

    def apply_Vt(self, xp, f, x):
        v = xp.sum(xp.reshape(x, (*x.shape[:-1], x.shape[-1] // 2, 2)), axis=-1)
        return xp.reshape(v / math.sqrt(2), (*x.shape[:-3], -1))

    def apply_V(self, xp, f, z):
        v = xp.reshape(z, (*z.shape[:-1], *self.out_shape, 1)) / math.sqrt(2)
        return xp.reshape(xp.concat([v, v], axis=-1), (*z.shape[:-1], *self.in_shape))

    def apply_Ut(self, xp, f, y):
        return xp.reshape(y, (*y.shape[:-3], -1))

    def apply_U(self, xp, f, w):
        return xp.reshape(w, (*w.shape[:-1], *self.out_shape))


def test_a_user_operator_with_the_public_hooks_works_everywhere(xp):
    op = BinColumns((2, 3, 4))
    like = xp.zeros(1, dtype=xp.float32)
    errors = ivd.operators.check_svd(op, like=like)
    assert max(errors.values()) < 1e-5
    x = from_numpy(np.arange(24.0).reshape(2, 3, 4), xp, dtype=xp.float32)
    expect = from_numpy(np.arange(24.0).reshape(2, 3, 2, 2).mean(-1), xp, dtype=xp.float32)
    assert_close(op.apply(x), expect, rtol=1e-6)
    assert_close(op.pinv(op.apply(x)), xp.reshape(
        xp.stack([expect, expect], axis=-1), (2, 3, 4)), rtol=1e-6)
    assert op.rank == 12


def test_dmps_runs_on_a_user_operator():
    op = BinColumns((1, 2, 4))
    prior = ivd.priors.GaussianPrior(np.zeros(8), np.ones(8), process=ivd.processes.VE.geometric(
        5.0, 0.01, 5))
    lik = ivd.likelihoods.DMPS(op, np.array([[[1.0, -1.0], [0.5, 0.0]]]), 0.1, prior.process)
    assert lik.score(np.zeros((3, 1, 2, 4)), 0.5).shape == (3, 1, 2, 4)


def test_the_public_hooks_are_the_builtin_operators_private_ones():
    import array_api_compat.numpy as xp

    op = ivd.operators.SeparableBlur.gaussian((1, 6, 6), sigma=1.0, size=5)
    f = op.factors(xp, "cpu")
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6))
    np.testing.assert_array_equal(op.apply_Vt(xp, f, x), op._Vt(xp, f, x))
    np.testing.assert_array_equal(op.apply_A(xp, f, x), op.apply(x))
    np.testing.assert_array_equal(op.apply_At(xp, f, op.apply(x)), op.adjoint(op.apply(x)))


@pytest.mark.parametrize("make", [
    lambda: ivd.operators.Identity((2, 3)),
    lambda: ivd.operators.Inpainting(np.array([[True, False], [True, True]]), in_shape=(3, 2, 2)),
    lambda: ivd.operators.SuperResolution(2, in_shape=(1, 6, 6), kind="bicubic"),
    lambda: ivd.operators.SeparableBlur.uniform((1, 6, 6), size=3),
    lambda: ivd.operators.CircularBlur(np.ones((3, 3)) / 9, in_shape=(1, 6, 6)),
    lambda: ivd.operators.Colorization((3, 3, 3)),
    lambda: ivd.operators.DenseMatrix(np.random.default_rng(0).normal(size=(4, 7))),
    lambda: ivd.operators.SubsampledOrthogonal(16, 5, kind="hadamard"),
], ids=["identity", "inpainting", "sr", "blur", "circular", "color", "dense", "hadamard"])
def test_every_builtin_operator_passes_check_svd(make):
    assert max(ivd.operators.check_svd(make()).values()) < 1e-8


def test_check_svd_catches_a_broken_operator_and_missing_hooks():
    class Broken(BinColumns):
        def apply_V(self, xp, f, z):  # forgets the 1/sqrt(2): V not orthonormal
            v = xp.reshape(z, (*z.shape[:-1], *self.out_shape, 1))
            return xp.reshape(xp.concat([v, v], axis=-1), (*z.shape[:-1], *self.in_shape))

    with pytest.raises(ValueError, match="V orthonormal: relative error"):
        ivd.operators.check_svd(Broken((1, 2, 4)))

    class Empty(ivd.operators.SVDOperator):
        pass

    with pytest.raises(NotImplementedError, match=r"Empty must implement factors\(xp, device\)"):
        Empty((2,), (2,)).apply(np.zeros(2))
    with pytest.raises(TypeError, match="lacks"):
        ivd.operators.check_svd(np.eye(2))
