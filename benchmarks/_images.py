"""Shared pieces of the image benchmarks (``restoration``, ``quantized_cs``).

* Held-out data. MNIST: only indices 9000–9999 of the t10k file are held out from the
  bundled prior's training (``/work/shared/data/mnist/README.md``); the benchmarks split
  them into a *validation* part (9000–9099, where the sparsity baselines choose their
  regularization weight) and a *test* part (9100 on, where every number is measured).
  Natural: the package's demo crops of the two held-out photographs
  (``invdiff/data/demo_images.npz``): the two 32×32 crops validate, the four 32×32
  quarter tiles of each 64×64 crop are the test set (8 images; there is no more
  held-out natural data in the package).
* Priors: :func:`load_prior` reads ``NAME.safetensors`` + ``NAME.json`` from
  ``--weights-dir`` (either directly or in ``DIR/NAME/``), else the bundled weights.
* Metrics: PSNR and SSIM (Gaussian window, Wang et al.) on the ``[0, 1]`` scale after
  clipping every reconstruction to the data range, per image; images with a non-finite
  pixel count as diverged and are left out of the mean (their number is reported).
"""

from __future__ import annotations

import pathlib
import time

import numpy as np

import invdiff as ivd
from invdiff.cli._io import (
    MNIST_FILE,
    demo_images,
    find_mnist,
    mnist_candidates,
    mnist_hint,
    to_numpy,
)
from invdiff.sweep import _report

MNIST_HELDOUT = range(9000, 10000)
MNIST_VAL_START, MNIST_TEST_START = 9000, 9100


def setup_torch(threads: int):
    """One (or ``threads``) torch threads: the CPU is shared, the scripts stay polite."""
    import torch

    torch.set_num_threads(int(threads))
    return torch


def default_mnist_dir() -> pathlib.Path:
    """The MNIST folder found without being told: ``$INVDIFF_MNIST_DIR`` when set, else
    ``shared/data/mnist`` next to the checkout (``<repo>/../shared/data/mnist``, or one level
    higher for worktrees; see :func:`invdiff.cli._io.mnist_candidates`). When none holds the
    data, the first place looked (check with :func:`mnist_available`; :func:`mnist_missing`
    says where it looked and how to point to the data).

    Examples
    --------
    >>> from benchmarks._images import default_mnist_dir
    >>> default_mnist_dir().name
    'mnist'
    """
    return find_mnist() or mnist_candidates()[0]


def mnist_missing(data_dir=None) -> str:
    """Why MNIST was not found (``data_dir`` is ``--data-dir``) and how to point to it.

    Examples
    --------
    >>> from benchmarks._images import mnist_missing
    >>> mnist_missing("/nowhere").startswith("--data-dir: no t10k-images-idx3-ubyte.gz")
    True
    """
    return mnist_hint(data_dir, "--data-dir")


def mnist_available(data_dir) -> bool:
    return (pathlib.Path(data_dir) / MNIST_FILE).is_file()


def mnist_split(data_dir, n_val: int, n_test: int, *, dtype, device="cpu"):
    """Validation (9000...) and test (9100...) MNIST images in ``[-1, 1]``, ``(n, 1, 28, 28)``.

    Examples
    --------
    >>> import torch
    >>> from benchmarks._images import default_mnist_dir, mnist_available, mnist_split
    >>> d = default_mnist_dir()
    >>> if mnist_available(d):
    ...     val, test = mnist_split(d, 2, 3, dtype=torch.float32)
    ...     print(tuple(val.shape), tuple(test.shape))
    ... else:
    ...     print((2, 1, 28, 28), (3, 1, 28, 28))
    (2, 1, 28, 28) (3, 1, 28, 28)
    """
    import torch

    from invdiff_models.training import load_mnist

    if not 1 <= n_val <= MNIST_TEST_START - MNIST_VAL_START:
        raise ValueError(f"n_val must be in [1, {MNIST_TEST_START - MNIST_VAL_START}] "
                         f"(validation indices 9000-9099); received {n_val}")
    if not 1 <= n_test <= MNIST_HELDOUT.stop - MNIST_TEST_START:
        raise ValueError(f"n_test must be in [1, {MNIST_HELDOUT.stop - MNIST_TEST_START}] "
                         f"(test indices 9100-9999); received {n_test}")
    val_idx = range(MNIST_VAL_START, MNIST_VAL_START + n_val)
    test_idx = range(MNIST_TEST_START, MNIST_TEST_START + n_test)

    def load(idx):
        raw = load_mnist(data_dir, idx)[:, None].astype(np.float64)
        return torch.as_tensor(raw / 127.5 - 1.0, dtype=dtype, device=device)

    return load(val_idx), load(test_idx)


def natural_split(*, dtype, device="cpu"):
    """Validation and test crops of the held-out photographs, ``[-1, 1]``, ``(n, 3, 32, 32)``.

    Returns ``None`` when ``invdiff/data/demo_images.npz`` lacks the crops.
    """
    import torch

    try:
        d = demo_images()
    except FileNotFoundError:
        return None
    if not {"astronaut", "coffee", "astronaut_32", "coffee_32"} <= d.keys():
        return None
    val = [d["astronaut_32"], d["coffee_32"]]
    test = [d[k][:, i:i + 32, j:j + 32] for k in ("astronaut", "coffee")
            for i in (0, 32) for j in (0, 32)]

    def as_tensor(images):
        x = np.stack(images).astype(np.float64) / 127.5 - 1.0
        return torch.as_tensor(x, dtype=dtype, device=device)

    return as_tensor(val), as_tensor(test)


