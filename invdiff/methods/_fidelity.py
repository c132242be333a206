r"""The data terms of the decoupled methods: exact likelihoods of the clean signal :math:`x_0`.

DiffPIR, DAPS and RED-diff never form :math:`p(y \mid x_t)`; they need :math:`p(y \mid x_0)`
itself (its gradient, or its proximal map). Both come from the existing pseudo-likelihoods
evaluated where the diffusion noise vanishes, :math:`b_t = 0`:

* DMPS at :math:`b_t = 0` is :math:`\nabla\log\mathcal N(y; Ax_0, \sigma_y^2 I) =
  A^\top(y - Ax_0)/\sigma_y^2`, through the SVD (any operator) or a row-orthogonal matrix;
* QCS-SGM at :math:`b_t = 0` is the exact quantized likelihood
  :math:`\prod_m[\Phi(\beta_m) - \Phi(\alpha_m)]` for *any* :math:`A` (its diagonal
  approximation concerns only the diffusion noise :math:`b_t^2 AA^\top`), evaluated in log
  space (:func:`invdiff.special.truncnorm_mean`).
"""

from __future__ import annotations

from .. import likelihoods as _lik
from .._array_api import is_array, namespace
from ..likelihoods._common import Cached, as_matrix, check_measurement
from ..processes import ForwardProcess

__all__ = ["svd_operator", "clean_likelihood", "SVDProximal"]

_SVD_METHODS = ("apply", "adjoint", "Vt", "V", "Ut", "U", "singulars_like", "pinv")


class _NoiseFree(ForwardProcess):
    """:math:`a_t = 1`, :math:`b_t = 0` at every time: a pseudo-likelihood becomes exact."""

    def a(self, t):
        return t * 0.0 + 1.0

    def b(self, t):
        return t * 0.0

    def da(self, t):
        return t * 0.0

    def db(self, t):
        return t * 0.0


NOISE_FREE = _NoiseFree()


def svd_operator(op, name: str = "op"):
    """``op`` as an SVD operator: arrays become :class:`~invdiff.operators.DenseMatrix`."""
    if is_array(op):
        from ..operators import DenseMatrix

        as_matrix(op, name)  # validates: 2-D, floating, finite
        return DenseMatrix(op)
    missing = [m for m in _SVD_METHODS if not callable(getattr(op, m, None))]
    if missing:
        raise TypeError(f"{name} must be an SVDOperator (with {', '.join(_SVD_METHODS)}) or an "
                        f"(M, N) array; {type(op).__name__} lacks {', '.join(missing)}")
    return op


def clean_likelihood(op, y, sigma_y, *, in_shape=None):
    r"""``(likelihood, in_shape, batch)``: an object whose ``score(x0, 0.0)`` is
    :math:`\nabla_{x_0}\log p(y \mid x_0)`.

    ``y`` an array: Gaussian, :math:`y = Ax_0 + n`, :math:`n\sim\mathcal N(0, \sigma_y^2 I)`.
    ``y`` a pair ``(lower, upper)`` of bin edges: quantized, :math:`y = Q(Ax_0 + n)` with
    the bins of :meth:`invdiff.measurements.Quantizer.bins` (``op`` a matrix or
    :class:`~invdiff.operators.DenseMatrix`).
    """
    if isinstance(y, (tuple, list)):
        lower, upper = y
        lik = _lik.QuantizedDiagonal(op, lower, upper, sigma_y, NOISE_FREE, in_shape=in_shape)
        return lik, tuple(lik.in_shape), tuple(lower.shape[:-1])
    lik = _lik.DMPS(op, y, sigma_y, NOISE_FREE, in_shape=in_shape)
    out_ndim = len(tuple(lik.out_shape))
    return lik, tuple(lik.in_shape), tuple(y.shape[: y.ndim - out_ndim])


class SVDProximal:
    r"""The data proximal map :math:`\arg\min_x \|y - Ax\|^2 + \rho\|x - z\|^2` through the SVD.

    .. math:: (A^\top A + \rho I)^{-1}(A^\top y + \rho z)
              = z + V\,\mathrm{diag}\Big(\frac{s_i}{s_i^2 + \rho}\Big)
                \big(U^\top y - s \odot V^\top z\big),

    i.e. :math:`V\mathrm{diag}(1/(s^2+\rho))V^\top(\cdot) + (I - VV^\top)(\cdot)/\rho` applied
    to :math:`A^\top y + \rho z`; the part of :math:`z` outside the row space of :math:`A`
    is kept as is. :math:`U^\top y` is computed once.
    """

    def __init__(self, op, y):
        self.op = svd_operator(op)
        self.in_shape = tuple(self.op.in_shape)
        self.out_shape = tuple(self.op.out_shape)
        check_measurement("y", y, None, self.out_shape)
        self.y = y
        self._const = Cached(Uty=self.op.Ut(y))

    def __call__(self, z, rho: float):
        xp = namespace(z=z, y=self.y)
        op = self.op
        s = op.singulars_like(z)
        uty = self._const.like(z, xp)["Uty"]
        return z + op.V(s * (uty - s * op.Vt(z)) / (s * s + rho))
