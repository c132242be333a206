"""Data of a sweep: the test images (and validation images for tuned baselines) of a
``[data.NAME]`` table, as intensities in ``[0, 1]``.

===========  ==================================================================================
source       images
===========  ==================================================================================
``mnist``    held-out MNIST digits (``t10k`` indices 9000–9999, never used in training):
             ``test`` = a count from 9100 or ``[start, stop)``, ``val`` = a count from 9000 or
             ``[start, stop)`` (default 100 and 100); ``dir`` = the MNIST folder (default
             ``$INVDIFF_MNIST_DIR``, else ``shared/data/mnist`` next to the checkout)
``natural``  the held-out photographs of ``invdiff/data/demo_images.npz``: test = the 8
             quarter tiles (32×32) of the two 64×64 crops, val = the two 32×32 crops
``folder``   every image file in ``path`` (sorted by name), validation images in
             ``val_path``; 8- and 16-bit PNG, JPEG, TIFF ... (:func:`invdiff.io.read_image`)
``npz``      the array ``key`` (default ``images``; validation ``val_key``) of ``path``:
             ``(n, C, H, W)`` or ``(n, H, W)``, uint8 (0–255) or float in ``[0, 1]``
===========  ==================================================================================

``test = n`` keeps the first ``n`` test images of any source. Every table names its ``prior``
(a ``[priors]`` table). Images are identified by their MNIST index, file name or position,
and the unit spec lists them, so adding images to a sweep leaves the existing units alone.
"""

from __future__ import annotations

import pathlib

import numpy as np

from ._errors import SweepError

__all__ = ["SOURCES", "describe", "images", "default_mnist_dir"]

SOURCES = ("mnist", "natural", "folder", "npz")
MNIST_HELDOUT = (9000, 10000)
MNIST_VAL, MNIST_TEST = 9000, 9100
_KEYS = {"mnist": {"test", "val", "dir"}, "natural": {"test", "val"},
         "folder": {"path", "val_path", "test"}, "npz": {"path", "key", "val_key", "test"}}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pgm", ".ppm"}

_CACHE: dict[str, object] = {}  # decoded sources, per process


def default_mnist_dir() -> pathlib.Path:
    """``$INVDIFF_MNIST_DIR``, else ``shared/data/mnist`` next to the checkout (the first of
    :func:`invdiff.cli._io.mnist_candidates` that holds the file, as ``invdiff demo``).

    Examples
    --------
    >>> from invdiff.sweep._data import default_mnist_dir
    >>> default_mnist_dir().name
    'mnist'
    """
    from ..cli._io import find_mnist, mnist_candidates

    return find_mnist() or mnist_candidates()[0]


def _path(value, base) -> pathlib.Path:
    p = pathlib.Path(value).expanduser()
    return p if p.is_absolute() else pathlib.Path(base) / p


class DataInfo:
    """Test and validation image ids of a data table and their ``(C, H, W)`` shape."""

    def __init__(self, test, val, shape):
        self.test, self.val, self.shape = list(test), (None if val is None else list(val)), shape


def describe(name: str, spec: dict, base) -> DataInfo:
    """Check ``data.NAME`` and list its images (cheap: no decoding beyond one image)."""
    where = f"data.{name}"
    source = spec.get("source")
    if source not in SOURCES:
        raise SweepError(f"{where}.source must be one of {SOURCES}; received {source!r}")
    unknown = set(spec) - _KEYS[source] - {"source", "prior"}
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {sorted(unknown)} for source {source!r}; "
                         f"allowed: {sorted(_KEYS[source] | {'source', 'prior'})}")
    info = {"mnist": _describe_mnist, "natural": _describe_natural,
            "folder": _describe_folder, "npz": _describe_npz}[source](where, spec, base)
    if not info.test:
        raise SweepError(f"{where}: no test images")
    return info


def _count(where, key, value, limit):
    if value is None:
        return limit
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise SweepError(f"{where}.{key} must be a count in [1, {limit}]; received {value!r}")
    return value


def _mnist_range(where, key, value, start, stop):
    if isinstance(value, int) and not isinstance(value, bool):
        value = [start, start + value]
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise SweepError(f"{where}.{key} must be a count or [start, stop); received {value!r}")
    lo, hi = value
    if not MNIST_HELDOUT[0] <= lo < hi <= MNIST_HELDOUT[1]:
        raise SweepError(f"{where}.{key}: MNIST indices must lie in the held-out range "
                         f"[{MNIST_HELDOUT[0]}, {MNIST_HELDOUT[1]}) (the priors trained on the "
                         f"rest); received [{lo}, {hi})")
    return list(range(lo, hi))


def _describe_mnist(where, spec, base):
    folder = _path(spec["dir"], base) if "dir" in spec else default_mnist_dir()
    if not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        raise SweepError(f"{where}.dir: no t10k-images-idx3-ubyte.gz in {folder} (set dir or "
                         f"$INVDIFF_MNIST_DIR)")
    test = _mnist_range(where, "test", spec.get("test", 100), MNIST_TEST, MNIST_HELDOUT[1])
    val = _mnist_range(where, "val", spec.get("val", 100), MNIST_VAL, MNIST_TEST)
    if set(test) & set(val):
        raise SweepError(f"{where}: test and val indices overlap")
    return DataInfo(test, val, (1, 28, 28))


def _natural_path() -> pathlib.Path:
    return pathlib.Path(__file__).resolve().parents[1] / "data" / "demo_images.npz"


