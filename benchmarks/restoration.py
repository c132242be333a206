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
  method starts from the same N(0, I) draw per image and uses the same random stream per
  batch, except the two whose recipes start from the measurement (ΠGDM: the noised A⁺y of
  its code; OT-ODE: the noised Tikhonov estimate), which draw that noise from the stream.
  Each stream is a child of ``--seed`` keyed by what it is shared over (dataset, task,
  image), see :mod:`invdiff.sweep._execute`.
* Methods at their recipes' defaults, each naming its source in :mod:`invdiff.methods`;
  nothing tuned on test data: DMPS (λ = 1.75, DDPM ancestral, ``--steps``), DPS (ζ = 0.3;
  0.5 for inpainting, the DPS configs; no DPS config exists for colorization or
  denoising, 0.3 is used), ΠGDM (``--pigdm-steps`` = 100 DDIM steps, guidance weighted
  as NVlabs' code, η as the recipe), DMPS-flow (λ = 2), DPS-flow (DPS's own step inside
  the flow, ζ = 3 chosen on the *validation* images by ``benchmarks/validation_choices``),
  OT-ODE with a start time t0 and γ_t per task (``OT_ODE_SETTINGS``: PnP-Flow's tuned
  values where the validation images agree, else chosen on them), all three flows with
  ``--flow-steps`` = 50 Euler steps. Lasso-DCT
  (FISTA) and TV (Chambolle–Pock) choose λ on the validation split
  (:func:`invdiff.baselines.select_lambda`, PSNR), never on the test images. SVD methods
  (DDRM, DDNM+, MCGdiff) at their papers' steps (``SVD_STEPS``); the decoupled methods
  DiffPIR, DAPS and RED-diff with the per-task settings of ``DECOUPLED_SETTINGS`` (the
  authors' values where a paper reports the task, else chosen on validation images by
  ``benchmarks/decoupled_choices``).
* Metrics: PSNR and SSIM per image on ``[0, 1]`` after clipping, mean ± std (ddof 1) over
  the test images; LPIPS only if the ``lpips`` package and its AlexNet weights are already
  on disk (nothing is downloaded). Data consistency ‖y − A x̂‖/(σ_y √M) of the clipped
  reconstruction (:func:`invdiff.sweep._execute.consistency`; ≈ 1 fits y to the noise
  level). Also NFE and wall seconds per image (batch ``--batch``).
* Adding a method: one entry in ``DIFFUSION`` (label → family, recipe, the keywords the
  benchmark sets) or ``BASELINES``, and one in :data:`invdiff.sweep.METHODS` if the recipe
  is new.

The benchmark is a spec on the sweep engine (:func:`spec`, :mod:`invdiff.sweep`): one unit
per method, task and image batch. ``--scheduler local`` runs the units on every core (a Dask
``LocalCluster``), ``--scheduler tcp://HOST:8786`` on an existing Dask cluster, and with
``--sweep-dir DIR`` the records stay in ``DIR`` so that an interrupted run resumes.

Run ``python -m benchmarks.restoration [--quick] [--weights-dir DIR]``; writes
``benchmarks/results/[quick/]restoration[-quick].md``/``.json`` and ``.png`` (metrics) and
``-examples.png`` (the first test image of each task).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import pathlib
import shutil
import tempfile
import time

import numpy as np

import invdiff.sweep as sw
from invdiff.methods.daps import TAU_REFERENCE

from . import _images
from ._common import (
    LAMBDA_GRID,
    add_run_arguments,
    add_sweep_arguments,
    fill_defaults,
    results_dir,
    write_results,
)

INPAINT_OBSERVED = 0.5
#: the SVD methods' steps (full, quick): the papers' 20 (DDRM), 100 (DDNM+) and 100 DDIM
#: steps (MCGdiff, with --mcgdiff-particles particles per image)
SVD_STEPS = {"DDRM": (20, 5), "DDNM": (100, 10), "MCGdiff": (100, 10)}


