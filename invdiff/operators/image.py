r"""Pixel-wise image operators: :class:`Identity` (denoising), :class:`Inpainting`,
:class:`Colorization`.

Their SVDs are exact and trivial: a selection of coordinates (identity, inpainting) or
one averaging row per pixel (colorization). Nothing here forms a matrix.
"""

from __future__ import annotations

import math

from .._array_api import check_array, device_of, index_dtype, namespace, wide_dtypes
from ._base import (
    SVDOperator,
    _batch,
    _home,
    _image_shape,
    _scatter,
    _scatter_index,
    _shape,
)

__all__ = ["Identity", "Inpainting", "Colorization"]


class Identity(SVDOperator):
    r"""The identity :math:`A = I` (denoising: :math:`y = x + n`).

    Parameters
    ----------
    in_shape : tuple of int
        Trailing shape of the signal, e.g. ``(C, H, W)`` or ``(N,)``.
    like : array, optional
        Home namespace/device/dtype of ``singulars`` (NumPy float64 by default); inputs of
        any namespace are accepted.

    Notes
    -----
    :math:`U = V = I`, :math:`s_i = 1`, rank :math:`N = \prod` ``in_shape``; ``Vt``
    flattens, ``V`` reshapes. DMPS (Meng & Kabashima) uses it for denoising with
    :math:`\sigma_y = 0.5`.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.Identity((1, 2, 2))
    >>> op.rank, op.Vt(np.ones((3, 1, 2, 2))).shape
    (4, (3, 4))
    """

    def __init__(self, in_shape, *, like=None):
        in_shape = _shape("in_shape", in_shape)
        super().__init__(in_shape, in_shape, like=like)
        self._n = math.prod(in_shape)

    def _build64(self, xp, device):
        return {"s": xp.ones(self._n, dtype=wide_dtypes(xp, device)[0], device=device)}

    def _Vt(self, xp, f, x):
        return xp.reshape(x, (*_batch(x, len(self.in_shape)), self._n))

    def _V(self, xp, f, z):
        return xp.reshape(z, (*_batch(z, 1), *self.in_shape))

    _Ut = _Vt
    _U = _V

    def _apply(self, xp, f, x):
        return x

    _adjoint = _apply


class Inpainting(SVDOperator):
    r"""Keep the pixels where ``mask`` is True, zero the others: :math:`y = m \odot x`.

    Parameters
    ----------
    mask : bool array
        True where a pixel is observed. ``(H, W)`` (shared by every channel) or
        ``(C, H, W)`` (per channel); any shape is accepted. The operator lives in the
        mask's namespace and device.
    in_shape : tuple of int, optional
        Trailing shape of the inputs. By default ``mask.shape``: with an ``(H, W)`` mask
        the channel axis is then a batch axis. Give ``(C, H, W)`` to broadcast an
        ``(H, W)`` mask over the channels, so that ``Vt`` covers all channels at once.

    Notes
    -----
    The output keeps the image shape (missing pixels are 0). The SVD is a selection:
    :math:`V = U = [e_j]_{m_j = 1}`, :math:`s_j = 1`, rank = number of observed entries,
    in row-major order of the (broadcast) mask.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> mask = np.array([[True, False], [False, True]])
    >>> op = ivd.operators.Inpainting(mask, in_shape=(3, 2, 2))
    >>> op.rank, op.apply(np.ones((3, 2, 2)))[0].tolist()
    (6, [[1.0, 0.0], [0.0, 1.0]])
    """

    _source_name = "mask"

    def __init__(self, mask, *, in_shape=None):
        check_array("mask", mask)
        xp = namespace(mask=mask)
        mask = _as_bool_mask(xp, mask)
        mshape = tuple(mask.shape)
        if in_shape is None:
            in_shape = mshape
        in_shape = _shape("in_shape", in_shape)
        if len(mshape) > len(in_shape) or tuple(in_shape[len(in_shape) - len(mshape):]) != mshape:
            raise ValueError(
                f"mask must have the trailing shape of in_shape, e.g. (H, W) or (C, H, W) = "
                f"{in_shape}; received mask of shape {mshape}")
        if not bool(xp.any(mask)):
            raise ValueError("mask must observe at least one pixel; received an all-False mask")
        self._source = xp.broadcast_to(mask, in_shape)
        self.mask = mask
        super().__init__(in_shape, in_shape)

    @classmethod
    def random(cls, in_shape, observed: float, *, rng, per_channel: bool = False, like=None):
        r"""Random pixels: a fraction ``observed`` of the pixels (rounded) is kept.

        Parameters
        ----------
        in_shape : tuple of int
            ``(C, H, W)``.
        observed : float
            Fraction of observed pixels in ``(0, 1]``.
        rng : invdiff.random.Generator
        per_channel : bool, default False
            Draw one mask per channel instead of one shared ``(H, W)`` mask.
        like : array, optional
            Namespace and device of the mask (NumPy by default).

        Examples
        --------
        >>> import invdiff as ivd
        >>> op = ivd.operators.Inpainting.random((3, 4, 4), 0.5, rng=ivd.random.Generator(0))
        >>> op.rank
        24
        """
        C, H, W = _image_shape("in_shape", in_shape)
        observed = float(observed)
        if not 0.0 < observed <= 1.0:
            raise ValueError(f"observed must be a fraction in (0, 1]; received {observed!r}")
        xp, device, dtype = _home(like)
        like0 = xp.zeros((), dtype=dtype, device=device)
        shape = (C, H, W) if per_channel else (H, W)
        n = math.prod(shape)
        k = max(1, round(observed * n))
        # the k pixels that a uniformly random permutation sends to 0..k-1
        mask = xp.reshape(rng.permutation(n, like=like0) < k, shape)
        return cls(mask, in_shape=(C, H, W))

    @classmethod
    def box(cls, in_shape, top: int, left: int, height: int, width: int, *, like=None):
        """A missing rectangle ``[top, top+height) x [left, left+width)`` in every channel.

        Examples
        --------
        >>> import invdiff as ivd
        >>> op = ivd.operators.Inpainting.box((3, 4, 4), 1, 1, 2, 2)
        >>> op.rank
        36
        """
        C, H, W = _image_shape("in_shape", in_shape)
        top, left, height, width = (int(v) for v in (top, left, height, width))
        if not (0 <= top and 0 <= left and height >= 1 and width >= 1
                and top + height <= H and left + width <= W):
            raise ValueError(
                f"box must lie inside the {H}x{W} image; received top={top}, left={left}, "
                f"height={height}, width={width}")
        xp, device, _ = _home(like)
        i = xp.arange(H, device=device)[:, None]
        j = xp.arange(W, device=device)[None, :]
        inside = (i >= top) & (i < top + height) & (j >= left) & (j < left + width)
        return cls(~inside, in_shape=(C, H, W))

    def _build64(self, xp, device):
        flat = xp.reshape(self._source, (-1,))
        return {
            "s": xp.ones(int(xp.sum(xp.astype(flat, index_dtype(xp, device)))),
                         dtype=wide_dtypes(xp, device)[0], device=device),
            "idx": xp.nonzero(flat)[0],
            "inv": _scatter_index(xp, flat),
            "mask": self._source,
        }

    def _flat(self, a):
        return (*_batch(a, len(self.in_shape)), math.prod(self.in_shape))

    def _Vt(self, xp, f, x):
        return xp.take(xp.reshape(x, self._flat(x)), f["idx"], axis=-1)

    def _V(self, xp, f, z):
        return xp.reshape(_scatter(xp, z, f["inv"]), (*_batch(z, 1), *self.in_shape))

    _Ut = _Vt
    _U = _V

    def _apply(self, xp, f, x):
        return xp.where(f["mask"], x, xp.zeros((), dtype=x.dtype, device=device_of(x)))

    _adjoint = _apply


