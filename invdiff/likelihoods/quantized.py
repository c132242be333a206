r"""QCS-SGM: closed-form likelihood score for quantized measurements (ALGORITHMS.md §4).

Measurements :math:`y = Q(A x_0 + n)`, :math:`n \sim \mathcal N(0, \sigma^2 I)`: each
:math:`y_m` names a bin :math:`[l_m, u_m)` (outer bins open, :math:`\pm\infty`). With the
uninformative-prior assumption and :math:`A A^\top` treated as diagonal, the likelihood
factorises over measurements into differences of normal CDFs.
"""

from __future__ import annotations

import math

from .._array_api import check_floating, namespace
from ..special import log_ndtr_diff, truncnorm_mean
from ._common import (
    Cached,
    as_matrix,
    check_bins,
    check_process,
    event_shape,
    expand,
    flatten,
    sigma_value,
    time_coefficients,
)

__all__ = ["QuantizedDiagonal"]


class _Quantized:
    """Validation and the common first step :math:`z = A x_t / a_t` of QCS-SGM and QCS-SGM+."""

    needs_model = False

    def __init__(self, A, lower, upper, sigma, process, in_shape=None):
        check_process(process)
        A, op = as_matrix(A, "A")
        check_bins(lower, upper, A)
        self.sigma = sigma_value("sigma", sigma)
        self.A, self.op, self.lower, self.upper, self.process = A, op, lower, upper, process
        self.in_shape = event_shape(in_shape, op, A.shape[1])
        xp = namespace(A=A)
        self._const = Cached(A=A, lower=lower, upper=upper, n2=xp.sum(A * A, axis=1))

    @property
    def M(self) -> int:
        """Number of measurements."""
        return int(self.A.shape[0])

    def _project(self, x_t, t):
        """``xp, consts, batch, a1, r2, z`` with ``z = A x_t / a_t`` of shape ``(*batch, M)``."""
        check_floating("x_t", x_t)
        xp = namespace(x_t=x_t, A=self.A)
        c = self._const.like(x_t, xp)
        xf, batch = flatten(x_t, self.in_shape, xp)
        a, b = time_coefficients(self.process, t)
        a1 = expand(a, 1, x_t, xp)
        r2 = (expand(b, 1, x_t, xp) / a1) ** 2  # in x_t's dtype, whatever t's
        z = (xf @ c["A"].T) / a1
        return xp, c, batch, a1, r2, z

    def _back(self, g, c, batch, a1, xp):
        r""":math:`A^\top g / a_t` in the shape of ``x_t``."""
        return xp.reshape((g @ c["A"]) / a1, batch + self.in_shape)


