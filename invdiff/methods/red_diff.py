r"""RED-diff: the variational (regularization-by-denoising) view of diffusion inverse problems
(Mardani, Song, Kautz, Vahdat, ICLR 2024).

The posterior is replaced by a point mass at :math:`\mu`, fitted by Adam on the data misfit
plus a score-matching regulariser: at each step a noisy :math:`x_t = a_t\mu + b_t\varepsilon`
is denoised and :math:`\mathrm{sg}[\hat\varepsilon(x_t, t) - \varepsilon]` acts as the
regulariser's gradient, so no gradient flows through the network.
"""

from __future__ import annotations

import math

from .._array_api import namespace
from ..processes import VP, predict
from ..samplers._common import progress_bar
from ._common import _as_rng, _operator, _run, _under, check_arguments
from ._fidelity import svd_operator

__all__ = ["red_diff"]

#: Adam's constants in the reference (``torch.optim.Adam(betas=(0.9, 0.99))``, torch's eps).
ADAM_BETAS = (0.9, 0.99)
ADAM_EPS = 1e-8


def reference_times(T: int, steps: int) -> list[int]:
    """The reference's grid, descending: 0-indexed ``range(0, T, T // steps)`` reversed, i.e.
    our DDPM steps ``1 + j (T // steps)`` for ``j = steps - 1, ..., 0``."""
    skip = T // steps
    return [1 + j * skip for j in range(steps - 1, -1, -1)]


def _red_diff_loop(model, x_init, *, guidance=None, callback=None, op, y, lam, lr, times,
                   rng, progress):
    """Adam on the RED-diff loss from ``x_init``; every step one network call, no host sync."""
    xp = namespace(x_init=x_init)
    proc = model.process
    n_in = math.prod(op.in_shape)
    n_out = math.prod(op.out_shape)
    b1, b2 = ADAM_BETAS
    mu = x_init
    m = xp.zeros_like(mu)
    v = xp.zeros_like(mu)
    for i, t in enumerate(progress_bar(times, progress, len(times), "red_diff")):
        ab = proc.alpha_bar(t)
        a_t, b_t = math.sqrt(ab), math.sqrt(1.0 - ab)
        eps = rng.normal(tuple(mu.shape), like=mu)
        eps_hat = predict(model, a_t * mu + b_t * eps, float(t), "eps")
        # d/dmu of  mean_m (y - A mu)^2 / 2  +  lam (b_t/a_t) mean_n sg[eps_hat - eps] . mu
        grad = (lam * (b_t / a_t) / n_in) * (eps_hat - eps) \
            - op.adjoint(y - op.apply(mu)) / n_out
        m = b1 * m + (1.0 - b1) * grad
        v = b2 * v + (1.0 - b2) * (grad * grad)
        k = i + 1
        step = lr / (1.0 - b1**k)
        mu = mu - step * m / (xp.sqrt(v) / math.sqrt(1.0 - b2**k) + ADAM_EPS)
        if callback is not None:
            callback(i, float(t), mu, {})
    return mu


