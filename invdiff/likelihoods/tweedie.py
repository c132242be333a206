r"""Guidance built on Tweedie's estimate :math:`\hat x_0(x_t)`: DPS and ΠGDM (ALGORITHMS.md §3).

Both need the network's vector–Jacobian product. With
:math:`\hat x_0 = c_p\,\mathrm{pred}(x_t) + c_x x_t` (affine in the prediction, whatever
its kind), :math:`J_{\hat x_0}^\top c = c_p J_{\mathrm{pred}}^\top c + c_x c`, so one call of
``model.vjp`` serves every prediction kind. The cotangent :math:`c` depends on the
prediction itself (it contains the residual :math:`y - A\hat x_0`); a model whose ``vjp``
accepts a *callable* cotangent (``model.vjp_accepts_callable = True``: it calls
``cotangent(prediction)`` between its forward and backward passes) gets one network pass
per step. Other models get a forward call followed by ``vjp`` (two forward passes).
"""

from __future__ import annotations

from .._array_api import as_python_float, check_floating, check_positive, is_array, namespace
from ..processes import convert, pullback
from ._common import Cached, check_measurement, sigma_value, time_coefficients

__all__ = ["DPS", "PiGDM"]


def _as_operator(op, name: str = "op"):
    if is_array(op):
        from ..operators import DenseMatrix

        return DenseMatrix(op)
    for m in ("apply", "adjoint"):
        if not callable(getattr(op, m, None)):
            raise TypeError(f"{name} must be a linear operator (apply, adjoint) or an (M, N) "
                            f"array; received {type(op).__name__}")
    return op


def _check_model(model) -> None:
    missing = [a for a in ("process", "prediction") if not hasattr(model, a)]
    if not callable(model) or missing or not callable(getattr(model, "vjp", None)):
        raise TypeError("model must be a ScoreModel with process, prediction and vjp(x_t, t, "
                        f"cotangent) (DPS/PiGDM backpropagate through it); received "
                        f"{type(model).__name__}")


class _Tweedie:
    """Shared machinery: validation, the pulled-back cotangent and the eps of the same pass."""

    needs_model = True

    def __init__(self, op, y, model):
        _check_model(model)
        self.op = _as_operator(op)
        self.model = model
        self.process = model.process
        self.out_shape = tuple(self.op.out_shape)
        self.in_shape = tuple(self.op.in_shape)
        check_measurement("y", y, None, self.out_shape)
        self.y = y

    @property
    def single_pass(self) -> bool:
        """True when the model's ``vjp`` takes a callable cotangent (one network pass per step)."""
        return bool(getattr(self.model, "vjp_accepts_callable", False))

    def _pullback(self, x_t, t, cotangent_of_x0):
        r"""``(J_x0^T c, eps_hat)`` where ``c = cotangent_of_x0(x0_hat)``."""
        proc, kind = self.process, self.model.prediction
        def cotangent(pred):
            return cotangent_of_x0(convert(pred, kind, "x0", x_t, t, proc))

        pred, pulled, c = pullback(self.model, x_t, t, cotangent)
        # x0 = c_p pred + c_x x_t is affine, and so is its transpose Jacobian in (pulled, c)
        return convert(pulled, kind, "x0", c, t, proc), convert(pred, kind, "eps", x_t, t, proc)

    def _time(self, x_t, t):
        check_floating("x_t", x_t)
        xp = namespace(x_t=x_t, y=self.y)
        if is_array(t):  # prediction conversions broadcast a scalar time only
            t = as_python_float(t)
        time_coefficients(self.process, t)  # refuses a_t = 0
        return xp, t

    def score(self, x_t, t):
        """The guidance term alone (see :meth:`score_and_eps`)."""
        return self.score_and_eps(x_t, t)[0]


