r"""Image-quality metrics: PSNR and SSIM, one value per image, on any Array API backend.

Images are ``(*batch, C, H, W)``; both metrics reduce over ``(C, H, W)`` and return an array
of shape ``batch`` in the inputs' namespace, device and floating dtype. ``data_range`` (the
width of the images' value range: 2 for ``[-1, 1]``, 1 for ``[0, 1]``, 255 for 8-bit) is
required: inferring it from the data or the dtype silently changes the numbers.
"""

from __future__ import annotations

import math

from ._array_api import check_floating, check_positive, namespace

__all__ = ["psnr", "ssim", "sliced_wasserstein"]


def _check_pair(x, ref, xp):
    check_floating("x", x, xp)
    check_floating("ref", ref, xp)
    if tuple(x.shape) != tuple(ref.shape):
        raise ValueError(
            f"x and ref must have the same shape; received x {tuple(x.shape)}, "
            f"ref {tuple(ref.shape)}"
        )
    if x.ndim < 3:
        raise ValueError(
            f"x must have shape (*batch, C, H, W) (at least 3 dims); received shape "
            f"{tuple(x.shape)}"
        )


def psnr(x, ref, data_range):
    r"""Peak signal-to-noise ratio of ``x`` against ``ref``, per image, in dB.

    Parameters
    ----------
    x, ref : array, shape ``(*batch, C, H, W)``
        Estimate and ground truth (real floating, same shape and namespace).
    data_range : float
        Width of the value range (2 for images in ``[-1, 1]``, 1 for ``[0, 1]``).

    Returns
    -------
    array, shape ``batch``
        :math:`10 \log_{10}(R^2 / \mathrm{MSE})` per image; ``inf`` where ``x == ref``.

    Notes
    -----
    :math:`\mathrm{MSE} = \frac{1}{CHW} \sum (x - \mathrm{ref})^2` over each image, as in
    :func:`skimage.metrics.peak_signal_noise_ratio` with an explicit ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.metrics import psnr
    >>> ref = np.zeros((2, 1, 4, 4))
    >>> x = ref + np.array([0.1, 0.01])[:, None, None, None]
    >>> np.round(psnr(x, ref, data_range=1.0), 6)
    array([20., 40.])
    """
    xp = namespace(x=x, ref=ref)
    _check_pair(x, ref, xp)
    R = check_positive("data_range", data_range)
    mse = xp.mean((x - ref) ** 2, axis=(-3, -2, -1))
    exact = mse == 0
    # Dividing by a zero MSE would warn; substitute 1 and put inf back afterwards.
    value = 10.0 * xp.log10(R**2 / xp.where(exact, xp.ones_like(mse), mse))
    return xp.where(exact, xp.full_like(mse, math.inf), value)


def _window(window: str, win_size: int | None, sigma: float) -> list[float]:
    if window == "gaussian":
        size = 2 * int(3.5 * sigma + 0.5) + 1 if win_size is None else win_size
        r = (size - 1) / 2
        w = [math.exp(-((k - r) ** 2) / (2 * sigma**2)) for k in range(size)]
    elif window == "uniform":
        size = 7 if win_size is None else win_size
        w = [1.0] * size
    else:
        raise ValueError(f"window must be 'gaussian' or 'uniform'; received {window!r}")
    total = sum(w)
    return [v / total for v in w]


def _filter_valid(z, w, xp):
    """Separable correlation with the 1-D window ``w`` over H and W, 'valid' positions only."""
    K = len(w)
    nh, nw = z.shape[-2] - K + 1, z.shape[-1] - K + 1
    z = sum(w[k] * z[..., :, k : k + nw] for k in range(K))
    return sum(w[k] * z[..., k : k + nh, :] for k in range(K))


