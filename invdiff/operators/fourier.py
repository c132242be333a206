r"""Periodic (circular) blur through the FFT with a real orthogonal SVD.

A circular convolution is diagonalized by the DFT: :math:`A = F^{*} \mathrm{diag}(\hat k) F`.
The DFT basis is complex, but likelihoods need real :math:`U`, :math:`V`. Pair each
frequency :math:`\omega` with :math:`-\omega` (conjugate DFT coefficients of a real image):

* :math:`V`: the real orthonormal basis :math:`c_\omega = \sqrt2\,\mathrm{Re}\,e_\omega`,
  :math:`s_\omega = \sqrt2\,\mathrm{Im}\,e_\omega` for each pair, and the real vector
  :math:`e_\omega` itself for the self-conjugate frequencies (0 and Nyquist). With the
  orthonormal DFT :math:`\hat x`, the coordinates are :math:`\sqrt2\,\mathrm{Re}\,\hat x_\omega`
  at the pair's representative :math:`\omega \in P` and :math:`\sqrt2\,\mathrm{Im}\,\hat x_\omega`
  at its partner :math:`\omega \in N = -P` (this is :math:`\langle x, s_{-\omega}\rangle`),
  :math:`\hat x_\omega` on :math:`S`.
* :math:`\Sigma`: :math:`|\hat k_\omega|` at both members of a pair.
* :math:`U = V R`, where :math:`R` rotates each pair by the phase
  :math:`\theta_\omega = \arg \hat k_\omega`:
  :math:`A c = |\hat k|(\cos\theta\,c - \sin\theta\,s)` and
  :math:`A s = |\hat k|(\sin\theta\,c + \cos\theta\,s)`; on :math:`S`, :math:`\hat k_\omega`
  is real and :math:`R = \mathrm{sign}\,\hat k_\omega`.

Everything is elementwise on the frequency grid plus one gather (:math:`\omega \mapsto -\omega`),
so :math:`U`, :math:`V` and their transposes cost one FFT each.
"""

from __future__ import annotations

import math

from .._array_api import check_finite, is_array, namespace, wide_dtypes
from ._base import SVDOperator, _batch, _image_shape, _keep, _scatter, _scatter_index
from .separable import SeparableBlur

__all__ = ["CircularBlur"]