def find_weights(name: str, weights_dir) -> pathlib.Path | None:
    """The folder holding ``NAME.safetensors`` + ``NAME.json``: ``DIR``, ``DIR/NAME`` or bundled."""
    import invdiff_models as ivm

    if weights_dir is None:
        return pathlib.Path("<bundled>") if name in ivm.available() else None
    base = pathlib.Path(weights_dir)
    for folder in (base, base / name):
        if (folder / f"{name}.safetensors").is_file() and (folder / f"{name}.json").is_file():
            return folder
    return None


def load_prior(name: str, weights_dir, device="cpu"):
    """``(model, source)`` for prior ``name``, or ``(None, reason)`` when its weights are absent."""
    import invdiff_models as ivm

    folder = find_weights(name, weights_dir)
    if folder is None:
        where = weights_dir if weights_dir is not None else "invdiff_models/bundled"
        return None, f"no {name}.safetensors + {name}.json in {where}"
    bundled = str(folder) == "<bundled>"
    model = ivm.load(name, device=device, folder=None if bundled else folder)
    steps = model.metadata.get("training", {}).get("steps_done")
    planned = model.metadata.get("training", {}).get("steps_planned")
    return model, f"{'bundled' if bundled else folder} ({steps}/{planned} training steps)"


def is_partial(model) -> bool:
    """True when the prior's sidecar says its training stopped before the planned steps."""
    tr = getattr(model, "metadata", {}).get("training", {})
    done, planned = tr.get("steps_done"), tr.get("steps_planned")
    return done is not None and planned is not None and done < planned


def image_scores(x_hat, x_true, low: float, high: float) -> dict:
    """Per-image PSNR/SSIM on the ``[0, 1]`` scale (after clipping to ``[low, high]``).

    Returns a dict of NumPy arrays ``psnr``, ``ssim`` (NaN where diverged) and ``finite``.

    Examples
    --------
    >>> import numpy as np
    >>> from benchmarks._images import image_scores
    >>> x = np.zeros((2, 1, 16, 16)); x[1, 0, 0, 0] = np.nan
    >>> s = image_scores(x, np.zeros((2, 1, 16, 16)) + 0.1, 0.0, 1.0)
    >>> s["finite"].tolist(), round(float(s["psnr"][0]), 6), bool(np.isnan(s["psnr"][1]))
    ([True, False], 20.0, True)
    """
    x_hat = to_numpy(x_hat)
    x_true = to_numpy(x_true)
    finite = np.all(np.isfinite(x_hat.reshape(len(x_hat), -1)), axis=1)
    width = high - low
    a = (np.clip(np.where(np.isfinite(x_hat), x_hat, low), low, high) - low) / width
    b = (x_true - low) / width
    psnr = np.where(finite, np.asarray(ivd.metrics.psnr(a, b, 1.0)), np.nan)
    ssim = np.where(finite, np.asarray(ivd.metrics.ssim(a, b, 1.0)), np.nan)
    return {"psnr": psnr, "ssim": ssim, "finite": finite}


# the same summaries as `invdiff sweep report`
mean_std = _report.mean_std
fmt = _report.fmt


def lpips_status() -> str:
    """Why LPIPS is (not) computed: it needs the ``lpips`` package and AlexNet weights on disk.

    Nothing is downloaded; the benchmarks skip LPIPS unless both are already present.
    """
    try:
        import lpips  # noqa: F401
    except ImportError:
        return "LPIPS skipped: the lpips package is not installed (and no weights offline)"
    import torch

    ckpt = pathlib.Path(torch.hub.get_dir()) / "checkpoints"
    if not any(ckpt.glob("alexnet-owt-*.pth")):
        return f"LPIPS skipped: no AlexNet weights in {ckpt} (nothing is downloaded)"
    return "available"


def lpips_scores(x_hat, x_true, low: float, high: float):
    """LPIPS (AlexNet) per image on clipped reconstructions; only when :func:`lpips_status`
    says ``"available"`` (grayscale images are repeated over three channels)."""
    import lpips
    import torch

    global _LPIPS
    if _LPIPS is None:
        _LPIPS = lpips.LPIPS(net="alex", verbose=False).eval()
    a = torch.as_tensor(to_numpy(x_hat), dtype=torch.float32)
    b = torch.as_tensor(to_numpy(x_true), dtype=torch.float32)
    a = (torch.nan_to_num(a, nan=low).clamp(low, high) - low) / (high - low)
    b = (b - low) / (high - low)
    if a.shape[1] == 1:
        a, b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
    with torch.no_grad():
        return _LPIPS(a, b, normalize=True).reshape(-1).numpy().astype(np.float64)


_LPIPS = None


def plt_module():
    """matplotlib with the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    """Lay out, write (110 dpi) and close ``fig``; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tune_and_solve(solve, grid, x_val, y_val, y_test, data_range):
    """Pick ``solve``'s parameter on the validation split by PSNR, then solve the test set.

    Returns ``(x_test_hat, value, seconds)``; only the test solve is timed.
    """
    import invdiff as ivd

    value, _ = ivd.baselines.select_lambda(solve, grid, x_val, y_val, data_range=data_range)
    start = time.perf_counter()
    x = solve(y_test, value)
    return x, value, time.perf_counter() - start
