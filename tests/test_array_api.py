"""invdiff._array_api: namespaces, devices, dtypes, and the validation errors."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import assert_close

from invdiff import _array_api as aa


def test_namespace_of_each_backend(xp):
    x = xp.zeros(3)
    assert aa.namespace(x=x) is xp or aa.namespace(x=x).__name__ == xp.__name__
    assert aa.namespace(x, None, 2.0, y=xp.ones(2)).__name__ == xp.__name__


def test_namespace_needs_an_array():
    with pytest.raises(TypeError, match="at least one array"):
        aa.namespace(1.0, None, t=3)


def test_mixed_backends_name_the_arguments():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"one backend.*x: numpy.*y: torch"):
        aa.namespace(x=np.zeros(2), y=torch.zeros(2))


def test_mixed_devices_raise_value_error():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"one device.*x is on cpu.*y is on meta"):
        aa.namespace(x=torch.zeros(2), y=torch.zeros(2, device="meta"))


def test_check_floating(xp):
    aa.check_floating("x", xp.zeros(2, dtype=xp.float32))
    with pytest.raises(TypeError, match="x must have a real floating dtype.*received .*int32"):
        aa.check_floating("x", xp.zeros(2, dtype=xp.int32))
    with pytest.raises(TypeError, match="x must be an array.*received list"):
        aa.check_floating("x", [1.0, 2.0])


def test_check_trailing_shape(xp):
    aa.check_trailing_shape("img", xp.zeros((2, 3, 4, 4)), (3, 4, 4))
    aa.check_trailing_shape("img", xp.zeros((3, 4, 4)), (3, 4, 4))
    with pytest.raises(ValueError, match=r"img must have shape \(\*batch, 3, 4, 4\); received "
                                         r"shape \(2, 4, 4\)"):
        aa.check_trailing_shape("img", xp.zeros((2, 4, 4)), (3, 4, 4))


def test_check_finite_allows_inf_refuses_nan(xp):
    aa.check_finite("edges", xp.asarray([-float("inf"), 0.0, float("inf")]))
    with pytest.raises(ValueError, match="y must not contain NaN"):
        aa.check_finite("y", xp.asarray([0.0, float("nan")]))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_check_positive_rejects(bad):
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        aa.check_positive("sigma", bad)


def test_check_positive_type():
    assert aa.check_positive("sigma", 2) == 2.0
    with pytest.raises(TypeError, match="sigma must be a positive real number"):
        aa.check_positive("sigma", "abc")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_asarray_like_keeps_namespace_device_dtype(xp, dtype):
    like = xp.zeros(1, dtype=getattr(xp, dtype))
    out = aa.asarray_like([1, 2], like)
    assert_close(out, xp.asarray([1.0, 2.0], dtype=like.dtype))
    same = aa.asarray_like(like, like)
    assert same.dtype == like.dtype


def test_asarray_like_refuses_other_backend():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="A: numpy"):
        aa.asarray_like(np.ones(2), torch.zeros(1), name="A")


def test_scalar_like_and_as_python_float(xp):
    like = xp.zeros(3, dtype=xp.float32)
    s = aa.scalar_like(2.5, like)
    assert s.shape == () and s.dtype == xp.float32
    assert aa.as_python_float(s) == 2.5
    assert aa.as_python_float(xp.asarray([4.0])) == 4.0
    assert aa.as_python_float(3) == 3.0
    with pytest.raises(ValueError, match="scalar time.*shape \\(2,\\)"):
        aa.as_python_float(xp.asarray([1.0, 2.0]))


def test_is_array_and_backend_name(xp):
    assert aa.is_array(xp.zeros(1))
    assert not aa.is_array(1.0) and not aa.is_array([1.0])
    assert aa.backend_name(xp.zeros(1)) in ("numpy", "torch", "array_api_strict", "cupy")
    assert aa.backend_name(1.5) == "float"


def test_read_only_input_is_not_copied_or_written():
    x = np.arange(3.0)
    x.setflags(write=False)
    out = aa.asarray_like(x, x)
    assert out is x and not x.flags.writeable
