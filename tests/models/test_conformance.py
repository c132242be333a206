"""Our architectures reproduce the ORIGINAL research code's outputs (conformance data).

Each set: build from the given config, load the given checkpoint in its original layout (EMA
applied where the original applies it), run the given inputs, compare with the original
outputs within the tolerances of ``conformance/README.md``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import invdiff_models as ivm

from .conftest import load_json

pytestmark = pytest.mark.usefixtures("one_thread")


def rel_err(out, ref):
    return float(np.max(np.abs(np.asarray(out) - ref)) / np.max(np.abs(ref)))


# --------------------------------------------------------------------------------- ADM
@pytest.fixture(scope="module")
def adm_set(request):
    shared = request.getfixturevalue("conformance")
    cfg = load_json(shared, "adm_small_config.json")
    model = ivm.load_checkpoint(shared / "adm_small.safetensors", arch="adm", config=cfg)
    return model, np.load(shared / "adm_small_io.npz")


@pytest.mark.parametrize("steps, key", [("timesteps", "output"), ("timesteps_alt", "output_t_alt")])
def test_adm_native_forward_matches_original(adm_set, steps, key):
    model, io = adm_set
    with torch.no_grad():
        out = model.net(torch.from_numpy(io["x"]), torch.from_numpy(io[steps])).numpy()
    # atol, not only rtol: plausible bugs move this weak-signal output by only ~2e-5.
    np.testing.assert_allclose(out, io[key], rtol=0, atol=1e-6)


def test_adm_adapter_maps_step_k_to_native_k_minus_1(adm_set):
    model, io = adm_set
    t = io["timesteps"].astype(np.float64) + 1.0  # invdiff steps are 1-indexed
    eps = model(io["x"], t)
    assert eps.dtype == np.float32 and eps.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(eps, io["output"][:, :3], rtol=0, atol=1e-6)


def test_adm_learned_variance_follows_guided_diffusion(adm_set):
    model, io = adm_set
    proc = model.process
    k = io["timesteps_alt"] + 1
    eps, log_var = model.predict_with_log_variance(io["x"], k.astype(np.float64))
    v = io["output_t_alt"][:, 3:].astype(np.float64)
    frac = (v + 1) / 2
    ref = np.stack([
        frac[i] * np.log(proc.beta(int(kk))) + (1 - frac[i]) * np.log(proc.beta_tilde(int(kk)))
        for i, kk in enumerate(k)
    ])
    np.testing.assert_allclose(eps, io["output_t_alt"][:, :3], rtol=0, atol=1e-6)
    np.testing.assert_allclose(log_var, ref, rtol=1e-5, atol=1e-5)


def test_adm_is_float32_and_learned_sigma(adm_set):
    model, _ = adm_set
    assert model.learned_range and model.prediction == "eps"
    assert model.process.T == 1000
    assert all(p.dtype == torch.float32 for p in model.net.parameters())


# --------------------------------------------------------------------------------- NCSNv2
@pytest.fixture(scope="module")
def ncsnv2_io(request):
    shared = request.getfixturevalue("conformance")
    return shared, load_json(shared, "ncsnv2_small_config.json"), np.load(
        shared / "ncsnv2_small_io.npz")


@pytest.mark.parametrize("filename", ["ncsnv2_small_checkpoint.pth",
                                      "ncsnv2_small_checkpoint_legacy.pth",
                                      "ncsnv2_small_ema_weights.safetensors"])
def test_ncsnv2_matches_original_with_ema(ncsnv2_io, filename):
    shared, cfg, io = ncsnv2_io
    model = ivm.load_checkpoint(shared / filename, arch="ncsnv2", config=cfg)
    for labels, key in (("labels", "output"), ("labels_b", "output_b")):
        with torch.no_grad():
            out = model.net(torch.from_numpy(io["x"]), torch.from_numpy(io[labels])).numpy()
        assert rel_err(out, io[key]) <= 1e-5, (filename, key, rel_err(out, io[key]))
    np.testing.assert_array_equal(model.net.sigmas.numpy(), io["sigmas"])


def test_ncsnv2_raw_weights_without_ema(ncsnv2_io):
    shared, cfg, io = ncsnv2_io
    model = ivm.load_checkpoint(shared / "ncsnv2_small_checkpoint.pth", arch="ncsnv2",
                                config=cfg, ema=False)
    with torch.no_grad():
        out = model.net(torch.from_numpy(io["x"]), torch.from_numpy(io["labels"])).numpy()
    assert rel_err(out, io["output_raw_states0_weights"]) <= 1e-5
    assert rel_err(out, io["output"]) > 0.1  # so the EMA test above really tests the EMA


def test_ncsnv2_adapter_at_sigma_equals_original_label(ncsnv2_io):
    shared, cfg, io = ncsnv2_io
    model = ivm.load_checkpoint(shared / "ncsnv2_small_checkpoint.pth", arch="ncsnv2",
                                config=cfg)
    assert model.prediction == "score" and model.data_range == (0.0, 1.0)
    sigmas = np.asarray(model.process.sigmas)
    np.testing.assert_allclose(sigmas, io["sigmas"], rtol=1e-6)
    t = sigmas[io["labels_b"]]  # per-sample noise levels
    out = model(io["x"], t)
    assert rel_err(out, io["output_b"]) <= 1e-5


# --------------------------------------------------------------------------------- NCSN++
@pytest.fixture(scope="module")
def rf_set(request):
    shared = request.getfixturevalue("conformance")
    cfg = load_json(shared, "rf_ncsnpp_small_config.json")
    return shared, cfg, np.load(shared / "rf_ncsnpp_small_io.npz")


def test_ncsnpp_matches_original_with_ema(rf_set):
    shared, cfg, io = rf_set
    model = ivm.load_checkpoint(shared / "rf_ncsnpp_small_checkpoint.pth", arch="ncsnpp",
                                config=cfg)
    with torch.no_grad():
        out = model.net(torch.from_numpy(io["x"]), torch.from_numpy(io["time_cond"])).numpy()
    assert rel_err(out, io["output"]) <= 1e-4
    # invdiff's flow time t = 1 - s (t = 0 is data) and velocity eps - x0 = -(x1 - z0).
    v = model(io["x"], 1.0 - io["t"].astype(np.float64))
    assert rel_err(-v, io["output"]) <= 1e-4


def test_ncsnpp_raw_weights_without_ema(rf_set):
    shared, cfg, io = rf_set
    model = ivm.load_checkpoint(shared / "rf_ncsnpp_small_checkpoint.pth", arch="ncsnpp",
                                config=cfg, ema=False)
    with torch.no_grad():
        out = model.net(torch.from_numpy(io["x"]), torch.from_numpy(io["time_cond"])).numpy()
    assert rel_err(out, io["output_raw_model_weights"]) <= 1e-4
    assert rel_err(out, io["output"]) > 0.1
    # The non-trainable Fourier W comes from 'model' whatever the EMA setting.
    assert not model.net.all_modules[0].W.requires_grad


def test_adm_fp16_as_dmps_runs_close_to_float32(conformance):
    # DMPS runs its use_fp16 LSUN models with convert_to_fp16(): half-precision convolutions.
    cfg = load_json(conformance, "adm_small_config.json")
    model = ivm.load_checkpoint(conformance / "adm_small.safetensors", arch="adm", config=cfg,
                                fp16=True)
    io = np.load(conformance / "adm_small_io.npz")
    assert model.net.input_blocks[0][0].weight.dtype == torch.float16
    assert model.net.time_embed[0].weight.dtype == torch.float32
    with torch.no_grad():
        out = model.net(torch.from_numpy(io["x"]), torch.from_numpy(io["timesteps"]))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), io["output"], rtol=0, atol=2e-4)
