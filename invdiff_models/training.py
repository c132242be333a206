"""The reproducible recipe that produced the bundled priors (``invdiff train NAME``).

Two recipes live in :data:`RECIPES`:

``mnist``
    MNIST test-set images with indices 0-8999 only (the README of the data folder fixes
    9000-9999 as held out; they are never read here), 28x28x1, scaled to [-1, 1].
``natural``
    Random 32x32 RGB crops (random horizontal flip, random scale 1, 1/2 or 1/4) of the
    photographs that ship inside installed wheels (scikit-image, scikit-learn, matplotlib),
    minus the held-out evaluation images listed in :data:`NATURAL_EVAL`.

Both train the :class:`invdiff_models.unet.UNet` to predict ε under the DDPM VP linear
schedule (T = 1000, β from 1e-4 to 0.02; Ho et al. 2020) with the simple loss
``E ||ε - ε_θ(√ᾱ_k x0 + √(1-ᾱ_k) ε, k-1)||²``, k uniform in 1..T, Adam, an EMA of the weights,
a fixed seed and a fixed number of steps. A wall-clock deadline (and SIGTERM) stops training
early, saving and exporting what exists; the sidecar JSON records which stop happened.

Command line (``python -m invdiff_models.training --help``)::

    train NAME [--data-dir D] [--out-dir O] [--steps N] [--deadline ISO] [--bundle]
    export NAME --out-dir O [--bundle-dir B]
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import gzip
import json
import math
import os
import platform
import shutil
import signal
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .unet import DEFAULT_CONFIGS, UNet, count_parameters

__all__ = [
    "RECIPES",
    "NATURAL_TRAIN",
    "NATURAL_EVAL",
    "MNIST_TRAIN_INDICES",
    "MNIST_HELDOUT_INDICES",
    "vp_linear_alphabar",
    "load_mnist",
    "natural_image_paths",
    "load_natural_images",
    "default_mnist_dir",
    "train",
    "export",
    "read_checkpoint",
    "CHECKPOINT_KEYS",
    "main",
]

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

#: MNIST indices the priors are trained on and the held-out ones (data README, fixed).
MNIST_TRAIN_INDICES = range(0, 9000)
MNIST_HELDOUT_INDICES = range(9000, 10000)

#: Photographs (RGB, shipped inside the wheels, never downloaded) used for training.
#: Keys are stable names; values are (distribution module, path inside it).
NATURAL_TRAIN: dict[str, tuple[str, str]] = {
    "chelsea": ("skimage", "data/chelsea.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "motorcycle_right": ("skimage", "data/motorcycle_right.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
#: Held-out evaluation photographs: never used in training.
NATURAL_EVAL: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "coffee": ("skimage", "data/coffee.png"),
}
# Not used at all (documented in the model card): skimage hubble_deep_field, retina, ihc
# (scientific imagery, not natural photographs), color/logo/chessboard (synthetic), the
# grayscale images of skimage and PyWavelets (ascent, camera, aero, ...: no colour, and a
# colour prior trained on replicated grey would bias colourisation towards grey).

_PROCESS = {"kind": "VP", "schedule": "linear", "T": 1000, "beta_start": 1e-4, "beta_end": 0.02}

#: The recipes. ``steps`` was fixed from the throughput measured on the 2-core build machine
#: (one thread per run) so that each run ends before the session's deadline.
RECIPES: dict[str, dict] = {
    "mnist": {
        "data": "mnist",
        "config": {**DEFAULT_CONFIGS["mnist"], "num_res_blocks": 1},
        "image_size": 28,
        "batch_size": 64,
        "lr": 3e-4,
        "warmup_steps": 500,
        "grad_clip": 1.0,
        "ema_decay": 0.999,
        "steps": 13000,
        "seed": 20261129,
        "log_every": 50,
        "ckpt_every": 500,
        "augment": "none",
    },
    "natural": {
        "data": "natural",
        "config": {**DEFAULT_CONFIGS["natural"], "num_res_blocks": 1,
                   "channel_mults": [1, 2, 2, 2]},
        "image_size": 32,
        "batch_size": 32,
        "lr": 3e-4,
        "warmup_steps": 500,
        "grad_clip": 1.0,
        "ema_decay": 0.999,
        "steps": 20000,
        "seed": 20261130,
        "log_every": 50,
        "ckpt_every": 500,
        "augment": "random crop 32x32 of a random image at a random scale in {1, 1/2, 1/4} "
                   "(Lanczos downscale), random horizontal flip",
        "scales": [1.0, 0.5, 0.25],
    },
}


# ----------------------------------------------------------------------------- process
def vp_linear_alphabar(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
    """ᾱ_k for the DDPM linear schedule, k = 1..T (index k-1), float64.

    Notes
    -----
    β_k = β_start + (β_end - β_start)(k-1)/(T-1), ᾱ_k = ∏_{s≤k} (1 - β_s) (Ho et al. 2020).

    Examples
    --------
    >>> ab = vp_linear_alphabar()
    >>> round(float(ab[0]), 6), ab.shape
    (0.9999, torch.Size([1000]))
    """
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


# ----------------------------------------------------------------------------- data
def default_mnist_dir() -> Path:
    """MNIST folder: ``$INVDIFF_MNIST_DIR`` or ``<repo>/../shared/data/mnist``.

    Examples
    --------
    >>> default_mnist_dir().name
    'mnist'
    """
    env = os.environ.get("INVDIFF_MNIST_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def load_mnist(data_dir, indices) -> np.ndarray:
    """Read MNIST test images ``indices`` from ``t10k-images-idx3-ubyte.gz`` as uint8.

    Parameters
    ----------
    data_dir : path-like
        Folder holding ``t10k-images-idx3-ubyte.gz`` (IDX: big-endian magic 2051, n, 28, 28).
    indices : range or sequence of int
        Image indices in 0..9999.

    Returns
    -------
    numpy.ndarray
        ``(len(indices), 28, 28)`` uint8.

    Examples
    --------
    >>> import os
    >>> d = default_mnist_dir()
    >>> x = load_mnist(d, range(3)) if d.exists() else np.zeros((3, 28, 28), np.uint8)
    >>> x.shape, x.dtype
    ((3, 28, 28), dtype('uint8'))
    """
    path = Path(data_dir) / "t10k-images-idx3-ubyte.gz"
    if not path.is_file():
        raise FileNotFoundError(
            f"data_dir must contain t10k-images-idx3-ubyte.gz, not found: {path}"
        )
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 2051 or (rows, cols) != (28, 28):
        raise ValueError(f"{path} is not an MNIST IDX image file (magic={magic}, {rows}x{cols})")
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"indices must lie in [0, {n - 1}], got [{idx.min()}, {idx.max()}]")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    return images[idx].copy()


def natural_image_paths(split: str = "train") -> dict[str, Path]:
    """Files of the natural-image training (or held-out ``"eval"``) photographs.

    Examples
    --------
    >>> sorted(natural_image_paths("eval"))  # doctest: +SKIP
    ['astronaut', 'coffee']
    """
    import importlib.util

    table = {"train": NATURAL_TRAIN, "eval": NATURAL_EVAL}.get(split)
    if table is None:
        raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
    out = {}
    for name, (module, rel) in table.items():
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(
                f"natural image {name!r} needs the package {module!r} (pip install "
                "scikit-image scikit-learn matplotlib)"
            )
        path = Path(spec.origin).parent / rel
        if not path.is_file():
            raise FileNotFoundError(f"natural image {name!r} not bundled at {path}")
        out[name] = path
    return out


def load_natural_images(split: str = "train") -> dict[str, np.ndarray]:
    """The photographs of ``split`` as ``(H, W, 3)`` uint8 arrays (Pillow decoder).

    Examples
    --------
    >>> imgs = load_natural_images("eval")  # doctest: +SKIP
    >>> imgs["astronaut"].shape  # doctest: +SKIP
    (512, 512, 3)
    """
    from PIL import Image

    return {
        name: np.asarray(Image.open(path).convert("RGB"))
        for name, path in natural_image_paths(split).items()
    }


def _to_unit(x_uint8: np.ndarray) -> torch.Tensor:
    # uint8 [0, 255] -> float32 [-1, 1]
    return torch.from_numpy(x_uint8.astype(np.float32) / 127.5 - 1.0)


class _MnistSampler:
    def __init__(self, data_dir, gen: torch.Generator):
        self.x = _to_unit(load_mnist(data_dir, MNIST_TRAIN_INDICES))[:, None]
        self.gen = gen

    def __call__(self, batch: int) -> torch.Tensor:
        idx = torch.randint(0, self.x.shape[0], (batch,), generator=self.gen)
        return self.x[idx]


class _CropSampler:
    def __init__(self, scales, size: int, gen: torch.Generator):
        from PIL import Image

        self.size, self.gen, self.pyramid = size, gen, []
        for img in load_natural_images("train").values():
            pil = Image.fromarray(img)
            for s in scales:
                w, h = round(pil.width * s), round(pil.height * s)
                if min(w, h) < size:
                    continue
                arr = np.asarray(pil.resize((w, h), Image.LANCZOS) if s != 1 else pil)
                self.pyramid.append(_to_unit(arr).permute(2, 0, 1).contiguous())

    def __call__(self, batch: int) -> torch.Tensor:
        s, g, out = self.size, self.gen, []
        which = torch.randint(0, len(self.pyramid), (batch,), generator=g).tolist()
        for k in which:
            img = self.pyramid[k]
            i = int(torch.randint(0, img.shape[1] - s + 1, (1,), generator=g))
            j = int(torch.randint(0, img.shape[2] - s + 1, (1,), generator=g))
            crop = img[:, i : i + s, j : j + s]
            if bool(torch.rand((), generator=g) < 0.5):
                crop = crop.flip(-1)
            out.append(crop)
        return torch.stack(out)


# ----------------------------------------------------------------------------- training
def _utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _parse_deadline(text: str | None) -> float | None:
    if text is None:
        return None
    when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp()


@torch.no_grad()
def _ema_update(ema: nn.Module, net: nn.Module, decay: float) -> None:
    for pe, p in zip(ema.parameters(), net.parameters(), strict=True):
        pe.lerp_(p, 1.0 - decay)


def _metadata(name: str, recipe: dict, state: dict) -> dict:
    return {
        "name": name,
        "architecture": "invdiff_models.unet.UNet",
        "config": recipe["config"],
        "parameters": state.get("parameters"),
        "process": dict(_PROCESS),
        "prediction": "eps",
        "time_input": "network input for DDPM step k in 1..T is k-1 (0..T-1)",
        "data_range": [-1.0, 1.0],
        "channels": recipe["config"]["in_channels"],
        "image_size": 28 if recipe["data"] == "mnist" else None,
        "size_multiple": 2 ** (len(recipe["config"]["channel_mults"]) - 1),
        "weights": "EMA, float16",
        "recipe": {k: v for k, v in recipe.items() if k != "config"},
        "data": (
            {"source": "MNIST t10k (official test split)", "indices": "0-8999",
             "heldout_indices": "9000-9999"}
            if recipe["data"] == "mnist"
            else {"train_images": {k: f"{m}/{p}" for k, (m, p) in NATURAL_TRAIN.items()},
                  "heldout_images": {k: f"{m}/{p}" for k, (m, p) in NATURAL_EVAL.items()}}
        ),
        "training": {k: state[k] for k in (
            "steps_done", "steps_planned", "stopped_by", "wall_seconds", "started_utc",
            "finished_utc", "final_loss_ema", "threads", "torch", "python", "machine")
            if k in state},
    }


#: What ``ckpt.pt`` holds (tensors, dicts, lists, numbers and strings only).
CHECKPOINT_KEYS = ("recipe", "model", "ema", "opt", "state", "gen", "torch_rng")


def read_checkpoint(path) -> dict:
    """Read a training checkpoint (``ckpt.pt``) without executing code from it.

    The file goes through :func:`invdiff_models.checkpoints.read_file`, i.e.
    ``torch.load(weights_only=True)``: tensors, plain containers, numbers and strings load;
    any other pickled object (which could run code when unpickled) is refused. The only extra
    type allowed is ``torch.torch_version.TorchVersion`` (a ``str`` subclass that older
    checkpoints of this recipe stored as the torch version).

    Parameters
    ----------
    path : path-like
        ``OUT/ckpt.pt`` written by :func:`train`.

    Returns
    -------
    dict
        With the keys of :data:`CHECKPOINT_KEYS`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    invdiff_models.checkpoints.CheckpointError
        (a ``ValueError``) for a truncated, foreign or unsafe file, or one without the keys
        this recipe writes.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from invdiff_models.training import read_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
    >>> torch.save({"model": {}}, path)
    >>> try:
    ...     read_checkpoint(path)
    ... except ValueError as e:
    ...     print(str(e).split("; ")[-1])
    missing 'recipe', 'ema', 'opt', 'state', 'gen', 'torch_rng'
    """
    from torch.torch_version import TorchVersion

    from .checkpoints import CheckpointError, read_file

    with torch.serialization.safe_globals([TorchVersion]):
        ck = read_file(path)
    if not isinstance(ck, dict):
        raise CheckpointError(f"{os.fspath(path)!r} is not a training checkpoint of "
                              f"invdiff_models.training: it holds a {type(ck).__name__}, "
                              "not a dict")
    missing = [k for k in CHECKPOINT_KEYS if k not in ck]
    if missing:
        found = ", ".join(repr(k) for k in list(ck)[:8])
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a training checkpoint of invdiff_models.training: "
            f"it holds {found or 'nothing'}; missing {', '.join(repr(k) for k in missing)}")
    for key in ("recipe", "state", "model", "ema", "opt"):
        if not isinstance(ck[key], dict):
            raise CheckpointError(f"{os.fspath(path)!r}: '{key}' must be a dict; it is a "
                                  f"{type(ck[key]).__name__}")
    for key in ("model", "ema"):
        if not all(isinstance(v, torch.Tensor) for v in ck[key].values()):
            raise CheckpointError(f"{os.fspath(path)!r}: '{key}' must map names to tensors")
    if not isinstance(ck["recipe"].get("config"), dict) or "data" not in ck["recipe"]:
        raise CheckpointError(f"{os.fspath(path)!r}: 'recipe' lacks its 'config' or 'data'")
    return ck


def _resume(path: Path, name: str, net, ema, opt, gen, state: dict) -> None:
    """Load ``path`` into the modules, optimizer, generators and ``state`` (or refuse)."""
    from .checkpoints import CheckpointError

    ck = read_checkpoint(path)
    if ck["recipe"].get("config") != RECIPES[name]["config"]:
        raise CheckpointError(f"{os.fspath(path)!r} was written by a recipe with another "
                              f"network config than {name!r}; refusing to resume from it")
    try:
        net.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        state.update({k: ck["state"][k] for k in ("steps_done", "wall_seconds",
                                                  "started_utc", "final_loss_ema")})
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"cannot resume from {os.fspath(path)!r}: "
                              f"{type(e).__name__}: {str(e)[:300]}") from e


def export(name: str, out_dir, bundle_dir=None) -> Path:
    """Write the EMA weights of ``out_dir/ckpt.pt`` as fp16 safetensors + JSON sidecar.

    Files ``<name>.safetensors`` and ``<name>.json`` go to ``out_dir``, and are copied to
    ``bundle_dir`` when given.

    Examples
    --------
    >>> export("mnist", "/work/train_out/mnist")  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    ckpt = read_checkpoint(out_dir / "ckpt.pt")
    recipe = ckpt["recipe"]
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in ckpt["ema"].items()}
    meta = _metadata(name, recipe, ckpt["state"])
    weights, sidecar = out_dir / f"{name}.safetensors", out_dir / f"{name}.json"
    header = {"name": name, "config": json.dumps(recipe["config"])}
    save_file(tensors, str(weights), metadata=header)
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    os.chmod(weights, 0o644)  # safetensors writes 0600; package data must be world-readable
    if bundle_dir is not None:
        bundle_dir = Path(bundle_dir)
        bundle_dir.mkdir(parents=True, exist_ok=True)
        for f in (weights, sidecar):
            shutil.copy2(f, bundle_dir / f.name)
    return weights


