"""Safe reading of checkpoints in their original formats, and strict loading with clear errors.

Files are read without executing code: ``.safetensors`` through ``safetensors``, anything
else through ``torch.load(weights_only=True)`` (zip format of torch >= 1.6 and the legacy
pickle format of older files). Then the state dict is unwrapped from the container the
original code wrote, and the EMA copy is applied where the original applies it:

==========  =====================================================  ===========================
arch        original container                                      weights taken (``ema=True``)
==========  =====================================================  ===========================
adm         plain ``state_dict`` (DPS ``ffhq_10m.pt``, OpenAI       the state dict (the released
            ``lsun_*.pt``, ImageNet files)                          files already hold EMA weights)
ncsnv2      list ``[states0 ('module.*'), optimizer, epoch, step,   ``states[-1]`` (EMA shadow,
            ema_shadow]`` written by QCS-SGM / ncsnv2               by name) for every parameter,
                                                                    ``sigmas`` from ``states[0]``
ncsnpp      dict ``{optimizer, model ('module.*'), ema {decay,      ``ema.shadow_params`` (list in
            num_updates, shadow_params}, step}`` (RectifiedFlow /   ``parameters()`` order) for the
            score-SDE)                                              trainable parameters; ``W`` and
                                                                    ``sigmas`` from ``model``
==========  =====================================================  ===========================

A plain state dict (with or without ``module.``) is accepted for every architecture, e.g. the
effective weights exported to safetensors. ``ema=False`` takes the raw (non-EMA) weights.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["CheckpointError", "Weights", "read_file", "extract_weights", "load_weights"]

_PREFIXES = ("module.", "_orig_mod.")  # nn.DataParallel / DDP, torch.compile
_SHOW = 5  # how many offending keys an error message lists

# Keys whose presence identifies an architecture (for "this looks like ..." hints).
_SIGNATURES = {
    "adm": ("time_embed.0.weight", "input_blocks.0.0.weight", "out.2.weight"),
    "ncsnv2": ("begin_conv.weight", "end_conv.weight", "refine1.crp.convs.0.weight"),
    "ncsnpp": ("all_modules.1.weight",),
    "diffusers UNet2DModel": ("conv_in.weight", "conv_out.weight"),
}

# torch < 1.6 files start with this pickled magic number (zip files start with b"PK").
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"

# Buffers the builders compute deterministically from the config; a file may omit them.
_DERIVED_BUFFERS = ("sigmas",)


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or does not match the requested architecture.

    Examples
    --------
    >>> import os, tempfile
    >>> from invdiff_models.checkpoints import CheckpointError, read_file
    >>> path = os.path.join(tempfile.mkdtemp(), "notes.pt")
    >>> with open(path, "w") as f:
    ...     _ = f.write("not weights")
    >>> try:
    ...     read_file(path)
    ... except CheckpointError as e:
    ...     print("refused:", "neither a PyTorch checkpoint" in str(e))
    refused: True
    """


@dataclass
class Weights:
    """A state dict unwrapped from a checkpoint container.

    Attributes
    ----------
    state_dict : dict of str to torch.Tensor
        Keys without ``module.`` prefix.
    ema : dict or list or None
        The EMA copy as stored (by name, or a list in ``parameters()`` order), if any.
    layout : str
        What the container was (for messages and ``ScoreModel.source``).
    notes : list of str
        What :func:`load_weights` did (e.g. that it applied the EMA copy).

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.checkpoints import Weights
    >>> Weights({"w": torch.zeros(1)}).layout
    'plain state_dict'
    """

    state_dict: dict
    ema: Any = None
    layout: str = "plain state_dict"
    notes: list = field(default_factory=list)


def _is_safetensors(path: str) -> bool:
    # safetensors: 8-byte little-endian header length, then a JSON object.
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9 or head[8:9] != b"{":
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < os.path.getsize(path)


