"""Image restoration on held-out images: DMPS against DPS, ΠGDM, the flow methods and Lasso/TV.

Claim under test (Meng & Kabashima, ACML 2024): DMPS matches or beats DPS and ΠGDM (DDPM
family) and DMPS-flow matches or beats DPS-flow and OT-ODE (flow family) on SR×4,
deblurring, inpainting, colorization and denoising, at a fraction of the cost.

Protocol
--------
* Data: MNIST held-out digits (validation 9000–9099, test from 9100; 28×28, ``[-1, 1]``)
  and, when ``invdiff/data/demo_images.npz`` has them, 32×32 crops of the two held-out
  photographs (validation: the two 32×32 demo crops; test: the 8 quarter tiles of the two
  64×64 demo crops). See :mod:`benchmarks._images`.
* Prior: the bundled ε-prediction DDPM of each dataset (``--weights-dir`` to use another
  export). The flow methods use the *same* network re-expressed on the rectified-flow path
  (:class:`invdiff.processes.reexpress`): same prior, different integrator.
* Tasks (``[-1, 1]`` scale, σ_y = 0.05 except denoising σ_y = 0.5 as in the paper): SR×4
  block average and bicubic; Gaussian deblur (σ = ``--blur-sigma``, 2⌈5σ⌉+1 taps) and
  uniform deblur (``--blur-size``²); random inpainting (50 % of pixels observed, one mask
  for all images); colorization (natural only); denoising. The paper's blur kernels
  (σ = 3, 9×9) are defined for 256×256 faces; on 28×28 digits they would span a third of
  the image, so the defaults here are σ = 1.5 and 5×5 (flags to change them).
* Same measurement for every method: one noise draw per task and image; every diffusion
  method starts from the same N(0, I) draw per batch and uses the same random stream,
  except the two whose recipes start from the measurement (ΠGDM: the noised A⁺y of its
  code; OT-ODE: the noised Tikhonov estimate), which draw that noise from the stream.
* Methods at their recipes' defaults, each naming its source in :mod:`invdiff.methods`;
  nothing tuned on test data: DMPS (λ = 1.75, DDPM ancestral, ``--steps``), DPS (ζ = 0.3;
  0.5 for inpainting, the DPS configs; no DPS config exists for colorization or
  denoising, 0.3 is used), ΠGDM (``--pigdm-steps`` = 100 DDIM steps, guidance weighted
  as NVlabs' code, η as the recipe), DMPS-flow (λ = 2), DPS-flow (DPS's own step inside
  the flow, ζ = 3 chosen on the *validation* images by ``benchmarks/validation_choices``),
  OT-ODE (t0 = 0.8), all three flows with ``--flow-steps`` = 50 Euler steps. Lasso-DCT
  (FISTA) and TV (Chambolle–Pock) choose λ on the validation split
  (:func:`invdiff.baselines.select_lambda`, PSNR), never on the test images.
* Metrics: PSNR and SSIM per image on ``[0, 1]`` after clipping, mean ± std (ddof 1) over
  the test images; LPIPS only if the ``lpips`` package and its AlexNet weights are already
  on disk (nothing is downloaded). Data consistency ‖y − A x̂‖/(σ_y √M) of the clipped
  reconstruction (:func:`consistency`; ≈ 1 fits y to the noise level).
  Also NFE and wall seconds per image (batch ``--batch``).
* Adding a method: one entry in ``DIFFUSION`` (a recipe from :mod:`invdiff.methods` and
  the keywords the benchmark sets), or in ``BASELINES`` with a solver in
  :func:`run_baseline`.

Run ``python -m benchmarks.restoration [--quick] [--weights-dir DIR]``; writes
``benchmarks/results/[quick/]restoration[-quick].md``/``.json`` and ``.png`` (metrics) and
``-examples.png`` (the first test image of each task).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import time

import numpy as np

import invdiff as ivd
from invdiff.methods.daps import TAU_REFERENCE

from . import _images
from ._common import add_run_arguments, results_dir, write_results

INPAINT_OBSERVED = 0.5


@dataclasses.dataclass
class Task:
    """One restoration problem: operator, noise level and DPS's step size for it."""

    name: str
    op: object
    sigma_y: float
    zeta: float