def _save(out_dir: Path, name, recipe, net, ema, opt, state, gen) -> None:
    tmp = out_dir / "ckpt.pt.tmp"
    torch.save(
        {"recipe": recipe, "model": net.state_dict(), "ema": ema.state_dict(),
         "opt": opt.state_dict(), "state": state, "gen": gen.get_state(),
         "torch_rng": torch.get_rng_state()},
        tmp,
    )
    os.replace(tmp, out_dir / "ckpt.pt")  # atomic: a kill mid-save never corrupts ckpt.pt
    export(name, out_dir)


def train(name: str, out_dir, *, data_dir=None, steps=None, deadline=None, threads=1,
          resume=False, bundle_dir=None, log=print) -> dict:
    """Run recipe ``name``; checkpoint and export to ``out_dir`` (and ``bundle_dir`` at the end).

    Parameters
    ----------
    name : {"mnist", "natural"}
        Recipe from :data:`RECIPES`.
    out_dir : path-like
        Receives ``ckpt.pt``, ``<name>.safetensors``, ``<name>.json``.
    data_dir : path-like, optional
        MNIST folder (``mnist`` only); defaults to :func:`default_mnist_dir`.
    steps : int, optional
        Override the recipe's step count (smoke tests); recorded in the sidecar.
    deadline : float, optional
        POSIX time after which training stops, saves and exports (``stopped_by="deadline"``).
    threads : int
        ``torch.set_num_threads`` value (the recipe uses 1).
    resume : bool
        Continue from ``out_dir/ckpt.pt``.
    bundle_dir : path-like, optional
        Where the final export is copied (the package's ``bundled/``).
    log : callable
        Receives one progress line at a time.

    Returns
    -------
    dict
        The training state recorded in the sidecar.

    Examples
    --------
    >>> train("mnist", "/tmp/x", steps=2)  # doctest: +SKIP
    """
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(RECIPES)}, got {name!r}")
    torch.set_num_threads(int(threads))
    recipe = copy.deepcopy(RECIPES[name])
    if steps is not None:
        recipe["steps"] = int(steps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(recipe["seed"])
    gen = torch.Generator().manual_seed(recipe["seed"])
    net = UNet(**recipe["config"])
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=recipe["lr"])
    state = {"steps_done": 0, "steps_planned": recipe["steps"], "stopped_by": None,
             "wall_seconds": 0.0, "started_utc": _utcnow(), "final_loss_ema": None,
             "threads": int(threads), "parameters": count_parameters(net),
             "torch": str(torch.__version__), "python": platform.python_version(),
             "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}
    if resume and (out_dir / "ckpt.pt").is_file():
        # before the data are read: a foreign or broken checkpoint fails fast
        _resume(out_dir / "ckpt.pt", name, net, ema, opt, gen, state)
        log(f"resumed at step {state['steps_done']}")
    if recipe["data"] == "mnist":
        sample = _MnistSampler(data_dir or default_mnist_dir(), gen)
    else:
        sample = _CropSampler(recipe["scales"], recipe["image_size"], gen)

    stop = {"signal": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(signal=True))
    try:
        state = _loop(name, recipe, net, ema, opt, sample, gen, state, out_dir, deadline, stop,
                      log)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if bundle_dir is not None:
        export(name, out_dir, bundle_dir)
    log(f"{_utcnow()} finished {name}: {state['steps_done']} steps, stopped_by "
        f"{state['stopped_by']}, {state['wall_seconds']:.0f}s; exported to {out_dir}"
        + (f" and {bundle_dir}" if bundle_dir is not None else ""))
    return state


def _loop(name, recipe, net, ema, opt, sample, gen, state, out_dir, deadline, stop, log):
    # The optimisation loop; a SIGTERM or the deadline ends it with a save + export.
    T = _PROCESS["T"]
    ab = vp_linear_alphabar(T, _PROCESS["beta_start"], _PROCESS["beta_end"]).float()
    log(f"{_utcnow()} train {name}: {state['parameters']} params, recipe {json.dumps(recipe)}")
    t_start = time.time() - state["wall_seconds"]
    t_last, step_time = time.time(), None
    loss_ema = state["final_loss_ema"]
    while state["steps_done"] < recipe["steps"]:
        k = state["steps_done"]
        # Stop if the next step plus a save would overrun the deadline.
        margin = 3.0 * (step_time or 1.0) + 30.0
        if deadline is not None and time.time() + margin > deadline:
            state["stopped_by"] = "deadline"
            break
        if stop["signal"]:
            state["stopped_by"] = "SIGTERM"
            break
        lr = recipe["lr"] * min(1.0, (k + 1) / recipe["warmup_steps"])
        for group in opt.param_groups:
            group["lr"] = lr
        x0 = sample(recipe["batch_size"])
        kk = torch.randint(1, T + 1, (x0.shape[0],), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = ab[kk - 1].view(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = (net(x_t, (kk - 1).float()) - noise).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), recipe["grad_clip"])
        opt.step()
        # EMA warm-up (decay grows from 0.1 towards its final value) so early averages
        # are not dominated by the random initialisation.
        _ema_update(ema, net, min(recipe["ema_decay"], (1 + k) / (10 + k)))
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"non-finite loss at step {k}")
        loss_ema = loss.item() if loss_ema is None else 0.98 * loss_ema + 0.02 * loss.item()
        state["steps_done"] = k + 1
        now = time.time()
        step_time = now - t_last if step_time is None else 0.9 * step_time + 0.1 * (now - t_last)
        t_last = now
        state["wall_seconds"] = round(now - t_start, 1)
        state["final_loss_ema"] = loss_ema
        done = state["steps_done"]
        if done % recipe["log_every"] == 0 or done == 1:
            eta = (recipe["steps"] - done) * step_time
            log(f"{_utcnow()} step {done}/{recipe['steps']} loss {loss.item():.4f} "
                f"loss_ema {loss_ema:.4f} lr {lr:.2e} s/step {step_time:.3f} "
                f"elapsed {state['wall_seconds']:.0f}s eta {eta:.0f}s")
        if done % recipe["ckpt_every"] == 0:
            _save(out_dir, name, recipe, net, ema, opt, state, gen)
            log(f"{_utcnow()} checkpoint + export at step {done}")
    if state["stopped_by"] is None:
        state["stopped_by"] = "steps"
    state["finished_utc"] = _utcnow()
    state["wall_seconds"] = round(time.time() - t_start, 1)
    _save(out_dir, name, recipe, net, ema, opt, state, gen)
    return state


