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


def ot_ode(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 50,
           t_start: float = 0.8, progress=False, return_info=False, record_guidance=False,
           in_shape=None):
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

    Notes
    -----
    Where each choice comes from (our time runs from noise at ``t = 1`` to data at 0; the
    paper's from 0 to 1):

    * **guidance**: the ΠGDM score :math:`g` of :class:`invdiff.likelihoods.PiGDM` with
      :math:`r_t^2 = t^2/((1-t)^2 + t^2)`, weighted like a score in the velocity
      (``ode(weighting="score")``: :math:`\Delta t\, t/(1-t)\, g`), i.e. the paper's
      constant :math:`\gamma_t = 1`. Line by line the same as PnP-Flow's re-implementation
      (``pnpflow/methods/ot_ode.py``, ``gamma: constant``).
    * **start time** :math:`t_0 = 0.8`: the paper's recommended :math:`t' = 0.2` in its time
      (PnP-Flow's ``start_time: 0.2``).
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
    op = _operator(op, in_shape, svd=True)  # the start needs the SVD
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    t_start=t_start, required=("t_start",), progress=progress,
                    return_info=return_info, record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, Flow, Flow.rectified)
    guidance = _lik.PiGDM(op, y, sigma_y, model)
    if x_init is None:
        x_hat = _start.tikhonov(op, y, sigma_y, method="ot_ode")
        x_init = _start.noised(model.process, t_start, x_hat, rng, n)
    else:
        x_init = _x_init(x_init, y, op, rng, n=n)
    return _run(_samplers.ode, model, x_init, guidance, scale=1.0, steps=steps,
                method="euler", t_start=t_start, rng=rng, progress=progress,
                return_info=return_info, record_guidance=record_guidance,
                settings={"method": "ot_ode", "steps": steps, "t_start": t_start})