def make_tasks(in_shape, like, args) -> list[Task]:
    """The restoration tasks for images of shape ``in_shape`` (colorization needs RGB)."""
    ops = ivd.operators
    C = in_shape[0]
    mask_rng = ivd.random.Generator(args.seed + 17)
    tasks = [
        Task("SR x4 (block)", ops.SuperResolution(4, in_shape, "block", like=like), 0.05, 0.3),
        Task("SR x4 (bicubic)", ops.SuperResolution(4, in_shape, "bicubic", like=like), 0.05,
             0.3),
        Task(f"deblur (Gaussian, sigma={args.blur_sigma:g})",
             ops.SeparableBlur.gaussian(in_shape, sigma=args.blur_sigma, like=like), 0.05, 0.3),
        Task(f"deblur (uniform {args.blur_size}x{args.blur_size})",
             ops.SeparableBlur.uniform(in_shape, size=args.blur_size, like=like), 0.05, 0.3),
        Task(f"inpainting ({int(100 * INPAINT_OBSERVED)}% observed)",
             ops.Inpainting.random(in_shape, INPAINT_OBSERVED, rng=mask_rng, like=like), 0.05,
             0.5),
    ]
    if C == 3:
        tasks.append(Task("colorization", ops.Colorization(in_shape, like=like), 0.05, 0.3))
    tasks.append(Task("denoising", ops.Identity(in_shape, like=like), 0.5, 0.3))
    return tasks


# -- the methods ---------------------------------------------------------------------------
def _recipe(fn, *, own_start=False, **fixed):
    """A row's runner ``(model, task, y, x_start, rng, args) -> (x_hat, info)`` for recipe
    ``fn`` at its defaults; ``fixed`` maps keyword -> ``(task, args) -> value``.

    ``x_start`` is the N(0, I) draw every method shares; a method with its own start
    (``own_start``: ΠGDM's noised A⁺y, OT-ODE's noised Tikhonov estimate) draws its noise
    from the shared random stream instead.
    """
    takes_sigma = "sigma_y" in inspect.signature(fn).parameters

    def run(model, task, y, x_start, rng, args):
        kw = {k: get(task, args) for k, get in fixed.items()}
        if not own_start:
            kw["x_init"] = x_start
        pos = (task.op, y, task.sigma_y) if takes_sigma else (task.op, y)
        return fn(model, *pos, rng=rng, return_info=True, **kw)

    return run


def _steps(task, args):
    return args.steps


def _pigdm_steps(task, args):
    return args.pigdm_steps


def _flow_steps(task, args):
    return args.flow_steps


#: the SVD methods' steps (full, quick): the papers' 20 (DDRM), 100 (DDNM+) and 100 DDIM
#: steps (MCGdiff, with --mcgdiff-particles particles per image)
SVD_STEPS = {"DDRM": (20, 5), "DDNM": (100, 10), "MCGdiff": (100, 10)}


def _svd_steps(name):
    return lambda task, args: SVD_STEPS[name][1 if args.quick else 0]


#: the decoupled methods' steps (full, quick): DiffPIR's 100 NFE, DAPS's 200 annealing
#: levels (x 5 ODE steps = 1000 NFE) and RED-diff's 1000 Adam steps
DECOUPLED_STEPS = {"DiffPIR": (100, 20), "DAPS": (200, 10), "RED-diff": (1000, 20)}

