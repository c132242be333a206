"""invdiff_models: the torch side of invdiff (pretrained networks in their original formats).

Architectures (parameter names identical to the originals, so original checkpoints load with
``load_state_dict(strict=True)``): :mod:`~invdiff_models.adm` (guided-diffusion UNet, DPS/DMPS),
:mod:`~invdiff_models.ncsnv2` (QCS-SGM), :mod:`~invdiff_models.ncsnpp` (RectifiedFlow).
:func:`load` returns a bundled trained prior (``"mnist"``, ``"natural"``, see :func:`available`
and ``invdiff models``) as a ScoreModel, offline; :func:`load_checkpoint` reads an original
file safely and returns a ScoreModel;
:mod:`~invdiff_models.hub` loads diffusers folders; :mod:`~invdiff_models.adapter` wraps any
torch network. Submodules are imported on first use.

Examples
--------
>>> import invdiff_models as ivm
>>> net = ivm.adm.build({"image_size": 8, "num_channels": 32, "num_res_blocks": 1,
...                      "channel_mult": "1", "attention_resolutions": ""})
>>> type(net).__name__
'ADMUNet'
>>> set(ivm.available()) <= {"mnist", "natural"}
True
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("adapter", "adm", "bundled", "checkpoints", "evaluate", "hub", "ncsnpp", "ncsnv2",
               "registry", "training", "unet")
_FUNCTIONS = {"load_checkpoint": "checkpoints", "CheckpointError": "checkpoints",
              "TorchScoreModel": "adapter", "load": "registry", "available": "registry",
              "card": "registry", "cards": "registry"}

__all__ = [*_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'invdiff_models' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
