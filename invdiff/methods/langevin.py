r"""Quantized and compressed-sensing recipes on annealed Langevin: QCS-SGM, QCS-SGM+, ALD."""

from __future__ import annotations

from .. import likelihoods as _lik
from .. import samplers as _samplers
from .._array_api import check_trailing_shape, namespace
from ..processes import VE, reexpress
from ._common import _as_rng, _Counted, _run, check_arguments

__all__ = ["qcs_sgm", "qcs_sgm_plus", "ald_cs"]


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
    guidance = likelihood(model.process)
    if x_init is None:  # the reference starts from U[0, 1], the data range of its models
        low, high = getattr(model, "data_range", (0.0, 1.0))
        x_init = rng.uniform(shape, like=like, low=low, high=high)
    else:
        namespace(x_init=x_init, measurement=like)
        check_trailing_shape("x_init", x_init, guidance.in_shape)
    settings = {"method": name, "eps": kwargs["eps"], "steps_each": kwargs["steps_each"],
                "gamma": kwargs["scale"], **(settings or {})}
    return _run(_samplers.langevin, model, x_init, guidance, rng=rng,
                return_info=return_info, record_guidance=record_guidance, settings=settings,
                **kwargs)


def _cs_shape(A, y, n, in_shape):
    batch = tuple(y.shape[:-1])
    if n is not None:
        batch = (int(n),) + batch
    if in_shape is None:  # a DenseMatrix knows the image shape it acts on
        in_shape = getattr(A, "in_shape", None) or (int(A.shape[-1]),)
    return batch + tuple(int(v) for v in in_shape)


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
    check_arguments(model=model, A=A, lower=lower, upper=upper, sigma=sigma, x_init=x_init, n=n,
                    in_shape=in_shape, eps=eps, steps_each=steps_each, gamma=gamma,
                    final_denoise=final_denoise, progress=progress, return_info=return_info,
                    record_guidance=record_guidance)
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
    p\|` per step (γ = 0.5 for MNIST, 0.3 for CIFAR/CelebA). With ``return_info`` the info
    also holds ``"ep_calls"`` (EP runs, one per Langevin step) and ``"ep_fallback"`` (how many
    (call, sample) pairs EP scored with the diagonal message because its own messages
    overflowed; see :class:`~invdiff.likelihoods.QuantizedEP`).

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
    check_arguments(model=model, A=A, lower=lower, upper=upper, sigma=sigma, x_init=x_init, n=n,
                    in_shape=in_shape, eps=eps, steps_each=steps_each, gamma=gamma, iters=iters,
                    damping=damping, final_denoise=final_denoise, progress=progress,
                    return_info=return_info, record_guidance=record_guidance)
    made = []

    def likelihood(proc):
        made.append(_lik.QuantizedEP(A, lower, upper, sigma, proc, iters=iters, damping=damping,
                                     in_shape=in_shape))
        return made[-1]

    out = _langevin_method(
        "qcs_sgm_plus", model, process, rng, return_info, record_guidance, likelihood,
        x_init, lower, _cs_shape(A, lower, n, in_shape), progress=progress, scale=gamma,
        weighting="norm", eps=eps, steps_each=steps_each, final_denoise=final_denoise,
        settings={"iters": iters, "damping": damping})
    if return_info:  # one device-to-host transfer, after the run
        out[1]["ep_calls"] = made[0].totals["calls"]
        out[1]["ep_fallback"] = int(made[0].totals["fallback"])
    return out


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
    check_arguments(model=model, A=A, y=y, sigma=sigma, x_init=x_init, n=n, in_shape=in_shape,
                    eps=eps, steps_each=steps_each, gamma=gamma, final_denoise=final_denoise,
                    progress=progress, return_info=return_info, record_guidance=record_guidance)
    return _langevin_method(
        "ald_cs", model, process, rng, return_info, record_guidance,
        lambda proc: _lik.ALD(A, y, sigma, proc, in_shape=in_shape),
        x_init, y, _cs_shape(A, y, n, in_shape), progress=progress, scale=gamma, eps=eps,
        steps_each=steps_each, final_denoise=final_denoise)