#: Per task (first word of its name) the settings of the decoupled methods: the authors'
#: values for the tasks their papers report, else (*) chosen by PSNR on validation images
#: only (MNIST 9000-9007 and the two natural validation crops; the numbers are in each
#: recipe's docstring and in benchmarks/README.md).
DECOUPLED_SETTINGS = {
    # lam in consistent units = the code's lambda / 4 (see invdiff.methods.diffpir)
    "DiffPIR": {
        "SR": {"lam": 0.5, "zeta": 0.25},  # configs/sisr.yaml zeta; lam (*) from its sweep 2..12
        "deblur": {"lam": 1.75, "zeta": 0.3},  # main_ddpir_deblur.py: lambda 7, zeta 0.3
        "inpainting": {"lam": 0.25, "zeta": 1.0},  # configs/inpaint.yaml: lambda 1, zeta 1
        "colorization": {"lam": 0.5, "zeta": 1.0},  # (*)
        "denoising": {"lam": 0.5, "zeta": 1.0},  # (*)
    },
    # the authors' likelihood weight tau = 0.01/sqrt(2) (the recipe's default)
    "DAPS": {"SR": {"tau": TAU_REFERENCE}, "deblur": {"tau": TAU_REFERENCE},
             "inpainting": {"tau": TAU_REFERENCE},
             "colorization": {"tau": TAU_REFERENCE},  # (*) the default won
             "denoising": {"tau": 0.05}},  # (*)
    # _configs/algo/reddiff.yaml: lam 0.25 (lr 0.1)
    "RED-diff": {"SR": {"lam": 0.25}, "deblur": {"lam": 0.25}, "inpainting": {"lam": 0.25},
                 "colorization": {"lam": 4.0},  # (*)
                 "denoising": {"lam": 16.0}},  # (*)
}


def _decoupled(name, **fixed):
    """Keyword -> ``(task, args) -> value`` for a decoupled method: its steps and its
    per-task settings."""
    steps_key = "annealing_steps" if name == "DAPS" else "steps"
    out = {steps_key: lambda task, args: DECOUPLED_STEPS[name][1 if args.quick else 0]}
    for key in DECOUPLED_SETTINGS[name]["SR"]:
        out[key] = lambda task, args, key=key: DECOUPLED_SETTINGS[name][task.name.split()[0]][key]
    return {**out, **fixed}


def _daps_from_the_shared_start(model, op, y, sigma_y, *, x_init, **kw):
    """DAPS from the shared N(0, I) draw scaled to its first level, sigma_max = 100."""
    return ivd.methods.daps(model, op, y, sigma_y, x_init=100.0 * x_init, **kw)


# name -> (family, runner). One line per method: a new method is one more entry.
DIFFUSION = {
    "DMPS": ("DDPM", _recipe(ivd.methods.dmps, steps=_steps)),
    "DPS": ("DDPM", _recipe(ivd.methods.dps, steps=_steps, zeta=lambda task, a: task.zeta)),
    "PiGDM": ("DDPM", _recipe(ivd.methods.pigdm, own_start=True, steps=_pigdm_steps,
                              clip_x0=lambda task, a: (-1.0, 1.0) if a.pigdm_clip else None)),
    "DMPS-flow": ("flow", _recipe(ivd.methods.dmps_flow, steps=_flow_steps)),
    "DPS-flow": ("flow", _recipe(ivd.methods.dps_flow, steps=_flow_steps)),
    "OT-ODE": ("flow", _recipe(ivd.methods.ot_ode, own_start=True, steps=_flow_steps)),
    "DDRM": ("SVD", _recipe(ivd.methods.ddrm, steps=_svd_steps("DDRM"))),
    "DDNM": ("SVD", _recipe(ivd.methods.ddnm, steps=_svd_steps("DDNM"))),
    "MCGdiff": ("SVD", _recipe(ivd.methods.mcgdiff, own_start=True, steps=_svd_steps("MCGdiff"),
                               n_particles=lambda task, a: a.mcgdiff_particles)),
    "DiffPIR": ("decoupled", _recipe(ivd.methods.diffpir, **_decoupled("DiffPIR"))),
    "DAPS": ("decoupled", _recipe(_daps_from_the_shared_start, **_decoupled("DAPS"))),
    "RED-diff": ("decoupled", _recipe(ivd.methods.red_diff, own_start=True,  # starts at A^+ y
                                      **_decoupled("RED-diff"))),
}
DDPM_METHODS = tuple(k for k, (family, _) in DIFFUSION.items() if family == "DDPM")
FLOW_METHODS = tuple(k for k, (family, _) in DIFFUSION.items() if family == "flow")
BASELINES = ("Lasso-DCT", "TV")
METHODS = tuple(DIFFUSION) + BASELINES
#: every method but MCGdiff (one network evaluation per particle: select it explicitly)
DEFAULT_METHODS = tuple(m for m in METHODS if m != "MCGdiff")


