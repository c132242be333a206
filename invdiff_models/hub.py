"""Load a diffusers ``UNet2DModel`` and its scheduler from a local folder as a ScoreModel.

``diffusers`` is an optional dependency (extra ``invdiff[models]``); nothing is downloaded:
only local folders are read (``local_files_only=True``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch

from invdiff.processes import VP

from .adapter import TorchScoreModel, as_path, torch_device, torch_dtype

__all__ = ["from_diffusers"]

_SHOW = 5  # how many offending keys an error message lists

_INSTALL_HINT = (
    "invdiff_models.hub needs the optional dependency 'diffusers'; install it with "
    "`pip install \"invdiff[models]\"` (or `pip install diffusers`)"
)


def _diffusers():
    try:
        import diffusers
    except ImportError as e:
        raise ImportError(_INSTALL_HINT) from e
    return diffusers


def _find(folder: str) -> tuple[str, str | None]:
    """(unet folder, scheduler folder or None) for a pipeline or a bare model folder."""
    if os.path.isfile(os.path.join(folder, "model_index.json")) or os.path.isdir(
            os.path.join(folder, "unet")):
        unet = os.path.join(folder, "unet")
        sched = os.path.join(folder, "scheduler")
    else:
        unet = sched = folder
    if not os.path.isfile(os.path.join(unet, "config.json")):
        raise FileNotFoundError(
            f"no UNet2DModel found under {folder!r}: expected {os.path.join(unet, 'config.json')}"
            " (a folder written by UNet2DModel.save_pretrained, or a pipeline folder with "
            "unet/ and scheduler/)"
        )
    if not os.path.isfile(os.path.join(sched, "scheduler_config.json")):
        sched = None
    return unet, sched


def _prediction_forward(kind: str, process: VP):
    """Forward returning eps (or x0) in invdiff's convention for a diffusers prediction type."""
    def call(net, x, t):
        return net(x, (t - 1.0).to(x.dtype)).sample

    if kind in ("epsilon", "sample"):
        return call
    if kind == "v_prediction":
        # v = a eps - b x0 and x_t = a x0 + b eps  =>  eps = a v + b x_t (a^2 + b^2 = 1)
        def call_v(net, x, t):
            out = call(net, x, t)
            c = x.shape[1]
            # the adapter checked the times; no per-step host synchronisation here
            a, b = process._ab_unchecked(t)
            a = a.to(x.dtype).reshape(-1, 1, 1, 1)
            b = b.to(x.dtype).reshape(-1, 1, 1, 1)
            eps = a * out[:, :c] + b * x
            return torch.cat([eps, out[:, c:]], dim=1) if out.shape[1] > c else eps

        return call_v
    raise NotImplementedError(
        f"scheduler prediction_type={kind!r} is not supported; expected 'epsilon', 'sample' "
        "or 'v_prediction'"
    )


def _read_json(path: str) -> dict:
    """A JSON object from ``path``, or a ``CheckpointError`` naming the file."""
    from .checkpoints import CheckpointError

    try:
        with open(path) as f:
            obj = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path!r} is not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path!r} must hold a JSON object; it holds a "
                              f"{type(obj).__name__}")
    return obj


def _load_unet(diffusers, unet_dir: str):
    """``UNet2DModel.from_pretrained`` that refuses weights which do not match the config.

    diffusers only logs a warning for missing or unexpected keys and leaves the missing
    layers randomly initialised; a prior with random layers gives wrong answers silently.
    """
    from .checkpoints import CheckpointError

    try:
        net, info = diffusers.UNet2DModel.from_pretrained(
            unet_dir, local_files_only=True, output_loading_info=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"cannot load the UNet2DModel weights in {unet_dir!r}: "
                              f"{type(e).__name__}: {str(e)[:400]}") from e
    problems = []
    for key, what in (("missing_keys", "missing from the weights"),
                      ("unexpected_keys", "in the weights but not in the config's network"),
                      ("mismatched_keys", "of another shape than the config's network")):
        keys = sorted(k if isinstance(k, str) else k[0] for k in info.get(key) or [])
        if keys:
            shown = ", ".join(keys[:_SHOW]) + (", ..." if len(keys) > _SHOW else "")
            problems.append(f"{len(keys)} keys {what} ({shown})")
    if info.get("error_msgs"):
        problems.append("; ".join(str(m) for m in info["error_msgs"])[:300])
    if problems:
        raise CheckpointError(
            f"the weights in {unet_dir!r} do not match its config.json: "
            + "; ".join(problems) + ". Layers without weights would stay randomly "
            "initialised, so the folder is refused (fix config.json to match the weights)")
    return net


