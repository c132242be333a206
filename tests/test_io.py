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


# ------------------------------------------------------------------------------ untrusted files
def _png_header_only(path, width, height):
    """A PNG whose header declares ``width x height`` pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path


def _float_tiff(path, a):
    Image.fromarray(np.asarray(a, dtype=np.float32), mode="F").save(path)
    return path


@pytest.mark.parametrize("width, height", [(10000, 10000), (30000, 30000)])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, width, height):
    path = _png_header_only(tmp_path / "bomb.png", width, height)
    assert width * height > ivd.io.MAX_PIXELS
    with pytest.raises(ValueError, match=r"^--input: .*pixels"):
        ivd.io.read_image(path, name="--input")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_images_are_refused(tmp_path, bad):
    a = np.full((4, 4), 0.5)
    a[1, 2] = bad
    with pytest.raises(ValueError, match="path: .* 1 non-finite pixel"):
        ivd.io.read_image(_float_tiff(tmp_path / "f.tif", a))


@pytest.mark.parametrize("value", [200.0, -0.5, 1.01])
def test_float_images_outside_the_unit_interval_are_refused(tmp_path, value):
    with pytest.raises(ValueError, match=r"floating-point images must hold intensities in \[0"):
        ivd.io.read_image(_float_tiff(tmp_path / "f.tif", np.full((4, 4), value)))


def test_float_images_in_the_unit_interval_are_read_exactly(tmp_path):
    a = np.random.default_rng(2).random((5, 7)).astype(np.float32)
    a[0, 0], a[0, 1] = -1e-4, 1 + 1e-4  # rounding of the writing program: clipped
    x = ivd.io.read_image(_float_tiff(tmp_path / "f.tif", a), data_range=(0.0, 1.0),
                          dtype=np.float64)
    np.testing.assert_array_equal(x[0], np.clip(a.astype(np.float64), 0.0, 1.0))


def test_32_bit_integers_beyond_16_bits_are_refused(tmp_path):
    path = tmp_path / "i.tif"
    Image.fromarray(np.full((4, 4), 10**6, np.int32), mode="I").save(path)
    with pytest.raises(ValueError, match=r"32-bit integer pixels in \[1000000, 1000000\]"):
        ivd.io.read_image(path)
    Image.fromarray(np.array([[0, 65535]], np.int32), mode="I").save(path)
    x = ivd.io.read_image(path, data_range=(0.0, 1.0), dtype=np.float64)
    assert x[0].tolist() == [[0.0, 1.0]]


def test_paths_that_are_not_readable_image_files(tmp_path):
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(IsADirectoryError, match="--mask: a folder"):
        ivd.io.read_image(tmp_path / "dir.png", name="--mask")
    with pytest.raises(FileNotFoundError) as e:
        ivd.io.read_image(tmp_path / "nope.png", name="--input")
    assert e.value.strerror == "--input: no such image file"
    assert e.value.filename == str(tmp_path / "nope.png")
    with pytest.raises(ValueError, match="not a regular file"):
        ivd.io.read_image("/dev/null")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="cannot decode"):
        ivd.io.read_image(tmp_path / "empty.png")
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(big)
    (tmp_path / "trunc.png").write_bytes(big.read_bytes()[:big.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot decode"):
        ivd.io.read_image(tmp_path / "trunc.png")


def test_unreadable_file(tmp_path, rgb_png):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    rgb_png[0].chmod(0o000)
    with pytest.raises(PermissionError, match="path: permission denied"):
        ivd.io.read_image(rgb_png[0])


def test_exif_orientation_is_applied(tmp_path):
    a = np.random.default_rng(3).integers(0, 256, (6, 4), np.uint8)  # stored 4 wide, 6 high
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "r.png"
    img.save(path, exif=exif.tobytes())
    x = ivd.io.read_image(path, data_range=(0.0, 255.0), dtype=np.float64)
    np.testing.assert_array_equal(x[0], np.rot90(a, k=-1))


def test_first_frame_of_an_animation_with_a_warning(tmp_path):
    a = np.random.default_rng(4).integers(0, 256, (4, 4, 3), np.uint8)
    path = tmp_path / "a.gif"
    frames = [Image.fromarray(a), Image.fromarray(255 - a)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match="--input: .* 2 frames; only the first"):
        x = ivd.io.read_image(path, name="--input")
    with pytest.warns(UserWarning):
        first = ivd.io.to_uint8(ivd.io.read_image(path))
    assert x.shape == (3, 4, 4)
    np.testing.assert_array_equal(first, np.asarray(Image.open(path).convert("RGB")))


# ------------------------------------------------------------------------------ conversions
@given(c=st.sampled_from([1, 3]), to=st.sampled_from([1, 3]), batch=st.booleans())
def test_match_channels(c, to, batch):
    x = np.random.default_rng(c + to).random((2, c, 3, 4) if batch else (c, 3, 4))
    y = ivd.io.match_channels(x, to)
    assert y.shape[-3] == to and y.shape[:-3] == x.shape[:-3]
    if c == to:
        assert y is x
    elif to == 1:
        np.testing.assert_allclose(y[..., 0, :, :], x.mean(axis=-3))
    else:
        assert all(np.array_equal(y[..., k, :, :], x[..., 0, :, :]) for k in range(3))


def test_match_channels_any_namespace(xp):
    x = xp.asarray(np.arange(24.0).reshape(3, 2, 4))
    np.testing.assert_allclose(to_numpy(ivd.io.match_channels(x, 1))[0],
                               np.arange(24.0).reshape(3, 2, 4).mean(axis=0))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        ivd.io.match_channels(xp.zeros((2, 2, 2)), 1)


@given(low=st.floats(-5, 5), width=st.floats(0.1, 10), seed=st.integers(0, 99))
def test_to_uint8_maps_the_range_to_0_255_and_round_trips(low, width, seed):
    high = low + width
    u = np.random.default_rng(seed).integers(0, 256, (3, 2, 5))
    x = low + width * u / 255.0
    out = ivd.io.to_uint8(x, data_range=(low, high))
    assert out.dtype == np.uint8 and out.shape == (2, 5, 3)
    np.testing.assert_array_equal(out, u.transpose(1, 2, 0))
    ends = ivd.io.to_uint8(np.array([[low - 1.0, high + 1.0]]), data_range=(low, high))
    assert ends.tolist() == [[0, 255]]  # clipped
    with pytest.raises(ValueError, match="finite"):
        ivd.io.to_uint8(np.array([[np.nan]]), data_range=(low, high))


def test_write_with_an_explicit_format_inside_an_atomic_writer(tmp_path):
    x = np.linspace(0.0, 1.0, 2 * 3 * 4).reshape(2, 3, 4)[:1]
    with ivd.io.AtomicWriter() as w:
        w.add(tmp_path / "a.png", lambda p: ivd.io.write_image(p, x, data_range=(0.0, 1.0),
                                                             format="PNG"))
        assert list(tmp_path.glob("*.png")) == []  # nothing visible before the commit
        w.commit()
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")),
                                  ivd.io.to_uint8(x, data_range=(0.0, 1.0)))


def test_atomic_writer_leaves_nothing_after_an_error(tmp_path):
    def fail(p):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), ivd.io.AtomicWriter() as w:
        w.add(tmp_path / "a.png", lambda p: ivd.io.write_image(p, np.zeros((1, 2, 2)),
                                                             format="PNG"))
        w.add(tmp_path / "b.png", fail)
        w.commit()
    assert list(tmp_path.iterdir()) == []
