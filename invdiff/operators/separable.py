r"""Separable image operators: :class:`SeparableBlur` and :class:`SuperResolution`.

Both act on each channel as :math:`Y = A_h X A_w^\top` with small 1-D matrices
:math:`A_h` (rows) and :math:`A_w` (columns). With the 1-D SVDs
:math:`A_h = U_h S_h V_h^\top`, :math:`A_w = U_w S_w V_w^\top`, the 2-D operator
:math:`A_h \otimes A_w` has the SVD

.. math:: A_h \otimes A_w = (U_h \otimes U_w)(S_h \otimes S_w)(V_h \otimes V_w)^\top,

so the 2-D singular value of coordinate ``(i, j)`` is :math:`s_{h,i}\,s_{w,j}`: the outer
product of the 1-D vectors, flattened in the same row-major order as the coordinates
:math:`(V_h^\top X V_w)_{ij}` (and repeated per channel, channel-major, matching
:meth:`~invdiff.operators.SVDOperator.Vt`). Only the 1-D factors (``H x H``, ``W x W``)
are stored, computed with ``xp.linalg.svd`` in float64 (float32 on a device without it) once
per namespace and device.

The widely copied DDRM operators (Kawar et al. 2022, reused by DMPS) differ in two
ways that we deliberately do not reproduce: their 1-D blur matrix loops
``range(i - K//2, i + K//2)`` and so drops the last tap of an odd kernel, and their
``singulars()`` tiles the 2-D vector over channels (``repeat``) while their ``Vt``
puts channels innermost, which would need the values interleaved.
"""

from __future__ import annotations

import math

from .._array_api import check_finite, device_of, index_dtype, is_array, namespace, wide_dtypes
from ._base import SVDOperator, _image_shape, _keep

__all__ = ["SeparableBlur", "SuperResolution", "bicubic_weight"]

#: Threshold on 1-D singular values used by the DDRM/DMPS reference operators.
REFERENCE_THRESHOLD = 3e-2


class _Separable(SVDOperator):
    """Shared SVD machinery of :math:`Y_c = A_h X_c A_w^T` (subclasses give A_h, A_w)."""

    def _matrices64(self, xp, device):
        raise NotImplementedError

    def _svd1(self, xp, A):
        """Truncated 1-D SVD and the matrix it represents (``A`` itself if nothing dropped)."""
        U, s, Vt = xp.linalg.svd(A, full_matrices=False)
        # s is sorted in decreasing order, so the kept values form a prefix
        keep = _keep(xp, s, self.threshold, max(A.shape))
        r = int(xp.sum(xp.astype(keep, index_dtype(xp, device_of(s)))))
        U, s, Vt = U[:, :r], s[:r], Vt[:r, :]
        if r < min(A.shape):  # apply() must equal U diag(s) V^T: use the truncated matrix
            A = (U * s[None, :]) @ Vt
        return U, s, Vt, A

    def _build64(self, xp, device):
        A_h, A_w = self._matrices64(xp, device)
        U_h, s_h, Vt_h, A_h = self._svd1(xp, A_h)
        U_w, s_w, Vt_w, A_w = self._svd1(xp, A_w)
        C = self.in_shape[0]
        s2 = xp.reshape(s_h[:, None] * s_w[None, :], (1, -1))
        s = xp.reshape(xp.broadcast_to(s2, (C, s2.shape[1])), (-1,))
        (m_h, H), (m_w, W), r_h, r_w = A_h.shape, A_w.shape, s_h.shape[0], s_w.shape[0]
        # after heavy truncation the factored product U (s * V^T x) is cheaper than A_h X A_w^T
        dense_cost = m_h * H * W + m_h * W * m_w
        svd_cost = r_h * H * W + r_h * W * r_w + m_h * r_h * r_w + m_h * r_w * m_w
        return {
            "s": s, "r": (r_h, r_w), "factored": svd_cost < dense_cost,
            "Vt_h": Vt_h, "V_h": Vt_h.T, "Vt_w": Vt_w, "V_w": Vt_w.T,
            "U_h": U_h, "Ut_h": U_h.T, "U_w": U_w, "Ut_w": U_w.T,
            "A_h": A_h, "At_h": A_h.T, "A_w": A_w, "At_w": A_w.T,
        }

    def _core(self, f, a):
        """Reshape ``(*batch, rank)`` to ``(*batch, C, r_h, r_w)``."""
        r_h, r_w = f["r"]
        return (*a.shape[:-1], self.in_shape[0], r_h, r_w)

    def _Vt(self, xp, f, x):
        z = f["Vt_h"] @ x @ f["V_w"]
        return xp.reshape(z, (*z.shape[:-3], -1))

    def _V(self, xp, f, z):
        return f["V_h"] @ xp.reshape(z, self._core(f, z)) @ f["Vt_w"]

    def _Ut(self, xp, f, y):
        w = f["Ut_h"] @ y @ f["U_w"]
        return xp.reshape(w, (*w.shape[:-3], -1))

    def _U(self, xp, f, w):
        return f["U_h"] @ xp.reshape(w, self._core(f, w)) @ f["Ut_w"]

    def _apply(self, xp, f, x):
        if f["factored"]:
            return super()._apply(xp, f, x)
        return f["A_h"] @ x @ f["At_w"]

    def _adjoint(self, xp, f, y):
        if f["factored"]:
            return super()._adjoint(xp, f, y)
        return f["At_h"] @ y @ f["A_w"]