def run_diffusion(method, model, task, y, x_start, args):
    """All test images of ``method`` in batches of ``args.batch``: ``(x_hat, info, seconds)``
    (``info`` of the first batch: NFE and the recipe's settings)."""
    import torch

    run = DIFFUSION[method][1]
    outs, first, seconds = [], None, 0.0
    for k, b0 in enumerate(range(0, y.shape[0], args.batch)):
        sl = slice(b0, b0 + args.batch)
        rng = ivd.random.Generator(args.seed * 1_000_003 + 7919 * k)  # same stream per method
        x, info = run(model, task, y[sl], x_start[sl], rng, args)
        outs.append(x)
        first = info if first is None else first
        seconds += info["seconds"]
    return torch.cat(outs), first, seconds


def run_baseline(method, task, x_val, y_val, y_test, args):
    """Lasso-DCT or TV with λ chosen on validation: ``(x_hat, lam, seconds)``."""
    import torch

    op = task.op
    if method == "Lasso-DCT":
        def solve(y, lam):
            return torch.clamp(ivd.baselines.lasso(op, y, lam, basis="dct",
                                                   iters=args.lasso_iters), -1, 1)
    else:
        def solve(y, lam):
            return torch.clamp(ivd.baselines.tv(op, y, lam, iters=args.tv_iters), -1, 1)
    return _images.tune_and_solve(solve, args.lambdas, x_val, y_val, y_test, data_range=2.0)


# -- one dataset ----------------------------------------------------------------------------
def run_dataset(dataset, model, x_val, x_test, args, lpips_on):
    """Every task and method on one dataset: (rows, examples)."""
    in_shape = tuple(x_test.shape[1:])
    rows, examples = [], {}
    for ti, task in enumerate(make_tasks(in_shape, x_test, args)):
        # one noise draw per task and image, shared by every method
        noise_rng = ivd.random.Generator(args.seed + 101 * (ti + 1))
        y_test = task.op.apply(x_test)
        y_test = y_test + task.sigma_y * noise_rng.normal(tuple(y_test.shape), like=x_test)
        y_val = task.op.apply(x_val)
        y_val = y_val + task.sigma_y * noise_rng.normal(tuple(y_val.shape), like=x_val)
        x_start = ivd.random.Generator(args.seed + 3).normal(tuple(x_test.shape), like=x_test)
        examples[task.name] = {"truth": x_test[0]}
        for method in args.methods:
            lam, info = None, {}
            if method in BASELINES:
                x_hat, lam, seconds = run_baseline(method, task, x_val, y_val, y_test, args)
            else:
                x_hat, info, seconds = run_diffusion(method, model, task, y_test, x_start, args)
            rows.append(_row(dataset, task, method, x_hat, x_test, y_test, info, seconds, lam,
                             lpips_on))
            examples[task.name][method] = x_hat[0]
            r = rows[-1]
            print(f"  {dataset:7s} {task.name:28s} {method:10s} PSNR {r['psnr_mean']:6.2f} "
                  f"SSIM {r['ssim_mean']:.3f} fit {r['consistency_mean']:5.2f} "
                  f"{r['seconds_per_image']:.2f} s/img", flush=True)
    return rows, examples


