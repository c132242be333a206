"""Nothing from a file runs code: every loader of the package refuses crafted or foreign files.

Each crafted file carries a payload whose unpickling would create a marker file; the tests
check the loader refuses with a readable error *and* that the marker never appears.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest
import torch

import invdiff_models as ivm
from invdiff_models import training
from invdiff_models.checkpoints import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickling this would create ``marker``: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(path, marker, legacy=False):
    """A ``ckpt.pt`` with every key of a real training checkpoint plus a code payload."""
    torch.save({"recipe": {"config": {}, "data": "mnist", "hook": Payload(marker)},
                "model": {}, "ema": {}, "opt": {}, "state": {}, "gen": torch.zeros(1),
                "torch_rng": torch.zeros(1)}, path, _use_new_zipfile_serialization=not legacy)
    return path


def test_the_package_never_unpickles_with_weights_only_false():
    # the calls that can execute code from a file must not exist anywhere in the package
    import re
    from pathlib import Path

    root = Path(ivm.__file__).resolve().parents[1]
    unsafe = re.compile(r"weights_only\s*=\s*False|pickle\.loads?\(|allow_pickle\s*=\s*True"
                        r"|yaml\.load\(|yaml\.unsafe_load|torch\.load\((?![^)]*weights_only=True)")
    found = [f"{path.relative_to(root)}:{i}" for folder in ("invdiff", "invdiff_models",
                                                             "benchmarks")
             for path in sorted((root / folder).rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1)
             if unsafe.search(line) and not line.lstrip().startswith(("#", "``", "*"))]
    assert found == [], found


@pytest.mark.parametrize("legacy", [False, True])
def test_export_refuses_a_crafted_training_checkpoint(tmp_path, legacy):
    marker = tmp_path / "code_ran"
    _evil_checkpoint(tmp_path / "ckpt.pt", marker, legacy)
    with pytest.raises(CheckpointError, match="pickled Python objects") as info:
        training.export("mnist", tmp_path)
    assert "open" in str(info.value)  # names the refused global
    assert not marker.exists()
    assert not (tmp_path / "mnist.safetensors").exists()  # nothing was written either


def test_resume_refuses_a_crafted_checkpoint_before_reading_data(tmp_path):
    marker = tmp_path / "code_ran"
    _evil_checkpoint(tmp_path / "ckpt.pt", marker)
    # data_dir does not exist: the checkpoint is refused before the data are looked at
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        training.train("mnist", tmp_path, data_dir=tmp_path / "no_data", steps=1, resume=True,
                       log=lambda line: None)
    assert not marker.exists()


@pytest.mark.slow  # a fresh interpreter importing torch: seconds; the library tests cover it
def test_cli_export_refuses_a_crafted_checkpoint(tmp_path):
    marker = tmp_path / "code_ran"
    _evil_checkpoint(tmp_path / "ckpt.pt", marker)
    proc = subprocess.run([sys.executable, "-m", "invdiff_models.training", "export", "mnist",
                           "--out-dir", str(tmp_path), "--bundle-dir", str(tmp_path / "b")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "pickled Python objects" in proc.stderr
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    ({"model": {}}, "missing 'recipe'"),
    ([torch.zeros(2)], "holds a list"),
    ({"recipe": [], "model": {}, "ema": {}, "opt": {}, "state": {}, "gen": torch.zeros(1),
      "torch_rng": torch.zeros(1)}, "'recipe' must be a dict"),
    ({"recipe": {"config": {}, "data": "mnist"}, "model": {"w": 3}, "ema": {}, "opt": {},
      "state": {}, "gen": torch.zeros(1), "torch_rng": torch.zeros(1)}, "map names to tensors"),
])
def test_foreign_training_checkpoints_are_named(tmp_path, content, match):
    torch.save(content, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match=match):
        training.read_checkpoint(tmp_path / "ckpt.pt")


def test_plain_pickle_as_training_checkpoint(tmp_path):
    marker = tmp_path / "code_ran"
    (tmp_path / "ckpt.pt").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError, match="plain Python pickle"):
        training.read_checkpoint(tmp_path / "ckpt.pt")
    assert not marker.exists()


def test_resume_from_another_recipe_is_refused(tmp_path):
    torch.save({"recipe": {"config": {"in_channels": 3}, "data": "natural"}, "model": {},
                "ema": {}, "opt": {}, "state": {}, "gen": torch.zeros(1),
                "torch_rng": torch.zeros(1)}, tmp_path / "ckpt.pt")
    with pytest.raises(CheckpointError, match="another network config"):
        training.train("mnist", tmp_path, steps=1, resume=True, log=lambda line: None)


def test_a_real_training_checkpoint_round_trips(tmp_path):
    # what _save writes (tensors, optimizer state, generator state, str versions) loads safely
    from invdiff_models.unet import UNet

    recipe = dict(training.RECIPES["mnist"])
    net = UNet(**recipe["config"])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.zeros(1, 1, 28, 28), torch.zeros(1)).sum().backward()
    opt.step()
    gen = torch.Generator().manual_seed(0)
    state = {"steps_done": 1, "wall_seconds": 0.5, "started_utc": "x", "final_loss_ema": 0.1,
             "torch": str(torch.__version__)}
    torch.save({"recipe": recipe, "model": net.state_dict(), "ema": net.state_dict(),
                "opt": opt.state_dict(), "state": state, "gen": gen.get_state(),
                "torch_rng": torch.get_rng_state()}, tmp_path / "ckpt.pt")
    ck = training.read_checkpoint(tmp_path / "ckpt.pt")
    opt2 = torch.optim.Adam(UNet(**recipe["config"]).parameters(), lr=1e-3)
    opt2.load_state_dict(ck["opt"])
    assert ck["state"]["steps_done"] == 1
    assert torch.equal(ck["gen"], gen.get_state())


# -- bundled priors: safetensors + JSON only -----------------------------------------------
def _bundled_copy(tmp_path, name="mnist"):
    import shutil

    src = ivm.bundled.HERE
    for ext in ("safetensors", "json"):
        shutil.copy(src / f"{name}.{ext}", tmp_path / f"{name}.{ext}")
    return tmp_path


def test_bundled_loader_refuses_a_pickle_named_safetensors(tmp_path):
    if "mnist" not in ivm.available():
        pytest.skip("bundled mnist prior not present")
    folder = _bundled_copy(tmp_path)
    marker = tmp_path / "code_ran"
    torch.save({"w": Payload(marker)}, folder / "mnist.safetensors")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        ivm.load("mnist", folder=folder)
    assert not marker.exists()


@pytest.mark.parametrize("damage, match", [
    ("truncate", "truncated or corrupt"),
    ("bad_json", "not valid JSON"),
    ("no_config", "lacks 'config'"),
    ("bad_range", "'data_range' must be"),
    ("bad_process", "bad process"),
    ("bad_config", "UNet cannot build"),
    ("other_weights", "do not match the network"),
])
def test_bundled_loader_damaged_folder(tmp_path, damage, match):
    if "mnist" not in ivm.available():
        pytest.skip("bundled mnist prior not present")
    folder = _bundled_copy(tmp_path)
    weights, sidecar = folder / "mnist.safetensors", folder / "mnist.json"
    meta = json.loads(sidecar.read_text())
    if damage == "truncate":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "bad_json":
        sidecar.write_text("{not json")
    elif damage == "no_config":
        del meta["config"]
        sidecar.write_text(json.dumps(meta))
    elif damage == "bad_range":
        meta["data_range"] = [1.0, -1.0]
        sidecar.write_text(json.dumps(meta))
    elif damage == "bad_process":
        meta["process"]["T"] = 2.5
        sidecar.write_text(json.dumps(meta))
    elif damage == "bad_config":
        meta["config"]["no_such_option"] = 1
        sidecar.write_text(json.dumps(meta))
    else:
        meta["config"]["base_channels"] = 16
        sidecar.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=match):
        ivm.load("mnist", folder=folder)
    assert issubclass(CheckpointError, ValueError)


# -- diffusers folders: weights must match config.json -------------------------------------
def _diffusers_folder(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path / "unet"
    diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
        block_out_channels=(8, 8), norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D")).save_pretrained(folder)
    diffusers.DDPMScheduler(num_train_timesteps=10).save_pretrained(folder)
    return folder


def _edit_json(path, **changes):
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def test_diffusers_config_with_more_layers_than_weights_is_refused(tmp_path):
    folder = _diffusers_folder(tmp_path)
    _edit_json(folder / "config.json", layers_per_block=2)
    with pytest.raises(CheckpointError, match="keys missing from the weights") as info:
        ivm.hub.from_diffusers(folder)
    assert "down_blocks.0.resnets.1" in str(info.value)  # lists the missing keys


def test_diffusers_config_with_fewer_layers_than_weights_is_refused(tmp_path):
    diffusers = pytest.importorskip("diffusers")
    folder = tmp_path / "unet"
    diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, layers_per_block=2,
        block_out_channels=(8, 8), norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D")).save_pretrained(folder)
    diffusers.DDPMScheduler(num_train_timesteps=10).save_pretrained(folder)
    _edit_json(folder / "config.json", layers_per_block=1)
    with pytest.raises(CheckpointError, match="in the weights but not in the config"):
        ivm.hub.from_diffusers(folder)


def test_diffusers_config_with_other_widths_is_refused(tmp_path):
    folder = _diffusers_folder(tmp_path)
    _edit_json(folder / "config.json", block_out_channels=[8, 16])
    with pytest.raises(CheckpointError, match="do not match|cannot load"):
        ivm.hub.from_diffusers(folder)


def test_diffusers_matching_folder_still_loads(tmp_path):
    folder = _diffusers_folder(tmp_path)
    model = ivm.hub.from_diffusers(folder)
    assert model.channels == 1 and model.size_multiple == 2


@pytest.mark.parametrize("sched", ["UNet2DModel", "os", "NoSuchScheduler"])
def test_diffusers_scheduler_class_must_be_a_scheduler(tmp_path, sched):
    folder = _diffusers_folder(tmp_path)
    _edit_json(folder / "scheduler_config.json", _class_name=sched)
    with pytest.raises(NotImplementedError, match="unknown scheduler class"):
        ivm.hub.from_diffusers(folder)


def test_diffusers_config_that_is_not_json(tmp_path):
    folder = _diffusers_folder(tmp_path)
    (folder / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ivm.hub.from_diffusers(folder)
