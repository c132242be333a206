"""Namespace, device and dtype helpers, and input validation.

Every public function of the core gets its namespace ``xp`` once, from its array
arguments, through :func:`namespace`; helpers take ``xp`` explicitly. Validation
helpers raise :class:`TypeError` / :class:`ValueError` whose message names the
argument, what was expected and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
from array_api_compat import device as device_of  # noqa: F401  (re-exported)
from array_api_compat import (
    is_array_api_obj,
    is_array_api_strict_namespace,
    is_cupy_namespace,
    is_numpy_namespace,
    is_torch_namespace,
)

__all__ = [
    "namespace",
    "device_of",
    "backend_name",
    "is_numpy_namespace",
    "is_torch_namespace",
    "is_cupy_namespace",
    "is_array_api_strict_namespace",
    "check_array",
    "check_floating",
    "check_trailing_shape",
    "check_finite",
    "check_positive",
    "check_at_least",
    "check_range",
    "asarray_like",
    "scalar_like",
    "as_python_float",
    "is_array",
    "synchronize",
    "clip",
    "wide_dtypes",
    "index_dtype",
]


def is_array(x: Any) -> bool:
    """True for an array of any supported backend (Python scalars are not arrays)."""
    return is_array_api_obj(x) and not isinstance(x, (int, float, complex, bool))


def backend_name(x: Any) -> str:
    """Human-readable backend of an array, for error messages (``'numpy'``, ``'torch'``...)."""
    if not is_array(x):
        return type(x).__name__
    module = type(x).__module__.split(".")[0]
    return {"array_api_strict": "array_api_strict"}.get(module, module)


def _describe(x: Any) -> str:
    if not is_array(x):
        return f"{type(x).__name__}"
    return (f"{backend_name(x)} array of shape {tuple(x.shape)}, dtype {x.dtype}, "
            f"device {device_of(x)}")


def namespace(*arrays: Any, **named: Any):
    """Array namespace shared by all array arguments.

    Positional arguments are anonymous; keyword arguments carry the argument names
    used in error messages. ``None`` and Python scalars are ignored.

    Raises
    ------
    TypeError
        If no argument is an array, or if arrays come from different backends.
    ValueError
        If arrays of one backend live on different devices.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._array_api import namespace
    >>> xp = namespace(x=np.zeros(3), y=np.ones(2))
    >>> xp.__name__
    'array_api_compat.numpy'
    """
    items = [(f"argument {i}", a) for i, a in enumerate(arrays)] + list(named.items())
    arrays = [(name, a) for name, a in items if is_array(a)]
    if not arrays:
        if len(items) == 1:  # name the one argument that should have been an array
            name, a = items[0]
            raise TypeError(f"{name} must be an array (numpy, torch, cupy, array_api_strict...); "
                            f"received {type(a).__name__}")
        raise TypeError("expected at least one array argument, received none")
    items = arrays
    try:
        xp = array_api_compat.array_namespace(*(a for _, a in items))
    except TypeError:
        found = ", ".join(f"{name}: {backend_name(a)}" for name, a in items)
        raise TypeError(f"all arrays must come from one backend; received {found}") from None
    first_name, first = items[0]
    for name, a in items[1:]:
        if device_of(a) != device_of(first):
            raise ValueError(
                f"all arrays must live on one device; {first_name} is on {device_of(first)}, "
                f"{name} is on {device_of(a)}"
            )
    return xp


def check_array(name: str, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` is an array of a supported backend."""
    if not is_array(x):
        raise TypeError(f"{name} must be an array (numpy, torch, cupy, array_api_strict...); "
                        f"received {type(x).__name__}")


def check_floating(name: str, x: Any, xp=None) -> None:
    """Raise ``TypeError`` unless ``x`` is a real floating-point array.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._array_api import check_floating
    >>> check_floating("x", np.zeros(2))
    >>> check_floating("x", np.zeros(2, dtype=int))
    Traceback (most recent call last):
    ...
    TypeError: x must have a real floating dtype (float32 or float64); received int64
    """
    check_array(name, x)
    xp = xp if xp is not None else namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(
            f"{name} must have a real floating dtype (float32 or float64); received {x.dtype}"
        )