def _svd_steps(name, args):
    return SVD_STEPS[name][1 if args.quick else 0]


#: the decoupled methods' steps (full, quick): DiffPIR's 100 NFE, DAPS's 200 annealing
#: levels (x 5 ODE steps = 1000 NFE) and RED-diff's 1000 Adam steps
DECOUPLED_STEPS = {"DiffPIR": (100, 20), "DAPS": (200, 10), "RED-diff": (1000, 20)}

#: Per task (first word of its title) the settings of the decoupled methods: the authors'
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


#: OT-ODE per task (first word of its title), our time (1 = noise). PnP-Flow's tuned scripts
#: (annegnx/PnP-Flow, scripts/script_test.sh for CelebA; start_time s there is our 1 - s)
#: run it per task: deblurring 0.6 + gamma_t, SR 0.9 constant, random inpainting 0.9
#: constant, denoising 0.7 + gamma_t. Taken where the validation images agree (mean PSNR
#: over MNIST 9000-9007 and the two natural validation crops no lower than the recipe's
#: default 0.8 + constant), else the validation best (results/validation_choices-ot_ode.md,
#: from python -m benchmarks.validation_choices --methods OT-ODE,TV --n-val 8).
OT_ODE_SETTINGS = {
    "SR": {"t_start": 0.9, "gamma": "gamma_t"},  # validation (PnP-Flow's 0.9 constant diverges)
    "deblur": {"t_start": 0.9, "gamma": "gamma_t"},  # validation (PnP-Flow's 0.6 is 0.2 dB lower)
    "inpainting": {"t_start": 0.9, "gamma": "constant"},  # PnP-Flow random_inpainting
    "colorization": {"t_start": 0.9, "gamma": "gamma_t"},  # validation (no PnP-Flow config)
    "denoising": {"t_start": 0.8, "gamma": "constant"},  # validation = the recipe default
}
#: per-task settings of the methods that have them (label -> OT_ODE_SETTINGS-like table)
BY_TASK = {**DECOUPLED_SETTINGS, "OT-ODE": OT_ODE_SETTINGS}


def _decoupled_steps(name, args):
    steps_key = "annealing_steps" if name == "DAPS" else "steps"
    return {steps_key: DECOUPLED_STEPS[name][1 if args.quick else 0]}


def _by_task(args, settings) -> dict:
    """Task key -> arguments, from a table keyed by the first word of the task's title."""
    return {key: dict(settings[table["title"].split()[0]])
            for key, table in tasks(args).items()}


#: label -> (family, recipe, the options that set its arguments). A new method is one entry
#: here (and one in :data:`invdiff.sweep.METHODS` if its recipe is new). DAPS starts from
#: the shared N(0, I) draw times its first level sigma_max = 100 (the registry's
#: ``start_scale``); RED-diff from A⁺y (its own start), DiffPIR from the shared draw.
DIFFUSION = {
    "DMPS": ("DDPM", "dmps", lambda a: {"steps": a.steps}),
    "DPS": ("DDPM", "dps", lambda a: {"steps": a.steps, "zeta": 0.3}),
    "PiGDM": ("DDPM", "pigdm", lambda a: {"steps": a.pigdm_steps,
                                          **({"clip_x0": [-1.0, 1.0]} if a.pigdm_clip else {})}),
    "DMPS-flow": ("flow", "dmps_flow", lambda a: {"steps": a.flow_steps}),
    "DPS-flow": ("flow", "dps_flow", lambda a: {"steps": a.flow_steps}),
    "OT-ODE": ("flow", "ot_ode", lambda a: {"steps": a.flow_steps}),
    "DDRM": ("SVD", "ddrm", lambda a: {"steps": _svd_steps("DDRM", a)}),
    "DDNM": ("SVD", "ddnm", lambda a: {"steps": _svd_steps("DDNM", a)}),
    "MCGdiff": ("SVD", "mcgdiff", lambda a: {"steps": _svd_steps("MCGdiff", a),
                                             "n_particles": a.mcgdiff_particles}),
    "DiffPIR": ("decoupled", "diffpir", lambda a: _decoupled_steps("DiffPIR", a)),
    "DAPS": ("decoupled", "daps", lambda a: _decoupled_steps("DAPS", a)),
    "RED-diff": ("decoupled", "red_diff", lambda a: _decoupled_steps("RED-diff", a)),
}
#: DPS's zeta per task where its configs differ from 0.3 (inpainting: 0.5)
ZETA_BY_TASK = {"inpainting": 0.5}
BASELINES = {
    "Lasso-DCT": ("lasso", lambda a: {"basis": "dct", "iters": a.lasso_iters}),
    "TV": ("tv", lambda a: {"iters": a.tv_iters}),
}
DDPM_METHODS = tuple(k for k, v in DIFFUSION.items() if v[0] == "DDPM")
FLOW_METHODS = tuple(k for k, v in DIFFUSION.items() if v[0] == "flow")
METHODS = tuple(DIFFUSION) + tuple(BASELINES)
#: every method but MCGdiff (one network evaluation per particle: select it explicitly)
DEFAULT_METHODS = tuple(m for m in METHODS if m != "MCGdiff")
PAIRS = (("DMPS", "DPS"), ("DMPS", "PiGDM"), ("DMPS-flow", "DPS-flow"), ("DMPS-flow", "OT-ODE"))


