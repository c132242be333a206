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

from invdiff import _tasks  # noqa: E402
from invdiff.cli import main  # noqa: E402

SHARED = pathlib.Path(os.environ.get("INVDIFF_SHARED",
                                     pathlib.Path(__file__).resolve().parents[2] / "shared"))
_PROCESS = {"kind": "VP", "schedule": "linear", "T": 1000, "beta_start": 1e-4,
            "beta_end": 0.02}


def _export(folder, name, config, channels, image_size, size_multiple, seed):
    from safetensors.torch import save_file

    from invdiff_models.unet import UNet

    torch.manual_seed(seed)
    net = UNet(**config)
    with torch.no_grad():  # the last conv is zero-initialised: make the output depend on x
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()},
              str(folder / f"{name}.safetensors"))
    meta = {"name": name, "architecture": "invdiff_models.unet.UNet", "config": config,
            "parameters": sum(p.numel() for p in net.parameters()), "process": _PROCESS,
            "prediction": "eps", "data_range": [-1.0, 1.0], "channels": channels,
            "image_size": image_size, "size_multiple": size_multiple,
            "recipe": {"data": name, "batch_size": 2, "lr": 1e-3, "seed": seed},
            "training": {"steps_done": 0, "steps_planned": 0, "wall_seconds": 0.0,
                         "final_loss_ema": None, "stopped_by": None}}
    (folder / f"{name}.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Tiny random priors named like the bundled ones: natural (RGB, x8) and mnist (28x28)."""
    folder = tmp_path_factory.mktemp("weights")
    # two levels only (fast); the sidecar still declares the bundled size rules
    _export(folder, "natural", {"in_channels": 3, "base_channels": 8, "channel_mults": [1, 2],
                                "num_res_blocks": 1, "attention_levels": [], "groups": 4,
                                "dropout": 0.0}, 3, None, 8, seed=0)
    _export(folder, "mnist", {"in_channels": 1, "base_channels": 8, "channel_mults": [1, 2],
                              "num_res_blocks": 1, "attention_levels": [1], "groups": 4,
                              "dropout": 0.0}, 1, 28, 4, seed=1)
    return str(folder)


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
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "restore" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["restore", "--help"])
    text = capsys.readouterr().out
    for task in _tasks.TASKS:
        assert task in text
    assert "low-resolution image" in text and "_ci90.png" in text


def test_train_delegates_to_training_main(monkeypatch):
    from invdiff_models import training

    seen = []
    monkeypatch.setattr(training, "main", lambda argv=None: seen.append(argv) or 0)
    assert main(["train", "mnist", "--steps", "2", "--out-dir", "x"]) == 0
    assert main(["train", "export", "mnist", "--out-dir", "x"]) == 0
    assert seen == [["train", "mnist", "--steps", "2", "--out-dir", "x"],
                    ["export", "mnist", "--out-dir", "x"]]


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
    with PIL_Image.open(tmp_path / "high_std.png") as img:
        std8 = np.asarray(img).transpose(2, 0, 1) / 255.0
    # the std map is in intensity units: pixel value / 255 = std of the samples (clipped to 1)
    np.testing.assert_allclose(std8, np.clip(post["std"], 0, 1), atol=0.5 / 255 + 1e-6)
    assert "wrote" in capsys.readouterr().out


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
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert _files(tmp_path) == ["in.png"]


def test_restore_failure_while_writing_leaves_nothing(weights, tmp_path, monkeypatch):
    """A crash between the first and the last output file leaves no file at all."""
    from invdiff.cli import _restore

    calls, real = [], _restore.encode_image

    def failing(a, path, fmt=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(a, path, fmt)

    monkeypatch.setattr(_restore, "encode_image", failing)
    good = _png(tmp_path / "in.png", np.full((8, 8, 3), 90, np.uint8))
    with pytest.raises(OSError, match="disk full"):
        main(_restore_args(weights, good, tmp_path / "out.png", "--samples", "2"))
    assert len(calls) == 2
    assert _files(tmp_path) == ["in.png"]


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
