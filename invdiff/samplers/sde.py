r"""Reverse-time SDE, Euler–Maruyama (Song et al., 2021), for any forward process."""

from __future__ import annotations

import math

from ._common import continuous_times, evaluate, finish, guidance_info, progress_bar, setup

__all__ = ["sde"]


def sde(model, x_init, *, guidance=None, scale: float = 1.0, steps: int = 1000, rng=None,
        progress: bool = False, callback=None, t_start: float | None = None):
    r"""Euler–Maruyama integration of the reverse SDE of ``model.process``.

    Parameters
    ----------
    model : ScoreModel
        Any process (VP, VE, flow).
    x_init : array
        The state at the start time; fixes namespace, device, dtype and shape.
    guidance : Likelihood, optional
        Any object with ``score(x_t, t)``.
    scale : float, default 1.0
        Guidance weight :math:`\lambda`.
    steps : int, default 1000
        Number of steps: uniform in ``t`` (VP, flow), geometric in :math:`\sigma` (VE).
    rng : invdiff.random.Generator or int, optional
    progress : bool, default False
    callback : callable, optional
        ``callback(i, t, x, info)`` after step ``i`` with ``info = {"guidance_norm"}``.
    t_start : float, optional
        Start time; default ``t_max`` (``1 - 1e-3`` on the flow path, where :math:`a_t`
        vanishes at ``t = 1`` and the drift is singular).

    Returns
    -------
    array
        The sample at ``t_min`` in ``x_init``'s namespace, device, dtype and shape.

    Notes
    -----
    The forward process :math:`x_t = a_t x_0 + b_t\varepsilon` is the SDE
    :math:`dx = f_t x\,dt + g_t\,dw` with :math:`f_t = \dot a_t/a_t` and
    :math:`g_t^2 = 2 b_t\dot b_t - 2 f_t b_t^2`. Its reverse, stepped from :math:`t` to
    :math:`t - h`:

    .. math::

        x_{t-h} = x_t - \big(f_t x_t - g_t^2\,[s_\theta(x_t, t) + \lambda\, g(x_t, t)]\big) h
                  + g_t \sqrt{h}\, z.

    **Weighting rule**: the total score is :math:`s_\theta + \lambda g`. The last step adds
    no noise (it returns the mean, as score_sde's ``denoise``).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE(sigma_max=10.0, sigma_min=0.01)
    >>> prior = ivd.priors.GaussianPrior(np.full(2, 2.0), np.ones(2) * 0.25, process=ve)
    >>> rng = ivd.random.Generator(0)
    >>> x = ivd.samplers.sde(prior, rng.normal((500, 2), like=np.zeros(1), scale=10.0),
    ...                      steps=200, rng=rng)
    >>> bool(np.all(np.abs(x.mean(axis=0) - 2.0) < 0.1))
    True
    """
    xp, scale, rng = setup(model, x_init, guidance, scale, rng)
    proc = model.process
    times = continuous_times(proc, steps, t_start)
    pairs = list(zip(times[:-1], times[1:], strict=True))

    x = x_init
    for i, (t, t_next) in enumerate(progress_bar(pairs, progress, len(pairs), "sde")):
        s, g = evaluate(model, guidance, x, t, "score")
        if g is not None:
            s = s + scale * g
        a, b, da, db = proc.a(t), proc.b(t), proc.da(t), proc.db(t)
        f = da / a
        g2 = 2.0 * b * db - 2.0 * f * b * b
        h = t - t_next
        x = x - h * (f * x - g2 * s)
        if i < len(pairs) - 1:
            x = x + math.sqrt(max(g2, 0.0) * h) * rng.normal(x.shape, like=x)
        if callback is not None:
            callback(i, t_next, x, {"guidance_norm": guidance_info(xp, g, callback)})
    return finish(xp, x, x_init)