def tasks(args) -> dict:
    """The restoration tasks as sweep task tables (colorization runs on RGB data only)."""
    b, k = args.blur_sigma, args.blur_size
    return {
        "sr4_block": {"title": "SR x4 (block)", "operator": "super_resolution", "factor": 4,
                      "kind": "block", "sigma_y": 0.05},
        "sr4_bicubic": {"title": "SR x4 (bicubic)", "operator": "super_resolution",
                        "factor": 4, "kind": "bicubic", "sigma_y": 0.05},
        "deblur_gaussian": {"title": f"deblur (Gaussian, sigma={b:g})",
                            "operator": "gaussian_blur", "sigma": b, "sigma_y": 0.05},
        "deblur_uniform": {"title": f"deblur (uniform {k}x{k})", "operator": "uniform_blur",
                           "size": k, "sigma_y": 0.05},
        "inpainting": {"title": f"inpainting ({int(100 * INPAINT_OBSERVED)}% observed)",
                       "operator": "inpainting", "observed": INPAINT_OBSERVED,
                       "sigma_y": 0.05},
        "colorization": {"title": "colorization", "operator": "colorization", "sigma_y": 0.05},
        "denoising": {"title": "denoising", "operator": "identity", "sigma_y": 0.5},
    }


@dataclasses.dataclass
class Task:
    """One restoration problem as the sweep builds it: operator, noise level, DPS's ζ."""

    name: str
    op: object
    sigma_y: float
    zeta: float


def make_tasks(in_shape, like, args, dataset) -> list[Task]:
    """The tasks of ``dataset`` with the operators (and inpainting mask) its sweep units use,
    for scripts that run other methods on the same problems (``validation_choices``)."""
    from invdiff.sweep import _execute
    from invdiff.sweep import _tasks as sweep_tasks

    out = []
    for key, table in tasks(args).items():
        task = sweep_tasks.check_task(key, table)  # with the defaults the units see
        if sweep_tasks.applicable(task, in_shape) is not None:
            continue
        unit = {"seed": args.seed, "data": {"name": dataset}, "task": {"name": key, **task}}
        op = sweep_tasks.build_operator(task, in_shape, _execute.operator_rng(unit), like)
        out.append(Task(task["title"], op, task["sigma_y"], ZETA_BY_TASK.get(key, 0.3)))
    return out


