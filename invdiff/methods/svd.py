r"""SVD-native recipes: DDRM, DDNM(+) and MCGdiff work in the spectral coordinates of ``A``.

With the thin SVD :math:`A = U\,\mathrm{diag}(s)\,V^\top` (``rank`` singular values
:math:`s_i > 0`), a noisy measurement :math:`y = A x_0 + n`, :math:`n \sim \mathcal N(0,
\sigma_y^2 I)`, is ``rank`` independent scalar measurements

.. math:: \bar y_i = (U^\top y)_i / s_i = \bar x_{0,i} + (\sigma_y / s_i)\, n_i,
          \qquad \bar x = V^\top x,

and says nothing about the null-space part :math:`x_\perp = x - V V^\top x`. The three
recipes below replace the spectral coordinates of each DDPM/DDIM step by a rule that mixes
Tweedie's :math:`\hat x_0` with :math:`\bar y`; the null-space part follows the unconditional
step. No network gradient is needed.

Our operators carry a *thin* SVD (zero singular values are dropped, see
:class:`invdiff.operators.SVDOperator`). The authors' codes pad :math:`\bar x` to the full
dimension and mark the zero singular values; here the null space is handled in pixel space
as :math:`x - V V^\top x`, which is the same update because it is the same for every
null-space coordinate (rotation invariant).
"""

from __future__ import annotations

import math

from .._array_api import device_of, namespace
from ..processes import VP, predict
from ..samplers._common import check_steps, progress_bar, vp_times
from ._common import (
    _as_rng,
    _in_shape,
    _operator,
    _out_ndim,
    _run,
    _under,
    _x_init,
    check_arguments,
    nonnegative,
)

__all__ = ["ddrm", "ddnm", "mcgdiff"]

_SVD_METHODS = ("Vt", "V", "Ut", "U")
#: sigma_y = 0 is the noiseless case these methods treat exactly (RULES require > 0)
_RULES = {"sigma_y": nonnegative}


# -- shared pieces ---------------------------------------------------------------------------
def _svd_operator(method: str, op, in_shape):
    """``op`` (a plain matrix becomes a DenseMatrix) if it exposes an SVD, else a
    ``TypeError`` naming what ``method`` needs."""
    op = _operator(op, in_shape, svd=True)
    missing = [m for m in _SVD_METHODS if not callable(getattr(op, m, None))]
    if not (callable(getattr(op, "singulars_like", None)) or hasattr(op, "singulars")):
        missing.append("singulars")
    if missing:
        raise TypeError(
            f"{method} works in the spectral coordinates of A and needs an operator with an "
            f"SVD (an invdiff.operators.SVDOperator: Vt, V, Ut, U, singulars); received "
            f"{type(op).__name__}, which lacks {', '.join(missing)}. A plain (M, N) matrix "
            f"is decomposed for you; for an operator without an SVD use invdiff.methods.dps")
    return op


def _spectral_y(op, y):
    """``(xp, s, ybar)``: singular values and :math:`\\bar y = U^\\top y / s`."""
    s = op.singulars_like(y) if callable(getattr(op, "singulars_like", None)) else op.singulars
    return namespace(y=y), s, op.Ut(y) / s


def _split(op, x):
    """Spectral coordinates :math:`V^\\top x` and the null-space part :math:`x - V V^\\top x`."""
    xb = op.Vt(x)
    return xb, x - op.V(xb)


def _eps_x0(model, x, k: int, clip_x0):
    """Noise prediction and Tweedie's :math:`\\hat x_0` at DDPM step ``k`` (clip: eps follows)."""
    xp = namespace(x=x)
    ab = model.process.alpha_bar(k)
    a, b = math.sqrt(ab), math.sqrt(1.0 - ab)
    eps = predict(model, x, float(k), "eps")
    x0 = (x - b * eps) / a
    if clip_x0 is not None:
        x0 = xp.clip(x0, clip_x0[0], clip_x0[1])
        eps = (x - a * x0) / b
    return eps, x0


def _skip_times(process, steps: int) -> list[int]:
    """DDPM steps ``T//steps`` apart from 1, descending, then 0.

    The DDRM and DDNM codes visit the 0-indexed steps ``range(0, T, T // steps)`` and step
    to "-1" (clean data) last; in our 1-indexed steps that is ``1 + i * (T // steps)``, then 0.
    """
    steps = check_steps("steps", steps, upper=process.T)
    skip = process.T // steps
    return [1 + i * skip for i in range(steps)][::-1] + [0]


def _sigma_ve(process, k: int) -> float:
    """:math:`b_t / a_t`, the noise level of :math:`x_t / a_t` (0 at clean data)."""
    if k == 0:
        return 0.0
    ab = process.alpha_bar(k)
    return math.sqrt((1.0 - ab) / ab)


