r"""Published posterior-sampling methods, each with its paper's defaults.

A method is a recipe: a likelihood from :mod:`invdiff.likelihoods`, an integrator from
:mod:`invdiff.samplers`, the process that integrator needs (the model is re-expressed
with :class:`invdiff.processes.reexpress` when it was trained under another one) and the
hyperparameters of the paper. Every function takes a ScoreModel, the measurement and an
``rng`` and returns the samples; with ``return_info=True`` it returns ``(samples, info)``
where ``info`` holds the number of network evaluations (``"nfe"``), the wall time
(``"seconds"``), the settings used and, with ``record_guidance=True``, the per-step
guidance norms (``"guidance_norm"``, one row per step, one column per sample).

=============  ===========================  ===============================================
method         integrator                    defaults (paper)
=============  ===========================  ===============================================
dmps           DDPM ancestral, 1000 steps    λ = 1.75 (Meng & Kabashima, Alg. 1)
dmps_flow      flow ODE, Euler, 50 steps     λ = 2, start t0 = 1 - 1/50 (Alg. 2)
dps            DDPM ancestral, 1000 steps    ζ = 0.3 step on ‖y - A x̂0‖ (Chung et al.)
dps_flow       flow ODE, Euler, 50 steps     ζ = 0.3
pigdm          DDIM, 100 steps, η = 1        ΠGDM (Song et al. 2023)
ot_ode         flow ODE, Euler, 50 steps     ΠGDM in the flow, t0 = 0.8, noised A⁺y start
qcs_sgm        annealed Langevin              ε = 2e-4, K = 5, γ = 1 (Meng & Kabashima 2023)
qcs_sgm_plus   annealed Langevin + EP         γ = 0.5 norm-matched, 5 EP iterations
ald_cs         annealed Langevin              Jalal et al. 2021, unquantized Gaussian term
=============  ===========================  ===============================================
"""

from __future__ import annotations

import time

from . import likelihoods as _lik
from . import samplers as _samplers
from ._array_api import check_floating, namespace
from .processes import VE, VP, Flow, reexpress
from .random import Generator

__all__ = [
    "dmps",
    "dmps_flow",
    "dps",
    "dps_flow",
    "pigdm",
    "ot_ode",
    "qcs_sgm",
    "qcs_sgm_plus",
    "ald_cs",
]


# -- shared pieces ---------------------------------------------------------------------
class _Counted:
    """A ScoreModel that counts its network evaluations (forward and vjp passes)."""

    def __init__(self, model):
        self.model = model
        self.process = model.process
        self.prediction = model.prediction
        self.nfe = 0
        for name in ("vjp_accepts_callable", "data_range"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))
        if callable(getattr(model, "predict_with_log_variance", None)):
            self.predict_with_log_variance = self._predict_with_log_variance
        if callable(getattr(model, "vjp", None)):
            self.vjp = self._vjp

    def __call__(self, x_t, t):
        self.nfe += 1
        return self.model(x_t, t)

    def _predict_with_log_variance(self, x_t, t):
        self.nfe += 1
        return self.model.predict_with_log_variance(x_t, t)

    def _vjp(self, x_t, t, cotangent):
        self.nfe += 1
        return self.model.vjp(x_t, t, cotangent)


def _under(model, process_type, default) -> _Counted:
    """``model`` (re-expressed unless it lives in a ``process_type`` process), counted."""
    if not isinstance(model.process, process_type):
        model = reexpress(model, default())
    return _Counted(model)


def _as_rng(rng) -> Generator:
    if isinstance(rng, Generator):
        return rng
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return Generator(rng)
    raise TypeError(f"rng must be an invdiff.random.Generator, an int seed or None; "
                    f"received {type(rng).__name__}")


def _in_shape(op):
    shape = getattr(op, "in_shape", None)
    if shape is None:  # an (M, N) array
        return (int(op.shape[-1]),)
    return tuple(shape)


def _out_ndim(op) -> int:
    shape = getattr(op, "out_shape", None)
    return 1 if shape is None else len(tuple(shape))


