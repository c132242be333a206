r"""Orthonormal periodized discrete wavelet transforms (Haar, Daubechies) in pure Array API.

One analysis level of a signal of even length :math:`n` with the orthonormal low-pass filter
:math:`h_0..h_{L-1}` and high-pass :math:`g_j = (-1)^j h_{L-1-j}` (Mallat 1989;
Daubechies, *Ten Lectures on Wavelets*, 1992, §6.4):

.. math:: a_k = \sum_j h_j\, x_{(2k + j) \bmod n}, \qquad d_k = \sum_j g_j\, x_{(2k + j) \bmod n}.

Periodization makes each level an orthogonal :math:`n \times n` matrix, so the inverse is the
adjoint: :math:`x = \sum_j \operatorname{roll}_{+j}(\operatorname{up}(h_j a + g_j d))`
with ``up`` the zero-insertion upsampler. Multi-level transforms recurse on the approximation
(2-D: on the low-low band), and the coefficients are stored in Mallat's layout, in an array of
the input's shape. The filters are the standard ones (``db1`` = Haar); the time orientation
(``h`` applied forward in ``x``) means subbands may be circular shifts of PyWavelets'
``mode="periodization"`` ones, which changes nothing for thresholding.

Private helper of :mod:`invdiff.baselines`; written with ``xp.roll`` and slicing only, so it
runs on every backend (PyWavelets is NumPy-only).
"""

from __future__ import annotations

import math

__all__ = ["FILTERS", "max_levels", "wavedec", "waverec"]

_S3 = math.sqrt(3.0)
FILTERS: dict[str, tuple[float, ...]] = {
    "haar": (1 / math.sqrt(2.0), 1 / math.sqrt(2.0)),
    # Daubechies D4 (2 vanishing moments), closed form (1 ± √3, 3 ± √3) / (4√2).
    "db2": tuple(v / (4 * math.sqrt(2.0)) for v in (1 + _S3, 3 + _S3, 3 - _S3, 1 - _S3)),
    # Daubechies D8 (4 vanishing moments), Ten Lectures Table 6.1 (N = 4), sum = √2.
    "db4": (0.2303778133088964, 0.7148465705529154, 0.6308807679298587, -0.0279837694168599,
            -0.1870348117190931, 0.0308413818355607, 0.0328830116668852, -0.0105974017850690),
}
FILTERS["db1"] = FILTERS["haar"]


def _highpass(h):
    L = len(h)
    return tuple((-1) ** j * h[L - 1 - j] for j in range(L))


def max_levels(sizes, wavelet: str) -> int:
    """Largest number of levels such that every level sees an even length >= the filter length.

    Examples
    --------
    >>> from invdiff._wavelet import max_levels
    >>> max_levels((28, 28), "haar"), max_levels((64,), "db2")
    (2, 5)
    """
    L = len(FILTERS[wavelet])
    levels = 0
    while all(n % 2 ** (levels + 1) == 0 and n // 2**levels >= L for n in sizes):
        levels += 1
    return levels


def _analysis(x, h, xp):
    """One level along the last axis: (approximation, detail), each of half length."""
    g = _highpass(h)
    a = d = None
    for j in range(len(h)):
        xj = xp.roll(x, -j, axis=-1)[..., ::2]
        a = h[j] * xj if a is None else a + h[j] * xj
        d = g[j] * xj if d is None else d + g[j] * xj
    return a, d


def _upsample(z, xp):
    m = z.shape[-1]
    return xp.reshape(xp.stack([z, xp.zeros_like(z)], axis=-1), (*z.shape[:-1], 2 * m))


def _synthesis(a, d, h, xp):
    g = _highpass(h)
    x = None
    for j in range(len(h)):
        term = xp.roll(_upsample(h[j] * a + g[j] * d, xp), j, axis=-1)
        x = term if x is None else x + term
    return x


def _analysis_2d(x, h, xp):
    lo, hi = _analysis(x, h, xp)  # along W
    T = xp.matrix_transpose
    ll, lh = (T(z) for z in _analysis(T(lo), h, xp))  # along H
    hl, hh = (T(z) for z in _analysis(T(hi), h, xp))
    return ll, hl, lh, hh


def _synthesis_2d(ll, hl, lh, hh, h, xp):
    T = xp.matrix_transpose
    lo = T(_synthesis(T(ll), T(lh), h, xp))
    hi = T(_synthesis(T(hl), T(hh), h, xp))
    return _synthesis(lo, hi, h, xp)


def wavedec(x, wavelet: str, levels: int, ndim: int, xp):
    """Multi-level orthonormal DWT over the last ``ndim`` (1 or 2) axes, Mallat layout.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_compat.numpy as xp
    >>> from invdiff._wavelet import wavedec
    >>> np.round(wavedec(np.array([1.0, 1.0, 2.0, 0.0]), "haar", 1, 1, xp) * np.sqrt(2), 6)
    array([2., 2., 0., 2.])
    """
    h = FILTERS[wavelet]
    if levels == 0:
        return x
    if ndim == 1:
        a, d = _analysis(x, h, xp)
        return xp.concat([wavedec(a, wavelet, levels - 1, 1, xp), d], axis=-1)
    ll, hl, lh, hh = _analysis_2d(x, h, xp)
    top = xp.concat([wavedec(ll, wavelet, levels - 1, 2, xp), hl], axis=-1)
    return xp.concat([top, xp.concat([lh, hh], axis=-1)], axis=-2)


def waverec(c, wavelet: str, levels: int, ndim: int, xp):
    """Inverse (= adjoint) of :func:`wavedec`.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_compat.numpy as xp
    >>> from invdiff._wavelet import wavedec, waverec
    >>> x = np.arange(16.0).reshape(4, 4)
    >>> bool(np.allclose(waverec(wavedec(x, "db2", 1, 2, xp), "db2", 1, 2, xp), x))
    True
    """
    h = FILTERS[wavelet]
    if levels == 0:
        return c
    if ndim == 1:
        m = c.shape[-1] // 2
        return _synthesis(waverec(c[..., :m], wavelet, levels - 1, 1, xp), c[..., m:], h, xp)
    mh, mw = c.shape[-2] // 2, c.shape[-1] // 2
    ll = waverec(c[..., :mh, :mw], wavelet, levels - 1, 2, xp)
    return _synthesis_2d(ll, c[..., :mh, mw:], c[..., mh:, :mw], c[..., mh:, mw:], h, xp)