# -- DDRM --------------------------------------------------------------------------------------
def _ddrm_spectral(xp, op, x0, eps, ybar, s, sigma_next, sigma_y, eta, eta_b, z):
    r"""DDRM's update of :math:`\tilde x = x / a` from :math:`\hat x_0`, in spectral coordinates.

    Returns :math:`\tilde x_{t'}` (before the multiplication by :math:`a_{t'}`).
    """
    x0b, x0p = _split(op, x0)
    epsb, epsp = _split(op, eps)
    zb, zp = _split(op, z)
    c = math.sqrt(1.0 - eta**2)
    sig = sigma_next
    # unobserved: the DDIM step (Kawar et al., Eq. 7, first case)
    perp = x0p + (c * sig) * epsp + (eta * sig) * zp
    out = x0b + (c * sig) * epsb + (eta * sig) * zb
    s_sig = s * sig
    if sigma_y > 0:  # "less noisy than y" exists only when y is noisy
        after = x0b + (c * sig / sigma_y) * s * (ybar - x0b) + (eta * sig) * zb
        out = xp.where(s_sig < sigma_y, after, out)
        std = xp.sqrt(xp.clip(sig**2 - (eta_b * sigma_y / s) ** 2, 0.0, None))
    else:
        std = xp.full_like(s, sig)
    before = eta_b * ybar + (1.0 - eta_b) * x0b + std * zb
    out = xp.where(s_sig > sigma_y, before, out)
    return op.V(out) + perp


def _ddrm_start(xp, op, z, ybar, s, sigma_T, sigma_y):
    r""":math:`\tilde x_T` from the paper's :math:`p(\tilde x_T \mid y)` (Eq. 7 at :math:`T`)."""
    zb, zp = _split(op, z)
    large = s * sigma_T > sigma_y
    std = xp.sqrt(xp.clip(sigma_T**2 - (sigma_y / s) ** 2, 0.0, None))
    xb = xp.where(large, ybar + std * zb, sigma_T * zb)
    return op.V(xb) + sigma_T * zp


def _travel(proc, x, k: int, j: int, rng):
    """Time travel back from step ``k`` to ``j > k``: forward diffusion :math:`q(x_j \\mid x_k)`
    (DDNM, Alg. 2)."""
    ratio = proc.alpha_bar(j) / proc.alpha_bar(k)
    return math.sqrt(ratio) * x + math.sqrt(1.0 - ratio) * rng.normal(x.shape, like=x)


def _spectral_sampler(model, x_init, *, guidance=None, callback=None, op, ybar, s, sigma_y, eta,
                      eta_b, times, ddrm_start, clip_x0, rng, progress):
    """DDRM's loop over ``times`` (DDNM+ is the same update with ``eta_b = 1``).

    ``ddrm_start``: build the first state from ``x_init`` (standard normal) and y as DDRM
    does; otherwise ``x_init`` is the first state (DDNM+ starts from pure noise).
    """
    xp = namespace(x_init=x_init)
    proc = model.process
    pairs = list(zip(times[:-1], times[1:], strict=True))
    x = x_init
    if ddrm_start:
        k0 = times[0]
        x = math.sqrt(proc.alpha_bar(k0)) * _ddrm_start(xp, op, x_init, ybar, s,
                                                          _sigma_ve(proc, k0), sigma_y)
    for i, (k, j) in enumerate(progress_bar(pairs, progress, len(pairs), "svd")):
        if j > k:
            x = _travel(proc, x, k, j, rng)
            continue
        eps, x0 = _eps_x0(model, x, k, clip_x0)
        z = rng.normal(x.shape, like=x)
        x_ve = _ddrm_spectral(xp, op, x0, eps, ybar, s, _sigma_ve(proc, j), sigma_y, eta,
                              eta_b, z)
        x = math.sqrt(proc.alpha_bar(j)) * x_ve
        if callback is not None:
            callback(i, float(j), x, {"x0": x0, "guidance_norm": None})
    return x


