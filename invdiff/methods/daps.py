r"""DAPS: decoupled annealing posterior sampling (Zhang et al., CVPR 2025).

At each level :math:`\sigma_k` of a decreasing annealing schedule: a few probability-flow
ODE steps map :math:`x_{\sigma_k}` to :math:`\hat x_0`; Langevin dynamics then samples
:math:`x_0` from :math:`\mathcal N(\hat x_0, \sigma_k^2 I) \times p(y \mid x_0)`; the
result is re-noised to the next level. The likelihood is the exact :math:`p(y \mid x_0)`
(Gaussian, or quantized through normal CDFs in log space), so DAPS needs neither a
pseudo-likelihood of :math:`x_t` nor a network gradient.
"""

from __future__ import annotations

import math

from ..processes import VE, predict
from ..samplers._common import progress_bar
from ._common import _as_rng, _operator, _run, _under, check_arguments
from ._fidelity import clean_likelihood

__all__ = ["daps"]

#: The authors' likelihood weight, written as a noise level: their pixel-space configs use
#: ``-||y - A x0||^2 / 0.01^2``, i.e. a Gaussian of standard deviation 0.01 / sqrt(2).
TAU_REFERENCE = 0.01 / math.sqrt(2.0)


def poly_sigmas(sigma_max: float, sigma_min: float, steps: int, rho: float = 7.0) -> list[float]:
    r"""``steps + 1`` levels :math:`(\sigma_{max}^{1/\rho} + \tfrac{i}{steps}(\sigma_{min}^{1/\rho}
    - \sigma_{max}^{1/\rho}))^\rho` (Karras et al. 2022; the reference's ``'poly-7'``)."""
    hi, lo = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    return [(hi + i / steps * (lo - hi)) ** rho for i in range(steps + 1)]


def _daps_loop(model, x_init, *, guidance=None, callback=None, likelihood, weight, levels,
               ode_steps, ode_sigma_min, langevin_steps, lr, lr_min_ratio, rng, progress):
    """Annealing levels ``levels[k]`` (then 0): ODE, Langevin, re-noise. No host sync."""
    x = x_init
    n_levels = len(levels)
    nxt = levels[1:] + [0.0]
    for k, (sigma, sigma_next) in enumerate(progress_bar(list(zip(levels, nxt, strict=True)),
                                                         progress, n_levels, "daps")):
        # 1. x0_hat: Euler on the probability-flow ODE dx/dsigma = eps_hat from sigma down to
        #    ode_sigma_min (VE: x = x0 + sigma eps)
        x0_hat = x
        ode = poly_sigmas(sigma, ode_sigma_min, ode_steps)
        for s, s_next in zip(ode[:-1], ode[1:], strict=True):
            x0_hat = x0_hat + (s_next - s) * predict(model, x0_hat, s, "eps")
        # 2. Langevin on N(x0_hat, sigma^2 I) x p(y | x0); the step decays linearly
        #    with the level to lr * lr_min_ratio (reference: ratio = k / (levels + 1))
        eta = lr * (1.0 + k / (n_levels + 1) * (lr_min_ratio - 1.0))
        noise_scale = math.sqrt(2.0 * eta)
        x0 = x0_hat
        for _ in range(langevin_steps):
            score = weight * likelihood.score(x0, 0.0) + (x0_hat - x0) / sigma**2
            x0 = x0 + eta * score + noise_scale * rng.normal(tuple(x0.shape), like=x0)
        # 3. forward diffusion to the next level (none after the last)
        x = x0 if sigma_next == 0.0 else x0 + sigma_next * rng.normal(tuple(x0.shape), like=x0)
        if callback is not None:
            callback(k, sigma_next, x, {"x0": x0_hat})
    return x


