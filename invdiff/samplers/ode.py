r"""Probability-flow ODE (Song et al., 2021) and flow ODE (Liu et al., 2022): Euler or Heun."""

from __future__ import annotations

from ._common import (
    check_choice,
    continuous_times,
    evaluate,
    finish,
    guidance_info,
    progress_bar,
    setup,
)

__all__ = ["ode"]


def ode(model, x_init, *, guidance=None, scale: float = 1.0, steps: int = 100, rng=None,
        progress: bool = False, callback=None, method: str = "euler",
        t_start: float | None = None, weighting: str = "score"):
    r"""Integrate the probability-flow ODE of ``model.process`` from the start time to ``t_min``.

    Parameters
    ----------
    model : ScoreModel
        Any process; a flow model's velocity is used as is.
    x_init : array
        The state at the start time; fixes namespace, device, dtype and shape.
    guidance : Likelihood, optional
        Any object with ``score(x_t, t)``.
    scale : float, default 1.0
        Guidance weight :math:`\lambda` (DMPS-flow uses 2.0).
    steps : int, default 100
        Uniform in ``t`` (VP, flow), geometric in :math:`\sigma` (VE).
    rng : ignored
        Accepted for a uniform signature (the ODE is deterministic).
    progress : bool, default False
    callback : callable, optional
        ``callback(i, t, x, info)`` after step ``i``, ``info = {"guidance_norm"}`` (at the
        step's first evaluation).
    method : {"euler", "heun"}, default "euler"
        Heun (2nd order, two evaluations per step) falls back to Euler on a last step that
        ends where :math:`b_t = 0`, where the velocity of a noise-free state is undefined
        (as in EDM, Karras et al. 2022).
    t_start : float, optional
        Start time; default ``t_max`` (``1 - 1e-3`` on the flow path, as RectifiedFlow).
        OT-ODE starts later, e.g. 0.8, from a noised initial guess.
    weighting : {"score", "unit"}, default "score"
        ``"score"``: the guidance is a likelihood score and enters the velocity (see Notes).
        ``"unit"``: the guidance is already a displacement, added once per step as
        :math:`\lambda g` after the ODE step (DPS's rule, as in
        :func:`invdiff.samplers.ancestral`).

    Returns
    -------
    array
        The state at ``t_min`` in ``x_init``'s namespace, device, dtype and shape.

    Notes
    -----
    The ODE is :math:`dx/dt = v(x, t) = \dot a_t \hat x_0 + \dot b_t \hat\varepsilon`
    (``velocity`` prediction, ALGORITHMS.md §1), which equals
    :math:`f_t x - \tfrac12 g_t^2 \nabla\log p_t`. **Weighting rule**: the total score is
    :math:`s + \lambda g`, i.e. :math:`\hat\varepsilon \leftarrow \hat\varepsilon - \lambda
    b_t g`, which adds to the Euler update

    .. math::

        x_{t-\Delta t} = x_t - v\,\Delta t
            - \lambda\, \frac{b_t(\dot a_t b_t - a_t \dot b_t)}{a_t}\,\Delta t\; g(x_t, t),

    DMPS-flow's weight (:math:`\lambda\, t/(1-t)\,\Delta t` on the rectified path).
    With ``weighting="unit"`` the velocity stays the network's and each step ends with
    :math:`x_{t-\Delta t} \leftarrow x_{t-\Delta t} + \lambda\, g(x_t, t)` (guidance
    evaluated at the step's start, no time weight): DPS's update, whose
    :math:`g = -\zeta\nabla_{x_t}\|y - A\hat x_0\|` is a step, not a score.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> flow = ivd.processes.Flow.rectified()
    >>> prior = ivd.priors.GaussianPrior(np.full(2, 2.0), np.ones(2) * 0.25, process=flow)
    >>> x_T = ivd.random.Generator(0).normal((500, 2), like=np.zeros(1))
    >>> x = ivd.samplers.ode(prior, x_T, steps=50, method="heun")
    >>> bool(np.all(np.abs(x.mean(axis=0) - 2.0) < 0.1))
    True
    """
    xp, scale, _ = setup(model, x_init, guidance, scale, 0)
    check_choice("method", method, ("euler", "heun"))
    check_choice("weighting", weighting, ("score", "unit"))
    proc = model.process
    times = continuous_times(proc, steps, t_start)
    pairs = list(zip(times[:-1], times[1:], strict=True))

    def velocity(x, t, guided=True):
        v, g = evaluate(model, guidance if guided else None, x, t, "velocity")
        if g is not None and weighting == "score":
            a, b = proc.a(t), proc.b(t)
            v = v + (scale * b * (proc.da(t) * b - a * proc.db(t)) / a) * g
        return v, g

    x = x_init
    for i, (t, t_next) in enumerate(progress_bar(pairs, progress, len(pairs), "ode")):
        h = t - t_next
        v, g = velocity(x, t)
        x_euler = x - h * v
        if method == "heun" and proc.b(t_next) > 0:
            # a unit-weighted guidance is added once per step: no second vjp
            v_next, _ = velocity(x_euler, t_next, guided=weighting == "score")
            x = x - (0.5 * h) * (v + v_next)
        else:
            x = x_euler
        if g is not None and weighting == "unit":
            x = x + scale * g
        if callback is not None:
            callback(i, t_next, x, {"guidance_norm": guidance_info(xp, g, callback)})
    return finish(xp, x, x_init)
