"""Operators against straightforward references built here: scipy.signal convolutions,
block means, PIL's bicubic resampling, a direct loop for strided bicubic, scipy.fft.dct
and scipy.linalg.hadamard. Small images, NumPy plus one run on the ``xp`` backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
import scipy.signal
from _helpers import from_numpy, to_numpy

from invdiff import operators as ops

RNG = np.random.default_rng(1234)


def _conv_same(x, k2d, boundary="fill"):
    """Per-channel 2-D 'same' convolution of (..., C, H, W) with scipy.signal."""
    flat = x.reshape(-1, *x.shape[-2:])
    out = [scipy.signal.convolve2d(img, k2d, mode="same", boundary=boundary) for img in flat]
    return np.stack(out).reshape(x.shape)


@pytest.mark.parametrize(("kr", "kc"), [(3, 3), (4, 5), (9, 9), (2, 1), (6, 4)])
def test_separable_blur_is_zero_padded_same_convolution(kr, kc):
    k_row, k_col = RNG.random(kr) + 0.1, RNG.random(kc) + 0.1
    op = ops.SeparableBlur(k_row, k_col, in_shape=(2, 11, 12), threshold=0.0)
    x = RNG.standard_normal((3, 2, 11, 12))
    np.testing.assert_allclose(op.apply(x), _conv_same(x, np.outer(k_col, k_row)), atol=1e-12)
    # and scipy.signal.convolve (the 'full'-centred definition) agrees for 1-D
    e = np.zeros(12)
    e[5] = 1.0
    row = op.apply(np.broadcast_to(e, (2, 11, 12)).copy())[0, 5] / k_col.sum()
    np.testing.assert_allclose(row, scipy.signal.convolve(e, k_row, mode="same"), atol=1e-12)


def test_every_tap_of_an_odd_kernel_is_used():
    # the widely copied reference drops the last tap: a 9-tap box would spread a delta
    # over 8 pixels only
    op = ops.SeparableBlur.uniform((1, 21, 21), size=9, threshold=0.0)
    x = np.zeros((1, 21, 21))
    x[0, 10, 10] = 81.0
    y = op.apply(x)
    np.testing.assert_allclose(y[0, 6:15, 6:15], np.ones((9, 9)), atol=1e-12)
    assert np.abs(y).sum() == pytest.approx(81.0)


def test_gaussian_preset_taps():
    op = ops.SeparableBlur.gaussian((1, 64, 64), sigma=3.0)
    w = scipy.signal.windows.gaussian(31, std=3.0)
    np.testing.assert_allclose(op.kernel_row, w / w.sum(), rtol=1e-12)
    assert op.kernel_col == op.kernel_row


@pytest.mark.parametrize("kshape", [(3, 3), (2, 4), (5, 1), (7, 9)])
def test_circular_blur_is_periodic_same_convolution(kshape):
    kernel = RNG.random(kshape)
    op = ops.CircularBlur(kernel, (2, 7, 10))
    x = RNG.standard_normal((2, 2, 7, 10))
    np.testing.assert_allclose(op.apply(x), _conv_same(x, kernel, "wrap"), atol=1e-12)
    # A = sum_m k[m] S_(m - c) with S_d = roll by d, so A^T = sum_m k[m] S_(c - m)
    y = RNG.standard_normal((2, 7, 10))
    c = [(s - 1) // 2 for s in kshape]
    adj = sum(kernel[m, n] * np.roll(y, (c[0] - m, c[1] - n), axis=(-2, -1))
              for m in range(kshape[0]) for n in range(kshape[1]))
    np.testing.assert_allclose(op.adjoint(y), adj, atol=1e-12)


def test_circular_blur_singulars_are_dft_magnitudes():
    kernel = RNG.random((3, 3))
    op = ops.CircularBlur(kernel, (1, 6, 8))
    padded = np.zeros((6, 8))
    padded[:3, :3] = kernel
    expected = np.sort(np.abs(np.fft.fft2(padded)).ravel())
    np.testing.assert_allclose(np.sort(op.singulars), expected, rtol=1e-12)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_block_super_resolution_is_the_block_mean(factor):
    op = ops.SuperResolution(factor, (3, 12, 24))
    x = RNG.standard_normal((2, 3, 12, 24))
    ref = x.reshape(2, 3, 12 // factor, factor, 24 // factor, factor).mean(axis=(3, 5))
    np.testing.assert_allclose(op.apply(x), ref, atol=1e-13)
    np.testing.assert_allclose(op.singulars, np.full(3 * 288 // factor**2, 1.0 / factor))


def _bicubic_loop(x, f, a=-0.5):
    """Direct strided bicubic of a 2-D image: weights at distances from output centres."""
    def kern(t):
        t = abs(t)
        if t <= 1:
            return (a + 2) * t**3 - (a + 3) * t**2 + 1
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0.0

    def resample_1d(v):
        n = len(v)
        padded = np.pad(v, 2 * f, mode="symmetric")  # x[-1] = x[0]
        out = []
        for k in range(n // f):
            centre = k * f + (f - 1) / 2
            js = [j for j in range(-2 * f, n + 2 * f) if abs(j - centre) < 2 * f]
            w = np.array([kern((j - centre) / f) for j in js])
            out.append(np.dot(w / w.sum(), padded[np.array(js) + 2 * f]))
        return np.array(out)

    rows = np.stack([resample_1d(r) for r in x])
    return np.stack([resample_1d(c) for c in rows.T]).T


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bicubic_super_resolution_matches_a_direct_loop(factor):
    n = 12 * factor // 2 if factor != 3 else 12
    op = ops.SuperResolution(factor, (1, n, n), kind="bicubic", threshold=0.0)
    x = RNG.standard_normal((n, n))
    np.testing.assert_allclose(op.apply(x[None])[0], _bicubic_loop(x, factor), atol=1e-12)


def test_bicubic_super_resolution_matches_pil_in_the_interior():
    Image = pytest.importorskip("PIL.Image")
    f, n = 4, 64
    x = RNG.random((n, n)).astype(np.float32)
    pil = np.asarray(Image.fromarray(x, mode="F").resize((n // f, n // f), Image.BICUBIC))
    op = ops.SuperResolution(f, (1, n, n), kind="bicubic", threshold=0.0)
    ours = op.apply(x[None].astype(np.float64))[0]
    # PIL renormalizes clipped kernels at the border instead of reflecting: compare inside
    np.testing.assert_allclose(ours[2:-2, 2:-2], pil[2:-2, 2:-2], atol=2e-5)


def test_bicubic_x4_kernel_has_16_taps_summing_to_one():
    op = ops.SuperResolution(4, (1, 64, 64), kind="bicubic", threshold=0.0)
    e = np.zeros((1, 64, 64))
    e[0, 30, 30] = 1.0
    # the adjoint of a delta at an output pixel is the 2-D kernel: 16 x 16 taps
    y = np.zeros((1, 16, 16))
    y[0, 7, 7] = 1.0
    k2d = op.adjoint(y)[0]
    assert (np.abs(k2d) > 0).sum() == 16 * 16
    np.testing.assert_allclose(k2d.sum(), 1.0, rtol=1e-12)


def test_colorization_and_inpainting_references():
    x = RNG.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(ops.Colorization((3, 4, 5)).apply(x), x.mean(axis=1, keepdims=True))
    mask = RNG.random((4, 5)) < 0.5
    op = ops.Inpainting(mask, in_shape=(3, 4, 5))
    np.testing.assert_array_equal(op.apply(x), x * mask)
    np.testing.assert_array_equal(op.Vt(x), x.reshape(2, -1)[:, np.broadcast_to(mask, (3, 4, 5))
                                                              .ravel()])


@pytest.mark.parametrize("N", [1, 2, 7, 16, 33])
def test_dct_rows_match_scipy(N):
    rows = sorted(RNG.choice(N, size=max(1, N // 2), replace=False).tolist())
    op = ops.SubsampledOrthogonal(N, rows, kind="dct")
    x = RNG.standard_normal((3, N))
    full = scipy.fft.dct(x, norm="ortho", axis=-1)
    np.testing.assert_allclose(op.apply(x), full[:, rows], atol=1e-12)
    z = RNG.standard_normal((3, len(rows)))
    padded = np.zeros((3, N))
    padded[:, rows] = z
    np.testing.assert_allclose(op.adjoint(z), scipy.fft.idct(padded, norm="ortho", axis=-1),
                               atol=1e-12)


@pytest.mark.parametrize("N", [1, 2, 8, 64])
def test_hadamard_rows_match_scipy(N):
    rows = list(range(N))[::-1]
    op = ops.SubsampledOrthogonal(N, rows, kind="hadamard")
    x = RNG.standard_normal((2, N))
    H = scipy.linalg.hadamard(N) / math.sqrt(N)
    np.testing.assert_allclose(op.apply(x), (x @ H.T)[:, rows], atol=1e-12)


def test_references_hold_on_every_backend(xp):
    x_np = RNG.standard_normal((2, 3, 8, 8))
    x = from_numpy(x_np, xp)
    kernel = RNG.random((3, 3))
    checks = [
        (ops.SeparableBlur([0.2, 0.5, 0.3], [0.1, 0.9], in_shape=(3, 8, 8), threshold=0.0),
         _conv_same(x_np, np.outer([0.1, 0.9], [0.2, 0.5, 0.3]))),
        (ops.CircularBlur(from_numpy(kernel, xp), (3, 8, 8)), _conv_same(x_np, kernel, "wrap")),
        (ops.SuperResolution(2, (3, 8, 8)), x_np.reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5))),
    ]
    for op, ref in checks:
        np.testing.assert_allclose(to_numpy(op.apply(x)), ref, atol=1e-12)
    v = RNG.standard_normal((2, 16))
    op = ops.SubsampledOrthogonal(16, [0, 3, 4, 9], kind="dct")
    np.testing.assert_allclose(to_numpy(op.apply(from_numpy(v, xp))),
                               scipy.fft.dct(v, norm="ortho")[:, [0, 3, 4, 9]], atol=1e-12)