class SeparableBlur(_Separable):
    r"""Separable blur with zero padding and "same" output size.

    Each channel is convolved with the 2-D kernel :math:`k_{col} k_{row}^\top`:

    .. math:: y[i, j] = \sum_{m, n} k_{col}[m]\, k_{row}[n]\,
              x[i + c_{col} - m,\; j + c_{row} - n], \qquad c = \lfloor (K-1)/2 \rfloor,

    with :math:`x = 0` outside the image (``scipy.signal.convolve(..., mode="same")``).
    Every tap is used, for odd and even lengths.

    Parameters
    ----------
    kernel_row : 1-D array or sequence of float
        Taps applied along each row (the width axis ``W``).
    kernel_col : 1-D array or sequence of float, optional
        Taps applied along each column (the height axis ``H``); ``kernel_row`` if omitted.
    in_shape : tuple of int
        ``(C, H, W)``; the output has the same shape.
    threshold : float, default 3e-2
        1-D singular values below it are zeroed (dropped), as in the DDRM/DMPS reference
        operators (``ZERO = 3e-2``); ``0.0`` keeps the exact convolution (only values at
        rounding level are dropped).
    like : array, optional
        Home namespace when both kernels are sequences (NumPy float64 by default).
        Kernels given as arrays fix the namespace and device of the operator.

    Notes
    -----
    :math:`A = A_{col} \otimes A_{row}` with Toeplitz 1-D matrices
    :math:`(A)_{ij} = k[i + c - j]`; see the module notes for the SVD. The DMPS paper
    deblurs with a 9x9 uniform kernel (tables) and a Gaussian :math:`\sigma = 3`
    (31 taps), :math:`\sigma_y = 0.05`.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.SeparableBlur([0.25, 0.5, 0.25], in_shape=(1, 5, 5), threshold=0.0)
    >>> x = np.zeros((1, 5, 5)); x[0, 2, 2] = 1.0
    >>> op.apply(x)[0, 1:4, 2].tolist()
    [0.125, 0.25, 0.125]
    >>> op.rank
    25
    """

    def __init__(self, kernel_row, kernel_col=None, *, in_shape, threshold=REFERENCE_THRESHOLD,
                 like=None):
        C, H, W = _image_shape("in_shape", in_shape)
        if kernel_col is None:
            kernel_col = kernel_row
        self.kernel_row = _kernel1d("kernel_row", kernel_row, W, "W")
        self.kernel_col = _kernel1d("kernel_col", kernel_col, H, "H")
        arrays = {n: k for n, k in (("kernel_row", self.kernel_row),
                                    ("kernel_col", self.kernel_col)) if is_array(k)}
        if arrays:
            namespace(**arrays)  # both kernels on one backend and device
            self._source_name, self._source = next(iter(arrays.items()))
        super().__init__((C, H, W), (C, H, W), threshold=threshold, like=like)

    @classmethod
    def gaussian(cls, in_shape, sigma: float = 3.0, size: int | None = None, *,
                 threshold=REFERENCE_THRESHOLD, like=None):
        r"""Gaussian blur :math:`k[m] \propto \exp(-(m - c)^2 / 2\sigma^2)`, taps summing to 1.

        ``size`` defaults to :math:`2\lceil 5\sigma\rceil + 1` (31 taps for the paper's
        :math:`\sigma = 3`).

        Examples
        --------
        >>> import invdiff as ivd
        >>> op = ivd.operators.SeparableBlur.gaussian((3, 64, 64), sigma=3.0, size=31)
        >>> len(op.kernel_row), round(sum(op.kernel_row), 12)
        (31, 1.0)
        """
        sigma = float(sigma)
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0; received {sigma!r}")
        size = 2 * math.ceil(5 * sigma) + 1 if size is None else _size("size", size)
        c = (size - 1) / 2
        taps = [math.exp(-0.5 * ((m - c) / sigma) ** 2) for m in range(size)]
        total = math.fsum(taps)
        taps = tuple(t / total for t in taps)
        return cls(taps, taps, in_shape=in_shape, threshold=threshold, like=like)

    @classmethod
    def uniform(cls, in_shape, size: int = 9, *, threshold=REFERENCE_THRESHOLD, like=None):
        """Uniform (box) blur of ``size x size`` pixels, taps ``1/size``.

        Examples
        --------
        >>> import invdiff as ivd
        >>> op = ivd.operators.SeparableBlur.uniform((3, 64, 64), size=9)
        >>> op.kernel_row[0] * op.kernel_col[0] == 1 / 81
        True
        """
        size = _size("size", size)
        taps = (1.0 / size,) * size
        return cls(taps, taps, in_shape=in_shape, threshold=threshold, like=like)

    def _matrices64(self, xp, device):
        C, H, W = self.in_shape
        return (_toeplitz(xp, _taps64(xp, self.kernel_col, device), H, device),
                _toeplitz(xp, _taps64(xp, self.kernel_row, device), W, device))

    def __repr__(self) -> str:
        return (f"SeparableBlur(in_shape={self.in_shape}, taps=({len(self.kernel_col)}, "
                f"{len(self.kernel_row)}), threshold={self.threshold})")


