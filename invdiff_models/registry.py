"""Bundled priors as ready-to-use ScoreModels: :func:`load`, :func:`available`, model cards.

The weights, their JSON sidecar and the Markdown card live in :mod:`invdiff_models.bundled`
(produced by :mod:`invdiff_models.training`); this module only turns them into a
:class:`~invdiff_models.adapter.TorchScoreModel` that the samplers and methods of
:mod:`invdiff` accept, and summarises the cards for ``invdiff models``.

Examples
--------
>>> import invdiff_models as ivm
>>> set(ivm.available()) <= {"mnist", "natural"}
True
"""

from __future__ import annotations

import os
from pathlib import Path

from invdiff.processes import VP

from ._config import as_int
from .adapter import TorchScoreModel
from .bundled import HERE as BUNDLED_DIR
from .bundled import available as _bundled_available
from .bundled import card as _bundled_card
from .bundled import load_network, metadata
from .checkpoints import CheckpointError

__all__ = ["load", "available", "card", "cards", "summary", "LOADERS"]

#: Checkpoint families that load from their original files (not bundled; you supply the file).
LOADERS = {
    "adm": "ADM / guided-diffusion UNet (DPS ffhq_10m.pt, OpenAI LSUN/ImageNet): "
           "invdiff_models.load_checkpoint(path, 'adm', config)",
    "ncsnv2": "NCSNv2 (QCS-SGM / ncsnv2 checkpoints, VE process): "
              "invdiff_models.load_checkpoint(path, 'ncsnv2', config)",
    "ncsnpp": "NCSN++ trained by RectifiedFlow (Flow process): "
              "invdiff_models.load_checkpoint(path, 'ncsnpp', config)",
    "diffusers": "diffusers UNet2DModel + scheduler from a local folder: "
                 "invdiff_models.hub.from_diffusers(folder)",
}


def available(folder=None) -> list[str]:
    """Names of the priors whose weights ship with the package (or lie in ``folder``).

    Parameters
    ----------
    folder : path-like, optional
        Look for ``NAME.safetensors`` + ``NAME.json`` here instead of the package (e.g. the
        output folder of ``invdiff train NAME``).

    Returns
    -------
    list of str
        Sorted names, e.g. ``["mnist", "natural"]``.

    Examples
    --------
    >>> from invdiff_models.registry import available
    >>> set(available()) <= {"mnist", "natural"}
    True
    """
    if folder is None:
        return _bundled_available()
    folder = Path(folder)
    return sorted(p.stem for p in folder.glob("*.safetensors")
                  if (folder / f"{p.stem}.json").is_file())