def _x_init(x_init, y, op, rng, *, n, scale=1.0):
    """The start state: given, or ``scale * N(0, I)`` of ``y``'s batch and ``op``'s input."""
    if x_init is not None:
        check_floating("x_init", x_init)
        namespace(x_init=x_init, y=y)
        return x_init
    batch = tuple(y.shape[: y.ndim - _out_ndim(op)])
    if n is not None:
        batch = (int(n),) + batch
    return scale * rng.normal(batch + _in_shape(op), like=y)


def _run(sampler, model: _Counted, x_init, guidance, *, return_info, record_guidance, settings,
         **kwargs):
    norms = []

    def callback(i, t, x, info):
        if info.get("guidance_norm") is not None:
            norms.append(info["guidance_norm"])

    start = time.perf_counter()
    x = sampler(model, x_init, guidance=guidance,
                callback=callback if record_guidance else None, **kwargs)
    seconds = time.perf_counter() - start
    if not return_info:
        return x
    info = {"nfe": model.nfe, "seconds": seconds, **settings}
    if record_guidance:
        info["guidance_norm"] = norms
    return x, info


# -- DDPM family -----------------------------------------------------------------------
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
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    guidance = _lik.PiGDM(op, y, sigma_y, model)
    return _run(_samplers.ddim, model, _x_init(x_init, y, op, rng, n=n), guidance,
                scale=1.0, weighting="pigdm", steps=steps, eta=eta, rng=rng,
                progress=progress, clip_x0=clip_x0,
                return_info=return_info, record_guidance=record_guidance,
                settings={"method": "pigdm", "eta": eta, "steps": steps})


# -- flow family -----------------------------------------------------------------------
def _flow_method(name, model, likelihood, op, y, rng, x_init, n, steps, t_start, scale,
                 progress, return_info, record_guidance, settings):
    """Shared body of DMPS-flow and DPS-flow: Euler on the flow ODE from t0 = 1 - 1/K."""
    rng = _as_rng(rng)
    model = _under(model, Flow, Flow.rectified)
    t0 = 1.0 - 1.0 / steps if t_start is None else t_start
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


# -- quantized / compressed sensing (annealed Langevin) ---------------------------------
def _ve_model(model, process) -> _Counted:
    """The model under a VE process with Langevin levels: its own, ``process``, or MNIST's."""
    if process is None and isinstance(model.process, VE) and model.process.sigmas is not None:
        return _Counted(model)
    if process is not None and not (isinstance(process, VE) and process.sigmas is not None):
        raise TypeError("process must be a VE process with levels (VE.geometric); "
                        f"received {process!r}")
    return _Counted(reexpress(model, process or VE.geometric(50.0, 0.01, 232)))


def _langevin_method(name, model, process, rng, return_info, record_guidance, likelihood,
                     x_init, like, shape, *, settings=None, **kwargs):
    """Shared body of the annealed-Langevin recipes: VE model, uniform start, one run."""
    rng = _as_rng(rng)
    model = _ve_model(model, process)
    if x_init is None:  # the reference starts from U[0, 1], the data range of its models
        low, high = getattr(model, "data_range", (0.0, 1.0))
        x_init = rng.uniform(shape, like=like, low=low, high=high)
    settings = {"method": name, "eps": kwargs["eps"], "steps_each": kwargs["steps_each"],
                "gamma": kwargs["scale"], **(settings or {})}
    return _run(_samplers.langevin, model, x_init, likelihood(model.process), rng=rng,
                return_info=return_info, record_guidance=record_guidance, settings=settings,
                **kwargs)


def _cs_shape(A, y, n, in_shape):
    batch = tuple(y.shape[:-1])
    if n is not None:
        batch = (int(n),) + batch
    N = int(A.shape[-1]) if hasattr(A, "shape") else int(A.in_shape[-1])
    return batch + (tuple(in_shape) if in_shape is not None else (N,))


