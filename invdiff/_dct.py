r"""Orthonormal DCT-II and its inverse (DCT-III) through the Array API ``fft`` extension.

The unnormalised DCT-II of :math:`x \in \mathbb{R}^N` is
:math:`X_k = \sum_n x_n \cos(\pi k (2n + 1) / 2N)`; the orthonormal version multiplies
:math:`X_0` by :math:`\sqrt{1/N}` and :math:`X_{k>0}` by :math:`\sqrt{2/N}` (SciPy's
``norm="ortho"``), so the transform is an orthogonal matrix and its inverse is its transpose.

Computed with one length-:math:`N` FFT (Makhoul, "A fast cosine transform in one and two
dimensions", IEEE TASSP 1980): reorder :math:`v = (x_0, x_2, x_4, \ldots, x_5, x_3, x_1)`,
then :math:`X_k = \operatorname{Re}(e^{-i\pi k/2N} \hat v_k)`. The inverse uses the real-input
symmetry :math:`\operatorname{Im}(e^{-i\pi k/2N} \hat v_k) = -X_{N-k}` to rebuild
:math:`\hat v` from :math:`X` and undoes the reordering. Only slicing, ``flip`` and ``fft``:
no index arrays, so nothing is copied from the host at each call.

Private helper of :mod:`invdiff.baselines` (Lasso in a DCT basis) and of
:class:`invdiff.operators.SubsampledOrthogonal` (``kind="dct"``); ``xp`` comes from the input
and the twiddles are built in the input's dtype, so float32 stays float32.
"""

from __future__ import annotations

import math

from ._array_api import device_of, namespace

__all__ = ["DCTPlan", "transforms", "dct", "idct", "dctn", "idctn"]


class DCTPlan:
    """Orthonormal DCT-II / DCT-III along the last axis for length ``n``, precomputed once.

    The twiddle factors live on ``like``'s device and dtype, so an iterative solver pays for
    them once instead of at every transform.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_compat.numpy as xp
    >>> from invdiff._dct import DCTPlan
    >>> plan = DCTPlan(3, np.zeros(1), xp)
    >>> x = np.array([1.0, 2.0, 4.0])
    >>> bool(np.allclose(plan.inverse(plan.forward(x)), x))
    True
    """

    def __init__(self, n: int, like, xp):
        self.n, self.xp = int(n), xp
        device = device_of(like)
        k = xp.arange(self.n, dtype=like.dtype, device=device)
        theta = k * (math.pi / (2 * self.n))
        self.cos, self.sin = xp.cos(theta), xp.sin(theta)
        self.scale = xp.where(k == 0, xp.asarray(math.sqrt(1.0 / self.n), dtype=like.dtype,
                                                  device=device),
                              xp.asarray(math.sqrt(2.0 / self.n), dtype=like.dtype,
                                         device=device))
        self.cdtype = xp.complex64 if like.dtype == xp.float32 else xp.complex128

    def forward(self, x):
        xp = self.xp
        # Makhoul's reordering: even-indexed samples, then odd-indexed ones reversed
        v = xp.concat([x[..., ::2], xp.flip(x[..., 1::2], axis=-1)], axis=-1)
        v_hat = xp.fft.fft(xp.astype(v, self.cdtype), axis=-1)
        return (self.cos * xp.real(v_hat) + self.sin * xp.imag(v_hat)) * self.scale

    def inverse(self, c):
        xp = self.xp
        X = c / self.scale
        # X_{N-k} for k = 0..N-1, with X_N := 0
        X_rev = xp.concat([xp.zeros_like(X[..., :1]), xp.flip(X[..., 1:], axis=-1)], axis=-1)
        re = self.cos * X + self.sin * X_rev
        im = self.sin * X - self.cos * X_rev
        v_hat = xp.astype(re, self.cdtype) + xp.astype(im, self.cdtype) * 1j
        v = xp.real(xp.fft.ifft(v_hat, axis=-1))
        # undo the reordering: interleave v[:h] (even samples) with reversed v[h:] (odd ones)
        h = (self.n + 1) // 2
        even, odd = v[..., :h], xp.flip(v[..., h:], axis=-1)
        if self.n % 2:
            odd = xp.concat([odd, xp.zeros_like(even[..., :1])], axis=-1)
        both = xp.reshape(xp.stack([even, odd], axis=-1), (*v.shape[:-1], 2 * h))
        return both[..., : self.n]


def _along(fn, x, axis, xp):
    if axis in (-1, x.ndim - 1):
        return fn(x)
    return xp.moveaxis(fn(xp.moveaxis(x, axis, -1)), -1, axis)


def transforms(shape, like, xp):
    """(forward, inverse) orthonormal DCT over the last ``len(shape)`` (1 or 2) axes.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_compat.numpy as xp
    >>> from invdiff._dct import transforms
    >>> fwd, inv = transforms((2, 3), np.zeros(1), xp)
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> bool(np.allclose(inv(fwd(x)), x))
    True
    """
    if len(shape) == 1:
        plan = DCTPlan(shape[0], like, xp)
        return plan.forward, plan.inverse
    rows, cols = DCTPlan(shape[-2], like, xp), DCTPlan(shape[-1], like, xp)
    T = xp.matrix_transpose

    def forward(x):
        return T(rows.forward(T(cols.forward(x))))

    def inverse(c):
        return cols.inverse(T(rows.inverse(T(c))))

    return forward, inverse


def dct(x, axis: int = -1):
    """Orthonormal DCT-II of a real array along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._dct import dct
    >>> np.round(dct(np.ones(4)), 6)
    array([2., 0., 0., 0.])
    """
    xp = namespace(x=x)
    return _along(DCTPlan(x.shape[axis], x, xp).forward, x, axis, xp)


def idct(c, axis: int = -1):
    """Inverse of :func:`dct` (orthonormal DCT-III) along ``axis``.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._dct import dct, idct
    >>> x = np.array([1.0, -2.0, 0.5])
    >>> bool(np.allclose(idct(dct(x)), x))
    True
    """
    xp = namespace(c=c)
    return _along(DCTPlan(c.shape[axis], c, xp).inverse, c, axis, xp)


def dctn(x, axes=(-2, -1)):
    """Orthonormal DCT-II over several ``axes`` (separable).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._dct import dctn
    >>> np.round(dctn(np.ones((2, 2))), 6)
    array([[2., 0.],
           [0., 0.]])
    """
    for axis in axes:
        x = dct(x, axis=axis)
    return x


def idctn(c, axes=(-2, -1)):
    """Inverse of :func:`dctn`.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._dct import dctn, idctn
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> bool(np.allclose(idctn(dctn(x)), x))
    True
    """
    for axis in axes:
        c = idct(c, axis=axis)
    return c
