"""Untrusted or wrong files give clear errors (and never run code from the file)."""

from __future__ import annotations

import pickle

import pytest
import torch

import invdiff_models as ivm
from invdiff_models.checkpoints import CheckpointError, read_file

from .conftest import TINY_ADM, TINY_NCSNPP, TINY_NCSNV2, load_json

pytestmark = pytest.mark.usefixtures("one_thread")


def truncate(src, dst, fraction=0.5):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("name", ["ncsnv2_small_checkpoint.pth",
                                  "ncsnv2_small_checkpoint_legacy.pth",
                                  "adm_small.safetensors"])
def test_truncated_files(conformance, tmp_path, name):
    path = truncate(conformance / name, tmp_path / name)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_file(path)


def test_truncated_checkpoint_through_load_checkpoint(conformance, tmp_path):
    cfg = load_json(conformance, "ncsnv2_small_config.json")
    path = truncate(conformance / "ncsnv2_small_checkpoint.pth", tmp_path / "c.pth", 0.9)
    with pytest.raises(CheckpointError, match="truncated"):
        ivm.load_checkpoint(path, arch="ncsnv2", config=cfg)


class Payload:
    """Unpickling this would create a file: proof that code from the file ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("legacy", [False, True])
def test_pickled_objects_are_refused_without_running_them(tmp_path, legacy):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "extra": Payload(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(CheckpointError, match="pickled Python objects") as info:
        ivm.load_checkpoint(path, arch="adm", config=TINY_ADM)
    assert "open" in str(info.value)  # names the refused global
    assert not marker.exists()


def test_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pkl"
    for protocol in (2, 4):
        path.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=protocol))
        with pytest.raises(CheckpointError, match="plain Python pickle"):
            read_file(path)


def test_not_a_checkpoint_and_empty_and_missing(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="neither a PyTorch checkpoint"):
        read_file(text)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_file(empty)
    with pytest.raises(FileNotFoundError):
        read_file(tmp_path / "absent.pt")


def test_file_without_state_dict(tmp_path):
    path = tmp_path / "meta.pt"
    torch.save({"step": 3, "lr": 1e-4}, path)
    with pytest.raises(CheckpointError, match=r"no state dict.*'step': int"):
        ivm.load_checkpoint(path, arch="adm", config=TINY_ADM)


def test_wrong_architecture_lists_keys_and_guesses(conformance):
    with pytest.raises(CheckpointError) as info:
        ivm.load_checkpoint(conformance / "adm_small.safetensors", arch="ncsnv2",
                            config=load_json(conformance, "ncsnv2_small_config.json"))
    msg = str(info.value)
    assert "missing keys" in msg and "begin_conv" in msg        # what the model expected
    assert "unexpected keys" in msg and "input_blocks" in msg   # what the file had instead
    assert "look like a adm checkpoint" in msg
    assert len(msg.splitlines()) <= 6  # the first few keys, not hundreds


def test_wrong_config_lists_shape_mismatches(conformance):
    cfg = load_json(conformance, "adm_small_config.json")["create_model_kwargs"]
    cfg = dict(cfg, learn_sigma=False)  # 3 output channels instead of 6
    with pytest.raises(CheckpointError, match=r"out\.2\.weight: file \(6, 32, 3, 3\), "
                                              r"model \(3, 32, 3, 3\)"):
        ivm.load_checkpoint(conformance / "adm_small.safetensors", arch="adm", config=cfg)


def test_missing_and_extra_keys(tmp_path):
    sd = ivm.adm.build(TINY_ADM).state_dict()
    del sd["out.2.bias"]
    sd["extra.weight"] = torch.zeros(1)
    path = tmp_path / "adm.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        ivm.load_checkpoint(path, arch="adm", config=TINY_ADM)
    msg = str(info.value)
    assert "1 missing keys" in msg and "out.2.bias (6,)" in msg
    assert "1 unexpected keys" in msg and "extra.weight" in msg


def test_ema_list_of_wrong_length(tmp_path):
    net = ivm.ncsnpp.build(TINY_NCSNPP)
    sd = {"module." + k: v for k, v in net.state_dict().items()}
    shadow = [p.detach() for p in net.parameters() if p.requires_grad][:-1]
    path = tmp_path / "rf.pth"
    torch.save({"model": sd, "ema": {"decay": 0.999, "num_updates": 0, "shadow_params": shadow},
                "step": 1}, path)
    with pytest.raises(CheckpointError, match="shadow_params has .* tensors"):
        ivm.load_checkpoint(path, arch="ncsnpp", config=TINY_NCSNPP)


def test_ema_dict_missing_parameter(tmp_path):
    net = ivm.ncsnv2.build(TINY_NCSNV2)
    states0 = {"module." + k: v for k, v in net.state_dict().items()}
    ema = {n: p.detach() for n, p in net.named_parameters()}
    ema.pop("end_conv.bias")
    path = tmp_path / "ckpt.pth"
    torch.save([states0, {}, 1, 10, ema], path)
    with pytest.raises(CheckpointError, match=r"1 missing \(first: \['end_conv.bias'\]\)"):
        ivm.load_checkpoint(path, arch="ncsnv2", config=TINY_NCSNV2)


def test_non_finite_weights(tmp_path):
    sd = ivm.adm.build(TINY_ADM).state_dict()
    sd["out.2.bias"][0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="non-finite"):
        ivm.load_checkpoint(path, arch="adm", config=TINY_ADM)


def test_unknown_arch_and_unsupported_options():
    with pytest.raises(ValueError, match="arch must be one of"):
        ivm.load_checkpoint("whatever.pt", arch="unet", config={})
    with pytest.raises(NotImplementedError, match="progressive='residual'"):
        ivm.ncsnpp.build({"model": dict(TINY_NCSNPP["model"], progressive="residual"),
                          "data": TINY_NCSNPP["data"]})
    with pytest.raises(NotImplementedError, match="InstanceNorm"):
        ivm.ncsnv2.build({"model": dict(TINY_NCSNV2["model"], normalization="BatchNorm"),
                          "data": TINY_NCSNV2["data"]})
    with pytest.raises(ValueError, match="channel_mult='' has no default"):
        ivm.adm.build(dict(TINY_ADM, channel_mult=""))
