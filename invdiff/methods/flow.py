r"""Flow-family recipes: DMPS-flow, DPS-flow and OT-ODE on the rectified-flow path."""

from __future__ import annotations

from .. import likelihoods as _lik
from .. import samplers as _samplers
from ..processes import Flow
from . import _start
from ._common import (
    _as_rng,
    _flow_start,
    _operator,
    _run,
    _under,
    _x_init,
    check_arguments,
)

__all__ = ["dmps_flow", "dps_flow", "ot_ode"]


def _flow_method(name, model, likelihood, op, y, rng, x_init, n, steps, t_start, scale,
                 progress, return_info, record_guidance, settings, weighting="score"):
    """Shared body of DMPS-flow and DPS-flow: Euler on the flow ODE from t0 = 1 - 1/K."""
    rng = _as_rng(rng)
    model = _under(model, Flow, Flow.rectified)
    t0 = _flow_start(steps, t_start)
    return _run(_samplers.ode, model, _x_init(x_init, y, op, rng, n=n), likelihood(model),
                scale=scale, steps=steps, method="euler", t_start=t0, rng=rng,
                weighting=weighting, progress=progress, return_info=return_info,
                record_guidance=record_guidance,
                settings={"method": name, "steps": steps, "t_start": t0, **settings})


def dmps_flow(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 50,
              lam: float = 2.0, t_start=None, progress=False, return_info=False,
              record_guidance=False, in_shape=None):
    r"""DMPS for flow models (Meng & Kabashima, Alg. 2): Euler on the flow ODE plus
    :math:`\lambda\,\frac{t}{1-t}\,\Delta t\,\nabla\log\tilde p(y\mid x_t)`.

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``Flow.rectified()`` if it is not a flow model.
    op, y, sigma_y, rng, x_init, n, progress, return_info, record_guidance, in_shape
        As in :func:`invdiff.methods.dmps` (``in_shape``: the signal's shape when ``op`` is
        a plain ``(M, N)`` matrix).
    steps : int, default 50
    lam : float, default 2.0
    t_start : float, optional
        Default :math:`1 - 1/K`, ``K = steps``.

    Notes
    -----
    Where each choice comes from: **weighting** :math:`\lambda\, t/(1-t)\,\Delta t` and
    **λ = 2**, Algorithm 2 of the paper (the score converted to the velocity,
    ``ode(weighting="score")``); **Euler, 50 steps**: the paper's flow experiments (50
    NFE); **start** standard normal noise. The paper does not give the start time, and the
    weight :math:`t/(1-t)` explodes at :math:`t = 1`, so integration starts at
    :math:`t_0 = 1 - 1/K` (our choice) and takes ``steps`` Euler steps to ``t = 0``. No
    clipping (none in Algorithm 2).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.Flow())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.dmps_flow(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=4).shape
    (4, 4)
    """
    op = _operator(op, in_shape)
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    lam=lam, t_start=t_start, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    return _flow_method("dmps_flow", model, lambda m: _lik.DMPS(op, y, sigma_y, m.process),
                        op, y, rng, x_init, n, steps, t_start, lam, progress, return_info,
                        record_guidance, {"lam": lam})


# DPS-flow's step size for weighting="unit", chosen on validation images only
# (python -m benchmarks.validation_choices; numbers in dps_flow's docstring)
_DPS_FLOW_ZETA = 3.0


