"""The priors of the command line: a bundled one (``--model``, ``--weights-dir``) or the
user's own checkpoint (``--checkpoint PATH --arch ARCH --config JSON``).

Every failure to load becomes a :class:`CLIError` naming the option, and the loaded model
gets the attributes the commands rely on: ``name``, ``channels`` (1 or 3), ``image_size``
(``None`` when any size the network takes works), ``size_multiple``, ``data_range`` and
``trained_size`` (the size the network was trained on, when known).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ._errors import CLIError, one_line
from ._io import check_device

__all__ = ["ARCHS", "load_model", "load_checkpoint_model", "check_network_input"]

#: ``--arch`` values: the original checkpoint families of :mod:`invdiff_models` and diffusers.
ARCHS = {
    "adm": "ADM / guided-diffusion UNet (DPS, DMPS; VP, eps); --config: the create_model "
           "arguments as JSON",
    "ncsnv2": "NCSNv2 (QCS-SGM; VE, score, images in [0, 1]); --config: the YAML config as "
              "JSON (sections model, data)",
    "ncsnpp": "NCSN++ trained by RectifiedFlow (flow, velocity); --config: the score-SDE "
              "config as JSON (sections model, data, training)",
    "diffusers": "a diffusers UNet2DModel folder (config.json + weights, with "
                 "scheduler_config.json or a pipeline folder); no --config",
}


def _models_module():
    try:
        import invdiff_models as ivm
    except ImportError as e:  # pragma: no cover - the [models] extra is missing
        raise CLIError(f"the priors need torch and safetensors: pip install "
                       f"'invdiff[models]' ({e})") from None
    return ivm


def load_model(name: str, *, device: str = "cpu", weights_dir=None, option: str = "--model"):
    """Load bundled prior ``name`` (or from ``weights_dir``) with CLI-friendly errors.

    Examples
    --------
    >>> from invdiff.cli._priors import load_model
    >>> from invdiff.cli._errors import CLIError
    >>> try:
    ...     load_model("no-such-prior")
    ... except CLIError as e:
    ...     print(str(e).split(":")[0])
    --model
    """
    ivm = _models_module()
    check_device(device)
    if weights_dir is not None and not Path(weights_dir).is_dir():
        raise CLIError(f"--weights-dir: no such folder: {str(weights_dir)!r}")
    names = ivm.available(weights_dir)
    if name not in names:
        where = f"in {weights_dir}" if weights_dir else "bundled with this installation"
        hint = "" if names else (" (train one with `invdiff train NAME --bundle`, or point "
                                 "--weights-dir at a folder with NAME.safetensors + NAME.json)")
        raise CLIError(f"{option + ': ' if option else ''}no prior {name!r} {where}; available: "
                       f"{names or 'none'}{hint}")
    where = f"--weights-dir: cannot load prior {name!r} from {str(weights_dir)!r}" \
        if weights_dir else f"--model: cannot load the bundled prior {name!r}"
    try:
        model = ivm.load(name, device=device, folder=weights_dir)
    except Exception as e:  # noqa: BLE001 - any broken sidecar or weights file
        raise CLIError(f"{where}: {type(e).__name__}: {one_line(e)}") from None
    _check_attributes(model, where)
    model.trained_size = model.image_size
    return model


def _check_attributes(model, where: str) -> None:
    """The sidecar's size and range fields, which the commands trust, must make sense."""
    channels, size = getattr(model, "channels", None), getattr(model, "image_size", None)
    mult = getattr(model, "size_multiple", 1)
    low, high = (tuple(getattr(model, "data_range", (-1.0, 1.0))) + (None, None))[:2]
    problems = []
    if channels not in (1, 3):
        problems.append(f"channels must be 1 or 3, not {channels!r}")
    if size is not None and not (isinstance(size, int) and size > 0):
        problems.append(f"image_size must be a positive integer or null, not {size!r}")
    if not (isinstance(mult, int) and mult > 0):
        problems.append(f"size_multiple must be a positive integer, not {mult!r}")
    try:
        ok = math.isfinite(low) and math.isfinite(high) and low < high
    except TypeError:
        ok = False
    if not ok:
        problems.append(f"data_range must be two finite numbers low < high, not "
                        f"{getattr(model, 'data_range', None)!r}")
    if problems:
        raise CLIError(f"{where}: the sidecar JSON is inconsistent: {'; '.join(problems)}")


