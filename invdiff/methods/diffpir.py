r"""DiffPIR: plug-and-play restoration with a diffusion denoiser (Zhu et al., CVPR-W 2023).

Half-quadratic splitting along the DDPM schedule: Tweedie's :math:`\hat x_0` is the prior
(denoising) step, the data step is the proximal map of :math:`\|y - Ax\|^2` solved exactly
through the operator's SVD, and the next state re-noises the result with a mix of the
implied noise and fresh noise.
"""

from __future__ import annotations

import math

from .._array_api import namespace
from ..processes import VP, predict
from ..samplers._common import progress_bar
from ._common import _as_rng, _operator, _run, _under, _x_init, check_arguments, in_range
from ._fidelity import SVDProximal

__all__ = ["diffpir"]


def quad_times(T: int, steps: int) -> list[int]:
    """DDPM steps ``T = t_0 > t_1 > ... = 1`` of the reference's ``skip_type='quad'``.

    The reference visits ``seq_k = int(sqrt(k/(steps-1)) T)`` (last one ``T - 1``) of its
    reversed 0-indexed schedule, i.e. our step ``T - seq_k``: dense at low noise. Repeated
    steps (possible when ``steps`` nears ``T``) are visited once.
    """
    if steps == 1:
        return [T]
    seq = [int(math.sqrt(T * T * k / (steps - 1))) for k in range(steps)]
    seq[-1] -= 1
    return list(dict.fromkeys(T - s for s in seq))


def _diffpir_loop(model, x_init, *, guidance=None, callback=None, prox, sigma_y, lam, zeta,
                  times, clip, rng, progress):
    """The DiffPIR iteration from ``times[0]`` down to ``t = 0`` (no host synchronisation)."""
    xp = namespace(x_init=x_init)
    proc = model.process
    x = x_init
    pairs = list(zip(times, times[1:] + [0], strict=True))
    for i, (t, s) in enumerate(progress_bar(pairs, progress, len(pairs), "diffpir")):
        a_t, b_t = math.sqrt(proc.alpha_bar(t)), math.sqrt(1.0 - proc.alpha_bar(t))
        x0 = predict(model, x, float(t), "x0")
        if clip is not None:
            x0 = xp.clip(x0, *clip)
        # rho_t = lam sigma_y^2 / r_t^2 with r_t = b_t / a_t (the noise level of x0 in data units)
        x0 = prox(x0, lam * sigma_y**2 * (a_t / b_t) ** 2)
        if s == 0:
            x = x0
        else:
            a_s, b_s = math.sqrt(proc.alpha_bar(s)), math.sqrt(1.0 - proc.alpha_bar(s))
            eps = (x - a_t * x0) / b_t
            x = a_s * x0 + b_s * (math.sqrt(1.0 - zeta) * eps)
            if zeta > 0:
                x = x + (b_s * math.sqrt(zeta)) * rng.normal(tuple(x.shape), like=x)
        if callback is not None:
            callback(i, float(s), x, {"x0": x0})
    return x


