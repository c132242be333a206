"""Errors a user can read on the torch side: loaders, configurations and the adapter name the
argument instead of failing deep inside torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import invdiff as ivd
import invdiff_models as ivm
from invdiff_models.adapter import TorchScoreModel, torch_device, torch_dtype

from .conftest import TINY_ADM, TINY_NCSNV2

pytestmark = pytest.mark.usefixtures("one_thread")

MNIST = "mnist" in ivm.available()
needs_mnist = pytest.mark.skipif(not MNIST, reason="bundled mnist prior not present")


@pytest.fixture(scope="module")
def mnist():
    return ivm.load("mnist")


@needs_mnist
@pytest.mark.parametrize("kwargs, exc, match", [
    ({"dtype": "float32"}, None, None),                      # a dtype name is a dtype
    ({"dtype": "float64"}, None, None),
    ({"dtype": np.float32}, None, None),
    ({"dtype": "int8"}, ValueError, "dtype must be a floating dtype"),
    ({"dtype": torch.int64}, ValueError, "dtype must be a floating dtype"),
    ({"dtype": 3}, TypeError, "dtype must be"),
    ({"device": "float32"}, ValueError, "a dtype\\? pass it as dtype='float32'"),
    ({"device": "gpu"}, ValueError, "device must be a torch device"),
    ({"device": 3.5}, TypeError, "device must be"),
    ({"folder": "/nonexistent/dir"}, FileNotFoundError, "folder"),
    ({"folder": 3}, TypeError, "folder must be a path"),
])
def test_load_arguments(kwargs, exc, match):
    if exc is None:
        model = ivm.load("mnist", **kwargs)
        assert next(model.net.parameters()).dtype == torch_dtype(kwargs["dtype"])
        return
    with pytest.raises(exc, match=match):
        ivm.load("mnist", **kwargs)


def test_load_positional_dtype_is_caught():
    # load("mnist", "float32") passes the dtype as the device
    if not MNIST:
        pytest.skip("bundled mnist prior not present")
    with pytest.raises(ValueError, match="pass it as dtype='float32'"):
        ivm.load("mnist", "float32")


@pytest.mark.parametrize("name, exc", [(None, TypeError), (3, TypeError), ("nope", ValueError)])
def test_load_name(name, exc):
    with pytest.raises(exc, match="name must be"):
        ivm.load(name)


def test_cuda_without_cuda_is_named():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device='cuda' asks for CUDA"):
        torch_device("cuda")


@needs_mnist
@pytest.mark.parametrize("x, exc, match", [
    (np.zeros((1, 3, 28, 28), np.float32), ValueError, "x_t must have 1 channel "),
    (np.zeros((1, 1, 27, 28), np.float32), ValueError, "multiples of 4"),
    (np.zeros((28, 28), np.float32), ValueError, r"x_t must have shape \(\*batch, 1, H, W\)"),
    (np.zeros((1, 1, 28, 28), np.int64), TypeError, "x_t must have a real floating dtype"),
    (np.zeros((1, 1, 28, 28), bool), TypeError, "x_t must have a real floating dtype"),
    ([[0.0]], TypeError, "x_t must be an array"),
    (None, TypeError, "x_t must be an array"),
])
def test_mnist_model_input(mnist, x, exc, match):
    with pytest.raises(exc, match=match):
        mnist(x, 500)


@needs_mnist
@pytest.mark.parametrize("t, exc, match", [
    (-5.0, ValueError, r"t must lie in \[0, 1000\]"), (5000, ValueError, "t must lie in"),
    (math.nan, ValueError, "t must lie in"), (True, TypeError, "not a bool"),
    ("500", TypeError, "t must be a number or an array"),
    (np.zeros(3), ValueError, "broadcastable to the batch shape"),
    (np.array([True]), TypeError, "t must have a real"),
    (np.bool_(True), TypeError, "t must be a real number"),
])
def test_mnist_model_time(mnist, t, exc, match):
    with pytest.raises(exc, match=match):
        mnist(np.zeros((1, 1, 28, 28), np.float32), t)


@needs_mnist
def test_mnist_integer_time_is_the_float_time(mnist):
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(mnist(x, np.int64(500)), mnist(x, 500.0))
    np.testing.assert_array_equal(mnist(x, torch.tensor([500])), mnist(x, 500.0))


@needs_mnist
@pytest.mark.parametrize("cot, exc, match", [
    (np.zeros((2, 1, 28, 28), np.float32), ValueError, "cotangent must have the shape"),
    (np.zeros((1, 1, 28, 28), np.int64), TypeError, "cotangent must have a real floating"),
    (None, TypeError, "cotangent must be an array"),
    (lambda pred: pred[:, :, :5], ValueError, "cotangent must have the shape"),
])
def test_mnist_vjp_cotangent(mnist, cot, exc, match):
    with pytest.raises(exc, match=match):
        mnist.vjp(np.zeros((1, 1, 28, 28), np.float32), 500, cot)


def test_torch_score_model_constructor():
    net = torch.nn.Identity()
    with pytest.raises(TypeError, match="net must be a torch.nn.Module"):
        TorchScoreModel(None, ivd.processes.VP.linear(), "eps", forward=lambda n, x, t: x)
    with pytest.raises(TypeError, match="process must be"):
        TorchScoreModel(net, "vp", "eps", forward=lambda n, x, t: x)
    with pytest.raises(TypeError, match="forward must be callable"):
        TorchScoreModel(net, ivd.processes.VP.linear(), "eps", forward=None)
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        TorchScoreModel(net, ivd.processes.VP.linear(), "eps", forward=lambda n, x, t: x,
                        channels=0)


# -- configurations: no silent truncation ---------------------------------------------------
@pytest.mark.parametrize("key, value, exc, match", [
    ("num_res_blocks", 1.5, ValueError, "'num_res_blocks' must be an integer; received 1.5"),
    ("num_res_blocks", 0, ValueError, "'num_res_blocks' must be >= 1"),
    ("num_res_blocks", True, TypeError, "not a bool"),
    ("num_res_blocks", "two", ValueError, "'num_res_blocks' must be an integer"),
    ("image_size", 8.5, ValueError, "'image_size' must be an integer"),
    ("num_channels", None, TypeError, "'num_channels' must be an integer"),
    ("num_head_channels", 0, ValueError, "must be -1 or >= 1"),
    ("dropout", -0.1, ValueError, "'dropout' must be >= 0"),
    ("channel_mult", "1,x", TypeError, "'channel_mult' must be a number"),
    ("attention_resolutions", "4.5", ValueError, "'attention_resolutions' must be an integer"),
])
def test_adm_config_values(key, value, exc, match):
    cfg = dict(TINY_ADM, **{key: value})
    with pytest.raises(exc, match=match):
        ivm.adm.build(cfg)


def test_adm_integral_floats_still_build():
    net = ivm.adm.build(dict(TINY_ADM, num_res_blocks=1.0, image_size=8.0))
    assert net.image_size == 8 and isinstance(net.image_size, int)


@pytest.mark.parametrize("section, key, value, match", [
    ("model", "ngf", 4.5, "'ngf' must be an integer"),
    ("model", "num_classes", 1, "'num_classes' must be >= 2"),
    ("model", "sigma_end", 10.0, "sigma_end < sigma_begin"),
    ("model", "sigma_begin", -1.0, "'sigma_begin' must be > 0"),
    ("data", "channels", 0, "'channels' must be >= 1"),
])
def test_ncsnv2_config_values(section, key, value, match):
    cfg = {k: dict(v) for k, v in TINY_NCSNV2.items()}
    cfg[section][key] = value
    with pytest.raises((ValueError, TypeError), match=match):
        ivm.ncsnv2.build(cfg)


def test_ncsnpp_config_values():
    cfg = {"model": {"nf": 8.5, "ch_mult": [1], "num_res_blocks": 1, "attn_resolutions": []},
           "data": {"image_size": 8, "num_channels": 3, "centered": True}}
    with pytest.raises(ValueError, match="'nf' must be an integer"):
        ivm.ncsnpp.build(cfg)


@pytest.mark.parametrize("path, arch, exc, match", [
    (None, "adm", TypeError, "path must be a path"),
    ("/nonexistent.pt", "adm", FileNotFoundError, "checkpoint file not found"),
    ("/nonexistent.pt", "unet", ValueError, "arch must be one of"),
    ("/nonexistent.pt", None, ValueError, "arch must be one of"),
])
def test_load_checkpoint_path_and_arch_first(path, arch, exc, match):
    # checked before the (possibly large) network is built from the empty config
    with pytest.raises(exc, match=match):
        ivm.load_checkpoint(path, arch, {})


def test_from_diffusers_arguments(tmp_path):
    pytest.importorskip("diffusers")
    with pytest.raises(TypeError, match="folder must be a path"):
        ivm.hub.from_diffusers(None)
    with pytest.raises(FileNotFoundError, match="no UNet2DModel found"):
        ivm.hub.from_diffusers(tmp_path)
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        ivm.hub.from_diffusers(tmp_path, dtype="int32")
    with pytest.raises(TypeError, match="process must be a VP process"):
        ivm.hub.from_diffusers(tmp_path, process=ivd.processes.Flow())