def _read_config(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"--config: no such file: {str(path)!r}")
    text = path.read_text(errors="replace")
    if path.suffix.lower() in (".yml", ".yaml"):
        try:
            import yaml
        except ImportError:
            raise CLIError("--config: reading YAML needs PyYAML (pip install pyyaml); or "
                           "convert the file to JSON") from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise CLIError(f"--config: {str(path)!r} is not valid YAML: {one_line(e)}") from None
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as e:
            raise CLIError(f"--config: {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise CLIError(f"--config: {str(path)!r} must hold a JSON object (the network's "
                       f"configuration); it holds a {type(config).__name__}")
    return config


def _trained_size(arch: str, config: dict | None, net) -> int | None:
    """The image size the network was trained on, from its configuration when it says."""
    if arch == "diffusers":
        size = getattr(getattr(net, "config", None), "sample_size", None)
    elif arch == "adm":
        inner = config.get("create_model_kwargs", config.get("resolved_UNetModel_kwargs",
                                                             config))
        size = inner.get("image_size") if isinstance(inner, dict) else None
    else:
        inner = config.get("config", config.get("yaml_config", config))
        data = inner.get("data", {}) if isinstance(inner, dict) else {}
        size = data.get("image_size") if isinstance(data, dict) else None
    if isinstance(size, (list, tuple)) and size:
        size = size[0]
    return int(size) if isinstance(size, (int, float)) and size > 0 else None


def load_checkpoint_model(path, arch, config_path, *, device: str = "cpu", class_label=None):
    """The user's own network as a ScoreModel, from ``--checkpoint/--arch/--config``.

    Examples
    --------
    >>> from invdiff.cli._priors import load_checkpoint_model
    >>> from invdiff.cli._errors import CLIError
    >>> try:
    ...     load_checkpoint_model("missing.pt", "adm", "missing.json")
    ... except CLIError as e:
    ...     print(str(e).split(":")[0])
    --checkpoint
    """
    ivm = _models_module()
    if arch is None:
        raise CLIError(f"--arch is required with --checkpoint: one of {', '.join(ARCHS)}")
    check_device(device)
    path = Path(path)
    if arch == "diffusers":
        if config_path is not None:
            raise CLIError("--config is not used with --arch diffusers (the folder holds "
                           "config.json)")
        if not path.is_dir():
            raise CLIError(f"--checkpoint: --arch diffusers needs a folder (written by "
                           f"save_pretrained, or a pipeline folder); {str(path)!r} is not one")
        config = None
    else:
        if not path.is_file():
            what = "is a folder (only --arch diffusers takes one)" if path.is_dir() else \
                "does not exist"
            raise CLIError(f"--checkpoint: {str(path)!r} {what}")
        if config_path is None:
            raise CLIError(f"--config is required with --arch {arch}: the network's original "
                           f"configuration as a JSON file")
        config = _read_config(config_path)
    if class_label is not None and arch != "adm":
        raise CLIError("--class-label is only used by class-conditional --arch adm networks")
    try:
        if arch == "diffusers":
            from invdiff_models import hub

            model = hub.from_diffusers(path, device=device)
        else:
            model = ivm.load_checkpoint(path, arch, config, device=device,
                                        class_labels=class_label)
    except ImportError as e:
        raise CLIError(f"--arch {arch}: {one_line(e)}") from None
    except ivm.CheckpointError as e:
        raise CLIError(f"--checkpoint: {one_line(e)}") from None
    except (ValueError, TypeError, KeyError, NotImplementedError) as e:
        option = "--checkpoint" if arch == "diffusers" else "--config"
        raise CLIError(f"{option}: cannot build the {arch} network: {type(e).__name__}: "
                       f"{one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - whatever a foreign file makes a loader raise
        raise CLIError(f"--checkpoint: cannot load {str(path)!r} as {arch}: "
                       f"{type(e).__name__}: {one_line(e)}") from None
    model.name = path.name
    model.channels = _input_channels(model.net)
    model.image_size = None
    model.size_multiple = 1
    model.trained_size = _trained_size(arch, config, model.net)
    model.metadata = {"source": model.source}
    if model.channels not in (1, 3):
        raise CLIError(f"--checkpoint: the network takes {model.channels} input channels; "
                       f"restore handles grayscale (1) and RGB (3) images only")
    return model


def _input_channels(net) -> int | None:
    import torch

    config = getattr(net, "config", None)  # diffusers
    if config is not None and getattr(config, "in_channels", None):
        return int(config.in_channels)
    for m in net.modules():  # the first convolution reads the image
        if isinstance(m, torch.nn.Conv2d):
            return int(m.in_channels)
    return None


def check_network_input(model, shape) -> None:
    """Refuse an image size the network cannot process, suggesting sizes it can.

    Runs the network on the meta device (shapes only, nothing allocated): a user's network
    may need sizes that are multiples of its total downsampling, which no sidecar states.

    Examples
    --------
    >>> import numpy as np, torch
    >>> import invdiff as ivd
    >>> from invdiff_models.adapter import TorchScoreModel
    >>> from invdiff.cli._priors import check_network_input
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1))
    >>> model = TorchScoreModel(net, ivd.processes.VP.linear(), "eps",
    ...                         forward=lambda n, x, t: n(x))
    >>> check_network_input(model, (1, 5, 7))
    """
    C, H, W = shape
    if getattr(model, "image_size", None) or getattr(model, "size_multiple", 1) > 1:
        return  # a bundled prior: its sidecar states the sizes (checked before)
    if _takes(model, shape) is not False:
        return
    for j in range(1, 8):
        m = 2 ** j
        down = (C, max(m, H - H % m), max(m, W - W % m))
        if _takes(model, down):
            up = (C, H + (-H) % m, W + (-W) % m)
            raise CLIError(
                f"--input: the network cannot process a {W}x{H} image (width x height); it "
                f"takes sizes that are multiples of {m}: crop or pad the restored size to "
                f"{down[2]}x{down[1]} or {up[2]}x{up[1]}")
    raise CLIError(f"--input: the network cannot process a {W}x{H} image (width x height) "
                   f"with {C} channel(s)")


def _takes(model, shape) -> bool | None:
    """Whether the network runs on a ``(1, *shape)`` batch (``None``: cannot tell)."""
    import torch
    from torch.func import functional_call

    from ._budget import as_module

    net = getattr(model, "net", None)
    if not isinstance(net, torch.nn.Module):
        return None
    meta = {f"net.{k}": torch.empty_like(v, device="meta")
            for k, v in [*net.named_parameters(), *net.named_buffers()]}
    t_mid = 0.5 * (float(model.process.t_min) + float(model.process.t_max))
    x = torch.empty((1, *shape), dtype=model.dtype, device="meta")
    t = torch.full((1,), t_mid, dtype=torch.float64, device="meta")
    try:
        with torch.no_grad():
            out = functional_call(as_module(model), meta, (x, t))
    except NotImplementedError:  # an operation without a meta kernel
        return None
    except (RuntimeError, ValueError, IndexError, AssertionError) as e:
        # a tensor kept outside the parameters and buffers meets the meta ones: cannot tell
        return None if "meta" in str(e).lower() else False
    except Exception:  # noqa: BLE001
        return None
    if tuple(out.shape[-2:]) != tuple(shape[-2:]):
        return False
    return True