def _process(meta: dict) -> VP:
    spec = meta.get("process", {})
    if not isinstance(spec, dict) or spec.get("kind") != "VP" or \
            spec.get("schedule") != "linear":
        raise CheckpointError(f"process of a bundled prior must be the VP linear schedule; the "
                              f"sidecar of {meta.get('name')!r} says {spec!r}")
    try:
        return VP.linear(spec["T"], spec["beta_start"], spec["beta_end"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"sidecar of {meta.get('name')!r} has a bad process {spec!r}: "
                              f"{type(e).__name__}: {e}") from e


def _forward(net, x, t):
    # invdiff's DDPM step k (1..T, fractional allowed) is the network's native k - 1.
    return net(x, (t - 1.0).to(x.dtype))


def load(name: str, device="cpu", *, dtype=None, folder=None) -> TorchScoreModel:
    """A bundled prior as a ScoreModel, offline.

    Parameters
    ----------
    name : str
        One of :func:`available` (``"mnist"``: 1x28x28 digits; ``"natural"``: RGB patches,
        any size that is a multiple of 8).
    device : str or torch.device, default "cpu"
        Where the network runs (``"cuda"`` for a GPU).
    dtype : torch.dtype or str, optional
        Network dtype (float32 by default; the file stores float16); ``"float64"`` etc.
        are accepted too.
    folder : path-like, optional
        Read ``NAME.safetensors`` + ``NAME.json`` from this folder instead of the package.

    Returns
    -------
    TorchScoreModel
        With ``vjp`` (for DPS / ΠGDM), ``process`` = ``VP.linear(1000)`` (β from 1e-4 to
        0.02), ``prediction = "eps"``, ``data_range = (-1.0, 1.0)`` (from the sidecar); extra
        attributes ``name``, ``metadata`` (the sidecar dict), ``channels``, ``image_size``
        (``None`` when any size works) and ``size_multiple`` (height and width must be
        multiples of it).

    Raises
    ------
    TypeError
        ``name`` not a string, ``device``/``dtype`` of the wrong type.
    ValueError
        Unknown ``name`` (the message lists the available ones), a ``device`` this machine
        lacks, a non-floating ``dtype``.
    FileNotFoundError
        ``folder`` does not exist.
    invdiff_models.checkpoints.CheckpointError
        (a ``ValueError``) for a truncated or foreign weights file, a sidecar this loader does
        not understand, or weights that do not match the sidecar's network.

    Notes
    -----
    The network is the ε-prediction UNet of :mod:`invdiff_models.unet` trained with the DDPM
    objective (Ho et al. 2020); invdiff's time ``t = k`` (DDPM step, 1..1000) is fed as the
    network's native ``k - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff_models as ivm
    >>> if "mnist" in ivm.available():
    ...     model = ivm.load("mnist")
    ...     out = model(np.zeros((2, 1, 28, 28), dtype=np.float32), 500)
    ...     print(out.shape, model.prediction, model.data_range)
    ... else:
    ...     print((2, 1, 28, 28), "eps", (-1.0, 1.0))
    (2, 1, 28, 28) eps (-1.0, 1.0)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {available()}; received "
                        f"{type(name).__name__}")
    net, meta = load_network(name, device=device, dtype=dtype, folder=folder)
    if meta.get("prediction") != "eps":
        raise CheckpointError(f"prediction of bundled prior {name!r} must be 'eps'; the "
                              f"sidecar says {meta.get('prediction')!r}")
    source = str(Path(folder or BUNDLED_DIR) / f"{name}.safetensors")
    where = f"sidecar of {name!r}"
    try:
        channels = as_int(meta.get("channels", meta["config"].get("in_channels")), "channels",
                          where=where, low=1)
        multiple = as_int(meta.get("size_multiple") or 1, "size_multiple", where=where, low=1)
        image_size = meta.get("image_size")
        if image_size is not None:
            image_size = as_int(image_size, "image_size", where=where, low=1)
    except (TypeError, ValueError) as e:
        raise CheckpointError(str(e)) from e
    model = TorchScoreModel(net, _process(meta), "eps", forward=_forward,
                            data_range=meta["data_range"], source=source, channels=channels,
                            size_multiple=multiple)
    model.name = name
    model.metadata = meta
    model.image_size = image_size
    return model


def card(name: str, folder=None) -> str:
    """The full model card (Markdown) of bundled prior ``name``.

    Examples
    --------
    >>> from invdiff_models.registry import available, card
    >>> all(card(n).startswith("#") for n in available())
    True
    """
    if folder is None:
        return _bundled_card(name)
    path = Path(folder) / f"{name}.md"
    return path.read_text() if path.is_file() else ""


def summary(name: str, folder=None) -> dict:
    """A short card of bundled prior ``name``: what ``invdiff models`` prints.

    Returns
    -------
    dict
        ``name``, ``data``, ``size`` (``"1x28x28"`` or ``"3xHxW, H, W multiples of 8"``),
        ``parameters``, ``file_mb``, ``process``, ``prediction``, ``data_range``,
        ``training`` (steps, wall time, final loss, stop reason), ``heldout`` and ``card``
        (path of the Markdown card).

    Examples
    --------
    >>> from invdiff_models.registry import available, summary
    >>> all(summary(n)["prediction"] == "eps" for n in available())
    True
    """
    meta = metadata(name, folder)
    base = Path(folder or BUNDLED_DIR)
    ch = meta.get("channels", meta["config"]["in_channels"])
    size = (f"{ch}x{meta['image_size']}x{meta['image_size']}" if meta.get("image_size")
            else f"{ch}xHxW, H and W multiples of {meta.get('size_multiple', 1)}")
    proc = meta["process"]
    tr = meta.get("training", {})
    data = meta.get("data", {})
    if meta.get("recipe", {}).get("data") == "mnist":
        data_text = "MNIST test split, indices 0-8999 (9000-9999 held out)"
    else:
        train = ", ".join(sorted(data.get("train_images", {}))) or "?"
        data_text = f"RGB crops of {train}"
    held = ", ".join(sorted(data.get("heldout_images", {}))) or (
        "MNIST indices 9000-9999" if "mnist" in data_text.lower() else "")
    weights = base / f"{name}.safetensors"
    return {
        "name": name,
        "data": data_text,
        "heldout": held,
        "size": size,
        "parameters": meta.get("parameters"),
        "file_mb": round(os.path.getsize(weights) / 2**20, 2) if weights.is_file() else None,
        "process": (f"{proc['kind']} {proc['schedule']}, T={proc['T']}, "
                    f"beta {proc['beta_start']:g}..{proc['beta_end']:g}"),
        "prediction": meta.get("prediction"),
        "data_range": tuple(meta["data_range"]),
        "training": {
            "steps_done": tr.get("steps_done"),
            "steps_planned": tr.get("steps_planned"),
            "wall_seconds": tr.get("wall_seconds"),
            "final_loss_ema": tr.get("final_loss_ema"),
            "stopped_by": tr.get("stopped_by"),
            "batch_size": meta.get("recipe", {}).get("batch_size"),
            "lr": meta.get("recipe", {}).get("lr"),
            "seed": meta.get("recipe", {}).get("seed"),
        },
        "card": str(base / f"{name}.md"),
    }


def cards(folder=None) -> list[dict]:
    """:func:`summary` of every available prior.

    Examples
    --------
    >>> from invdiff_models.registry import available, cards
    >>> [c["name"] for c in cards()] == available()
    True
    """
    return [summary(n, folder) for n in available(folder)]
