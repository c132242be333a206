"""Properties of every operator in invdiff.operators, through ONE factory (``OPERATORS``).

Each property runs on numpy, array-api-strict and torch (the ``xp`` fixture), for batch
shapes drawn by hypothesis: adjointness, A = U diag(s) V^T, orthonormality of U and V,
the Moore–Penrose conditions, and the singular values of the dense matrix built here
(``matrix``: only in tests, on small images).
"""

from __future__ import annotations

import math

import array_api_compat.numpy as xp_numpy
import numpy as np
import pytest
import scipy.linalg
from _helpers import assert_close, from_numpy, to_numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import invdiff as ivd
from invdiff import operators as ops

PROPERTY = settings(max_examples=4, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
BATCHES = st.sampled_from([(), (2,), (2, 1)])
SEEDS = st.integers(0, 2**16)


# -- the factory -----------------------------------------------------------------------------
def _bool(xp, shape, seed, p=0.6):
    return xp.asarray(np.random.default_rng(seed).random(shape) < p)


def _taps(xp, shape, seed):
    return from_numpy(np.random.default_rng(seed).random(shape) + 0.1, xp)


def _rank_deficient(xp, M, N, r, seed):
    g = np.random.default_rng(seed)
    return from_numpy(g.standard_normal((M, r)) @ g.standard_normal((r, N)), xp)


OPERATORS = {
    "identity": lambda xp: ops.Identity((1, 8, 8)),
    "inpainting_shared": lambda xp: ops.Inpainting(_bool(xp, (8, 12), 1), in_shape=(3, 8, 12)),
    "inpainting_per_channel": lambda xp: ops.Inpainting(_bool(xp, (3, 8, 12), 2)),
    "inpainting_hw": lambda xp: ops.Inpainting(_bool(xp, (6, 5), 3)),
    "sr_block": lambda xp: ops.SuperResolution(2, (3, 8, 12)),
    "sr_bicubic": lambda xp: ops.SuperResolution(2, (3, 8, 12), kind="bicubic"),
    "sr_bicubic_x4": lambda xp: ops.SuperResolution(4, (1, 16, 16), kind="bicubic", threshold=0),
    "sr_bicubic_x3": lambda xp: ops.SuperResolution(3, (1, 9, 12), kind="bicubic"),
    "blur_gaussian": lambda xp: ops.SeparableBlur.gaussian((3, 8, 12), sigma=1.0, size=5),
    "blur_uniform": lambda xp: ops.SeparableBlur.uniform((1, 8, 8), size=3),
    "blur_arrays": lambda xp: ops.SeparableBlur(_taps(xp, 4, 4), _taps(xp, 3, 5),
                                                in_shape=(2, 8, 12), threshold=0.0),
    "circular": lambda xp: ops.CircularBlur(_taps(xp, (3, 4), 6), (2, 8, 12)),
    "circular_odd": lambda xp: ops.CircularBlur(_taps(xp, (3, 2), 7), (1, 7, 9)),
    "circular_zeros": lambda xp: ops.CircularBlur.uniform((1, 8, 8), size=4),
    "colorization": lambda xp: ops.Colorization((3, 8, 12)),
    "dense_wide": lambda xp: ops.DenseMatrix(_taps(xp, (12, 20), 8) - 0.6),
    "dense_tall": lambda xp: ops.DenseMatrix(_taps(xp, (20, 12), 9) - 0.6),
    "dense_rank4": lambda xp: ops.DenseMatrix(_rank_deficient(xp, 10, 15, 4, 10)),
    "dct": lambda xp: ops.SubsampledOrthogonal(30, 10, kind="dct"),
    "dct_rows": lambda xp: ops.SubsampledOrthogonal(16, [5, 0, 9, 15], kind="dct"),
    "hadamard": lambda xp: ops.SubsampledOrthogonal(32, 12, kind="hadamard"),
}
NAMES = sorted(OPERATORS)
_CACHE: dict = {}


def make(name, xp):
    """The operator ``name`` for namespace ``xp`` (cached: factors are built once)."""
    key = (name, xp.__name__)
    if key not in _CACHE:
        _CACHE[key] = OPERATORS[name](xp)
    return _CACHE[key]


def matrix(op, like):
    """Dense (M, N) matrix of ``op`` from its action on the standard basis (tests only)."""
    xp = ivd._array_api.namespace(like)
    n = math.prod(op.in_shape)
    eye = xp.reshape(xp.eye(n, dtype=like.dtype, device=ivd._array_api.device_of(like)),
                     (n, *op.in_shape))
    cols = op.apply(eye)
    return xp.reshape(cols, (n, -1)).T


def _normal(xp, shape, seed, dtype=None):
    return from_numpy(np.random.default_rng(seed).standard_normal(shape), xp, dtype=dtype)


def _inner(xp, a, b, n_trailing):
    axes = tuple(range(a.ndim - n_trailing, a.ndim))
    return to_numpy(xp.sum(a * b, axis=axes)) if axes else to_numpy(a * b)


# -- properties ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(seed=SEEDS, batch=BATCHES)
def test_adjoint(xp, name, seed, batch):
    op = make(name, xp)
    x = _normal(xp, (*batch, *op.in_shape), seed)
    y = _normal(xp, (*batch, *op.out_shape), seed + 1)
    lhs = _inner(xp, op.apply(x), y, len(op.out_shape))
    rhs = _inner(xp, x, op.adjoint(y), len(op.in_shape))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(seed=SEEDS, batch=BATCHES)
def test_svd_reconstructs_apply(xp, name, seed, batch):
    op = make(name, xp)
    x = _normal(xp, (*batch, *op.in_shape), seed)
    z = op.Vt(x)
    assert tuple(z.shape) == (*batch, op.rank)
    assert_close(op.U(op.singulars_like(x) * z), op.apply(x), rtol=1e-10, atol=1e-10)
    y = _normal(xp, (*batch, *op.out_shape), seed + 1)
    assert tuple(op.Ut(y).shape) == (*batch, op.rank)
    assert_close(op.V(op.singulars_like(x) * op.Ut(y)), op.adjoint(y), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(seed=SEEDS, batch=BATCHES)
def test_orthonormal_factors(xp, name, seed, batch):
    op = make(name, xp)
    z = _normal(xp, (*batch, op.rank), seed)
    assert_close(op.Vt(op.V(z)), z, rtol=1e-10, atol=1e-10)
    assert_close(op.Ut(op.U(z)), z, rtol=1e-10, atol=1e-10)
    # norms are preserved, so V and U are isometries (not just left-inverses of Vt, Ut)
    np.testing.assert_allclose(_inner(xp, op.V(z), op.V(z), len(op.in_shape)),
                               _inner(xp, z, z, 1), rtol=1e-10)
    np.testing.assert_allclose(_inner(xp, op.U(z), op.U(z), len(op.out_shape)),
                               _inner(xp, z, z, 1), rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
@PROPERTY
@given(seed=SEEDS, batch=BATCHES)
def test_pinv_moore_penrose(xp, name, seed, batch):
    op = make(name, xp)
    x1, x2 = (_normal(xp, (*batch, *op.in_shape), seed + i) for i in range(2))
    y1, y2 = (_normal(xp, (*batch, *op.out_shape), seed + 2 + i) for i in range(2))
    tol = {"rtol": 1e-9, "atol": 1e-9}
    # A A+ A = A and A+ A A+ = A+
    assert_close(op.apply(op.pinv(op.apply(x1))), op.apply(x1), **tol)
    assert_close(op.pinv(op.apply(op.pinv(y1))), op.pinv(y1), **tol)
    # A A+ and A+ A are symmetric
    n_out, n_in = len(op.out_shape), len(op.in_shape)
    np.testing.assert_allclose(_inner(xp, op.apply(op.pinv(y1)), y2, n_out),
                               _inner(xp, y1, op.apply(op.pinv(y2)), n_out), **tol)
    np.testing.assert_allclose(_inner(xp, op.pinv(op.apply(x1)), x2, n_in),
                               _inner(xp, x1, op.pinv(op.apply(x2)), n_in), **tol)


@pytest.mark.parametrize("name", NAMES)
def test_dense_matrix_has_the_same_singular_values(xp, name):
    op = make(name, xp)
    like = xp.zeros(1, dtype=xp.float64)
    A = to_numpy(matrix(op, like))
    assert A.shape == (math.prod(op.out_shape), math.prod(op.in_shape))
    s_dense = np.linalg.svd(A, compute_uv=False)
    s_op = np.sort(to_numpy(op.singulars_like(like)))[::-1]
    assert s_op.shape == (op.rank,)
    np.testing.assert_allclose(s_dense[: op.rank], s_op, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(s_dense[op.rank:], 0.0, atol=1e-9)
    # the adjoint is the transpose and pinv is numpy's pseudo-inverse of the same matrix
    y = _normal(xp, (3, *op.out_shape), 0)
    Y = to_numpy(xp.reshape(y, (3, -1)))
    np.testing.assert_allclose(to_numpy(xp.reshape(op.adjoint(y), (3, -1))), Y @ A, atol=1e-10)
    pinv = np.linalg.pinv(A, rcond=1e-9)
    np.testing.assert_allclose(to_numpy(xp.reshape(op.pinv(y), (3, -1))), Y @ pinv.T,
                               rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_outputs_keep_namespace_dtype_and_shape(xp, name, dtype):
    op = make(name, xp)
    dt = getattr(xp, dtype)
    x = _normal(xp, (2, *op.in_shape), 0, dtype=dt)
    y = _normal(xp, (2, *op.out_shape), 1, dtype=dt)
    z = _normal(xp, (2, op.rank), 2, dtype=dt)
    cases = {"apply": (op.apply(x), op.out_shape), "adjoint": (op.adjoint(y), op.in_shape),
             "pinv": (op.pinv(y), op.in_shape), "Vt": (op.Vt(x), (op.rank,)),
             "Ut": (op.Ut(y), (op.rank,)), "V": (op.V(z), op.in_shape),
             "U": (op.U(z), op.out_shape), "singulars_like": (op.singulars_like(x), None)}
    for what, (out, shape) in cases.items():
        assert ivd._array_api.namespace(out) == xp, what
        assert out.dtype == dt, what
        if shape is not None:
            assert tuple(out.shape) == (2, *shape), what
    rtol = 1e-4 if dtype == "float32" else 1e-10
    ref = op.apply(_normal(xp, (2, *op.in_shape), 0))
    np.testing.assert_allclose(to_numpy(op.apply(x)), to_numpy(ref), rtol=rtol, atol=rtol)


def test_factory_lists_every_operator_class():
    classes = {type(OPERATORS[n](xp_numpy)) for n in NAMES}
    public = {getattr(ops, n) for n in ops.__all__ if isinstance(getattr(ops, n), type)}
    public -= {ops.LinearOperator, ops.SVDOperator}
    assert public <= classes


# -- separable SVD details -----------------------------------------------------------------
def _toeplitz_same(k, n):
    """'same' zero-padded convolution matrix, built independently with scipy.linalg."""
    k = np.asarray(k, dtype=float)
    c = (len(k) - 1) // 2
    col = np.zeros(n)
    row = np.zeros(n)
    for m, v in enumerate(k):
        d = m - c  # y[i] gets k[m] x[i - d]
        if d >= 0 and d < n:
            col[d] = v
        if d <= 0 and -d < n:
            row[-d] = v
    return scipy.linalg.toeplitz(col, row)


def test_separable_singulars_are_the_outer_product_in_vt_order():
    kr, kc = np.array([0.1, 0.5, 0.2, 0.4]), np.array([0.3, 0.6, 0.1])
    op = ops.SeparableBlur(kr, kc, in_shape=(2, 6, 7), threshold=0.0)
    s_h = np.linalg.svd(_toeplitz_same(kc, 6), compute_uv=False)
    s_w = np.linalg.svd(_toeplitz_same(kr, 7), compute_uv=False)
    expected = np.tile(np.outer(s_h, s_w).ravel(), 2)  # channel-major, (i, j) row-major
    np.testing.assert_allclose(op.singulars, expected, rtol=1e-12)
    # the coordinate (c, i, j) of Vt is scaled by exactly that value: A v = s u
    z = np.zeros(op.rank)
    z[1 * 42 + 3 * 7 + 5] = 1.0  # channel 1, i = 3, j = 5
    Av = op.apply(op.V(z))
    np.testing.assert_allclose(np.linalg.norm(Av), np.outer(s_h, s_w)[3, 5], rtol=1e-12)
    assert np.abs(Av[0]).max() == 0.0  # channel 0 untouched


def test_threshold_drops_small_one_d_singular_values():
    n = 64  # a 9-tap box on 64 pixels has 1-D singular values between 1e-3 and 3e-2
    full = ops.SeparableBlur.uniform((1, n, n), size=9, threshold=0.0)
    ref = ops.SeparableBlur.uniform((1, n, n), size=9)  # reference 3e-2
    s1 = np.linalg.svd(_toeplitz_same(np.full(9, 1 / 9), n), compute_uv=False)
    kept = int((s1 >= 3e-2).sum())
    assert 0 < kept < n - 5
    assert ref.rank == kept**2 and full.rank == n * n
    assert float(np.min(ref.singulars)) >= 3e-2**2
    # apply() is the truncated operator, consistent with its SVD
    x = np.random.default_rng(0).standard_normal((1, n, n))
    np.testing.assert_allclose(ref.U(ref.singulars * ref.Vt(x)), ref.apply(x), atol=1e-12)
    assert np.abs(ref.apply(x) - full.apply(x)).max() > 1e-3
    # values at rounding level are always dropped (exact null space of a 9-tap box on 32)
    assert ops.SeparableBlur.uniform((1, 32, 32), size=9, threshold=0.0).rank == 28**2


def test_circular_blur_threshold_and_zero_frequencies():
    op = ops.CircularBlur.uniform((1, 8, 8), size=4)
    # the 1-D DFT of a length-4 box on 8 points vanishes at k = 2, 4, 6
    assert op.rank == 25
    op2 = ops.CircularBlur.uniform((1, 8, 8), size=4, threshold=0.3)
    assert op2.rank < 25 and float(np.min(op2.singulars)) >= 0.3


# -- namespaces and homes --------------------------------------------------------------------
def test_shape_only_operators_accept_any_namespace(xp):
    op = ops.SuperResolution(2, (1, 4, 4), kind="bicubic")
    assert isinstance(op.singulars, np.ndarray)  # home: NumPy float64 by default
    x = _normal(xp, (1, 4, 4), 0, dtype=xp.float32)
    out = op.apply(x)
    assert ivd._array_api.namespace(out) == xp
    np.testing.assert_allclose(to_numpy(out), op.apply(to_numpy(x)), rtol=1e-6)
    # singulars follows the last input, so the contract expression works in any namespace
    op.apply(x)
    s = op.singulars
    assert ivd._array_api.namespace(s) == xp and s.dtype == xp.float32
    assert_close(op.U(s * op.Vt(x)), op.apply(x), rtol=1e-5, atol=1e-6)
    pinned = ops.Identity((2, 2), like=xp.zeros(1, dtype=xp.float32))
    pinned.apply(np.zeros((2, 2)))
    assert ivd._array_api.namespace(pinned.singulars) == xp
    assert pinned.singulars.dtype == xp.float32


@pytest.mark.parametrize("name", NAMES)
def test_read_only_inputs_are_never_written(name):
    op = make(name, xp_numpy)
    x = np.random.default_rng(0).standard_normal((2, *op.in_shape))
    y = np.random.default_rng(1).standard_normal((2, *op.out_shape))
    z = np.random.default_rng(2).standard_normal((2, op.rank))
    for a in (x, y, z):
        a.setflags(write=False)
    copies = [a.copy() for a in (x, y, z)]
    op.apply(x), op.adjoint(y), op.pinv(y), op.Vt(x), op.Ut(y), op.V(z), op.U(z)
    for a, c in zip((x, y, z), copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_array_operators_refuse_other_backends():
    import torch

    op = ops.Inpainting(np.ones((2, 2), dtype=bool))
    with pytest.raises(TypeError, match="one backend"):
        op.apply(torch.zeros(2, 2, dtype=torch.float64))
    op = ops.DenseMatrix(torch.eye(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="one backend"):
        op.Vt(np.zeros(3))
    # another dtype of the same backend is fine
    assert op.apply(torch.ones(3, dtype=torch.float32)).dtype == torch.float32


# -- matrices ----------------------------------------------------------------------------------
def test_dense_matrix_gram_eigh_and_attribute(xp):
    A = _normal(xp, (6, 4), 3)
    op = ops.DenseMatrix(A)
    assert op.A is A
    d, W = op.gram_eigh()
    assert ivd._array_api.namespace(d) == xp and d.dtype == A.dtype
    An = to_numpy(A)
    np.testing.assert_allclose(to_numpy(W) @ np.diag(to_numpy(d)) @ to_numpy(W).T, An @ An.T,
                               atol=1e-12)
    np.testing.assert_allclose(to_numpy(W).T @ to_numpy(W), np.eye(6), atol=1e-12)
    assert np.all(to_numpy(d) >= 0) and np.sum(to_numpy(d) < 1e-12) == 2  # M - N zeros
    assert op.gram_eigh()[1] is W  # cached


def test_dense_matrix_threshold_truncates():
    A = np.diag([3.0, 1.0, 0.01])
    op = ops.DenseMatrix(A, threshold=0.1)
    assert op.rank == 2
    np.testing.assert_allclose(op.apply(np.ones(3)), [3.0, 1.0, 0.0], atol=1e-14)


def test_gaussian_matrix_statistics_and_namespace(xp):
    like = xp.zeros(1, dtype=xp.float32)
    A = ops.gaussian_matrix(100, 400, rng=ivd.random.Generator(0), like=like)
    assert tuple(A.shape) == (100, 400) and A.dtype == xp.float32
    a = to_numpy(A)
    assert abs(a.var() * 100 - 1.0) < 0.035 and abs(a.mean()) < 0.003
    B = ops.gaussian_matrix(100, 400, rng=ivd.random.Generator(0), like=like)
    np.testing.assert_array_equal(to_numpy(B), a)


def test_ill_conditioned_matrix_spectrum(xp):
    like = xp.zeros(1, dtype=xp.float64)
    M, N, cond = 12, 30, 50.0
    A = to_numpy(ops.ill_conditioned_matrix(M, N, cond, rng=ivd.random.Generator(1), like=like))
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(s, s[0] * cond ** (-np.arange(M) / (M - 1)), rtol=1e-10)
    np.testing.assert_allclose((s**2).sum(), N, rtol=1e-12)
    A1 = to_numpy(ops.ill_conditioned_matrix(M, N, 1.0, rng=ivd.random.Generator(1), like=like))
    np.testing.assert_allclose(A1 @ A1.T, (N / M) * np.eye(M), atol=1e-10)


def test_correlated_matrix_uses_the_true_square_root():
    M, N, rho = 5, 7, -0.6
    A = ops.correlated_matrix(M, N, rho, rng=ivd.random.Generator(2))
    G = ivd.random.Generator(2).normal((M, N), like=np.zeros(1))

    def R(n):
        i = np.arange(n)
        return rho ** np.abs(i[:, None] - i[None, :])

    ref = np.real(scipy.linalg.sqrtm(R(M))) @ G @ np.real(scipy.linalg.sqrtm(R(N))) / np.sqrt(M)
    np.testing.assert_allclose(A, ref, atol=1e-10)
    A0 = ops.correlated_matrix(M, N, 0.0, rng=ivd.random.Generator(2))
    np.testing.assert_allclose(A0, G / np.sqrt(M), atol=1e-14)


def test_subsampled_orthogonal_rows_and_orthogonality(xp):
    op = ops.SubsampledOrthogonal(64, 20, kind="dct", rng=ivd.random.Generator(5))
    assert op.rows == tuple(sorted(op.rows)) and len(set(op.rows)) == 20
    assert op.rows == ops.SubsampledOrthogonal(64, 20, rng=ivd.random.Generator(5)).rows
    like = xp.zeros(1, dtype=xp.float64)
    A = to_numpy(matrix(op, like))
    np.testing.assert_allclose(A @ A.T, np.eye(20), atol=1e-12)
    np.testing.assert_allclose(to_numpy(op.singulars_like(like)), np.ones(20))


# -- bad input -----------------------------------------------------------------------------------
def test_wrong_trailing_shape_is_reported():
    op = ops.SeparableBlur.uniform((3, 8, 8), size=3)
    with pytest.raises(ValueError, match=r"x must have shape \(\*batch, 3, 8, 8\); received"):
        op.apply(np.zeros((3, 8, 9)))
    with pytest.raises(ValueError, match=r"z must have shape \(\*batch, "):
        op.V(np.zeros(5))
    with pytest.raises(ValueError, match=r"y must have shape"):
        ops.DenseMatrix(np.eye(3)).Ut(np.zeros(4))
    with pytest.raises(TypeError, match="x must have a real floating dtype"):
        op.apply(np.zeros((3, 8, 8), dtype=int))
    with pytest.raises(TypeError, match="x must be an array"):
        op.apply([[0.0]])


@pytest.mark.parametrize(("build", "exc", "match"), [
    (lambda: ops.SeparableBlur.uniform((1, 8, 8), size=9), ValueError,
     r"kernel_row has 9 taps, larger than the image \(W = 8\)"),
    (lambda: ops.SeparableBlur([1.0], np.ones(12), in_shape=(1, 10, 20)), ValueError,
     r"kernel_col has 12 taps, larger than the image \(H = 10\)"),
    (lambda: ops.SeparableBlur(np.ones((2, 2)), in_shape=(1, 8, 8)), ValueError, "1-D"),
    (lambda: ops.SeparableBlur([0.0, 0.0], in_shape=(1, 8, 8)), ValueError, "nonzero tap"),
    (lambda: ops.SeparableBlur.gaussian((1, 8, 8), sigma=-1.0), ValueError, "sigma"),
    (lambda: ops.CircularBlur(np.ones((5, 3)), (1, 4, 8)), ValueError,
     r"kernel of shape \(5, 3\) is larger than the image \(4, 8\)"),
    (lambda: ops.CircularBlur(np.ones(3), (1, 4, 8)), ValueError, "kernel must be 2-D"),
    (lambda: ops.Inpainting(np.ones((3, 5), dtype=bool), in_shape=(3, 4, 5)), ValueError,
     r"mask must have the trailing shape of in_shape.*received mask of shape \(3, 5\)"),
    (lambda: ops.Inpainting(np.zeros((4, 4), dtype=bool)), ValueError, "at least one pixel"),
    (lambda: ops.Inpainting(np.full((2, 2), 0.5)), ValueError, "mask must be boolean"),
    (lambda: ops.SuperResolution(3, (1, 8, 9)), ValueError, "multiples of factor=3"),
    (lambda: ops.SuperResolution(2, (1, 8, 8), kind="nearest"), ValueError, "kind must be"),
    (lambda: ops.SuperResolution(0, (1, 8, 8)), ValueError, "factor must be a positive"),
    (lambda: ops.Colorization((8, 8)), ValueError, r"in_shape must be an image shape"),
    (lambda: ops.Identity((2, -1)), ValueError, "in_shape must be a tuple of positive"),
    (lambda: ops.DenseMatrix(np.ones(3)), ValueError, "A must be a 2-D matrix"),
    (lambda: ops.DenseMatrix(np.array([[np.nan]])), ValueError, "NaN"),
    (lambda: ops.DenseMatrix(np.eye(2), threshold=-1.0), ValueError, "threshold must be"),
    (lambda: ops.SubsampledOrthogonal(24, 4, kind="hadamard"), ValueError, "power of 2"),
    (lambda: ops.SubsampledOrthogonal(8, [1, 1]), ValueError, "distinct"),
    (lambda: ops.SubsampledOrthogonal(8, [8]), ValueError, r"rows must lie in \[0, 8\)"),
    (lambda: ops.SubsampledOrthogonal(8, 9), ValueError, "1..N=8"),
    (lambda: ops.ill_conditioned_matrix(4, 8, 0.5, rng=ivd.random.Generator(0)), ValueError,
     "cond must be a finite number >= 1; received 0.5"),
    (lambda: ops.correlated_matrix(4, 8, 1.0, rng=ivd.random.Generator(0)), ValueError,
     r"rho must satisfy \|rho\| < 1; received 1.0"),
    (lambda: ops.correlated_matrix(4, 8, -1.5, rng=ivd.random.Generator(0)), ValueError,
     r"\|rho\| < 1"),
    (lambda: ops.gaussian_matrix(0, 8, rng=ivd.random.Generator(0)), ValueError,
     "M must be a positive integer"),
    (lambda: ops.SeparableBlur.uniform((1, 8, 8), size=3, threshold=2.0).rank, ValueError,
     "leaves no singular value"),
])
def test_bad_construction_raises(build, exc, match):
    with pytest.raises(exc, match=match):
        build()


# -- constructors and caching --------------------------------------------------------------------
def test_inpainting_random_and_box(xp):
    like = xp.zeros(1, dtype=xp.float32)
    shared = ops.Inpainting.random((3, 10, 10), 0.3, rng=ivd.random.Generator(0), like=like)
    assert shared.rank == 3 * 30 and tuple(shared.mask.shape) == (10, 10)
    per = ops.Inpainting.random((3, 10, 10), 0.3, rng=ivd.random.Generator(0),
                                per_channel=True, like=like)
    assert per.rank == 90 and tuple(per.mask.shape) == (3, 10, 10)
    m = to_numpy(per.mask)
    assert not (m[0] == m[1]).all()  # channels differ
    box = ops.Inpainting.box((2, 6, 7), top=1, left=2, height=3, width=4, like=like)
    expected = np.ones((6, 7), dtype=bool)
    expected[1:4, 2:6] = False
    np.testing.assert_array_equal(to_numpy(box.mask), expected)
    assert box.rank == 2 * (42 - 12)
    with pytest.raises(ValueError, match="box must lie inside the 6x7 image"):
        ops.Inpainting.box((2, 6, 7), top=4, left=0, height=3, width=1)
    with pytest.raises(ValueError, match=r"observed must be a fraction in \(0, 1\]"):
        ops.Inpainting.random((1, 4, 4), 1.5, rng=ivd.random.Generator(0))


def test_factors_are_built_once_per_namespace_and_cast_per_dtype(monkeypatch):
    import torch

    op = ops.SeparableBlur.gaussian((1, 8, 8), sigma=1.0, size=3)
    calls = []
    build = type(op)._build64
    monkeypatch.setattr(type(op), "_build64", lambda self, xp, d: calls.append(xp) or
                        build(self, xp, d))
    for _ in range(3):
        op.apply(np.zeros((1, 8, 8)))
        op.apply(np.zeros((1, 8, 8), dtype=np.float32))
    assert len(calls) == 1
    op.Vt(torch.zeros(1, 8, 8))
    assert len(calls) == 2


def test_identity_on_vectors_and_circular_presets():
    op = ops.Identity((5,))
    assert op.Vt(np.ones((2, 5))).shape == (2, 5) and op.rank == 5
    g = ops.CircularBlur.gaussian((1, 16, 16), sigma=1.0, size=5)
    s = ops.SeparableBlur.gaussian((1, 16, 16), sigma=1.0, size=5, threshold=0.0)
    x = np.zeros((1, 16, 16))
    x[0, 8, 8] = 1.0  # far from the border, periodic and zero-padded blurs agree
    np.testing.assert_allclose(g.apply(x), s.apply(x), atol=1e-14)


def test_truncated_blur_is_the_truncated_1d_svd_product():
    # the paper's Gaussian blur at the reference threshold keeps few 1-D singular values,
    # so apply() takes the factored path; it must equal the truncated separable operator
    op = ops.SeparableBlur.gaussian((2, 40, 40), sigma=3.0, size=31)
    assert op._home_factors()["factored"]
    U, s, Vt = np.linalg.svd(_toeplitz_same(op.kernel_row, 40))
    r = int((s >= 3e-2).sum())
    A1 = (U[:, :r] * s[:r]) @ Vt[:r]
    assert op.rank == 2 * r * r
    x = np.random.default_rng(0).standard_normal((3, 2, 40, 40))
    np.testing.assert_allclose(op.apply(x), A1 @ x @ A1.T, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(x), A1.T @ x @ A1, atol=1e-12)


# -- devices without float64 ---------------------------------------------------------------
class _NoFloat64:
    """array-api-strict on its "no_float64" device, seen through the factory: arrays are
    created there and "float64" requests get float32 (what a user of such a device has)."""

    def __init__(self, xs):
        self._xs, self.device = xs, xs.Device("no_float64")
        self.__name__ = "no_float64"

    def __getattr__(self, name):
        return getattr(self._xs, name)

    @property
    def float64(self):
        return self._xs.float32

    def asarray(self, obj, dtype=None, device=None, **kw):
        return self._xs.asarray(obj, dtype=dtype, device=device or self.device, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_operators_work_on_a_device_without_float64(name):
    """Factors are built in float32 there (before: every operator raised on float64)."""
    xs = pytest.importorskip("array_api_strict")
    dev = _NoFloat64(xs)
    op = OPERATORS[name](dev)
    cpu = xs.Device("CPU_DEVICE")
    host = lambda a: to_numpy(a.to_device(cpu))  # noqa: E731
    x = dev.asarray(np.random.default_rng(0).standard_normal((2, *op.in_shape)),
                    dtype=xs.float32)
    y = dev.asarray(np.random.default_rng(1).standard_normal((2, *op.out_shape)),
                    dtype=xs.float32)
    out = {"apply": op.apply(x), "adjoint": op.adjoint(y), "pinv": op.pinv(y),
           "svd": op.U(op.singulars_like(x) * op.Vt(x)), "back": op.V(op.Ut(y))}
    for what, a in out.items():
        assert a.dtype == xs.float32 and a.device == dev.device, what
    np.testing.assert_allclose(host(out["svd"]), host(out["apply"]), rtol=1e-4, atol=1e-4)
    # the same operator built in float64 on NumPy gives the same numbers
    ref = make(name, xp_numpy)
    np.testing.assert_allclose(host(out["apply"]), to_numpy(ref.apply(host(x).astype(np.float64))),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(host(out["adjoint"]),
                               to_numpy(ref.adjoint(host(y).astype(np.float64))),
                               rtol=1e-4, atol=1e-4)


def test_random_matrices_and_gram_on_a_device_without_float64():
    xs = pytest.importorskip("array_api_strict")
    like = xs.zeros(1, dtype=xs.float32, device=xs.Device("no_float64"))
    rng = ivd.random.Generator(0)
    for A in (ops.gaussian_matrix(6, 9, rng, like=like),
              ops.ill_conditioned_matrix(6, 9, cond=10.0, rng=rng, like=like),
              ops.correlated_matrix(6, 9, rho=0.5, rng=rng, like=like)):
        assert A.dtype == xs.float32 and A.device == like.device
        d, W = ops.DenseMatrix(A).gram_eigh()
        assert d.dtype == xs.float32 and W.device == like.device
