r"""DDPM ancestral sampling (Ho et al., 2020), with respacing and learned variances
(Nichol & Dhariwal, 2021) and DMPS-style guidance (Meng & Kabashima, Alg. 1)."""

from __future__ import annotations

import math

from .._array_api import clip
from ..processes import VP, to_eps
from ._common import (
    check_choice,
    check_process_kind,
    evaluate,
    finish,
    guidance_info,
    progress_bar,
    setup,
    vp_times,
)

__all__ = ["ancestral"]

_VARIANCES = ("beta_tilde", "beta", "learned")


def ancestral(model, x_init, *, guidance=None, scale: float = 1.0, steps: int | None = None,
              rng=None, progress: bool = False, callback=None, variance: str | None = None,
              clip_x0: tuple[float, float] | None = None, guidance_at: str = "x_t",
              weighting: str = "ddpm"):
    r"""DDPM ancestral sampler with optional guidance.

    Parameters
    ----------
    model : ScoreModel
        ``model.process`` must be :class:`invdiff.processes.VP` (wrap other models with
        :class:`invdiff.processes.reexpress`).
    x_init : array
        The state at ``t = T`` (usually standard normal); fixes namespace, device, dtype, shape.
    guidance : Likelihood, optional
        Any object with ``score(x_t, t)`` (see the contract in :mod:`invdiff.samplers._common`).
    scale : float, default 1.0
        :math:`\lambda`, the guidance weight (DMPS uses 1.75).
    steps : int, optional
        Number of reverse steps; default ``T``. Fewer steps respace the schedule evenly.
    rng : invdiff.random.Generator or int, optional
        ``None`` draws fresh OS entropy.
    progress : bool, default False
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(i, t, x, info)`` after step ``i`` (0-based), with ``x`` the new state at
        DDPM time ``t`` and ``info = {"x0": ..., "guidance_norm": ...}`` (per-sample norms of
        the guidance score, or ``None``).
    variance : {"beta_tilde", "beta", "learned"}, optional
        :math:`\sigma_k^2`. Default ``"learned"`` when the model has
        ``predict_with_log_variance(x_t, t) -> (prediction, log_variance)`` and
        ``"beta_tilde"`` (:math:`\tilde\beta_k`) otherwise.
    clip_x0 : (float, float), optional
        Clip Tweedie's :math:`\hat x_0` to ``[lo, hi]`` inside each step (the reference codes
        clip to ``(-1, 1)``).
    guidance_at : {"x_t", "x_prev"}, default "x_t"
        Where the guidance score is evaluated (see Notes).
    weighting : {"ddpm", "unit"}, default "ddpm"
        ``"ddpm"``: the guidance is a score, weighted by :math:`\lambda\beta_k'/\sqrt{\alpha_k'}`
        (see Notes). ``"unit"``: the guidance is already a displacement, added as
        :math:`\lambda g` (DPS's step :math:`-\zeta\nabla\|y - A\hat x_0\|`).

    Returns
    -------
    array
        The sample at ``t = 0``, in ``x_init``'s namespace, device, dtype and shape.

    Notes
    -----
    For the (respaced) pair of DDPM times :math:`k > j`, with :math:`\alpha_k' = \bar\alpha_k /
    \bar\alpha_j` and :math:`\beta_k' = 1 - \alpha_k'` (equal to :math:`\alpha_k, \beta_k`
    without respacing):

    .. math::

        \hat x_0 = (x_k - \sqrt{1-\bar\alpha_k}\,\hat\varepsilon) / \sqrt{\bar\alpha_k},\qquad
        \mu_k = \frac{\sqrt{\bar\alpha_j}\beta_k'}{1-\bar\alpha_k}\hat x_0
              + \frac{\sqrt{\alpha_k'}(1-\bar\alpha_j)}{1-\bar\alpha_k} x_k,

    which equals :math:`(x_k - \beta_k'\hat\varepsilon/\sqrt{1-\bar\alpha_k})/\sqrt{\alpha_k'}`
    without clipping. **Weighting rule** (DMPS, Alg. 1; DPS, Alg. 1 with ``weighting="unit"``):

    .. math::

        x_j = \mu_k + \sigma_k z + \lambda\, w_k\, g, \qquad
        w_k = \frac{\beta_k'}{\sqrt{\alpha_k'}} \text{ (``"ddpm"``)} \text{ or } 1
        \text{ (``"unit"``)},

    with :math:`g = \nabla\log\tilde p(y \mid \cdot)` at :math:`x_k` and time :math:`k`
    (``guidance_at="x_t"``, the paper) or at :math:`x' = \mu_k + \sigma_k z` with the same
    step-:math:`k` coefficients (``"x_prev"``, what the DMPS reference code does). With the
    exact likelihood this is the DDPM step of the posterior score :math:`s + g`. No noise is
    added at the last step. A learned log-variance at step :math:`k` is ADM's interpolation
    :math:`v\log\beta_k + (1-v)\log\tilde\beta_k` (with :math:`\tilde\beta_1 := \tilde\beta_2`);
    when respacing, the fraction :math:`v` is carried over to :math:`\beta_k', \tilde\beta_k'`
    as improved-diffusion does. A guidance with ``needs_model`` combined with a learned
    variance costs a second network pass per step (the contract's ``score_and_eps`` has no
    variance).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> proc = ivd.processes.VP.linear(T=1000)
    >>> prior = ivd.priors.GaussianPrior(np.full(2, 3.0), np.ones(2) * 0.25, process=proc)
    >>> rng = ivd.random.Generator(0)
    >>> x_T = rng.normal((500, 2), like=np.zeros(1))
    >>> x = ivd.samplers.ancestral(prior, x_T, steps=100, rng=rng)  # respaced
    >>> bool(np.all(np.abs(x.mean(axis=0) - 3.0) < 0.1))
    True
    """
    xp, scale, rng = setup(model, x_init, guidance, scale, rng)
    proc = model.process
    check_process_kind("ancestral", proc, VP)
    pairs = vp_times(proc, proc.T if steps is None else steps)
    learned = callable(getattr(model, "predict_with_log_variance", None))
    variance = check_choice("variance", ("learned" if learned else "beta_tilde")
                            if variance is None else variance, _VARIANCES)
    if variance == "learned" and not learned:
        raise ValueError("variance='learned' needs model.predict_with_log_variance(x_t, t)")
    check_choice("guidance_at", guidance_at, ("x_t", "x_prev"))
    check_choice("weighting", weighting, ("ddpm", "unit"))
    lo, hi = _check_clip(clip_x0)
    respaced = len(pairs) < proc.T

    x = x_init
    for i, (k, j) in enumerate(progress_bar(pairs, progress, len(pairs), "ancestral")):
        t = float(k)
        ab_k, ab_j = proc.alpha_bar(k), proc.alpha_bar(j)
        alpha = ab_k / ab_j
        beta = 1.0 - alpha
        log_var = None
        if variance == "learned":
            pred, log_var = model.predict_with_log_variance(x, t)
            eps = to_eps(pred, model.prediction, x, t, proc)
            g = None
            if guidance is not None and guidance_at == "x_t":
                g = (guidance.score_and_eps(x, t)[0] if getattr(guidance, "needs_model", False)
                     else guidance.score(x, t))
        else:
            eps, g = evaluate(model, None if guidance_at == "x_prev" else guidance, x, t, "eps")
        x0 = (x - math.sqrt(1.0 - ab_k) * eps) / math.sqrt(ab_k)
        if clip_x0 is not None:
            x0 = clip(x0, lo, hi, xp)  # no boolean-mask writes (a CuPy sync)
        x = (math.sqrt(ab_j) * beta / (1.0 - ab_k)) * x0 \
            + (math.sqrt(alpha) * (1.0 - ab_j) / (1.0 - ab_k)) * x
        if j > 0:  # no noise on the last step
            sigma = _sigma(xp, proc, variance, log_var, k, beta, ab_k, ab_j, respaced)
            x = x + sigma * rng.normal(x.shape, like=x)
        if guidance is not None:
            if guidance_at == "x_prev":
                g = guidance.score(x, t)
            weight = beta / math.sqrt(alpha) if weighting == "ddpm" else 1.0
            x = x + (scale * weight) * g
        if callback is not None:
            callback(i, float(j), x, {"x0": x0, "guidance_norm": guidance_info(xp, g, callback)})
    return finish(xp, x, x_init)