# ----------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="invdiff",
        description="Train (or export) a bundled diffusion prior with its fixed recipe.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="run a recipe (progress to stdout and --log)")
    t.add_argument("name", choices=sorted(RECIPES))
    t.add_argument("--data-dir", default=None, help="MNIST folder (default: $INVDIFF_MNIST_DIR "
                   "or <repo>/../shared/data/mnist)")
    t.add_argument("--out-dir", default=None,
                   help="checkpoints + exports (default: ./train_out/NAME)")
    t.add_argument("--steps", type=int, default=None, help="override step count (smoke tests)")
    t.add_argument("--deadline", default=None,
                   help="ISO time (UTC if no zone) to stop, save and export, "
                   "e.g. 2026-11-29T09:10Z")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--bundle", action="store_true",
                   help="copy the final export into invdiff_models/bundled/")
    t.add_argument("--log", default=None, help="also append progress lines to this file")
    e = sub.add_parser("export", help="export EMA weights of OUT_DIR/ckpt.pt")
    e.add_argument("name", choices=sorted(RECIPES))
    e.add_argument("--out-dir", required=True)
    e.add_argument("--bundle-dir", default=str(BUNDLED_DIR))
    return p


def main(argv=None) -> int:
    """Entry point: ``train NAME ...`` or ``export NAME --out-dir O``.

    Examples
    --------
    >>> main(["train", "mnist", "--steps", "2", "--out-dir", "/tmp/m"])  # doctest: +SKIP
    0
    """
    args = _parser().parse_args(argv)
    if args.cmd == "export":
        print(export(args.name, args.out_dir, args.bundle_dir))
        return 0
    log_file = open(args.log, "a", buffering=1) if args.log else None  # noqa: SIM115

    def log(line: str) -> None:
        print(line, flush=True)
        if log_file is not None:
            log_file.write(line + "\n")

    try:
        train(args.name, args.out_dir or Path("train_out") / args.name,
              data_dir=args.data_dir, steps=args.steps, deadline=_parse_deadline(args.deadline),
              threads=args.threads, resume=args.resume,
              bundle_dir=BUNDLED_DIR if args.bundle else None, log=log)
    finally:
        if log_file is not None:
            log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