def ssim(x, ref, data_range, *, window="gaussian", win_size=None, sigma=1.5, K1=0.01, K2=0.03,
         use_sample_covariance=None):
    r"""Mean structural similarity (Wang et al. 2004) of ``x`` against ``ref``, per image.

    Parameters
    ----------
    x, ref : array, shape ``(*batch, C, H, W)``
        Estimate and ground truth (real floating, same shape and namespace).
    data_range : float
        Width of the value range (2 for images in ``[-1, 1]``, 1 for ``[0, 1]``).
    window : {"gaussian", "uniform"}
        ``"gaussian"`` (default): the paper's 11 × 11 circular-symmetric Gaussian window with
        σ = 1.5. ``"uniform"``: a ``win_size`` × ``win_size`` box, 7 × 7 by default, which is
        :func:`skimage.metrics.structural_similarity`'s default.
    win_size : int, optional
        Odd window width; defaults to ``2 * int(3.5 * sigma + 0.5) + 1`` (11) for the Gaussian
        window (SciPy's ``truncate=3.5``, as skimage) and 7 for the uniform one.
    sigma : float
        Standard deviation of the Gaussian window, 1.5.
    K1, K2 : float
        Stabilising constants, :math:`C_1 = (K_1 R)^2`, :math:`C_2 = (K_2 R)^2` (0.01, 0.03).
    use_sample_covariance : bool, optional
        Scale local (co)variances by :math:`N_p / (N_p - 1)`, :math:`N_p` = window area.
        Default: ``False`` for the Gaussian window (Wang et al.), ``True`` for the uniform one
        (skimage's default).

    Returns
    -------
    array, shape ``batch``
        Mean SSIM per image (channels averaged), at most 1.

    Notes
    -----
    With local weighted means :math:`\mu`, variances :math:`\sigma^2` and covariance
    :math:`\sigma_{xr}`,

    .. math:: \mathrm{SSIM} = \frac{(2\mu_x\mu_r + C_1)(2\sigma_{xr} + C_2)}
              {(\mu_x^2 + \mu_r^2 + C_1)(\sigma_x^2 + \sigma_r^2 + C_2)},

    averaged over the positions where the window fits inside the image, then over channels.
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4), 2004. The defaults reproduce
    ``structural_similarity(x, ref, data_range=R, channel_axis=0, gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)``; ``window="uniform"`` reproduces
    ``structural_similarity(x, ref, data_range=R, channel_axis=0)`` (skimage crops the
    borders where its reflect padding would matter, so 'valid' filtering gives the same mean).
    The filtering is separable shifted sums in the inputs' namespace.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.metrics import ssim
    >>> ref = np.linspace(0, 1, 2 * 16 * 16).reshape(2, 1, 16, 16)
    >>> np.round(ssim(ref, ref, data_range=1.0), 6)
    array([1., 1.])
    >>> bool(ssim(ref + 0.1 * np.cos(ref * 50), ref, data_range=1.0)[0] < 1)
    True
    """
    xp = namespace(x=x, ref=ref)
    _check_pair(x, ref, xp)
    R = check_positive("data_range", data_range)
    sigma = check_positive("sigma", sigma)
    if win_size is not None and (isinstance(win_size, bool) or int(win_size) != win_size
                                 or win_size < 1 or win_size % 2 == 0):
        raise ValueError(f"win_size must be an odd positive integer; received {win_size!r}")
    w = _window(window, None if win_size is None else int(win_size), sigma)
    K = len(w)
    if min(x.shape[-2:]) < K:
        raise ValueError(
            f"x must be at least {K} x {K} pixels for a {K}-tap window; received "
            f"H x W = {x.shape[-2]} x {x.shape[-1]}"
        )
    if use_sample_covariance is None:
        use_sample_covariance = window == "uniform"
    cov_norm = K * K / (K * K - 1) if use_sample_covariance and K > 1 else 1.0
    C1, C2 = (K1 * R) ** 2, (K2 * R) ** 2

    mu_x, mu_r = _filter_valid(x, w, xp), _filter_valid(ref, w, xp)
    var_x = cov_norm * (_filter_valid(x * x, w, xp) - mu_x * mu_x)
    var_r = cov_norm * (_filter_valid(ref * ref, w, xp) - mu_r * mu_r)
    cov = cov_norm * (_filter_valid(x * ref, w, xp) - mu_x * mu_r)
    s = ((2 * mu_x * mu_r + C1) * (2 * cov + C2)) / (
        (mu_x * mu_x + mu_r * mu_r + C1) * (var_x + var_r + C2))
    return xp.mean(s, axis=(-3, -2, -1))


def sliced_wasserstein(x, y, *, n_projections: int = 256, rng=None):
    r"""Sliced 2-Wasserstein distance between two sample sets of equal size ``(n, d)``.

    Parameters
    ----------
    x, y : array of shape (n, d)
        Samples (one per row), same namespace and device.
    n_projections : int, default 256
        Random directions on the unit sphere.
    rng : invdiff.random.Generator or int, optional
        Draws the directions (default seed 0, so two calls compare on the same directions).

    Returns
    -------
    float

    Notes
    -----
    Between two empirical measures of the same size the 1-D :math:`W_2` distance is the
    RMS gap of the sorted samples; :math:`SW_2^2` averages its square over directions
    (Bonneel et al. 2015). Two independent sample sets of one law are *not* at distance
    zero: compare a sampler with the distance between two exact sample sets (MCGdiff's
    benchmark design, Cardoso et al. 2024).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> x = np.zeros((100, 3)); y = np.ones((100, 3))
    >>> round(ivd.metrics.sliced_wasserstein(x, y, n_projections=2000), 1)  # E|theta.1|^2 = 1
    1.0
    """
    from .random import Generator

    xp = namespace(x=x, y=y)
    check_floating("x", x, xp)
    check_floating("y", y, xp)
    if x.ndim != 2 or tuple(x.shape) != tuple(y.shape):
        raise ValueError("x and y must both have shape (n, d); received "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if isinstance(n_projections, bool) or not isinstance(n_projections, int) or \
            n_projections < 1:
        raise ValueError(f"n_projections must be a positive integer; received "
                         f"{n_projections!r}")
    if isinstance(rng, bool) or not (rng is None or isinstance(rng, (int, Generator))):
        raise TypeError(f"rng must be None, an integer seed or an invdiff.random.Generator; "
                        f"received {type(rng).__name__}")
    rng = rng if isinstance(rng, Generator) else Generator(0 if rng is None else rng)
    theta = rng.normal((x.shape[1], n_projections), like=x)
    theta = theta / xp.sqrt(xp.sum(theta * theta, axis=0))
    px = xp.sort(x @ theta, axis=0)
    py = xp.sort(y @ theta, axis=0)
    return float(xp.sqrt(xp.mean((px - py) ** 2)))