def spec(args, datasets) -> dict:
    """The benchmark as a sweep spec (:mod:`invdiff.sweep`): one prior per dataset, every
    task, every method of ``--methods`` at the options' settings."""
    priors, data = {}, {}
    for name in datasets:
        priors[name] = ({"weights_dir": str(args.weights_dir)} if args.weights_dir
                        else {"bundled": name})
        if name == "mnist":
            data[name] = {"prior": name, "source": "mnist",
                          **({"dir": str(args.data_dir)} if args.data_dir else {}),
                          "test": args.n_test, "val": args.n_val}
        else:
            data[name] = {"prior": name, "source": "natural"}
    methods = {}
    for label in args.methods:
        if label in DIFFUSION:
            _, recipe, settings = DIFFUSION[label]
            methods[label] = {"recipe": recipe, **settings(args)}
            if "zeta" in methods[label]:
                methods[label]["by_task"] = {t: {"zeta": z} for t, z in ZETA_BY_TASK.items()}
            if label in BY_TASK:
                methods[label]["by_task"] = _by_task(args, BY_TASK[label])
        else:
            recipe, settings = BASELINES[label]
            methods[label] = {"recipe": recipe, "grid": list(args.lambdas), **settings(args)}
    return {"name": args.stem or "restoration", "seed": args.seed, "batch": args.batch,
            "device": args.device, "dtype": "float32", "samples": True,
            "priors": priors, "data": data, "tasks": tasks(args), "methods": methods,
            "report": {"pairs": [list(p) for p in PAIRS
                                 if p[0] in args.methods and p[1] in args.methods]}}


# -- rows of the engine's records ----------------------------------------------------------
def collect(out, args, lpips_on):
    """``(rows, examples)`` in the benchmark's format from the sweep's records."""
    from invdiff.sweep import _report, _store

    manifest = _store.read_manifest(out)
    first = {}  # (dataset, task, method) -> key of the unit holding the first test image
    for u in manifest["units"]:
        first.setdefault((u["data"], u["task"], u["method"]), u["key"])
    rows, examples = [], {}
    truths = {}
    for r in _report.rows_of(out)[0]:
        ds, task, method = r["dataset"], r["task"], r["method"]
        if r["failed"] or r["missing"]:
            raise SystemExit(f"{ds}/{task}/{method}: {r['failed']} failed, {r['missing']} "
                             f"missing units: {'; '.join(r['errors'])}")
        rec = _store.read_record(out, first[(ds, r["task_key"], method)])
        settings = rec["metrics"].get("settings", {})
        lam = r["selected"][0]["lam"] if r["selected"] else None
        row = {"dataset": ds, "task": task, "method": method,
               "family": DIFFUSION[method][0] if method in DIFFUSION else "sparsity",
               "sigma_y": rec["spec"]["task"]["sigma_y"], "zeta": settings.get("zeta"),
               "settings": settings, "lambda": lam, "psnr_mean": r["psnr_mean"],
               "psnr_std": r["psnr_std"], "ssim_mean": r["ssim_mean"],
               "ssim_std": r["ssim_std"], "consistency_mean": r["consistency_mean"],
               "consistency_std": r["consistency_std"], "n": r["n"],
               "n_finite": r["n_finite"], "nfe": r["nfe"],
               "seconds_per_image": r["seconds_per_image"], "psnr": r["psnr"],
               "ssim": r["ssim"], "consistency": r["consistency"]}
        samples = _store.read_samples(out, rec["key"])
        if ds not in truths:
            truths[ds] = _truths(rec["spec"]["data"], args)
        if lpips_on:
            keys = [u["key"] for u in manifest["units"]
                    if (u["data"], u["task"], u["method"]) == (ds, r["task_key"], method)]
            x_hat = np.concatenate([_store.read_samples(out, k) for k in keys])
            v = _images.lpips_scores(x_hat, truths[ds][:len(x_hat)], -1.0, 1.0)
            row["lpips_mean"], row["lpips_std"] = _images.mean_std(v)
        rows.append(row)
        examples.setdefault(ds, {}).setdefault(task, {"truth": truths[ds][0]})[method] = (
            samples[0])
        print(f"  {ds:7s} {task:28s} {method:10s} PSNR {row['psnr_mean']:6.2f} "
              f"SSIM {row['ssim_mean']:.3f} fit {row['consistency_mean']:5.2f} "
              f"{row['seconds_per_image']:.2f} s/img", flush=True)
    return rows, examples


