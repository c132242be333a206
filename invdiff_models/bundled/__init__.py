"""Trained priors shipped with the package: fp16 EMA weights + JSON sidecar + model card.

Each bundled prior ``NAME`` is three files in this folder: ``NAME.safetensors`` (the EMA
weights in float16), ``NAME.json`` (architecture config, forward process, prediction kind,
data range, training recipe and measured training time) and ``NAME.md`` (the model card).
They were produced by :mod:`invdiff_models.training` and load without any network access.

:func:`load_network` returns the raw torch module (native time input ``k - 1`` for DDPM step
``k``, ε-prediction) plus its metadata; :mod:`invdiff_models.adapter` wraps it as a
``ScoreModel``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["available", "load_network", "load", "metadata", "card"]

HERE = Path(__file__).resolve().parent

# what load_network and the model summaries read from a sidecar
_SIDECAR_KEYS = ("config", "process", "prediction", "data_range")


def available() -> list[str]:
    """Names of the priors whose weights and sidecar are present in this folder.

    Examples
    --------
    >>> set(available()) <= {"mnist", "natural"}
    True
    """
    return sorted(
        p.stem for p in HERE.glob("*.safetensors") if (HERE / f"{p.stem}.json").is_file()
    )


def _check(name, folder=None) -> Path:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, received {type(name).__name__}")
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or os.PathLike) or None; received "
                        f"{type(folder).__name__}")
    folder = HERE if folder is None else Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist or is not a folder")
    if not (folder / f"{name}.safetensors").is_file() or not (folder / f"{name}.json").is_file():
        raise ValueError(
            f"name must be a bundled prior, one of {available()}; received {name!r} "
            f"(no {name}.safetensors + {name}.json in {folder})"
        )
    return folder


def metadata(name: str, folder=None) -> dict:
    """The JSON sidecar of bundled prior ``name`` as a dict (``data_range`` as a tuple).

    Examples
    --------
    >>> "mnist" not in available() or metadata("mnist")["prediction"] == "eps"
    True
    """
    from ..checkpoints import CheckpointError

    folder = _check(name, folder)
    path = folder / f"{name}.json"
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"sidecar {str(path)!r} is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise CheckpointError(f"sidecar {str(path)!r} must hold a JSON object")
    missing = [k for k in _SIDECAR_KEYS if k not in meta]
    if missing:
        raise CheckpointError(f"sidecar {str(path)!r} lacks {', '.join(map(repr, missing))} "
                              f"(written by invdiff_models.training.export)")
    try:
        lo, hi = (float(v) for v in meta["data_range"])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError
        if not isinstance(meta["config"], dict):
            raise ValueError
    except (TypeError, ValueError):
        raise CheckpointError(f"sidecar {str(path)!r}: 'data_range' must be [low, high] with "
                              "low < high and 'config' an object; received "
                              f"{meta['data_range']!r}, {type(meta['config']).__name__}") from None
    meta["data_range"] = (lo, hi)
    return meta


def card(name: str) -> str:
    """The model card (Markdown) of bundled prior ``name``; empty string if none ships.

    Examples
    --------
    >>> isinstance(card("mnist"), str) if "mnist" in available() else True
    True
    """
    _check(name)
    path = HERE / f"{name}.md"
    return path.read_text() if path.is_file() else ""


def load_network(name: str, device="cpu", dtype=None, folder=None):
    """Build bundled prior ``name`` and load its EMA weights (offline).

    Parameters
    ----------
    name : str
        One of :func:`available` (``"mnist"``, ``"natural"``).
    device : str or torch.device
        Where the module lives.
    dtype : torch.dtype, optional
        Parameter dtype; float32 by default (weights are stored in float16).
    folder : path-like, optional
        Read ``NAME.safetensors`` / ``NAME.json`` from here instead of the package (e.g. a
        training output folder holding a partial export).

    Returns
    -------
    (torch.nn.Module, dict)
        The :class:`invdiff_models.unet.UNet` in eval mode with gradients disabled, called as
        ``net(x, k - 1)`` for DDPM step ``k`` and returning ε; and the metadata of
        :func:`metadata` (``process``, ``prediction``, ``data_range``, ``config``, ``recipe``,
        ``training``).

    Examples
    --------
    >>> import torch
    >>> if "mnist" in available():
    ...     net, meta = load_network("mnist")
    ...     print(net(torch.zeros(1, 1, 28, 28), 10.0).shape, meta["data_range"])
    ... else:
    ...     print(torch.Size([1, 1, 28, 28]), (-1.0, 1.0))
    torch.Size([1, 1, 28, 28]) (-1.0, 1.0)
    """
    import torch

    from ..adapter import torch_device, torch_dtype
    from ..checkpoints import CheckpointError, _is_safetensors, read_file
    from ..unet import UNet

    device, dtype = torch_device(device), torch_dtype(dtype)
    folder = _check(name, folder)
    meta = metadata(name, folder)
    if meta.get("architecture") != "invdiff_models.unet.UNet":
        raise CheckpointError(f"unknown architecture {meta.get('architecture')!r} for {name!r} "
                              "(expected 'invdiff_models.unet.UNet')")
    try:
        net = UNet(**meta["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"sidecar of {name!r} has a config UNet cannot build: {e}") from e
    path = folder / f"{name}.safetensors"
    if not _is_safetensors(str(path)):
        raise CheckpointError(f"{str(path)!r} is not a safetensors file (bundled priors are "
                              "safetensors + JSON only)")
    state = read_file(path)  # no code runs; a truncated file is a CheckpointError
    dtype = torch.float32 if dtype is None else dtype
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CheckpointError(f"{str(path)!r} does not hold a state dict of tensors")
    try:
        net.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    except RuntimeError as e:
        raise CheckpointError(f"the weights in {str(path)!r} do not match the network its "
                              f"sidecar describes: {str(e)[:400]}") from e
    net = net.to(device=device, dtype=dtype).eval().requires_grad_(False)
    return net, meta


def load(name: str, device="cpu", dtype=None):
    """Alias of :func:`load_network`: ``(module, metadata)``.

    Examples
    --------
    >>> callable(load)
    True
    """
    return load_network(name, device=device, dtype=dtype)
