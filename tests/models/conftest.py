"""Fixtures for the invdiff_models tests: conformance data and tiny configurations."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture
def one_thread():
    """Run torch on one thread (2 shared cores; the references were made with few threads)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("INVDIFF_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def conformance():
    """The folder of data made by running the original research code (read-only)."""
    path = SHARED / "conformance"
    if not path.is_dir():
        pytest.skip(f"conformance data not found at {path} (set INVDIFF_SHARED)")
    return path


def load_json(folder, name):
    with open(folder / name) as f:
        return json.load(f)


# Tiny configurations in the original formats (a few thousand parameters each).
TINY_ADM = {"image_size": 8, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,1",
            "learn_sigma": True, "attention_resolutions": "4", "num_head_channels": 16,
            "use_scale_shift_norm": True, "resblock_updown": True, "dropout": 0.0}
TINY_NCSNV2 = {"model": {"ngf": 4, "sigma_begin": 5.0, "sigma_end": 0.1, "num_classes": 6,
                         "normalization": "InstanceNorm++", "nonlinearity": "elu"},
               "data": {"channels": 1, "image_size": 8}}
TINY_NCSNPP = {"model": {"nf": 8, "ch_mult": [1, 2], "num_res_blocks": 1,
                         "attn_resolutions": [4], "fir": True, "fir_kernel": [1, 3, 3, 1],
                         "progressive": "output_skip", "progressive_input": "input_skip",
                         "progressive_combine": "sum", "embedding_type": "fourier",
                         "fourier_scale": 16, "scale_by_sigma": True, "init_scale": 1.0,
                         "skip_rescale": True, "resblock_type": "biggan"},
               "data": {"image_size": 8, "num_channels": 3, "centered": True},
               "training": {"sde": "rectified_flow"}}


def perturb_(net, scale=0.05, seed=0):
    """Give every parameter a random offset so zero-initialised layers matter in tests."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return net
