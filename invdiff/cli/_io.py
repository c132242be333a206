"""Image files in and out of the command line (``invdiff restore`` / ``invdiff demo``).

This is the package's I/O boundary, so it uses NumPy, Pillow and (for the bundled priors'
runtime: devices, threads, moving arrays to the model) torch directly; decoding and encoding
files is not array math, and the Array-API rule of the core does not apply here. The math of
the commands runs on the arrays :func:`as_model_array` returns, in the model's namespace.

Intensities on disk are ``[0, 1]`` floats after decoding (8-bit divided by 255, 16-bit by
65535); arrays are ``(C, H, W)`` float32 with ``C`` = 1 or 3.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ._errors import CLIError

__all__ = ["CLIError", "read_image", "match_channels", "observed_pixels", "to_uint8",
           "encode_image", "AtomicWriter", "check_output_path", "check_output_folder",
           "IMAGE_SUFFIXES", "MAX_PIXELS", "as_model_array", "to_numpy", "synchronize",
           "write_npz", "check_device", "set_threads", "runtime_info", "MNIST_FILE",
           "mnist_candidates", "find_mnist", "mnist_hint"]

#: Output formats ``restore`` writes (Pillow names them by suffix).
IMAGE_SUFFIXES = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF",
                  ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP"}


#: The file of MNIST's test images (the priors' data; held-out indices 9000-9999).
MNIST_FILE = "t10k-images-idx3-ubyte.gz"


def mnist_candidates(explicit=None) -> list[Path]:
    """Folders that may hold :data:`MNIST_FILE`, in the order they are tried.

    ``explicit`` (a ``--data-dir`` value other than ``"auto"``) is the only candidate when
    given, else ``$INVDIFF_MNIST_DIR`` when set; otherwise ``shared/data/mnist`` one and two
    levels above the repository checkout and above the working directory (the layout
    ``<work>/<checkout>`` next to ``<work>/shared``, and worktrees one level deeper).

    Examples
    --------
    >>> from invdiff.cli._io import mnist_candidates
    >>> [p.name for p in mnist_candidates("/data/mnist")]
    ['mnist']
    >>> all(p.name == "mnist" for p in mnist_candidates())
    True
    """
    if explicit is not None and explicit != "auto":
        return [Path(explicit)]
    env = os.environ.get("INVDIFF_MNIST_DIR")
    if env:  # the user said where: no guessing elsewhere
        return [Path(env)]
    out = []
    for base in _search_bases():
        for above in (base.parent, base.parent.parent):
            out.append(above / "shared" / "data" / "mnist")
    seen, unique = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            unique.append(p)
    return unique


def _search_bases() -> list[Path]:
    """The repository checkout this package runs from, and the working directory."""
    return [Path(__file__).resolve().parents[2], Path.cwd().resolve()]


def find_mnist(explicit=None) -> Path | None:
    """The first of :func:`mnist_candidates` that holds :data:`MNIST_FILE`, or ``None``.

    Examples
    --------
    >>> from invdiff.cli._io import find_mnist
    >>> find_mnist("/no/such/folder") is None
    True
    """
    for folder in mnist_candidates(explicit):
        if (folder / MNIST_FILE).is_file():
            return folder
    return None


def mnist_hint(explicit=None, option: str = "--data-dir") -> str:
    """The error message when :func:`find_mnist` found nothing: where it looked, what to do.

    Examples
    --------
    >>> from invdiff.cli._io import mnist_hint
    >>> mnist_hint("/data", "--data-dir").split(";")[0]
    "--data-dir: no t10k-images-idx3-ubyte.gz in '/data'"
    """
    todo = (f"pass {option} DIR or set INVDIFF_MNIST_DIR=DIR, where DIR holds {MNIST_FILE} "
            f"(MNIST's test images, from the MNIST distribution)")
    if explicit is not None and explicit != "auto":
        return f"{option}: no {MNIST_FILE} in {str(explicit)!r}; {todo}"
    looked = ", ".join(str(p) for p in mnist_candidates())
    env = " ($INVDIFF_MNIST_DIR)" if os.environ.get("INVDIFF_MNIST_DIR") else ""
    return f"{option}: MNIST not found (looked for {MNIST_FILE} in {looked}{env}); {todo}"


def demo_images() -> dict:
    """The shipped demo crops (``invdiff/data/demo_images.npz``), uint8 ``(3, H, W)``."""
    import importlib.resources

    path = importlib.resources.files("invdiff") / "data" / "demo_images.npz"
    with importlib.resources.as_file(path) as p, np.load(p, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k != "provenance"}


#: Largest image (pixels) the commands decode: Pillow's limit for untrusted files (about
#: 89 million pixels); a file declaring more is refused before anything is decoded.
MAX_PIXELS = 89_478_485
#: Tolerance on the range of floating-point images (rounding in the program that wrote them).
_FLOAT_SLACK = 1e-3


def read_image(path, *, name: str = "--input") -> np.ndarray:
    """Decode an image file into a ``(C, H, W)`` float32 array in ``[0, 1]``.

    Parameters
    ----------
    path : path-like
        Any format Pillow decodes (PNG, JPEG, TIFF, BMP, WebP ...). Grayscale stays one
        channel; palette, CMYK, YCbCr and alpha images become RGB (alpha dropped); 16-bit
        grayscale is divided by 65535; 32-bit float images must hold intensities in
        ``[0, 1]``. The EXIF orientation is applied (the image as viewers show it); of an
        animation or a multi-page file the first frame is read (with a warning).
    name : str
        The option the path came from, used in error messages.

    Returns
    -------
    numpy.ndarray
        ``(1, H, W)`` or ``(3, H, W)`` float32, finite, in ``[0, 1]``.

    Raises
    ------
    CLIError
        Missing, unreadable or undecodable file; a folder or a device instead of a file; an
        image declaring more than :data:`MAX_PIXELS` pixels (refused before decoding);
        non-finite pixels; float or 32-bit integer pixels outside the intensity range.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from invdiff.cli._io import read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> Image.fromarray(np.full((4, 6), 255, np.uint8)).save(path)
    >>> x = read_image(path)
    >>> x.shape, float(x.max())
    ((1, 4, 6), 1.0)
    """
    from PIL import Image

    path = Path(path)
    _check_readable(path, name)
    try:
        with warnings.catch_warnings():
            # a file declaring a huge size is refused, not decoded (decompression bombs)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", message="Palette images with Transparency")
            with Image.open(path) as img:
                _check_size(img, path, name)
                frames = getattr(img, "n_frames", 1)
                img.load()
                oriented = _exif_transpose(img)
                v = _decode(oriented, path, name)
    except CLIError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise CLIError(f"{name}: {str(path)!r} declares too many pixels to decode safely "
                       f"({e}); downscale or crop it") from None
    except MemoryError:
        raise CLIError(f"{name}: not enough memory to decode {str(path)!r}") from None
    except Exception as e:  # noqa: BLE001 - a corrupt file can fail anywhere in a decoder
        raise CLIError(f"{name}: cannot read {str(path)!r} as an image (PNG, JPEG, TIFF, "
                       f"BMP, WebP ...): {type(e).__name__}: {e}") from None
    if frames > 1:
        warnings.warn(f"{name}: {str(path)!r} has {frames} frames; only the first is used",
                      stacklevel=2)
    return v


def _check_readable(path: Path, name: str) -> None:
    if path.is_dir():
        raise CLIError(f"{name}: {str(path)!r} is a folder, not an image file")
    if not path.exists():
        raise CLIError(f"{name}: no such file: {str(path)!r}")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise CLIError(f"{name}: {str(path)!r} is not a regular file")
    if not os.access(path, os.R_OK):
        raise CLIError(f"{name}: permission denied: {str(path)!r}")


def _check_size(img, path: Path, name: str) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise CLIError(f"{name}: {str(path)!r} is empty ({w}x{h} pixels)")
    if w * h > MAX_PIXELS:
        raise CLIError(f"{name}: {str(path)!r} declares {w}x{h} = {w * h:,} pixels, more than "
                       f"the {MAX_PIXELS:,} this command decodes (a decompression-bomb guard); "
                       f"downscale or crop it")


def _exif_transpose(img):
    from PIL import ImageOps

    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - a broken EXIF block: keep the stored orientation
        return img


def _decode(img, path: Path, name: str) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16"):
        return (np.asarray(img, dtype=np.float32) / 65535.0)[None]
    if mode == "I":  # 32-bit integers: 16-bit PNGs on some Pillow versions
        a = np.asarray(img, dtype=np.float64)
        if a.min() < 0 or a.max() > 65535:
            raise CLIError(f"{name}: {str(path)!r} holds 32-bit integer pixels in "
                           f"[{a.min():.0f}, {a.max():.0f}]; only 0..65535 (16-bit) is "
                           f"understood: save it as an 8- or 16-bit image")
        return (a / 65535.0).astype(np.float32)[None]
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        if not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise CLIError(f"{name}: {str(path)!r} has {bad} non-finite pixel(s) (NaN or "
                           f"infinity)")
        if a.min() < -_FLOAT_SLACK or a.max() > 1 + _FLOAT_SLACK:
            raise CLIError(f"{name}: {str(path)!r} is a floating-point image with values in "
                           f"[{a.min():.4g}, {a.max():.4g}]; floating-point images must hold "
                           f"intensities in [0, 1]")
        return np.clip(a, 0.0, 1.0)[None]
    if mode in ("1", "L", "LA", "La"):
        return (np.asarray(img.convert("L"), dtype=np.float32) / 255.0)[None]
    try:
        rgb = img.convert("RGB")
    except ValueError as e:  # e.g. LAB or HSV: Pillow converts only some modes
        raise CLIError(f"{name}: {str(path)!r} has colour mode {mode!r}, which cannot be "
                       f"converted to RGB here ({e}); save it as RGB or grayscale") from None
    a = np.asarray(rgb, dtype=np.float32) / 255.0
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def match_channels(v: np.ndarray, channels: int) -> np.ndarray:
    """A decoded ``(C, H, W)`` image with ``channels`` channels.

    RGB to one channel is the mean (R + G + B) / 3 (the colorization operator's grayscale);
    one channel to RGB repeats it.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import match_channels
    >>> match_channels(np.stack([np.zeros((1, 1)), np.ones((1, 1)), np.ones((1, 1))]), 1).tolist()
    [[[0.6666666666666666]]]
    """
    if v.shape[0] == channels:
        return v
    if channels == 1:
        return v.mean(axis=0, keepdims=True)
    return np.repeat(v, channels, axis=0)


def observed_pixels(v: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Observed pixels ``(H, W)`` for inpainting: ``mask > 0`` in any channel, or, without a
    mask, the pixels of ``v`` that are not exactly black.

    Raises
    ------
    CLIError
        Mask of another size than ``v``, or no observed pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import observed_pixels
    >>> observed_pixels(np.array([[[0.0, 0.3]]])).tolist()
    [[False, True]]
    """
    if mask is not None:
        if mask.shape[1:] != v.shape[1:]:
            raise CLIError(f"--mask: must have the size of --input ({v.shape[2]}x{v.shape[1]}); "
                           f"received {mask.shape[2]}x{mask.shape[1]}")
        observed = (mask > 0).any(axis=0)
    else:
        observed = (v > 0).any(axis=0)
    if not observed.any():
        raise CLIError("--mask: no observed pixel (the mask, or the input without --mask, is "
                       "entirely black)")
    return observed


def to_uint8(x) -> np.ndarray:
    """``(C, H, W)`` intensities in ``[0, 1]`` (clipped) to an ``(H, W[, 3])`` uint8 array.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import to_uint8
    >>> to_uint8(np.array([[[0.0, 0.5, 2.0]]])).tolist()
    [[0, 128, 255]]
    """
    a = np.asarray(x, dtype=np.float64)
    a = np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    return a[0] if a.shape[0] == 1 else np.ascontiguousarray(a.transpose(1, 2, 0))


def check_output_path(path, *, name: str = "--output", extra=()) -> Path:
    """Validate an output image path before any work is done.

    The suffix must be one of :data:`IMAGE_SUFFIXES` (and a format this Pillow can write),
    the folder must exist and accept a new file (probed by creating and deleting one), and
    neither ``path`` nor the ``extra`` files written next to it may be folders.

    Examples
    --------
    >>> from invdiff.cli._io import check_output_path, CLIError
    >>> check_output_path("out.png").name
    'out.png'
    >>> try:
    ...     check_output_path("out.xyz")
    ... except CLIError as e:
    ...     print(str(e).split(":")[0])
    --output
    """
    from PIL import Image

    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise CLIError(f"{name}: needs a file name such as out.png; received {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise CLIError(f"{name}: unknown image type {path.suffix!r} for {str(path)!r}; use one "
                       f"of {', '.join(sorted(IMAGE_SUFFIXES))}")
    Image.init()
    if IMAGE_SUFFIXES[suffix] not in Image.SAVE:
        raise CLIError(f"{name}: this Pillow cannot write {IMAGE_SUFFIXES[suffix]} files; use "
                       f".png")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(f"{name}: folder {str(parent)!r} does not exist")
    for p in (path, *map(Path, extra)):
        if p.is_dir():
            raise CLIError(f"{name}: {str(p)!r} is a folder, not a file name")
    _probe_writable(parent, name)
    return path


def check_output_folder(path, *, name: str = "--out") -> Path:
    """Validate an output folder before any work is done, without creating it.

    The folder, or the nearest existing folder above it (where it will be created), must
    accept new files; an existing file of that name is refused.

    Examples
    --------
    >>> import tempfile, os
    >>> from invdiff.cli._io import check_output_folder
    >>> d = tempfile.mkdtemp()
    >>> check_output_folder(os.path.join(d, "a", "b")).name
    'b'
    >>> os.path.exists(os.path.join(d, "a"))
    False
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        what = "exists and is not a folder" if existing == path else \
            f"cannot be created: {str(existing)!r} is a file"
        raise CLIError(f"{name}: {str(path)!r} {what}")
    _probe_writable(existing, name)
    return path


def _probe_writable(folder: Path, name: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".invdiff-probe.", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise CLIError(f"{name}: cannot write into folder {str(folder)!r}: "
                       f"{e.strerror or e}") from None


def encode_image(x, path, fmt: str | None = None) -> None:
    """Write ``(C, H, W)`` intensities in ``[0, 1]`` as an 8-bit image (format from suffix).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from invdiff.cli._io import encode_image, read_image
    >>> path = os.path.join(tempfile.mkdtemp(), "b.png")
    >>> encode_image(np.zeros((3, 2, 2)), path)
    >>> read_image(path).shape
    (3, 2, 2)
    """
    from PIL import Image

    fmt = fmt or IMAGE_SUFFIXES.get(Path(path).suffix.lower(), "PNG")
    img = Image.fromarray(to_uint8(x))
    kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    img.save(path, format=fmt, **kwargs)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class AtomicWriter:
    """Write several files so that either all appear or none does.

    Each :meth:`add` writes into a temporary file in the destination's folder; :meth:`commit`
    renames them all into place (``os.replace``, atomic per file on POSIX and Windows);
    leaving the ``with`` block without a commit (an error) deletes the temporary files, so a
    failed run never leaves a partial output behind.

    Examples
    --------
    >>> import os, pathlib, tempfile
    >>> from invdiff.cli._io import AtomicWriter
    >>> d = tempfile.mkdtemp()
    >>> with AtomicWriter() as w:
    ...     w.add(os.path.join(d, "a.txt"), lambda p: pathlib.Path(p).write_text("x"))
    ...     written = w.commit()
    >>> os.listdir(d), [p.name for p in written]
    (['a.txt'], ['a.txt'])
    """

    def __init__(self):
        self._pending: list[tuple[str, Path]] = []
        self.written: list[Path] = []

    def add(self, path, write) -> None:
        """Run ``write(tmp_path)`` for the final ``path`` (not visible until :meth:`commit`)."""
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


# ------------------------------------------------------------------------- runtime glue
def as_model_array(a, model, kind: str = "float"):
    """NumPy array ``a`` as an array of ``model``'s namespace and device.

    ``kind`` is ``"float"`` (float32) or ``"bool"``.

    The bundled priors are torch networks (:class:`invdiff_models.adapter.TorchScoreModel`);
    their arrays are torch tensors on ``model.device``. A model without ``device`` (e.g. an
    analytic prior) keeps NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import as_model_array
    >>> as_model_array(np.zeros(2, dtype=np.uint8), object()).dtype
    dtype('float32')
    """
    if kind not in ("float", "bool"):
        raise ValueError(f"kind must be 'float' or 'bool'; received {kind!r}")
    device = getattr(model, "device", None)
    if device is None:
        return np.asarray(a, dtype=np.float32 if kind == "float" else bool)
    import torch

    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=torch.float32 if kind == "float" else torch.bool)


def to_numpy(x) -> np.ndarray:
    """Any array (torch on any device, NumPy, ...) as a float64 NumPy array on the host.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import to_numpy
    >>> to_numpy(np.ones(2, dtype=np.float32)).dtype
    dtype('float64')
    """
    if hasattr(x, "detach"):  # torch
        x = x.detach().to("cpu")
    import array_api_compat

    if not isinstance(x, np.ndarray) and array_api_compat.is_cupy_array(x):  # pragma: no cover
        x = x.get()
    return np.asarray(x, dtype=np.float64)


def write_npz(path, arrays: dict) -> None:
    """Save arrays (any backend) as float32 in a compressed ``.npz`` at exactly ``path``.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from invdiff.cli._io import write_npz
    >>> path = os.path.join(tempfile.mkdtemp(), "a.part")
    >>> write_npz(path, {"x": np.ones(2)})
    >>> np.load(path)["x"].dtype
    dtype('float32')
    """
    host = {k: to_numpy(v).astype(np.float32) for k, v in arrays.items()}
    with open(path, "wb") as f:  # a file object: numpy would append .npz to a path
        np.savez_compressed(f, **host)


def check_device(device: str) -> None:
    """Refuse a device torch cannot use here, with a clear message.

    Examples
    --------
    >>> from invdiff.cli._io import check_device
    >>> check_device("cpu")
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as e:
        raise CLIError(f"--device: {device!r} is not a device name (cpu, cuda, cuda:N, mps): "
                       f"{e}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"--device: {device!r}: only cpu, cuda, cuda:N and mps are supported")
    if dev.type == "cpu" and dev.index not in (None, 0):
        raise CLIError(f"--device: {device!r}: the CPU has no index; use cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {device}: CUDA is not available in this torch build/machine; "
                       f"use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CLIError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise CLIError(f"--device {device}: Apple's MPS is not available here; use --device cpu")


def synchronize(x) -> None:
    """Wait until the device computing ``x`` is done (for timing; CPU arrays: no-op).

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import synchronize
    >>> synchronize(np.zeros(2))
    """
    if hasattr(x, "device") and getattr(x.device, "type", None) == "cuda":
        import torch

        torch.cuda.synchronize(x.device)
    elif hasattr(x, "device") and getattr(x.device, "type", None) == "mps":  # pragma: no cover
        import torch

        torch.mps.synchronize()
    elif type(x).__module__.startswith("cupy"):  # pragma: no cover - needs a GPU
        import cupy

        cupy.cuda.get_current_stream().synchronize()


def set_threads(n: int) -> None:
    """Number of torch CPU threads (intra-op).

    Examples
    --------
    >>> from invdiff.cli._io import set_threads
    >>> set_threads(1)
    """
    import torch

    if int(n) < 1:
        raise CLIError(f"--threads must be >= 1; received {n}")
    torch.set_num_threads(int(n))


def runtime_info() -> dict:
    """Versions and threads recorded with the demo's metrics.

    Examples
    --------
    >>> from invdiff.cli._io import runtime_info
    >>> sorted(runtime_info())
    ['cpu_count', 'python', 'torch', 'torch_threads']
    """
    import platform

    import torch

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count()
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cpu_count": cpus}
