r"""ALD for linear compressed sensing: Jalal et al.'s annealed Gaussian likelihood term."""

from __future__ import annotations

from .._array_api import check_floating, namespace
from ._common import (
    Cached,
    as_matrix,
    check_measurement,
    check_process,
    event_shape,
    expand,
    flatten,
    sigma_value,
    time_coefficients,
)

__all__ = ["ALD"]


class ALD:
    r"""Annealed Langevin likelihood term for ``y = A x + n`` (Jalal et al., NeurIPS 2021).

    Parameters
    ----------
    A : array of shape (M, N) or DenseMatrix
    y : array of shape ``(*batch, M)``
    sigma : float
        Measurement noise standard deviation, ``> 0``.
    process : ForwardProcess
        Gives :math:`a_t, b_t` (VE: the Langevin level :math:`\sigma_i = b_t`).
    in_shape : tuple of int, optional
        Trailing shape of ``x_t`` (default the DenseMatrix's, else ``(N,)``).

    Notes
    -----
    Jalal, Arvinte, Daras, Price, Dimakis, Tamir, "Robust Compressed Sensing MRI with Deep
    Generative Priors" (NeurIPS 2021): the Langevin step adds
    :math:`A^\top (y - A x)/(\sigma^2 + \gamma_i^2)` with :math:`\gamma_i` the current noise
    level. In the general notation (:math:`z = A x_t / a_t`, :math:`r_t = b_t / a_t`):

    .. math:: g = \frac{1}{a_t} \frac{A^\top (y - z)}{\sigma^2 + r_t^2}.

    QCS-SGM's unquantized limit (:class:`QuantizedDiagonal` with zero-width bins) replaces
    :math:`r_t^2` by :math:`r_t^2\|a_m\|^2` per row: the same term with the exact row norms.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> lik = ivd.likelihoods.ALD(np.eye(2), np.array([1.0, -1.0]), sigma=1.0,
    ...                           process=ivd.processes.VE.geometric(1.0, 0.01, 5))
    >>> lik.score(np.zeros((1, 2)), 1.0)  # (y - 0) / (1 + 1)
    array([[ 0.5, -0.5]])
    """

    needs_model = False

    def __init__(self, A, y, sigma, process, *, in_shape=None):
        check_process(process)
        A, op = as_matrix(A, "A")
        check_measurement("y", y, A, (A.shape[0],))
        self.sigma = sigma_value("sigma", sigma)
        self.A, self.y, self.process = A, y, process
        # `or None`: an empty in_shape has always meant "the default" here
        self.in_shape = event_shape(in_shape or None, op, A.shape[1])
        self._const = Cached(A=A, y=y)

    def __repr__(self) -> str:
        M, N = self.A.shape
        return f"ALD(M={M}, N={N}, sigma={self.sigma}, process={self.process!r})"

    def score(self, x_t, t):
        """:math:`A^\\top (y - A x_t/a_t) / (a_t(\\sigma^2 + r_t^2))` in the shape of ``x_t``."""
        check_floating("x_t", x_t)
        xp = namespace(x_t=x_t, A=self.A)
        c = self._const.like(x_t, xp)
        xf, batch = flatten(x_t, self.in_shape, xp)
        a, b = time_coefficients(self.process, t)
        a1 = expand(a, 1, x_t, xp)
        r2 = expand((b / a) ** 2, 1, x_t, xp)
        g = (c["y"] - (xf @ c["A"].T) / a1) / (self.sigma**2 + r2)
        return xp.reshape((g @ c["A"]) / a1, batch + self.in_shape)
