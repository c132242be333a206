r"""Images in and out of a prior's range: :func:`read_image`, :func:`write_image`, :func:`fit_size`.

A prior is trained on images of a given range (the bundled priors and ADM: :math:`[-1, 1]`;
NCSNv2: :math:`[0, 1]`; the model's ``data_range`` attribute says which), a given number of
channels, and sizes its network can take (a fixed ``image_size``, or height and width
multiples of ``size_multiple``, the product of its downsampling strides). These functions
do the conversions at the boundary, so that the arrays the core sees are already in the
prior's units:

* :func:`read_image`: any image file Pillow decodes (PNG, JPEG, TIFF, BMP, WebP, ...) to a
  ``(C, H, W)`` floating array in ``data_range``, with the channels and size the prior takes,
  in the namespace and on the device of ``like``;
* :func:`fit_size`: crop or pad an array to the sizes a prior takes (or check them);
* :func:`write_image`: an array in ``data_range`` back to an 8-bit image file, written
  atomically (a temporary file renamed into place: never a half-written file);
* :func:`match_channels` and :func:`to_uint8`: the channel and 8-bit conversions the two
  use, for arrays already in memory; :class:`AtomicWriter`: several files that appear all
  together or not at all.

Files are untrusted input: :func:`read_image` refuses what it cannot decode faithfully
(a file declaring more than ``MAX_PIXELS`` pixels, before decoding it; non-finite or
out-of-range floating-point pixels; 32-bit integers beyond 16 bits) with an error naming
the argument, instead of returning an image that is not the one in the file.

This module is the package's file boundary: it uses NumPy and Pillow directly (decoding is
not array math); arrays leave it in the caller's namespace.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> import invdiff as ivd
>>> path = os.path.join(tempfile.mkdtemp(), "x.png")
>>> x = np.linspace(-1.0, 1.0, 3 * 8 * 8).reshape(1, 3, 8, 8)
>>> ivd.io.write_image(path, x).name
'x.png'
>>> y = ivd.io.read_image(path)            # (C, H, W) in [-1, 1], float32
>>> y.shape, y.dtype, bool(np.abs(y - x[0]).max() < 1 / 255)
((3, 8, 8), dtype('float32'), True)
"""

from __future__ import annotations

import errno
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ._array_api import check_range, device_of, is_array, namespace

__all__ = ["read_image", "write_image", "fit_size", "match_channels", "to_uint8",
           "destination_format", "AtomicWriter"]

#: File suffixes :func:`write_image` knows, and the Pillow format each one means.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP", ".webp": "WEBP"}
#: Largest image (pixels) :func:`read_image` decodes: Pillow's limit for untrusted files
#: (about 89 million pixels); a file declaring more is refused before anything is decoded.
MAX_PIXELS = 89_478_485
#: Tolerance on the range of floating-point images (rounding in the program that wrote them).
_FLOAT_SLACK = 1e-3