def daps(model, op, y, sigma_y, *, rng=None, x_init=None, n=None, in_shape=None,
         annealing_steps: int = 200, sigma_max: float = 100.0, sigma_min: float = 0.1,
         ode_steps: int = 5, ode_sigma_min: float = 0.01, langevin_steps: int = 100,
         lr: float = 1e-4, lr_min_ratio: float = 0.01, tau=TAU_REFERENCE, progress=False,
         return_info=False):
    r"""DAPS: decoupled annealing posterior sampling, linear-Gaussian or quantized.

    Parameters
    ----------
    model : ScoreModel
        Any process; re-expressed to a VE process (:math:`x = x_0 + \sigma\varepsilon`,
        time = :math:`\sigma`, EDM's parametrisation as in the reference) unless it is one.
    op : SVDOperator or array of shape (M, N)
        The forward operator ``A``; for quantized measurements a matrix or
        :class:`~invdiff.operators.DenseMatrix`.
    y : array, or (lower, upper)
        The measurement ``(*batch, *op.out_shape)`` of ``y = A x0 + n``; or the bin edges
        ``(lower, upper)`` (each ``(*batch, M)``, :meth:`invdiff.measurements.Quantizer.bins`)
        of ``y = Q(A x0 + n)``.
    sigma_y : float
        Standard deviation of ``n`` (added before quantization), ``> 0``.
    rng : invdiff.random.Generator or int, optional
    x_init : array, optional
        State at :math:`\sigma_{max}`; default :math:`\sigma_{max}\,\mathcal N(0, I)`.
    n : int, optional
        Samples per measurement (a leading batch axis).
    in_shape : tuple, optional
        Shape of the signal when a plain matrix ``op`` acts on its flattening.
    annealing_steps : int, default 200
        Annealing levels, ``poly-7`` from ``sigma_max`` = 100 to ``sigma_min`` = 0.1
        (reference ``configs/sampler/edm_daps.yaml``; DAPS-1K).
    ode_steps : int, default 5
        Euler steps of the probability-flow ODE per level, ``poly-7`` from the level down to
        ``ode_sigma_min`` = 0.01. Network evaluations: ``annealing_steps * ode_steps``.
    langevin_steps : int, default 100
        Langevin steps per level (reference pixel-space task configs).
    lr : float, default 1e-4
        Langevin step :math:`\eta_0`, decaying linearly over the levels to
        ``lr * lr_min_ratio`` (``lr_min_ratio`` = 0.01), as the reference.
    tau : float or None, default 0.01 / sqrt(2)
        Noise level the Langevin likelihood assumes, for Gaussian ``y`` only: its
        log-likelihood is :math:`-\|y - Ax_0\|^2/(2\tau^2)`. The default is the authors'
        (``tau: 0.01`` in every pixel-space task config, used in
        :math:`-\|y-Ax_0\|^2/\tau^2`), an absolute value tuned for [-1, 1] images with
        noise 0.05: a likelihood 50 times sharper than the data's. ``None`` uses
        ``sigma_y``, the exact likelihood; the default ``lr`` then barely moves
        :math:`x_0` (Notes), so raise it too (the tests use 3e-3, constant). Quantized
        measurements always use their exact likelihood.
    progress, return_info : bool
        As in :func:`invdiff.methods.dmps`; ``info`` holds ``nfe`` and ``seconds``.

    Returns
    -------
    array, or (array, dict) with ``return_info``

    Notes
    -----
    Zhang, Chu, Berner, Meng, Anandkumar, Song, "Improving Diffusion Inverse Problem Solving
    with Decoupled Noise Annealing" (CVPR 2025), Algorithm 1, as in the authors' code
    (``zhangbingliang2019/DAPS``: ``sampler.py``, ``cores/mcmc.py``,
    ``cores/scheduler.py``). In our notation, with the model under VE
    (:math:`a = 1`, :math:`b = \sigma`), for each level :math:`\sigma_k`:

    .. math::

        \hat x_0 &= \mathrm{ODE}_{\sigma_k \to \sigma_{min}}(x_{\sigma_k}), \qquad
            x \leftarrow x + (\sigma_{j+1} - \sigma_j)\,\hat\varepsilon(x, \sigma_j), \\
        x_0 &\leftarrow x_0 + \eta_k\Big[\nabla_{x_0}\log p(y \mid x_0)
            + \frac{\hat x_0 - x_0}{\sigma_k^2}\Big] + \sqrt{2\eta_k}\,\xi
            \quad (\text{K steps from } x_0 = \hat x_0), \\
        x_{\sigma_{k+1}} &= x_0 + \sigma_{k+1} z .

    For any other process the same chain reads :math:`x_t = a_t x_0 + b_t z` with
    :math:`\sigma = b_t/a_t`; :math:`r_t = \sigma_t` is the reference's ("gaussian" prior
    solver) width of :math:`p(x_0 \mid x_t)`. The likelihood gradient is exact:
    :math:`A^\top(y - Ax_0)/\sigma_y^2` through the SVD, or for bins
    :math:`[l_m, u_m)`, :math:`A^\top g` with :math:`g_m = \mathbb E[\,n_m \mid l_m \le
    a_m^\top x_0 + n_m < u_m]/\sigma_y^2`, the truncated-normal mean
    (:func:`invdiff.special.truncnorm_mean`, finite in the tails): the QCS-SGM likelihood
    at :math:`b_t = 0`, where its diagonal approximation is exact for any ``A``.

    *The likelihood weight.* A Langevin step moves :math:`x_0` along a direction of
    curvature :math:`h` by a fraction :math:`\approx\eta h` per step. With the exact Gaussian
    likelihood, :math:`h = s_i^2/\sigma_y^2`: at :math:`\sigma_y = 0.05` and
    :math:`\eta = 10^{-4}` that is 4 % per step, decaying with :math:`\eta` to 0.04 %, so the
    data hardly enter (on MNIST SR×4 validation digits: 10.6 dB, an unconditional sample, vs
    19.0 dB with the reference's ``tau``). The reference's sharp ``tau`` makes
    :math:`\eta h` about 2 at :math:`s_i = 1`, the stability edge of the Langevin step.

    *Tasks the paper lacks* (``benchmarks/restoration.py``; PSNR on validation images only:
    MNIST digits 9000-9007, the two natural validation crops). Denoising at
    :math:`\sigma_y = 0.5`: ``tau = 0.05`` (MNIST 23.32 dB; the default 0.0071: 14.92, 0.02:
    16.87, 0.1: 23.33, exact 0.5: 9.88; natural 19.91, default 13.55, 0.1: 19.77).
    Colorization: the default (natural 20.13 dB; 0.05: 18.03, 0.1: 14.12).

    Deviations from the reference: the reference's early return of zeros when a Langevin
    iterate holds a NaN (a host synchronisation per step) is not copied. The step decay
    uses the reference's ratio ``k / (annealing_steps + 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.daps(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=8,
    ...                            annealing_steps=20, langevin_steps=10, return_info=True)
    >>> x.shape, info["nfe"]
    ((8, 4), 100)

    Quantized (1-bit) measurements, as bin edges:

    >>> A = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    >>> lower, upper = np.array([0.0, -np.inf]), np.array([np.inf, 0.0])
    >>> ivd.methods.daps(prior, A, (lower, upper), 0.1, rng=0, n=3, annealing_steps=10,
    ...                  langevin_steps=5).shape
    (3, 4)
    """
    quantized = isinstance(y, (tuple, list))
    if quantized and len(y) != 2:
        raise ValueError("y must be a measurement array or a pair (lower, upper) of bin "
                         f"edges; received a sequence of length {len(y)}")
    if quantized and tau not in (None, TAU_REFERENCE):
        raise ValueError("tau applies to Gaussian measurements only (quantized ones use their "
                         f"exact likelihood); received bins (lower, upper) with tau={tau!r}")
    named = {"lower": y[0], "upper": y[1]} if quantized else {"y": y}
    if not quantized:
        op = _operator(op, in_shape, svd=True)
    args = check_arguments(model=model, op=op, sigma_y=sigma_y, x_init=x_init, n=n,
                           in_shape=in_shape, annealing_steps=annealing_steps,
                           sigma_max=sigma_max, sigma_min=sigma_min, ode_steps=ode_steps,
                           ode_sigma_min=ode_sigma_min, langevin_steps=langevin_steps, lr=lr,
                           lr_min_ratio=lr_min_ratio, tau=None if quantized else tau,
                           progress=progress, return_info=return_info, **named)
    sigma_y = args["sigma_y"]
    tau = sigma_y if (quantized or tau is None) else args["tau"]
    sigma_max, sigma_min, ode_sigma_min = (args[k] for k in ("sigma_max", "sigma_min",
                                                             "ode_sigma_min"))
    if not ode_sigma_min < sigma_min < sigma_max:
        raise ValueError("need ode_sigma_min < sigma_min < sigma_max; received "
                         f"ode_sigma_min={ode_sigma_min}, sigma_min={sigma_min}, "
                         f"sigma_max={sigma_max}")
    annealing_steps, ode_steps, langevin_steps = (args[k] for k in (
        "annealing_steps", "ode_steps", "langevin_steps"))
    lr, lr_min_ratio = args["lr"], args["lr_min_ratio"]
    likelihood, shape, batch = clean_likelihood(op, y, sigma_y,
                                                in_shape=in_shape if quantized else None)
    rng = _as_rng(rng)
    model = _under(model, VE, lambda: VE(sigma_max, ode_sigma_min))
    # the reference's annealing levels: poly-7 from sigma_max, the last (sigma_min) dropped
    levels = poly_sigmas(sigma_max, sigma_min, annealing_steps)[:-1]
    like = y[0] if quantized else y
    if x_init is None:
        lead = batch if n is None else (int(n),) + batch
        x_init = sigma_max * rng.normal(lead + shape, like=like)
    return _run(_daps_loop, model, x_init, None, return_info=return_info,
                record_guidance=False,
                settings={"method": "daps", "annealing_steps": annealing_steps,
                          "ode_steps": ode_steps, "langevin_steps": langevin_steps,
                          "lr": lr, "tau": tau, "quantized": quantized},
                likelihood=likelihood, weight=(sigma_y / tau) ** 2, levels=levels,
                ode_steps=ode_steps, ode_sigma_min=ode_sigma_min,
                langevin_steps=langevin_steps, lr=lr, lr_min_ratio=lr_min_ratio, rng=rng,
                progress=progress)
