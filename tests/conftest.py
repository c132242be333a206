"""Shared fixtures: the ``xp`` backend fixture (numpy, array-api-strict, torch on the CPU and
on a CUDA GPU, cupy); the GPU parameters skip without a GPU."""

from __future__ import annotations

import os
import pathlib

import pytest
from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:  # tiny tensors: torch's thread pool only adds stalls on a shared 2-core machine
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("INVDIFF_SHARED", REPO.parent / "shared"))


def _cuda() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def _backends():
    params = [pytest.param("numpy", id="numpy"), pytest.param("array_api_strict", id="strict")]
    params.append(pytest.param("torch", id="torch"))
    params.append(pytest.param("torch_cuda", id="torch_cuda", marks=pytest.mark.skipif(
        not _cuda(), reason="torch on CUDA needs a CUDA GPU")))
    params.append(pytest.param("cupy", id="cupy"))
    return params


@pytest.fixture(params=_backends())
def xp(request):
    """The array namespace under test (compat-wrapped where the library is not compliant).

    For ``torch_cuda`` the namespace is torch's with CUDA as the default device during the
    test, so ``xp.asarray``/``xp.zeros`` (and the helpers built on them) create GPU tensors.
    """
    name = request.param
    if name == "numpy":
        import array_api_compat.numpy as mod
    elif name == "array_api_strict":
        mod = pytest.importorskip("array_api_strict")
    elif name in ("torch", "torch_cuda"):
        torch = pytest.importorskip("torch")
        import array_api_compat.torch as mod

        if name == "torch_cuda":
            torch.set_default_device("cuda")
            request.addfinalizer(lambda: torch.set_default_device("cpu"))
    else:
        pytest.importorskip("cupy", reason="cupy needs a CUDA GPU")
        import array_api_compat.cupy as mod
    return mod


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (set INVDIFF_SHARED)")
    return SHARED
