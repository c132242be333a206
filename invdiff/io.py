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
  atomically (a temporary file renamed into place: never a half-written file).

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

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ._array_api import device_of, is_array, namespace

__all__ = ["read_image", "write_image", "fit_size"]

#: File suffixes :func:`write_image` knows, and the Pillow format each one means.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
           ".bmp": "BMP", ".webp": "WEBP"}


# ------------------------------------------------------------------------------- reading
def read_image(path, *, model=None, data_range=None, channels=None, size_multiple=None,
               image_size=None, fit="check", like=None, dtype=None):
    r"""Read an image file as a ``(C, H, W)`` array in a prior's range.

    Parameters
    ----------
    path : str or path-like
        Any format Pillow decodes. 8-bit values are divided by 255, 16-bit grayscale by
        65535. Palette, CMYK and alpha images become RGB (alpha dropped).
    model : ScoreModel, optional
        Takes ``data_range``, ``channels``, ``size_multiple`` and ``image_size`` from the
        model's attributes of those names (the bundled priors have all four) when the
        corresponding argument is not given.
    data_range : (float, float), optional
        The range ``[low, high]`` black and white are mapped to. Default the model's, else
        ``(-1.0, 1.0)``.
    channels : {1, 3}, optional
        The number of channels of the result: RGB to 1 channel is the mean of R, G and B
        (what :class:`invdiff.operators.Colorization` measures), 1 channel to RGB repeats it.
        Default the model's, else the file's (1 for grayscale, 3 otherwise).
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

    Returns
    -------
    array of shape (C, H, W)
        The image in ``data_range``. Add a batch axis with ``x[None]``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not an image Pillow can decode, an argument is out of its domain, or
        (``fit="check"``) the size does not suit the prior.

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
    data_range = _range("data_range", data_range if data_range is not None else
                        getattr(model, "data_range", (-1.0, 1.0)))
    channels = channels if channels is not None else getattr(model, "channels", None)
    size_multiple = size_multiple if size_multiple is not None else getattr(
        model, "size_multiple", None)
    image_size = image_size if image_size is not None else getattr(model, "image_size", None)
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3; received {channels!r}")
    v = _decode_file(path)
    if channels is not None and v.shape[0] != channels:
        v = v.mean(axis=0, keepdims=True) if channels == 1 else np.repeat(v, 3, axis=0)
    v = fit_size(v, size_multiple, image_size=image_size, mode=fit, name="path")
    low, high = data_range
    x = low + (high - low) * v.astype(np.float64)
    return _to_namespace(x, like, dtype)


def _decode_file(path: Path) -> np.ndarray:
    """``(C, H, W)`` float64 intensities in [0, 1], C = 1 or 3."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"path: no such image file: {str(path)!r}")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.clip(np.asarray(img, dtype=np.float64) / 65535.0, 0.0, 1.0)[None]
            if mode == "F":
                return np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)[None]
            if mode in ("1", "L", "LA"):
                return (np.asarray(img.convert("L"), dtype=np.float64) / 255.0)[None]
            rgb = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
            return np.ascontiguousarray(rgb.transpose(2, 0, 1))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ValueError(f"path: cannot decode {str(path)!r} as an image (PNG, JPEG, TIFF, "
                         f"BMP, WebP ...): {e}") from None


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
def write_image(path, x, *, data_range=(-1.0, 1.0), quality: int = 95):
    """Write an image array as an 8-bit image file, atomically.

    Parameters
    ----------
    path : str or path-like
        Output file; the format comes from the suffix (``.png``, ``.jpg``, ``.tif``,
        ``.bmp``, ``.webp``). Its folder must exist.
    x : array of shape (C, H, W), (1, C, H, W) or (H, W)
        ``C`` = 1 or 3, any namespace and device (copied to the host).
    data_range : (float, float), default (-1.0, 1.0)
        The range of ``x``: ``low`` is written as black, ``high`` as white, values outside
        are clipped.
    quality : int, default 95
        JPEG / WebP quality.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        Unknown suffix, missing folder, a shape that is not an image, or NaN / infinite
        values (never written as black).

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
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"path: unknown image type {path.suffix!r} for {str(path)!r}; use one "
                         f"of {', '.join(sorted(FORMATS))}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"path: folder {str(folder)!r} does not exist")
    low, high = _range("data_range", data_range)
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
    img = Image.fromarray(u8[0] if u8.shape[0] == 1 else np.ascontiguousarray(
        u8.transpose(1, 2, 0)))
    kwargs = {"quality": int(quality)} if fmt in ("JPEG", "WEBP") else {}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=fmt, **kwargs)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------- validation
def _range(name: str, value) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (low, high) of numbers; "
                        f"received {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"{name} must be finite with low < high; received {value!r}")
    return low, high


def _multiple(m) -> int:
    if m is None:
        return 1
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ValueError(f"size_multiple must be a positive integer; received {m!r}")
    return int(m)