def check_trailing_shape(name: str, x: Any, shape: Sequence[int]) -> None:
    """Raise ``ValueError`` unless ``x.shape`` ends with ``shape`` (batch dims may precede).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._array_api import check_trailing_shape
    >>> check_trailing_shape("x", np.zeros((4, 3, 8, 8)), (3, 8, 8))
    >>> check_trailing_shape("x", np.zeros((4, 8, 8)), (3, 8, 8))
    Traceback (most recent call last):
    ...
    ValueError: x must have shape (*batch, 3, 8, 8); received shape (4, 8, 8)
    """
    shape = tuple(int(s) for s in shape)
    got = tuple(x.shape)
    if len(got) < len(shape) or got[len(got) - len(shape):] != shape:
        spec = ", ".join(["*batch", *map(str, shape)])
        raise ValueError(f"{name} must have shape ({spec}); received shape {got}")


def check_finite(name: str, x: Any, xp=None) -> None:
    """Raise ``ValueError`` if ``x`` holds NaN (infinities are allowed: bin edges use them)."""
    xp = xp if xp is not None else namespace(x)
    if bool(xp.any(xp.isnan(x))):
        raise ValueError(f"{name} must not contain NaN; received {_describe(x)} with NaN entries")


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite and > 0
    (``TypeError`` for a bool or a non-number)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive real number, not a bool; received {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive real number; received {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0; received {value!r}")
    return v


def check_at_least(name: str, value: Any, low: float = 0.0) -> float:
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite and >= ``low``.

    Examples
    --------
    >>> from invdiff._array_api import check_at_least
    >>> check_at_least("sigma", 0)
    0.0
    >>> check_at_least("cond", 0.5, low=1.0)
    Traceback (most recent call last):
    ...
    ValueError: cond must be a finite number >= 1; received 0.5
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number >= {low:g}, not a bool; received "
                        f"{value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number >= {low:g}; received {value!r}") from None
    if not (math.isfinite(v) and v >= low):
        raise ValueError(f"{name} must be a finite number >= {low:g}; received {value!r}")
    return v


def check_range(name: str, value: Any) -> tuple[float, float]:
    """Return a pair ``(low, high)`` of finite numbers with ``low < high`` (a data range) as
    floats; ``TypeError`` for anything that is not a pair of numbers, else ``ValueError``.

    Examples
    --------
    >>> from invdiff._array_api import check_range
    >>> check_range("data_range", (-1, 1))
    (-1.0, 1.0)
    >>> check_range("data_range", (1.0, 1.0))
    Traceback (most recent call last):
    ...
    ValueError: data_range must be finite with low < high; received (1.0, 1.0)
    """
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers; "
                        f"received {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high; received {value!r}")
    return low, high


def asarray_like(value: Any, like: Any, *, name: str = "value", xp=None, dtype=None):
    """``value`` as an array in the namespace, device and (floating) dtype of ``like``.

    Python scalars and sequences are converted; arrays of another backend are refused
    (silent host transfers hide bugs and cost time).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._array_api import asarray_like
    >>> asarray_like([1, 2], np.zeros(1, dtype=np.float32)).dtype
    dtype('float32')
    """
    xp = xp if xp is not None else namespace(like)
    dtype = like.dtype if dtype is None else dtype
    if is_array(value):
        namespace(**{name: value, "the reference array": like})
        return value if value.dtype == dtype else xp.astype(value, dtype)
    return xp.asarray(value, dtype=dtype, device=device_of(like))


def scalar_like(value: float, like: Any, xp=None):
    """A 0-d array holding ``value`` with the namespace, device and dtype of ``like``."""
    xp = xp if xp is not None else namespace(like)
    return xp.asarray(value, dtype=like.dtype, device=device_of(like))


