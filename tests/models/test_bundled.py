"""Bundled trained priors: offline loading, format, and a measured denoising-PSNR floor.

The floors were MEASURED on the shipped weights (see the model cards
``invdiff_models/bundled/{mnist,natural}.md``) and set a little below the measured value, so
a broken export (wrong dtype/keys/config), a wrong time convention (k vs k-1 off by a lot) or a
wrong schedule fails, while a re-export of the same weights passes.
"""

from __future__ import annotations

import json
import os
import pathlib

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from invdiff_models import bundled  # noqa: E402
from invdiff_models.evaluate import denoising_psnr, heldout_images  # noqa: E402
from invdiff_models.training import (  # noqa: E402
    MNIST_HELDOUT_INDICES,
    MNIST_TRAIN_INDICES,
    NATURAL_EVAL,
    NATURAL_TRAIN,
    RECIPES,
)

REPO = pathlib.Path(__file__).resolve().parents[2]

# Fixed evaluation setting of the floors: DDPM step k, images, noise seed (the same setting as
# invdiff_models.evaluate.TEST_SETTING, whose "test_floor_setting" entry of NAME_eval.json is
# the measured value quoted below).
MNIST_K, MNIST_N, MNIST_SEED = 200, 32, 0
# Measured on the shipped weights (see mnist.md): PSNR_denoised at k=200 on indices 9000..9031.
MNIST_MEASURED_DB = 23.82  # shipped weights (8,776 steps), mnist_eval.json
MNIST_FLOOR_DB = 22.5
NATURAL_K, NATURAL_SEED = 50, 0
NATURAL_MEASURED_DB = 29.87  # shipped weights (13,305 steps), natural_eval.json
NATURAL_FLOOR_DB = 28.5


def _mnist_dir() -> pathlib.Path:
    env = os.environ.get("INVDIFF_MNIST_DIR")
    return pathlib.Path(env) if env else REPO.parent / "shared" / "data" / "mnist"


def _need(name):
    if name not in bundled.available():
        pytest.skip(f"bundled weights for {name!r} are not present")


def test_split_is_the_documented_one():
    # The README of the data folder fixes this split; training must never see 9000..9999.
    assert MNIST_TRAIN_INDICES == range(0, 9000)
    assert MNIST_HELDOUT_INDICES == range(9000, 10000)
    assert {"astronaut", "coffee"} <= set(NATURAL_EVAL)
    assert not set(NATURAL_EVAL) & set(NATURAL_TRAIN)
    assert not {p for _, p in NATURAL_EVAL.values()} & {p for _, p in NATURAL_TRAIN.values()}


@pytest.mark.parametrize("name", ["mnist", "natural"])
def test_files_and_metadata(name):
    _need(name)
    weights = bundled.HERE / f"{name}.safetensors"
    assert weights.stat().st_size <= 5 * 2**20
    meta = bundled.metadata(name)
    assert meta["prediction"] == "eps"
    assert meta["data_range"] == (-1.0, 1.0)
    assert meta["process"] == {"kind": "VP", "schedule": "linear", "T": 1000,
                               "beta_start": 1e-4, "beta_end": 0.02}
    assert meta["config"] == RECIPES[name]["config"]
    assert meta["training"]["steps_done"] >= 1
    assert meta["training"]["stopped_by"] in {"steps", "deadline", "SIGTERM"}
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    json.dumps(meta)  # JSON-serialisable round trip


@pytest.mark.parametrize("name,shape", [("mnist", (2, 1, 28, 28)), ("natural", (1, 3, 40, 24))])
def test_loads_offline_and_runs(name, shape, monkeypatch):
    _need(name)
    # No network: any socket use would raise.
    import socket

    def _no_net(*a, **k):
        raise AssertionError("bundled weights must load without network access")

    monkeypatch.setattr(socket.socket, "connect", _no_net)
    net, meta = bundled.load_network(name)
    assert not net.training
    assert all(not p.requires_grad for p in net.parameters())
    assert all(p.dtype == torch.float32 for p in net.parameters())
    with torch.no_grad():
        out = net(torch.zeros(shape), 499.0)
    assert out.shape == shape and torch.isfinite(out).all()


def test_load_rejects_unknown_name():
    with pytest.raises(ValueError, match="name must be a bundled prior"):
        bundled.load_network("no-such-prior")
    with pytest.raises(TypeError, match="name must be a str"):
        bundled.load_network(3)


def test_mnist_denoising_psnr_floor():
    _need("mnist")
    d = _mnist_dir()
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST data not found in {d} (set INVDIFF_MNIST_DIR)")
    torch.set_num_threads(1)
    net, _ = bundled.load_network("mnist")
    x0 = heldout_images("mnist", n=MNIST_N, data_dir=d)
    r = denoising_psnr(net, x0, MNIST_K, seed=MNIST_SEED)
    # The prior must beat "do nothing" by a wide margin and reach the measured floor.
    assert r["psnr_denoised"] > r["psnr_noisy"] + 5.0
    assert r["psnr_denoised"] > MNIST_FLOOR_DB, r


def test_natural_denoising_psnr_floor():
    _need("natural")
    pytest.importorskip("skimage")
    torch.set_num_threads(1)
    net, _ = bundled.load_network("natural")
    x0 = heldout_images("natural")
    r = denoising_psnr(net, x0, NATURAL_K, seed=NATURAL_SEED)
    assert r["psnr_denoised"] > r["psnr_noisy"] + 2.0
    assert r["psnr_denoised"] > NATURAL_FLOOR_DB, r


@pytest.mark.slow  # ~3 s alone, over 5 s when the 2 cores are shared
def test_recipe_runs_exports_and_reloads(tmp_path):
    # Two optimiser steps of the real MNIST recipe end to end: checkpoint, fp16 export, reload.
    d = _mnist_dir()
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST data not found in {d} (set INVDIFF_MNIST_DIR)")
    from invdiff_models.training import main

    assert main(["train", "mnist", "--steps", "2", "--out-dir", str(tmp_path),
                 "--data-dir", str(d)]) == 0
    meta = json.loads((tmp_path / "mnist.json").read_text())
    assert meta["training"]["steps_done"] == 2
    assert meta["training"]["steps_planned"] == 2
    assert meta["training"]["stopped_by"] == "steps"
    net, meta2 = bundled.load_network("mnist", folder=tmp_path)
    assert meta2["recipe"]["batch_size"] == RECIPES["mnist"]["batch_size"]
    with torch.no_grad():
        assert net(torch.zeros(1, 1, 28, 28), 0.0).shape == (1, 1, 28, 28)