def diffpir(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, steps: int = 100,
            lam: float = 1.75, zeta: float = 0.3, clip_x0=(-1.0, 1.0), progress=False,
            return_info=False, in_shape=None):
    r"""DiffPIR: denoising diffusion models for plug-and-play image restoration.

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model.
    op : SVDOperator or array of shape (M, N)
        The forward operator ``A`` (its SVD solves the data step exactly), or a plain matrix
        acting on the flattened signal (``in_shape`` gives the image shape).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Measurement noise standard deviation, ``> 0``, in the units of ``x`` (the
        reference's noise-free tasks use a floor of 0.001 on its [0, 1] scale).
    rng : invdiff.random.Generator or int, optional
    x_init : array, optional
        State at ``t = T``; default standard normal with ``y``'s batch shape.
    n : int, optional
        Samples per measurement (a leading batch axis).
    steps : int, default 100
        Network evaluations, on the reference's ``quad`` schedule (:func:`quad_times`); the
        paper's 100 NFE (20 in its noise-free inpainting configuration).
    lam : float, default 1.75
        :math:`\lambda` in :math:`\rho_t = \lambda\sigma_y^2/r_t^2`. 1.75 is the reference's
        Gaussian-deblurring value 7 (``main_ddpir_deblur.py``) in consistent units (Notes).
    zeta : float, default 0.3
        :math:`\zeta \in [0, 1]`, the share of fresh noise in the re-noising step (0.3:
        Gaussian deblurring; the reference uses 0.25 for SR×4 and 1.0 for inpainting).
    clip_x0 : (float, float) or None, default (-1, 1)
        Clip Tweedie's :math:`\hat x_0` before the data step, as the reference
        (``clip_denoised=True``); ``None`` for unbounded data.
    progress, return_info : bool
        As in :func:`invdiff.methods.dmps`; ``info`` holds ``nfe`` and ``seconds``.
    in_shape : tuple, optional
        Shape of the signal when ``op`` acts on its flattening.

    Returns
    -------
    array, or (array, dict) with ``return_info``

    Notes
    -----
    Zhu, Zhang, Liang, Cao, Wen, Timofte, Van Gool, "Denoising Diffusion Models for
    Plug-and-Play Image Restoration" (CVPR Workshops 2023), Algorithm 1, in our notation
    (:math:`x_t = a_t x_0 + b_t\varepsilon`, :math:`r_t = b_t/a_t`): for each step
    :math:`t \to s`,

    .. math::

        \hat x_0 &= \mathrm{clip}\big((x_t - b_t\hat\varepsilon(x_t, t))/a_t\big), \\
        \tilde x_0 &= \arg\min_x \|y - Ax\|^2 + \rho_t\|x - \hat x_0\|^2
                    = \hat x_0 + V\mathrm{diag}\Big(\frac{s_i}{s_i^2+\rho_t}\Big)
                      (U^\top y - s\odot V^\top\hat x_0),
                    \quad \rho_t = \frac{\lambda\sigma_y^2}{r_t^2}, \\
        x_s &= a_s\tilde x_0 + b_s\big(\sqrt{1-\zeta}\,(x_t - a_t\tilde x_0)/b_t
               + \sqrt\zeta\, z\big),

    ending at :math:`s = 0` with :math:`\tilde x_0`.

    *Units of* :math:`\lambda`. The authors' code (``yuanzhi-zhu/DiffPIR``) solves the data
    step on the [0, 1] image scale with :math:`\sigma_n` on that scale but takes
    :math:`\bar\sigma_t = r_t` from the model's [-1, 1] scale, so its
    :math:`\rho_t = \lambda_{code}\sigma_n^2/\bar\sigma_t^2` equals ours with
    :math:`\lambda = \lambda_{code}/4`. Here both are in the units of ``x``, so that
    :math:`\lambda = 1` is the Gaussian :math:`\mathcal N(\hat x_0, r_t^2 I)` prior of the
    data step (on a white Gaussian prior the output mean is then the MAP, up to
    :math:`O(r_t^2)` of the last steps; see the tests).

    *The official code, not deepinv.* ``deepinv.sampling.DiffPIR`` behaves differently from
    the official repository (deepinv issue #1030: there the data step keeps :math:`\tilde
    x_0` close to :math:`\hat x_0`, while the official one overshoots at high noise). Two
    differences explain it: deepinv calls ``data_fidelity.prox(..., gamma=1/(2 rho_t))`` of
    :math:`\tfrac12\|Ax - y\|^2`, which solves :math:`(A^\top A + 2\rho_t I)x = \dots` (twice
    the official :math:`\rho_t`, ``utils_sisr.data_solution`` solves
    :math:`(A^\top A+\rho_t I)`); and for operators without a closed-form prox (its ``Blur``)
    it solves the step by 50 iterations of conjugate gradients from :math:`\hat x_0`, which
    stops early on the ill-conditioned early-time systems (where :math:`\rho_t \sim 10^{-6}`
    and the exact solution amplifies noise by up to :math:`1/(2\sqrt{\rho_t})`). We follow the
    official code: :math:`\rho_t` as above, solved exactly.

    Other choices of the reference kept: the ``quad`` time schedule, :math:`\hat x_0` clipped,
    :math:`\eta = 0`. Deviations: the start is :math:`\mathcal N(0, I)` at :math:`t = T`
    (Algorithm 1; the code adds :math:`\sqrt{\bar\alpha_T}\approx 0.006` times the
    upsampled measurement), and the last step returns its data-consistent
    :math:`\tilde x_0` (the code discards its last network evaluation and returns
    :math:`x_1`, which carries noise of standard deviation 0.01).

    *Tasks the paper lacks* (``benchmarks/restoration.py``; PSNR on validation images only:
    MNIST digits 9000-9007 and the two natural validation crops). SR×4: :math:`\zeta = 0.25`
    (``configs/sisr.yaml``) and :math:`\lambda = 0.5` from the code's sweep
    :math:`\lambda_{code} \in \{2, 4, 6, 8, 12\}`, i.e. ours 0.5 ... 3 (MNIST block
    15.23 / 15.11 / 15.02 / 14.90 / 14.66 dB, bicubic 17.99 / 17.65 / 17.37 / 17.16 /
    16.84 dB). Denoising (:math:`\sigma_y = 0.5`): :math:`\lambda = 0.5, \zeta = 1` (MNIST
    24.50 dB; :math:`\lambda` = 1 / 1.75: 24.49 / 23.86; :math:`\zeta = 0.3`: at most 23.29;
    natural 21.59 against 21.18 / 20.03, :math:`\zeta = 0.3` at most 19.62). Colorization:
    :math:`\lambda = 0.5, \zeta = 1` (natural 20.97 dB; 1 / 1.75: 20.95 / 20.87;
    :math:`\zeta = 0.3` at most 17.37). The inpainting configuration's :math:`\zeta = 1` is
    confirmed there too (26.53 dB against at most 23.31 with :math:`\zeta = 0.3`).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.diffpir(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=8,
    ...                               clip_x0=None, return_info=True)
    >>> x.shape, info["nfe"]
    ((8, 4), 100)
    """
    op = _operator(op, in_shape, svd=True)
    args = check_arguments(model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n,
                           steps=steps, lam=lam, zeta=zeta, clip_x0=clip_x0, progress=progress,
                           return_info=return_info, rules={"zeta": in_range(0.0, 1.0)})
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    if args["steps"] > model.process.T:
        raise ValueError(f"steps must be at most the model's {model.process.T} DDPM steps; "
                         f"received {steps}")
    prox = SVDProximal(op, y)
    times = quad_times(model.process.T, args["steps"])
    x_start = _x_init(x_init, y, prox.op, rng, n=n)
    return _run(_diffpir_loop, model, x_start, None,
                return_info=return_info, record_guidance=False,
                settings={"method": "diffpir", "lam": args["lam"], "zeta": args["zeta"],
                          "steps": len(times)},
                prox=prox, sigma_y=args["sigma_y"], lam=args["lam"], zeta=args["zeta"],
                times=times, clip=args["clip_x0"], rng=rng, progress=progress)