def ddrm(model, op, y, sigma_y, *, eta: float = 0.85, eta_b: float = 1.0, steps: int = 20,
         rng=None, x_init=None, n=None, clip_x0=None, progress=False, return_info=False,
         in_shape=None):
    r"""DDRM: denoising diffusion restoration models (Kawar, Elad, Ermon & Song, NeurIPS 2022).

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model.
    op : SVDOperator or array of shape (M, N)
        The forward operator with its SVD (``Vt``, ``V``, ``Ut``, ``U``, ``singulars``), or
        a plain matrix (decomposed once); an operator without an SVD is refused with a
        ``TypeError``.
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Noise standard deviation (``>= 0``; 0 is the noiseless case).
    eta : float, default 0.85
        :math:`\eta` (the code's ``etaA = etaC``): the fraction of fresh noise in the
        unobserved and "less noisy than y" coordinates. Paper and ``main.py``: 0.85.
    eta_b : float, default 1.0
        :math:`\eta_b`: how much of :math:`\bar y` enters the "noisier than y" coordinates.
        Paper and ``main.py``: 1.
    steps : int, default 20
        Network evaluations, at DDPM steps ``T // steps`` apart (the paper's 20 steps:
        ``runners/diffusion.py`` visits ``range(0, T, T // steps)``).
    rng : invdiff.random.Generator or int, optional
    x_init : array, optional
        A standard normal draw ``(*n, *batch, *op.in_shape)``; the start state is built from
        it and :math:`\bar y` as in the paper. Default: drawn from ``rng``.
    n : int, optional
        Posterior samples per measurement (a leading batch axis).
    clip_x0 : (float, float) or None, default None
        Clip :math:`\hat x_0` (the reference code does not).
    progress, return_info : bool
        See :mod:`invdiff.methods`.
    in_shape : tuple of int, optional
        Shape of the signal when ``op`` acts on its flattening (see :func:`dmps`).

    Returns
    -------
    array, or (array, dict) with ``return_info``
        Samples ``(*n, *batch, *op.in_shape)``; ``info`` has ``"nfe"`` and ``"seconds"``.

    Notes
    -----
    Work with :math:`\tilde x_t = x_t / a_t = x_0 + \sigma_t \varepsilon`,
    :math:`\sigma_t = b_t / a_t`, in the coordinates :math:`\bar x = V^\top \tilde x` with
    :math:`\bar y = U^\top y / s`. One step from :math:`t` to :math:`t'` with Tweedie's
    :math:`\hat x_0` and :math:`\hat\varepsilon` (the paper's Eq. 7 for :math:`\eta_b`,
    :math:`\eta`; ``functions/denoising.py``, ``efficient_generalized_steps``):

    * :math:`s_i = 0` (null space): :math:`\bar x_i' = \hat{\bar x}_{0,i} +
      \sqrt{1-\eta^2}\,\sigma_{t'}\hat{\bar\varepsilon}_i + \eta\sigma_{t'} z_i`;
    * :math:`s_i\sigma_{t'} < \sigma_y`: :math:`\bar x_i' = \hat{\bar x}_{0,i} +
      \sqrt{1-\eta^2}\,\sigma_{t'}\, s_i (\bar y_i - \hat{\bar x}_{0,i})/\sigma_y +
      \eta\sigma_{t'} z_i`;
    * :math:`s_i\sigma_{t'} > \sigma_y`: :math:`\bar x_i' = \eta_b \bar y_i +
      (1-\eta_b)\hat{\bar x}_{0,i} + \sqrt{\sigma_{t'}^2 - \eta_b^2\sigma_y^2/s_i^2}\, z_i`;

    then :math:`x_{t'} = a_{t'} V \bar x'`. The start is :math:`\bar x_T = \bar y +
    \sqrt{\sigma_T^2 - \sigma_y^2/s_i^2}\, z` where :math:`s_i \sigma_T > \sigma_y` and
    :math:`\sigma_T z` elsewhere. At the last step :math:`\sigma_{t'} = 0` and the output is
    :math:`\hat x_0`.

    Differences from the authors' code, all deliberate:

    * Thin SVD (see the module notes): the zero singular values their ``Deblurring``
      operator keeps (below 3e-2, set to 0) fall into the ``s * sigma < sigma_0`` branch there
      and get fresh noise from :math:`U^\top y` instead of the DDIM noise :math:`\hat
      \varepsilon`; here they are null space, as the paper intends.
    * Their ``Deblurring`` and ``Deblurring2D`` operators return ``singulars()`` tiled per
      channel (``repeat(1, 3)``: all red values, then all green, then all blue) while their
      ``Vt`` puts the channel innermost (pixel-major), so on colour images singular value
      :math:`k` is paired with the wrong coordinate (``SRConv`` uses ``repeat_interleave``,
      which is right). Our operators return singular values in the order of ``Vt``.
    * The start is :math:`x_T = a_T \tilde x_T`; the code divides :math:`\tilde x_T` by
      :math:`\sigma_T` instead, i.e. scales by :math:`a_T / b_T` (0.99994 at their first step).
    * For ``steps`` that do not divide ``T`` the code visits ``range(0, T, T // steps)`` (a
      few more steps); we take exactly ``steps``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.ddrm(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=8,
    ...                            return_info=True)
    >>> x.shape, info["nfe"]
    ((8, 4), 20)
    """
    op = _svd_operator("ddrm", op, in_shape)
    check_arguments(rules=_RULES, model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n,
                    steps=steps, eta=eta, eta_b=eta_b, clip_x0=clip_x0, progress=progress,
                    return_info=return_info)
    rng = _as_rng(rng)
    xp, s, ybar = _spectral_y(op, y)
    model = _under(model, VP, VP.linear)
    times = _skip_times(model.process, steps)
    return _run(_spectral_sampler, model, _x_init(x_init, y, op, rng, n=n), None,
                return_info=return_info, record_guidance=False,
                settings={"method": "ddrm", "eta": eta, "eta_b": eta_b, "steps": steps},
                op=op, ybar=ybar, s=s, sigma_y=sigma_y, eta=eta, eta_b=eta_b, times=times,
                ddrm_start=True, clip_x0=clip_x0, rng=rng, progress=progress)


