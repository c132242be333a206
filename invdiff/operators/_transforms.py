r"""Fast orthonormal transforms on the last axis, written with ``xp`` only.

* :func:`dct` / :func:`idct`: orthonormal DCT-II and its inverse (DCT-III) through one
  complex FFT of length N (Makhoul 1980): with :math:`v = (x_0, x_2, \ldots, x_5, x_3, x_1)`
  (even samples, then odd samples reversed) and :math:`V = \mathrm{FFT}(v)`,

  .. math:: \sum_n x_n \cos\frac{\pi k (2n+1)}{2N} = \mathrm{Re}\big(e^{-i\pi k/2N} V_k\big),

  scaled by :math:`\sqrt{1/N}` (k = 0) and :math:`\sqrt{2/N}` (k > 0), as
  ``scipy.fft.dct(x, norm="ortho")``. The inverse uses
  :math:`V_k = e^{i\pi k/2N}(c_k - i\,c_{N-k})`, :math:`c_N = 0`.
* :func:`fwht`: the orthonormal Walsh–Hadamard transform in natural (Sylvester) order,
  :math:`H_{2n} = \begin{pmatrix} H_n & H_n \\ H_n & -H_n \end{pmatrix} / \sqrt2`,
  in :math:`\log_2 N` butterfly stages; it is its own inverse.

The index and twiddle arrays come from :func:`dct_tables`, built once per namespace.
"""

from __future__ import annotations

import math

from .._array_api import device_of

__all__ = ["dct_tables", "dct", "idct", "fwht"]


def dct_tables(xp, n: int, device) -> dict:
    """Permutations, twiddles and scales for :func:`dct` / :func:`idct` (float64/complex128)."""
    k = xp.arange(n, device=device)
    perm = xp.concat([k[0::2], xp.flip(k[1::2], axis=0)])
    inv_perm = xp.argsort(perm)
    angle = -math.pi / (2 * n) * xp.astype(k, xp.float64)
    twiddle = xp.astype(xp.cos(angle), xp.complex128) + 1j * xp.astype(xp.sin(angle), xp.complex128)
    scale = xp.full(n, math.sqrt(2.0 / n), dtype=xp.float64, device=device)
    scale = xp.where(k == 0, xp.full(n, math.sqrt(1.0 / n), dtype=xp.float64, device=device), scale)
    return {"perm": perm, "inv_perm": inv_perm, "twiddle": twiddle, "scale": scale}


def _complex(xp, a):
    return xp.astype(a, xp.complex64 if a.dtype == xp.float32 else xp.complex128)


def dct(xp, x, t):
    """Orthonormal DCT-II of ``x`` along the last axis (``t`` from :func:`dct_tables`)."""
    v = xp.take(x, t["perm"], axis=-1)
    V = xp.fft.fft(_complex(xp, v), axis=-1)
    return xp.real(t["twiddle"] * V) * t["scale"]


def idct(xp, X, t):
    """Inverse of :func:`dct` (its transpose: orthonormal DCT-III)."""
    c = X / t["scale"]
    zero = xp.zeros((*c.shape[:-1], 1), dtype=c.dtype, device=device_of(c))
    c_rev = xp.concat([zero, xp.flip(c, axis=-1)[..., :-1]], axis=-1)  # c_{N-k}, c_N = 0
    V = xp.conj(t["twiddle"]) * (_complex(xp, c) - 1j * _complex(xp, c_rev))
    v = xp.real(xp.fft.ifft(V, axis=-1))
    return xp.take(v, t["inv_perm"], axis=-1)


def fwht(xp, x):
    """Orthonormal fast Walsh–Hadamard transform along the last axis (length a power of 2)."""
    n = x.shape[-1]
    batch = tuple(x.shape[:-1])
    h = 1
    while h < n:
        y = xp.reshape(x, (*batch, n // (2 * h), 2, h))
        a, b = y[..., 0, :], y[..., 1, :]
        x = xp.reshape(xp.stack([a + b, a - b], axis=-2), (*batch, n))
        h *= 2
    return x / math.sqrt(n)
