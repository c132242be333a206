"""The ScoreModel adapter: array bridging, time conventions, no_grad/eval, vjp, learned variance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import assert_close
from torch import nn

import invdiff as ivd
import invdiff_models as ivm
from invdiff_models import adapter

from .conftest import TINY_ADM, TINY_NCSNPP, TINY_NCSNV2, perturb_

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_adm():
    torch.manual_seed(0)
    return adapter.adm(perturb_(ivm.adm.build(TINY_ADM)))


@pytest.fixture(scope="module")
def tiny_rf():
    torch.manual_seed(0)
    return adapter.rectified(perturb_(ivm.ncsnpp.build(TINY_NCSNPP)))


@pytest.fixture(scope="module")
def tiny_ncsnv2():
    torch.manual_seed(0)
    return adapter.ncsnv2(perturb_(ivm.ncsnv2.build(TINY_NCSNV2)))


def images(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ array bridging
@pytest.mark.parametrize("which, t", [("tiny_adm", 37.0), ("tiny_rf", 0.4),
                                      ("tiny_ncsnv2", 0.7)])
def test_numpy_and_torch_inputs_give_identical_predictions(request, which, t):
    model = request.getfixturevalue(which)
    c = 1 if which == "tiny_ncsnv2" else 3
    x = images((2, c, 8, 8))
    out_np = model(x, t)
    out_torch = model(torch.from_numpy(x), t)
    assert isinstance(out_np, np.ndarray) and isinstance(out_torch, torch.Tensor)
    np.testing.assert_array_equal(out_np, out_torch.numpy())
    assert out_np.dtype == np.float32 and out_torch.dtype == torch.float32


def test_output_keeps_caller_dtype_and_namespace(tiny_adm):
    x64 = images((2, 3, 8, 8), dtype=np.float64)
    out = tiny_adm(x64, 20.0)
    assert out.dtype == np.float64
    ref = tiny_adm(torch.from_numpy(x64), 20.0)
    assert_close(out, ref.numpy(), rtol=0)
    assert ref.dtype == torch.float64  # cast back to the caller's dtype


def test_array_api_strict_input(tiny_adm):
    xps = pytest.importorskip("array_api_strict")
    x = images((1, 3, 8, 8), dtype=np.float32)
    out = tiny_adm(xps.asarray(x), 5.0)
    assert_close(out, xps.asarray(tiny_adm(x, 5.0)), rtol=0)


def test_read_only_input_is_not_written(tiny_adm):
    x = images((1, 3, 8, 8))
    x.flags.writeable = False
    before = x.copy()
    tiny_adm(x, 3.0)
    tiny_adm.vjp(x, 3.0, np.ones_like(x))
    np.testing.assert_array_equal(x, before)


def test_batch_dimensions_are_flattened_and_restored(tiny_adm):
    x = images((2, 3, 3, 8, 8))
    out = tiny_adm(x, 100.0)
    assert out.shape == x.shape
    # float32 convolutions round differently for different batch sizes (~1e-6)
    np.testing.assert_allclose(out[1, 2], tiny_adm(x[1, 2], 100.0), rtol=1e-5, atol=1e-5)
    assert tiny_adm(x[0, 0], 100.0).shape == (3, 8, 8)  # unbatched image


def test_per_sample_times_equal_one_at_a_time(tiny_rf):
    x = images((3, 3, 8, 8))
    t = np.array([0.1, 0.5, 0.9])
    out = tiny_rf(x, t)
    for i in range(3):
        np.testing.assert_allclose(out[i:i + 1], tiny_rf(x[i:i + 1], float(t[i])),
                                   rtol=1e-5, atol=1e-5 * np.abs(out).max())


def test_bad_arguments_are_named(tiny_adm):
    with pytest.raises(ValueError, match="x_t must have shape"):
        tiny_adm(np.zeros((8, 8), np.float32), 1.0)
    with pytest.raises(ValueError, match="broadcastable to the batch shape"):
        tiny_adm(np.zeros((2, 3, 8, 8), np.float32), np.ones(3))
    with pytest.raises(ValueError, match="t must lie in"):
        tiny_adm(np.zeros((1, 3, 8, 8), np.float32), float("nan"))
    with pytest.raises(ValueError, match="prediction must be one of"):
        adapter.TorchScoreModel(nn.Identity(), ivd.processes.Flow(), "noise",
                                forward=lambda n, x, t: x)


# ------------------------------------------------------------------ time conventions
class Probe(nn.Module):
    """Records the native time it receives; returns x * (1 + time) so outputs depend on it."""

    in_channels, out_channels = 3, 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))
        self.seen = None

    def forward(self, x, time):
        self.seen = time.detach().clone()
        return self.w * x * (1 + time.reshape(-1, 1, 1, 1))


def test_adm_native_time_is_step_minus_one():
    probe = Probe()
    model = adapter.adm(probe)
    model(np.zeros((3, 3, 2, 2), np.float32), np.array([1.0, 1000.0, 10.5]))
    assert probe.seen.dtype == torch.float32
    np.testing.assert_array_equal(probe.seen.numpy(), [0.0, 999.0, 9.5])


def test_rectified_flow_time_and_sign_convention():
    probe = Probe()
    model = adapter.rectified(probe)
    x = np.ones((3, 3, 2, 2), np.float32)
    out = model(x, np.array([0.0, 0.3, 1.0]))
    # their s = 1 - t (s = 1 at data), clamped at their eps = 1e-3; network input 999 s.
    np.testing.assert_allclose(probe.seen.numpy(), [999.0, 999 * 0.7, 0.999], rtol=1e-7)
    # invdiff's velocity d x_t/d t is minus theirs d x_s/d s.
    np.testing.assert_allclose(out[:, 0, 0, 0], -(1 + probe.seen.numpy()), rtol=1e-7)
    assert model.prediction == "velocity" and isinstance(model.process, ivd.processes.Flow)


def test_ncsnv2_at_listed_sigma_equals_label_call(tiny_ncsnv2):
    net = tiny_ncsnv2.net
    x = np.random.default_rng(1).random((2, 1, 8, 8)).astype(np.float32)
    labels = torch.tensor([0, 4])
    with torch.no_grad():
        ref = net(torch.from_numpy(x), labels).numpy()
    out = tiny_ncsnv2(x, net.sigmas[labels].double().numpy())
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    # Between levels the body is sigma-free: score(sigma) * sigma is constant.
    a, b = tiny_ncsnv2(x, 0.3), tiny_ncsnv2(x, 0.6)
    np.testing.assert_allclose(0.3 * a, 0.6 * b, rtol=1e-5, atol=1e-6)


def test_process_conversion_gives_consistent_x0(tiny_rf):
    # x0 from the velocity via the core's conversions, checked against the flow identity.
    x = images((1, 3, 8, 8), dtype=np.float64)
    t = 0.4
    v = tiny_rf(x, t)
    x0 = ivd.processes.convert(v, "velocity", "x0", x, t, tiny_rf.process)
    np.testing.assert_allclose(x0, x - t * v, rtol=1e-10, atol=1e-12)  # x_t = x0 + t v


# ------------------------------------------------------------------ no_grad / eval / vjp
def test_calls_run_in_eval_and_without_graph():
    cfg = dict(TINY_ADM, dropout=0.5)
    model = adapter.adm(perturb_(ivm.adm.build(cfg)))
    model.net.train()
    x = torch.from_numpy(images((1, 3, 8, 8))).requires_grad_(True)
    a, b = model(x, 50.0), model(x, 50.0)
    assert not model.net.training
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # dropout inactive
    assert a.grad_fn is None and not a.requires_grad


@pytest.mark.parametrize("which, t", [("adm", 300.0), ("rf", 0.35)])
def test_vjp_matches_finite_differences_float64(which, t):
    torch.manual_seed(0)
    if which == "adm":
        model = adapter.adm(perturb_(ivm.adm.build(TINY_ADM)).double())
    else:
        model = adapter.rectified(perturb_(ivm.ncsnpp.build(TINY_NCSNPP)).double())
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 8))
    v = rng.standard_normal(x.shape)
    d = rng.standard_normal(x.shape)
    pred, pulled = model.vjp(x, t, v)
    np.testing.assert_array_equal(pred, model(x, t))
    h = 1e-5
    fd = np.sum(v * (model(x + h * d, t) - model(x - h * d, t))) / (2 * h)
    assert pulled.dtype == np.float64 and pulled.shape == x.shape
    np.testing.assert_allclose(np.sum(pulled * d), fd, rtol=1e-7)  # measured ~1e-9


def test_vjp_returns_torch_for_torch(tiny_adm):
    x = torch.from_numpy(images((1, 3, 8, 8)))
    pred, pulled = tiny_adm.vjp(x, 10.0, torch.ones_like(x))
    assert isinstance(pulled, torch.Tensor) and pulled.shape == x.shape
    assert not pulled.requires_grad and not pred.requires_grad
    assert all(p.grad is None for p in tiny_adm.net.parameters())  # no parameter gradients


# ------------------------------------------------------------------ learned variance
class ConstantV(nn.Module):
    in_channels, out_channels = 1, 2

    def __init__(self, v):
        super().__init__()
        self.v = nn.Parameter(torch.tensor(float(v)))

    def forward(self, x, time):
        return torch.cat([x, torch.zeros_like(x) + self.v], dim=1)


@pytest.mark.parametrize("k", [1, 2, 500, 1000])
def test_learned_range_endpoints(k):
    proc = ivd.processes.VP.linear(1000)
    x = np.zeros((1, 1, 2, 2), np.float64)
    _, hi = adapter.adm(ConstantV(1.0).double(), proc).predict_with_log_variance(x, float(k))
    _, lo = adapter.adm(ConstantV(-1.0).double(), proc).predict_with_log_variance(x, float(k))
    np.testing.assert_allclose(hi, np.log(proc.beta(k)), rtol=1e-12)
    # guided-diffusion clips the posterior variance at step 1 to that of step 2.
    np.testing.assert_allclose(lo, np.log(proc.beta_tilde(max(k, 2))), rtol=1e-10)


def test_no_learned_variance_raises():
    model = adapter.rectified(Probe())
    with pytest.raises(AttributeError, match="no learned variance"):
        model.predict_with_log_variance(np.zeros((1, 3, 2, 2)), 0.5)


def test_class_conditional_adm_takes_labels():
    cfg = dict(TINY_ADM, class_cond=True)
    net = perturb_(ivm.adm.build(cfg))
    with pytest.raises(ValueError, match="class_labels must be given"):
        adapter.adm(net)
    x = images((2, 3, 8, 8))
    out = adapter.adm(net, class_labels=[3, 7])(x, 20.0)
    with torch.no_grad():
        ref = net(torch.from_numpy(x), torch.tensor([19.0, 19.0]), torch.tensor([3, 7]))
    np.testing.assert_array_equal(out, ref[:, :3].numpy())
    assert not np.allclose(out, adapter.adm(net, class_labels=0)(x, 20.0))


@pytest.mark.parametrize("size, channels", [(28, 1), (32, 3), (64, 3)])
def test_ncsnv2_runs_at_released_image_sizes(size, channels):
    cfg = {"model": dict(TINY_NCSNV2["model"]), "data": {"channels": channels, "image_size": size}}
    model = adapter.ncsnv2(ivm.ncsnv2.build(cfg))
    out = model(np.random.default_rng(0).random((1, channels, size, size)), 1.0)
    assert out.shape == (1, channels, size, size) and np.isfinite(out).all()
