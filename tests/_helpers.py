"""One comparison helper that also checks namespace, dtype and device (SciPy style)."""

from __future__ import annotations

import array_api_compat
import numpy as np


def to_numpy(x):
    """A host NumPy copy of any backend's array (for reference computations in tests)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):  # torch
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):  # cupy
        return x.get()
    return np.asarray(x)  # array_api_strict supports __array__ / buffer protocol


def from_numpy(a, xp, dtype=None, like=None):
    """``a`` (NumPy) as an array of namespace ``xp`` (on ``like``'s device if given)."""
    device = array_api_compat.device(like) if like is not None else None
    dtype = dtype if dtype is not None else xp.float64
    return xp.asarray(np.asarray(a), dtype=dtype, device=device)


def assert_close(actual, desired, *, rtol=1e-7, atol=0.0, xp=None, check_dtype=True, err_msg=""):
    """Assert ``actual`` ≈ ``desired``; for an array ``desired`` also namespace, dtype, device."""
    if array_api_compat.is_array_api_obj(desired) and not isinstance(desired, (float, int)):
        ns_a = array_api_compat.array_namespace(actual)
        ns_d = array_api_compat.array_namespace(desired)
        assert ns_a == ns_d, f"namespace {ns_a.__name__} != {ns_d.__name__}"
        if check_dtype:
            assert actual.dtype == desired.dtype, f"dtype {actual.dtype} != {desired.dtype}"
        assert array_api_compat.device(actual) == array_api_compat.device(desired)
        assert tuple(actual.shape) == tuple(desired.shape), (
            f"shape {tuple(actual.shape)} != {tuple(desired.shape)}")
    if xp is not None:
        assert array_api_compat.array_namespace(actual) == xp
    np.testing.assert_allclose(to_numpy(actual), to_numpy(desired), rtol=rtol, atol=atol,
                               err_msg=err_msg)
