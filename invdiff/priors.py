r"""Exact Gaussian and Gaussian-mixture priors: oracles for every sampler and likelihood.

A Gaussian mixture :math:`x_0 \sim \sum_k w_k \mathcal N(\mu_k, \Sigma_k)` stays a
mixture under any forward process :math:`x_t = a_t x_0 + b_t \varepsilon`
(ALGORITHMS.md §6):

.. math::

    p_t(x) = \sum_k w_k \, \mathcal N(x;\ a_t \mu_k,\ C_k),
    \qquad C_k = a_t^2 \Sigma_k + b_t^2 I,

so the score :math:`\nabla \log p_t = -\sum_k r_k(x)\, C_k^{-1}(x - a_t\mu_k)` is exact at
every ``t`` (responsibilities :math:`r_k` by a stable log-sum-exp). Each
:math:`\Sigma_k = Q_k \operatorname{diag}(\lambda_k) Q_k^\top` is decomposed once, so
:math:`C_k^{-1}` is a rotation and an elementwise division at any ``t``.

For a linear-Gaussian measurement :math:`y = A x_0 + n`, :math:`n \sim \mathcal N(0,
\sigma_y^2 I)`, the posterior is again a mixture (Kalman update of every component,
weights reweighted by the evidence :math:`\mathcal N(y; A\mu_k, A\Sigma_k A^\top +
\sigma_y^2 I)`), and by Bayes' rule the exact likelihood score is the difference of two
exact scores: :math:`\nabla_{x_t}\log p(y \mid x_t) = \nabla \log p_t(x_t \mid y) -
\nabla \log p_t(x_t)`.

Both prior classes implement the ScoreModel protocol (``model(x_t, t)``, ``process``,
``prediction``, ``vjp``) in the namespace, device and dtype of ``x_t``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ._array_api import (
    as_python_float,
    asarray_like,
    check_array,
    check_at_least,
    check_floating,
    device_of,
    is_array,
    namespace,
)
from .processes import PREDICTIONS, ForwardProcess, convert
from .random import Generator

__all__ = ["GaussianPrior", "GaussianMixturePrior", "ExactLikelihood"]


class _Params(NamedTuple):
    """Mixture parameters in one namespace, device and dtype."""

    log_w: Any  # (K,)
    means: Any  # (K, d)
    lam: Any  # (K, d) eigenvalues of Sigma_k (the diagonal for diagonal covariances)
    Q: Any  # (K, d, d) eigenvectors, or None for diagonal covariances


def _check_process(process) -> None:
    if not isinstance(process, ForwardProcess):
        raise TypeError(
            "process must be an invdiff.processes.ForwardProcess (VP, VE, Flow); "
            f"received {type(process).__name__}"
        )


def _check_real_finite(name: str, x) -> None:
    """A real (integer or floating) array with finite entries."""
    check_array(name, x)
    xp = namespace(**{name: x})
    if not xp.isdtype(x.dtype, ("integral", "real floating")):
        raise TypeError(f"{name} must have a real dtype; received {x.dtype}")
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError(f"{name} must be finite; received NaN or infinite entries")


def _check_prediction(prediction) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}; received {prediction!r}")


def _sym_eigh(xp, cov, name):
    """Eigen-decomposition of symmetric PSD matrices ``(K, d, d)``; negative round-off clipped."""
    scale = float(xp.max(xp.abs(cov))) if math.prod(cov.shape) else 0.0
    tol = math.sqrt(xp.finfo(cov.dtype).eps) * max(scale, 1.0)
    asym = float(xp.max(xp.abs(cov - xp.matrix_transpose(cov))))
    if asym > tol:
        raise ValueError(f"{name} must be symmetric; received a matrix with |C - C^T| = {asym:.3g}")
    lam, Q = xp.linalg.eigh(0.5 * (cov + xp.matrix_transpose(cov)))
    _check_psd(xp, lam, name, tol)
    return xp.clip(lam, 0.0, None), Q


def _check_psd(xp, lam, name, tol) -> None:
    low = float(xp.min(lam))
    if low < -tol:
        raise ValueError(f"{name} must be positive semi-definite; received eigenvalue {low:.3g}")


def _full_covs(xp, p: _Params):
    """``Sigma_k`` as dense ``(K, d, d)`` matrices."""
    if p.Q is None:
        d = p.lam.shape[-1]
        eye = xp.eye(d, dtype=p.lam.dtype, device=device_of(p.lam))
        return p.lam[:, :, None] * eye
    return xp.matmul(p.Q * p.lam[:, None, :], xp.matrix_transpose(p.Q))


def _rotate_in(xp, Q, r):
    """``Q_k^T r_k`` for ``r`` of shape ``(K, n, d)`` (identity for diagonal covariances)."""
    # Row vectors times Q_k: one (n, d) @ (d, d) product per component, BLAS-sized.
    return r if Q is None else xp.matmul(r, Q)


def _rotate_out(xp, Q, w):
    """``Q_k w_k`` for ``w`` of shape ``(K, n, d)``."""
    return w if Q is None else xp.matmul(w, xp.matrix_transpose(Q))


def _softmax(xp, logits, axis):
    # Responsibilities of far-apart components underflow without the shift.
    shifted = logits - xp.max(logits, axis=axis, keepdims=True)
    e = xp.exp(shifted)
    return e / xp.sum(e, axis=axis, keepdims=True)


def _logsumexp(xp, logits, axis):
    m = xp.max(logits, axis=axis, keepdims=True)
    return xp.squeeze(m, axis=axis) + xp.log(xp.sum(xp.exp(logits - m), axis=axis))


class _Mixture:
    """Shared engine of :class:`GaussianPrior` and :class:`GaussianMixturePrior`."""

    # -- construction ---------------------------------------------------------------------
    def _setup(self, log_w, means, lam, Q, process, prediction) -> None:
        _check_process(process)
        _check_prediction(prediction)
        self.process = process
        self.prediction = prediction
        self._params = _Params(log_w, means, lam, Q)
        self._cache: dict[tuple, _Params] = {}
        self.dim = int(means.shape[-1])

    @classmethod
    def _from_params(cls, params: _Params, process, prediction):
        obj = cls.__new__(cls)
        obj._setup(*params, process, prediction)
        return obj

    @staticmethod
    def _decompose(xp, covs, K, d, name):
        """``(lam, Q)`` from ``(K, d)`` diagonal or ``(K, d, d)`` full covariances."""
        if tuple(covs.shape) == (K, d):
            _check_psd(xp, covs, name, 0.0)
            return covs, None
        if tuple(covs.shape) == (K, d, d):
            return _sym_eigh(xp, covs, name)
        raise ValueError(
            f"{name} must have shape {(K, d)} (diagonal) or {(K, d, d)} (full); "
            f"received shape {tuple(covs.shape)}"
        )

    # -- parameters in the caller's dtype/device -------------------------------------------
    def _params_like(self, x):
        p = self._params
        xp = namespace(x_t=x, **{"the prior's parameters": p.means})
        key = (str(x.dtype), str(device_of(x)))
        if key not in self._cache:
            if x.dtype == p.means.dtype:
                self._cache[key] = p
            else:
                self._cache[key] = _Params(*(None if v is None else xp.astype(v, x.dtype)
                                             for v in p))
        return xp, self._cache[key]

    @property
    def weights(self):
        """Mixture weights, shape ``(K,)`` (they sum to one)."""
        return namespace(self._params.log_w).exp(self._params.log_w)

    @property
    def means(self):
        """Component means, shape ``(K, d)``."""
        return self._params.means

    @property
    def covs(self):
        """Component covariances as dense matrices, shape ``(K, d, d)``."""
        return _full_covs(namespace(self._params.means), self._params)

    # -- the score, at any time --------------------------------------------------------
    def _flat(self, x, t):
        """``x`` as ``(n, d)``, and ``t`` as a float or an ``(n, 1)`` column."""
        check_floating("x_t", x)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"x_t must have shape (*batch, {self.dim}); received {tuple(x.shape)}")
        xp = namespace(x_t=x)
        batch = tuple(x.shape[:-1])
        x2 = xp.reshape(x, (math.prod(batch), self.dim))
        if not is_array(t) or t.ndim == 0:
            return x2, self.process.check_time(as_python_float(t) if is_array(t) else t), batch
        namespace(x_t=x, t=t)
        if tuple(t.shape) != batch:
            raise ValueError(f"t must be a scalar or have the batch shape {batch}; "
                             f"received shape {tuple(t.shape)}")
        return x2, xp.reshape(xp.astype(t, x.dtype), (-1, 1)), batch

    def _terms(self, xp, p: _Params, x, t):
        """Per-component pieces at ``(x, t)``, components first: ``u_k = C_k^{-1}(x - a_t mu_k)``
        ``(K, n, d)``, the eigenvalues ``v`` of ``C_k``, responsibilities ``(K, n)`` (``None``
        for one component) and their logits."""
        a, b = self.process.a(t), self.process.b(t)
        if is_array(t):
            a, b = a[None, ...], b[None, ...]  # (1, n, 1) against (K, n, d)
        z = _rotate_in(xp, p.Q, x[None, :, :] - a * p.means[:, None, :])
        v = a * a * p.lam[:, None, :] + b * b  # eigenvalues of C_k = a^2 Sigma_k + b^2 I
        w = z / v
        logits = (p.log_w[:, None] - 0.5 * xp.sum(z * w, axis=-1)
                  - 0.5 * xp.sum(xp.log(v), axis=-1))
        resp = None if p.log_w.shape[0] == 1 else _softmax(xp, logits, axis=0)
        return _rotate_out(xp, p.Q, w), v, resp, logits

    @staticmethod
    def _combine(xp, u, resp):
        """``sum_k r_k u_k`` (``u`` is ``(K, n, d)``)."""
        return u[0, ...] if resp is None else xp.sum(resp[:, :, None] * u, axis=0)

    def score(self, x_t, t):
        r"""Exact score :math:`\nabla_x \log p_t(x_t)`, same shape/namespace/dtype as ``x_t``.

        Parameters
        ----------
        x_t : array, shape ``(*batch, d)``
        t : float or array
            The process's own time (a scalar, or an array of the batch shape).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ve = ivd.processes.VE(10, 0.1)
        >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.eye(2), process=ve)
        >>> prior.score(np.array([[2.0, 0.0]]), 1.0)  # -x / (1 + sigma^2)
        array([[-1., -0.]])
        """
        x2, tt, batch = self._flat(x_t, t)
        xp, p = self._params_like(x_t)
        u, _, resp, _ = self._terms(xp, p, x2, tt)
        return xp.reshape(-self._combine(xp, u, resp), x_t.shape)

    def log_prob(self, x_t, t):
        r"""Exact :math:`\log p_t(x_t)`, shape ``batch``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ve = ivd.processes.VE(10, 0.1)
        >>> prior = ivd.priors.GaussianPrior(np.zeros(1), np.ones(1), process=ve)
        >>> round(float(prior.log_prob(np.zeros((1, 1)), 1.0)[0]), 6)  # log N(0; 0, 2)
        -1.265512
        """
        x2, tt, batch = self._flat(x_t, t)
        xp, p = self._params_like(x_t)
        _, _, _, logits = self._terms(xp, p, x2, tt)
        log_norm = 0.5 * self.dim * math.log(2 * math.pi)
        return xp.reshape(_logsumexp(xp, logits, axis=0) - log_norm, batch)

    def _eps(self, xp, p, x2, tt):
        u, v, resp, _ = self._terms(xp, p, x2, tt)
        b = self.process.b(tt)
        return b * self._combine(xp, u, resp), (u, v, resp, b)

    def __call__(self, x_t, t):
        """The exact prediction of kind :attr:`prediction` at ``(x_t, t)``."""
        x2, tt, _ = self._flat(x_t, t)
        xp, p = self._params_like(x_t)
        eps, _ = self._eps(xp, p, x2, tt)
        return xp.reshape(convert(eps, "eps", self.prediction, x2, tt, self.process), x_t.shape)

    #: :meth:`vjp` also takes a callable ``cotangent(prediction) -> array`` (one evaluation).
    vjp_accepts_callable = True

    def vjp(self, x_t, t, cotangent):
        r"""``(prediction, J^T cotangent)``: the exact vector-Jacobian product of :meth:`__call__`.

        ``cotangent`` is an array of ``x_t``'s shape, or a callable that receives the
        prediction and returns one (DPS's cotangent depends on the prediction).

        With :math:`u_k = C_k^{-1}(x - a_t\mu_k)` and :math:`s = -\sum_k r_k u_k`, the
        Hessian of :math:`\log p_t` is :math:`H = -\sum_k r_k C_k^{-1} + \sum_k r_k u_k u_k^\top
        - s s^\top` (symmetric), and :math:`\hat\varepsilon = -b_t s`, so
        :math:`J_\varepsilon^\top c = -b_t H c`; other kinds are affine in
        :math:`(\hat\varepsilon, x_t)`.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ve = ivd.processes.VE(10, 0.1)
        >>> prior = ivd.priors.GaussianPrior(np.zeros(1), np.ones(1), process=ve,
        ...                                  prediction="score")
        >>> pred, pulled = prior.vjp(np.ones((1, 1)), 1.0, np.ones((1, 1)))
        >>> pred, pulled  # s = -x/2, ds/dx = -1/2
        (array([[-0.5]]), array([[-0.5]]))
        >>> prior.vjp(np.ones((1, 1)), 1.0, lambda pred: 2 * pred)[1]  # cotangent = 2 s = -1
        array([[0.5]])
        """
        x2, tt, _ = self._flat(x_t, t)
        xp, p = self._params_like(x_t)
        eps, (u, v, resp, b) = self._eps(xp, p, x2, tt)
        pred = xp.reshape(convert(eps, "eps", self.prediction, x2, tt, self.process), x_t.shape)
        if callable(cotangent):
            cotangent = cotangent(pred)
        check_floating("cotangent", cotangent)
        if tuple(cotangent.shape) != tuple(x_t.shape):
            raise ValueError(f"cotangent must have the shape of x_t, {tuple(x_t.shape)}; "
                             f"received {tuple(cotangent.shape)}")
        c2 = xp.reshape(asarray_like(cotangent, x_t, name="cotangent"), x2.shape)
        cinv_c = _rotate_out(xp, p.Q, _rotate_in(xp, p.Q, c2[None, :, :]) / v)
        if resp is None:
            h_c = -cinv_c[0, ...]
        else:
            s = -self._combine(xp, u, resp)
            u_dot_c = xp.sum(u * c2[None, :, :], axis=-1, keepdims=True)
            h_c = (self._combine(xp, u * u_dot_c - cinv_c, resp)
                   - s * xp.sum(s * c2, axis=-1, keepdims=True))
        j_eps_c = -b * h_c
        # The map eps -> pred is affine, pred = d_eps*eps + d_x*x, so its linear part applied
        # to (J_eps^T c, c) is exactly convert(J_eps^T c, ..., x_t=c).
        pulled = convert(j_eps_c, "eps", self.prediction, c2, tt, self.process)
        return pred, xp.reshape(pulled, x_t.shape)

    # -- sampling ------------------------------------------------------------------------
    def sample(self, n: int, rng: Generator):
        """``n`` exact samples of :math:`x_0`, shape ``(n, d)``, in the prior's namespace and dtype.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> vp = ivd.processes.VP.linear()
        >>> prior = ivd.priors.GaussianPrior(np.zeros(3), np.ones(3), process=vp)
        >>> prior.sample(5, ivd.random.Generator(0)).shape
        (5, 3)
        """
        if isinstance(n, bool) or int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer; received {n!r}")
        if not isinstance(rng, Generator):
            raise TypeError("rng must be an invdiff.random.Generator; "
                            f"received {type(rng).__name__}")
        n = int(n)
        p = self._params
        xp = namespace(p.means)
        K = p.log_w.shape[0]
        z = rng.normal((n, self.dim), like=p.means)
        if K == 1:
            k = xp.zeros((n,), dtype=xp.int64, device=device_of(p.means))
        else:
            u = rng.uniform((n,), like=p.means)
            cdf = xp.cumulative_sum(xp.exp(p.log_w))
            k = xp.clip(xp.searchsorted(cdf, u, side="right"), 0, K - 1)  # cdf[-1] may be < 1
        noise = z * xp.sqrt(xp.take(p.lam, k, axis=0))
        if p.Q is not None:
            noise = xp.matmul(xp.take(p.Q, k, axis=0), noise[:, :, None])[:, :, 0]
        return xp.take(p.means, k, axis=0) + noise

    # -- linear-Gaussian measurements ------------------------------------------------------
    def _measurement(self, A, y, sigma_y):
        p = self._params
        xp = namespace(**{"the prior's parameters": p.means})
        _check_real_finite("A", A)
        A = asarray_like(A, p.means, name="A")
        if A.ndim != 2 or A.shape[1] != self.dim:
            raise ValueError(f"A must have shape (M, {self.dim}); received {tuple(A.shape)}")
        _check_real_finite("y", y)
        y = asarray_like(y, p.means, name="y")
        if tuple(y.shape) != (A.shape[0],):
            raise ValueError(f"y must have shape ({A.shape[0]},) (one measurement); "
                             f"received {tuple(y.shape)}")
        return xp, A, y, check_at_least("sigma_y", sigma_y)

    def _posterior_params(self, A, y, sigma_y) -> _Params:
        r"""Kalman update of every component and evidence reweighting (log domain)."""
        xp, A, y, sigma_y = self._measurement(A, y, sigma_y)
        p = self._params
        M = A.shape[0]
        covs = _full_covs(xp, p)  # (K, d, d)
        cov_At = xp.matmul(covs, xp.matrix_transpose(A))  # Sigma_k A^T, (K, d, M)
        eye = xp.eye(M, dtype=A.dtype, device=device_of(A))
        S = xp.matmul(A, cov_At) + sigma_y**2 * eye  # A Sigma_k A^T + sigma_y^2 I
        e, W = xp.linalg.eigh(0.5 * (S + xp.matrix_transpose(S)))
        if float(xp.min(e)) <= 0:
            raise ValueError("A Sigma A^T + sigma_y^2 I is singular: with sigma_y = 0 the prior "
                             "covariance must be non-degenerate along the rows of A")
        S_inv = xp.matmul(W / e[:, None, :], xp.matrix_transpose(W))
        gain = xp.matmul(cov_At, S_inv)  # (K, d, M)
        resid = y - xp.matmul(p.means, xp.matrix_transpose(A))  # (K, M)
        means = p.means + xp.matmul(gain, resid[:, :, None])[:, :, 0]
        post = covs - xp.matmul(gain, xp.matrix_transpose(cov_At))
        lam, Q = _sym_eigh(xp, post, "posterior covariance")
        white = xp.matmul(resid[:, None, :], W)[:, 0, :]  # W_k^T r_k
        log_ev = -0.5 * xp.sum(white * white / e, axis=-1) - 0.5 * xp.sum(xp.log(e), axis=-1)
        log_w = p.log_w + log_ev
        return _Params(log_w - _logsumexp(xp, log_w, axis=0), means, lam, Q)

    def posterior(self, A, y, sigma_y):
        r"""Exact posterior :math:`p(x_0 \mid y)` for :math:`y = A x_0 + n`, :math:`n \sim
        \mathcal N(0, \sigma_y^2 I)`: a prior of the same class and process.

        Parameters
        ----------
        A : array, shape ``(M, d)``
        y : array, shape ``(M,)``
            One measurement (converted to the prior's dtype).
        sigma_y : float
            Noise standard deviation, ``>= 0``.

        Notes
        -----
        Per component, :math:`S_k = A\Sigma_k A^\top + \sigma_y^2 I`, gain
        :math:`G_k = \Sigma_k A^\top S_k^{-1}`, mean :math:`\mu_k + G_k(y - A\mu_k)`,
        covariance :math:`\Sigma_k - G_k A \Sigma_k`; weights
        :math:`\propto w_k \mathcal N(y; A\mu_k, S_k)`.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> vp = ivd.processes.VP.linear()
        >>> prior = ivd.priors.GaussianPrior(np.zeros(1), np.ones(1), process=vp)
        >>> post = prior.posterior(np.ones((1, 1)), np.array([2.0]), 1.0)
        >>> post.mean, post.cov  # the average of prior mean and y, half the variance
        (array([1.]), array([[0.5]]))
        """
        params = self._posterior_params(A, y, sigma_y)
        return type(self)._from_params(params, self.process, self.prediction)

    def exact_likelihood(self, A, y, sigma_y) -> ExactLikelihood:
        r"""The exact likelihood score :math:`\nabla_{x_t}\log p(y \mid x_t)` as a guidance object.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> vp = ivd.processes.VP.linear()
        >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.ones(2), process=vp)
        >>> lik = prior.exact_likelihood(np.eye(2)[:1], np.array([1.0]), 0.1)
        >>> lik.score(np.zeros((3, 2)), 500.0).shape
        (3, 2)
        """
        return ExactLikelihood(self, A, y, sigma_y)

    def __repr__(self) -> str:
        kind = "diagonal" if self._params.Q is None else "full"
        return (f"{type(self).__name__}(K={self._params.log_w.shape[0]}, d={self.dim}, "
                f"{kind} covariance, process={self.process!r}, prediction={self.prediction!r})")


class GaussianMixturePrior(_Mixture):
    r"""Gaussian mixture prior :math:`\sum_k w_k \mathcal N(\mu_k, \Sigma_k)`, exact for any
    process.

    Parameters
    ----------
    weights : array, shape ``(K,)``
        Non-negative, normalised to sum to one.
    means : array, shape ``(K, d)``
        Fixes the namespace, device and dtype of the prior's own arrays.
    covs : array, shape ``(K, d, d)`` (full) or ``(K, d)`` (diagonal)
        Symmetric positive semi-definite; decomposed once at construction.
    process : ForwardProcess
        The process whose time ``t`` the model is called with.
    prediction : {"eps", "x0", "score", "velocity"}, default "eps"
        What ``__call__`` returns (networks mostly predict eps; the other kinds exercise the
        conversions).

    Notes
    -----
    :math:`\hat\varepsilon(x_t, t) = -b_t\nabla\log p_t(x_t)` with
    :math:`\nabla \log p_t(x) = -\sum_k r_k(x)\, C_k^{-1}(x - a_t\mu_k)`,
    :math:`C_k = a_t^2\Sigma_k + b_t^2 I`, :math:`r_k \propto w_k\mathcal N(x; a_t\mu_k, C_k)`.
    The mixture is the test bed of MCGdiff (Cardoso et al., 2024) and DMPS (ALGORITHMS.md §6).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> means = np.array([[-2.0, 0.0], [2.0, 0.0]])
    >>> gmm = ivd.priors.GaussianMixturePrior(np.array([0.5, 0.5]), means, np.ones((2, 2)) * 0.1,
    ...                                       process=ivd.processes.VP.linear())
    >>> gmm.score(np.array([[1.0, 0.0]]), 0.0)  # pulled to the nearer mean (2, 0)
    array([[10., -0.]])
    >>> gmm.sample(4, ivd.random.Generator(0)).shape
    (4, 2)
    """

    def __init__(self, weights, means, covs, *, process: ForwardProcess, prediction: str = "eps"):
        check_floating("means", means)
        xp = namespace(means=means, weights=weights, covs=covs)
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, d); received {tuple(means.shape)}")
        K, d = (int(s) for s in means.shape)
        w = asarray_like(weights, means, name="weights")
        if tuple(w.shape) != (K,):
            raise ValueError(f"weights must have shape ({K},); received {tuple(w.shape)}")
        if bool(xp.any(~(w >= 0))) or float(xp.sum(w)) <= 0 or not math.isfinite(
                float(xp.sum(w))):
            raise ValueError("weights must be finite, non-negative and not all zero")
        covs = asarray_like(covs, means, name="covs")
        _check_finite_all(xp, means=means, covs=covs)
        lam, Q = self._decompose(xp, covs, K, d, "covs")
        # Zero weights become -inf log-weights without a log(0) warning.
        safe = xp.where(w > 0, w, xp.ones_like(w))
        log_w = xp.where(w > 0, xp.log(safe / xp.sum(w)), -math.inf)
        self._setup(log_w, means, lam, Q, process, prediction)


class GaussianPrior(_Mixture):
    r"""Gaussian prior :math:`\mathcal N(\mu, \Sigma)`, exact for any process.

    Parameters
    ----------
    mean : array, shape ``(d,)``
        Fixes the namespace, device and dtype of the prior's own arrays.
    cov : array, shape ``(d, d)`` (full) or ``(d,)`` (diagonal)
        Symmetric positive semi-definite.
    process : ForwardProcess
    prediction : {"eps", "x0", "score", "velocity"}, default "eps"

    Notes
    -----
    :math:`p_t = \mathcal N(a_t\mu, a_t^2\Sigma + b_t^2 I)`, so the score is
    :math:`-(a_t^2\Sigma + b_t^2 I)^{-1}(x - a_t\mu)` (ALGORITHMS.md §6), computed from the
    eigen-decomposition of :math:`\Sigma` made once.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.array([1.0, 4.0]),
    ...                                  process=ivd.processes.Flow.rectified())
    >>> prior(np.array([[1.0, 1.0]]), 0.5)  # eps-hat = b C^{-1} x
    array([[1. , 0.4]])
    >>> prior.mean.shape, prior.cov.shape
    ((2,), (2, 2))
    """

    def __init__(self, mean, cov, *, process: ForwardProcess, prediction: str = "eps"):
        check_floating("mean", mean)
        xp = namespace(mean=mean, cov=cov)
        if mean.ndim != 1:
            raise ValueError(f"mean must have shape (d,); received {tuple(mean.shape)}")
        d = int(mean.shape[0])
        cov = asarray_like(cov, mean, name="cov")
        if tuple(cov.shape) not in ((d,), (d, d)):
            raise ValueError(f"cov must have shape ({d},) (diagonal) or ({d}, {d}) (full); "
                             f"received shape {tuple(cov.shape)}")
        _check_finite_all(xp, mean=mean, cov=cov)
        lam, Q = self._decompose(xp, cov[None, ...], 1, d, "cov")
        log_w = xp.zeros((1,), dtype=mean.dtype, device=device_of(mean))
        self._setup(log_w, mean[None, :], lam, Q, process, prediction)

    @property
    def mean(self):
        """The mean, shape ``(d,)``."""
        return self._params.means[0, :]

    @property
    def cov(self):
        """The covariance, shape ``(d, d)``."""
        return self.covs[0, ...]


def _check_finite_all(xp, **arrays) -> None:
    for name, a in arrays.items():
        if not bool(xp.all(xp.isfinite(a))):
            raise ValueError(f"{name} must be finite; received NaN or infinite entries")


class ExactLikelihood:
    r"""Exact :math:`\nabla_{x_t}\log p(y \mid x_t)` for a Gaussian (mixture) prior and
    :math:`y = A x_0 + n`, :math:`n\sim\mathcal N(0,\sigma_y^2 I)`.

    By Bayes' rule :math:`\log p(y\mid x_t) = \log p_t(x_t\mid y) - \log p_t(x_t) + \log p(y)`,
    and both :math:`p_t(\cdot\mid y)` (the posterior mixture pushed through the process) and
    :math:`p_t` are exact mixtures, so the score is the difference of two exact scores. This
    is the oracle every likelihood approximation (DMPS, ΠGDM, DPS...) is judged against.

    Parameters
    ----------
    prior : GaussianPrior or GaussianMixturePrior
    A : array, shape ``(M, d)``
    y : array, shape ``(M,)``
    sigma_y : float

    Attributes
    ----------
    posterior : same class as ``prior``
        :math:`p(x_0 \mid y)`.
    needs_model : bool
        ``False``: the oracle never calls a network.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE(10, 0.01)
    >>> prior = ivd.priors.GaussianPrior(np.zeros(1), np.ones(1), process=ve)
    >>> lik = ivd.priors.ExactLikelihood(prior, np.ones((1, 1)), np.array([1.0]), 1.0)
    >>> # p(y | x_t) = N(y; x_t / (1 + t^2), 1 + t^2 / (1 + t^2)): at t=1, x_t=0 the score is 1/3
    >>> round(float(lik.score(np.zeros((1, 1)), 1.0)[0, 0]), 12)
    0.333333333333
    """

    needs_model = False

    def __init__(self, prior: _Mixture, A, y, sigma_y):
        if not isinstance(prior, _Mixture):
            raise TypeError("prior must be a GaussianPrior or GaussianMixturePrior; "
                            f"received {type(prior).__name__}")
        _, self.A, self.y, self.sigma_y = prior._measurement(A, y, sigma_y)
        self.prior = prior
        self.posterior = prior.posterior(self.A, self.y, self.sigma_y)
        self.process = prior.process

    def score(self, x_t, t):
        """:math:`\\nabla_{x_t}\\log p(y \\mid x_t)`, same shape/namespace/dtype as ``x_t``."""
        return self.posterior.score(x_t, t) - self.prior.score(x_t, t)

    def __repr__(self) -> str:
        return (f"ExactLikelihood(M={self.A.shape[0]}, d={self.prior.dim}, "
                f"sigma_y={self.sigma_y}, prior={self.prior!r})")
