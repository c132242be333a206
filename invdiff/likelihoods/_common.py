"""Validation and small helpers shared by the likelihood modules."""

from __future__ import annotations

import math

from .._array_api import (
    check_array,
    check_floating,
    check_positive,
    check_trailing_shape,
    device_of,
    is_array,
    namespace,
)

__all__ = [
    "time_coefficients",
    "expand",
    "as_matrix",
    "check_process",
    "check_measurement",
    "check_bins",
    "Cached",
    "flatten",
    "sigma_value",
    "event_shape",
]


def check_process(process) -> None:
    """Raise ``TypeError`` unless ``process`` has ``a(t)`` and ``b(t)``."""
    if not (callable(getattr(process, "a", None)) and callable(getattr(process, "b", None))):
        raise TypeError("process must be a ForwardProcess (with a(t) and b(t)); "
                        f"received {type(process).__name__}")


def sigma_value(name: str, value) -> float:
    """A noise level as a positive Python float (``ValueError`` naming ``name`` otherwise)."""
    return check_positive(name, value)


def time_coefficients(process, t):
    """``(a_t, b_t)``: Python floats for a scalar time, arrays for an array of times.

    The pseudo-likelihoods divide by :math:`a_t`; a time where it vanishes (the flow's
    ``t = 1``) is refused with a ``ValueError`` naming ``t``.
    """
    a, b = process.a(t), process.b(t)
    if is_array(a):
        return a, b
    a, b = float(a), float(b)
    if not (a > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"t must be a time with a_t > 0 for {process!r}; received t={t!r} "
                         f"(a_t={a})")
    return a, b


def expand(c, ndim: int, like, xp):
    """A per-sample coefficient ready to broadcast against ``(*batch, <ndim event dims>)``.

    Python numbers pass through; arrays of shape ``(*batch,)`` get ``ndim`` trailing unit
    axes and ``like``'s dtype.
    """
    if not is_array(c):
        return c
    if c.dtype != like.dtype:
        c = xp.astype(c, like.dtype)
    return xp.reshape(c, tuple(c.shape) + (1,) * ndim)


def as_matrix(A, name: str = "A"):
    """``(matrix, operator_or_None)`` from an ``(M, N)`` array or a ``DenseMatrix``-like object."""
    op = None
    if not is_array(A) and is_array(getattr(A, "A", None)):
        op, A = A, A.A
    check_array(name, A)
    check_floating(name, A)
    if A.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (M, N); received shape {tuple(A.shape)}")
    xp = namespace(**{name: A})
    if not bool(xp.all(xp.isfinite(A))):
        raise ValueError(f"{name} must hold finite numbers; received NaN or infinite entries")
    return A, op


def check_measurement(name: str, y, like, trailing) -> None:
    """``y``: an array of ``like``'s backend, finite, ending with ``trailing`` (batch dims ok)."""
    check_array(name, y)
    check_floating(name, y)
    xp = namespace(**{name: y, "the operator": like}) if like is not None else namespace(y)
    check_trailing_shape(name, y, trailing)
    if bool(xp.any(xp.isnan(y))):
        n = int(xp.sum(xp.astype(xp.isnan(y), xp.int64)))
        raise ValueError(f"{name} must not contain NaN; received {n} NaN entries")
    if not bool(xp.all(xp.isfinite(y))):
        raise ValueError(f"{name} must be finite; received infinite entries")


def check_bins(lower, upper, A) -> None:
    """Bin edges ``[lower, upper]`` of ``A``'s ``M`` measurements: ``±inf`` allowed, no NaN.

    Raises ``ValueError`` naming ``lower``/``upper`` for a wrong length, NaN, ``lower > upper``,
    ``lower = +inf`` or ``upper = -inf``.
    """
    M = A.shape[0]
    for name, e in (("lower", lower), ("upper", upper)):
        check_array(name, e)
        check_floating(name, e)
        namespace(**{name: e, "A": A})
        check_trailing_shape(name, e, (M,))
    xp = namespace(lower=lower, upper=upper)
    for name, e in (("lower", lower), ("upper", upper)):
        if bool(xp.any(xp.isnan(e))):
            raise ValueError(f"{name} must not contain NaN (use -inf/+inf for open bins)")
    if bool(xp.any(lower == math.inf)):
        raise ValueError("lower must be < +inf (the lowest bin edge is -inf, never +inf)")
    if bool(xp.any(upper == -math.inf)):
        raise ValueError("upper must be > -inf (the highest bin edge is +inf, never -inf)")
    bad = lower > upper
    if bool(xp.any(bad)):
        n = int(xp.sum(xp.astype(bad, xp.int64)))
        lo = xp.reshape(xp.broadcast_arrays(lower, upper)[0][bad], (-1,))
        hi = xp.reshape(xp.broadcast_arrays(lower, upper)[1][bad], (-1,))
        raise ValueError(f"lower must be <= upper for every bin; received {n} bins with "
                         f"lower > upper (first: lower={float(lo[0])}, upper={float(hi[0])})")


class Cached:
    """Constant arrays of a likelihood, cast once per (dtype, device) of the inputs they meet."""

    def __init__(self, **arrays):
        self._home = arrays
        self._cache: dict[tuple, dict] = {}

    def like(self, x, xp):
        key = (str(x.dtype), str(device_of(x)))
        if key not in self._cache:
            self._cache[key] = {
                k: (v if v.dtype == x.dtype else xp.astype(v, x.dtype)) if is_array(v) else v
                for k, v in self._home.items()
            }
        return self._cache[key]


def event_shape(in_shape, op, n: int, matrix: str = "A") -> tuple[int, ...]:
    """The trailing shape of ``x_t``: ``in_shape``, else ``op.in_shape``, else ``(n,)``.

    Raises ``ValueError`` unless it holds the ``n`` columns of the matrix named ``matrix``.
    """
    if in_shape is None:
        in_shape = getattr(op, "in_shape", None) or (n,)
    if isinstance(in_shape, (str, bytes)) or not hasattr(in_shape, "__iter__") or not all(
            isinstance(v, int) and not isinstance(v, bool) or hasattr(v, "__index__")
            and not isinstance(v, bool) for v in in_shape):
        raise TypeError(f"in_shape must be a tuple of integers; received {in_shape!r}")
    in_shape = tuple(int(v) for v in in_shape)
    if math.prod(in_shape) != n:
        raise ValueError(f"in_shape must have {n} elements (the columns of {matrix}); "
                         f"received {in_shape}")
    return in_shape


def flatten(x, in_shape, xp, name: str = "x_t"):
    """``(*batch, *in_shape) -> (*batch, N)`` and the batch shape."""
    check_trailing_shape(name, x, in_shape)
    batch = tuple(x.shape[: x.ndim - len(in_shape)])
    return xp.reshape(x, batch + (math.prod(in_shape),)), batch