def read_file(path: str | os.PathLike) -> Any:
    """Read a checkpoint without executing code from it.

    Parameters
    ----------
    path : str or path-like
        A ``.safetensors`` file (recognised by content), or a ``torch.save`` file in zip or
        legacy format.

    Returns
    -------
    object
        The stored object (state dict, list, dict ... of tensors and plain Python values).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is truncated or corrupt, is not a checkpoint, or holds pickled Python
        objects other than tensors and containers (which could run code when unpickled).

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from invdiff_models.checkpoints import read_file
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save({"w": torch.ones(2)}, path)
    >>> read_file(path)
    {'w': tensor([1., 1.])}
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path!r}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path!r} is empty (0 bytes)")
    if _is_safetensors(path):
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as e:  # SafetensorError has no stable import path
            raise CheckpointError(
                f"could not read safetensors file {path!r}: it is truncated or corrupt "
                f"({type(e).__name__}: {e})"
            ) from e
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if not (head.startswith(b"PK") or head == _LEGACY_MAGIC):
        kind = ("a plain Python pickle, not a torch.save checkpoint"
                if head.startswith(b"\x80") else "neither a PyTorch checkpoint (zip or legacy "
                "format) nor a safetensors file")
        raise CheckpointError(f"{path!r} is {kind} (first bytes {head[:4]!r}); refusing to "
                              "read it")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _torch_load_error(path, e) from e


def _torch_load_error(path: str, e: Exception) -> CheckpointError:
    msg = str(e)
    if "Weights only load failed" in msg:
        found = re.findall(r"GLOBAL ([\w.]+)", msg)
        what = f" (first one: {found[0]})" if found else ""
        return CheckpointError(
            f"checkpoint {path!r} contains pickled Python objects that are not tensors or "
            f"plain containers{what}. Unpickling them could execute arbitrary code, so "
            "invdiff_models refuses (torch.load(weights_only=True)). If you trust the file, "
            "load it yourself and re-save its state dict (torch.save(state_dict) or "
            "safetensors)."
        )
    return CheckpointError(
        f"could not read checkpoint {path!r}: the file is truncated or corrupt "
        f"({type(e).__name__}: {msg[:300]})"
    )


def _is_tensor_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def strip_prefix(sd: Mapping) -> dict:
    """Remove a ``module.`` (DataParallel) or ``_orig_mod.`` prefix carried by every key.

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.checkpoints import strip_prefix
    >>> list(strip_prefix({"module.w": torch.zeros(1)}))
    ['w']
    """
    sd = dict(sd)
    changed = True
    while changed and sd:
        changed = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
    return sd


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        items = ", ".join(f"{k!r}: {type(v).__name__}" for k, v in list(obj.items())[:8])
        return f"a dict {{{items}{', ...' if len(obj) > 8 else ''}}}"
    if isinstance(obj, (list, tuple)):
        items = ", ".join(type(v).__name__ for v in obj[:8])
        return f"a {type(obj).__name__} [{items}{', ...' if len(obj) > 8 else ''}]"
    return f"a {type(obj).__name__}"


def extract_weights(obj: Any, *, ema: bool = True) -> Weights:
    """Find the state dict (and EMA copy) inside an original checkpoint container.

    Parameters
    ----------
    obj : object
        What :func:`read_file` returned.
    ema : bool
        Keep the EMA copy (applied later by :func:`load_weights`) when the file has one.

    Returns
    -------
    Weights

    Raises
    ------
    CheckpointError
        If no state dict can be found, naming what the file holds instead.

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.checkpoints import extract_weights
    >>> states = [{"module.w": torch.zeros(1)}, {}, 3, 150, {"w": torch.ones(1)}]
    >>> w = extract_weights(states)
    >>> list(w.state_dict), w.ema
    (['w'], {'w': tensor([1.])})
    """
    if _is_tensor_dict(obj):
        return Weights(strip_prefix(obj), None, "plain state_dict")
    if isinstance(obj, (list, tuple)) and obj and _is_tensor_dict(obj[0]):
        has_ema = len(obj) > 4 and _is_tensor_dict(obj[-1])
        layout = "list [state_dict, optimizer, epoch, step" + (", ema]" if has_ema else "]")
        shadow = strip_prefix(obj[-1]) if (has_ema and ema) else None
        return Weights(strip_prefix(obj[0]), shadow, layout)
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict", "net", "params"):
            if _is_tensor_dict(obj.get(key)):
                shadow = _ema_in(obj) if ema else None
                layout = f"dict['{key}']" + (" + EMA" if _ema_in(obj) is not None else "")
                return Weights(strip_prefix(obj[key]), shadow, layout)
        for key in ("ema", "ema_model", "model_ema"):
            if _is_tensor_dict(obj.get(key)):
                return Weights(strip_prefix(obj[key]), None, f"dict['{key}']")
    raise CheckpointError(
        f"no state dict (a dict of tensors) found; the file holds {_describe(obj)}")


def _ema_in(obj: Mapping) -> Any:
    e = obj.get("ema")
    if isinstance(e, Mapping) and isinstance(e.get("shadow_params"), (list, tuple)):
        return list(e["shadow_params"])  # score-SDE ExponentialMovingAverage.state_dict()
    if _is_tensor_dict(e):
        return strip_prefix(e)
    return None


def _apply_ema(net: nn.Module, sd: dict, shadow: Any) -> dict:
    """Replace the trainable parameters of ``sd`` by the EMA copy (by name or by position)."""
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    if isinstance(shadow, list):
        if len(shadow) != len(trainable):
            raise CheckpointError(
                f"EMA shadow_params has {len(shadow)} tensors; the model has {len(trainable)} "
                "trainable parameters (is the config the one the checkpoint was trained with?)"
            )
        pairs = list(zip(trainable, shadow, strict=True))
        bad = [(n, tuple(s.shape), tuple(p.shape)) for (n, p), s in pairs
               if tuple(s.shape) != tuple(p.shape)]
        if bad:
            raise CheckpointError(
                "EMA shadow_params do not match the model's trainable parameters in order; "
                "first mismatches: "
                + "; ".join(f"{n}: file {a}, model {b}" for n, a, b in bad[:_SHOW])
            )
        return {**sd, **{n: s for (n, _), s in zip(trainable, shadow, strict=True)}}
    names = {n for n, _ in trainable}
    missing = sorted(names - set(shadow))
    extra = sorted(set(shadow) - names)
    if missing or extra:
        raise CheckpointError(
            "EMA copy does not cover the model's trainable parameters: "
            f"{len(missing)} missing (first: {missing[:_SHOW]}), "
            f"{len(extra)} unexpected (first: {extra[:_SHOW]})"
        )
    return {**sd, **{n: shadow[n] for n in names}}


def guess_architecture(keys) -> str | None:
    """The architecture whose signature keys all appear in ``keys`` (or None).

    Examples
    --------
    >>> from invdiff_models.checkpoints import guess_architecture
    >>> guess_architecture(["begin_conv.weight", "end_conv.weight",
    ...                     "refine1.crp.convs.0.weight"])
    'ncsnv2'
    """
    keys = set(strip_prefix(dict.fromkeys(keys, None)))
    for arch, sig in _SIGNATURES.items():
        if all(k in keys for k in sig):
            return arch
    return None


def check_keys(net: nn.Module, sd: Mapping, *, arch: str, source: str = "checkpoint") -> dict:
    """Compare a state dict with ``net``'s; raise :class:`CheckpointError` on any difference.

    Missing buffers that the builder derives from the config (``sigmas``) are filled in from
    the network. Returns the completed state dict.

    Examples
    --------
    >>> import torch
    >>> from invdiff_models.checkpoints import CheckpointError, check_keys
    >>> net = torch.nn.Linear(2, 1)
    >>> try:
    ...     check_keys(net, {"weight": torch.zeros(1, 3), "bias": torch.zeros(1)}, arch="linear")
    ... except CheckpointError as e:
    ...     print(str(e).splitlines()[1])
      1 shape mismatches (first 5): weight: file (1, 3), model (1, 2)
    """
    expected = net.state_dict()
    sd = dict(sd)
    for k in _DERIVED_BUFFERS:
        if k in expected and k not in sd and k not in dict(net.named_parameters()):
            sd[k] = expected[k]
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [k for k in expected
                  if k in sd and tuple(sd[k].shape) != tuple(expected[k].shape)]
    if not (missing or unexpected or mismatched):
        return sd
    lines = [f"{source} does not match the {arch} architecture built from this config:"]
    if missing:
        shown = ", ".join(f"{k} {tuple(expected[k].shape)}" for k in missing[:_SHOW])
        lines.append(f"  {len(missing)} missing keys (expected by the model, absent from the "
                     f"file; first {_SHOW}): {shown}")
    if unexpected:
        shown = ", ".join(f"{k} {tuple(sd[k].shape)}" for k in unexpected[:_SHOW])
        lines.append(f"  {len(unexpected)} unexpected keys (in the file, unknown to the "
                     f"model; first {_SHOW}): {shown}")
    if mismatched:
        shown = "; ".join(f"{k}: file {tuple(sd[k].shape)}, model {tuple(expected[k].shape)}"
                          for k in mismatched[:_SHOW])
        lines.append(f"  {len(mismatched)} shape mismatches (first {_SHOW}): {shown}")
    guess = guess_architecture(sd)
    if guess is not None and guess != arch:
        lines.append(f"  The file's keys look like a {guess} checkpoint: check arch=.")
    elif mismatched and not (missing or unexpected):
        lines.append("  Same layer names, different sizes: check the config (channels, "
                     "channel multipliers, learn_sigma, image channels).")
    raise CheckpointError("\n".join(lines))


def load_weights(net: nn.Module, path: str | os.PathLike, *, arch: str,
                 ema: bool = True) -> Weights:
    """Read ``path``, unwrap it, apply the EMA copy and load it into ``net`` strictly.

    Parameters
    ----------
    net : torch.nn.Module
        A freshly built network of architecture ``arch``.
    path : str or path-like
        The checkpoint in its original format.
    arch : str
        Name used in error messages.
    ema : bool
        Use the EMA copy when the file has one (what the original code does).

    Returns
    -------
    Weights
        What was found; ``layout`` and ``notes`` say which copy was loaded.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from invdiff_models.checkpoints import load_weights
    >>> net = torch.nn.Linear(2, 1)
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save({"module.weight": torch.ones(1, 2), "module.bias": torch.zeros(1)}, path)
    >>> load_weights(net, path, arch="linear").layout
    'plain state_dict'
    >>> net.weight.tolist()
    [[1.0, 1.0]]
    """
    try:
        weights = extract_weights(read_file(path), ema=ema)
    except CheckpointError as e:
        if str(e).startswith("no state dict"):
            raise CheckpointError(f"checkpoint {os.fspath(path)!r}: {e}") from None
        raise
    sd = check_keys(net, weights.state_dict, arch=arch,
                    source=f"checkpoint {os.fspath(path)!r}")
    if weights.ema is not None:
        sd = _apply_ema(net, sd, weights.ema)
        weights.notes.append("EMA weights applied to the trainable parameters")
    else:
        weights.notes.append("weights taken as stored (no EMA copy in the file"
                             + (")" if ema else "; ema=False)"))
    for k, v in sd.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"checkpoint {os.fspath(path)!r}: tensor {k!r} has "
                                  "non-finite values (NaN or inf)")
    net.load_state_dict(sd, strict=True)
    return weights


# ---------------------------------------------------------------------------------------------
# one call from file to ScoreModel

ARCHITECTURES = ("adm", "ncsnv2", "ncsnpp")


def load_network(path: str | os.PathLike, arch: str, config: Any, *, ema: bool = True,
                 device: Any = None) -> tuple[nn.Module, Weights]:
    """Build ``arch`` from ``config`` and load ``path`` into it (strict, EMA as the original).

    Returns
    -------
    (torch.nn.Module, Weights)
        The network in ``eval()`` mode and what was read.

    Examples
    --------
    >>> import os, tempfile
    >>> from invdiff_models import ncsnv2
    >>> from invdiff_models.checkpoints import load_network
    >>> cfg = {"model": {"ngf": 8, "sigma_begin": 1, "sigma_end": 0.1, "num_classes": 3},
    ...        "data": {"channels": 1}}
    >>> path = os.path.join(tempfile.mkdtemp(), "w.pt")
    >>> torch.save(ncsnv2.build(cfg).state_dict(), path)
    >>> net, weights = load_network(path, "ncsnv2", cfg)
    >>> weights.layout
    'plain state_dict'
    """
    from . import adm, ncsnpp, ncsnv2

    builders = {"adm": adm.build, "ncsnv2": ncsnv2.build, "ncsnpp": ncsnpp.build}
    from .adapter import as_path, torch_device

    if not isinstance(arch, str) or arch not in builders:
        raise ValueError(f"arch must be one of {ARCHITECTURES}; received {arch!r}")
    path = as_path("path", path)
    if not os.path.isfile(path):  # before building a possibly large network
        raise FileNotFoundError(f"checkpoint file not found: {path!r}")
    device = torch_device(device, allow_none=True)
    net = builders[arch](config)
    weights = load_weights(net, path, arch=arch, ema=ema)
    if device is not None:
        net = net.to(device)
    return net.eval(), weights


def load_checkpoint(path: str | os.PathLike, arch: str, config: Any, *, ema: bool = True,
                    process: Any = None, device: Any = None, fp16: bool = False,
                    class_labels: Any = None):
    """Load an original checkpoint and wrap it as a ScoreModel.

    Parameters
    ----------
    path : str or path-like
        The file as distributed (``.pt``/``.pth`` in zip or legacy format, or
        ``.safetensors``); read with ``torch.load(weights_only=True)`` or safetensors.
    arch : {"adm", "ncsnv2", "ncsnpp"}
        ADM / guided-diffusion UNet (DPS, DMPS), NCSNv2 (QCS-SGM, QCS-SGM+), NCSN++ trained
        by RectifiedFlow.
    config : dict or namespace
        The original configuration (see ``adm.build``, ``ncsnv2.build``, ``ncsnpp.build``).
    ema : bool
        Apply the EMA copy stored in the file, as the original sampling code does (NCSNv2:
        ``states[-1]``; RectifiedFlow: ``ema.shadow_params``). ADM files are plain state dicts
        of EMA weights already.
    process : ForwardProcess, optional
        Override the process: ADM default ``VP.linear(1000)``; NCSNv2 default ``VE`` with its
        sigmas; NCSN++ uses ``Flow.rectified()`` (only ``training.sde='rectified_flow'``).
    device : torch.device or str, optional
        Where the network runs (default CPU).
    fp16 : bool
        ADM only: run the body's convolutions in float16 (``convert_to_fp16``), as DMPS does
        for its LSUN models (``use_fp16: True``). Default float32.
    class_labels : int or sequence of int, optional
        ADM only, required for class-conditional models (``class_cond: True``, the OpenAI
        ImageNet files): the label(s) the ScoreModel conditions on.

    Returns
    -------
    TorchScoreModel
        ``model.net`` is the network with the weights the original uses, called with the
        original's native inputs; ``model.source`` says which copy was loaded.

    Raises
    ------
    CheckpointError
        Truncated/corrupt file, pickled non-tensor objects, no state dict, or keys/shapes that do
        not match the architecture (the message lists the first offending keys).

    Examples
    --------
    >>> import os, tempfile, numpy as np, torch
    >>> import invdiff_models as ivm
    >>> cfg = {"image_size": 8, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1",
    ...        "attention_resolutions": "", "learn_sigma": True}
    >>> path = os.path.join(tempfile.mkdtemp(), "adm.pt")
    >>> torch.save(ivm.adm.build(cfg).state_dict(), path)
    >>> model = ivm.load_checkpoint(path, arch="adm", config=cfg)
    >>> model.prediction, model(np.zeros((1, 3, 8, 8), dtype=np.float32), 500).dtype
    ('eps', dtype('float32'))
    """
    from . import adapter
    from ._config import as_dict

    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}; received {arch!r}")
    if arch == "ncsnpp":
        cfg = as_dict(config)
        cfg = cfg.get("config", cfg) if isinstance(cfg.get("config"), dict) else cfg
        sde = cfg.get("training", {}).get("sde", "rectified_flow")
        if sde != "rectified_flow":
            raise NotImplementedError(
                f"training.sde={sde!r}: only RectifiedFlow NCSN++ checkpoints "
                "('rectified_flow') can be wrapped as a ScoreModel; build the network with "
                "ncsnpp.build and wrap it with adapter.TorchScoreModel"
            )
    net, weights = load_network(path, arch, config, ema=ema, device=device)
    source = f"{os.fspath(path)}: {weights.layout}; " + "; ".join(weights.notes)
    if arch == "adm":
        if fp16:
            net.convert_to_fp16()
        return adapter.adm(net, process, class_labels=class_labels, source=source)
    if fp16 or class_labels is not None:
        raise ValueError("fp16 and class_labels are only supported for arch='adm'; "
                         f"received arch={arch!r}")
    if arch == "ncsnv2":
        return adapter.ncsnv2(net, process, source=source)
    if process is not None:
        raise ValueError("process cannot be overridden for RectifiedFlow NCSN++ (Flow)")
    return adapter.rectified(net, centered=net.centered, source=source)