# ------------------------------------------------------------------------------- reading
def read_image(path, *, model=None, data_range=None, channels=None, size_multiple=None,
               image_size=None, fit="check", like=None, dtype=None, name="path"):
    r"""Read an image file as a ``(C, H, W)`` array in a prior's range.

    Parameters
    ----------
    path : str or path-like
        Any format Pillow decodes. 8-bit values are divided by 255, 16-bit grayscale by
        65535, 32-bit integers must lie in ``0..65535`` (16-bit data) and 32-bit floats
        must be finite intensities in ``[0, 1]``. Palette, CMYK, YCbCr and alpha images
        become RGB (alpha dropped). The EXIF orientation is applied (the image as viewers
        show it); of an animation or a multi-page file the first frame is read, with a
        warning.
    model : ScoreModel, optional
        Takes ``data_range``, ``channels``, ``size_multiple`` and ``image_size`` from the
        model's attributes of those names (the bundled priors have all four) when the
        corresponding argument is not given.
    data_range : (float, float), optional
        The range ``[low, high]`` black and white are mapped to. Default the model's, else
        ``(-1.0, 1.0)``.
    channels : {1, 3}, optional
        The number of channels of the result (see :func:`match_channels`). Default the
        model's, else the file's (1 for grayscale, 3 otherwise).
    size_multiple : int, optional
        Height and width must be multiples of it (the network's total downsampling).
    image_size : int or (int, int), optional
        The exact size the network takes, for models trained at one size (ADM: 256).
    fit : {"check", "crop", "pad"}, default "check"
        What to do with an image of another size: refuse it with a ``ValueError`` that
        gives the sizes that would work, centre-crop it, or pad it at the bottom and right
        by reflection (see :func:`fit_size`).
    like : array, optional
        The result is created in ``like``'s namespace and on its device (a torch tensor on
        a GPU, a CuPy array, ...); default NumPy.
    dtype : dtype, optional
        Floating dtype of the result; default ``like``'s when it is floating, else float32.
    name : str, default "path"
        What error messages call ``path`` (the command line passes its option, ``--input``).

    Returns
    -------
    array of shape (C, H, W)
        The image in ``data_range``. Add a batch axis with ``x[None]``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError
        ``path`` does not exist, is a folder, or cannot be read.
    ValueError
        ``path`` is not a regular file (a device, a FIFO), is not an image Pillow can
        decode, declares more than ``MAX_PIXELS`` pixels (refused before decoding: a
        decompression bomb), holds non-finite or out-of-range pixels; an argument is out of
        its domain; or (``fit="check"``) the size does not suit the prior.

    Notes
    -----
    The mapping is affine, :math:`x = \mathrm{low} + (\mathrm{high} - \mathrm{low})\,v` for
    an intensity :math:`v \in [0, 1]`. Diffusion priors are trained with a fixed range;
    an image in another range is, for the prior, a different (and unlikely) image.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from PIL import Image
    >>> import invdiff as ivd
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.png")
    >>> Image.fromarray(np.full((30, 20), 255, np.uint8)).save(path)
    >>> x = ivd.io.read_image(path, channels=3, size_multiple=8, fit="crop")
    >>> x.shape, float(x.min()), float(x.max())       # 30 x 20 cropped to 24 x 16
    ((3, 24, 16), 1.0, 1.0)
    >>> try:
    ...     ivd.io.read_image(path, size_multiple=8)
    ... except ValueError as e:
    ...     print(str(e).split(";")[0])
    path: the image is 20x30 (width x height), height and width must be multiples of 8
    """
    path = Path(path)
    data_range = check_range("data_range", data_range if data_range is not None else
                        getattr(model, "data_range", (-1.0, 1.0)))
    channels = channels if channels is not None else getattr(model, "channels", None)
    size_multiple = size_multiple if size_multiple is not None else getattr(
        model, "size_multiple", None)
    image_size = image_size if image_size is not None else getattr(model, "image_size", None)
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; received {channels!r}")
    v = _decode_file(path, name)
    if channels is not None:
        v = match_channels(v, channels)
    v = fit_size(v, size_multiple, image_size=image_size, mode=fit, name=name)
    low, high = data_range
    x = low + (high - low) * v.astype(np.float64)
    return _to_namespace(x, like, dtype)


class _Refused(Exception):
    """A check of :func:`_decode_file` failed inside the decoder's ``try`` (final message)."""


def _decode_file(path: Path, name: str) -> np.ndarray:
    """``(C, H, W)`` float64 intensities in [0, 1], C = 1 or 3, after every check."""
    from PIL import Image

    _check_readable(path, name)
    try:
        with warnings.catch_warnings():
            # a file declaring a huge size is refused, not decoded (decompression bombs)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", message="Palette images with Transparency")
            with Image.open(path) as img:
                _check_pixels(img, path, name)
                frames = getattr(img, "n_frames", 1)
                img.load()
                v = _intensities(_exif_transpose(img), path, name)
    except _Refused as e:
        raise ValueError(str(e)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{name}: {str(path)!r} declares too many pixels to decode safely "
                         f"({e}); downscale or crop it") from None
    except MemoryError:
        raise MemoryError(f"{name}: not enough memory to decode {str(path)!r}") from None
    except Exception as e:  # noqa: BLE001 - a corrupt file can fail anywhere in a decoder
        raise ValueError(f"{name}: cannot decode {str(path)!r} as an image (PNG, JPEG, TIFF, "
                         f"BMP, WebP ...): {type(e).__name__}: {e}") from None
    if frames > 1:
        warnings.warn(f"{name}: {str(path)!r} has {frames} frames; only the first is used",
                      stacklevel=3)
    return v