def qcs_sgm(model, A, lower, upper, sigma, *, rng=None, x_init=None, n=None, in_shape=None,
            process=None, eps: float = 2e-4, steps_each: int = 5, gamma: float = 1.0,
            final_denoise=True, progress=False, return_info=False, record_guidance=False):
    r"""QCS-SGM: quantized compressed sensing with score-based models (Meng & Kabashima,
    ICLR 2023).

    Annealed Langevin over the VE levels (``process``, default the model's own, else
    ``VE.geometric(50, 0.01, 232)``, MNIST's) with the closed-form quantized likelihood of
    :class:`invdiff.likelihoods.QuantizedDiagonal`; ε = 2e-4, K = 5, γ = 1. The start is
    uniform over ``model.data_range`` (the reference: U[0, 1]).

    Parameters
    ----------
    model : ScoreModel
    A : array (M, N) or DenseMatrix
    lower, upper : array
        Bin edges of each measurement (``Quantizer.bins``), ``±inf`` outer edges.
    sigma : float
        Noise standard deviation added before quantization.
    in_shape : tuple, optional
        Shape of the signal when it is an image (``A`` acts on its flattening).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE.geometric(5.0, 0.01, 20)
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ve)
    >>> A = np.eye(2, 4)
    >>> lo, hi = np.array([0.0, -np.inf]), np.array([np.inf, 0.0])
    >>> ivd.methods.qcs_sgm(prior, A, lo, hi, 0.05, rng=0, n=3).shape
    (3, 4)
    """
    return _langevin_method(
        "qcs_sgm", model, process, rng, return_info, record_guidance,
        lambda proc: _lik.QuantizedDiagonal(A, lower, upper, sigma, proc, in_shape=in_shape),
        x_init, lower, _cs_shape(A, lower, n, in_shape), progress=progress, scale=gamma,
        eps=eps, steps_each=steps_each, final_denoise=final_denoise)


def qcs_sgm_plus(model, A, lower, upper, sigma, *, rng=None, x_init=None, n=None,
                 in_shape=None, process=None, eps: float = 2e-4, steps_each: int = 5,
                 gamma: float = 0.5, iters: int = 5, damping: float = 0.02,
                 final_denoise=True, progress=False, return_info=False,
                 record_guidance=False):
    r"""QCS-SGM+ (Meng & Kabashima, AAAI 2024): expectation propagation for general A.

    As :func:`qcs_sgm` with :class:`invdiff.likelihoods.QuantizedEP` (``iters`` = 5,
    ``damping`` = 0.02) and the norm-matched weight :math:`\gamma\|s\|/\|\nabla\log\tilde
    p\|` per step (γ = 0.5 for MNIST, 0.3 for CIFAR/CelebA).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE.geometric(5.0, 0.01, 20)
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ve)
    >>> A = np.array([[1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
    >>> lo, hi = np.array([0.0, -np.inf]), np.array([np.inf, 0.0])
    >>> ivd.methods.qcs_sgm_plus(prior, A, lo, hi, 0.1, rng=0, n=3).shape
    (3, 4)
    """
    return _langevin_method(
        "qcs_sgm_plus", model, process, rng, return_info, record_guidance,
        lambda proc: _lik.QuantizedEP(A, lower, upper, sigma, proc, iters=iters,
                                      damping=damping, in_shape=in_shape),
        x_init, lower, _cs_shape(A, lower, n, in_shape), progress=progress, scale=gamma,
        weighting="norm", eps=eps, steps_each=steps_each, final_denoise=final_denoise,
        settings={"iters": iters, "damping": damping})


def ald_cs(model, A, y, sigma, *, rng=None, x_init=None, n=None, in_shape=None, process=None,
           eps: float = 2e-4, steps_each: int = 5, gamma: float = 1.0, final_denoise=True,
           progress=False, return_info=False, record_guidance=False):
    r"""ALD for linear compressed sensing (Jalal et al., NeurIPS 2021).

    Annealed Langevin with the Gaussian term :math:`A^\top (y - A x)/(\sigma^2 +
    \sigma_i^2)` at level :math:`\sigma_i` (:class:`invdiff.likelihoods.ALD`), i.e. QCS-SGM's
    unquantized limit without the row norms.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE.geometric(5.0, 0.01, 20)
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ve)
    >>> ivd.methods.ald_cs(prior, np.eye(2, 4), np.array([0.3, -0.2]), 0.05, rng=0, n=3).shape
    (3, 4)
    """
    return _langevin_method(
        "ald_cs", model, process, rng, return_info, record_guidance,
        lambda proc: _lik.ALD(A, y, sigma, proc, in_shape=in_shape),
        x_init, y, _cs_shape(A, y, n, in_shape), progress=progress, scale=gamma, eps=eps,
        steps_each=steps_each, final_denoise=final_denoise)