def _truths(data, args):
    """The test images of a dataset in [-1, 1] (NumPy), in the sweep's order."""
    from invdiff.sweep import _data

    table = {k: v for k, v in data.items() if k != "name"}
    if table["source"] == "mnist":
        table.update(test=args.n_test, val=args.n_val)
    info = _data.describe(data["name"], table, ".")
    raw, scale = _data.images(data["name"], table, ".", info.test, "test")
    return raw / (scale / 2.0) - 1.0


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
                img = np.asarray(images[key], dtype=np.float64)
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
    add_sweep_arguments(p)
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
            "lambdas": list(LAMBDA_GRID)}
    quick = {"n_test": 8, "n_val": 8, "steps": 20, "pigdm_steps": 20, "flow_steps": 10,
             "batch": 8, "mcgdiff_particles": 4, "lasso_iters": 100, "tv_iters": 100,
             "lambdas": [1e-3, 1e-2, 1e-1, 1.0]}
    fill_defaults(args, quick, full)
    return args


def main(argv=None):
    args = parse(argv)
    torch = _images.setup_torch(args.threads)
    start = time.perf_counter()
    option = args.data_dir
    args.data_dir = args.data_dir or _images.default_mnist_dir()
    lpips_note = _images.lpips_status()
    lpips_on = lpips_note == "available"
    datasets, sources, skipped, partial = [], {}, [], []
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        model, source = _images.load_prior(dataset, args.weights_dir, args.device)
        if model is None:
            skipped.append(f"{dataset}: {source}")
            continue
        if dataset == "mnist" and not _images.mnist_available(args.data_dir):
            skipped.append(f"mnist: {_images.mnist_missing(option)}")
            continue
        if dataset == "natural" and _images.natural_split(dtype=torch.float32) is None:
            skipped.append("natural: invdiff/data/demo_images.npz lacks the held-out crops")
            continue
        datasets.append(dataset)
        sources[dataset] = source
        if _images.is_partial(model):
            partial.append(dataset)
        print(f"{dataset}: prior {source}", flush=True)
    if not datasets:
        raise SystemExit("nothing to run: " + "; ".join(skipped))
    out = pathlib.Path(args.sweep_dir) if args.sweep_dir else pathlib.Path(
        tempfile.mkdtemp(prefix="restoration-sweep-"))
    try:
        summary = sw.run(spec(args, datasets), out, scheduler=args.scheduler,
                         workers=args.workers, threads=args.threads)
        print(f"sweep: {summary['units']} units ({summary['done_before']} done before, "
              f"{summary['computed']} computed) in {out}", flush=True)
        rows, examples = collect(out, args, lpips_on)
    finally:
        if not args.sweep_dir:
            shutil.rmtree(out, ignore_errors=True)
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
                "mcgdiff_particles": args.mcgdiff_particles,
                "decoupled_steps": {k: v[1 if args.quick else 0]
                                    for k, v in DECOUPLED_STEPS.items()},
                "scheduler": args.scheduler}
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
            "validation images, OT-ODE from a noised Tikhonov estimate with t0 and γ per task ("
            + ", ".join(f"{k} {v['t_start']:g}/{v['gamma']}" for k, v in OT_ODE_SETTINGS.items())
            + f"); {args.steps} "
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
    if any(m in DECOUPLED_STEPS for m in args.methods):
        steps = {k: v[1 if args.quick else 0] for k, v in DECOUPLED_STEPS.items()}
        text += (f" Decoupled methods with each task's settings (DECOUPLED_SETTINGS; each "
                 f"row's settings in the JSON): DiffPIR {steps['DiffPIR']} steps from the "
                 f"shared start, DAPS {steps['DAPS']} annealing levels × 5 ODE steps from 100 × "
                 f"the shared start, RED-diff {steps['RED-diff']} Adam steps from A⁺y.")
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