# -- DDNM --------------------------------------------------------------------------------------
def _jump_schedule(n: int, length: int, repeat: int) -> list[int]:
    """RePaint's time-travel schedule on ``n`` respaced steps (DDNM's ``get_schedule_jump``):
    descending from ``n - 1`` to ``-1``, jumping back ``length`` steps ``repeat - 1`` times
    at every ``length``-th step."""
    jumps = {j: repeat - 1 for j in range(0, n - length, length)}
    t, ts = n, []
    while t >= 1:
        t -= 1
        ts.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(length):
                t += 1
                ts.append(t)
    ts.append(-1)
    return ts


def _ddnm_sampler(model, x_init, *, guidance=None, callback=None, op, ybar, eta, times,
                  clip_x0, rng, progress):
    """Noiseless DDNM: :math:`\\hat x_0 \\leftarrow \\hat x_0 - A^+(A\\hat x_0 - y)`, then DDIM."""
    proc = model.process
    pairs = list(zip(times[:-1], times[1:], strict=True))
    x = x_init
    c = math.sqrt(1.0 - eta**2)
    for i, (k, j) in enumerate(progress_bar(pairs, progress, len(pairs), "ddnm")):
        ab_j = proc.alpha_bar(j)
        if j > k:
            x = _travel(proc, x, k, j, rng)
            continue
        eps, x0 = _eps_x0(model, x, k, clip_x0)
        x0 = x0 - op.V(op.Vt(x0) - ybar)  # range-null decomposition (Eq. 13)
        b_j = math.sqrt(1.0 - ab_j)
        x = math.sqrt(ab_j) * x0 + (b_j * eta) * rng.normal(x.shape, like=x) + (b_j * c) * eps
        if callback is not None:
            callback(i, float(j), x, {"x0": x0, "guidance_norm": None})
    return x