def consistency(op, y, x_hat, sigma_y, low=-1.0, high=1.0):
    r"""Per-image data fit :math:`\|y - A\hat x\| / (\sigma_y\sqrt M)` of the clipped
    reconstruction (NaN where it diverged).

    About 1 when :math:`\hat x` explains :math:`y` to the noise level (the truth itself scores
    :math:`\|n\|/(\sigma_y\sqrt M) \approx 1`), well above 1 when it underfits, below 1
    when it fits the noise.
    """
    import torch

    x = torch.clamp(torch.nan_to_num(x_hat, nan=low), low, high)
    r = (y - op.apply(x)).reshape(len(y), -1)
    ratio = (torch.linalg.vector_norm(r, dim=1) / (sigma_y * math.sqrt(r.shape[1])))
    finite = torch.isfinite(x_hat.reshape(len(x_hat), -1)).all(dim=1)
    return torch.where(finite, ratio, torch.nan).double().cpu().numpy()


def _row(dataset, task, method, x_hat, x_true, y, info, seconds, lam, lpips_on):
    s = _images.image_scores(x_hat, x_true, -1.0, 1.0)
    fit = consistency(task.op, y, x_hat, task.sigma_y)
    n = int(x_true.shape[0])
    psnr_m, psnr_s = _images.mean_std(s["psnr"])
    ssim_m, ssim_s = _images.mean_std(s["ssim"])
    fit_m, fit_s = _images.mean_std(fit)
    family = DIFFUSION[method][0] if method in DIFFUSION else "sparsity"
    settings = {k: v for k, v in info.items() if k not in ("nfe", "seconds", "method")}
    row = {"dataset": dataset, "task": task.name, "method": method, "family": family,
           "sigma_y": task.sigma_y, "zeta": settings.get("zeta"), "settings": settings,
           "lambda": lam, "psnr_mean": psnr_m, "psnr_std": psnr_s, "ssim_mean": ssim_m,
           "ssim_std": ssim_s, "consistency_mean": fit_m, "consistency_std": fit_s,
           "n": n, "n_finite": int(s["finite"].sum()), "nfe": info.get("nfe"),
           "seconds_per_image": seconds / n, "psnr": s["psnr"].tolist(),
           "ssim": s["ssim"].tolist(), "consistency": fit.tolist()}
    if lpips_on:
        v = _images.lpips_scores(x_hat, x_true, -1.0, 1.0)
        row["lpips_mean"], row["lpips_std"] = _images.mean_std(v)
    return row


# -- output ---------------------------------------------------------------------------------
def table(rows, lpips_on):
    header = ["dataset", "task", "method", "PSNR (dB)", "SSIM"]
    header += ["LPIPS"] if lpips_on else []
    header += ["‖y−Ax̂‖/(σ√M)", "NFE", "s / image", "finite"]
    out = []
    for r in rows:
        name = r["method"] + (f" (λ={r['lambda']:.0e})" if r["lambda"] is not None else "")
        line = [r["dataset"], r["task"], name, _images.fmt(r["psnr_mean"], r["psnr_std"], 2),
                _images.fmt(r["ssim_mean"], r["ssim_std"], 3)]
        if lpips_on:
            line.append(_images.fmt(r["lpips_mean"], r["lpips_std"], 3))
        line.append(_images.fmt(r["consistency_mean"], r["consistency_std"], 2))
        line += [r["nfe"] if r["nfe"] is not None else "-", f"{r['seconds_per_image']:.3f}",
                 f"{r['n_finite']}/{r['n']}"]
        out.append(line)
    return header, out