def from_diffusers(folder: str | os.PathLike, *, device: Any = None,
                   dtype: torch.dtype | None = None, process: VP | None = None) -> TorchScoreModel:
    """A diffusers ``UNet2DModel`` + scheduler, from a local folder, as a ScoreModel.

    Parameters
    ----------
    folder : str or path-like
        Either a pipeline folder (``model_index.json``, ``unet/``, ``scheduler/``) or a folder
        written by ``UNet2DModel.save_pretrained`` (``config.json`` and weights), optionally with
        a ``scheduler_config.json`` next to it.
    device : torch.device or str, optional
        Where to run the network (default CPU).
    dtype : torch.dtype, optional
        Cast the network (default: as stored).
    process : VP, optional
        Overrides the process built from the scheduler's ``betas``; required when the folder has
        no scheduler.

    Returns
    -------
    TorchScoreModel
        ``process``: ``VP(scheduler.betas)``; ``prediction``: ``"eps"`` for ``epsilon`` and
        ``v_prediction`` schedulers (v is converted to eps), ``"x0"`` for ``sample``. The
        network gets ``t - 1`` (diffusers' 0-indexed timesteps). With ``variance_type=
        "learned_range"`` the learned variance is exposed by ``predict_with_log_variance``.

    Raises
    ------
    ImportError
        If diffusers is not installed (names the ``invdiff[models]`` extra).
    FileNotFoundError
        If ``folder`` holds no ``config.json`` of a UNet2DModel.
    invdiff_models.checkpoints.CheckpointError
        (a ``ValueError``) if the weights are unreadable or do not match ``config.json``:
        missing, unexpected or differently shaped keys are listed (diffusers itself only warns
        and leaves the missing layers randomly initialised).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from diffusers import UNet2DModel, DDPMScheduler
    >>> from invdiff_models import hub
    >>> folder = tempfile.mkdtemp()
    >>> UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
    ...             block_out_channels=(8, 8), norm_num_groups=4,
    ...             down_block_types=("DownBlock2D", "DownBlock2D"),
    ...             up_block_types=("UpBlock2D", "UpBlock2D")).save_pretrained(folder)
    >>> DDPMScheduler(num_train_timesteps=100).save_pretrained(folder)
    >>> model = hub.from_diffusers(folder)
    >>> model.process.T, model.prediction, model(np.zeros((1, 1, 8, 8)), 10).shape
    (100, 'eps', (1, 1, 8, 8))
    """
    diffusers = _diffusers()
    folder = as_path("folder", folder)
    device, dtype = torch_device(device, allow_none=True), torch_dtype(dtype)
    if process is not None and not isinstance(process, VP):
        raise TypeError(f"process must be a VP process or None; received {process!r}")
    unet_dir, sched_dir = _find(folder)
    cls_name = _read_json(os.path.join(unet_dir, "config.json")).get("_class_name",
                                                                     "UNet2DModel")
    if cls_name != "UNet2DModel":
        raise NotImplementedError(f"{unet_dir!r} holds a {cls_name}; only UNet2DModel is supported")
    net = _load_unet(diffusers, unet_dir)
    if getattr(net.config, "num_class_embeds", None) or getattr(
            net.config, "class_embed_type", None):
        raise NotImplementedError("class-conditional UNet2DModel is not supported")
    if device is not None or dtype is not None:
        net = net.to(device=device, dtype=dtype)

    kind, variance = "epsilon", "fixed_small"
    if sched_dir is not None:
        sched_name = _read_json(os.path.join(sched_dir, "scheduler_config.json")).get(
            "_class_name", "DDPMScheduler")
        sched_cls = getattr(diffusers, str(sched_name), None)
        if not (isinstance(sched_cls, type) and issubclass(sched_cls, diffusers.SchedulerMixin)):
            raise NotImplementedError(f"unknown scheduler class {sched_name!r} in "
                                      f"{os.path.join(sched_dir, 'scheduler_config.json')!r}")
        scheduler = sched_cls.from_pretrained(sched_dir, local_files_only=True)
        if not hasattr(scheduler, "betas"):
            raise NotImplementedError(f"{sched_name} has no beta schedule (not a VP scheduler)")
        kind = scheduler.config.get("prediction_type", "epsilon")
        variance = scheduler.config.get("variance_type", "fixed_small") or "fixed_small"
        if process is None:
            process = VP([float(b) for b in scheduler.betas.double()], name=sched_name)
    elif process is None:
        raise ValueError(f"{folder!r} has no scheduler_config.json; pass process= (a VP process)")

    c_in, c_out = net.config.in_channels, net.config.out_channels
    learned = c_out == 2 * c_in
    if learned and variance != "learned_range":
        raise NotImplementedError(
            f"UNet outputs {c_out} channels (learned variance) with variance_type={variance!r}; "
            "only 'learned_range' is supported"
        )
    if not learned and c_out != c_in:
        raise ValueError(f"UNet out_channels={c_out} must equal in_channels={c_in} (or twice it)")
    prediction = "x0" if kind == "sample" else "eps"
    levels = len(getattr(net.config, "block_out_channels", None) or (1,))
    return TorchScoreModel(net, process, prediction, forward=_prediction_forward(kind, process),
                           learned_range=learned, source=f"diffusers folder {folder!r}",
                           channels=c_in, size_multiple=2 ** (levels - 1))