class CircularBlur(SVDOperator):
    r"""Convolution with any 2-D kernel and periodic boundary, through the FFT.

    .. math:: y[i, j] = \sum_{m, n} k[m, n]\, x[(i + c_h - m) \bmod H,\; (j + c_w - n) \bmod W],
              \qquad c = \lfloor (K - 1)/2 \rfloor

    (``scipy.signal.convolve2d(x, k, mode="same", boundary="wrap")``), the same kernel for
    every channel.

    Parameters
    ----------
    kernel : 2-D array or nested sequence of float
        ``(K_h, K_w)`` taps, no larger than the image. An array fixes the operator's
        namespace and device.
    in_shape : tuple of int
        ``(C, H, W)``; the output has the same shape.
    threshold : float, default 0.0
        Singular values :math:`|\hat k_\omega|` below it are dropped (the matching
        frequencies are removed from :meth:`apply` too). Note it applies to the 2-D
        values; the reference's 1-D level ``3e-2`` corresponds to about ``9e-4`` here.
    like : array, optional
        Home namespace when ``kernel`` is a sequence (NumPy float64 by default).

    Notes
    -----
    :math:`A x = \mathcal F^{-1}(\hat k \odot \mathcal F x)` with :math:`\hat k` the DFT of
    the kernel placed at the origin. Real orthogonal :math:`U`, :math:`V` are built from
    the DFT by pairing conjugate frequencies (see the module notes); :math:`s_\omega =
    |\hat k_\omega|`, ordered like the channel-major frequency grid (row-major), with the
    dropped frequencies removed.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> kernel = np.full((3, 3), 1 / 9)
    >>> op = ivd.operators.CircularBlur(kernel, in_shape=(1, 4, 4))
    >>> x = np.zeros((1, 4, 4)); x[0, 0, 0] = 9.0
    >>> op.apply(x)[0].round(12).tolist()[0]
    [1.0, 1.0, 0.0, 1.0]
    >>> z = op.Vt(x)
    >>> bool(np.allclose(op.U(op.singulars * z), op.apply(x)))
    True
    """

    def __init__(self, kernel, in_shape, *, threshold: float = 0.0, like=None):
        C, H, W = _image_shape("in_shape", in_shape)
        self.kernel = _kernel2d(kernel, H, W)
        if is_array(self.kernel):
            self._source_name, self._source = "kernel", self.kernel
        super().__init__((C, H, W), (C, H, W), threshold=threshold, like=like)

    @classmethod
    def gaussian(cls, in_shape, sigma: float = 3.0, size: int | None = None, *,
                 threshold: float = 0.0, like=None):
        """Periodic Gaussian blur, the outer product of :meth:`SeparableBlur.gaussian` taps.

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.operators.CircularBlur.gaussian((1, 16, 16), sigma=1.0, size=5).rank
        256
        """
        taps = SeparableBlur.gaussian(in_shape, sigma, size, threshold=0.0).kernel_row
        return cls(tuple(tuple(a * b for b in taps) for a in taps), in_shape,
                   threshold=threshold, like=like)

    @classmethod
    def uniform(cls, in_shape, size: int = 9, *, threshold: float = 0.0, like=None):
        """Periodic ``size x size`` box blur.

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.operators.CircularBlur.uniform((1, 8, 8), size=3).rank
        64
        """
        taps = SeparableBlur.uniform(in_shape, size, threshold=0.0).kernel_row
        return cls(tuple(tuple(a * b for b in taps) for a in taps), in_shape,
                   threshold=threshold, like=like)

    # -- factors ------------------------------------------------------------------------------
    def _build64(self, xp, device):
        C, H, W = self.in_shape
        real, cplx = wide_dtypes(xp, device)
        k = self.kernel
        k = xp.astype(k, real) if is_array(k) else xp.asarray(k, dtype=real, device=device)
        kh, kw = k.shape
        k = xp.concat([k, xp.zeros((kh, W - kw), dtype=real, device=device)], axis=1)
        k = xp.concat([k, xp.zeros((H - kh, W), dtype=real, device=device)], axis=0)
        # tap (c_h, c_w) at the origin: 'same' alignment
        k = xp.roll(k, shift=(-((kh - 1) // 2), -((kw - 1) // 2)), axis=(0, 1))
        k_hat = xp.fft.fftn(xp.astype(k, cplx))
        r = xp.reshape(xp.abs(k_hat), (-1,))
        keep = _keep(xp, r, self.threshold, H * W)

        a = xp.arange(H, device=device)[:, None]
        b = xp.arange(W, device=device)[None, :]
        idx = xp.reshape(a * W + b, (-1,))
        neg = xp.reshape(((-a) % H) * W + ((-b) % W), (-1,))
        P, N, S = idx < neg, idx > neg, idx == neg
        one = xp.ones(H * W, dtype=real, device=device)
        zero = xp.zeros(H * W, dtype=real, device=device)
        pos_r = xp.where(r > 0, r, one)
        re, im = xp.reshape(xp.real(k_hat), (-1,)), xp.reshape(xp.imag(k_hat), (-1,))
        # on S the DFT of a real kernel is real: force exact +-1 rotations there
        cos = xp.where(S, xp.where(re < 0, -one, one), xp.where(r > 0, re / pos_r, one))
        sin = xp.where(S | (r == 0), zero, im / pos_r)

        rt2, ir2 = math.sqrt(2.0), 1.0 / math.sqrt(2.0)
        keep_idx = xp.nonzero(keep)[0]
        s2 = xp.take(r, keep_idx, axis=0)
        s = xp.reshape(xp.broadcast_to(s2[None, :], (C, s2.shape[0])), (-1,))
        fP, fN, fS = (xp.astype(m, real) for m in (P, N, S))
        return {
            "s": s, "r2": s2.shape[0], "keep": keep_idx, "inv": _scatter_index(xp, keep),
            "neg": neg, "cos": cos, "sin": sin,
            # forward: z = w_re Re(x^) + w_im Im(x^); inverse: Re = a1 z + a2 Fz, Im = b1 z - b2 Fz
            "w_re": rt2 * fP + fS, "w_im": rt2 * fN,
            "a1": ir2 * fP + fS, "a2": ir2 * fN, "b1": ir2 * fN, "b2": ir2 * fP,
            "k_hat": xp.reshape(xp.where(keep, xp.reshape(k_hat, (-1,)),
                                         xp.zeros((), dtype=cplx, device=device)),
                                (H, W)),
        }

    # -- real DFT basis -------------------------------------------------------------------------
    def _coords(self, xp, f, x):
        """All H*W real coordinates <x, v_w> per channel: shape (*batch, C, H*W)."""
        X = xp.fft.fftn(_complex(xp, x), axes=(-2, -1), norm="ortho")
        X = xp.reshape(X, (*_batch(x, 3), self.in_shape[0], -1))
        return f["w_re"] * xp.real(X) + f["w_im"] * xp.imag(X)

    def _image(self, xp, f, z):
        """Inverse of :meth:`_coords` (the basis is orthonormal, so also its transpose)."""
        Fz = xp.take(z, f["neg"], axis=-1)
        re = f["a1"] * z + f["a2"] * Fz
        im = f["b1"] * z - f["b2"] * Fz
        G = _complex(xp, re) + 1j * _complex(xp, im)
        G = xp.reshape(G, (*z.shape[:-1], *self.in_shape[1:]))
        return xp.real(xp.fft.ifftn(G, axes=(-2, -1), norm="ortho"))

    def _select(self, xp, f, z):
        z = xp.take(z, f["keep"], axis=-1)
        return xp.reshape(z, (*z.shape[:-2], -1))

    def _spread(self, xp, f, w):
        w = xp.reshape(w, (*_batch(w, 1), self.in_shape[0], f["r2"]))
        return _scatter(xp, w, f["inv"])

    def _Vt(self, xp, f, x):
        return self._select(xp, f, self._coords(xp, f, x))

    def _V(self, xp, f, z):
        return self._image(xp, f, self._spread(xp, f, z))

    def _Ut(self, xp, f, y):
        z = self._coords(xp, f, y)
        return self._select(xp, f, f["cos"] * z - f["sin"] * xp.take(z, f["neg"], axis=-1))

    def _U(self, xp, f, w):
        z = self._spread(xp, f, w)
        return self._image(xp, f, f["cos"] * z + f["sin"] * xp.take(z, f["neg"], axis=-1))

    def _filter(self, xp, x, k_hat):
        X = xp.fft.fftn(_complex(xp, x), axes=(-2, -1), norm="ortho")
        return xp.real(xp.fft.ifftn(k_hat * X, axes=(-2, -1), norm="ortho"))

    def _apply(self, xp, f, x):
        return self._filter(xp, x, f["k_hat"])

    def _adjoint(self, xp, f, y):
        return self._filter(xp, y, xp.conj(f["k_hat"]))

    def __repr__(self) -> str:
        kh, kw = self.kernel.shape if is_array(self.kernel) else (len(self.kernel),
                                                                 len(self.kernel[0]))
        return (f"CircularBlur(kernel=({kh}, {kw}), in_shape={self.in_shape}, "
                f"threshold={self.threshold})")


def _complex(xp, a):
    return xp.astype(a, xp.complex64 if a.dtype == xp.float32 else xp.complex128)


def _kernel2d(k, H: int, W: int):
    if is_array(k):
        xp = namespace(kernel=k)
        if not xp.isdtype(k.dtype, "real floating"):
            raise TypeError(f"kernel must have a real floating dtype; received {k.dtype}")
        if k.ndim != 2:
            raise ValueError(f"kernel must be 2-D (K_h, K_w); received shape {tuple(k.shape)}")
        check_finite("kernel", k, xp)
        shape, nonzero = tuple(k.shape), bool(xp.any(k != 0))
    else:
        try:
            k = tuple(tuple(float(v) for v in row) for row in k)
        except (TypeError, ValueError):
            raise TypeError("kernel must be a 2-D array or a nested sequence of numbers; "
                            f"received {type(k).__name__}") from None
        if not k or len({len(row) for row in k}) != 1 or not k[0]:
            raise ValueError("kernel must be a non-empty rectangular 2-D sequence")
        if not all(math.isfinite(v) for row in k for v in row):
            raise ValueError("kernel must hold finite numbers")
        shape, nonzero = (len(k), len(k[0])), any(v != 0 for row in k for v in row)
    if not nonzero:
        raise ValueError("kernel must have at least one nonzero tap; received all zeros")
    if shape[0] > H or shape[1] > W:
        raise ValueError(f"kernel of shape {shape} is larger than the image ({H}, {W})")
    return k

