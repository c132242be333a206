r"""DDPM-family recipes: DMPS, DPS and ΠGDM on a VP (DDPM) process."""

from __future__ import annotations

from .. import likelihoods as _lik
from .. import samplers as _samplers
from ..processes import VP
from ._common import _as_rng, _run, _under, _x_init, check_arguments

__all__ = ["dmps", "dps", "pigdm"]


def dmps(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 1000,
         lam: float = 1.75, guidance_at: str = "x_t", clip_x0=(-1.0, 1.0), progress=False,
         return_info=False, record_guidance=False):
    r"""DMPS: diffusion model based posterior sampling (DDPM version).

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model.
    op : SVDOperator
        The forward operator ``A`` (implicit SVD).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Standard deviation of the measurement noise (paper: 0.05; 0.5 for denoising).
    rng : invdiff.random.Generator or int, optional
    x_init : array, optional
        Start state at ``t = T``; default standard normal with ``y``'s batch shape.
    n : int, optional
        Number of posterior samples per measurement (a leading batch axis).
    steps : int, default 1000
        Ancestral steps (fewer respace the schedule).
    lam : float, default 1.75
        :math:`\lambda`, the paper's value for every task.
    guidance_at : {"x_t", "x_prev"}, default "x_t"
        Evaluate the pseudo-likelihood score at :math:`x_t` (paper) or at the ancestral
        update :math:`x'` (the authors' code).
    clip_x0 : (float, float) or None, default (-1, 1)
        Clip Tweedie's :math:`\hat x_0` inside the ancestral step, as the reference code does
        for images in ``[-1, 1]``; ``None`` for unbounded data.
    progress, return_info, record_guidance : bool
        See the module docstring.

    Returns
    -------
    array, or (array, dict) with ``return_info``

    Notes
    -----
    Meng & Kabashima, "Diffusion Model Based Posterior Sampling for Noisy Linear Inverse
    Problems" (ACML 2024), Algorithm 1: the ancestral step plus
    :math:`\lambda (\beta_t/\sqrt{\alpha_t}) \nabla\log\tilde p(y\mid x_t)` with the
    closed-form pseudo-likelihood of :class:`invdiff.likelihoods.DMPS`. No network gradient:
    one network evaluation per step.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> vp = ivd.processes.VP.linear()
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=vp)
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.dmps(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=8,
    ...                            steps=100, clip_x0=None, return_info=True)
    >>> x.shape, info["nfe"]
    ((8, 4), 100)
    """
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    lam=lam, guidance_at=guidance_at, clip_x0=clip_x0, progress=progress,
                    return_info=return_info, record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    guidance = _lik.DMPS(op, y, sigma_y, model.process)
    return _run(_samplers.ancestral, model, _x_init(x_init, y, op, rng, n=n), guidance,
                scale=lam, steps=steps, rng=rng, progress=progress, clip_x0=clip_x0,
                guidance_at=guidance_at, return_info=return_info,
                record_guidance=record_guidance,
                settings={"method": "dmps", "lam": lam, "steps": steps})


def dps(model, op, y, *, rng=None, x_init=None, n=None, steps: int = 1000, zeta: float = 0.3,
        clip_x0=(-1.0, 1.0), progress=False, return_info=False, record_guidance=False):
    r"""DPS: diffusion posterior sampling (Chung et al., ICLR 2023), DDPM version.

    Each ancestral step is followed by :math:`x \leftarrow x - \zeta \nabla_{x_t}
    \|y - A\hat x_0(x_t)\|` (per-sample norm). ``zeta`` = 0.3 (SR/deblur configs), 0.5
    (inpainting), 1.0 (phase retrieval). One forward and one backward pass per step.

    Parameters
    ----------
    model : ScoreModel
        Must provide ``vjp``; re-expressed to ``VP.linear(1000)`` if needed.
    op, y, rng, x_init, n, steps, clip_x0, progress, return_info, record_guidance
        As in :func:`dmps`.
    zeta : float, default 0.3

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x = ivd.methods.dps(prior, op, np.array([0.5, -0.5]), rng=0, n=4, steps=50, clip_x0=None)
    >>> x.shape
    (4, 4)
    """
    check_arguments(model=model, op=op, y=y, x_init=x_init, n=n, steps=steps, zeta=zeta,
                    clip_x0=clip_x0, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    guidance = _lik.DPS(op, y, model, zeta=zeta)
    return _run(_samplers.ancestral, model, _x_init(x_init, y, op, rng, n=n), guidance,
                scale=1.0, weighting="unit", steps=steps, rng=rng, progress=progress,
                clip_x0=clip_x0, return_info=return_info, record_guidance=record_guidance,
                settings={"method": "dps", "zeta": zeta, "steps": steps})


def pigdm(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 100,
          eta: float = 1.0, clip_x0=None, progress=False, return_info=False,
          record_guidance=False):
    r"""ΠGDM: pseudoinverse-guided diffusion (Song, Vahdat, Mardani, Kautz, ICLR 2023).

    DDIM (``eta = 1``, 100 steps as in the paper's experiments) in which Tweedie's estimate
    moves by :math:`r_t^2 g` (``ddim(weighting="pigdm")``: the paper's Algorithm 1), with
    :math:`g = (\partial\hat x_0/\partial x_t)^\top A^\top (r_t^2 AA^\top + \sigma_y^2 I)^{-1}
    (y - A\hat x_0)`, :math:`r_t^2 = b_t^2/(a_t^2+b_t^2)`, solved through the SVD
    (:class:`invdiff.likelihoods.PiGDM`). Entering :math:`g` as a plain likelihood score
    instead (``weighting="score"``) is :math:`1/a_t` times stronger and diverges on trained
    networks, whose Jacobian is large at early times.

    ``clip_x0`` is off, as in the paper. A network whose Jacobian is large at high noise can
    still make :math:`g` explode (the bundled natural-image prior does: 100 steps end in
    NaN, ``benchmarks/README.md``); ``clip_x0=(-1, 1)`` keeps the guided :math:`\hat x_0`
    in the data range and is stable there.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.pigdm(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=4, steps=20).shape
    (4, 4)
    """
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    eta=eta, clip_x0=clip_x0, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    guidance = _lik.PiGDM(op, y, sigma_y, model)
    return _run(_samplers.ddim, model, _x_init(x_init, y, op, rng, n=n), guidance,
                scale=1.0, weighting="pigdm", steps=steps, eta=eta, rng=rng,
                progress=progress, clip_x0=clip_x0,
                return_info=return_info, record_guidance=record_guidance,
                settings={"method": "pigdm", "eta": eta, "steps": steps})