def ddnm(model, op, y, sigma_y, *, eta: float = 0.85, steps: int = 100, travel_length: int = 1,
         travel_repeat: int = 1, rng=None, x_init=None, n=None, clip_x0=None, progress=False,
         return_info=False, in_shape=None):
    r"""DDNM and DDNM+: denoising diffusion null-space model (Wang, Yu & Zhang, ICLR 2023).

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model.
    op : SVDOperator or array of shape (M, N)
        The forward operator with its SVD, or a plain matrix; an operator without an SVD is
        refused (``TypeError``).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    sigma_y : float
        Noise standard deviation: 0 runs DDNM (Alg. 1), > 0 DDNM+ with the SVD-based
        :math:`\Sigma_t` scaling (Sec. 3.3 and App. I), as the authors' ``main.py`` does.
    eta : float, default 0.85
        DDIM's :math:`\eta` (README and ``main.py``: 0.85).
    steps : int, default 100
        Respaced DDPM steps, ``T // steps`` apart (configs: ``T_sampling: 100``).
    travel_length, travel_repeat : int, default 1, 1
        Time travel (Sec. 3.3, RePaint's schedule ``get_schedule_jump``): every
        ``travel_length`` steps go back ``travel_length`` steps, ``travel_repeat - 1`` times.
        The configs use 1, 1, i.e. no time travel; ``oldphoto.yml`` uses 2, 2 and the
        high-resolution demo 10, 3. Each repeat costs ``travel_length`` more evaluations.
    rng, x_init, n, clip_x0, progress, return_info, in_shape
        As in :func:`ddrm`; ``x_init`` is the state at the first step (standard normal).

    Returns
    -------
    array, or (array, dict) with ``return_info``

    Notes
    -----
    With Tweedie's :math:`\hat x_0` at step :math:`t` and the next step :math:`t'`:

    **DDNM** (:math:`\sigma_y = 0`, ``functions/svd_ddnm.py``, ``ddnm_diffusion``): keep the
    range-space part of :math:`y`, :math:`\hat x_0 \leftarrow \hat x_0 - A^+(A\hat x_0 - y)`
    (in spectral coordinates :math:`\hat{\bar x}_{0,i} \leftarrow \bar y_i`), then the DDIM
    step :math:`x_{t'} = a_{t'}\hat x_0 + b_{t'}(\eta z + \sqrt{1-\eta^2}\,\hat\varepsilon)`.

    **DDNM+** (:math:`\sigma_y > 0`, ``ddnm_plus_diffusion`` with the operators' ``Lambda``
    and ``Lambda_noise``): :math:`\hat x_0 \leftarrow \hat x_0 - \Sigma_{t'} A^+(A\hat x_0 -
    y)` with :math:`\Sigma_{t'} = V\mathrm{diag}(\lambda_i)V^\top` and the noise replaced per
    coordinate,

    .. math::

        \lambda_i = \begin{cases} 1 & b_{t'} \ge a_{t'}\sigma_y/s_i \\
          \sqrt{1-\eta^2}\, s_i b_{t'} / (a_{t'}\sigma_y) & \text{otherwise} \end{cases},
        \qquad
        x_{t',i} = a_{t'}\hat{\bar x}_{0,i} + \begin{cases}
          \sqrt{b_{t'}^2 - a_{t'}^2\sigma_y^2/s_i^2}\; z_i & b_{t'} > a_{t'}\sigma_y/s_i \\
          \eta\, b_{t'} z_i & \text{otherwise} \end{cases}

    and the DDIM step in the null space. This is exactly DDRM's update
    (:func:`ddrm`) with :math:`\eta_b = 1` written in :math:`x_t` instead of
    :math:`x_t/a_t`, and it is computed by the same code; only the time grid differs.

    Differences from the authors' code: their ``SuperResolution.Lambda_noise`` scales the
    pixel-space patches of :math:`\hat\varepsilon` without rotating them by :math:`V^\top`
    first (the inpainting and colorization versions do rotate); we use
    :math:`V^\top\hat\varepsilon` everywhere. Time travel follows the paper's Alg. 2,
    :math:`x_{t+l} \sim q(x_{t+l}\mid x_t)`; their code instead re-noises the last
    (unprojected) :math:`\hat x_0` to level :math:`t+l`.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.ddnm(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=8,
    ...                            steps=50, return_info=True)
    >>> x.shape, info["nfe"]
    ((8, 4), 50)
    """
    op = _svd_operator("ddnm", op, in_shape)
    check_arguments(rules=_RULES, model=model, op=op, y=y, sigma_y=sigma_y, x_init=x_init, n=n,
                    steps=steps, eta=eta, travel_length=travel_length,
                    travel_repeat=travel_repeat, clip_x0=clip_x0, progress=progress,
                    return_info=return_info)
    rng = _as_rng(rng)
    xp, s, ybar = _spectral_y(op, y)
    model = _under(model, VP, VP.linear)
    proc = model.process
    steps = check_steps("steps", steps, upper=proc.T)
    travel_length = check_steps("travel_length", travel_length, upper=steps)
    skip = proc.T // steps
    times = [0 if i < 0 else 1 + i * skip
             for i in _jump_schedule(steps, travel_length, travel_repeat)]
    settings = {"method": "ddnm+" if sigma_y > 0 else "ddnm", "eta": eta, "steps": steps,
                "travel_length": travel_length, "travel_repeat": travel_repeat}
    x_init = _x_init(x_init, y, op, rng, n=n)
    common = dict(return_info=return_info, record_guidance=False, settings=settings,
                  clip_x0=clip_x0, rng=rng, progress=progress)
    if sigma_y == 0:
        return _run(_ddnm_sampler, model, x_init, None, op=op, ybar=ybar, eta=eta,
                    times=times, **common)
    # DDNM+ starts from pure noise (ddnm_plus_diffusion), not from DDRM's y-informed start
    return _run(_spectral_sampler, model, x_init, None, op=op, ybar=ybar, s=s, sigma_y=sigma_y,
                eta=eta, eta_b=1.0, times=times, ddrm_start=False, **common)


# -- MCGdiff -----------------------------------------------------------------------------------
def _log_normal(x, mean, var):
    """Unnormalised Gaussian log density (the normalising constants are the same for every
    particle, so they cancel in the weights)."""
    return -0.5 * (x - mean) ** 2 / var


def _softmax0(xp, log_w):
    w = xp.exp(log_w - xp.max(log_w, axis=0, keepdims=True))
    return w / xp.sum(w, axis=0, keepdims=True)


def _systematic(xp, w, n: int, rng):
    """Systematic resampling: ``n`` ancestor indices per column of the weights ``(P, B)``.

    One uniform per column, ``u_j = (U + j) / n``, and the inverse of the weights' cumulative
    sum (Kitagawa 1996; lower variance than the multinomial draw of the reference code).
    """
    P, B = w.shape
    cdf = xp.cumulative_sum(xp.matrix_transpose(w), axis=1)  # (B, P): rows are contiguous
    cdf = cdf / cdf[:, -1:]
    grid = xp.arange(n, dtype=w.dtype, device=device_of(w))
    u = (rng.uniform((B, 1), like=w) + grid) / n
    rows = [xp.searchsorted(cdf[b, :], u[b, :], side="right") for b in range(B)]
    return xp.clip(xp.stack(rows, axis=1), 0, P - 1)  # (n, B)


def _gather(xp, x, idx):
    """``x[idx[j, b], b]`` for particles ``x`` of shape ``(P, B, ...)`` and ``idx`` ``(n, B)``."""
    P, B = x.shape[0], x.shape[1]
    flat = xp.reshape(x, (P * B,) + tuple(x.shape[2:]))
    cols = xp.arange(B, dtype=idx.dtype, device=device_of(idx))
    picked = xp.take(flat, xp.reshape(idx * B + cols, (-1,)), axis=0)
    return xp.reshape(picked, (idx.shape[0], B) + tuple(x.shape[2:]))


