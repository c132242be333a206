r"""DDPM-family recipes: DMPS, DPS and ΠGDM on a VP (DDPM) process."""

from __future__ import annotations

from .. import likelihoods as _lik
from .. import samplers as _samplers
from ..processes import VP
from . import _start
from ._common import _as_rng, _operator, _run, _under, _x_init, check_arguments

__all__ = ["dmps", "dps", "pigdm"]


def dmps(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 1000,
         lam: float = 1.75, guidance_at: str = "x_t", clip_x0=(-1.0, 1.0), progress=False,
         return_info=False, record_guidance=False, in_shape=None):
    r"""DMPS: diffusion model based posterior sampling (DDPM version).

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model.
    op : SVDOperator or array of shape (M, N)
        The forward operator ``A`` (implicit SVD), or a plain matrix acting on the
        flattened signal.
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
    in_shape : tuple of int, optional
        Shape of the signal when ``op`` acts on its flattening (a plain ``(M, N)`` matrix
        or a :class:`~invdiff.operators.DenseMatrix` with an image prior): ``(C, H, W)``
        with :math:`CHW = N`, row-major.

    Returns
    -------
    array, or (array, dict) with ``return_info``

    Notes
    -----
    Meng & Kabashima, "Diffusion Model Based Posterior Sampling for Noisy Linear Inverse
    Problems" (ACML 2024), Algorithm 1: the ancestral step plus
    :math:`\lambda (\beta_t/\sqrt{\alpha_t}) \nabla\log\tilde p(y\mid x_t)` with the
    closed-form pseudo-likelihood of :class:`invdiff.likelihoods.DMPS`. No network gradient:
    one network evaluation per step. Where each choice comes from (authors' code:
    ``mengxiangming/dmps``):

    * **weighting** :math:`\lambda\beta_t/\sqrt{\alpha_t}`: Algorithm 1, and the code's
      ``x_t += scale * grad * (1 - alpha_t) / sqrt(alpha_t)``
      (``guided_diffusion/condition_methods.py``); **λ = 1.75**: the paper, every task.
    * **where the gradient is evaluated**: :math:`x_t` in the paper (default), the ancestral
      output :math:`x'` in the code (``guidance_at="x_prev"``); the two differ by
      0.02–0.05 dB on our benchmark.
    * **start**: :math:`\mathcal N(0, I)` (Algorithm 1 and the code).
    * **clipping**: :math:`\hat x_0` clipped to ``[-1, 1]`` inside the ancestral step, as
      the code's ``clip_denoised`` (``guided_diffusion/gaussian_diffusion.py``); the paper
      does not mention it.
    * **steps** = 1000, the paper's NFE; variance :math:`\tilde\beta_t` (or the model's
      learned one), as the code's guided-diffusion sampler.

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
    op = _operator(op, in_shape)
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
        clip_x0=(-1.0, 1.0), progress=False, return_info=False, record_guidance=False,
        in_shape=None):
    r"""DPS: diffusion posterior sampling (Chung et al., ICLR 2023), DDPM version.

    Each ancestral step is followed by :math:`x \leftarrow x - \zeta \nabla_{x_t}
    \|y - A\hat x_0(x_t)\|` (per-sample norm). One forward and one backward pass per step.

    Parameters
    ----------
    model : ScoreModel
        Must provide ``vjp``; re-expressed to ``VP.linear(1000)`` if needed.
    op, y, rng, x_init, n, steps, clip_x0, progress, return_info, record_guidance, in_shape
        As in :func:`dmps`.
    zeta : float, default 0.3

    Notes
    -----
    Where each choice comes from (authors' code: ``DPS2022/diffusion-posterior-sampling``):

    * **weighting**: the gradient step added as is after the ancestral step
      (Algorithm 1; ``ancestral(weighting="unit")``), with the norm of the residual, not its
      square; **ζ** = 0.3 (the code's SR and deblurring configs), 0.5 (inpainting), 1.0
      (phase retrieval). Deliberate deviation: the norm is taken per sample; the code takes
      one norm over the whole batch, which couples the samples.
    * **start**: :math:`\mathcal N(0, I)`; **clipping**: :math:`\hat x_0` clipped to
      ``[-1, 1]`` in the ancestral step, as the code's ``clip_denoised: true``; **steps**
      = 1000 with :math:`\tilde\beta_t` (or learned) variances, as the code.

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
    op = _operator(op, in_shape)
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
          record_guidance=False, in_shape=None):
    r"""ΠGDM: pseudoinverse-guided diffusion (Song, Vahdat, Mardani, Kautz, ICLR 2023).

    DDIM in which the ΠGDM guidance is added to each new state as NVlabs' code does it
    (``ddim(weighting="pigdm")``): :math:`x_s \mathrel{+}= \sqrt{\bar\alpha_s}
    \sqrt{\bar\alpha_t}\, r_t^2\, g` with :math:`\hat x_0` and :math:`\hat\varepsilon`
    unguided, where :math:`g = (\partial\hat x_0/\partial x_t)^\top A^\top (r_t^2 AA^\top +
    \sigma_y^2 I)^{-1}(y - A\hat x_0)`, :math:`r_t^2 = b_t^2/(a_t^2+b_t^2)`, solved through the
    SVD (:class:`invdiff.likelihoods.PiGDM`).

    Parameters
    ----------
    model : ScoreModel
        Must provide ``vjp``; re-expressed to ``VP.linear(1000)`` if needed.
    op : SVDOperator or array of shape (M, N)
        The forward operator ``A`` (implicit SVD), or a plain matrix (with ``in_shape``).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Standard deviation of the measurement noise.
    rng, n, progress, return_info, record_guidance, in_shape
        As in :func:`dmps`.
    x_init : array, optional
        Start state at ``t = T``; default the reference's
        :math:`\sqrt{\bar\alpha_T}\, A^{+} y + \sqrt{1-\bar\alpha_T}\,\varepsilon`.
    steps : int, default 100
    eta : float, default 1.0
        DDIM's :math:`\eta` (0 deterministic, 1 DDPM-like).
    clip_x0 : (float, float) or None, default None

    Notes
    -----
    Where each choice comes from. The paper's Algorithm 1 is the noiseless DDIM update with
    the vector–Jacobian product :math:`g`; eq. (8) adds the measurement noise (our
    :math:`g`). Its public implementation is NVlabs' ``algos/pgdm.py`` in the RED-diff
    repository (``_configs/algo/pgdm.yaml``), whose defaults we follow:

    * **weighting**: ``awd: True``, ``grad_term_weight: 1``: the code's guidance
      :math:`J^\top A^{+}(y - A\hat x_0)` (:math:`= r_t^2 g` at :math:`\sigma_y = 0`) is
      added to :math:`x_{t-1}` with coefficient :math:`\sqrt{\bar\alpha_{t-1}}
      \sqrt{\bar\alpha_t}`; :math:`\hat x_0` and :math:`\hat\varepsilon` stay unguided. We
      use eq. (8)'s noisy :math:`g` in its place (the two agree at :math:`\sigma_y = 0`).
      Moving :math:`\hat x_0` by :math:`r_t^2 g` (our earlier reading of Algorithm 1) is
      :math:`1/\sqrt{\bar\alpha_t}` times stronger, up to 156× at :math:`t = T`; on the
      bundled natural-image prior that diverged to NaN within 15 steps.
    * **start**: the code's ``initialize``: :math:`\sqrt{\bar\alpha_T} A^{+} y +
      \sqrt{1-\bar\alpha_T}\,\varepsilon` (the paper starts from noise; at
      :math:`\sqrt{\bar\alpha_T} = 0.0064` the difference is small).
    * **η = 1** (deliberate deviation from the code's ``eta: 0.0``; the paper's
      Algorithm 1 is written for any η through its :math:`c_1, c_2`): chosen on the
      *validation* images between the two (``python -m benchmarks.validation_choices``, 16
      MNIST digits 9000–9015 and the two natural validation crops, every restoration task):
      mean PSNR over tasks 22.84 vs 21.71 dB (MNIST) and 19.85 vs 18.94 dB (natural) for
      η = 1 vs 0.
    * **clipping**: none, in the paper and in the code (``clip_x0=None``).
    * **steps** = 100: the paper's experiments and the code's README (``num_steps=100``);
      DDPM times respaced evenly from ``T`` (:func:`invdiff.samplers.ddim`).

    Not copied: the code's noiseless pseudo-inverse (we keep the noisy eq. (8)) and its
    special case for its ``in2`` inpainting masks, which overwrites the observed pixels of
    :math:`\hat x_0` with :math:`y` (a noiseless-data shortcut).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> ivd.methods.pigdm(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=4, steps=20).shape
    (4, 4)
    """
    op = _operator(op, in_shape, svd=True)  # the start needs the SVD
    check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n, steps=steps,
                    eta=eta, clip_x0=clip_x0, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    guidance = _lik.PiGDM(op, y, sigma_y, model)
    if x_init is None:
        proc = model.process
        x_init = _start.noised(proc, float(proc.T), _start.pinv(op, y), rng, n)
    else:
        x_init = _x_init(x_init, y, op, rng, n=n)
    return _run(_samplers.ddim, model, x_init, guidance,
                scale=1.0, weighting="pigdm", steps=steps, eta=eta, rng=rng,
                progress=progress, clip_x0=clip_x0,
                return_info=return_info, record_guidance=record_guidance,
                settings={"method": "pigdm", "eta": eta, "steps": steps})