def plot(rows, examples, stem, directory):
    """Grouped bars of PSNR and SSIM per task (one row per dataset) and an examples grid."""
    plt = _images.plt_module()
    if plt is None:
        return []
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    methods = tuple(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(len(datasets), 2, figsize=(15, 4.2 * len(datasets)), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for di, ds in enumerate(datasets):
        sub = [r for r in rows if r["dataset"] == ds]
        tasks = list(dict.fromkeys(r["task"] for r in sub))
        width = 0.8 / len(methods)
        for ci, (key, label) in enumerate((("psnr", "PSNR (dB)"), ("ssim", "SSIM"))):
            ax = axes[di, ci]
            for mi, method in enumerate(methods):
                vals = [next(r for r in sub if r["task"] == t and r["method"] == method)
                        for t in tasks]
                pos = np.arange(len(tasks)) + (mi - (len(methods) - 1) / 2) * width
                ax.bar(pos, [v[f"{key}_mean"] for v in vals], width,
                       yerr=[v[f"{key}_std"] for v in vals], color=colors[mi % 10],
                       label=method, capsize=1.5)
            ax.set_xticks(np.arange(len(tasks)))
            ax.set_xticklabels(tasks, rotation=20, ha="right", fontsize=8)
            ax.set_ylabel(label)
            ax.set_title(f"{ds}: {label}, mean ± std over {sub[0]['n']} test images")
    axes[0, 0].legend(fontsize=7, ncol=2)
    paths = [_images.save_figure(fig, directory / f"{stem}.png")]

    # examples: one grid per dataset side by side (rows = tasks, columns = truth + methods)
    fig, axes = plt.subplots(
        sum(len(examples[ds]) for ds in examples), len(methods) + 1,
        figsize=(1.25 * (len(methods) + 1), 1.3 * sum(len(examples[ds]) for ds in examples)),
        squeeze=False)
    i = 0
    for ds, per_task in examples.items():
        for task, images in per_task.items():
            for j, key in enumerate(("truth",) + methods):
                img = images[key].detach().cpu().float().numpy()
                img = np.clip((np.nan_to_num(img, nan=-1.0) + 1) / 2, 0, 1).transpose(1, 2, 0)
                ax = axes[i, j]
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0,
                          vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(key, fontsize=7)
                if j == 0:
                    ax.set_ylabel(f"{ds}\n{task}", fontsize=5)
            i += 1
    paths.append(_images.save_figure(fig, directory / f"{stem}-examples.png"))
    return paths


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="8 test images, 20 DDPM / 10 flow steps, short baselines (CI)")
    p.add_argument("--weights-dir", default=None,
                   help="folder with NAME.safetensors + NAME.json (or DIR/NAME/...); "
                        "default: the bundled priors")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default $INVDIFF_MNIST_DIR "
                   "or ../shared/data/mnist)")
    p.add_argument("--datasets", default="mnist,natural")
    p.add_argument("--n-test", type=int, default=None, help="MNIST test images (full: 100)")
    p.add_argument("--n-val", type=int, default=None,
                   help="MNIST validation images for λ (full: 100)")
    p.add_argument("--steps", type=int, default=None, help="DDPM steps of DMPS and DPS "
                   "(full: 1000, as the papers; quick: 20)")
    p.add_argument("--pigdm-steps", type=int, default=None, help="ΠGDM DDIM steps (full: 100)")
    p.add_argument("--flow-steps", type=int, default=None, help="flow Euler steps (full: 50)")
    p.add_argument("--batch", type=int, default=None, help="images per sampler call (full: 25)")
    p.add_argument("--methods", default=None,
                   help="comma-separated subset of " + ", ".join(METHODS)
                   + " (default: all but MCGdiff; --quick: all)")
    p.add_argument("--mcgdiff-particles", type=int, default=None,
                   help="MCGdiff particles per image (full: 16; quick: 4)")
    p.add_argument("--pigdm-clip", action="store_true",
                   help="clip ΠGDM's x̂0 to [-1, 1] (its paper and code do not; DMPS does)")
    p.add_argument("--blur-sigma", type=float, default=1.5)
    p.add_argument("--blur-size", type=int, default=5)
    add_run_arguments(p, "restoration")
    args = p.parse_args(argv)
    if args.methods is None:
        args.methods = ",".join(METHODS if args.quick else DEFAULT_METHODS)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = set(args.methods) - set(METHODS)
    if unknown:
        p.error(f"--methods: unknown {sorted(unknown)}; expected a subset of {METHODS}")
    full = {"n_test": 100, "n_val": 100, "steps": 1000, "pigdm_steps": 100, "flow_steps": 50,
            "batch": 25, "mcgdiff_particles": 16, "lasso_iters": 500, "tv_iters": 300,
            "lambdas": [float(v) for v in np.logspace(-4, 1, 11)]}
    quick = {"n_test": 8, "n_val": 8, "steps": 20, "pigdm_steps": 20, "flow_steps": 10,
             "batch": 8, "mcgdiff_particles": 4, "lasso_iters": 100, "tv_iters": 100,
             "lambdas": [1e-3, 1e-2, 1e-1, 1.0]}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def main(argv=None):
    args = parse(argv)
    torch = _images.setup_torch(args.threads)
    start = time.perf_counter()
    data_dir = args.data_dir or _images.default_mnist_dir()
    lpips_note = _images.lpips_status()
    lpips_on = lpips_note == "available"
    rows, examples, sources, skipped, partial = [], {}, {}, [], []
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        model, source = _images.load_prior(dataset, args.weights_dir, args.device)
        if model is None:
            skipped.append(f"{dataset}: {source}")
            continue
        if dataset == "mnist":
            if not _images.mnist_available(data_dir):
                skipped.append(f"mnist: {_images.mnist_missing(args.data_dir)}")
                continue
            x_val, x_test = _images.mnist_split(data_dir, args.n_val, args.n_test,
                                                dtype=torch.float32, device=args.device)
        else:
            split = _images.natural_split(dtype=torch.float32, device=args.device)
            if split is None:
                skipped.append("natural: invdiff/data/demo_images.npz lacks the held-out crops")
                continue
            x_val, x_test = split
        sources[dataset] = source
        if _images.is_partial(model):
            partial.append(dataset)
        print(f"{dataset}: prior {source}; {len(x_val)} validation, {len(x_test)} test images",
              flush=True)
        r, ex = run_dataset(dataset, model, x_val, x_test, args, lpips_on)
        rows += r
        examples[dataset] = ex
    if not rows:
        raise SystemExit("nothing to run: " + "; ".join(skipped))
    wall = time.perf_counter() - start
    stem = args.stem or "restoration" + ("-quick" if args.quick else "")
    header, tab = table(rows, lpips_on)
    settings = {"seed": args.seed, "steps (DMPS, DPS)": args.steps,
                "pigdm_steps": args.pigdm_steps, "flow_steps": args.flow_steps,
                "batch": args.batch, "mnist_val": f"9000-{9000 + args.n_val - 1}",
                "mnist_test": f"9100-{9100 + args.n_test - 1}",
                "natural": "val: astronaut_32, coffee_32; test: 8 tiles of the 64x64 crops",
                "lambda_grid": args.lambdas, "lasso_iters": args.lasso_iters,
                "tv_iters": args.tv_iters, "blur_sigma": args.blur_sigma,
                "blur_size": args.blur_size, "inpainting_observed": INPAINT_OBSERVED,
                "priors": sources, "skipped": skipped, "torch_threads": torch.get_num_threads(),
                "device": args.device, "lpips": lpips_note, "methods": list(args.methods),
                "pigdm_clip_x0": args.pigdm_clip,
                "svd_steps": {k: v[1 if args.quick else 0] for k, v in SVD_STEPS.items()},
                "mcgdiff_particles": args.mcgdiff_particles}
    notes = _notes(args, sources, skipped, lpips_note, partial, rows)
    directory = results_dir(args.results_dir, args.quick)
    directory.mkdir(parents=True, exist_ok=True)
    for path in plot(rows, examples, stem, directory):
        print(f"wrote {path}")
        notes += f"\n\n![{path.stem}]({path.name})"
    write_results(stem, header, tab, settings=settings, rows=rows, notes=notes,
                  wall_seconds=wall, directory=directory,
                  title=args.stem or "restoration" + (" (quick)" if args.quick else ""))
    bad = [f"{r['dataset']}/{r['task']}/{r['method']}" for r in rows
           if r["n_finite"] < r["n"] or not math.isfinite(r["psnr_mean"])]
    if args.quick and bad:
        raise SystemExit("quick check failed, non-finite results: " + ", ".join(bad))
    return rows


