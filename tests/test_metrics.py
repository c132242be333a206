"""PSNR and SSIM against references computed here (scipy.ndimage) and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close, from_numpy, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from invdiff.metrics import psnr, ssim


def _images(seed, shape=(2, 3, 20, 24)):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape)
    x = np.clip(ref + 0.1 * rng.standard_normal(shape), 0.0, 1.0)
    return x, ref


def _psnr_ref(x, ref, R):
    mse = np.mean((x - ref) ** 2, axis=(-3, -2, -1))
    return 10 * np.log10(R**2 / mse)


def _ssim_ref(x, ref, R, window):
    """Per-image mean SSIM of (C, H, W) images, written from Wang et al. 2004 with ndimage."""
    if window == "gaussian":
        filt, pad, cov_norm = (lambda z: ndimage.gaussian_filter(z, 1.5, truncate=3.5)), 5, 1.0
    else:
        filt, pad, cov_norm = (lambda z: ndimage.uniform_filter(z, 7)), 3, 49 / 48
    C1, C2 = (0.01 * R) ** 2, (0.03 * R) ** 2
    out = []
    for xi, ri in zip(x.reshape(-1, *x.shape[-3:]), ref.reshape(-1, *ref.shape[-3:]), strict=True):
        per_channel = []
        for a, b in zip(xi, ri, strict=True):
            ma, mb = filt(a), filt(b)
            va = cov_norm * (filt(a * a) - ma * ma)
            vb = cov_norm * (filt(b * b) - mb * mb)
            cab = cov_norm * (filt(a * b) - ma * mb)
            s = ((2 * ma * mb + C1) * (2 * cab + C2)) / ((ma**2 + mb**2 + C1) * (va + vb + C2))
            per_channel.append(s[pad:-pad, pad:-pad].mean())
        out.append(np.mean(per_channel))
    return np.array(out).reshape(x.shape[:-3])


def test_psnr_matches_formula_per_image(xp):
    x, ref = _images(0)
    got = psnr(from_numpy(x, xp), from_numpy(ref, xp), data_range=1.0)
    assert_close(got, from_numpy(_psnr_ref(x, ref, 1.0), xp), rtol=1e-12)


def test_psnr_matches_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    x, ref = _images(1)
    got = to_numpy(psnr(x, ref, 2.0))
    want = [metrics.peak_signal_noise_ratio(ref[i], x[i], data_range=2.0) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_psnr_identical_is_inf_and_dtype_kept(xp):
    ref = from_numpy(np.linspace(0, 1, 2 * 16).reshape(2, 1, 4, 4), xp, dtype=xp.float32)
    got = psnr(ref, ref, data_range=1.0)
    assert got.dtype == xp.float32 and tuple(got.shape) == (2,)
    assert bool(xp.all(xp.isinf(got)))


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_matches_ndimage_reference(xp, window):
    x, ref = _images(2)
    got = ssim(from_numpy(x, xp), from_numpy(ref, xp), data_range=1.0, window=window)
    assert_close(got, from_numpy(_ssim_ref(x, ref, 1.0, window), xp), rtol=1e-10)


@pytest.mark.parametrize("window", ["gaussian", "uniform"])
def test_ssim_matches_skimage(window):
    metrics = pytest.importorskip("skimage.metrics")
    x, ref = _images(3, shape=(2, 3, 32, 28))
    extra = ({"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
             if window == "gaussian" else {})
    want = [metrics.structural_similarity(x[i], ref[i], data_range=1.0, channel_axis=0, **extra)
            for i in range(2)]
    np.testing.assert_allclose(to_numpy(ssim(x, ref, 1.0, window=window)), want, rtol=1e-10)


def test_ssim_float32_and_extra_batch_dims(xp):
    x, ref = _images(4, shape=(2, 3, 1, 16, 16))
    got = ssim(from_numpy(x, xp, dtype=xp.float32), from_numpy(ref, xp, dtype=xp.float32), 1.0)
    assert got.dtype == xp.float32 and tuple(got.shape) == (2, 3)
    np.testing.assert_allclose(to_numpy(got), _ssim_ref(x, ref, 1.0, "gaussian"), atol=2e-5)


def test_ssim_drops_with_noise():
    # Monotone in the distortion: a check that would fail with a sign or variance error.
    rng = np.random.default_rng(5)
    ref = ndimage.gaussian_filter(rng.random((1, 1, 32, 32)), 2)
    noise = rng.standard_normal(ref.shape)
    values = [float(ssim(ref + s * noise, ref, 1.0)[0]) for s in (0.0, 0.01, 0.05, 0.2)]
    assert values[0] == pytest.approx(1.0, abs=1e-12)
    assert all(a > b for a, b in zip(values[:-1], values[1:], strict=True))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 10.0))
def test_ssim_psnr_properties(seed, scale):
    rng = np.random.default_rng(seed)
    a = scale * rng.random((1, 2, 12, 12))
    b = a + scale * 0.3 * rng.standard_normal(a.shape)
    R = 2.0 * scale
    s_ab, s_ba = ssim(a, b, R), ssim(b, a, R)
    np.testing.assert_allclose(s_ab, s_ba, rtol=1e-10)
    assert float(s_ab[0]) <= 1.0 + 1e-12
    assert float(ssim(a, a, R)[0]) == pytest.approx(1.0, abs=1e-9)
    # PSNR and SSIM are invariant to rescaling images and range together
    np.testing.assert_allclose(ssim(3 * a, 3 * b, 3 * R), s_ab, rtol=1e-8)
    np.testing.assert_allclose(psnr(3 * a, 3 * b, 3 * R), psnr(a, b, R), rtol=1e-10)


def test_read_only_inputs():
    x, ref = _images(6)
    x.flags.writeable = False
    ref.flags.writeable = False
    assert math.isfinite(float(psnr(x, ref, 1.0)[0])) and float(ssim(x, ref, 1.0)[1]) < 1


@pytest.mark.parametrize("fn", [psnr, ssim])
def test_bad_inputs_name_the_argument(fn):
    x = np.zeros((1, 1, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        fn(x, np.zeros((1, 1, 16, 15)), 1.0)
    with pytest.raises(ValueError, match="x must have shape"):
        fn(np.zeros((16, 16)), np.zeros((16, 16)), 1.0)
    with pytest.raises(ValueError, match="data_range"):
        fn(x, x, 0.0)
    with pytest.raises(TypeError, match="ref must have a real floating dtype"):
        fn(x, np.zeros((1, 1, 16, 16), dtype=int), 1.0)


def test_ssim_bad_window_arguments():
    x = np.zeros((1, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(x, x, 1.0)
    with pytest.raises(ValueError, match="win_size"):
        ssim(x, x, 1.0, window="uniform", win_size=4)
    with pytest.raises(ValueError, match="window"):
        ssim(x, x, 1.0, window="box")