def _check_readable(path: Path, name: str) -> None:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{name}: a folder, not an image file", str(path))
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, f"{name}: no such image file", str(path))
    if not path.is_file():  # a FIFO or a device would block or never end
        raise ValueError(f"{name}: {str(path)!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise PermissionError(errno.EACCES, f"{name}: permission denied", str(path))


def _check_pixels(img, path: Path, name: str) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise _Refused(f"{name}: {str(path)!r} is empty ({w}x{h} pixels)")
    if w * h > MAX_PIXELS:
        raise _Refused(f"{name}: {str(path)!r} declares {w}x{h} = {w * h:,} pixels, more than "
                       f"the {MAX_PIXELS:,} decoded from a file (a decompression-bomb guard); "
                       f"downscale or crop it")


def _exif_transpose(img):
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - a broken EXIF block: keep the stored orientation
        return img


def _intensities(img, path: Path, name: str) -> np.ndarray:
    """The decoded pixels of ``img`` as float64 intensities in [0, 1], checked."""
    mode = img.mode
    if mode.startswith("I;16"):
        return (np.asarray(img, dtype=np.float64) / 65535.0)[None]
    if mode == "I":  # 32-bit integers: 16-bit PNGs on some Pillow versions
        a = np.asarray(img, dtype=np.float64)
        if a.min() < 0 or a.max() > 65535:
            raise _Refused(f"{name}: {str(path)!r} holds 32-bit integer pixels in "
                           f"[{a.min():.0f}, {a.max():.0f}]; only 0..65535 (16-bit) is "
                           f"understood: save it as an 8- or 16-bit image")
        return (a / 65535.0)[None]
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise _Refused(f"{name}: {str(path)!r} has {bad} non-finite pixel(s) (NaN or "
                           f"infinity)")
        if a.min() < -_FLOAT_SLACK or a.max() > 1 + _FLOAT_SLACK:
            raise _Refused(f"{name}: {str(path)!r} is a floating-point image with values in "
                           f"[{a.min():.4g}, {a.max():.4g}]; floating-point images must hold "
                           f"intensities in [0, 1]")
        return np.clip(a, 0.0, 1.0)[None]
    if mode in ("1", "L", "LA", "La"):
        return (np.asarray(img.convert("L"), dtype=np.float64) / 255.0)[None]
    try:
        rgb = img.convert("RGB")
    except ValueError as e:  # e.g. LAB or HSV: Pillow converts only some modes
        raise _Refused(f"{name}: {str(path)!r} has colour mode {mode!r}, which cannot be "
                       f"converted to RGB here ({e}); save it as RGB or grayscale") from None
    a = np.asarray(rgb, dtype=np.float64) / 255.0
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def match_channels(x, channels: int):
    """An image ``(..., C, H, W)`` (C = 1 or 3) with ``channels`` channels.

    RGB to one channel is the mean :math:`(R + G + B) / 3` (what
    :class:`invdiff.operators.Colorization` measures); one channel to RGB repeats it.

    Parameters
    ----------
    x : array of shape (..., C, H, W)
        Any namespace.
    channels : {1, 3}

    Returns
    -------
    array of shape (..., channels, H, W)
        ``x`` itself when it has ``channels`` channels already.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> rgb = np.stack([np.zeros((1, 1)), np.ones((1, 1)), np.ones((1, 1))])
    >>> ivd.io.match_channels(rgb, 1).tolist()
    [[[0.6666666666666666]]]
    >>> ivd.io.match_channels(np.zeros((2, 1, 4, 4)), 3).shape
    (2, 3, 4, 4)
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; received {channels!r}")
    if x.ndim < 3 or x.shape[-3] not in (1, 3):
        raise ValueError(f"x must have shape (..., C, H, W) with C = 1 or 3; received shape "
                         f"{tuple(x.shape)}")
    if x.shape[-3] == channels:
        return x
    xp = namespace(x=x)
    if channels == 1:
        return xp.mean(x, axis=-3, keepdims=True)
    return xp.concat([x, x, x], axis=-3)


def _to_namespace(x: np.ndarray, like, dtype):
    if like is None:
        return x.astype(dtype or np.float32)
    if not is_array(like):
        raise TypeError(f"like must be an array; received {type(like).__name__}")
    xp = namespace(like=like)
    if dtype is None:
        dtype = like.dtype if xp.isdtype(like.dtype, "real floating") else xp.float32
    return xp.asarray(x, dtype=dtype, device=device_of(like))


# ------------------------------------------------------------------------------- sizes
def fit_size(x, size_multiple=None, *, image_size=None, mode="check", name="x"):
    """Crop, pad or check the height and width of ``(..., H, W)`` for a prior.

    Parameters
    ----------
    x : array of shape (..., H, W)
        Any namespace (only slicing and, for ``"pad"``, concatenation are used).
    size_multiple : int, optional
        Height and width must be multiples of it (``None`` or 1: any size).
    image_size : int or (int, int), optional
        The exact ``(H, W)`` the prior takes (overrides ``size_multiple``).
    mode : {"check", "crop", "pad"}, default "check"
        ``"check"`` returns ``x`` unchanged when it fits and raises ``ValueError`` (naming
        the sizes that would fit) otherwise; ``"crop"`` keeps the centre; ``"pad"`` extends
        the bottom and right edges by reflection, so that ``result[..., :H, :W]`` is ``x``
        again (crop a restored image back the same way).
    name : str, default "x"
        The argument named in error messages.

    Returns
    -------
    array
        ``x`` itself when it fits, else the cropped or padded array.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> x = np.arange(6 * 10.0).reshape(1, 6, 10)
    >>> ivd.io.fit_size(x, 4, mode="crop").shape, ivd.io.fit_size(x, 4, mode="pad").shape
    ((1, 4, 8), (1, 8, 12))
    >>> bool((ivd.io.fit_size(x, 4, mode="pad")[..., :6, :10] == x).all())
    True
    >>> ivd.io.fit_size(x, image_size=(4, 4), mode="crop").shape
    (1, 4, 4)
    """
    if mode not in ("check", "crop", "pad"):
        raise ValueError(f"mode must be 'check', 'crop' or 'pad'; received {mode!r}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, W); received shape {tuple(x.shape)}")
    H, W = int(x.shape[-2]), int(x.shape[-1])
    if image_size is not None:
        th, tw = (image_size, image_size) if isinstance(image_size, int) else image_size
        th, tw = int(th), int(tw)
        rule = f"the prior takes {tw}x{th} images only"
    else:
        m = _multiple(size_multiple)
        if m == 1 or (H % m == 0 and W % m == 0):
            return x
        th, tw = (H // m * m, W // m * m) if mode != "pad" else (-(-H // m) * m, -(-W // m) * m)
        rule = f"height and width must be multiples of {m}"
        if mode == "check":
            raise ValueError(
                f"{name}: the image is {W}x{H} (width x height), {rule}; crop it to "
                f"{W // m * m}x{H // m * m} or pad it to {-(-W // m) * m}x{-(-H // m) * m} "
                f"(fit='crop' or fit='pad')")
    if (th, tw) == (H, W):
        return x
    if mode == "check":
        raise ValueError(f"{name}: the image is {W}x{H} (width x height), {rule}; resize it, "
                         f"or crop / pad it (fit='crop' or fit='pad')")
    if mode == "crop":
        if th > H or tw > W:
            raise ValueError(f"{name}: cannot crop a {W}x{H} image to {tw}x{th}; use fit='pad'")
        top, left = (H - th) // 2, (W - tw) // 2
        return x[..., top:top + th, left:left + tw]
    if th < H or tw < W:
        raise ValueError(f"{name}: cannot pad a {W}x{H} image to {tw}x{th}; use fit='crop'")
    return _reflect_pad(x, th - H, tw - W, name)


def _reflect_pad(x, dh: int, dw: int, name: str):
    """Extend the bottom and right edges by reflection (without repeating the edge)."""
    H, W = int(x.shape[-2]), int(x.shape[-1])
    if dh >= H or dw >= W:  # reflection needs that many rows/columns to mirror
        raise ValueError(f"{name}: a {W}x{H} image is too small to pad by {dw}x{dh}")
    xp = namespace(**{name: x})
    if dh:
        x = xp.concat([x, xp.flip(x[..., H - 1 - dh:H - 1, :], axis=-2)], axis=-2)
    if dw:
        x = xp.concat([x, xp.flip(x[..., :, W - 1 - dw:W - 1], axis=-1)], axis=-1)
    return x


# ------------------------------------------------------------------------------- writing
def write_image(path, x, *, data_range=(-1.0, 1.0), quality: int = 95, format=None,
                name="path"):
    """Write an image array as an 8-bit image file, atomically.

    Parameters
    ----------
    path : str or path-like
        Output file; the format comes from the suffix (``.png``, ``.jpg``, ``.tif``,
        ``.bmp``, ``.webp``) unless ``format`` is given. Its folder must exist.
    x : array of shape (C, H, W), (1, C, H, W) or (H, W)
        ``C`` = 1 or 3, any namespace and device (copied to the host).
    data_range : (float, float), default (-1.0, 1.0)
        The range of ``x``: ``low`` is written as black, ``high`` as white, values outside
        are clipped (:func:`to_uint8`).
    quality : int, default 95
        JPEG / WebP quality.
    format : str, optional
        Pillow's name of the format (``"PNG"``, ``"JPEG"``, ...), for a path whose suffix
        does not say it (a temporary file of :class:`AtomicWriter`).
    name : str, default "path"
        What error messages call ``path``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        Unknown suffix (or a format this Pillow cannot write), missing folder, a shape that
        is not an image, or NaN / infinite values (never written as black).

    Notes
    -----
    The file is written to a temporary file in the same folder and renamed into place
    (``os.replace``), so a reader never sees a half-written image and an error leaves any
    previous file untouched.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> path = os.path.join(tempfile.mkdtemp(), "digit.png")
    >>> ivd.io.write_image(path, np.zeros((1, 1, 28, 28)), data_range=(0.0, 1.0)).suffix
    '.png'
    >>> ivd.io.read_image(path, data_range=(0.0, 1.0)).shape
    (1, 28, 28)
    """
    from PIL import Image

    path = Path(path)
    fmt = destination_format(path, format, name=name)
    img = Image.fromarray(to_uint8(x, data_range))
    kwargs = {"quality": int(quality)} if fmt in ("JPEG", "WEBP") else {}
    with AtomicWriter() as w:
        w.add(path, lambda p: img.save(p, format=fmt, **kwargs))
        w.commit()
    return path


def destination_format(path, format=None, *, name="path") -> str:
    """Pillow's name of the format :func:`write_image` writes ``path`` in, after checking it.

    For checking an output path before the work that produces the image.

    Parameters
    ----------
    path : str or path-like
        The output file; its folder must exist.
    format : str, optional
        Pillow's name of the format; default from the suffix of ``path`` (``FORMATS``).
    name : str, default "path"
        What error messages call ``path``.

    Raises
    ------
    ValueError
        Unknown suffix, a format this Pillow cannot write, or a missing folder.

    Examples
    --------
    >>> import invdiff as ivd
    >>> ivd.io.destination_format("restored.JPG")
    'JPEG'
    >>> try:
    ...     ivd.io.destination_format("restored.xyz", name="--output")
    ... except ValueError as e:
    ...     print(str(e).split(";")[0])
    --output: unknown image type '.xyz' for 'restored.xyz'
    """
    from PIL import Image

    path = Path(path)
    fmt = format.upper() if format is not None else FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{name}: unknown image type {path.suffix!r} for {str(path)!r}; use "
                         f"one of {', '.join(sorted(FORMATS))}")
    Image.init()
    if fmt not in Image.SAVE:
        raise ValueError(f"{name}: this Pillow cannot write {fmt} files; use .png")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{name}: folder {str(folder)!r} does not exist")
    return fmt


def to_uint8(x, data_range=(-1.0, 1.0)) -> np.ndarray:
    """The 8-bit pixels of an image array: ``(H, W)`` for one channel, ``(H, W, 3)`` for RGB.

    What :func:`write_image` writes, ready for ``PIL.Image.fromarray`` or ``imshow``.

    Parameters
    ----------
    x : array of shape (C, H, W), (1, C, H, W) or (H, W)
        ``C`` = 1 or 3, any namespace and device (copied to the host).
    data_range : (float, float), default (-1.0, 1.0)
        ``low`` becomes 0, ``high`` 255; values outside are clipped, the rest rounded.

    Returns
    -------
    numpy.ndarray of uint8

    Raises
    ------
    ValueError
        A shape that is not an image, or NaN / infinite values (they have no pixel value).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> ivd.io.to_uint8(np.array([[[0.0, 0.5, 2.0]]]), data_range=(0.0, 1.0)).tolist()
    [[0, 128, 255]]
    >>> ivd.io.to_uint8(np.zeros((3, 2, 5))).shape
    (2, 5, 3)
    """
    low, high = check_range("data_range", data_range)
    a = _to_numpy(x)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"x must have shape (C, H, W), (1, C, H, W) or (H, W) with C = 1 or 3; "
                         f"received shape {tuple(x.shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"x must be finite; received {int((~np.isfinite(a)).sum())} NaN or "
                         "infinite values")
    v = np.clip((a.astype(np.float64) - low) / (high - low), 0.0, 1.0)
    u8 = np.round(v * 255.0).astype(np.uint8)
    return u8[0] if u8.shape[0] == 1 else np.ascontiguousarray(u8.transpose(1, 2, 0))


def _to_numpy(x) -> np.ndarray:
    """A host NumPy copy of an array of any namespace and device."""
    if isinstance(x, np.ndarray):
        return x
    if not is_array(x):
        raise TypeError(f"x must be an array; received {type(x).__name__}")
    if hasattr(x, "detach"):  # torch, any device
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):  # CuPy
        return x.get()
    try:
        return np.from_dlpack(x)
    except (TypeError, RuntimeError, BufferError):
        return np.asarray(x)


class AtomicWriter:
    """Write one or several files so that either all appear or none does.

    Each :meth:`add` writes into a temporary file in the destination's folder; :meth:`commit`
    renames them all into place (``os.replace``, atomic per file on POSIX and Windows);
    leaving the ``with`` block without a commit (an error) deletes the temporary files, so a
    failed run never leaves a partial output behind, and a reader never sees a half-written
    file.

    Examples
    --------
    >>> import os, pathlib, tempfile
    >>> import invdiff as ivd
    >>> d = tempfile.mkdtemp()
    >>> with ivd.io.AtomicWriter() as w:
    ...     w.add(os.path.join(d, "a.txt"), lambda p: pathlib.Path(p).write_text("x"))
    ...     written = w.commit()
    >>> os.listdir(d), [p.name for p in written]
    (['a.txt'], ['a.txt'])
    """

    def __init__(self):
        self._pending: list[tuple[str, Path]] = []
        self.written: list[Path] = []

    def add(self, path, write) -> None:
        """Run ``write(tmp_path)`` for the final ``path`` (not visible until :meth:`commit`).

        The temporary file's name ends in ``.part``: ``write`` must not infer the format
        from the suffix.
        """
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part",
                                   dir=path.parent if str(path.parent) else ".")
        os.close(fd)
        self._pending.append((tmp, path))
        write(tmp)

    def commit(self) -> list[Path]:
        """Move every temporary file to its final name; returns the final paths."""
        mode = 0o666 & ~_umask()  # mkstemp creates 0600 files; give the usual permissions
        for tmp, path in self._pending:
            os.chmod(tmp, mode)
            os.replace(tmp, path)
            self.written.append(path)
        self._pending = []
        return self.written

    def discard(self) -> None:
        """Delete the temporary files not yet committed."""
        for tmp, _ in self._pending:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self._pending = []

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------- validation
def _multiple(m) -> int:
    if m is None:
        return 1
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ValueError(f"size_multiple must be a positive integer; received {m!r}")
    return int(m)