class QuantizedDiagonal(_Quantized):
    r"""QCS-SGM likelihood score for quantized measurements, :math:`A A^\top` treated as diagonal.

    Parameters
    ----------
    A : array of shape (M, N) or DenseMatrix
        Sensing matrix (a :class:`~invdiff.operators.DenseMatrix` contributes its ``A`` and
        ``in_shape``).
    lower, upper : array of shape ``(*batch, M)``
        Bin edges :math:`[l_m, u_m)` of the observed codes; ``-inf``/``+inf`` for open outer
        bins (1-bit: ``(-inf, 0)`` or ``[0, inf)``). A bin with ``lower == upper`` is an exact
        (unquantized) measurement :math:`y_m = l_m`.
    sigma : float
        Standard deviation of the noise added before quantization, ``> 0``.
    process : ForwardProcess
        Gives :math:`a_t, b_t` (QCS-SGM uses VE: :math:`a = 1`, :math:`b = \sigma_t`).
    in_shape : tuple of int, optional
        Trailing shape of ``x_t`` (default: the DenseMatrix's, else ``(N,)``), e.g.
        ``(1, 28, 28)`` for MNIST.

    Notes
    -----
    Meng & Kabashima, "Quantized Compressed Sensing with Score-Based Generative Models"
    (ICLR 2023), Theorem 1, in the general notation: with :math:`z_m = a_m^\top x_t/a_t`,
    :math:`v_m = \sigma^2 + (b_t/a_t)^2\|a_m\|^2` (exact row norms of ``A``),
    :math:`\alpha_m = (l_m - z_m)/\sqrt{v_m}`, :math:`\beta_m = (u_m - z_m)/\sqrt{v_m}`,

    .. math:: \tilde p(y \mid x_t) = \prod_m \big[\Phi(\beta_m) - \Phi(\alpha_m)\big], \qquad
              \nabla_{x_t}\log\tilde p = \frac{1}{a_t} A^\top g, \quad
              g_m = \frac{\varphi(\alpha_m) - \varphi(\beta_m)}
                         {\sqrt{v_m}\,[\Phi(\beta_m) - \Phi(\alpha_m)]} .

    :math:`g_m\sqrt{v_m}` is the mean of a standard normal truncated to
    :math:`[\alpha_m, \beta_m]` (:func:`invdiff.special.truncnorm_mean`), evaluated without
    the reference code's 1e-6 probability clamp, so it stays finite and accurate for
    standardized residuals of any size and bins of any width. As a bin shrinks to a point
    :math:`y_m`, :math:`g_m \to (y_m - z_m)/v_m` — the unquantized (Jalal et al. 2021) term;
    zero-width bins contribute the density :math:`\mathcal N(y_m; z_m, v_m)` to
    :meth:`log_likelihood`.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> A = np.eye(2)
    >>> lower, upper = np.array([0.0, -np.inf]), np.array([np.inf, 0.0])  # y = sign = (+1, -1)
    >>> lik = ivd.likelihoods.QuantizedDiagonal(A, lower, upper, sigma=1.0,
    ...                                         process=ivd.processes.VE.geometric(1.0, 0.01, 5))
    >>> np.round(lik.score(np.zeros((1, 2)), 0.01), 6)  # +-phi(0)/Phi(0)/sqrt(v)
    array([[ 0.797845, -0.797845]])
    """

    def __init__(self, A, lower, upper, sigma, process, *, in_shape=None):
        super().__init__(A, lower, upper, sigma, process, in_shape)

    def __repr__(self) -> str:
        M, N = self.A.shape
        return f"QuantizedDiagonal(M={M}, N={N}, sigma={self.sigma}, process={self.process!r})"

    def _standardized(self, x_t, t):
        xp, c, batch, a1, r2, z = self._project(x_t, t)
        sd = xp.sqrt(self.sigma**2 + r2 * c["n2"])
        alpha = (c["lower"] - z) / sd
        beta = (c["upper"] - z) / sd
        return xp, c, batch, a1, sd, alpha, beta

    def score(self, x_t, t):
        r"""Score :math:`\nabla_{x_t}\log\tilde p(y \mid x_t) = A^\top g / a_t`.

        Parameters
        ----------
        x_t : array, shape ``(*batch, *in_shape)``
        t : float or array of shape ``(*batch,)``

        Returns
        -------
        array
            Same shape, namespace, device and dtype as ``x_t``.
        """
        xp, c, batch, a1, sd, alpha, beta = self._standardized(x_t, t)
        g = truncnorm_mean(alpha, beta) / sd
        return self._back(g, c, batch, a1, xp)

    def log_likelihood(self, x_t, t):
        r"""Closed form :math:`\log\tilde p(y|x_t) = \sum_m \log(\Phi(\beta_m) - \Phi(\alpha_m))`.

        Returns an array of shape ``(*batch,)``.

        Zero-width bins (exact measurements) contribute :math:`\log\mathcal N(l_m; z_m, v_m)`.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> lik = ivd.likelihoods.QuantizedDiagonal(np.eye(1), np.array([-np.inf]),
        ...     np.array([0.0]), sigma=1.0, process=ivd.processes.VE.geometric(1.0, 0.01, 5))
        >>> round(float(lik.log_likelihood(np.zeros(1), 0.01)[()]), 6)  # log(1/2)
        -0.693147
        """
        xp, c, batch, a1, sd, alpha, beta = self._standardized(x_t, t)
        exact = c["lower"] == c["upper"]
        # the bin width in standardized units does not depend on x_t: passing it keeps the
        # autodiff gradient of narrow bins free of the +-1/width cancellation
        log_mass = log_ndtr_diff(alpha, beta, width=(c["upper"] - c["lower"]) / sd)
        # finite stand-in where not exact, so autodiff through `where` sees no inf
        alpha_e = xp.where(exact, alpha, 0.0)
        log_density = -0.5 * alpha_e * alpha_e - xp.log(sd) - 0.5 * math.log(2 * math.pi)
        return xp.sum(xp.where(exact, log_density, log_mass), axis=-1)