def _mcgdiff_sampler(model, x_init, *, guidance=None, callback=None, op, ybar, s, sigma_y,
                     steps, eta, kappa, clip_x0, rng, progress, diagnostics):
    r"""The particle filter on particles ``x_init`` of shape ``(P, B, *in_shape)``; returns
    the particles at :math:`t = 0` and their final log weights ``(P, B)``."""
    xp = namespace(x_init=x_init)
    proc = model.process
    pairs = vp_times(proc, steps)  # (t_k, t_{k-1}) for k = K..1, t_0 = 0
    K = len(pairs)
    t_of = [0] + [k for k, _ in pairs][::-1]  # t_of[k], ascending
    ab = [proc.alpha_bar(t) for t in t_of]
    dtype, device = x_init.dtype, device_of(x_init)
    ab_dev = xp.asarray(ab, dtype=dtype, device=device)
    P = x_init.shape[0]

    # tau_i: the grid step whose noise level matches sigma_y / s_i (reference:
    # utils.get_taus_from_singular_values); sigma_y = 0 gives tau_i = 0 for every i.
    dist = xp.abs(sigma_y**2 * ab_dev[:, None] - (1.0 - ab_dev[:, None]) * s[None, :] ** 2)
    k_tau = xp.argmin(dist, axis=0)  # (r,), first minimum
    ab_tau = xp.take(ab_dev, k_tau)
    y_tau = xp.sqrt(ab_tau) * ybar  # the observation seen as a noiseless x_bar at tau_i

    def potential(k):
        """Mask, mean factor and variance of the potential g_k (active where tau_i <= t_k)."""
        ratio = xp.clip(ab[k] / ab_tau, None, 1.0)
        active = xp.astype(k_tau <= k, dtype)
        return active, xp.sqrt(ratio), 1.0 - (1.0 - kappa) * ratio

    # x_T from N(0, I) g_K (a product of Gaussians per coordinate; all active at t_K)
    _, c, v = potential(K)
    zb = op.Vt(x_init)
    xb = c * y_tau / (1.0 + v) + xp.sqrt(v / (1.0 + v)) * zb
    x = x_init + op.V(xb - zb)
    ess = []
    for i, (t, t_prev) in enumerate(progress_bar(pairs, progress, K, "mcgdiff")):
        k = K - i
        eps, x0 = _eps_x0(model, x, t, clip_x0)
        sig = eta * math.sqrt((1.0 - ab[k - 1]) / (1.0 - ab[k]) * (1.0 - ab[k] / ab[k - 1]))
        mean = math.sqrt(ab[k - 1]) * x0 + math.sqrt(max(1.0 - ab[k - 1] - sig**2, 0.0)) * eps
        mb = op.Vt(mean)
        _, c, v = potential(k)
        act_p, c_p, v_p = potential(k - 1)
        # auxiliary weights: int g_{k-1}(x') p(x' | x_k) dx' / g_k(x_k); a coordinate leaving
        # the active set keeps its potential as a factor of the path target (see Notes)
        log_w = xp.sum(act_p * (_log_normal(mb, c_p * y_tau, sig**2 + v_p)
                                - _log_normal(xb, c * y_tau, v)), axis=-1)
        w = _softmax0(xp, xp.reshape(log_w, (P, -1)))
        ess.append(1.0 / xp.sum(w * w, axis=0))
        idx = _systematic(xp, w, P, rng)
        shape = (P, w.shape[1])
        m = xp.reshape(_gather(xp, xp.reshape(mean, shape + tuple(mean.shape[mb.ndim - 1:])),
                               idx), mean.shape)
        mb = xp.reshape(_gather(xp, xp.reshape(mb, shape + (mb.shape[-1],)), idx), mb.shape)
        # the optimal proposal: the DDIM kernel times g_{k-1}, coordinate by coordinate
        z = rng.normal(x.shape, like=x)
        zb = op.Vt(z)
        free = mb + sig * zb
        gain = sig**2 / (sig**2 + v_p)
        xb = xp.where(act_p > 0, gain * c_p * y_tau + (1.0 - gain) * mb
                      + xp.sqrt(v_p * gain) * zb, free)
        x = m + sig * z + op.V(xb - free)
        if callback is not None:
            callback(i, float(t_prev), x, {"x0": x0, "guidance_norm": None})
    if sigma_y > 0:
        # the path target observes x_bar_{tau_i} = y_tau exactly (up to kappa); the grid
        # matches sigma_y / s_i only approximately, so reweight to the true likelihood
        log_w = xp.sum(_log_normal(s * xb, s * ybar, sigma_y**2)
                       - _log_normal(y_tau, xp.sqrt(ab_tau) * xb, 1.0 - ab_tau + kappa), axis=-1)
    else:
        log_w = xp.zeros(xb.shape[:-1], dtype=dtype, device=device)
    diagnostics["ess"] = ess
    return x, log_w


