"""Tiny priors and checkpoints for the command-line tests (seconds, not the shipped weights).

:func:`export_tiny_priors` writes randomly initialised UNets in the bundled format
(``NAME.safetensors`` + ``NAME.json``) named like the bundled priors; the ``tiny_*`` helpers
write checkpoints in the original formats that ``invdiff restore --checkpoint`` reads.
"""

from __future__ import annotations

import json
import pathlib

import torch

PROCESS = {"kind": "VP", "schedule": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02}
NATURAL = {"in_channels": 3, "base_channels": 8, "channel_mults": [1, 2], "num_res_blocks": 1,
           "attention_levels": [], "groups": 4, "dropout": 0.0}
MNIST = {"in_channels": 1, "base_channels": 8, "channel_mults": [1, 2], "num_res_blocks": 1,
         "attention_levels": [1], "groups": 4, "dropout": 0.0}
#: A tiny guided-diffusion (ADM) configuration: two levels (sizes multiples of 2), attention.
TINY_ADM = {"image_size": 8, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,1",
            "learn_sigma": True, "attention_resolutions": "4", "num_head_channels": 16,
            "use_scale_shift_norm": True, "resblock_updown": True, "dropout": 0.0}


def export(folder, name, config, channels, image_size, size_multiple, seed) -> dict:
    """Write ``NAME.safetensors`` + ``NAME.json`` of a random UNet; returns the sidecar."""
    from safetensors.torch import save_file

    from invdiff_models.unet import UNet

    folder = pathlib.Path(folder)
    torch.manual_seed(seed)
    net = UNet(**config)
    with torch.no_grad():  # the last conv is zero-initialised: make the output depend on x
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()},
              str(folder / f"{name}.safetensors"))
    meta = {"name": name, "architecture": "invdiff_models.unet.UNet", "config": config,
            "parameters": sum(p.numel() for p in net.parameters()), "process": PROCESS,
            "prediction": "eps", "data_range": [-1.0, 1.0], "channels": channels,
            "image_size": image_size, "size_multiple": size_multiple,
            "recipe": {"data": name, "batch_size": 2, "lr": 1e-3, "seed": seed},
            "training": {"steps_done": 0, "steps_planned": 0, "wall_seconds": 0.0,
                         "final_loss_ema": None, "stopped_by": None}}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return meta


def export_tiny_priors(folder) -> pathlib.Path:
    """``natural`` (RGB, sizes multiple of 8) and ``mnist`` (1x28x28) in ``folder``."""
    folder = pathlib.Path(folder)
    # two levels only (fast); the sidecars still declare the bundled size rules
    export(folder, "natural", NATURAL, 3, None, 8, seed=0)
    export(folder, "mnist", MNIST, 1, 28, 4, seed=1)
    return folder


def tiny_adm(folder) -> tuple[pathlib.Path, pathlib.Path]:
    """A tiny ADM checkpoint (plain ``torch.save`` state dict) and its JSON config."""
    from invdiff_models import adm

    folder = pathlib.Path(folder)
    torch.manual_seed(0)
    net = adm.build(TINY_ADM)
    ckpt, config = folder / "adm_tiny.pt", folder / "adm_tiny.json"
    torch.save(net.state_dict(), ckpt)
    config.write_text(json.dumps(TINY_ADM))
    return ckpt, config