def dps_flow(model, op, y, *, rng=None, x_init=None, n=None, steps: int = 50,
             zeta: float | None = None, weighting: str = "unit", t_start=None,
             progress=False, return_info=False, record_guidance=False, in_shape=None):
    r"""DPS in a flow ODE: Euler steps of the flow plus DPS's own step on
    :math:`\|y - A\hat x_0\|`.

    Parameters
    ----------
    model : ScoreModel
        Must provide ``vjp``; re-expressed to ``Flow.rectified()`` if needed.
    op, y, rng, x_init, n, progress, return_info, record_guidance, in_shape
        As in :func:`dmps_flow`.
    steps : int, default 50
    zeta : float, optional
        Step size :math:`\zeta`. Default ``3.0`` with ``weighting="unit"`` (chosen on
        validation images, see Notes) and DPS's ``0.3`` with ``weighting="score"``.
    weighting : {"unit", "score"}, default "unit"
        How the DPS term enters the flow (see Notes).
    t_start : float, optional
        Default :math:`1 - 1/K` as :func:`dmps_flow`.

    Notes
    -----
    No paper defines DPS for flows; the DMPS paper (Meng & Kabashima, ACML 2024) compares
    with one without giving its rule. Two readings, both available:

    * ``"unit"`` (default): DPS's update (Chung et al., ICLR 2023, Algorithm 1) with the
      flow's Euler step in place of the ancestral step,

      .. math:: x_{t-\Delta t} = x_t - \Delta t\, v(x_t, t)
                - \zeta\,\nabla_{x_t}\|y - A\hat x_0(x_t)\| ,

      the gradient step added as is, with no time weight (``ode(weighting="unit")``).
    * ``"score"``: :math:`-\zeta\nabla\|y - A\hat x_0\|` treated as a likelihood score and
      converted like :func:`dmps_flow`'s, i.e. weighted by :math:`\Delta t\, t/(1-t)`. Its
      total displacement over 50 steps is ~290× smaller than DPS's at the same
      :math:`\zeta`, and most of it lands at :math:`t \ge 0.9`: at :math:`\zeta = 0.3`
      the samples stay close to unconditional ones (about 9 dB on MNIST).

    **Step size.** DPS's :math:`\zeta` (0.3 SR/deblurring, 0.5 inpainting) is a per-step size
    for 1000 steps; no paper gives one for 50 flow steps. The default :math:`\zeta = 3` was
    chosen on *validation* images only (``python -m benchmarks.validation_choices``: MNIST
    9000–9015 and the two natural validation crops, every restoration task, 50 Euler
    steps, grid 1, 3, 5, 10, 20) as the value with the best mean PSNR over tasks:
    21.14, 21.87, 21.27, 19.12, 16.43 dB (MNIST) and 18.75, 19.69, 18.89, 16.77, 13.78 dB
    (natural) for ζ = 1, 3, 5, 10, 20.
    The best value differs by task (e.g. ζ = 1 on MNIST denoising and inpainting, ≥ 10 on
    natural SR×4); see that script's results. Like DPS's, it is a per-step size: with
    ``steps`` far from 50, scale it by about :math:`50/K` to keep the total displacement.
    Start time, Euler and 50 steps as :func:`dmps_flow`. One forward and one backward pass
    per step.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.Flow())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.dps_flow(prior, op, np.array([0.5, -0.5]), rng=0, n=4).shape
    (4, 4)
    """
    if weighting not in ("unit", "score"):
        raise ValueError(f"weighting must be one of ('unit', 'score'); received {weighting!r}")
    if zeta is None:
        zeta = _DPS_FLOW_ZETA if weighting == "unit" else 0.3
    op = _operator(op, in_shape)
    check_arguments(model=model, op=op, y=y, x_init=x_init, n=n, steps=steps, zeta=zeta,
                    t_start=t_start, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    return _flow_method("dps_flow", model, lambda m: _lik.DPS(op, y, m, zeta=zeta), op, y,
                        rng, x_init, n, steps, t_start, 1.0, progress, return_info,
                        record_guidance, {"zeta": zeta, "weighting": weighting},
                        weighting=weighting)


def _gamma_pnp_flow(t):
    r"""PnP-Flow's ``gamma_t`` in our time: :math:`\sqrt{\tau/(\tau^2 + (1-\tau)^2)}` at
    :math:`\tau = 1 - t` (``pnpflow/methods/ot_ode.py`` evaluates it at its own time
    ``t1 = delta * iteration``, 0 = noise, 1 = data)."""
    tau = 1.0 - t
    return (tau / (tau * tau + t * t)) ** 0.5


#: ``gamma`` of :func:`ot_ode` -> the guidance weight as a function of our time ``t``
_OT_ODE_GAMMAS = {"constant": None, "gamma_t": _gamma_pnp_flow}


class _TimeWeighted:
    r"""A ``needs_model`` guidance scaled by ``weight(t)`` (OT-ODE's :math:`\gamma_t`)."""

    needs_model = True

    def __init__(self, guidance, weight):
        self.guidance, self.weight = guidance, weight

    def score_and_eps(self, x_t, t):
        g, eps = self.guidance.score_and_eps(x_t, t)
        return self.weight(t) * g, eps

    def score(self, x_t, t):
        return self.score_and_eps(x_t, t)[0]


def ot_ode(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 50,
           t_start: float = 0.8, gamma: str = "constant", progress=False, return_info=False,
           record_guidance=False, in_shape=None):
    r"""OT-ODE (Pokle et al., "Training-free linear image inverses via flows", TMLR 2024):
    the ΠGDM correction inside the flow ODE.

    Parameters
    ----------
    model : ScoreModel
        Must provide ``vjp``; re-expressed to ``Flow.rectified()`` if needed.
    op : SVDOperator or array of shape (M, N)
        The forward operator ``A`` (implicit SVD), or a plain matrix (with ``in_shape``).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Standard deviation of the measurement noise.
    rng, n, progress, return_info, record_guidance, in_shape
        As in :func:`dmps_flow`.
    x_init : array, optional
        State at ``t_start``; default the noised Tikhonov estimate (see Notes).
    steps : int, default 50
        Euler steps from ``t_start`` to 0.
    t_start : float, default 0.8
    gamma : {"constant", "gamma_t"}, default "constant"
        Time weight :math:`\gamma_t` of the guidance: the paper's constant 1, or PnP-Flow's
        schedule (see Notes).

    Notes
    -----
    Where each choice comes from (our time runs from noise at ``t = 1`` to data at 0; the
    paper's from 0 to 1):

    * **guidance**: the ΠGDM score :math:`g` of :class:`invdiff.likelihoods.PiGDM` with
      :math:`r_t^2 = t^2/((1-t)^2 + t^2)`, weighted like a score in the velocity
      (``ode(weighting="score")``: :math:`\Delta t\, t/(1-t)\, g`), i.e. the paper's
      constant :math:`\gamma_t = 1`. Line by line the same as PnP-Flow's re-implementation
      (``pnpflow/methods/ot_ode.py``, ``gamma: constant``).
    * ``gamma="gamma_t"``: PnP-Flow's option (``pnpflow/methods/ot_ode.py``, ``gamma ==
      "gamma_t"``: ``sqrt(t / (t**2 + (1 - t)**2))`` at its time ``t1 = delta * iteration``,
      0 = noise), i.e. :math:`\gamma(t) = \sqrt{(1-t)/((1-t)^2 + t^2)}` in ours; it
      multiplies the guidance term :math:`\frac{1-\tau}{\tau}\, g` there, our
      :math:`t/(1-t)\, g`. It damps the guidance early (0.54 at :math:`t = 0.8`, 0.33 at
      0.9) and is ≈ 1 from :math:`t = 0.5` on.
    * **start time** :math:`t_0 = 0.8`: the paper's recommended :math:`t' = 0.2` in its time
      (PnP-Flow's ``start_time: 0.2`` in ``config/method_config/ot_ode.yaml``).
    * **per task**: PnP-Flow's tuned scripts (``scripts/script_test.sh``, CelebA; start time
      :math:`s` there is our :math:`1 - s`) use deblurring 0.6 + ``gamma_t`` (0.7 for
      AFHQ-Cat, ``scripts/script_test_afhq.sh``), denoising 0.7 + ``gamma_t``, SR 0.9 +
      constant, random inpainting 0.9 + constant, box inpainting 0.9 + ``gamma_t``. On our
      validation images (MNIST 9000–9007, the two natural validation crops; ``python -m
      benchmarks.validation_choices --methods OT-ODE,TV --n-val 8``, :math:`t_0` in
      0.5–0.9 × both γ; ``benchmarks/results/validation_choices-ot_ode.md``)
      the mean PSNR (MNIST / natural, dB) was: deblurring (both kernels) 24.31 / 20.30 at the
      default, 24.13 / 20.28 at PnP-Flow's 0.6 + ``gamma_t``, 24.27 / 20.53 at 0.9 +
      ``gamma_t`` (best); SR 17.18 / 16.70 default, 17.10 / 16.85 at 0.9 + ``gamma_t``
      (best), PnP-Flow's 0.9 + constant diverges on the natural prior (8.2 dB); inpainting
      21.95 / 19.83 default, 22.25 / 20.56 at PnP-Flow's 0.9 + constant (best);
      colorization (natural) 18.12 default, 21.91 at 0.9 + ``gamma_t``; denoising 23.15 /
      19.47 at the default (best; PnP-Flow's 0.7 + ``gamma_t`` 22.90 / 19.34). The
      restoration benchmark takes PnP-Flow's value where validation agrees, else the
      validation best (``OT_ODE_SETTINGS`` in ``benchmarks/restoration.py``). Most
      differences are ≤ 0.2 dB on two natural images; no single setting beats the default
      on both datasets, so the default stays 0.8 + constant.
    * **start state** :math:`x_{t_0} = (1-t_0)\,\hat x + t_0\,\varepsilon`, the paper's
      noised initial guess, with :math:`\hat x = V\,\mathrm{diag}(s/(s^2+\sigma_y^2))\,U^\top y`
      (Tikhonov, :math:`\to A^{+}y` as :math:`\sigma_y \to 0`). Deliberate deviation: the
      exact :math:`A^{+}y` of a *noisy* :math:`y` amplifies the noise by :math:`1/s`; our
      Gaussian blurs keep singular values down to ~1e-3, where :math:`\|A^{+}y - x\|
      \approx 5\|x\|` and OT-ODE fell to 14–15 dB on natural-image deblurring (below TV).
      None of the implementations we read uses :math:`A^{+}` of noisy data: PnP-Flow starts
      from :math:`A^\top y`, the c-ΠGDM flow code (``mandt-lab/c-pigdm``,
      ``flow/sampler.py``) from :math:`A^{+}y` of noiseless :math:`y`. The Tikhonov start
      keeps :math:`A^{+}`'s scale where :math:`s \gg \sigma_y` and damps the rest.
    * **steps**: 50 Euler steps, the DMPS paper's flow comparison (50 NFE); PnP-Flow uses
      80 (``steps_ode: 100`` over the whole path).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.Flow())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.ot_ode(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=4).shape
    (4, 4)
    """
    if gamma not in _OT_ODE_GAMMAS:
        raise ValueError(f"gamma must be one of {tuple(_OT_ODE_GAMMAS)}; received {gamma!r}")
    op = _operator(op, in_shape, svd=True)  # the start needs the SVD
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    t_start=t_start, required=("t_start",), progress=progress,
                    return_info=return_info, record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, Flow, Flow.rectified)
    guidance = _lik.PiGDM(op, y, sigma_y, model)
    if _OT_ODE_GAMMAS[gamma] is not None:
        guidance = _TimeWeighted(guidance, _OT_ODE_GAMMAS[gamma])
    if x_init is None:
        x_hat = _start.tikhonov(op, y, sigma_y, method="ot_ode")
        x_init = _start.noised(model.process, t_start, x_hat, rng, n)
    else:
        x_init = _x_init(x_init, y, op, rng, n=n)
    return _run(_samplers.ode, model, x_init, guidance, scale=1.0, steps=steps,
                method="euler", t_start=t_start, rng=rng, progress=progress,
                return_info=return_info, record_guidance=record_guidance,
                settings={"method": "ot_ode", "steps": steps, "t_start": t_start,
                          "gamma": gamma})
