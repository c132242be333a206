r"""Annealed Langevin dynamics (Song & Ermon 2019; NCSNv2, Song & Ermon 2020), with the
guidance weightings of QCS-SGM (fixed) and QCS-SGM+ (norm-matched)."""

from __future__ import annotations

import math

from ..processes import VE
from ._common import (
    check_choice,
    check_process_kind,
    check_real,
    check_steps,
    evaluate,
    finish,
    guidance_info,
    progress_bar,
    sample_norms,
    setup,
)

__all__ = ["langevin"]


def langevin(model, x_init, *, guidance=None, scale: float = 1.0, steps: int | None = None,
             rng=None, progress: bool = False, callback=None, eps: float = 2e-4,
             steps_each: int = 5, final_denoise: bool = True, weighting: str = "fixed"):
    r"""Annealed Langevin dynamics over the noise levels of a VE process.

    Parameters
    ----------
    model : ScoreModel
        ``model.process`` must be :class:`invdiff.processes.VE` (wrap others with
        :class:`invdiff.processes.reexpress`).
    x_init : array
        The starting state (NCSNv2 and QCS-SGM draw it uniform on [0, 1]); fixes namespace,
        device, dtype and shape.
    guidance : Likelihood, optional
        Any object with ``score(x_t, t)`` (``t`` is the noise level :math:`\sigma_i`).
    scale : float, default 1.0
        :math:`\gamma` (QCS-SGM: 1; QCS-SGM+ with ``weighting="norm"``: 0.5 MNIST, 0.3 CelebA).
    steps : int, optional
        Number of noise levels: default all of ``model.process.sigmas``; an integer uses that
        many levels spaced geometrically from ``sigma_max`` to ``sigma_min``.
    rng : invdiff.random.Generator or int, optional
    progress : bool, default False
    callback : callable, optional
        ``callback(i, sigma, x, info)`` after every Langevin step ``i`` (0-based over all
        levels), ``info = {"step_size", "weight", "guidance_norm"}`` (``weight`` is
        :math:`w_i`, per sample for ``"norm"``).
    eps : float, default 2e-4
        :math:`\epsilon`, the step size at the last level (QCS-SGM's MNIST/CelebA value).
    steps_each : int, default 5
        :math:`K`, Langevin steps per level.
    final_denoise : bool, default True
        Finish with Tweedie's denoising :math:`x + \sigma_L^2 s_\theta(x, \sigma_L)` (NCSNv2;
        the prior score only, as in the reference code).
    weighting : {"fixed", "norm"}, default "fixed"
        How the guidance is weighted (see Notes).

    Returns
    -------
    array
        The final sample in ``x_init``'s namespace, device, dtype and shape.

    Notes
    -----
    For levels :math:`\sigma_1 > \dots > \sigma_L`, :math:`\alpha_i = \epsilon
    (\sigma_i/\sigma_L)^2`, and :math:`K` steps per level. **Weighting rule**:

    .. math::

        x \leftarrow x + \alpha_i\,(s_\theta(x, \sigma_i) + w_i\, g(x, \sigma_i))
            + \sqrt{2\alpha_i}\, z,

    with :math:`w_i = \gamma` (``"fixed"``, QCS-SGM / ALD) or
    :math:`w_i = \gamma \|s_\theta\| / \|g\|` per sample (``"norm"``, QCS-SGM+); a sample is
    everything but the first axis of ``x_init`` (a 1-D ``x_init`` is one sample).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE.geometric(sigma_max=5.0, sigma_min=0.05, L=30)
    >>> prior = ivd.priors.GaussianPrior(np.ones(2), np.ones(2) * 0.25, process=ve)
    >>> rng = ivd.random.Generator(0)
    >>> x = ivd.samplers.langevin(prior, rng.uniform((500, 2), like=np.zeros(1)), rng=rng)
    >>> bool(np.all(np.abs(x.mean(axis=0) - 1.0) < 0.1))
    True
    """
    xp, scale, rng = setup(model, x_init, guidance, scale, rng)
    proc = model.process
    check_process_kind("langevin", proc, VE)
    sigmas = _levels(proc, steps)
    eps = check_real("eps", eps)
    if eps <= 0:
        raise ValueError(f"eps must be > 0; received {eps!r}")
    steps_each = check_steps("steps_each", steps_each)
    check_choice("weighting", weighting, ("fixed", "norm"))

    x = x_init
    schedule = [(sigma, k) for sigma in sigmas for k in range(steps_each)]
    for i, (sigma, _) in enumerate(progress_bar(schedule, progress, len(schedule), "langevin")):
        alpha = eps * (sigma / sigmas[-1]) ** 2
        s, g = evaluate(model, guidance, x, sigma, "score")
        weight = None
        if g is not None:
            weight = scale if weighting == "fixed" else scale * _norm_ratio(xp, s, g)
            s = s + weight * g
        x = x + alpha * s + math.sqrt(2.0 * alpha) * rng.normal(x.shape, like=x)
        if callback is not None:
            callback(i, sigma, x, {"step_size": alpha, "weight": weight,
                                   "guidance_norm": guidance_info(xp, g, callback)})
    if final_denoise:
        s, _ = evaluate(model, None, x, sigmas[-1], "score")
        x = x + sigmas[-1] ** 2 * s
    return finish(xp, x, x_init)


def _levels(proc, steps) -> list[float]:
    if steps is None:
        if proc.sigmas is None:
            raise ValueError("langevin needs noise levels: build the process with "
                             "VE.geometric(...) or pass steps=<number of levels>")
        return list(proc.sigmas)
    steps = check_steps("steps", steps)
    return proc.time_grid(steps - 1) if steps > 1 else [proc.t_min]


def _norm_ratio(xp, s, g):
    """``||s|| / ||g||`` per sample; 0 where the guidance vanishes (its term is 0 anyway)."""
    s_norm, g_norm = sample_norms(xp, s), sample_norms(xp, g)
    safe = xp.where(g_norm > 0, g_norm, xp.ones_like(g_norm))
    return xp.where(g_norm > 0, s_norm / safe, xp.zeros_like(g_norm))
