r"""Base classes: :class:`LinearOperator` and :class:`SVDOperator` (implicit thin SVD).

An :class:`SVDOperator` represents :math:`A = U \Sigma V^\top` (thin SVD, ``rank``
singular values :math:`s_i > 0`) without forming a matrix. Subclasses describe their
factors once per array namespace and device, in float64 (:meth:`SVDOperator._build64`; float32
on a device without float64);
the base class validates inputs, casts the factors to the input's dtype and caches them,
so one operator serves NumPy, PyTorch, CuPy and array-api-strict inputs alike.

Shapes exclude batch dimensions: ``apply`` takes ``(*batch, *in_shape)`` and returns
``(*batch, *out_shape)``; ``Vt`` returns ``(*batch, rank)``.
"""

from __future__ import annotations

from typing import Any

from .._array_api import (
    check_at_least,
    check_floating,
    check_trailing_shape,
    device_of,
    index_dtype,
    is_array,
    namespace,
)

__all__ = ["LinearOperator", "SVDOperator"]


class LinearOperator:
    """A linear map acting on the trailing dimensions of its input.

    Attributes
    ----------
    in_shape, out_shape : tuple of int
        Trailing shapes of inputs and outputs; leading (batch) dimensions pass through.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.Identity((2, 3))
    >>> isinstance(op, ivd.operators.LinearOperator), op.in_shape, op.out_shape
    (True, (2, 3), (2, 3))
    """

    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    def apply(self, x):
        """:math:`A x` for ``x`` of shape ``(*batch, *in_shape)`` (subclasses implement it).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Identity((2,)).apply(np.array([1.0, 2.0])).tolist()
        [1.0, 2.0]
        """
        raise NotImplementedError

    def adjoint(self, y):
        r""":math:`A^\top y` for ``y`` of shape ``(*batch, *out_shape)`` (subclasses implement it).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Identity((2,)).adjoint(np.array([1.0, 2.0])).tolist()
        [1.0, 2.0]
        """
        raise NotImplementedError

    def __call__(self, x):
        return self.apply(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(in_shape={self.in_shape}, out_shape={self.out_shape})"


class SVDOperator(LinearOperator):
    r"""Linear operator with an implicit thin SVD :math:`A = U \Sigma V^\top`.

    Parameters
    ----------
    in_shape, out_shape : tuple of int
        Trailing shapes of inputs and outputs.
    threshold : float, default 0.0
        Singular values below ``threshold`` count as zero and are dropped from the
        SVD (and from :meth:`apply`, which always equals ``U(s * Vt(x))``). Values at
        the level of rounding error (:math:`s \le s_{max} \cdot n \cdot \epsilon`) are
        always dropped.

    Notes
    -----
    With :math:`r` = ``rank``, :math:`V \in \mathbb{R}^{N \times r}` and
    :math:`U \in \mathbb{R}^{M \times r}` have orthonormal columns and

    .. math:: A x = U\,\mathrm{diag}(s)\,V^\top x, \qquad
              A^{+} y = V\,\mathrm{diag}(1/s)\,U^\top y .

    Operators built from an array (a kernel, a mask, a matrix) live in that array's
    namespace and device; operators described by shapes only work on inputs of any
    namespace. :meth:`singulars_like` gives the singular values in the namespace,
    device and dtype of any input (what library code should use). The attribute
    ``singulars`` follows the last input the operator processed, so that
    ``op.U(op.singulars * op.Vt(x))`` works after any call with ``x``; before the first
    call it is in the home namespace: the array's, or ``like``'s (which then pins it),
    NumPy float64 by default.

    **Writing your own operator.** Subclass, call ``super().__init__(in_shape, out_shape)``
    and implement five hooks; the base class does the rest (input validation with clear
    errors, batch dimensions, casting and caching the factors per namespace, device and
    dtype, :meth:`pinv`, :meth:`rank`, :meth:`singulars_like`):

    ================================  ===================================================
    hook                              returns
    ================================  ===================================================
    ``factors(xp, device)``           dict of float64 arrays in ``xp`` on ``device``,
                                      with the 1-D singular values (> 0) under ``"s"``
    ``apply_Vt(xp, f, x)``            :math:`V^\top x`: ``(*b, *in_shape)`` → ``(*b, rank)``
    ``apply_V(xp, f, z)``             :math:`V z`: ``(*b, rank)`` → ``(*b, *in_shape)``
    ``apply_Ut(xp, f, y)``            :math:`U^\top y`: ``(*b, *out_shape)`` → ``(*b, rank)``
    ``apply_U(xp, f, w)``             :math:`U w`: ``(*b, rank)`` → ``(*b, *out_shape)``
    ``apply_A``, ``apply_At``         optional faster :math:`Ax`, :math:`A^\top y`
    ================================  ===================================================

    ``xp`` is the input's namespace and ``f`` the factors in the input's dtype: write the
    hooks with ``xp`` functions only and the operator runs on every backend. The columns of
    :math:`V` and :math:`U` must be orthonormal and :math:`s > 0` (drop zero singular
    values): :func:`invdiff.operators.check_svd` tests all of it on random inputs.
    (The built-in operators implement the same hooks under private names, ``_build64``,
    ``_Vt``, ...; either spelling works.)

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> op = ivd.operators.SuperResolution(2, in_shape=(1, 4, 4))
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> z = op.Vt(x)
    >>> z.shape, op.rank
    ((1, 4), 4)
    >>> bool(np.allclose(op.U(op.singulars * z), op.apply(x)))
    True

    A worked example: averaging pairs of neighbouring pixels along the width (a sensor
    that bins columns by 2). Each output pixel is :math:`(x_{2j} + x_{2j+1})/2`, a row
    :math:`(\tfrac12, \tfrac12)` of norm :math:`1/\sqrt 2`: so :math:`U = I`,
    :math:`s = 1/\sqrt 2`, and :math:`V^\top x = (x_{2j} + x_{2j+1})/\sqrt 2`.

    >>> import math
    >>> class BinColumns(ivd.operators.SVDOperator):
    ...     def __init__(self, in_shape):
    ...         C, H, W = in_shape
    ...         super().__init__(in_shape, (C, H, W // 2))
    ...     def factors(self, xp, device):
    ...         n = math.prod(self.out_shape)
    ...         return {"s": xp.full((n,), 1 / math.sqrt(2), dtype=xp.float64, device=device)}
    ...     def apply_Vt(self, xp, f, x):
    ...         pairs = xp.reshape(x, (*x.shape[:-1], x.shape[-1] // 2, 2))
    ...         v = xp.sum(pairs, axis=-1) / math.sqrt(2)
    ...         return xp.reshape(v, (*x.shape[:-3], -1))
    ...     def apply_V(self, xp, f, z):
    ...         v = xp.reshape(z, (*z.shape[:-1], *self.out_shape, 1)) / math.sqrt(2)
    ...         both = xp.concat([v, v], axis=-1)
    ...         return xp.reshape(both, (*z.shape[:-1], *self.in_shape))
    ...     def apply_Ut(self, xp, f, y):
    ...         return xp.reshape(y, (*y.shape[:-3], -1))
    ...     def apply_U(self, xp, f, w):
    ...         return xp.reshape(w, (*w.shape[:-1], *self.out_shape))
    ...     def apply_A(self, xp, f, x):  # optional: the direct form, exact and cheaper
    ...         return xp.mean(xp.reshape(x, (*x.shape[:-1], x.shape[-1] // 2, 2)), axis=-1)
    >>> op = BinColumns((1, 2, 4))
    >>> op.apply(np.array([[[1.0, 3.0, 0.0, 2.0], [4.0, 4.0, 5.0, 7.0]]])).tolist()
    [[[2.0, 1.0], [4.0, 6.0]]]
    >>> max(ivd.operators.check_svd(op).values()) < 1e-12
    True
    """

    #: Name of the array the operator was built from (for error messages), if any.
    _source_name: str | None = None
    _source: Any = None

    def __init__(self, in_shape, out_shape, *, threshold: float = 0.0, like=None):
        self.in_shape = _shape("in_shape", in_shape)
        self.out_shape = _shape("out_shape", out_shape)
        self.threshold = check_at_least("threshold", threshold)
        self._home = _home(like) if self._source is None else _home(self._source)
        self._pinned = like is not None
        self._last = None  # (xp, device, dtype) of the last input processed
        self._cache64: dict[tuple, dict] = {}
        self._cache: dict[tuple, dict] = {}

    # -- the subclass contract (public names; see the class docstring) ------------------
    def factors(self, xp, device) -> dict:
        """Subclass hook: the operator's constant arrays in namespace ``xp`` on ``device``, in
        float64 (float32 on a device without float64: build them in
        ``wide_dtypes(xp, device)``), as a dict that must hold ``"s"``, the 1-D singular
        values (> 0).

        Called once per (namespace, device); the base class casts every floating entry
        to the dtype of each input and caches it, and passes the dict as ``f`` to the
        other hooks. Put whatever the products need in it (a kernel, a mask, index
        arrays); non-floating entries are passed through unchanged.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> ivd.operators.Identity((2,)).factors(xp, "cpu")["s"].tolist()
        [1.0, 1.0]
        """
        if self._overrides("_build64"):
            return self._build64(xp, device)
        raise NotImplementedError(
            f"{type(self).__name__} must implement factors(xp, device), returning a dict of "
            "float64 arrays with the singular values under 's' (see SVDOperator)")

    def apply_Vt(self, xp, f, x):
        r"""Subclass hook: :math:`V^\top x` for ``x`` of shape ``(*batch, *in_shape)``, already
        validated; return ``(*batch, rank)``. ``f`` is the dict of :meth:`factors` in
        ``x``'s dtype.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> op = ivd.operators.Identity((2, 2))
        >>> op.apply_Vt(xp, op.factors(xp, "cpu"), np.ones((2, 2))).shape
        (4,)
        """
        if self._overrides("_Vt"):
            return self._Vt(xp, f, x)
        raise NotImplementedError(f"{type(self).__name__} must implement apply_Vt(xp, f, x)")

    def apply_V(self, xp, f, z):
        """Subclass hook: :math:`V z` for ``z`` of shape ``(*batch, rank)``; return
        ``(*batch, *in_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> op = ivd.operators.Identity((2, 2))
        >>> op.apply_V(xp, op.factors(xp, "cpu"), np.ones(4)).shape
        (2, 2)
        """
        if self._overrides("_V"):
            return self._V(xp, f, z)
        raise NotImplementedError(f"{type(self).__name__} must implement apply_V(xp, f, z)")

    def apply_Ut(self, xp, f, y):
        r"""Subclass hook: :math:`U^\top y` for ``y`` of shape ``(*batch, *out_shape)``;
        return ``(*batch, rank)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> op = ivd.operators.Identity((3,))
        >>> op.apply_Ut(xp, op.factors(xp, "cpu"), np.ones(3)).shape
        (3,)
        """
        if self._overrides("_Ut"):
            return self._Ut(xp, f, y)
        raise NotImplementedError(f"{type(self).__name__} must implement apply_Ut(xp, f, y)")

    def apply_U(self, xp, f, w):
        """Subclass hook: :math:`U w` for ``w`` of shape ``(*batch, rank)``; return
        ``(*batch, *out_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> op = ivd.operators.Identity((3,))
        >>> op.apply_U(xp, op.factors(xp, "cpu"), np.ones(3)).shape
        (3,)
        """
        if self._overrides("_U"):
            return self._U(xp, f, w)
        raise NotImplementedError(f"{type(self).__name__} must implement apply_U(xp, f, w)")

    def apply_A(self, xp, f, x):
        """Optional subclass hook: :math:`A x`; default ``U(s * Vt(x))``. Override it when
        the operator has a cheaper direct form (a convolution, a selection).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> op = ivd.operators.Colorization((3, 1, 1))
        >>> op.apply_A(xp, op.factors(xp, "cpu"), np.ones((3, 1, 1))).shape
        (1, 1, 1)
        """
        if self._overrides("_apply"):
            return self._apply(xp, f, x)
        return self._U(xp, f, f["s"] * self._Vt(xp, f, x))

    def apply_At(self, xp, f, y):
        r"""Optional subclass hook: :math:`A^\top y`; default ``V(s * Ut(y))``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> import array_api_compat.numpy as xp
        >>> op = ivd.operators.Colorization((3, 1, 1))
        >>> op.apply_At(xp, op.factors(xp, "cpu"), np.ones((1, 1, 1))).shape
        (3, 1, 1)
        """
        if self._overrides("_adjoint"):
            return self._adjoint(xp, f, y)
        return self._V(xp, f, f["s"] * self._Ut(xp, f, y))

    # The built-in operators implement the private names directly; by default each one
    # calls its public hook above, so a subclass may implement either spelling (and the
    # public names work on the built-in operators too).
    def _overrides(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(SVDOperator, name)

    def _build64(self, xp, device) -> dict:
        """Factors on ``device`` in ``wide_dtypes(xp, device)`` (float64 where the device has
        it, else float32); must contain ``"s"`` (1-D singular values)."""
        return self.factors(xp, device)

    def _Vt(self, xp, f, x):
        return self.apply_Vt(xp, f, x)

    def _V(self, xp, f, z):
        return self.apply_V(xp, f, z)

    def _Ut(self, xp, f, y):
        return self.apply_Ut(xp, f, y)

    def _U(self, xp, f, w):
        return self.apply_U(xp, f, w)

    def _apply(self, xp, f, x):
        if self._overrides("apply_A"):
            return self.apply_A(xp, f, x)
        return self._U(xp, f, f["s"] * self._Vt(xp, f, x))

    def _adjoint(self, xp, f, y):
        if self._overrides("apply_At"):
            return self.apply_At(xp, f, y)
        return self._V(xp, f, f["s"] * self._Ut(xp, f, y))

    # -- factor cache ---------------------------------------------------------------------
    def _factors(self, xp, device, dtype) -> dict:
        key = (xp.__name__, str(device), str(dtype))
        if key not in self._cache:
            key64 = key[:2]
            if key64 not in self._cache64:
                f64 = self._build64(xp, device)
                if f64["s"].shape[0] == 0:
                    raise ValueError(
                        f"threshold={self.threshold} leaves no singular value above it; "
                        f"received an operator of rank 0 ({self!r})")
                self._cache64[key64] = f64
            self._cache[key] = {k: _cast(xp, v, dtype) for k, v in self._cache64[key64].items()}
        return self._cache[key]

    def _home_factors(self) -> dict:
        xp, device, dtype = self._home if (self._pinned or self._last is None) else self._last
        return self._factors(xp, device, dtype)

    def _enter(self, name: str, a, trailing=None):
        """Validate an input and return its namespace and the factors in its dtype.

        ``trailing=None`` means spectral coordinates: shape ``(*batch, rank)``."""
        check_floating(name, a)
        if self._source is not None:
            xp = namespace(**{name: a, self._source_name: self._source})
        else:
            xp = namespace(**{name: a})
        if trailing is not None:
            check_trailing_shape(name, a, trailing)
        f = self._factors(xp, device_of(a), a.dtype)
        if trailing is None:
            check_trailing_shape(name, a, (f["s"].shape[0],))
        self._last = (xp, device_of(a), a.dtype)
        return xp, f

    # -- public API -------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """Number of nonzero singular values kept (length of ``Vt(x)`` and ``singulars``).

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.operators.Colorization((3, 4, 5)).rank
        20
        """
        return int(self._home_factors()["s"].shape[0])

    @property
    def singulars(self):
        """Singular values :math:`s` (1-D, length ``rank``).

        In the namespace, device and dtype of the last input processed (the home namespace
        before any; see the class notes). The order matches the coordinates of :meth:`Vt`
        and :meth:`Ut`; it is not sorted.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> op = ivd.operators.SuperResolution(2, in_shape=(1, 4, 4))
        >>> op.singulars.round(12).tolist()
        [0.5, 0.5, 0.5, 0.5]
        >>> _ = op.Vt(np.zeros((1, 4, 4), dtype=np.float32))
        >>> op.singulars.dtype
        dtype('float32')
        """
        return self._home_factors()["s"]

    def singulars_like(self, x):
        """Singular values in the namespace, device and floating dtype of ``x``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> op = ivd.operators.Colorization((3, 2, 2))
        >>> op.singulars_like(np.zeros(1, dtype=np.float32)).dtype
        dtype('float32')
        """
        check_floating("x", x)
        xp = namespace(x=x) if self._source is None else namespace(
            x=x, **{self._source_name: self._source})
        return self._factors(xp, device_of(x), x.dtype)["s"]

    def apply(self, x):
        """:math:`A x`; ``x`` has shape ``(*batch, *in_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Colorization((3, 1, 1)).apply(np.ones((3, 1, 1))).shape
        (1, 1, 1)
        """
        xp, f = self._enter("x", x, self.in_shape)
        return self._apply(xp, f, x)

    def adjoint(self, y):
        r""":math:`A^\top y`; ``y`` has shape ``(*batch, *out_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Colorization((3, 1, 1)).adjoint(np.ones((1, 1, 1))).shape
        (3, 1, 1)
        """
        xp, f = self._enter("y", y, self.out_shape)
        return self._adjoint(xp, f, y)

    def Vt(self, x):
        r""":math:`V^\top x`, shape ``(*batch, rank)`` (spectral coordinates of ``x``).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Identity((2, 2)).Vt(np.ones((5, 2, 2))).shape
        (5, 4)
        """
        xp, f = self._enter("x", x, self.in_shape)
        return self._Vt(xp, f, x)

    def V(self, z):
        """:math:`V z` for ``z`` of shape ``(*batch, rank)``; returns ``(*batch, *in_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Identity((2, 2)).V(np.ones(4)).shape
        (2, 2)
        """
        xp, f = self._enter("z", z)
        return self._V(xp, f, z)

    def Ut(self, y):
        r""":math:`U^\top y`, shape ``(*batch, rank)``, for ``y`` of shape ``(*batch, *out_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Colorization((3, 2, 2)).Ut(np.ones((1, 2, 2))).shape
        (4,)
        """
        xp, f = self._enter("y", y, self.out_shape)
        return self._Ut(xp, f, y)

    def U(self, w):
        """:math:`U w` for ``w`` of shape ``(*batch, rank)``; returns ``(*batch, *out_shape)``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.operators.Colorization((3, 2, 2)).U(np.ones(4)).shape
        (1, 2, 2)
        """
        xp, f = self._enter("w", w)
        return self._U(xp, f, w)

    def pinv(self, y):
        r"""Moore–Penrose pseudo-inverse :math:`A^{+} y = V \mathrm{diag}(1/s) U^\top y`.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> op = ivd.operators.Colorization((3, 1, 1))
        >>> op.pinv(np.full((1, 1, 1), 2.0)).ravel().round(12).tolist()
        [2.0, 2.0, 2.0]
        """
        xp, f = self._enter("y", y, self.out_shape)
        return self._V(xp, f, self._Ut(xp, f, y) / f["s"])


# -- helpers shared by the operator modules ---------------------------------------------------
def _shape(name: str, shape) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
        ok = all(int(s) == s for s in shape)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a tuple of positive integers; received {shape!r}") from None
    if not ok or any(s < 1 for s in out):
        raise ValueError(f"{name} must be a tuple of positive integers; received {shape!r}")
    return out


def _image_shape(name: str, shape) -> tuple[int, int, int]:
    """``(C, H, W)`` as a tuple of positive integers."""
    out = _shape(name, shape)
    if len(out) != 3:
        raise ValueError(f"{name} must be an image shape (C, H, W); received {shape!r}")
    return out


def _home(like):
    """(xp, device, dtype) of the operator's home: ``like``'s, or NumPy float64 by default."""
    if like is None:
        import array_api_compat.numpy as xp_numpy  # the default home namespace only

        return xp_numpy, "cpu", xp_numpy.float64
    if not is_array(like):
        raise TypeError(f"like must be an array; received {type(like).__name__}")
    xp = namespace(like=like)
    device = device_of(like)
    if xp.isdtype(like.dtype, "real floating"):
        return xp, device, like.dtype
    return xp, device, xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]


def _cast(xp, a, dtype):
    """Cast float factors to ``dtype`` (complex ones to its complex twin); keep the rest."""
    if not is_array(a):
        return a
    if xp.isdtype(a.dtype, "real floating"):
        return a if a.dtype == dtype else xp.astype(a, dtype)
    if xp.isdtype(a.dtype, "complex floating"):
        cdtype = xp.complex64 if dtype == xp.float32 else xp.complex128
        return a if a.dtype == cdtype else xp.astype(a, cdtype)
    return a


def _keep(xp, s, threshold: float, n: int):
    """Boolean mask of singular values kept: ``s >= threshold`` and above rounding level."""
    s_max = float(xp.max(s)) if s.shape[0] else 0.0
    tol = s_max * max(n, 1) * float(xp.finfo(s.dtype).eps)
    return (s >= threshold) & (s > tol)


def _batch(a, n_trailing: int) -> tuple[int, ...]:
    return tuple(a.shape[: a.ndim - n_trailing])


def _scatter_index(xp, keep):
    """For a boolean mask ``keep`` of length n with r True entries, an index of length n
    mapping kept positions to 0..r-1 and dropped ones to r (a zero slot appended by
    :func:`_scatter`). Gathers only: no in-place writes, so it works in every namespace."""
    k = xp.astype(keep, index_dtype(xp, device_of(keep)))
    r = xp.sum(k)
    return xp.where(keep, xp.cumulative_sum(k) - 1, r)


def _scatter(xp, w, index):
    """``w`` of shape ``(..., r)`` placed at the kept positions of a length-n axis (zeros
    elsewhere), with ``index`` from :func:`_scatter_index`."""
    zero = xp.zeros((*w.shape[:-1], 1), dtype=w.dtype, device=device_of(w))
    return xp.take(xp.concat([w, zero], axis=-1), index, axis=-1)