def _notes(args, sources, skipped, lpips_note, partial, rows):
    text = ("Mean ± std (ddof 1) over the test images of PSNR and SSIM on [0, 1] after "
            "clipping to the data range, and of the data consistency ‖y − A x̂‖/(σ_y √M) of "
            "the clipped reconstruction (≈ 1: explains y to the noise level). Diffusion "
            "methods run at their recipes' defaults (DMPS λ = 1.75, DPS ζ = 0.3 / 0.5 "
            "inpainting, ΠGDM with its code's weighting and start, DPS-flow ζ = 3 chosen on "
            f"validation images, OT-ODE t0 = 0.8 from a noised Tikhonov estimate; {args.steps} "
            f"DDPM steps, {args.pigdm_steps} ΠGDM steps, {args.flow_steps} flow steps); "
            "Lasso-DCT and TV take the λ (shown) that maximised PSNR on the validation "
            "images. Every method sees the same prior network, the same measurement (one "
            "noise draw) and the same test images; the flow methods use the DDPM network "
            "re-expressed on the rectified-flow path. 's / image' is the sampler's wall "
            f"time divided by the number of images (batches of {args.batch}, "
            f"{args.threads} torch thread(s), shared CPU: compare within a run). "
            f"Priors: {sources}. {lpips_note}.")
    if args.pigdm_clip:
        text += " ΠGDM clips x̂0 to [-1, 1] in this run (--pigdm-clip; its paper and code do not)."
    if any(m in SVD_STEPS for m in args.methods):
        steps = {k: v[1 if args.quick else 0] for k, v in SVD_STEPS.items()}
        text += (f" SVD methods at their papers' defaults: DDRM {steps['DDRM']} steps (eta = "
                 f"0.85, eta_b = 1), DDNM+ {steps['DDNM']} steps (eta = 0.85), MCGdiff "
                 f"{steps['MCGdiff']} DDIM steps with {args.mcgdiff_particles} particles per "
                 "image (its paper: 64), one sample drawn from the final weights; its NFE "
                 "counts every particle.")
    if skipped:
        text += " Skipped: " + "; ".join(skipped) + "."
    diverged = list(dict.fromkeys(r["method"] for r in rows if r["n_finite"] < r["n"]))
    if diverged:
        text += (f" Non-finite samples (diverged, see the 'finite' column) from: "
                 f"{', '.join(diverged)}.")
    if args.quick:
        text += (" QUICK MODE: few images and steps, a smoke test that the outputs are well "
                 "formed; these numbers say nothing about which method wins (e.g. DPS's ζ is "
                 "a per-step size meant for 1000 steps: with 20 its guidance is ~50x weaker "
                 "in total, and DPS-flow's ζ was chosen for 50 steps).")
    if partial:
        text += (f" Priors stopped short of their planned training steps ({', '.join(partial)}; "
                 "counts above): the numbers are for these weights, not a fully trained "
                 "prior.")
    return text


if __name__ == "__main__":
    main()
