"""diffusers folders: a tiny UNet2DModel saved with save_pretrained loads and matches."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from invdiff_models import hub

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_unet(diffusers, out_channels=1):
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=out_channels, layers_per_block=1,
        block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"), attention_head_dim=8,
    )
    with torch.no_grad():  # make the zero-initialised layers matter
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return unet.eval()


@pytest.fixture(scope="module")
def diffusers():
    return pytest.importorskip("diffusers", reason="diffusers is optional (invdiff[models])")


def x_and_t():
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    return x, np.array([1.0, 800.0])


@pytest.mark.parametrize("layout", ["flat", "pipeline"])
def test_round_trip_matches_the_diffusers_model(diffusers, tmp_path, layout):
    unet = tiny_unet(diffusers)
    sched = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    if layout == "flat":
        unet.save_pretrained(tmp_path)
        sched.save_pretrained(tmp_path)
    else:
        unet.save_pretrained(tmp_path / "unet")
        sched.save_pretrained(tmp_path / "scheduler")
        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "DDPMPipeline"}))
    model = hub.from_diffusers(tmp_path)
    assert model.prediction == "eps" and not model.learned_range
    np.testing.assert_allclose(model.process.betas, sched.betas.double().numpy(), rtol=1e-7)
    x, t = x_and_t()
    with torch.no_grad():
        ref = unet(torch.from_numpy(x), torch.tensor(t - 1.0)).sample.numpy()  # 0-indexed
    np.testing.assert_array_equal(model(x, t), ref)


def test_v_prediction_is_returned_as_eps(diffusers, tmp_path):
    unet = tiny_unet(diffusers)
    unet.save_pretrained(tmp_path)
    diffusers.DDPMScheduler(prediction_type="v_prediction").save_pretrained(tmp_path)
    model = hub.from_diffusers(tmp_path)
    x, t = x_and_t()
    with torch.no_grad():
        v = unet(torch.from_numpy(x), torch.tensor(t - 1.0)).sample.double().numpy()
    a = np.array([model.process.a(float(s)) for s in t]).reshape(-1, 1, 1, 1)
    b = np.array([model.process.b(float(s)) for s in t]).reshape(-1, 1, 1, 1)
    # v = a eps - b x0 and x = a x0 + b eps  =>  eps = a v + b x
    np.testing.assert_allclose(model(x.astype(np.float64), t), a * v + b * x, rtol=1e-5,
                               atol=1e-6)


def test_sample_prediction_and_learned_range(diffusers, tmp_path):
    unet = tiny_unet(diffusers, out_channels=2)
    unet.save_pretrained(tmp_path)
    diffusers.DDPMScheduler(prediction_type="sample",
                            variance_type="learned_range").save_pretrained(tmp_path)
    model = hub.from_diffusers(tmp_path)
    assert model.prediction == "x0" and model.learned_range
    x, t = x_and_t()
    x0, log_var = model.predict_with_log_variance(x, t)
    assert x0.shape == log_var.shape == x.shape
    beta = np.array([model.process.beta(int(k)) for k in t]).reshape(-1, 1, 1, 1)
    assert np.all(log_var <= np.log(beta) + 1e-6)  # between log beta~ and log beta


def test_folder_without_scheduler_needs_a_process(diffusers, tmp_path):
    tiny_unet(diffusers).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="pass process="):
        hub.from_diffusers(tmp_path)
    import invdiff as ivd

    model = hub.from_diffusers(tmp_path, process=ivd.processes.VP.linear(50))
    assert model.process.T == 50


def test_empty_folder(diffusers, tmp_path):
    with pytest.raises(FileNotFoundError, match="no UNet2DModel"):
        hub.from_diffusers(tmp_path)


def test_missing_diffusers_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` fail
    with pytest.raises(ImportError, match=r"invdiff\[models\]"):
        hub.from_diffusers(tmp_path)
