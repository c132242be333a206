"""The ``invdiff`` command line end to end, on tiny settings.

A tiny randomly initialised UNet is exported in the bundled format (``NAME.safetensors`` +
``NAME.json``) to a temporary folder and used through ``--weights-dir``, so the tests exercise
every path of ``demo`` / ``restore`` / ``models`` in seconds and do not depend on the shipped
weights (whose quality is tested in ``tests/models/test_bundled.py``).
"""

from __future__ import annotations

import json
import math
import os
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
PIL_Image = pytest.importorskip("PIL.Image")

from _cli_helpers import export_tiny_priors  # noqa: E402

from invdiff import _tasks  # noqa: E402
from invdiff.cli import main  # noqa: E402

SHARED = pathlib.Path(os.environ.get("INVDIFF_SHARED",
                                     pathlib.Path(__file__).resolve().parents[2] / "shared"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Tiny random priors named like the bundled ones: natural (RGB, x8) and mnist (28x28)."""
    return str(export_tiny_priors(tmp_path_factory.mktemp("weights")))


def _png(path, array):
    a = np.asarray(array)
    PIL_Image.fromarray(a).save(path)
    return str(path)


def _files(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------------------- models
def test_load_returns_scoremodel_with_contract(weights):
    import invdiff_models as ivm

    model = ivm.load("natural", folder=weights)
    assert model.data_range == (-1.0, 1.0)
    assert model.prediction == "eps"
    assert model.process.T == 1000
    assert abs(model.process.alpha_bar(1) - (1 - 1e-4)) < 1e-12
    assert model.size_multiple == 8 and model.image_size is None and model.channels == 3
    x = np.zeros((2, 3, 16, 24), dtype=np.float32)
    assert model(x, 500.0).shape == x.shape
    # the network's native time input is k - 1: invdiff's t = k must feed k - 1
    native = model.net(torch.zeros(1, 3, 8, 8), torch.tensor([9.0]))
    ours = model(torch.zeros(1, 3, 8, 8), 10.0)
    assert torch.allclose(native, ours)
    assert not callable(getattr(model, "predict_with_log_variance", None))
    with pytest.raises(ValueError, match="bundled prior"):
        ivm.load("no-such-prior", folder=weights)


def test_bundled_load_if_shipped():
    import invdiff_models as ivm

    if not ivm.available():
        pytest.skip("no bundled weights in this checkout yet")
    for name in ivm.available():
        model = ivm.load(name)
        assert model.data_range == (-1.0, 1.0)
        assert model.prediction == "eps"


def test_models_command(weights, capsys):
    assert main(["models", "--weights-dir", weights]) == 0
    out = capsys.readouterr().out
    assert "natural" in out and "mnist" in out and "VP linear, T=1000" in out
    assert main(["models", "--weights-dir", weights, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in listing["bundled"]]
    assert names == ["mnist", "natural"]
    assert listing["bundled"][1]["data_range"] == [-1.0, 1.0]
    assert "adm" in listing["loaders"]


def test_help_texts(capsys):
    assert main(["--help"]) == 0
    assert "restore" in capsys.readouterr().out
    assert main(["restore", "--help"]) == 0
    text = capsys.readouterr().out
    for task in _tasks.TASKS:
        assert task in text
    assert "low-resolution image" in text and "_ci90.png" in text
    for option in ("--checkpoint", "--arch", "--config", "--force", "--dry-run", "--debug",
                   "--batch-size", "scale bar"):
        assert option in text


def test_train_delegates_to_training_main(monkeypatch, tmp_path):
    from invdiff_models import training

    seen = []
    monkeypatch.setattr(training, "main", lambda argv=None: seen.append(argv) or 0)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    (mnist / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    out = str(tmp_path / "x")
    assert main(["train", "mnist", "--steps", "2", "--out-dir", out, "--data-dir",
                 str(mnist)]) == 0
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "ckpt.pt").write_bytes(b"")
    assert main(["train", "export", "mnist", "--out-dir", out]) == 0
    assert seen == [["train", "mnist", "--steps", "2", "--out-dir", out, "--data-dir",
                     str(mnist)], ["export", "mnist", "--out-dir", out]]


# ------------------------------------------------------------------------------- demo
def test_demo_quick_end_to_end(weights, tmp_path, capsys):
    """``demo --quick`` (with MNIST when the shared data is here), then ``restore`` on one of
    the measurement images it wrote (they are valid inputs)."""
    mnist = SHARED / "data" / "mnist"
    with_mnist = (mnist / "t10k-images-idx3-ubyte.gz").is_file()
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--out", str(out), "--weights-dir", weights, "--no-progress"]
    assert main(argv + (["--data-dir", str(mnist)] if with_mnist else [])) == 0
    report = json.loads((out / "metrics.json").read_text())
    cases = [(c["prior"], c["case"]) for c in report["cases"]]
    expected = [("natural", "sr4"), ("natural", "deblur"), ("natural", "inpaint"),
                ("natural", "colorize"), ("natural", "denoise"), ("natural", "cs1bit")]
    if with_mnist:
        expected += [("mnist", "sr4"), ("mnist", "inpaint"), ("mnist", "denoise"),
                     ("mnist", "cs1bit")]
    assert cases == expected
    for case in report["cases"]:
        main_r, base_r = case["results"]
        assert main_r["samples"] == 2 and main_r["nfe"] > 0
        # the baselines need no network: their PSNR is a real number whatever the weights
        assert math.isfinite(base_r["psnr"]) and base_r["psnr"] > 5.0
    # only held-out MNIST digits are shown
    assert all(int(c["image"][6:-1]) >= 9000 for c in report["cases"] if c["prior"] == "mnist")
    with PIL_Image.open(out / "demo.png") as img:
        assert img.width > 6 * 128 and img.height > len(expected) * 128
    text = capsys.readouterr().out
    assert "PSNR" in text and "QCS-SGM" in text and "total wall time" in text
    inputs = out / "inputs"
    assert {"natural_sr4_astronaut_32.png", "natural_inpaint_coffee_32_mask.png"} <= set(
        _files(inputs))
    res = tmp_path / "restored.png"
    assert main(["restore", "--task", "inpaint", "--method", "tv", "--input",
                 str(inputs / "natural_inpaint_coffee_32.png"), "--mask",
                 str(inputs / "natural_inpaint_coffee_32_mask.png"), "--output", str(res),
                 "--weights-dir", weights, "--no-progress"]) == 0
    with PIL_Image.open(res) as img:
        assert img.size == (32, 32)


# ------------------------------------------------------------------------------- restore
def test_restore_writes_mean_std_and_interval(weights, tmp_path, capsys):
    rng = np.random.default_rng(0)
    src = _png(tmp_path / "low.png", rng.integers(0, 256, (8, 6, 3), dtype=np.uint8))
    out = tmp_path / "high.png"
    code = main(["restore", "--task", "sr4", "--method", "dmps", "--input", src, "--output",
                 str(out), "--samples", "3", "--steps", "4", "--seed", "1", "--npz",
                 "--weights-dir", weights, "--no-progress"])
    assert code == 0
    assert _files(tmp_path) == ["high.png", "high_ci90.png", "high_posterior.npz", "high_std.png",
                                "low.png"]
    with PIL_Image.open(out) as img:
        assert img.size == (24, 32) and img.mode == "RGB"  # 4x the 6x8 (w x h) input
    post = np.load(tmp_path / "high_posterior.npz")
    assert post["samples"].shape == (3, 3, 32, 24)
    np.testing.assert_allclose(post["mean"], post["samples"].mean(0), atol=1e-6)
    np.testing.assert_allclose(post["std"], post["samples"].std(0, ddof=1), atol=1e-6)
    assert np.all(post["width"] >= 0) and np.all(post["upper"] >= post["lower"])
    from invdiff.cli._figure import colormap

    lut = colormap(np.linspace(0.0, 1.0, 2001)[None, :])[:, 0, :].T  # (2001, 3)
    for name, key in (("high_std.png", "std"), ("high_ci90.png", "width")):
        with PIL_Image.open(tmp_path / name) as img:
            vmax = float(img.info["invdiff:vmax"])
            rgb = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
        # the map keeps the restored image's pixels at the top left, a scale bar to the right
        assert rgb.shape[1] > 24 and rgb.shape[0] >= 32
        values = post[key].mean(axis=0)
        assert values.max() <= vmax <= 1.2 * values.max() + 1e-6
        # decode the colours back through the colour map: the values on the [0, 1] scale
        pixels = rgb[:32, :24].reshape(-1, 3)
        nearest = np.argmin(((pixels[:, None, :] - lut[None, :, :]) ** 2).sum(-1), axis=1)
        decoded = (nearest / 2000.0 * vmax).reshape(32, 24)
        np.testing.assert_allclose(decoded, values, atol=0.03 * vmax)
        # and the bar: bottom = colour of 0, top = colour of vmax
        bar = rgb[:, 24:].reshape(-1, 3)
        for end in (lut[0], lut[-1]):
            assert np.min(np.abs(bar - end).sum(-1)) < 0.02
    text = capsys.readouterr().out
    assert "wrote" in text and "plan: 3 sample(s)" in text and "colour bars" in text


def test_restore_same_seed_same_result(weights, tmp_path):
    src = _png(tmp_path / "g.png", np.full((16, 16), 128, np.uint8))
    args = ["restore", "--task", "denoise", "--method", "dmps", "--input", src, "--steps", "3",
            "--samples", "2", "--weights-dir", weights, "--no-progress", "--seed", "7"]
    assert main([*args, "--output", str(tmp_path / "a.png")]) == 0
    assert main([*args, "--output", str(tmp_path / "b.png")]) == 0
    with PIL_Image.open(tmp_path / "a.png") as a, PIL_Image.open(tmp_path / "b.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert a.mode == "RGB"  # grey input on the RGB prior: replicated channels


def test_restore_inpaint_uses_mask_and_mnist_sizes(weights, tmp_path):
    digit = _png(tmp_path / "d.png", np.full((28, 28), 200, np.uint8))
    mask = np.zeros((28, 28), np.uint8)
    mask[:, :14] = 255
    mask_path = _png(tmp_path / "m.png", mask)
    out = tmp_path / "o.png"
    assert main(["restore", "--task", "inpaint", "--method", "dmps", "--input", digit, "--mask",
                 mask_path, "--output", str(out), "--model", "mnist", "--steps", "3",
                 "--weights-dir", weights, "--no-progress"]) == 0
    with PIL_Image.open(out) as img:
        assert img.size == (28, 28) and img.mode == "L"


def _restore_args(weights, inp, out, *extra):
    return ["restore", "--task", "sr4", "--method", "dmps", "--input", str(inp), "--output",
            str(out), "--steps", "2", "--weights-dir", weights, "--no-progress", *extra]


@pytest.mark.parametrize("case", ["unreadable", "missing", "odd-size", "mnist-size",
                                  "mask-size", "bad-suffix", "no-folder", "unknown-model",
                                  "colorize-gray-prior", "zero-samples", "black-mask",
                                  "blur-wider-than-image"])
def test_restore_rejects_bad_input_without_output(case, weights, tmp_path, capsys):
    good = _png(tmp_path / "in.png", np.full((8, 8, 3), 90, np.uint8))
    out = tmp_path / "out.png"
    if case == "unreadable":
        bad = tmp_path / "bad.png"
        bad.write_text("this is not an image")
        argv = _restore_args(weights, bad, out)
    elif case == "missing":
        argv = _restore_args(weights, tmp_path / "nope.png", out)
    elif case == "odd-size":  # 4 x 15 = 60 is not a multiple of the network's 8
        argv = _restore_args(weights, _png(tmp_path / "odd.png", np.zeros((15, 15, 3), np.uint8)),
                             out)
    elif case == "mnist-size":
        argv = _restore_args(weights, good, out, "--model", "mnist")
    elif case == "mask-size":
        argv = _restore_args(weights, good, out, "--mask",
                             _png(tmp_path / "m.png", np.zeros((4, 4), np.uint8)))
        argv[2] = "inpaint"
    elif case == "bad-suffix":
        argv = _restore_args(weights, good, tmp_path / "out.xyz")
    elif case == "no-folder":
        argv = _restore_args(weights, good, tmp_path / "missing" / "out.png")
    elif case == "unknown-model":
        argv = _restore_args(weights, good, out, "--model", "imagenet")
    elif case == "colorize-gray-prior":
        argv = _restore_args(weights, good, out, "--model", "mnist")
        argv[2] = "colorize"
    elif case == "zero-samples":
        argv = _restore_args(weights, good, out, "--samples", "0")
    elif case == "blur-wider-than-image":  # sigma 3 px: 31 taps on an 8x8 image
        argv = _restore_args(weights, good, out)
        argv[2] = "deblur"
    else:  # inpainting with nothing observed
        argv = _restore_args(weights, _png(tmp_path / "k.png", np.zeros((8, 8, 3), np.uint8)),
                             out)
        argv[2] = "inpaint"
    before = _files(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("invdiff restore: error: ") and err.count("\n") == 1
    assert _files(tmp_path) == before  # nothing written, no temporary file left


@pytest.mark.parametrize("flag,value", [("--task", "sr5"), ("--method", "magic")])
def test_restore_rejects_unknown_task_or_method(flag, value, weights, tmp_path, capsys):
    good = _png(tmp_path / "in.png", np.full((8, 8, 3), 90, np.uint8))
    argv = _restore_args(weights, good, tmp_path / "out.png")
    argv[argv.index(flag) + 1] = value
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and err.count("\n") == 1 and flag in err
    assert _files(tmp_path) == ["in.png"]


def test_restore_failure_while_writing_leaves_nothing(weights, tmp_path, monkeypatch, capsys):
    """A crash between the first and the last output file leaves no file at all."""
    from invdiff.cli import _restore

    calls = []

    def failing(img, path, vmax):
        calls.append(path)
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(_restore, "_encode_map", failing)
    good = _png(tmp_path / "in.png", np.full((8, 8, 3), 90, np.uint8))
    assert main(_restore_args(weights, good, tmp_path / "out.png", "--samples", "2")) == 2
    assert len(calls) == 1  # the mean was written (to a temporary file), then the std failed
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err
    assert _files(tmp_path) == ["in.png"]


# ------------------------------------------------------------------------------- own checkpoints
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


def _save_checkpoint(folder, arch, config):
    import invdiff_models as ivm

    torch.manual_seed(0)
    net = getattr(ivm, arch).build(config)
    path, cfg = folder / f"{arch}.pt", folder / f"{arch}.json"
    torch.save(net.state_dict(), path)
    cfg.write_text(json.dumps(config))
    return str(path), str(cfg)


@pytest.mark.parametrize("arch, config, method, image", [
    ("adm", None, "dps", (2, 2, 3)),           # sr4 of 2x2 -> 8x8, gradient-based method
    ("ncsnv2", TINY_NCSNV2, "dmps", (8, 8)),   # VE score network, data in [0, 1], grayscale
    ("ncsnpp", TINY_NCSNPP, "ot_ode", (8, 8, 3)),  # RectifiedFlow velocity network
])
def test_restore_with_own_checkpoint(arch, config, method, image, tmp_path, capsys):
    from _cli_helpers import TINY_ADM

    ckpt, cfg = _save_checkpoint(tmp_path, arch, TINY_ADM if config is None else config)
    src = _png(tmp_path / "in.png", np.random.default_rng(0).integers(
        0, 256, image, dtype=np.uint8))
    task = "sr4" if arch == "adm" else "denoise"
    out = tmp_path / "out.png"
    assert main(["restore", "--task", task, "--method", method, "--input", src, "--output",
                 str(out), "--samples", "2", "--steps", "3", "--no-progress", "--checkpoint",
                 ckpt, "--arch", arch, "--config", cfg]) == 0
    text = capsys.readouterr().out
    assert f"plan: 2 sample(s) of {1 if arch == 'ncsnv2' else 3}x8x8 with {method}" in text
    with PIL_Image.open(out) as img:
        assert img.size == (8, 8) and img.mode == ("L" if arch == "ncsnv2" else "RGB")
    assert (tmp_path / "out_std.png").is_file() and (tmp_path / "out_ci90.png").is_file()


def test_progress_keeps_the_learned_variance_visible(tmp_path):
    """ADM networks with learn_sigma: the CLI's counting wrapper must not hide the learned
    variance from the ancestral sampler (DPS/DMPS's reference code samples with it)."""
    from _cli_helpers import TINY_ADM

    import invdiff_models as ivm
    from invdiff.cli._restore import Progress

    ckpt, cfg = _save_checkpoint(tmp_path, "adm", TINY_ADM)
    model = ivm.load_checkpoint(ckpt, "adm", TINY_ADM)
    wrapped = Progress(model, None)
    x = np.zeros((1, 3, 8, 8), dtype=np.float32)
    eps, log_var = wrapped.predict_with_log_variance(x, 500.0)
    np.testing.assert_allclose(log_var, model.predict_with_log_variance(x, 500.0)[1])
    assert wrapped.nfe == 1
    bundled = Progress(ivd_prior(), None)
    assert not callable(getattr(bundled, "predict_with_log_variance", None))


def ivd_prior():
    import invdiff as ivd

    return ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())


def test_restore_with_own_checkpoint_and_yaml_config(tmp_path, capsys):
    """The research codes keep their configurations in YAML (DPS: model_config.yaml)."""
    yaml = pytest.importorskip("yaml")
    from _cli_helpers import TINY_ADM

    ckpt, _ = _save_checkpoint(tmp_path, "adm", TINY_ADM)
    cfg = tmp_path / "model_config.yaml"
    cfg.write_text(yaml.safe_dump(TINY_ADM))
    src = _png(tmp_path / "in.png", np.full((8, 8, 3), 100, np.uint8))
    assert main(["restore", "--task", "denoise", "--method", "dmps", "--input", src,
                 "--output", str(tmp_path / "out.png"), "--steps", "2", "--no-progress",
                 "--checkpoint", ckpt, "--arch", "adm", "--config", str(cfg)]) == 0
    cfg.write_text("model: [unclosed")
    assert main(["restore", "--task", "denoise", "--method", "dmps", "--input", src,
                 "--output", str(tmp_path / "out.png"), "--steps", "2", "--no-progress",
                 "--checkpoint", ckpt, "--arch", "adm", "--config", str(cfg)]) == 2
    assert "--config" in capsys.readouterr().err


def test_restore_with_diffusers_folder(tmp_path, capsys):
    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path / "unet"
    torch.manual_seed(0)
    diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1,
                          block_out_channels=(8, 8), norm_num_groups=4,
                          down_block_types=("DownBlock2D", "DownBlock2D"),
                          up_block_types=("UpBlock2D", "UpBlock2D")).save_pretrained(folder)
    diffusers.DDPMScheduler(num_train_timesteps=100).save_pretrained(folder)
    src = _png(tmp_path / "in.png", np.full((12, 12, 3), 100, np.uint8))
    out = tmp_path / "out.png"
    assert main(["restore", "--task", "denoise", "--method", "dmps", "--input", src,
                 "--output", str(out), "--steps", "3", "--no-progress", "--checkpoint",
                 str(folder), "--arch", "diffusers"]) == 0
    captured = capsys.readouterr()
    assert "trained on 8x8" in captured.err  # a note, not an error: 12x12 still runs
    with PIL_Image.open(out) as img:
        assert img.size == (12, 12)
    # the process comes from the scheduler: 100 DDPM steps, so 101 steps are refused
    assert main(["restore", "--task", "denoise", "--method", "dmps", "--input", src,
                 "--output", str(out), "--steps", "101", "--no-progress", "--checkpoint",
                 str(folder), "--arch", "diffusers"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_restore_with_conformance_checkpoints(tmp_path, capsys):
    """The original research codes' (seeded, small) checkpoints load and restore end to end."""
    shared = SHARED / "conformance"
    if not (shared / "adm_small.safetensors").is_file():
        pytest.skip(f"conformance data not found at {shared} (set INVDIFF_SHARED)")
    rgb = _png(tmp_path / "rgb.png", np.full((32, 32, 3), 100, np.uint8))
    gray = _png(tmp_path / "gray.png", np.full((28, 28), 100, np.uint8))
    for name, arch, config, src in [
            ("adm_small.safetensors", "adm", "adm_small_config.json", rgb),
            ("ncsnv2_small_checkpoint_legacy.pth", "ncsnv2", "ncsnv2_small_config.json", gray),
            ("rf_ncsnpp_small_checkpoint.pth", "ncsnpp", "rf_ncsnpp_small_config.json", rgb)]:
        out = tmp_path / f"{arch}.png"
        assert main(["restore", "--task", "denoise", "--method", "dmps", "--input", src,
                     "--output", str(out), "--steps", "2", "--no-progress", "--checkpoint",
                     str(shared / name), "--arch", arch, "--config",
                     str(shared / config)]) == 0, capsys.readouterr().err
        assert out.is_file()


def test_restore_dry_run_prints_the_plan_and_writes_nothing(weights, tmp_path, capsys):
    src = _png(tmp_path / "in.png", np.full((8, 8, 3), 90, np.uint8))
    assert main(_restore_args(weights, src, tmp_path / "out.png", "--samples", "3",
                              "--dry-run")) == 0
    out = capsys.readouterr().out
    assert "plan: 3 sample(s) of 3x32x32 with dmps, 2 steps, in 1 batch(es) of 3" in out
    assert "peak memory about" in out and "available" in out and "nothing sampled" in out
    assert _files(tmp_path) == ["in.png"]


def test_memory_estimate_matches_a_measured_peak():
    """The simulated peak (meta device: nothing allocated) counts the tensors alive together,
    scales with the number of pixels and the batch, and grows with the backward pass."""
    from invdiff.cli import _budget

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.SiLU(),
                              torch.nn.Conv2d(8, 3, 3, padding=1))
    import invdiff as ivd
    from invdiff_models.adapter import TorchScoreModel

    model = TorchScoreModel(net, ivd.processes.VP.linear(), "eps", forward=lambda n, x, t: n(x))
    small = _budget.network_peak(model, (3, 16, 16), 1, grad=False)
    # the input (3 channels), the conv output (8) and the SiLU output (8) alive together
    assert small == pytest.approx(_budget.ALLOCATOR_FACTOR * (3 + 8 + 8) * 16 * 16 * 4, rel=0.01)
    big = _budget.network_peak(model, (3, 1024, 1024), 4, grad=False)
    assert big == pytest.approx(small * 4 * 4096, rel=0.01)  # linear in pixels and batch
    grad = _budget.network_peak(model, (3, 16, 16), 1, grad=True)
    assert grad > small  # activations kept for the backward pass


def test_memory_estimate_counts_fused_attention_as_linear(monkeypatch):
    """Self-attention over 128x128 pixels: the attention matrix alone would be 1 GiB; a fused
    kernel (flash attention, on CPU and CUDA) never forms it, and the estimate says so."""
    import torch.nn.functional as F

    import invdiff as ivd
    from invdiff.cli import _budget
    from invdiff_models.adapter import TorchScoreModel

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            b, c, h, w = x.shape
            q = self.scale * x.flatten(2).transpose(1, 2)[:, None]  # (b, 1, hw, c)
            return F.scaled_dot_product_attention(q, q, q)[:, 0].transpose(1, 2).reshape(x.shape)

    model = TorchScoreModel(Attention(), ivd.processes.VP.linear(), "eps",
                            forward=lambda n, x, t: n(x))
    matrix = (128 * 128) ** 2 * 4
    if _budget._fused_attention_available(torch.zeros(1, 1, 4, 8), torch.zeros(1, 1, 4, 8),
                                          torch.zeros(1, 1, 4, 8), None, 0.0, False, "cpu"):
        assert _budget.network_peak(model, (8, 128, 128), 1, grad=False) < matrix / 50
    monkeypatch.setattr(_budget, "_fused_attention_available", lambda *a: False)
    assert _budget.network_peak(model, (8, 128, 128), 1, grad=False) > matrix


def test_issue_case_sr4_of_512x512_is_refused_up_front(tmp_path, capsys, monkeypatch):
    """The bundled natural prior, sr4 of a 512x512 image (2048x2048 restored): about 8 GiB
    even one sample at a time (more than 60 GiB for the default batch of 8); with 8 GiB
    available the run is refused before anything is allocated, saying what to do."""
    import invdiff_models as ivm
    from invdiff.cli import _budget

    if "natural" not in ivm.available():
        pytest.skip("no bundled natural prior")
    model = ivm.load("natural")
    assert _budget.network_peak(model, (3, 2048, 2048), 8, grad=False) > 16 * 2**30
    monkeypatch.setattr(_budget, "available_memory", lambda device: 8 * 2**30)
    src = _png(tmp_path / "big.png", np.full((512, 512, 3), 90, np.uint8))
    assert main(["restore", "--task", "sr4", "--method", "dmps", "--input", src, "--output",
                 str(tmp_path / "out.png"), "--samples", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--input" in err and "2048x2048" in err
    assert "crop it into tiles" in err and "--force" in err
    assert _files(tmp_path) == ["big.png"]


# ------------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("task", sorted(_tasks.TASKS))
def test_measurement_image_round_trip(task):
    """``to_model_units`` turns the image of ``A u`` (u in [0, 1]) into ``A x``, x = 2u - 1."""
    rng = np.random.default_rng(3)
    shape = (3, 16, 16)
    mask = rng.random((16, 16)) > 0.5
    op = _tasks.build_operator(task, shape, mask=mask, blur_sigma=1.0)
    u = rng.random((2, *shape))
    v = op.apply(u)  # the measurement image on disk (noise-free)
    y = _tasks.to_model_units(v, op, (-1.0, 1.0))
    np.testing.assert_allclose(y, op.apply(2.0 * u - 1.0), atol=1e-12)
    np.testing.assert_allclose(_tasks.to_intensities(y, op, (-1.0, 1.0)), v, atol=1e-12)
