r"""Flow-family recipes: DMPS-flow, DPS-flow and OT-ODE on the rectified-flow path."""

from __future__ import annotations

from .. import likelihoods as _lik
from .. import samplers as _samplers
from ..processes import Flow
from ._common import _as_rng, _flow_start, _run, _under, _x_init, check_arguments

__all__ = ["dmps_flow", "dps_flow", "ot_ode"]


def _flow_method(name, model, likelihood, op, y, rng, x_init, n, steps, t_start, scale,
                 progress, return_info, record_guidance, settings):
    """Shared body of DMPS-flow and DPS-flow: Euler on the flow ODE from t0 = 1 - 1/K."""
    rng = _as_rng(rng)
    model = _under(model, Flow, Flow.rectified)
    t0 = _flow_start(steps, t_start)
    return _run(_samplers.ode, model, _x_init(x_init, y, op, rng, n=n), likelihood(model),
                scale=scale, steps=steps, method="euler", t_start=t0, rng=rng,
                progress=progress, return_info=return_info, record_guidance=record_guidance,
                settings={"method": name, "steps": steps, "t_start": t0, **settings})


def dmps_flow(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 50,
              lam: float = 2.0, t_start=None, progress=False, return_info=False,
              record_guidance=False):
    r"""DMPS for flow models (Meng & Kabashima, Alg. 2): Euler on the flow ODE plus
    :math:`\lambda\,\frac{t}{1-t}\,\Delta t\,\nabla\log\tilde p(y\mid x_t)`.

    The paper does not give the start time; the guidance weight :math:`t/(1-t)` explodes
    at :math:`t = 1`, so integration starts at :math:`t_0 = 1 - 1/K` (``t_start`` default,
    ``K = steps``) from standard normal noise, and takes ``steps`` Euler steps to ``t = 0``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.Flow())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.dmps_flow(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=4).shape
    (4, 4)
    """
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    lam=lam, t_start=t_start, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    return _flow_method("dmps_flow", model, lambda m: _lik.DMPS(op, y, sigma_y, m.process),
                        op, y, rng, x_init, n, steps, t_start, lam, progress, return_info,
                        record_guidance, {"lam": lam})


def dps_flow(model, op, y, *, rng=None, x_init=None, n=None, steps: int = 50,
             zeta: float = 0.3, t_start=None, progress=False, return_info=False,
             record_guidance=False):
    r"""DPS in a flow ODE: the DPS term :math:`-\zeta\nabla\|y - A\hat x_0\|` used as the
    likelihood score in the flow ODE (Euler, 50 steps), with the same :math:`a_t, b_t`
    conversion as :func:`dmps_flow` (start :math:`t_0 = 1 - 1/K`).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.Flow())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.dps_flow(prior, op, np.array([0.5, -0.5]), rng=0, n=4).shape
    (4, 4)
    """
    check_arguments(model=model, op=op, y=y, x_init=x_init, n=n, steps=steps, zeta=zeta,
                    t_start=t_start, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    return _flow_method("dps_flow", model, lambda m: _lik.DPS(op, y, m, zeta=zeta), op, y,
                        rng, x_init, n, steps, t_start, 1.0, progress, return_info,
                        record_guidance, {"zeta": zeta})


def ot_ode(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 50,
           t_start: float = 0.8, progress=False, return_info=False, record_guidance=False):
    r"""OT-ODE (Pokle et al., ICLR 2024): the ΠGDM correction inside the flow ODE.

    Starts at ``t_start`` (0.8 in our time, where ``t = 1`` is noise: their recommended
    :math:`t' = 0.2` along the data-ward time) from the noised pseudo-inverse
    :math:`x_{t_0} = (1-t_0) A^+ y + t_0 \varepsilon`, then takes ``steps`` Euler steps.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.Flow())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.ot_ode(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=4).shape
    (4, 4)
    """
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    t_start=t_start, required=("t_start",), progress=progress,
                    return_info=return_info, record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, Flow, Flow.rectified)
    if x_init is None:
        x_pinv = op.pinv(y)
        shape = ((int(n),) if n is not None else ()) + tuple(x_pinv.shape)
        x_init = (1.0 - t_start) * x_pinv + t_start * rng.normal(shape, like=y)
    guidance = _lik.PiGDM(op, y, sigma_y, model)
    return _run(_samplers.ode, model, x_init, guidance, scale=1.0, steps=steps,
                method="euler", t_start=t_start, rng=rng, progress=progress,
                return_info=return_info, record_guidance=record_guidance,
                settings={"method": "ot_ode", "steps": steps, "t_start": t_start})
