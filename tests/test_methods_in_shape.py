"""Recipes with a plain (M, N) matrix and ``in_shape`` on an image-shaped prior."""

from __future__ import annotations

import numpy as np
import pytest

import invdiff as ivd
from tests._helpers import assert_close, from_numpy

SHAPE = (3, 2, 2)  # a tiny "image": N = 12


class ImagePrior:
    """The exact Gaussian prior of a flat vector, seen as (C, H, W) images."""

    def __init__(self, flat):
        self.flat, self.process, self.prediction = flat, flat.process, flat.prediction

    def _call(self, f, x_t, *args):
        xp = ivd._array_api.namespace(x_t)
        batch = tuple(x_t.shape[:-3])
        out = f(xp.reshape(x_t, batch + (12,)), *args)
        return xp.reshape(out, batch + SHAPE)

    def __call__(self, x_t, t):
        return self._call(self.flat, x_t, t)

    def vjp(self, x_t, t, cotangent):
        xp = ivd._array_api.namespace(x_t)
        batch = tuple(x_t.shape[:-3])
        pred, pulled = self.flat.vjp(xp.reshape(x_t, batch + (12,)), t,
                                     xp.reshape(cotangent, batch + (12,)))
        return xp.reshape(pred, batch + SHAPE), xp.reshape(pulled, batch + SHAPE)


def _problem(xp, process):
    g = np.random.default_rng(0)
    A = from_numpy(g.normal(size=(5, 12)) / np.sqrt(5), xp)
    y = from_numpy(g.normal(size=(5,)), xp)
    flat = ivd.priors.GaussianPrior(from_numpy(np.zeros(12), xp),
                                    from_numpy(np.ones(12), xp), process=process)
    return A, y, flat


@pytest.mark.parametrize("name", ["dmps", "pigdm", "dmps_flow", "ot_ode"])
def test_image_shaped_samples_equal_the_flat_ones(xp, name):
    process = ivd.processes.Flow() if "flow" in name or name == "ot_ode" else \
        ivd.processes.VP.linear()
    A, y, flat = _problem(xp, process)
    kw = {"rng": 0, "n": 3, "steps": 10}
    if name == "dmps":
        kw["clip_x0"] = None
    f = getattr(ivd.methods, name)
    x_flat = f(flat, A, y, 0.1, **kw)
    for op in (A, ivd.operators.DenseMatrix(A)):
        x_img = f(ImagePrior(flat), op, y, 0.1, in_shape=SHAPE, **kw)
        assert tuple(x_img.shape) == (3, *SHAPE)
        assert_close(xp.reshape(x_img, (3, 12)), x_flat, rtol=1e-6, atol=1e-9)


def test_dps_with_in_shape(xp):
    A, y, flat = _problem(xp, ivd.processes.VP.linear())
    x = ivd.methods.dps(ImagePrior(flat), A, y, in_shape=SHAPE, rng=0, n=2, steps=5,
                        clip_x0=None)
    assert tuple(x.shape) == (2, *SHAPE)


def test_in_shape_must_hold_the_columns():
    A, y, flat = _problem(ivd._array_api.namespace(np.zeros(1)), ivd.processes.VP.linear())
    with pytest.raises(ValueError, match=r"in_shape must have 12 elements \(the columns of op\)"):
        ivd.methods.dmps(ImagePrior(flat), A, y, 0.1, in_shape=(3, 2, 3), steps=2)
    with pytest.raises(ValueError, match="op must be a 2-D matrix"):
        ivd.methods.dmps(ImagePrior(flat), np.zeros(12), y, 0.1, in_shape=SHAPE, steps=2)
