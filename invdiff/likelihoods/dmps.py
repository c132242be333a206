r"""DMPS: the closed-form pseudo-likelihood score of Meng & Kabashima (ALGORITHMS.md §2).

Under the uninformative-prior assumption :math:`p(x_0 \mid x_t) \approx
\mathcal N(x_t/a_t, (b_t/a_t)^2 I)`,

.. math:: \tilde p(y \mid x_t) = \mathcal N\big(y;\ A x_t / a_t,\
          \sigma_y^2 I + r_t^2 A A^\top\big), \qquad r_t = b_t / a_t ,

whose gradient with the thin SVD :math:`A = U \Sigma V^\top` is elementwise work between
:math:`V^\top`/:math:`V` and a precomputed :math:`U^\top y`.
"""

from __future__ import annotations

import math

from .._array_api import check_floating, check_trailing_shape, device_of, is_array, namespace
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

__all__ = ["DMPS"]

_SVD_METHODS = ("apply", "Vt", "V", "Ut", "U", "singulars_like")


def _row_orthogonal(A, xp) -> bool:
    """True when :math:`A A^\\top` is diagonal to rounding (then no SVD is needed)."""
    G = A @ A.T
    diag = xp.linalg.diagonal(G)
    off = G - diag[:, None] * xp.eye(G.shape[0], dtype=G.dtype, device=device_of(G))
    scale = float(xp.max(xp.abs(diag))) if diag.shape[0] else 0.0
    tol = 100.0 * max(A.shape) * float(xp.finfo(A.dtype).eps) * scale
    return float(xp.max(xp.abs(off))) <= tol