def red_diff(model, op, y, *, rng=None, x_init=None, n=None, steps: int = 1000,
             lam: float = 0.25, lr: float = 0.1, schedule: str = "descending", progress=False,
             return_info=False, in_shape=None):
    r"""RED-diff: variational posterior mode by regularization by denoising diffusion.

    Parameters
    ----------
    model : ScoreModel
        Re-expressed to ``VP.linear(1000)`` if it is not a VP model. Only forward passes.
    op : SVDOperator or array of shape (M, N)
        The forward operator ``A`` (``apply``, ``adjoint``; ``pinv`` for the start), or a
        plain matrix acting on the flattened signal (``in_shape`` gives the image shape).
    y : array
        Measurement ``(*batch, *op.out_shape)``.
    rng : invdiff.random.Generator or int, optional
    x_init : array, optional
        Start of :math:`\mu`; default :math:`A^+ y` (the reference), broadcast to ``n``.
    n : int, optional
        Runs per measurement (a leading batch axis; they differ by the noise draws).
    steps : int, default 1000
        Adam steps, one network evaluation each (the reference's batch runs:
        ``sample_batch.sh``, ``num_steps=1000``).
    lam : float, default 0.25
        :math:`\lambda`, the regulariser's weight (``_configs/algo/reddiff.yaml``,
        ``grad_term_weight``).
    lr : float, default 0.1
        Adam's learning rate (``reddiff.yaml``; betas (0.9, 0.99) as ``algos/reddiff.py``).
    schedule : {"descending", "random"}, default "descending"
        Visit the time grid from :math:`T` down (the reference) or in a random order (the
        paper's ablation; ``random.shuffle`` in ``algos/reddiff_parallel.py``).
    progress, return_info : bool
        As in :func:`invdiff.methods.dmps`; ``info`` holds ``nfe`` and ``seconds``.
    in_shape : tuple, optional
        Shape of the signal when ``op`` acts on its flattening.

    Returns
    -------
    array, or (array, dict) with ``return_info``
        The final :math:`\mu`.

    Notes
    -----
    Mardani, Song, Kautz, Vahdat, "A Variational Perspective on Solving Inverse Problems
    with Diffusion Models" (ICLR 2024), Algorithm 1, as in ``NVlabs/RED-diff``
    (``algos/reddiff.py``). Per step, with :math:`\varepsilon \sim \mathcal N(0, I)`,
    :math:`x_t = a_t\mu + b_t\varepsilon` and the network's :math:`\hat\varepsilon(x_t, t)`,
    Adam descends

    .. math::

        \ell(\mu) = \frac{1}{2M}\|y - A\mu\|^2 + \frac{\lambda}{N}\,\frac{b_t}{a_t}\,
                    \mathrm{sg}\big[\hat\varepsilon(x_t, t) - \varepsilon\big]^\top \mu ,

    the means over the :math:`M` measurements and :math:`N` pixels of the reference's
    ``loss_obs`` and ``loss_noise``, with the paper's SNR weighting
    :math:`\omega_t = b_t/a_t = 1/\sqrt{\mathrm{SNR}_t}` (``denoise_term_weight="linear"``)
    and ``sigma_x0 = 0`` (:math:`x_0 = \mu`). Since :math:`\mathbb E[(a_t/b_t)(\hat
    \varepsilon - \varepsilon)] \approx -\nabla\log p(\mu)` (denoising score matching), the
    regulariser is a prior gradient weighted by :math:`\lambda r_t^2/N`,
    :math:`r_t = b_t/a_t`; the measurement noise level does not enter (the reference's
    ``sigma_y`` only simulates data), :math:`\lambda` alone trades misfit against prior.

    Adam is written in the array API (elementwise, as ``torch.optim.Adam``: bias-corrected
    moments, :math:`\epsilon = 10^{-8}`). The reference averages both terms over the whole
    batch as well, which only rescales Adam's :math:`\epsilon`; here each sample is its own
    problem (the reference at batch size 1). The output is :math:`\mu` after the last step
    (the reference returns it before its last update, one Adam step at :math:`t = 1`).

    *Tasks the paper lacks* (``benchmarks/restoration.py``; PSNR on validation images only:
    MNIST digits 9000-9007, the two natural validation crops). Denoising at
    :math:`\sigma_y = 0.5`: :math:`\lambda = 16` (MNIST 20.25 dB; 0.25 / 1 / 4 / 8 / 32 /
    64: 14.91 / 15.02 / 15.49 / 18.40 / 13.35 / 10.90; natural 19.70, 32: 20.49, 4: 14.47).
    The default 0.25 reproduces the noisy input: the noise level does not enter the loss,
    and at late times (small :math:`\omega_t`) Adam's normalised steps fit ``y`` whatever its
    noise. Colorization: :math:`\lambda = 4` (natural 20.84 dB; 0.25 / 1 / 16 / 64: 20.30 /
    20.40 / 19.68 / 10.22).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = ivd.methods.red_diff(prior, op, np.array([0.5, -0.5]), rng=0, steps=100,
    ...                                return_info=True)
    >>> x.shape, info["nfe"]
    ((4,), 100)
    """
    op = svd_operator(_operator(op, in_shape, svd=True))
    args = check_arguments(model=model, op=op, y=y, x_init=x_init, n=n, steps=steps, lam=lam,
                           lr=lr, schedule=schedule, progress=progress, return_info=return_info)
    rng = _as_rng(rng)
    model = _under(model, VP, VP.linear)
    if args["steps"] > model.process.T:
        raise ValueError(f"steps must be at most the model's {model.process.T} DDPM steps; "
                         f"received {steps}")
    times = reference_times(model.process.T, args["steps"])
    if schedule == "random":  # the order is Python control flow: draw it on the host
        import array_api_compat.numpy as host  # (the operators' default namespace, too)

        order = rng.permutation(len(times), like=host.zeros(1))
        times = [times[j] for j in order.tolist()]
    if x_init is None:
        x_init = op.pinv(y)
        if n is not None:
            xp = namespace(y=y)
            x_init = xp.broadcast_to(x_init, (int(n),) + tuple(x_init.shape))
    return _run(_red_diff_loop, model, x_init, None, return_info=return_info,
                record_guidance=False,
                settings={"method": "red_diff", "lam": lam, "lr": lr, "steps": steps,
                          "schedule": schedule},
                op=op, y=y, lam=args["lam"], lr=args["lr"], times=times, rng=rng,
                progress=progress)
