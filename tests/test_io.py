"""invdiff.io: image files to and from a prior's range, sizes, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import invdiff as ivd
from tests._helpers import to_numpy


@pytest.fixture
def rgb_png(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, size=(10, 14, 3), dtype=np.uint8)
    path = tmp_path / "rgb.png"
    Image.fromarray(a).save(path)
    return path, a


def test_read_maps_black_and_white_to_the_range(rgb_png):
    path, a = rgb_png
    x = ivd.io.read_image(path, data_range=(-1.0, 1.0))
    assert x.shape == (3, 10, 14) and x.dtype == np.float32
    np.testing.assert_allclose(x, a.transpose(2, 0, 1) / 127.5 - 1.0, atol=1e-6)
    u = ivd.io.read_image(path, data_range=(0.0, 1.0), dtype=np.float64)
    np.testing.assert_allclose(u, a.transpose(2, 0, 1) / 255.0, atol=1e-12)


def test_write_then_read_is_the_identity_up_to_8_bits(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, size=(3, 8, 6))
    path = ivd.io.write_image(tmp_path / "x.png", x)
    back = ivd.io.read_image(path, dtype=np.float64)
    assert np.abs(back - x).max() <= 1 / 255 + 1e-12
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left


def test_channels_and_grayscale(tmp_path, rgb_png):
    path, a = rgb_png
    grey = ivd.io.read_image(path, channels=1, data_range=(0.0, 1.0), dtype=np.float64)
    np.testing.assert_allclose(grey[0], a.mean(axis=2) / 255.0, atol=1e-12)
    gpath = tmp_path / "g.png"
    Image.fromarray(a[..., 0]).save(gpath)
    assert ivd.io.read_image(gpath).shape == (1, 10, 14)
    rgb = ivd.io.read_image(gpath, channels=3)
    assert rgb.shape == (3, 10, 14) and np.array_equal(rgb[0], rgb[2])
    with pytest.raises(ValueError, match="channels"):
        ivd.io.read_image(gpath, channels=2)


def test_sixteen_bit_grayscale(tmp_path):
    a = np.array([[0, 65535], [32768, 1]], dtype=np.uint16)
    path = tmp_path / "d.png"
    Image.fromarray(a).save(path)
    x = ivd.io.read_image(path, data_range=(0.0, 1.0), dtype=np.float64)
    np.testing.assert_allclose(x[0], a / 65535.0)


def test_model_attributes_set_the_defaults(rgb_png):
    class Model:
        data_range, channels, size_multiple, image_size = (0.0, 1.0), 1, 4, None

    x = ivd.io.read_image(rgb_png[0], model=Model(), fit="crop")
    assert x.shape == (1, 8, 12) and float(x.min()) >= 0.0
    with pytest.raises(ValueError, match="multiples of 4.*crop it to 12x8 or pad it to 16x12"):
        ivd.io.read_image(rgb_png[0], model=Model())


def test_fixed_size_models(rgb_png):
    x = ivd.io.read_image(rgb_png[0], image_size=8, fit="crop")
    assert x.shape == (3, 8, 8)
    with pytest.raises(ValueError, match="takes 8x8 images only"):
        ivd.io.read_image(rgb_png[0], image_size=8)
    with pytest.raises(ValueError, match="cannot pad"):
        ivd.io.read_image(rgb_png[0], image_size=8, fit="pad")


@given(h=st.integers(2, 20), w=st.integers(2, 20), m=st.integers(1, 6),
       mode=st.sampled_from(["crop", "pad"]))
def test_fit_size_gives_multiples_and_pad_is_undone_by_slicing(h, w, m, mode):
    x = np.arange(2.0 * h * w).reshape(2, h, w)
    try:
        out = ivd.io.fit_size(x, m, mode=mode)
    except ValueError as e:  # padding more than the image can mirror, or cropping to 0
        assert "too small to pad" in str(e) or h < m or w < m
        return
    assert out.shape[-2] % m == 0 and out.shape[-1] % m == 0
    if mode == "pad":
        assert np.array_equal(out[..., :h, :w], x)
        assert out.shape[-2] - h < m and out.shape[-1] - w < m
    else:
        assert h - out.shape[-2] < m and w - out.shape[-1] < m


def test_like_gives_the_namespace_device_and_dtype(xp, rgb_png):
    like = xp.zeros(1, dtype=xp.float64)
    x = ivd.io.read_image(rgb_png[0], like=like)
    assert type(x) is type(like) and x.dtype == xp.float64
    x32 = ivd.io.read_image(rgb_png[0], like=xp.zeros(1, dtype=xp.int64))
    assert x32.dtype == xp.float32
    np.testing.assert_allclose(to_numpy(x), ivd.io.read_image(rgb_png[0]), atol=1e-6)
    padded = ivd.io.fit_size(x, 4, mode="pad")
    assert tuple(padded.shape) == (3, 12, 16) and type(padded) is type(like)


def test_write_accepts_any_namespace(xp, tmp_path):
    x = xp.asarray(np.full((1, 3, 4, 4), 1.0))
    path = ivd.io.write_image(tmp_path / "w.png", x)
    assert np.asarray(Image.open(path)).min() == 255


def test_bad_inputs_are_refused_with_the_argument_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        ivd.io.read_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="path: cannot decode"):
        ivd.io.read_image(junk)
    with pytest.raises(ValueError, match="data_range"):
        ivd.io.read_image(junk, data_range=(1.0, 1.0))
    with pytest.raises(ValueError, match="unknown image type"):
        ivd.io.write_image(tmp_path / "x.xyz", np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="does not exist"):
        ivd.io.write_image(tmp_path / "no" / "x.png", np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        ivd.io.write_image(tmp_path / "x.png", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="mode"):
        ivd.io.fit_size(np.zeros((4, 4)), 2, mode="stretch")


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = ivd.io.write_image(tmp_path / "keep.png", np.zeros((1, 4, 4)))
    before = path.read_bytes()
    x = np.zeros((1, 4, 4))
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        ivd.io.write_image(path, x)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]
