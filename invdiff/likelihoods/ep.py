r"""QCS-SGM+: expectation propagation for quantized measurements, general ``A`` (ALGORITHMS §5).

For a general sensing matrix the pseudo-likelihood is the probability of a box under a
correlated Gaussian,

.. math:: \tilde p(y \mid x_t) = \int \mathcal N(w; b, C) \prod_m \mathbb 1[l_m \le w_m < u_m]\,dw,
          \qquad b = A x_t / a_t,\quad C = r_t^2 A A^\top + \sigma^2 I,

and its gradient :math:`\nabla_b\log\tilde p = C^{-1}\,\mathbb E[w - b \mid \text{box}]` is
approximated by expectation propagation between a factorised module (one truncated normal
per measurement) and a Gaussian (LMMSE) module, both with a scalar precision.
"""

from __future__ import annotations

from .._array_api import (
    check_positive,
    clip,
    device_of,
    index_dtype,
    namespace,
    wide_dtypes,
)
from ..special import _halfline_mean, _halfline_moments, truncnorm_mean, truncnorm_moments
from ._common import Cached
from .quantized import _Quantized

__all__ = ["QuantizedEP"]

_LAMBDA_FLOOR = 1e-6  # the reference code's floor on the message precision lambda_G


def _gram_eigh(A, op):
    r""":math:`A A^\top = W \mathrm{diag}(d) W^\top`, from the operator's cache when it has one."""
    if op is not None and callable(getattr(op, "gram_eigh", None)):
        return op.gram_eigh()
    xp = namespace(A=A)
    wide = xp.astype(A, wide_dtypes(xp, device_of(A))[0])
    d, W = xp.linalg.eigh(wide @ wide.T)
    d = xp.where(d > 0, d, 0.0)  # A A^T is PSD; rounding can make tiny eigenvalues negative
    return xp.astype(d, A.dtype), xp.astype(W, A.dtype)


