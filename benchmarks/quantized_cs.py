"""Quantized compressed sensing on MNIST: QCS-SGM against Lasso-DCT and BIHT, then QCS-SGM+.

Claims under test: (2) QCS-SGM (Meng & Kabashima, ICLR 2023) recovers digits from 1–3-bit
compressed measurements far better than sparsity methods; (3) QCS-SGM+ (AAAI 2024), which
replaces QCS-SGM's diagonal approximation of :math:`AA^\\top` by expectation propagation, beats
QCS-SGM when A is ill-conditioned or correlated.

Protocol
--------
* Data: MNIST held-out digits, 28×28 (N = 784): validation 9000–9099 (the baselines pick
  their parameters there), test from 9100 (``--n-test``, full 100). See
  :mod:`benchmarks._images`.
* Part 1: A i.i.d. N(0, 1/M), M = 200, σ = 0.05, 1/2/3 bits. Part 2: 1 bit, σ = 0.1,
  M = 400, A ill-conditioned (κ = 10³) or correlated (ρ = 0.4). One A per setting, drawn from
  the seed; one noise draw per image shared by every method.
* Measurement, as the reference: the [0, 1] image ``u`` is measured, ``y = Q(A u + n)``.
  The quantizer is the reference's (1 bit: sign; Q bits: uniform mid-rise, step
  (max − min)/2^Q of the image's own noisy measurements,
  :meth:`invdiff.measurements.Quantizer.from_data`, per image).
* Data range. Our prior is a DDPM on ``x = 2u − 1 ∈ [−1, 1]``; the reference's NCSNv2 works
  on ``u ∈ [0, 1]``. We run the reference's algorithm exactly, written in ``x``:
  ``A u = (A/2) x + A1/2``, so QCS-SGM(+) sees the matrix ``A/2`` and bin edges shifted by
  ``−A1/2`` (an exact change of variables of the same likelihood); the VE levels are the
  reference's 50 → 0.01 (232 levels) in ``u`` units, i.e. 100 → 0.02 in ``x``; the Langevin
  step ``α_i = ε (σ_i/σ_L)²`` in ``x`` is 4 × the one in ``u``, so ``ε_x = 4 ε`` reproduces
  the reference's ``ε`` (the stability ratio ``α_i/σ_i² = ε/σ_L²`` is unchanged), start
  U[−1, 1] (= the reference's U[0, 1]). Reported ``ε`` values are in the reference's units.
  The network is the bundled DDPM re-expressed under that VE process.
* Step size. At the paper's ε = 2e-4, ``α_i/σ_i² = 2``: the prior-only Langevin map is at its
  stability limit and the exact-tail likelihood can push it over (see
  ``benchmarks/results/validity.md``). Every Langevin method therefore runs twice:
  at the paper's ε = 2e-4 and at ε = 2e-5 (stable; *not* the paper's value), reported as
  separate, labelled rows. The same ε is used for every method in a row group; nothing
  is tuned per method.
* Methods at their papers' defaults: QCS-SGM (K = 5, γ = 1), QCS-SGM+ (γ = 0.5
  norm-matched, damping 0.02, EP iterations 1, 3, 5, 10). Lasso-DCT (FISTA; λ by
  validation PSNR) on ``u`` with the dequantized values as linear measurements; BIHT
  (1 bit, pixel basis; sparsity k by validation PSNR, output norm = mean validation norm).
* κ: QCS-SGM+'s κ is a ratio of *squared* singular values (``d_i² ∝ κ^{−i/M}``); we
  follow the paper's definition, i.e. ``cond = d_max/d_min = κ^{(M−1)/(2M)}`` ≈ 31.6 for
  κ = 10³ (``--kappa-as-cond`` uses d_max/d_min = 10³ instead).
* Metrics: PSNR and SSIM on ``[0, 1]`` after clipping, mean ± std over the test images;
  images with a non-finite pixel count as diverged (reported, left out of the mean).

The benchmark is a spec on the sweep engine (:func:`spec`, :mod:`invdiff.sweep`; the change
of variables above is :meth:`invdiff.sweep._execute.Problem.in_model_units`): one unit per
method, problem and image batch; ``--scheduler local`` / ``tcp://HOST:8786`` run it on Dask,
``--sweep-dir DIR`` keeps the records so that an interrupted run resumes. One matrix per
setting (the three bit depths share theirs), one noise draw per image, every stream a child
of ``--seed`` keyed by problem and image.

Run ``python -m benchmarks.quantized_cs [--quick] [--weights-dir DIR]``; writes
``benchmarks/results/[quick/]quantized_cs[-quick].md``/``.json``/``.png``.
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

from . import _images
from ._common import (
    LAMBDA_GRID,
    add_run_arguments,
    add_sweep_arguments,
    fill_defaults,
    results_dir,
    write_results,
)

SHAPE = (1, 28, 28)
N = 784
EPS_PAPER, EPS_STABLE = 2e-4, 2e-5
# the reference's VE levels in [0, 1] units (the sweep scales them to the prior's [-1, 1])
SIGMA_MAX, SIGMA_MIN, LEVELS = 50.0, 0.01, 232
EP_ITERS = (1, 3, 5, 10)
#: DAPS on quantized data (no paper runs it there): a constant Langevin step 2e-3 instead of
#: its default 1e-4 -> 1e-6, chosen on the 8 validation digits 9000-9007 of part 1 (PSNR
#: 1-bit: 10.53 default, 12.85 with 1e-3 decaying, 14.14 / 15.21 with 1e-3 / 2e-3 constant;
#: 2-bit: 18.34 / 18.34 with 1e-3 / 2e-3 constant; 3-bit: 21.78 / 21.54 dB). At the
#: default step the re-noising breaks the signs faster than the chains repair them (69 % of
#: the 1-bit measurements in their bin at 1e-4, 97 % at 2e-3). Stable: the step times the
#: largest likelihood curvature lambda_max(A_x^T A_x)/sigma^2 stays below 2 (1.8 for part 1).
DAPS_SETTINGS = {"lr": 2e-3, "lr_min_ratio": 1.0}
#: task key -> part of the benchmark
PARTS = {"iid_1bit": "1", "iid_2bit": "1", "iid_3bit": "1", "ill_conditioned": "2",
         "correlated": "2"}


def tasks(args) -> dict:
    """Part 1 (i.i.d. A, 1/2/3 bits) and part 2 (ill-conditioned / correlated A, 1 bit) as
    sweep tasks. Each matrix and noise stream is keyed by its task, so a run of one part
    sees exactly the measurements of the full run."""
    M = 400
    cond = args.kappa if args.kappa_as_cond else args.kappa ** ((M - 1) / (2 * M))
    out = {f"iid_{b}bit": {"title": f"iid Gaussian, M=200, sigma=0.05, {b}-bit",
                           "operator": "gaussian_matrix", "M": 200, "sigma": 0.05, "bits": b}
           for b in (1, 2, 3)}
    part2 = {"max_images": args.n_test_part2} if args.n_test_part2 else {}
    out["ill_conditioned"] = {
        "title": f"ill-conditioned (kappa={args.kappa:g}, cond={cond:.3g}), M=400, sigma=0.1, "
                 "1-bit", "operator": "ill_conditioned_matrix", "M": M, "cond": cond,
        "sigma": 0.1, "bits": 1, **part2}
    out["correlated"] = {"title": "correlated (rho=0.4), M=400, sigma=0.1, 1-bit",
                         "operator": "correlated_matrix", "M": M, "rho": 0.4, "sigma": 0.1,
                         "bits": 1, **part2}
    return {k: v for k, v in out.items() if PARTS[k] in args.parts}


@dataclasses.dataclass
class Problem:
    """One sensing setting as the sweep builds it: the matrix, noise and bit depth."""

    part: str
    name: str
    A: object  # (M, N), acts on u in [0, 1]
    sigma: float
    bits: int
    index: int  # position in the full run (seeds the noise of other scripts' measurements)


def problems(args, like) -> list[Problem]:
    """The settings of ``--parts`` with the matrices the sweep's units draw, for scripts that
    run other methods on the same problems (``decoupled_choices``). ``args`` needs ``seed``,
    ``kappa``, ``kappa_as_cond`` and ``parts``."""
    from invdiff.sweep import _execute
    from invdiff.sweep import _tasks as sweep_tasks

    full = argparse.Namespace(**{"n_test_part2": None, **vars(args), "parts": "1,2"})
    out = []
    for index, (key, table) in enumerate(tasks(full).items()):
        task = sweep_tasks.check_task(key, table)
        unit = {"seed": args.seed, "data": {"name": "mnist"}, "task": {"name": key, **task}}
        A = sweep_tasks.build_operator(task, SHAPE, _execute.operator_rng(unit), like)
        out.append(Problem(PARTS[key], task["title"], A, task["sigma"], task["bits"], index))
    return [prob for prob in out if prob.part in args.parts]


def measure(A, u, sigma, bits, rng):
    """Per-image reference quantizer on ``A u + n`` (``u`` in [0, 1], noise from ``rng``):
    values, lower and upper bin edges (the sweep draws one noise stream per image instead)."""
    import torch

    import invdiff as ivd

    z = u.reshape(u.shape[0], -1) @ A.T
    z = z + sigma * rng.normal(tuple(z.shape), like=z)
    values, lower, upper = [], [], []
    for zi in z:
        q = ivd.measurements.Quantizer.from_data(zi, bits)
        codes = q.quantize(zi)
        lo, hi = q.bins(codes, like=zi)
        values.append(q.values(codes, like=zi))
        lower.append(lo)
        upper.append(hi)
    return {"y": torch.stack(values), "lower": torch.stack(lower), "upper": torch.stack(upper)}


def in_x_coordinates(A, lower, upper):
    """The same likelihood for ``x = 2u - 1``: matrix ``A/2``, bins shifted by ``-A1/2``
    (:func:`invdiff.measurements.to_prior_units` from [0, 1] to [-1, 1])."""
    import invdiff as ivd

    return ivd.measurements.to_prior_units(A, lower, upper, data_range=(0.0, 1.0),
                                           prior_range=(-1.0, 1.0))


def methods(args, task_keys) -> dict:
    """Every row's method table: DAPS (its own annealing, no ε; the parts of
    ``--daps-parts``), the Langevin methods at both ε (for the parts listed in
    ``--paper-parts`` / ``--stable-parts``), the baselines on part 1."""
    out = {}
    daps = [t for t in task_keys if PARTS[t] in args.daps_parts]
    if daps:  # the exact quantized likelihood in the prior's coordinates, its own start
        out["DAPS"] = {"recipe": "daps", "annealing_steps": args.daps_levels,
                       "langevin_steps": args.daps_langevin, **DAPS_SETTINGS, "tasks": daps}
    langevin = {"sigma_max": SIGMA_MAX, "sigma_min": SIGMA_MIN, "levels": args.levels,
                "steps_each": args.steps_each}
    for eps, tag, parts in ((EPS_PAPER, "paper", args.paper_parts),
                            (EPS_STABLE, "stable", args.stable_parts)):
        on = [t for t in task_keys if PARTS[t] in parts]
        if on:
            out[f"QCS-SGM, eps={eps:g} ({tag})"] = {"recipe": "qcs_sgm", "eps": eps,
                                                    "tasks": on, **langevin}
        on2 = [t for t in on if PARTS[t] == "2"]
        for it in EP_ITERS if on2 else ():
            out[f"QCS-SGM+ (EP {it}), eps={eps:g} ({tag})"] = {
                "recipe": "qcs_sgm_plus", "eps": eps, "iters": it, "tasks": on2, **langevin}
    part1 = [t for t in task_keys if PARTS[t] == "1"]
    if part1 and not args.no_baselines:
        out["Lasso-DCT"] = {"recipe": "lasso", "basis": "dct", "iters": args.lasso_iters,
                            "grid": list(args.lambdas), "tasks": part1}
        out["BIHT"] = {"recipe": "biht", "iters": args.biht_iters,
                       "grid": list(args.sparsities), "tasks": part1}  # 1-bit tasks only
    return out


def spec(args) -> dict:
    """The benchmark as a sweep spec (:mod:`invdiff.sweep`). float64 for the likelihood
    tails and EP; the network itself runs in float32."""
    prior = {"weights_dir": str(args.weights_dir)} if args.weights_dir else {"bundled": "mnist"}
    task_tables = tasks(args)
    return {"name": args.stem or "quantized_cs", "seed": args.seed, "batch": args.batch,
            "device": args.device, "dtype": "float64", "samples": True,
            "priors": {"mnist": prior},
            "data": {"mnist": {"prior": "mnist", "source": "mnist",
                          **({"dir": str(args.data_dir)} if args.data_dir else {}),
                               "test": args.n_test, "val": args.n_val}},
            "tasks": task_tables, "methods": methods(args, list(task_tables))}


# -- rows of the engine's records -------------------------------------------------------------
def collect(out):
    """``(rows, examples)`` in the benchmark's format from the sweep's records."""
    from invdiff.sweep import _data, _report, _store

    manifest = _store.read_manifest(out)
    first = {}
    for u in manifest["units"]:
        first.setdefault((u["task"], u["method"]), u["key"])
    rows, examples = [], {}
    for r in _report.rows_of(out)[0]:
        if r["failed"] or r["missing"]:
            raise SystemExit(f"{r['task']}/{r['method']}: {r['failed']} failed, {r['missing']} "
                             f"missing units: {'; '.join(r['errors'])}")
        rec = _store.read_record(out, first[(r["task_key"], r["method"])])
        m = rec["spec"]["method"]
        recipe, args_ = m["recipe"], m["args"]
        kind = {"qcs_sgm": "QCS-SGM", "qcs_sgm_plus": "QCS-SGM+", "daps": "DAPS"}.get(
            recipe, recipe)
        eps = args_.get("eps")
        setting = None
        if r["selected"]:
            (name, value), = r["selected"][0].items()
            setting = f"λ={value:.0e}" if name == "lam" else f"k={int(value)}"
        rows.append({"part": PARTS[r["task_key"]], "problem": r["task"], "method": r["method"],
                     "kind": kind, "eps_reference_units": eps,
                     "eps_used": None if eps is None else 4.0 * eps,
                     "ep_iters": args_.get("iters"), "setting": setting,
                     "psnr_mean": r["psnr_mean"], "psnr_std": r["psnr_std"],
                     "ssim_mean": r["ssim_mean"], "ssim_std": r["ssim_std"],
                     "consistency_mean": r["consistency_mean"],
                     "consistency_std": r["consistency_std"], "n": r["n"],
                     "n_finite": r["n_finite"], "nfe": r["nfe"],
                     "seconds_per_image": r["seconds_per_image"],
                     "expect_finite": eps != EPS_PAPER, "psnr": r["psnr"], "ssim": r["ssim"],
                     "consistency": r["consistency"]})
        if r["task"] not in examples:
            d = {k: v for k, v in rec["spec"]["data"].items() if k != "name"}
            raw, scale = _data.images("mnist", d, ".", rec["spec"]["images"][:1], "test")
            examples[r["task"]] = {"truth": raw[:1] / scale}
        x = _store.read_samples(out, rec["key"])[:1].astype(np.float64)
        examples[r["task"]][r["method"]] = (x + 1.0) / 2.0
        row = rows[-1]
        print(f"  {r['task'][:44]:44s} {r['method']:34s} PSNR {row['psnr_mean']:6.2f} "
              f"SSIM {row['ssim_mean']:.3f} finite {row['n_finite']}/{row['n']} "
              f"{row['seconds_per_image']:.2f} s/img", flush=True)
    return rows, examples


# -- output ------------------------------------------------------------------------------------
def table(rows):
    header = ["part", "problem", "method", "PSNR (dB)", "SSIM", "NFE", "s / image", "finite"]
    out = []
    for r in rows:
        name = r["method"] + (f" ({r['setting']})" if r["setting"] else "")
        out.append([r["part"], r["problem"], name, _images.fmt(r["psnr_mean"], r["psnr_std"], 2),
                    _images.fmt(r["ssim_mean"], r["ssim_std"], 3),
                    r["nfe"] if r["nfe"] is not None else "-",
                    f"{r['seconds_per_image']:.3f}", f"{r['n_finite']}/{r['n']}"])
    return header, out


def plot(rows, examples, stem, directory):
    """PSNR vs bits (part 1), PSNR vs EP iterations (part 2), and part 1 examples."""
    plt = _images.plt_module()
    if plt is None:
        return []
    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    p1 = [r for r in rows if r["part"] == "1"]
    if p1:
        ax = axes[0]
        for label in dict.fromkeys(r["method"] for r in p1):
            sub = [r for r in p1 if r["method"] == label]
            bits = [int(r["problem"].split(", ")[-1][0]) for r in sub]
            ax.errorbar(bits, [r["psnr_mean"] for r in sub], [r["psnr_std"] for r in sub],
                        marker="o", capsize=3, label=label)
        ax.set_xlabel("bits")
        ax.set_xticks([1, 2, 3])
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("i.i.d. Gaussian A, M = 200, sigma = 0.05")
        ax.legend(fontsize=7)
    p2 = [r for r in rows if r["part"] == "2"]
    if p2:
        ax = axes[1]
        for prob in dict.fromkeys(r["problem"] for r in p2):
            for eps, style in ((EPS_PAPER, ":"), (EPS_STABLE, "-")):
                plus = [r for r in p2 if r["problem"] == prob and r["kind"] == "QCS-SGM+"
                        and r["eps_reference_units"] == eps]
                base = [r for r in p2 if r["problem"] == prob and r["kind"] == "QCS-SGM"
                        and r["eps_reference_units"] == eps]
                if not plus:
                    continue
                short = prob.split(",")[0] + f", eps={eps:g}"
                line = ax.errorbar([r["ep_iters"] for r in plus], [r["psnr_mean"] for r in plus],
                                   [r["psnr_std"] for r in plus], marker="o", capsize=3,
                                   linestyle=style, label=f"QCS-SGM+ {short}")
                if base and math.isfinite(base[0]["psnr_mean"]):
                    ax.axhline(base[0]["psnr_mean"], color=line[0].get_color(),
                               linestyle="--", linewidth=0.8, label=f"QCS-SGM {short}")
            daps = [r for r in p2 if r["problem"] == prob and r["kind"] == "DAPS"]
            if daps and math.isfinite(daps[0]["psnr_mean"]):
                ax.axhline(daps[0]["psnr_mean"], color="k", linestyle="-.", linewidth=0.8,
                           label=f"DAPS {prob.split(',')[0]}")
        ax.set_xlabel("EP iterations")
        ax.set_xticks(list(EP_ITERS))
        ax.set_ylabel("PSNR (dB)")
        ax.set_title("1-bit, M = 400, sigma = 0.1 (missing points: diverged)")
        ax.legend(fontsize=6)
    paths.append(_images.save_figure(fig, directory / f"{stem}.png"))

    names = list(examples)
    cols = max(len(v) for v in examples.values())
    fig, axes = plt.subplots(len(names), cols, figsize=(1.5 * cols, 1.6 * len(names)),
                             squeeze=False)
    for i, prob in enumerate(names):
        for j in range(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            items = list(examples[prob].items())
            if j >= len(items):
                ax.axis("off")
                continue
            label, img = items[j]
            img = np.asarray(img, dtype=np.float64)[0, 0]
            ax.imshow(np.clip(np.nan_to_num(img, nan=0.0), 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(label.replace(", eps=", "\neps="), fontsize=5)
            if j == 0:
                ax.set_ylabel(prob.split(",")[0] + ("\n" + prob.split(", ")[-1]), fontsize=5)
    paths.append(_images.save_figure(fig, directory / f"{stem}-examples.png"))
    return paths


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="8 test images, 20 noise levels x 2 steps, short baselines (CI)")
    p.add_argument("--weights-dir", default=None,
                   help="folder with mnist.safetensors + mnist.json (or DIR/mnist/...); "
                        "default: the bundled prior")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default $INVDIFF_MNIST_DIR "
                   "or ../shared/data/mnist)")
    p.add_argument("--parts", default="1,2", help="which parts to run: 1, 2 or 1,2")
    p.add_argument("--stable-parts", default="1,2",
                   help="parts that run the stable ε = 2e-5 rows (default 1,2)")
    p.add_argument("--paper-parts", default="1,2",
                   help="parts that run the paper's ε = 2e-4 rows (default 1,2)")
    p.add_argument("--no-baselines", action="store_true", help="skip Lasso-DCT and BIHT")
    p.add_argument("--daps-parts", default="1,2",
                   help="parts that run DAPS with the exact quantized likelihood (default 1,2; "
                        "'' for none)")
    p.add_argument("--n-test", type=int, default=None, help="test images (full: 100)")
    p.add_argument("--n-test-part2", type=int, default=None,
                   help="test images of part 2 (default: --n-test); its 10-20 Langevin runs "
                        "per image cost 2-3x part 1")
    p.add_argument("--n-val", type=int, default=None, help="validation images (full: 100)")
    p.add_argument("--levels", type=int, default=None,
                   help="VE noise levels (full: 232, the reference's)")
    p.add_argument("--steps-each", type=int, default=None,
                   help="Langevin steps per level K (full: 5)")
    p.add_argument("--batch", type=int, default=None, help="images per sampler call (full: 25)")
    p.add_argument("--kappa", type=float, default=1e3)
    p.add_argument("--kappa-as-cond", action="store_true",
                   help="use d_max/d_min = kappa instead of the paper's squared ratio")
    add_sweep_arguments(p)
    add_run_arguments(p, "quantized_cs")
    args = p.parse_args(argv)
    full = {"n_test": 100, "n_val": 100, "levels": LEVELS, "steps_each": 5, "batch": 25,
            "daps_levels": 200, "daps_langevin": 100,
            "lasso_iters": 500, "biht_iters": 300,
            "lambdas": list(LAMBDA_GRID),
            "sparsities": [25.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 400.0, 500.0, 600.0]}
    quick = {"n_test": 8, "n_val": 8, "levels": 20, "steps_each": 2, "batch": 8,
             "daps_levels": 10, "daps_langevin": 20,
             "lasso_iters": 100, "biht_iters": 100, "lambdas": [1e-3, 1e-2, 1e-1],
             "sparsities": [50.0, 150.0]}
    fill_defaults(args, quick, full)
    return args


def main(argv=None):
    args = parse(argv)
    torch = _images.setup_torch(args.threads)
    start = time.perf_counter()
    option = args.data_dir
    args.data_dir = args.data_dir or _images.default_mnist_dir()
    model, source = _images.load_prior("mnist", args.weights_dir, args.device)
    if model is None:
        raise SystemExit(f"no MNIST prior: {source}")
    if not _images.mnist_available(args.data_dir):
        raise SystemExit(_images.mnist_missing(option))
    print(f"mnist: prior {source}; {args.n_val} validation, {args.n_test} test images",
          flush=True)
    out = pathlib.Path(args.sweep_dir) if args.sweep_dir else pathlib.Path(
        tempfile.mkdtemp(prefix="quantized_cs-sweep-"))
    try:
        summary = sw.run(spec(args), out, scheduler=args.scheduler, workers=args.workers,
                         threads=args.threads)
        print(f"sweep: {summary['units']} units ({summary['done_before']} done before, "
              f"{summary['computed']} computed) in {out}", flush=True)
        rows, examples = collect(out)
    finally:
        if not args.sweep_dir:
            shutil.rmtree(out, ignore_errors=True)
    wall = time.perf_counter() - start
    stem = args.stem or "quantized_cs" + ("-quick" if args.quick else "")
    header, tab = table(rows)
    settings = {"seed": args.seed, "mnist_val": f"9000-{9000 + args.n_val - 1}",
                "mnist_test": f"9100-{9100 + args.n_test - 1}",
                "n_test_part2": args.n_test_part2 or args.n_test,
                "ve_levels_reference_units": f"{SIGMA_MAX} -> {SIGMA_MIN}, L={args.levels}",
                "ve_levels_used": f"{2 * SIGMA_MAX} -> {2 * SIGMA_MIN}, L={args.levels}",
                "steps_each": args.steps_each, "eps_reference_units": [EPS_PAPER, EPS_STABLE],
                "eps_used": [4 * EPS_PAPER, 4 * EPS_STABLE],
                "stable_eps_parts": args.stable_parts, "paper_eps_parts": args.paper_parts,
                "daps_parts": args.daps_parts, "daps_levels": args.daps_levels,
                "daps_langevin_steps": args.daps_langevin,
                "baselines": not args.no_baselines, "batch": args.batch,
                "kappa": args.kappa, "kappa_as_cond": args.kappa_as_cond,
                "lambda_grid": args.lambdas, "biht_sparsities": args.sparsities,
                "lasso_iters": args.lasso_iters, "biht_iters": args.biht_iters,
                "prior": source, "torch_threads": torch.get_num_threads(),
                "device": args.device, "scheduler": args.scheduler}
    notes = _notes(args, source, _images.is_partial(model))
    directory = results_dir(args.results_dir, args.quick)
    directory.mkdir(parents=True, exist_ok=True)
    for path in plot(rows, examples, stem, directory):
        print(f"wrote {path}")
        notes += f"\n\n![{path.stem}]({path.name})"
    write_results(stem, header, tab, settings=settings, rows=rows, notes=notes,
                  wall_seconds=wall, directory=directory,
                  title=args.stem or "quantized_cs" + (" (quick)" if args.quick else ""))
    bad = [f"{r['problem']}/{r['method']}" for r in rows
           if r["expect_finite"] and (r["n_finite"] < r["n"] or not math.isfinite(r["psnr_mean"]))]
    if args.quick and bad:
        raise SystemExit("quick check failed, non-finite results: " + ", ".join(bad))
    return rows


def _notes(args, source, partial):
    text = ("Mean ± std (ddof 1) over the test images of PSNR and SSIM on [0, 1] after "
            "clipping. Measurements of the [0, 1] image as in the reference "
            "(y = Q(A u + n), per-image min-max quantizer step); QCS-SGM(+) run the "
            "reference's algorithm in our prior's [-1, 1] coordinates (matrix A/2, bins "
            "shifted by -A1/2, VE levels 100 -> 0.02, Langevin ε_x = 4ε: an exact change of "
            "variables). ε is given in the reference's [0, 1] units: 2e-4 is the papers' "
            "value, 2e-5 a stable step that the papers do not use; both are run for every "
            "Langevin method, nothing is tuned per method. 'diverged' (or finite < n) means "
            "non-finite samples: at ε = 2e-4 the Langevin step α_i = 2σ_i² sits at the "
            "stability limit of the prior term and the exact-tail likelihood can push it "
            "over (the reference's 1e-6 probability clamp hides this). Lasso-DCT (λ) and "
            "BIHT (k) take the value shown that maximised validation PSNR. "
            "DAPS (Zhang et al. 2025; no paper runs it on quantized data) uses the exact "
            "quantized likelihood p(y | x0) (normal-CDF differences in log space) in the same "
            "[-1, 1] coordinates, its authors' pixel settings (poly-7 levels 100 -> 0.1, 5 ODE "
            "steps) except the Langevin step, a constant 2e-3 chosen on the validation "
            "digits (its default 1e-4 decaying to 1e-6 leaves a third of the 1-bit signs "
            "wrong; see DAPS_SETTINGS), "
            f"{args.daps_levels} levels × {args.daps_langevin} Langevin steps. "
            f"{args.levels} noise levels × K = {args.steps_each}; batch {args.batch}, "
            f"{args.threads} torch thread(s). Prior: {source}.")
    if partial:
        text += (" The prior stopped short of its planned training steps (counts above): "
                 "the numbers are for these weights, not a fully trained prior.")
    if args.quick:
        text += (" QUICK MODE: 20 levels × 2 steps instead of 232 × 5 and 8 images, a smoke "
                 "test that the outputs are well formed; the numbers say nothing about which "
                 "method wins. In particular the stable ε cannot equilibrate on this short "
                 "schedule (each step contracts the excess by 0.8 while the levels shrink "
                 "by 1.57 per level), so its quick rows are noise by construction.")
    return text


if __name__ == "__main__":
    main()