def _as_bool_mask(xp, mask):
    if xp.isdtype(mask.dtype, "bool"):
        return mask
    if xp.isdtype(mask.dtype, ("integral", "real floating")):
        if bool(xp.all((mask == 0) | (mask == 1))):
            return mask != 0
        raise ValueError("mask must be boolean (or hold only 0 and 1); received other values")
    raise TypeError(f"mask must be a boolean array; received dtype {mask.dtype}")


class Colorization(SVDOperator):
    r"""Grayscale from color: the mean of the ``C`` channels, :math:`y = \frac1C \sum_c x_c`.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, H, W)``; the output is ``(1, H, W)``.
    like : array, optional
        Home namespace/device/dtype of ``singulars`` (NumPy float64 by default).

    Notes
    -----
    Per pixel :math:`A = \frac1C \mathbf 1^\top`, so :math:`s = 1/\sqrt C`,
    :math:`v = \mathbf 1/\sqrt C`, :math:`u = 1`; rank :math:`H W`. DMPS uses RGB
    averaging (1/3 each) with :math:`\sigma_y = 0.05`.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.Colorization((3, 2, 2))
    >>> x = np.stack([np.zeros((2, 2)), np.ones((2, 2)), 2 * np.ones((2, 2))])
    >>> op.apply(x).tolist()
    [[[1.0, 1.0], [1.0, 1.0]]]
    >>> round(float(op.singulars[0]) ** 2, 12)
    0.333333333333
    """

    def __init__(self, in_shape, *, like=None):
        C, H, W = _image_shape("in_shape", in_shape)
        super().__init__((C, H, W), (1, H, W), like=like)
        self._C, self._hw = C, H * W

    def _build64(self, xp, device):
        return {"s": xp.full(self._hw, 1.0 / math.sqrt(self._C), dtype=wide_dtypes(xp, device)[0],
                             device=device)}

    def _Vt(self, xp, f, x):
        total = xp.sum(x, axis=-3) / math.sqrt(self._C)
        return xp.reshape(total, (*_batch(x, 3), self._hw))

    def _V(self, xp, f, z):
        img = xp.reshape(z / math.sqrt(self._C), (*_batch(z, 1), 1, *self.in_shape[1:]))
        return xp.broadcast_to(img, (*_batch(z, 1), *self.in_shape)) * 1.0

    def _Ut(self, xp, f, y):
        return xp.reshape(y, (*_batch(y, 3), self._hw))

    def _U(self, xp, f, w):
        return xp.reshape(w, (*_batch(w, 1), *self.out_shape))

    def _apply(self, xp, f, x):
        return xp.mean(x, axis=-3, keepdims=True)

    def _adjoint(self, xp, f, y):
        return xp.broadcast_to(y / self._C, (*_batch(y, 3), *self.in_shape)) * 1.0