def _describe_natural(where, spec, base):
    path = _natural_path()
    if not path.is_file():
        raise SweepError(f"{where}: {path} is missing (the natural tiles ship with the package)")
    n = _count(where, "test", spec.get("test"), 8)
    n_val = _count(where, "val", spec.get("val"), 2)
    return DataInfo(range(n), range(n_val), (3, 32, 32))


def _image_files(where, key, folder):
    if not folder.is_dir():
        raise SweepError(f"{where}.{key}: folder not found: {folder}")
    files = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise SweepError(f"{where}.{key}: no image files in {folder}")
    return files


def _describe_folder(where, spec, base):
    if "path" not in spec:
        raise SweepError(f"{where}.path is required for source 'folder'")
    files = _image_files(where, "path", _path(spec["path"], base))
    files = files[:_count(where, "test", spec.get("test"), len(files))]
    val = (_image_files(where, "val_path", _path(spec["val_path"], base))
           if "val_path" in spec else None)
    shape = _read_image(where, _path(spec["path"], base) / files[0])[0].shape
    return DataInfo(files, val, tuple(int(s) for s in shape))


def _npz_array(where, spec, base, key_name):
    path = _path(spec["path"], base)
    cache_key = f"npz:{path}:{key_name}"
    if cache_key not in _CACHE:
        if not path.is_file():
            raise SweepError(f"{where}.path: file not found: {path}")
        key = spec.get(key_name, "images" if key_name == "key" else None)
        with np.load(path, allow_pickle=False) as f:
            if key not in f.files:
                raise SweepError(f"{where}.{key_name}: {path} has no array {key!r}; it has "
                                 f"{sorted(f.files)}")
            a = np.asarray(f[key])
        if a.ndim == 3:
            a = a[:, None]
        if a.ndim != 4 or a.shape[1] not in (1, 3):
            raise SweepError(f"{where}.{key_name}: images must be (n, C, H, W) with C = 1 or 3, "
                             f"or (n, H, W); received shape {a.shape}")
        if a.dtype == np.uint8:
            _CACHE[cache_key] = (a, 255.0)
        elif np.issubdtype(a.dtype, np.floating):
            if not (np.all(np.isfinite(a)) and a.min() >= 0 and a.max() <= 1):
                raise SweepError(f"{where}.{key_name}: float images must lie in [0, 1]")
            _CACHE[cache_key] = (a.astype(np.float64), 1.0)
        else:
            raise SweepError(f"{where}.{key_name}: images must be uint8 or float; received "
                             f"{a.dtype}")
    return _CACHE[cache_key]


def _describe_npz(where, spec, base):
    if "path" not in spec:
        raise SweepError(f"{where}.path is required for source 'npz'")
    a, _ = _npz_array(where, spec, base, "key")
    n = _count(where, "test", spec.get("test"), len(a))
    val = None
    if "val_key" in spec:
        v, _ = _npz_array(where, spec, base, "val_key")
        if v.shape[1:] != a.shape[1:]:
            raise SweepError(f"{where}.val_key: validation images {v.shape[1:]} differ from "
                             f"test images {a.shape[1:]}")
        val = range(len(v))
    return DataInfo(range(n), val, tuple(int(s) for s in a.shape[1:]))


def _read_image(where, path):
    """``(raw, scale)``: the file's intensities in [0, 1] (``invdiff.io.read_image``)."""
    from ..io import read_image

    try:
        return read_image(path, data_range=(0.0, 1.0), dtype=np.float64), 1.0
    except (OSError, ValueError) as e:
        raise SweepError(f"{where}: cannot read image {path}: {e}") from None


def images(name: str, spec: dict, base, ids, split: str):
    """``(raw, scale)``: images ``ids`` of ``split`` as ``(n, C, H, W)``, intensity raw/scale.

    MNIST and the natural tiles come back as uint8 with scale 255, so that a model-range
    image is computed exactly as ``raw / (255 / (high - low)) + low``.
    """
    where = f"data.{name}"
    source = spec["source"]
    if source == "mnist":
        return _mnist(spec, base)[np.asarray(ids) - MNIST_HELDOUT[0]], 255.0
    if source == "natural":
        test, val = _natural()
        return (test if split == "test" else val)[np.asarray(ids)], 255.0
    if source == "npz":
        a, scale = _npz_array(where, spec, base, "key" if split == "test" else "val_key")
        return a[np.asarray(ids)], scale
    folder = _path(spec["path" if split == "test" else "val_path"], base)
    decoded = [_read_image(where, folder / f) for f in ids]
    shapes = {a.shape for a, _ in decoded}
    if len(shapes) != 1:
        raise SweepError(f"{where}: images differ in shape {sorted(shapes)}")
    return np.stack([a for a, _ in decoded]), 1.0


def _mnist(spec, base):
    folder = _path(spec["dir"], base) if "dir" in spec else default_mnist_dir()
    key = f"mnist:{folder}"
    if key not in _CACHE:
        from invdiff_models.training import load_mnist

        _CACHE[key] = load_mnist(folder, range(*MNIST_HELDOUT))[:, None]
    return _CACHE[key]


def _natural():
    if "natural" not in _CACHE:
        with np.load(_natural_path(), allow_pickle=False) as d:
            val = np.stack([d["astronaut_32"], d["coffee_32"]])
            test = np.stack([d[k][:, i:i + 32, j:j + 32] for k in ("astronaut", "coffee")
                             for i in (0, 32) for j in (0, 32)])
        _CACHE["natural"] = (test, val)
    return _CACHE["natural"]