class QuantizedEP(_Quantized):
    r"""QCS-SGM+ likelihood score for quantized measurements by expectation propagation.

    Parameters
    ----------
    A : array of shape (M, N) or DenseMatrix
        Sensing matrix; a :class:`~invdiff.operators.DenseMatrix` contributes its cached
        ``gram_eigh()`` and ``in_shape``.
    lower, upper : array of shape ``(*batch, M)``
        Bin edges of the observed codes (see :class:`QuantizedDiagonal`).
    sigma : float
        Standard deviation of the pre-quantization noise, ``> 0``.
    process : ForwardProcess
    iters : int, default 5
        Maximum number of EP iterations per :meth:`score` call.
    damping : float, default 0.02
        Weight of the previous value in every message update from the second iteration on
        (``new <- (1 - damping) new + damping old``), as in the reference code.
    tol : float, optional
        A sample stops (its messages freeze) once its ``mean|Δh_F| + |Δλ_F|`` is below it.
        Default 1e-5 when every bin is a half-line (1-bit), 1e-3 otherwise (the reference's
        values).
    check_every : int, optional
        Ask the host every ``check_every`` iterations whether any sample is still running,
        and stop when none is. Default ``None``: never ask, run ``iters`` iterations with
        the converged samples frozen (the same numbers, and no device synchronisation; on a
        CPU backend ``check_every=1`` saves the iterations after convergence).
    in_shape : tuple of int, optional
        Trailing shape of ``x_t``.

    Attributes
    ----------
    info : dict
        Diagnostics of the last call, arrays of shape ``(*batch,)`` on the input's device
        (converting them waits for the device): ``"iterations"`` (used by each sample),
        ``"change"`` (its last ``mean|Δh_F| + |Δλ_F|``), ``"converged"``, and
        ``"fallback"`` (True where EP's messages were not finite and the sample was scored
        with the diagonal message of :class:`QuantizedDiagonal` instead).
    totals : dict
        Over all calls since construction: ``"calls"`` (int) and ``"fallback"`` (a 0-d
        device array: the number of (call, sample) pairs that fell back).

    Notes
    -----
    Meng & Kabashima, "QCS-SGM+: Improved Quantized Compressed Sensing With Score-Based
    Generative Models" (AAAI 2024), Algorithm 1, in natural parameters for
    :math:`v = w - b \sim \mathcal N(0, C)`. With :math:`A A^\top = W\mathrm{diag}(d)W^\top`
    (computed once) and :math:`D_k = 1/(r_t^2 d_k + \sigma^2)`, each iteration is

    1. factor module: moments of :math:`\mathcal N(v_m; h_{F,m}/\lambda_F, 1/\lambda_F)`
       truncated to :math:`v_m + b_m \in [l_m, u_m)` (:func:`~invdiff.special.truncnorm_moments`),
       mean :math:`m_F`, :math:`\chi_F` = mean of the variances;
    2. :math:`h_G = m_F/\chi_F - h_F`, :math:`\lambda_G = \max(1/\chi_F - \lambda_F, 10^{-6})`;
    3. Gaussian module: :math:`m_G = W\mathrm{diag}(\iota)W^\top h_G` with
       :math:`\iota_k = 1/(\lambda_G + D_k)`, :math:`\chi_G = \mathrm{mean}(\iota)`;
    4. :math:`h_F = m_G/\chi_G - h_G`, :math:`\lambda_F = 1/\chi_G - \lambda_G`,

    two products with :math:`W` — :math:`O(M^2)` — instead of the reference's dense
    :math:`M \times M` rebuild. Step 4 is evaluated in the algebraically equal form

    .. math:: \lambda_F = \frac{\mathrm{mean}(D\,\iota)}{\mathrm{mean}(\iota)}, \qquad
              h_F = W\mathrm{diag}\big(\iota\,(\lambda_F - D)\big)W^\top h_G,

    because :math:`1/\chi_G - \lambda_G` cancels when :math:`\lambda_G \gg D` (narrow bins:
    many bits, float32, a large :math:`\sigma`) and rounds to :math:`\le 0` — the reference's
    NaN. The weighted mean always lies in :math:`[\min D, \max D]`, so :math:`\lambda_F > 0`.
    Should the messages still overflow, the sample falls back to the diagonal (QCS-SGM)
    message and ``info["fallback"]`` says so.

    The score is :math:`A^\top g / a_t` with
    :math:`g_m = \sqrt{\lambda_F}\,\frac{\varphi(\tilde\alpha_m) - \varphi(\tilde\beta_m)}
    {\Phi(\tilde\beta_m) - \Phi(\tilde\alpha_m)}`,
    :math:`\tilde\alpha_m = \sqrt{\lambda_F}(l_m - b_m) - h_{F,m}/\sqrt{\lambda_F}` (likewise
    :math:`\tilde\beta_m`), which equals :math:`C^{-1}` times EP's posterior mean of
    :math:`v` at a fixed point. When :math:`A A^\top = cI` the first iteration already gives
    :math:`h_F = 0`, :math:`\lambda_F = 1/v` and the score of :class:`QuantizedDiagonal`.
    Each sample stops on its own as in the reference code; the convergence test runs on the
    device, so a call makes no host synchronisation unless ``check_every`` is set.

    The first iteration starts from the cavity :math:`h_F = 0`, :math:`\lambda_F = 1` and
    is not damped. From the second on, each message :math:`m_F, \chi_F, h_G, \lambda_G, h_F,
    \lambda_F` moves by :math:`w\,(\text{new} - \text{old})` with the per-sample weight
    :math:`w = 1 - \text{damping}` while the sample runs and :math:`w = 0` once it has
    converged: one multiply-add both damps and freezes (a converged sample's messages no
    longer change, and its ``change`` is the last one it made).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> A = ivd.operators.correlated_matrix(20, 30, rho=0.8, rng=ivd.random.Generator(0))
    >>> x0 = ivd.random.Generator(1).normal((30,), like=A)
    >>> w = A @ x0
    >>> lower = np.where(w >= 0, 0.0, -np.inf); upper = np.where(w >= 0, np.inf, 0.0)
    >>> lik = ivd.likelihoods.QuantizedEP(A, lower, upper, sigma=0.1,
    ...                                   process=ivd.processes.VE.geometric(1.0, 0.01, 5))
    >>> lik.score(np.zeros((2, 30)), 0.5).shape, lik.info["iterations"].tolist()
    ((2, 30), [5, 5])
    """

    def __init__(self, A, lower, upper, sigma, process, *, iters: int = 5,
                 damping: float = 0.02, tol: float | None = None, check_every=None,
                 in_shape=None):
        super().__init__(A, lower, upper, sigma, process, in_shape)
        self.iters = _positive_int("iters", iters)
        self.check_every = None if check_every is None else _positive_int("check_every",
                                                                           check_every)
        damping = float(damping)
        if not 0.0 <= damping < 1.0:
            raise ValueError(f"damping must be in [0, 1); received {damping!r}")
        self.damping = damping
        xp = namespace(A=self.A)
        open_below = xp.isinf(lower)
        self.halflines = bool(xp.all(open_below | xp.isinf(upper)))  # 1-bit: a fast path
        if tol is None:
            tol = 1e-5 if self.halflines else 1e-3
        self.tol = check_positive("tol", tol)
        d, W = _gram_eigh(self.A, self.op)
        self._gram = Cached(d=d, W=W, Wt=W.T)
        # half-lines as v_m <= s_m (e_m - b_m) with the sign s_m = +1 for (-inf, u], -1 for
        # [l, inf): one standardized edge per measurement instead of two
        ones = xp.ones_like(lower)
        self._edge = Cached(sign=xp.where(open_below, ones, -ones),
                            edge=xp.where(open_below, upper, lower))
        self.info: dict = {}
        self.totals: dict = {"calls": 0, "fallback": 0}

    def __repr__(self) -> str:
        M, N = self.A.shape
        return (f"QuantizedEP(M={M}, N={N}, sigma={self.sigma}, iters={self.iters}, "
                f"damping={self.damping}, tol={self.tol}, process={self.process!r})")

    def messages(self, x_t, t):
        r"""Run EP at :math:`(x_t, t)`: the factor-side cavity ``(h_F, lambda_F)`` and ``info``.

        Returns
        -------
        h_F : array of shape ``(*batch, M)``
        lam_F : array of shape ``(*batch, 1)``
        info : dict
            As :attr:`info` (also stored there).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> lik = ivd.likelihoods.QuantizedEP(np.eye(2), np.array([0.0, -np.inf]),
        ...     np.array([np.inf, 0.0]), 0.1, ivd.processes.VE.geometric(1.0, 0.01, 5))
        >>> h_F, lam_F, info = lik.messages(np.zeros((3, 2)), 0.5)
        >>> h_F.shape, lam_F.shape, info["converged"].tolist()
        ((3, 2), (3, 1), [True, True, True])
        """
        xp, c, batch, a1, r2, z = self._project(x_t, t)
        return self._ep(xp, r2, z, x_t, self._box(xp, c, z, x_t))

    def _ep(self, xp, r2, z, x_t, box):
        g = self._gram.like(x_t, xp)
        D = (r2 * g["d"] + self.sigma**2) ** -1.0  # x ** -1.0: one operation, 1.0 / x two
        gaussian = _Gaussian(xp, D, g["W"], g["Wt"])
        # iteration 1 from the cavity h_F = 0, lam_F = 1: no damping, every sample moves
        m_F, chi_F = self._factor(xp, box, None, None)
        h_G = m_F / chi_F
        lam_G = clip(chi_F ** -1.0 - 1.0, _LAMBDA_FLOOR, None, xp)
        h_F, lam_F = gaussian(h_G, lam_G)
        change = _mean(xp, xp.abs(h_F)) + xp.abs(lam_F - 1.0)
        count = xp.ones_like(change)  # iterations each sample has run
        for it in range(1, self.iters):
            # the step weight w = (1 - damping) * active, (*batch, 1): one multiply-add per
            # message both damps it and freezes the samples that have converged (w = 0)
            active = change >= self.tol  # NaN compares False: such a sample stops too
            if self.check_every and it % self.check_every == 0 and not bool(xp.any(active)):
                break
            moving = xp.astype(active, change.dtype)
            count = count + moving
            w = (1.0 - self.damping) * moving
            # factor module: truncated moments under the cavity N(h_F/lam_F, 1/lam_F)
            m_new, chi_new = self._factor(xp, box, h_F, lam_F)
            m_F = m_F + w * (m_new - m_F)
            chi_F = chi_F + w * (chi_new - chi_F)
            # extrinsic message to the Gaussian module
            h_G = h_G + w * (m_F / chi_F - h_F - h_G)
            lam_G = lam_G + w * (clip(chi_F ** -1.0 - lam_F, _LAMBDA_FLOOR, None, xp) - lam_G)
            # Gaussian module and the extrinsic message back
            h_new, lam_new = gaussian(h_G, lam_G)
            step_h = w * (h_new - h_F)
            step_lam = w * (lam_new - lam_F)
            h_F, lam_F = h_F + step_h, lam_F + step_lam
            change = xp.where(active, _mean(xp, xp.abs(step_h)) + xp.abs(step_lam), change)
        self.info = self._diagnostics(xp, count, change[..., 0], h_F, lam_F)
        return h_F, lam_F, self.info

    def _factor(self, xp, box, h_F, lam_F):
        """Factor module: ``(m_F, chi_F)``, the mean and mean variance of ``v`` under the
        cavity ``N(h_F/lam_F, 1/lam_F)`` truncated to the bins (``None``: ``N(0, 1)``)."""
        if h_F is not None:
            sq = xp.sqrt(lam_F)
            h_sq = h_F / sq  # sq * mu
        if self.halflines:  # v_m <= s_m e_m after multiplying by the sign s_m
            sign, e = box
            x = e if h_F is None else sq * e - sign * h_sq
            mean, var = _halfline_moments(x, xp)
            mean = sign * mean
        else:
            lo, hi = box
            if h_F is not None:
                lo, hi = sq * lo - h_sq, sq * hi - h_sq
            mean, var = truncnorm_moments(lo, hi)
        # the floor only matters when every bin has zero width (exact measurements)
        chi = clip(_mean(xp, var), 1e-12, None, xp)
        if h_F is None:
            return mean, chi
        return (h_sq + mean) / sq, chi / lam_F

    def _diagnostics(self, xp, count, change, h_F, lam_F) -> dict:
        """Per-sample ``info`` (device arrays: no synchronisation) and the running totals."""
        iterations = count[..., 0]
        lam = lam_F[..., 0]
        ok = xp.isfinite(lam) & (lam > 0) & xp.all(xp.isfinite(h_F), axis=-1)
        info = {"iterations": xp.astype(iterations, index_dtype(xp, device_of(change))),
                "change": change,
                "converged": change < self.tol, "fallback": ~ok}
        self.totals["calls"] += 1
        self.totals["fallback"] = self.totals["fallback"] + xp.sum(
            xp.astype(info["fallback"], info["iterations"].dtype))
        return info

    def score(self, x_t, t):
        r"""Score :math:`\nabla_{x_t}\log\tilde p(y \mid x_t) \approx A^\top g / a_t` (EP estimate).

        Parameters
        ----------
        x_t : array, shape ``(*batch, *in_shape)``
        t : float or array of shape ``(*batch,)``

        Returns
        -------
        array
            Same shape, namespace, device and dtype as ``x_t``; diagnostics in :attr:`info`.
        """
        xp, c, batch, a1, r2, z = self._project(x_t, t)
        box = self._box(xp, c, z, x_t)
        h_F, lam_F, info = self._ep(xp, r2, z, x_t, box)
        # fallback: QCS-SGM's diagonal message, h = 0 and precision 1/v_m per measurement
        ok = ~info["fallback"][..., None]
        lam = xp.where(ok, lam_F, 1.0 / (self.sigma**2 + r2 * c["n2"]))
        h = xp.where(ok, h_F, 0.0)
        sq = xp.sqrt(lam)
        if self.halflines:
            sign, e = box
            g = sign * sq * _halfline_mean(sq * e - sign * (h / sq), xp)
        else:
            lo, hi = box
            g = sq * truncnorm_mean(sq * lo - h / sq, sq * hi - h / sq)
        return self._back(g, c, batch, a1, xp)

    def _box(self, xp, c, z, x_t):
        """The bins for ``v = w - b``: ``(lower - z, upper - z)``, or for half-lines
        ``(s, s (e - z))`` with ``v_m <= s_m (e_m - z_m)`` after multiplying by ``s_m``."""
        if not self.halflines:
            return c["lower"] - z, c["upper"] - z
        k = self._edge.like(x_t, xp)
        return k["sign"], k["sign"] * (k["edge"] - z)


class _Gaussian:
    r"""Gaussian (LMMSE) module in the eigenbasis of :math:`A A^\top`: the extrinsic message
    ``(h_F, lam_F)`` back to the factor module from ``(h_G, lam_G)`` (Notes, steps 3-4)."""

    def __init__(self, xp, D, W, Wt):
        self.xp, self.D, self.W, self.Wt = xp, D, W, Wt

    def __call__(self, h_G, lam_G):
        inv = (lam_G + self.D) ** -1.0
        D_inv = self.D * inv
        # 1/chi_G - lam_G and m_G/chi_G - h_G without their cancellation (Notes)
        lam_F = _mean(self.xp, D_inv) / _mean(self.xp, inv)
        return ((h_G @ self.W) * (lam_F * inv - D_inv)) @ self.Wt, lam_F


def _mean(xp, x):
    """Mean over the last axis, kept."""
    return xp.mean(x, axis=-1, keepdims=True)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
            or value < 1:
        raise ValueError(f"{name} must be a positive integer; received {value!r}")
    return int(value)