class SuperResolution(_Separable):
    r"""Downsampling by an integer ``factor``: block average or strided bicubic.

    Parameters
    ----------
    factor : int
        Downsampling factor; ``H`` and ``W`` must be multiples of it.
    in_shape : tuple of int
        ``(C, H, W)``; the output is ``(C, H // factor, W // factor)``.
    kind : {"block", "bicubic"}, default "block"
        ``"block"``: mean of each ``factor x factor`` block. ``"bicubic"``: Keys cubic
        kernel (:math:`a = -0.5`) stretched by ``factor`` (``4 factor`` taps), taps
        normalized to sum 1, reflective padding (``x[-1] = x[0]``), output pixel ``k``
        centred at input position :math:`k f + (f - 1)/2` (pixel centres aligned, as in
        DDRM's ``SRConv`` and PIL).
    threshold : float, optional
        1-D singular values below it are dropped. Default ``3e-2`` for ``"bicubic"``
        (the reference operators) and ``0`` for ``"block"`` (whose singular values are
        all :math:`1/\sqrt{f}` per axis).
    like : array, optional
        Home namespace of ``singulars`` (NumPy float64 by default); inputs of any
        namespace are accepted.

    Notes
    -----
    Block: :math:`(A_{1D})_{kj} = 1/f` for :math:`j \in [kf, (k+1)f)`, so every 2-D singular
    value is :math:`1/f`. Bicubic: :math:`(A_{1D})_{kj} = \sum_{j' : \rho(j') = j} w(j' - c_k)`,
    :math:`w(d) = \kappa(d/f) / \sum_{d'} \kappa(d'/f)`, with :math:`\kappa` the Keys
    kernel (:func:`bicubic_weight`) and :math:`\rho` the reflection into
    :math:`[0, n)`. DMPS uses SR x4 (bicubic, 16 taps) with :math:`\sigma_y = 0.05`.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.SuperResolution(2, in_shape=(1, 4, 4))
    >>> op.apply(np.arange(16.0).reshape(1, 4, 4)).tolist()
    [[[2.5, 4.5], [10.5, 12.5]]]
    >>> op = ivd.operators.SuperResolution(4, in_shape=(3, 64, 64), kind="bicubic")
    >>> op.out_shape
    (3, 16, 16)
    """

    def __init__(self, factor: int, in_shape, kind: str = "block", *, threshold=None, like=None):
        C, H, W = _image_shape("in_shape", in_shape)
        if isinstance(factor, bool) or int(factor) != factor or factor < 1:
            raise ValueError(f"factor must be a positive integer; received {factor!r}")
        f = int(factor)
        if H % f or W % f:
            raise ValueError(
                f"in_shape height and width must be multiples of factor={f}; "
                f"received in_shape {(C, H, W)}")
        if kind not in ("block", "bicubic"):
            raise ValueError(f"kind must be 'block' or 'bicubic'; received {kind!r}")
        if threshold is None:
            threshold = REFERENCE_THRESHOLD if kind == "bicubic" else 0.0
        self.factor, self.kind = f, kind
        super().__init__((C, H, W), (C, H // f, W // f), threshold=threshold, like=like)

    def _matrices64(self, xp, device):
        build = _block_rows if self.kind == "block" else _bicubic_rows
        C, H, W = self.in_shape
        return tuple(xp.asarray(build(n, self.factor), dtype=wide_dtypes(xp, device)[0],
                                device=device) for n in (H, W))

    def __repr__(self) -> str:
        return (f"SuperResolution({self.factor}, in_shape={self.in_shape}, kind={self.kind!r}, "
                f"threshold={self.threshold})")


def bicubic_weight(t: float, a: float = -0.5) -> float:
    r"""Keys' cubic convolution kernel :math:`\kappa(t)` (support :math:`|t| < 2`).

    .. math:: \kappa(t) = \begin{cases}
              (a+2)|t|^3 - (a+3)|t|^2 + 1 & |t| \le 1 \\
              a|t|^3 - 5a|t|^2 + 8a|t| - 4a & 1 < |t| < 2 \\ 0 & \text{otherwise}
              \end{cases}

    Examples
    --------
    >>> from invdiff.operators import bicubic_weight
    >>> bicubic_weight(0.0), bicubic_weight(1.0), bicubic_weight(0.5)
    (1.0, 0.0, 0.5625)
    """
    t = abs(t)
    if t <= 1.0:
        return (a + 2.0) * t**3 - (a + 3.0) * t**2 + 1.0
    if t < 2.0:
        return a * t**3 - 5.0 * a * t**2 + 8.0 * a * t - 4.0 * a
    return 0.0


# -- 1-D matrices ----------------------------------------------------------------------------
def _block_rows(n: int, f: int) -> list[list[float]]:
    return [[1.0 / f if k * f <= j < (k + 1) * f else 0.0 for j in range(n)] for k in range(n // f)]


def _reflect(j: int, n: int) -> int:
    """Half-sample symmetric reflection into [0, n): ..., x1, x0 | x0, x1, ... (period 2n)."""
    j %= 2 * n
    return j if j < n else 2 * n - 1 - j


def _bicubic_rows(n: int, f: int) -> list[list[float]]:
    # offsets d = j - c_k of the taps are the same for every output pixel k
    offsets = [m + 0.5 - 2 * f for m in range(4 * f)] if f % 2 == 0 else \
        [float(m - 2 * f + 1) for m in range(4 * f - 1)]
    weights = [bicubic_weight(d / f) for d in offsets]
    total = math.fsum(weights)
    weights = [w / total for w in weights]
    rows = []
    for k in range(n // f):
        c = k * f + (f - 1) / 2
        row = [0.0] * n
        for d, w in zip(offsets, weights, strict=True):
            row[_reflect(round(c + d), n)] += w
        rows.append(row)
    return rows


def _taps64(xp, k, device):
    real = wide_dtypes(xp, device)[0]
    if is_array(k):
        return xp.astype(k, real)
    return xp.asarray(k, dtype=real, device=device)


def _toeplitz(xp, k, n: int, device):
    """(A)_ij = k[i + c - j] (zero outside the kernel), c = (K - 1) // 2: 'same' convolution."""
    K = k.shape[0]
    i = xp.arange(n, device=device)[:, None]
    j = xp.arange(n, device=device)[None, :]
    m = xp.reshape(i + (K - 1) // 2 - j, (-1,))
    inside = (m >= 0) & (m < K)
    taps = xp.take(k, xp.clip(m, 0, K - 1), axis=0)
    return xp.reshape(xp.where(inside, taps, xp.zeros((), dtype=k.dtype, device=device)), (n, n))


def _size(name: str, size) -> int:
    if isinstance(size, bool) or int(size) != size or size < 1:
        raise ValueError(f"{name} must be a positive integer; received {size!r}")
    return int(size)


def _kernel1d(name: str, k, n: int, axis: str):
    """Validate a 1-D kernel: an array (kept) or a sequence (a tuple of floats)."""
    if is_array(k):
        xp = namespace(**{name: k})
        if not xp.isdtype(k.dtype, "real floating"):
            raise TypeError(f"{name} must have a real floating dtype; received {k.dtype}")
        if k.ndim != 1:
            raise ValueError(f"{name} must be 1-D; received shape {tuple(k.shape)}")
        check_finite(name, k, xp)
        length, nonzero = k.shape[0], bool(xp.any(k != 0))
    else:
        try:
            k = tuple(float(v) for v in k)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a 1-D array or a sequence of numbers; "
                            f"received {type(k).__name__}") from None
        if not all(math.isfinite(v) for v in k):
            raise ValueError(f"{name} must hold finite numbers; received {k!r}")
        length, nonzero = len(k), any(v != 0 for v in k)
    if length < 1 or not nonzero:
        raise ValueError(f"{name} must have at least one nonzero tap; received length {length}")
    if length > n:
        raise ValueError(f"{name} has {length} taps, larger than the image ({axis} = {n})")
    return k
