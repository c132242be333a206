r"""DDIM (Song, Meng & Ermon, 2021): deterministic (``eta=0``) to DDPM-like (``eta=1``)."""

from __future__ import annotations

import math

from .._array_api import clip
from ..processes import VP
from ._common import (
    check_choice,
    check_process_kind,
    check_real,
    evaluate,
    finish,
    guidance_info,
    progress_bar,
    setup,
    vp_times,
)
from .ancestral import _check_clip

__all__ = ["ddim"]


def ddim(model, x_init, *, guidance=None, scale: float = 1.0, steps: int = 100, rng=None,
         progress: bool = False, callback=None, eta: float = 0.0,
         clip_x0: tuple[float, float] | None = None, weighting: str = "score"):
    r"""DDIM sampler with optional guidance.

    Parameters
    ----------
    model : ScoreModel
        ``model.process`` must be :class:`invdiff.processes.VP`.
    x_init : array
        The state at ``t = T``; fixes namespace, device, dtype and shape.
    guidance : Likelihood, optional
        Any object with ``score(x_t, t)``.
    scale : float, default 1.0
        Guidance weight :math:`\lambda`.
    steps : int, default 100
        Number of steps, DDPM times respaced evenly from ``T`` to ``1`` (ΠGDM uses 100).
    rng : invdiff.random.Generator or int, optional
        Needed only for ``eta > 0``.
    progress : bool, default False
    callback : callable, optional
        ``callback(i, t, x, info)`` after step ``i``, ``info = {"x0", "guidance_norm"}``.
    eta : float, default 0.0
        0 is deterministic DDIM; 1 has the DDPM posterior variance.
    clip_x0 : (float, float), optional
        Clip :math:`\hat x_0`; :math:`\hat\varepsilon` is then recomputed from the clipped
        value so that the step stays consistent.
    weighting : {"score", "pigdm"}, default "score"
        How the guidance enters (see Notes).

    Returns
    -------
    array
        The sample at ``t = 0`` in ``x_init``'s namespace, device, dtype and shape.

    Notes
    -----
    For :math:`t > s`, with :math:`\hat\varepsilon` and
    :math:`\hat x_0 = (x_t - b_t\hat\varepsilon)/a_t` from the network
    (:math:`a_t = \sqrt{\bar\alpha_t}`, :math:`b_t = \sqrt{1-\bar\alpha_t}`):

    .. math::

        \sigma = \eta\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}\Big(1-\frac{\bar\alpha_t}
        {\bar\alpha_s}\Big)},\quad
        x_s = \sqrt{\bar\alpha_s}\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma^2}\,\hat\varepsilon
              + \sigma z + \Delta_s .

    **Weighting rule** (:math:`\Delta_s`, the guidance's share of the step):

    * ``"score"``: the guidance is a likelihood score added to the network's score,
      :math:`\hat\varepsilon \leftarrow \hat\varepsilon - \lambda\, b_t\, g` (since
      :math:`s = -\hat\varepsilon/b_t`), before :math:`\hat x_0` is formed: Tweedie's estimate
      moves by :math:`\lambda (b_t^2/a_t)\, g` and the step stays a DDIM step of the guided
      score.
    * ``"pigdm"``: ΠGDM as NVlabs' code does it (``algos/pgdm.py`` of the RED-diff repository,
      default ``awd: True``): :math:`\hat x_0` and :math:`\hat\varepsilon` stay unguided and
      the guidance is added to :math:`x_s` alone,

      .. math:: \Delta_s = \lambda \sqrt{\bar\alpha_s}\,\sqrt{\bar\alpha_t}\; r_t^2\, g,
                \qquad r_t^2 = \frac{b_t^2}{a_t^2+b_t^2},

      i.e. :math:`\hat x_0` moves by :math:`a_t r_t^2 g` inside the DDIM map, with
      :math:`\hat\varepsilon` unchanged. (The code's guidance
      :math:`J^\top A^{+}(y - A\hat x_0)` is :math:`r_t^2 g` for :math:`\sigma_y = 0`, with
      :math:`g` the ΠGDM score of :class:`invdiff.likelihoods.PiGDM`.) Against the score rule
      this is :math:`a_t^2` times its :math:`\hat x_0` part and drops its
      :math:`\hat\varepsilon` part; the :math:`a_t` it gains over moving :math:`\hat x_0` by
      :math:`r_t^2 g` tames the network's Jacobian
      :math:`\partial\hat x_0/\partial x_t \sim 1/a_t` at high noise.

    With ``clip_x0`` the network's :math:`\hat x_0` is clipped and :math:`\hat\varepsilon`
    recomputed from it before the guidance enters.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> proc = ivd.processes.VP.linear()
    >>> prior = ivd.priors.GaussianPrior(np.full(2, -1.0), np.ones(2) * 0.25, process=proc)
    >>> rng = ivd.random.Generator(0)
    >>> x = ivd.samplers.ddim(prior, rng.normal((500, 2), like=np.zeros(1)), steps=50)
    >>> bool(np.all(np.abs(x.mean(axis=0) + 1.0) < 0.1))
    True
    """
    xp, scale, rng = setup(model, x_init, guidance, scale, rng)
    proc = model.process
    check_process_kind("ddim", proc, VP)
    eta = check_real("eta", eta)
    if eta < 0:
        raise ValueError(f"eta must be >= 0; received {eta!r}")
    lo, hi = _check_clip(clip_x0)
    check_choice("weighting", weighting, ("score", "pigdm"))
    pairs = vp_times(proc, steps)

    x = x_init
    for i, (k, j) in enumerate(progress_bar(pairs, progress, len(pairs), "ddim")):
        t = float(k)
        ab_t, ab_s = proc.alpha_bar(k), proc.alpha_bar(j)
        a_t, b_t = math.sqrt(ab_t), math.sqrt(1.0 - ab_t)
        eps, g = evaluate(model, guidance, x, t, "eps")
        if g is not None and weighting == "score":
            eps = eps - (scale * b_t) * g
        x0 = (x - b_t * eps) / a_t
        if clip_x0 is not None:
            x0 = clip(x0, lo, hi, xp)  # no boolean-mask writes (a CuPy sync)
            eps = (x - a_t * x0) / b_t
        sigma = eta * math.sqrt((1.0 - ab_s) / (1.0 - ab_t) * (1.0 - ab_t / ab_s))
        x = math.sqrt(ab_s) * x0 + math.sqrt(max(1.0 - ab_s - sigma**2, 0.0)) * eps
        if sigma > 0:
            x = x + sigma * rng.normal(x.shape, like=x)
        if g is not None and weighting == "pigdm":
            r2 = b_t * b_t / (a_t * a_t + b_t * b_t)
            x = x + (scale * math.sqrt(ab_s) * a_t * r2) * g
        if callback is not None:
            callback(i, float(j), x, {"x0": x0, "guidance_norm": guidance_info(xp, g, callback)})
    return finish(xp, x, x_init)
