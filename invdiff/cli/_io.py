"""Files, folders and the runtime of the command line (``invdiff restore`` / ``demo`` / ``train``).

Decoding and encoding images is :mod:`invdiff.io`'s business (the commands call it with
``name=`` set to their option, so its errors name ``--input`` or ``--mask``). What is left
here is specific to the commands: output paths and folders checked before any work, the
inpainting mask, MNIST discovery, and the bundled priors' runtime (devices, threads, moving
arrays to the model), which uses NumPy and torch directly; the math of the commands runs on
the arrays :func:`as_model_array` returns, in the model's namespace.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..io import _to_numpy, destination_format
from ._errors import CLIError

__all__ = ["CLIError", "observed_pixels", "check_output_path", "check_output_folder",
           "as_model_array", "to_numpy", "synchronize", "write_npz", "check_device",
           "set_threads", "runtime_info", "MNIST_FILE", "mnist_candidates", "find_mnist",
           "mnist_hint"]

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


def check_output_path(path, *, name: str = "--output", extra=()) -> Path:
    """Validate an output image path before any work is done.

    The suffix must be one of ``invdiff.io.FORMATS`` and a format this Pillow can write, the
    folder must exist (:func:`invdiff.io.destination_format`) and accept a new file (probed by
    creating and deleting one), and neither ``path`` nor the ``extra`` files written next to
    it may be folders.

    Examples
    --------
    >>> from invdiff.cli._io import check_output_path
    >>> check_output_path("out.png").name
    'out.png'
    >>> try:
    ...     check_output_path("out.xyz")
    ... except ValueError as e:
    ...     print(str(e).split(":")[0])
    --output
    """
    path = Path(path)
    if not path.name or path.name in (".", ".."):
        raise CLIError(f"{name}: needs a file name such as out.png; received {str(path)!r}")
    destination_format(path, name=name)
    for p in (path, *map(Path, extra)):
        if p.is_dir():
            raise CLIError(f"{name}: {str(p)!r} is a folder, not a file name")
    _probe_writable(path.parent if str(path.parent) else Path("."), name)
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
    """Any array (torch on any device, CuPy, NumPy, ...) as a float64 NumPy array on the host.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.cli._io import to_numpy
    >>> to_numpy(np.ones(2, dtype=np.float32)).dtype
    dtype('float64')
    """
    return np.asarray(_to_numpy(x), dtype=np.float64)  # the host copy of invdiff.io


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