def _check_clip(clip_x0):
    if clip_x0 is None:
        return None, None
    try:
        lo, hi = (float(v) for v in clip_x0)
    except (TypeError, ValueError):
        raise TypeError(f"clip_x0 must be None or a pair (lo, hi); received {clip_x0!r}") from None
    if not lo < hi:
        raise ValueError(f"clip_x0 must satisfy lo < hi; received {clip_x0!r}")
    return lo, hi


def _sigma(xp, proc, variance, log_var, k, beta, ab_k, ab_j, respaced):
    """Standard deviation of the step's noise (a float, or an array for learned variances)."""
    beta_tilde = beta * (1.0 - ab_j) / (1.0 - ab_k)
    if variance == "beta":
        return math.sqrt(beta)
    if variance == "beta_tilde":
        return math.sqrt(beta_tilde)
    if not respaced:
        return xp.exp(0.5 * log_var)
    # Recover ADM's interpolation fraction on the original step k, apply it to the respaced one.
    hi_k = math.log(proc.beta(k))
    lo_k = math.log(proc.beta_tilde(k if k > 1 else 2))
    frac = (log_var - lo_k) / (hi_k - lo_k)
    return xp.exp(0.5 * (frac * math.log(beta) + (1.0 - frac) * math.log(beta_tilde)))
