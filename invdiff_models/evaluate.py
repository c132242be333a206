"""FID-free sanity numbers for the bundled priors, and their DDIM sample grids.

* **One-step denoising PSNR** on held-out data: for DDPM step ``k`` draw
  ``x_k = √ᾱ_k x0 + √(1-ᾱ_k) ε``, take Tweedie's estimate
  ``x̂0 = (x_k - √(1-ᾱ_k) ε_θ(x_k, k-1)) / √ᾱ_k`` clipped to [-1, 1], and report the PSNR on
  the [0, 1] scale (mean over images), next to the PSNR of the rescaled noisy input
  ``x_k / √ᾱ_k`` (the "do nothing" baseline). Held-out data: MNIST indices 9000.. (never
  trained on) and the natural-image evaluation photographs (astronaut, coffee) downscaled 4x.
* **Samples**: deterministic DDIM (Song et al. 2021, η = 0) with 100 uniformly spaced steps
  ``k ∈ {1, 11, ..., 991}``, x̂0 clipped to [-1, 1] at each step.

``python -m invdiff_models.evaluate NAME`` writes ``NAME_eval.json`` and ``NAME_samples.png``
next to the weights and rewrites the block between ``<!-- EVAL -->`` and ``<!-- /EVAL -->``
of the model card ``NAME.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .bundled import HERE as BUNDLED_DIR
from .bundled import load_network
from .training import (
    MNIST_HELDOUT_INDICES,
    default_mnist_dir,
    load_mnist,
    load_natural_images,
    vp_linear_alphabar,
)

__all__ = [
    "heldout_images",
    "denoising_psnr",
    "ddim_sample",
    "save_grid",
    "evaluate",
    "main",
]

#: DDPM steps at which the one-step denoising PSNR is reported.
EVAL_STEPS = (20, 50, 100, 200, 400, 700)
#: The fixed setting of the PSNR floor in tests/models/test_bundled.py: (k, images, seed).
TEST_SETTING = {"mnist": (200, 32, 0), "natural": (50, None, 0)}


def heldout_images(name: str, n: int = 256, data_dir=None) -> torch.Tensor:
    """Held-out evaluation images in [-1, 1], shape ``(B, C, H, W)``.

    ``mnist``: the first ``n`` held-out indices (9000, 9001, ...). ``natural``: astronaut and
    coffee downscaled 4x (Lanczos) and centre-cropped to 96x96 (a multiple of 8).

    Examples
    --------
    >>> heldout_images("mnist", n=4).shape  # doctest: +SKIP
    torch.Size([4, 1, 28, 28])
    """
    if name == "mnist":
        idx = list(MNIST_HELDOUT_INDICES)[:n]
        x = load_mnist(data_dir or default_mnist_dir(), idx)[:, None]
    elif name == "natural":
        from PIL import Image

        crops = []
        for img in load_natural_images("eval").values():
            pil = Image.fromarray(img)
            small = np.asarray(pil.resize((pil.width // 4, pil.height // 4), Image.LANCZOS))
            i, j = (small.shape[0] - 96) // 2, (small.shape[1] - 96) // 2
            crops.append(small[i : i + 96, j : j + 96].transpose(2, 0, 1))
        x = np.stack(crops)
    else:
        raise ValueError(f"name must be 'mnist' or 'natural', got {name!r}")
    return torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)


def _psnr01(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Per-image PSNR on the [0, 1] scale of two [-1, 1] images.
    mse = ((a - b) / 2).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse)


@torch.no_grad()
def denoising_psnr(net, x0: torch.Tensor, k: int, *, seed: int = 0, batch: int = 128) -> dict:
    """One-step Tweedie denoising PSNR at DDPM step ``k`` (linear VP schedule, T = 1000).

    Parameters
    ----------
    net : callable
        ε-network called as ``net(x_k, k - 1)``.
    x0 : torch.Tensor
        Clean images in [-1, 1], ``(B, C, H, W)``.
    k : int
        DDPM step in 1..1000.
    seed : int
        Seed of the noise draw.
    batch : int
        Images per forward pass.

    Returns
    -------
    dict
        ``k``, ``sigma01`` (noise std of ``x_k/√ᾱ_k`` on the [0, 1] scale), ``psnr_denoised``
        and ``psnr_noisy`` (means over images, dB).

    Notes
    -----
    Tweedie: E[x0 | x_k] = (x_k - √(1-ᾱ_k) E[ε | x_k]) / √ᾱ_k (Efron 2011; Ho et al. 2020).

    Examples
    --------
    >>> zero = lambda x, t: torch.zeros_like(x)
    >>> r = denoising_psnr(zero, torch.zeros(2, 1, 8, 8), 100)
    >>> r["psnr_denoised"] == r["psnr_noisy"] or r["psnr_denoised"] > r["psnr_noisy"]
    True
    """
    if not 1 <= int(k) <= 1000:
        raise ValueError(f"k must be a DDPM step in 1..1000, got {k}")
    ab = float(vp_linear_alphabar()[int(k) - 1])
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=gen)
    x_k = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
    eps = torch.cat([net(c, float(k - 1)) for c in x_k.split(batch)])
    x0_hat = ((x_k - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
    noisy = x_k / math.sqrt(ab)
    return {
        "k": int(k),
        "sigma01": math.sqrt((1 - ab) / ab) / 2,
        "psnr_denoised": float(_psnr01(x0_hat, x0).mean()),
        "psnr_noisy": float(_psnr01(noisy.clamp(-1, 1), x0).mean()),
    }


@torch.no_grad()
def ddim_sample(net, shape, *, steps: int = 100, seed: int = 0) -> torch.Tensor:
    """Deterministic DDIM samples (η = 0) in [-1, 1] from an ε-network.

    Parameters
    ----------
    net : callable
        ε-network called as ``net(x, k - 1)``.
    shape : tuple
        ``(B, C, H, W)``.
    steps : int
        Number of DDIM steps; uses ``k = 1 + i * (1000 // steps)``.
    seed : int
        Seed of the initial noise.

    Notes
    -----
    x_{prev} = √ᾱ_prev x̂0 + √(1-ᾱ_prev) ε_θ (Song, Meng & Ermon 2021, Eq. 12 with σ = 0);
    ᾱ_prev = 1 after the last step.

    Examples
    --------
    >>> zero = lambda x, t: torch.zeros_like(x)
    >>> ddim_sample(zero, (1, 1, 4, 4), steps=5).abs().max() <= 1
    tensor(True)
    """
    ab = vp_linear_alphabar()
    ks = list(range(1, 1001, 1000 // steps))[:steps]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    for i in reversed(range(len(ks))):
        a = float(ab[ks[i] - 1])
        a_prev = float(ab[ks[i - 1] - 1]) if i > 0 else 1.0
        eps = net(x, float(ks[i] - 1))
        x0 = ((x - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)
        # Re-derive eps from the clipped x0 so the update stays on the DDIM trajectory.
        eps = (x - math.sqrt(a) * x0) / math.sqrt(1 - a)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    return x.clamp(-1, 1)


def save_grid(x: torch.Tensor, path, *, nrow: int = 8, pad: int = 2, scale: int = 1) -> Path:
    """Write images in [-1, 1] ``(B, C, H, W)`` as one PNG grid.

    Examples
    --------
    >>> save_grid(torch.zeros(4, 1, 8, 8), "/tmp/grid.png", nrow=2).name
    'grid.png'
    """
    from PIL import Image

    b, c, h, w = x.shape
    ncol = min(nrow, b)
    nrows = -(-b // ncol)
    canvas = np.full((nrows * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
    imgs = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for n, img in enumerate(imgs):
        r, q = divmod(n, ncol)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h,
               pad + q * (w + pad) : pad + q * (w + pad) + w] = img
    pil = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    path = Path(path)
    pil.save(path)
    return path


def evaluate(name: str, *, folder=None, out_dir=None, n: int = 256, data_dir=None,
             samples: int = 64, seed: int = 0, card: bool = True) -> dict:
    """Denoising PSNR table + DDIM-100 sample grid for one prior; optionally update its card.

    Examples
    --------
    >>> evaluate("mnist", n=8, samples=4)  # doctest: +SKIP
    """
    torch.manual_seed(seed)
    net, meta = load_network(name, folder=folder)
    out_dir = Path(out_dir or folder or BUNDLED_DIR)
    x0 = heldout_images(name, n=n, data_dir=data_dir)
    t0 = time.time()
    rows = [denoising_psnr(net, x0, k, seed=seed + k) for k in EVAL_STEPS]
    k_t, n_t, seed_t = TEST_SETTING[name]
    x_t = heldout_images(name, n=n_t, data_dir=data_dir) if n_t else x0
    test_row = denoising_psnr(net, x_t, k_t, seed=seed_t)
    test_row["n_images"] = len(x_t)
    if name == "mnist":
        shape, nrow, scale = (samples, 1, 28, 28), 8, 2
    else:
        shape, nrow, scale = (samples, 3, 32, 32), 8, 2
    grid = save_grid(ddim_sample(net, shape, steps=100, seed=seed), out_dir / f"{name}_samples.png",
                     nrow=nrow, scale=scale)
    extra = None
    if name == "natural":
        # Fully convolutional: also sample at 64x64, twice the training crop size.
        extra = save_grid(ddim_sample(net, (8, 3, 64, 64), steps=100, seed=seed + 1),
                          out_dir / f"{name}_samples64.png", nrow=4, scale=2)
    result = {
        "name": name,
        "heldout": _heldout_text(name, len(x0)),
        "n_images": len(x0),
        "seed": seed,
        "denoising": rows,
        "test_floor_setting": test_row,
        "samples_png": grid.name,
        "samples64_png": extra.name if extra else None,
        "sampler": "DDIM eta=0, 100 steps, k = 1, 11, ..., 991, x0 clipped to [-1, 1]",
        "training": meta.get("training"),
        "eval_seconds": round(time.time() - t0, 1),
    }
    (out_dir / f"{name}_eval.json").write_text(json.dumps(result, indent=2) + "\n")
    if card:
        _update_card(out_dir / f"{name}.md", result)
    return result


def _heldout_text(name: str, n: int) -> str:
    if name == "mnist":
        first = MNIST_HELDOUT_INDICES.start
        return f"MNIST indices {first}..{first + n - 1}"
    return "astronaut, coffee: 4x Lanczos downscale, centre 96x96"


def _markdown(result: dict) -> str:
    tr = result.get("training") or {}
    stopped = tr.get("stopped_by") or "nothing yet (a checkpoint of a run in progress)"
    lines = [
        f"Measured by `python -m invdiff_models.evaluate {result['name']}` "
        f"(seed {result['seed']}) on {result['n_images']} held-out images ({result['heldout']}).",
        "",
        f"Training: {tr.get('steps_done')} of {tr.get('steps_planned')} steps, stopped by "
        f"`{stopped}`, {tr.get('wall_seconds')} s wall time on {tr.get('threads')} "
        f"CPU thread(s) ({tr.get('started_utc')} to {tr.get('finished_utc')}), "
        f"final smoothed loss {tr.get('final_loss_ema') or float('nan'):.4f}.",
        "",
        "| DDPM step k | noise σ ([0,1] scale) | PSNR noisy input (dB) "
        "| PSNR one-step Tweedie x̂0 (dB) |",
        "|---:|---:|---:|---:|",
    ]
    for r in result["denoising"]:
        lines.append(f"| {r['k']} | {r['sigma01']:.3f} | {r['psnr_noisy']:.2f} | "
                     f"{r['psnr_denoised']:.2f} |")
    lines += ["", f"Samples ({result['sampler']}):", "", f"![samples]({result['samples_png']})"]
    if result.get("samples64_png"):
        lines += ["", "64x64 samples (twice the training crop size):", "",
                  f"![samples 64x64]({result['samples64_png']})"]
    return "\n".join(lines)


def _update_card(path: Path, result: dict) -> None:
    begin, end = "<!-- EVAL -->", "<!-- /EVAL -->"
    text = path.read_text() if path.is_file() else f"# {result['name']}\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        text += f"\n## Sanity numbers\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{_markdown(result)}\n{end}{tail}")


def main(argv=None) -> int:
    """``python -m invdiff_models.evaluate NAME [--folder F] [--n N] [--no-card]``.

    Examples
    --------
    >>> main(["mnist", "--n", "8", "--samples", "4"])  # doctest: +SKIP
    0
    """
    p = argparse.ArgumentParser(prog="invdiff-evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("name", choices=["mnist", "natural"])
    p.add_argument("--folder", default=None, help="weights folder (default: the bundled one)")
    p.add_argument("--out-dir", default=None, help="where JSON/PNG/card go (default: --folder)")
    p.add_argument("--data-dir", default=None, help="MNIST folder")
    p.add_argument("--n", type=int, default=256, help="held-out MNIST images")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-card", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    res = evaluate(a.name, folder=a.folder, out_dir=a.out_dir, n=a.n, data_dir=a.data_dir,
                   samples=a.samples, seed=a.seed, card=not a.no_card)
    print(json.dumps(res["denoising"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