def as_python_float(t: Any) -> float:
    """A Python float from a Python number or a 0-d / one-element array."""
    if is_array(t):
        if math.prod(t.shape) != 1:
            raise ValueError(f"expected a scalar time; received an array of shape {tuple(t.shape)}")
        xp = namespace(t)
        return float(xp.reshape(t, (-1,))[0])
    return float(t)


def synchronize(x: Any) -> None:
    """Wait until the device holding ``x`` has finished all queued work (timing helper).

    Accelerators run array operations asynchronously: a wall-clock time taken right after a
    call measures only the queueing. This waits for the queue on ``x``'s device — torch CUDA
    (``torch.cuda.synchronize``), torch MPS, CuPy (the current stream); a no-op for host
    arrays (NumPy, torch CPU, array-api-strict) and for anything that is not an array.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._array_api import synchronize
    >>> synchronize(np.zeros(3))  # host array: returns at once
    """
    if not is_array(x):
        return
    xp = array_api_compat.array_namespace(x)
    if is_torch_namespace(xp):
        import torch

        kind = x.device.type
        if kind == "cuda":
            torch.cuda.synchronize(x.device)
        elif kind == "mps":
            torch.mps.synchronize()
    elif is_cupy_namespace(xp):
        import cupy

        with x.device:
            cupy.cuda.get_current_stream().synchronize()


def clip(x: Any, low: float | None, high: float | None, xp=None):
    """``x`` clipped to ``[low, high]`` (Python numbers, ``None`` = no bound), NaN kept.

    ``xp.clip`` of array-api-compat's CuPy wrapper writes through boolean masks, which waits
    for the device (the mask's count goes to the host); two ``where`` do not. Torch uses its
    ``clamp`` (one kernel instead of a comparison and a ``where`` per bound); NumPy the
    ``where`` too (array-api-compat's ``clip`` wrapper costs ~10 us a call, ``where`` ~1 us).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff._array_api import clip
    >>> clip(np.array([-2.0, 0.5, 3.0]), -1.0, 1.0)
    array([-1. ,  0.5,  1. ])
    """
    xp = xp if xp is not None else namespace(x)
    if is_torch_namespace(xp):
        return xp.clip(x, low, high)
    if low is not None:
        x = xp.where(x < low, low, x)
    if high is not None:
        x = xp.where(x > high, high, x)
    return x


def wide_dtypes(xp, device) -> tuple[Any, Any]:
    """``(real, complex)`` dtypes for one-time precise work (SVDs, eigendecompositions).

    ``(float64, complex128)``, or ``(float32, complex64)`` on a device without float64
    (Apple MPS; array-api-strict's ``"no_float64"`` device), read from
    ``xp.__array_namespace_info__().dtypes(device=...)``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from invdiff._array_api import wide_dtypes
    >>> wide_dtypes(xp, "cpu") == (xp.float64, xp.complex128)
    True
    """
    if _has_float64(xp, device):
        return xp.float64, xp.complex128
    return xp.float32, xp.complex64


def _has_float64(xp, device) -> bool:
    if is_torch_namespace(xp):  # torch's info lists float64 on MPS, which has none
        return getattr(device, "type", str(device)) != "mps"
    try:
        return "float64" in xp.__array_namespace_info__().dtypes(device=device)
    except (AttributeError, TypeError, ValueError):  # no inspection API: assume the standard
        return True


def index_dtype(xp, device):
    """The default indexing dtype of ``device`` (int64, or int32 where int64 is missing).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from invdiff._array_api import index_dtype
    >>> index_dtype(xp, "cpu") == xp.int64
    True
    """
    key = (xp.__name__, str(device))
    if key not in _INDEX_DTYPES:  # the namespace info is slow to build: once per device
        try:
            _INDEX_DTYPES[key] = xp.__array_namespace_info__().default_dtypes(
                device=device)["indexing"]
        except (AttributeError, TypeError, ValueError):
            _INDEX_DTYPES[key] = xp.int64
    return _INDEX_DTYPES[key]


_INDEX_DTYPES: dict = {}