class DMPS:
    r"""DMPS pseudo-likelihood score :math:`\nabla_{x_t}\log\tilde p(y \mid x_t)`, ``y = A x0 + n``.

    Parameters
    ----------
    op : SVDOperator or array of shape (M, N)
        The forward operator with its thin SVD (``Vt``, ``V``, ``Ut``, ``U``,
        ``singulars_like``), e.g. any :mod:`invdiff.operators` class. A plain matrix is used
        directly when its rows are orthogonal (:math:`A A^\top` diagonal) and wrapped in
        :class:`invdiff.operators.DenseMatrix` otherwise.
    y : array
        Measurement, shape ``(*batch, *op.out_shape)`` (batch dims broadcast against
        ``x_t``'s), finite.
    sigma_y : float
        Measurement noise standard deviation, ``> 0``.
    process : ForwardProcess
        Gives :math:`a_t, b_t` for the time ``t`` passed to :meth:`score`.
    in_shape : tuple of int, optional
        Trailing shape of ``x_t`` for a plain matrix (default ``(N,)``).

    Attributes
    ----------
    row_orthogonal : bool
        Whether the diagonal shortcut (no SVD) is in use.

    Notes
    -----
    Meng & Kabashima, "Diffusion Model Based Posterior Sampling for Noisy Linear Inverse
    Problems" (ACML 2024, arXiv:2211.12343), eq. (11)–(13), in the general
    :math:`x_t = a_t x_0 + b_t\varepsilon` notation:

    .. math:: \nabla_{x_t}\log\tilde p(y \mid x_t) = \frac{1}{a_t} V\,\mathrm{diag}\!\Big(
              \frac{s_i}{\sigma_y^2 + r_t^2 s_i^2}\Big)
              \big(U^\top y - s \odot V^\top x_t / a_t\big).

    The component of :math:`y` outside the range of :math:`U` does not enter the score
    (:math:`A^\top` annihilates it). For a row-orthogonal :math:`A` (inpainting,
    subsampled orthogonal transforms) the inner matrix is diagonal and the score is
    :math:`A^\top g` with
    :math:`g_m = (y_m - a_m^\top x_t/a_t)/(a_t\sigma_y^2 + (b_t^2/a_t)\|a_m\|^2)`.
    The same formula covers DDPM (VP), NCSN (VE) and flows; the samplers apply the paper's
    step weights (DDPM: :math:`\lambda\beta_t/\sqrt{\alpha_t}`, flow:
    :math:`\lambda\,\frac{t}{1-t}\Delta t`).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.Inpainting(np.array([True, False, True]))
    >>> lik = ivd.likelihoods.DMPS(op, np.array([1.0, 0.0, -1.0]), sigma_y=0.1,
    ...                            process=ivd.processes.VE.geometric(10.0, 0.01, 10))
    >>> np.round(lik.score(np.zeros((1, 3)), 0.1), 6)  # y_m / (sigma_y^2 + t^2) on observed pixels
    array([[ 50.,   0., -50.]])
    """

    needs_model = False

    def __init__(self, op, y, sigma_y, process, *, in_shape=None):
        check_process(process)
        self.sigma_y = sigma_value("sigma_y", sigma_y)
        self.process = process
        self.row_orthogonal = False
        if is_array(op):
            A, _ = as_matrix(op, "op")
            xp = namespace(op=A)
            self.in_shape = event_shape(in_shape, None, A.shape[1], matrix="op")
            if _row_orthogonal(A, xp):
                self.row_orthogonal = True
                self.out_shape = (A.shape[0],)
                check_measurement("y", y, A, self.out_shape)
                self.op = A
                self._const = Cached(A=A, y=y, n2=xp.sum(A * A, axis=1))
                self.y = y
                return
            from ..operators import DenseMatrix

            op = DenseMatrix(A)
        missing = [m for m in _SVD_METHODS if not hasattr(op, m)]
        if missing:
            raise TypeError("op must be an SVDOperator (with apply, Vt, V, Ut, U, "
                            f"singulars_like) or an (M, N) array; {type(op).__name__} lacks "
                            f"{', '.join(missing)}")
        self.op = op
        self.in_shape = tuple(op.in_shape)
        self.out_shape = tuple(op.out_shape)
        check_measurement("y", y, None, self.out_shape)
        self.y = y
        uty = op.Ut(y)
        # the part of y outside range(U) is a constant of log p~ (A x_t never reaches it)
        perp = y - op.U(uty)
        axes = tuple(range(-len(self.out_shape), 0))
        xp = namespace(y=y)
        perp2 = xp.asarray(xp.sum(perp * perp, axis=axes), dtype=y.dtype)  # NumPy: not a scalar
        self._const = Cached(y=y, Uty=uty, perp2=perp2)

    def __repr__(self) -> str:
        return f"DMPS(op={self.op!r}, sigma_y={self.sigma_y}, process={self.process!r})"

    # ------------------------------------------------------------------------------------
    def _setup(self, x_t, t):
        check_floating("x_t", x_t)
        xp = namespace(x_t=x_t, y=self.y)
        check_trailing_shape("x_t", x_t, self.in_shape)
        a, b = time_coefficients(self.process, t)
        return xp, self._const.like(x_t, xp), a, b

    def score(self, x_t, t):
        r"""Score :math:`\nabla_{x_t}\log\tilde p(y \mid x_t)`.

        Parameters
        ----------
        x_t : array, shape ``(*batch, *in_shape)``
        t : float or array of shape ``(*batch,)``
            Time in the process's own variable (:math:`a_t > 0`).

        Returns
        -------
        array
            Same shape, namespace, device and dtype as ``x_t``.
        """
        xp, c, a, b = self._setup(x_t, t)
        var = self.sigma_y**2
        if self.row_orthogonal:
            xf, batch = flatten(x_t, self.in_shape, xp)
            a1, b1 = expand(a, 1, x_t, xp), expand(b, 1, x_t, xp)
            resid = c["y"] - (xf @ c["A"].T) / a1
            g = resid / (var * a1 + (b1 * b1 / a1) * c["n2"])
            return xp.reshape(g @ c["A"], tuple(x_t.shape))
        op = self.op
        s = op.singulars_like(x_t)
        a1 = expand(a, 1, x_t, xp)
        r2 = (expand(b, 1, x_t, xp) / a1) ** 2  # in x_t's dtype, whatever t's
        w = s * (c["Uty"] - s * op.Vt(x_t) / a1) / (var + r2 * (s * s))
        return op.V(w) / expand(a, len(self.in_shape), x_t, xp)

    def log_likelihood(self, x_t, t):
        r"""The closed form :math:`\log\tilde p(y \mid x_t)` whose gradient :meth:`score` is.

        Returns
        -------
        array of shape ``(*batch,)``
            :math:`-\tfrac12\big[e^\top(\sigma_y^2 I + r_t^2AA^\top)^{-1}e + \log\det
            (2\pi(\sigma_y^2 I + r_t^2 A A^\top))\big]`, :math:`e = y - A x_t/a_t`.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> lik = ivd.likelihoods.DMPS(np.eye(2), np.zeros(2), sigma_y=1.0,
        ...                            process=ivd.processes.VE.geometric(1.0, 0.01, 5))
        >>> round(float(lik.log_likelihood(np.zeros(2), 0.01)[()]), 6)  # log N(0; 0, (1+1e-4) I)
        -1.837977
        """
        xp, c, a, b = self._setup(x_t, t)
        var = self.sigma_y**2
        a1 = expand(a, 1, x_t, xp)
        r2 = (expand(b, 1, x_t, xp) / a1) ** 2  # in x_t's dtype, whatever t's
        if self.row_orthogonal:
            xf, _ = flatten(x_t, self.in_shape, xp)
            e = c["y"] - (xf @ c["A"].T) / a1
            v = var + r2 * c["n2"]
            quad = xp.sum(e * e / v, axis=-1)
            logdet = xp.sum(xp.log(v + 0.0 * e), axis=-1)
            m = e.shape[-1]
            return -0.5 * (quad + logdet + m * math.log(2 * math.pi))
        op = self.op
        s = op.singulars_like(x_t)
        ute = c["Uty"] - s * op.Vt(x_t) / a1  # U^T e, e = y - A x_t / a_t
        v = var + r2 * (s * s)
        quad = xp.sum(ute * ute / v, axis=-1) + c["perp2"] / var
        m = math.prod(self.out_shape)
        logdet = xp.sum(xp.log(v + 0.0 * ute), axis=-1) + (m - s.shape[0]) * math.log(var)
        return -0.5 * (quad + logdet + m * math.log(2 * math.pi))
