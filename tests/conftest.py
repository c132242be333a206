"""Shared fixtures: the ``xp`` backend fixture (numpy, array-api-strict, torch-CPU, cupy)."""

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


def _backends():
    params = [pytest.param("numpy", id="numpy"), pytest.param("array_api_strict", id="strict")]
    params.append(pytest.param("torch", id="torch"))
    params.append(pytest.param("cupy", id="cupy"))
    return params


@pytest.fixture(params=_backends())
def xp(request):
    """The array namespace under test (compat-wrapped where the library is not compliant)."""
    name = request.param
    if name == "numpy":
        import array_api_compat.numpy as mod
    elif name == "array_api_strict":
        mod = pytest.importorskip("array_api_strict")
    elif name == "torch":
        pytest.importorskip("torch")
        import array_api_compat.torch as mod
    else:
        pytest.importorskip("cupy", reason="cupy needs a CUDA GPU")
        import array_api_compat.cupy as mod
    return mod


@pytest.fixture
def shared_dir():
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (set INVDIFF_SHARED)")
    return SHARED