class DPS(_Tweedie):
    r"""Diffusion posterior sampling guidance :math:`-\zeta\,\nabla_{x_t}\|y - A\hat x_0(x_t)\|`.

    Parameters
    ----------
    op : LinearOperator or array of shape (M, N)
        Forward operator (``apply``, ``adjoint``).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    model : ScoreModel
        With ``vjp``; its ``process`` defines ``t``.
    zeta : float, default 1.0
        Step size :math:`\zeta` (DPS configs: 0.3 SR/deblur, 0.5 inpainting, 1.0 phase
        retrieval), ``> 0``.

    Notes
    -----
    Chung, Kim, Mccann, Klasky, Ye, "Diffusion Posterior Sampling for General Noisy Inverse
    Problems" (ICLR 2023), Algorithm 1. With :math:`r = y - A\hat x_0`,

    .. math:: g = -\zeta\nabla_{x_t}\|r\| = \zeta\, J_{\hat x_0}^\top A^\top r / \|r\| .

    The norm (not squared) is taken **per sample**; the reference implementation takes one
    norm over the whole batch, which couples the samples (deliberately not copied).
    :meth:`score_and_eps` also returns the network's :math:`\hat\varepsilon` from the same
    forward pass, so integrators do not call the network again.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> vp = ivd.processes.VP.linear()
    >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.eye(2), process=vp)
    >>> dps = ivd.likelihoods.DPS(np.eye(2), np.array([1.0, 0.0]), prior, zeta=1.0)
    >>> g, eps = dps.score_and_eps(np.zeros((1, 2)), 10.0)
    >>> g.shape, eps.shape, dps.needs_model
    ((1, 2), (1, 2), True)
    """

    def __init__(self, op, y, model, zeta: float = 1.0):
        super().__init__(op, y, model)
        self.zeta = check_positive("zeta", zeta)
        self.info: dict = {}

    def __repr__(self) -> str:
        return f"DPS(op={self.op!r}, zeta={self.zeta}, model={self.model!r})"

    def score_and_eps(self, x_t, t):
        r"""``(g, eps_hat)``: the DPS guidance and the network's eps from the same pass.

        Parameters
        ----------
        x_t : array, shape ``(*batch, *in_shape)``
        t : float
            One time for the whole batch.

        Returns
        -------
        g, eps_hat : array
            Both in the shape, namespace, device and dtype of ``x_t``. The per-sample
            residual norms :math:`\|y - A\hat x_0\|` are kept in ``info["residual_norm"]``.
        """
        xp, t = self._time(x_t, t)
        axes = tuple(range(-len(self.out_shape), 0))
        y = self.y

        def cotangent_of_x0(x0):
            r = (y if y.dtype == x0.dtype else xp.astype(y, x0.dtype)) - self.op.apply(x0)
            norm = xp.sqrt(xp.sum(r * r, axis=axes, keepdims=True))
            batch = tuple(norm.shape[: norm.ndim - len(axes)])
            self.info = {"residual_norm": xp.reshape(norm, batch)}
            # r = 0 gives a zero direction, not 0/0
            return self.op.adjoint(r / xp.where(norm > 0, norm, 1.0))

        pulled, eps = self._pullback(x_t, t, cotangent_of_x0)
        return self.zeta * pulled, eps


class PiGDM(_Tweedie):
    r"""Pseudoinverse-guided diffusion guidance (ΠGDM) with measurement noise.

    Parameters
    ----------
    op : SVDOperator or array of shape (M, N)
        Forward operator with its thin SVD (``Vt``, ``V``, ``Ut``, ``singulars_like``).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Measurement noise standard deviation, ``> 0``.
    model : ScoreModel
        With ``vjp``; its ``process`` defines ``t``.

    Notes
    -----
    Song, Vahdat, Mardani, Kautz, "Pseudoinverse-Guided Diffusion Models for Inverse
    Problems" (ICLR 2023), eq. (7)–(8): :math:`p(y \mid x_t) \approx
    \mathcal N(y; A\hat x_0, r_t^2 A A^\top + \sigma_y^2 I)` with
    :math:`r_t^2 = b_t^2/(a_t^2 + b_t^2)` (VP: :math:`1 - \bar\alpha_t`), and

    .. math:: g = J_{\hat x_0}^\top A^\top (r_t^2 A A^\top + \sigma_y^2 I)^{-1}(y - A\hat x_0)
              = J_{\hat x_0}^\top V \mathrm{diag}\Big(\frac{s_i}{r_t^2 s_i^2 + \sigma_y^2}\Big)
              \big(U^\top y - s \odot V^\top \hat x_0\big),

    solved through the SVD (:math:`U^\top y` precomputed). Used with DDIM
    (``eps_hat <- eps_hat - b_t g``) and, inside the flow ODE, by OT-ODE.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> vp = ivd.processes.VP.linear()
    >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.eye(2), process=vp)
    >>> lik = ivd.likelihoods.PiGDM(np.eye(2), np.array([1.0, 0.0]), 0.1, prior)
    >>> lik.score(np.zeros((1, 2)), 10.0).shape
    (1, 2)
    """

    def __init__(self, op, y, sigma_y, model):
        super().__init__(op, y, model)
        for m in ("Vt", "V", "Ut", "singulars_like"):
            if not callable(getattr(self.op, m, None)):
                raise TypeError(f"op must be an SVDOperator (PiGDM solves through its SVD); "
                                f"{type(self.op).__name__} lacks {m}")
        self.sigma_y = sigma_value("sigma_y", sigma_y)
        self._const = Cached(Uty=self.op.Ut(y))

    def __repr__(self) -> str:
        return f"PiGDM(op={self.op!r}, sigma_y={self.sigma_y}, model={self.model!r})"

    def score_and_eps(self, x_t, t):
        r"""``(g, eps_hat)``: the ΠGDM guidance and the network's eps from the same pass.

        Parameters
        ----------
        x_t : array, shape ``(*batch, *in_shape)``
        t : float
            One time for the whole batch.
        """
        xp, t = self._time(x_t, t)
        a, b = time_coefficients(self.process, t)
        r2 = b * b / (a * a + b * b)
        var = self.sigma_y**2
        op = self.op
        s = op.singulars_like(x_t)
        uty = self._const.like(x_t, xp)["Uty"]

        def cotangent_of_x0(x0):
            return op.V(s * (uty - s * op.Vt(x0)) / (r2 * (s * s) + var))

        return self._pullback(x_t, t, cotangent_of_x0)