def mcgdiff(model, op, y, sigma_y, *, n_particles: int = 64, steps: int = 100, eta: float = 1.0,
            kappa: float = 1e-4, rng=None, n=None, clip_x0=None, progress=False,
            return_info=False, in_shape=None):
    r"""MCGdiff: Monte Carlo guided diffusion (Cardoso, Janati, Le Corff & Moulines, ICLR 2024).

    A particle filter over the DDIM chain whose proposal and weights come from the SVD of
    ``A``. Unlike the methods that approximate the likelihood, its error is Monte-Carlo
    error, which falls as the particles grow, plus the discretization of the chain, which
    falls as the steps grow (asymptotically exact; see Notes).

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model.
    op : SVDOperator or array of shape (M, N)
        The forward operator with its SVD, or a plain matrix; an operator without an SVD is
        refused (``TypeError``).
    y : array
        Measurement ``(*batch, *op.out_shape)``; one particle system per measurement.
    sigma_y : float
        Noise standard deviation (``>= 0``).
    n_particles : int, default 64
        Particles per measurement (``scripts/configs/mcg_diff/default.yaml``: 64). Memory and
        time grow linearly: every step evaluates the network on ``n_particles * batch``
        images at once.
    steps : int, default 100
        DDIM steps (``configs/diffusion/ddim_100.yaml``), respaced evenly from ``T`` to 0.
    eta : float, default 1.0
        DDIM's :math:`\eta` (same config).
    kappa : float, default 1e-4
        :math:`\kappa`, the variance that smooths the potential at :math:`\tau_i`
        (``gaussian_var`` in ``default.yaml``).
    rng : invdiff.random.Generator or int, optional
    n : int, optional
        Samples per measurement, drawn from the final weighted particles by systematic
        resampling (a leading axis); default one sample, no leading axis. They come from one
        particle system, so they repeat particles and are not independent: for independent
        samples run several systems (e.g. repeat ``y`` along a batch axis).
    clip_x0 : (float, float) or None, default None
        Clip :math:`\hat x_0` (the reference code does not).
    in_shape : tuple of int, optional
        As in :func:`ddrm`.
    progress, return_info : bool
        See :mod:`invdiff.methods`. ``info["nfe"]`` counts network evaluations per
        measurement, ``steps * n_particles`` (``"network_calls"``: the batched calls,
        ``steps``). ``info`` also has ``"ess"`` (effective sample size before each
        resampling, shape ``(steps, *batch)``), ``"final_ess"`` (of the final weights,
        ``(*batch,)``), ``"log_weights"`` and ``"n_particles"``.

    Returns
    -------
    array, or (array, dict) with ``return_info``
        ``(*n, *batch, *op.in_shape)``.

    Notes
    -----
    In the spectral coordinates :math:`\bar x = V^\top x`, :math:`\bar y = U^\top y/s`, each
    observed coordinate :math:`i` gets a time :math:`\tau_i` on the DDIM grid where the
    diffusion's noise matches the measurement's, :math:`(1-\bar\alpha_{\tau_i})/
    \bar\alpha_{\tau_i} \approx \sigma_y^2/s_i^2` (0 if :math:`\sigma_y = 0`): then
    :math:`\tilde y_i = \sqrt{\bar\alpha_{\tau_i}}\,\bar y_i` is distributed like
    :math:`\bar x_{\tau_i, i}` given :math:`x_0`, a noiseless observation of the chain at
    :math:`\tau_i`. For :math:`t \ge \tau_i` the potential of coordinate :math:`i` is the
    forward kernel from :math:`\tilde y_i`, smoothed by :math:`\kappa`:

    .. math:: g_{t,i}(\bar x_i) = \mathcal N\big(\bar x_i;\ \sqrt{\bar\alpha_t/
              \bar\alpha_{\tau_i}}\,\tilde y_i,\ 1 - (1-\kappa)\,\bar\alpha_t/
              \bar\alpha_{\tau_i}\big).

    With the DDIM transition :math:`p(x_{t'} \mid x_t) = \mathcal N(m_t(x_t), \sigma_t^2 I)`,
    each step (the paper's Algorithm 1; ``mcg_diff/particle_filter.py``):

    1. weights :math:`\omega = \int g_{t'}(x')\, p(x' \mid x_t)\, dx' / g_t(x_t)`, Gaussian
       in closed form: :math:`\prod_i \mathcal N(\bar m_i; \mu_{t',i}, \sigma_t^2 + v_{t',i})
       / \mathcal N(\bar x_{t,i}; \mu_{t,i}, v_{t,i})`;
    2. resample ancestors (systematic), effective sample size :math:`1/\sum\omega^2` in
       ``info``;
    3. move by the optimal proposal :math:`\propto g_{t'}(x')\,p(x' \mid x_t)`: per active
       coordinate :math:`\bar x'_i = K_i\mu_{t',i} + (1-K_i)\bar m_i + \sqrt{v_{t',i}K_i}\,
       z_i`, :math:`K_i = \sigma_t^2/(\sigma_t^2 + v_{t',i})`; the DDIM step elsewhere.

    The first particles are drawn from :math:`\propto \mathcal N(0, I)\, g_T`. Defaults are
    the authors' image configuration (64 particles, 100 DDIM steps, :math:`\eta = 1`,
    :math:`\kappa = 10^{-4}`).

    Deliberate differences from the authors' code, measured on exact Gaussian and
    Gaussian-mixture priors (``tests/test_svd_methods.py``, ``benchmarks/validity.py``):

    * When a coordinate's time :math:`\tau_i` is passed, the code divides the weight by its
      potential :math:`g_{\tau_i,i}` (width :math:`\sqrt\kappa`) and, if :math:`\min_i\tau_i >
      0`, multiplies the final weights by the likelihood :math:`p(y \mid x_0)`. That is
      consistent as the particles grow, but the division has a heavy-tailed weight and at
      finite size the observation is counted twice: on a 2-D Gaussian with 256 particles the
      posterior variance of the observed coordinate came out 0.036–0.041 against the exact
      0.083. We keep :math:`g_{\tau_i,i}` as a factor of the path target (the chain observed
      at :math:`\tau_i`) and correct only the grid mismatch of :math:`\tau_i` at the end.
      The price: their weights target the chain's own prior at any number of steps, ours
      also assume that the chain's backward steps reverse the forward process (exact as the
      steps grow, with an exact score). The final correction is
      :math:`\omega_0 = p(y\mid x_0) / \prod_i \mathcal N(\tilde y_i;
      \sqrt{\bar\alpha_{\tau_i}}\bar x_{0,i}, 1 - \bar\alpha_{\tau_i} + \kappa)`, which is
      close to 1 (no correction when :math:`\sigma_y = 0`).
    * The code starts from :math:`\mathcal N(0, I)` but divides the first weights by
      :math:`g_T`; we draw the start from :math:`\mathcal N(0, I)\,g_T`, which those weights
      assume.
    * Systematic resampling instead of multinomial (lower variance, same expectation).
    * The chain ends at clean data (:math:`t = 0`) after ``steps`` transitions; the image
      scripts end at the first DDPM step.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.mcgdiff(prior, op, np.array([0.5, -0.5]), 0.1, rng=0, n=8,
    ...                               n_particles=32, steps=50, return_info=True)
    >>> x.shape, info["nfe"], info["ess"].shape  # nfe: 50 steps x 32 particles
    ((8, 4), 1600, (50,))
    """
    op = _svd_operator("mcgdiff", op, in_shape)
    check_arguments(rules=_RULES, model=model, op=op, y=y, sigma_y=sigma_y, n=n,
                    n_particles=n_particles, steps=steps, eta=eta, kappa=kappa,
                    clip_x0=clip_x0, progress=progress, return_info=return_info)
    rng = _as_rng(rng)
    xp, s, ybar = _spectral_y(op, y)
    model = _under(model, VP, VP.linear)
    check_steps("steps", steps, upper=model.process.T)
    batch = tuple(y.shape[: y.ndim - _out_ndim(op)])
    x_init = rng.normal((n_particles,) + batch + _in_shape(op), like=y)
    diagnostics = {}
    x, info = _run(_mcgdiff_sampler, model, x_init, None, return_info=True, record_guidance=False,
                   settings={"method": "mcgdiff", "n_particles": n_particles, "steps": steps,
                             "eta": eta, "kappa": kappa},
                   op=op, ybar=ybar, s=s, sigma_y=sigma_y, steps=steps, eta=eta, kappa=kappa,
                   clip_x0=clip_x0, rng=rng, progress=progress,
                   diagnostics=diagnostics)
    x, log_w = x
    info["network_calls"] = info["nfe"]
    info["nfe"] *= n_particles  # network evaluations per measurement: one per particle
    P = n_particles
    flat = (P, math.prod(batch))
    w = _softmax0(xp, xp.reshape(log_w, flat))
    idx = _systematic(xp, w, 1 if n is None else n, rng)
    out = _gather(xp, xp.reshape(x, flat + _in_shape(op)), idx)
    out = xp.reshape(out, ((1 if n is None else n),) + batch + _in_shape(op))
    if n is None:
        out = out[0, ...]
    if not return_info:
        return out
    info["ess"] = xp.reshape(xp.stack(diagnostics["ess"], axis=0), (len(diagnostics["ess"]),)
                             + batch)
    info["final_ess"] = xp.reshape(1.0 / xp.sum(w * w, axis=0), batch)
    info["log_weights"] = log_w
    return out, info
