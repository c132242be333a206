"""Settings of DiffPIR, DAPS and RED-diff chosen on validation images, for the tasks their
papers do not report.

The restoration benchmark (``DECOUPLED_SETTINGS`` in :mod:`benchmarks.restoration`) and the
quantized-CS benchmark (``DAPS_SETTINGS`` in :mod:`benchmarks.quantized_cs`) use the authors'
values where a paper reports the task, and otherwise the best candidate of this script. It
measures the candidates on *validation* images only, never on test images:

* MNIST digits 9000… (``--n-val``, default 8) and the two 32×32 validation crops of the
  held-out photographs (:mod:`benchmarks._images`);
* the tasks of :func:`benchmarks.restoration.make_tasks` (same operators and mask; noise of a
  seed of its own), and part 1 of :mod:`benchmarks.quantized_cs` (1/2/3-bit, i.i.d. A);
* each candidate from one shared start and random stream, all validation images in one call.

The pick is the candidate with the best mean PSNR; where two datasets disagree, the one with
more images (MNIST) decides, the natural crops being two.

Run ``python -m benchmarks.decoupled_choices [--quick] [--only KEY,...]``; writes
``benchmarks/results/[quick/]decoupled_choices[-quick].md`` and ``.json``. The full grid
costs about 40 CPU-minutes (one thread).
"""

from __future__ import annotations

import argparse
import time

import invdiff as ivd
from invdiff.methods.daps import TAU_REFERENCE

from . import _images, quantized_cs, restoration
from ._common import add_run_arguments, fill_defaults, results_dir, write_results

_DIFFPIR_DENOISE = [{"zeta": z, "lam": lam} for z, lam in
                    ((1.0, 0.25), (0.3, 0.25), (0.3, 0.5), (0.3, 1.0), (0.3, 1.75), (0.3, 3.0),
                     (1.0, 0.5), (1.0, 1.0), (1.0, 1.75))]
_DIFFPIR_NATURAL = [{"zeta": z, "lam": lam} for z, lam in
                    ((0.3, 0.5), (0.3, 1.75), (0.3, 3.0), (1.0, 0.5), (1.0, 1.0), (1.0, 1.75))]
_RED_DIFF = [{"lam": v} for v in (0.25, 1.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0)]

#: key -> (method, dataset, task names (prefix match), candidates)
GRIDS = {
    # the code's SR sweep, lambda_code in {2, 4, 6, 8, 12} -> ours / 4, at its zeta 0.25
    "diffpir-sr": ("diffpir", "mnist", ("SR",),
                   [{"zeta": 0.25, "lam": v} for v in (0.5, 1.0, 1.5, 2.0, 3.0)]),
    # inpainting: the paper's configuration (zeta 1) checked against zeta 0.3
    "diffpir-inpainting": ("diffpir", "mnist", ("inpainting",), _DIFFPIR_DENOISE),
    "diffpir-denoising": ("diffpir", "mnist", ("denoising",), _DIFFPIR_DENOISE),
    "diffpir-natural": ("diffpir", "natural", ("colorization", "denoising"), _DIFFPIR_NATURAL),
    "daps-tau": ("daps", "mnist", ("SR x4 (block)",), [{"tau": TAU_REFERENCE}, {"tau": None}]),
    "daps-denoising": ("daps", "mnist", ("denoising",),
                       [{"tau": v} for v in (TAU_REFERENCE, None, 0.02, 0.05, 0.1)]),
    "daps-natural": ("daps", "natural", ("colorization", "denoising"),
                     [{"tau": v} for v in (TAU_REFERENCE, 0.05, 0.1)]),
    "red_diff-denoising": ("red_diff", "mnist", ("denoising",), _RED_DIFF),
    "red_diff-natural": ("red_diff", "natural", ("colorization", "denoising"), _RED_DIFF),
    # quantized CS (part 1): the Langevin step of DAPS
    "daps-quantized": ("daps", "quantized", ("1-bit", "2-bit", "3-bit"),
                       [{}, {"lr": 1e-3}, {"lr": 1e-3, "lr_min_ratio": 1.0},
                        {"lr": 2e-3, "lr_min_ratio": 1.0}]),
}


def _run(method, model, op, y, sigma_y, kw, x0, args, in_shape=None):
    rng = ivd.random.Generator(7)
    if method == "diffpir":
        return ivd.methods.diffpir(model, op, y, sigma_y, rng=rng, x_init=x0,
                                   steps=args.diffpir_steps, **kw)
    if method == "daps":
        return ivd.methods.daps(model, op, y, sigma_y, rng=rng, in_shape=in_shape,
                                annealing_steps=args.daps_levels, **kw)
    return ivd.methods.red_diff(model, op, y, rng=rng, steps=args.red_diff_steps, **kw)


def restoration_rows(key, model, x_val, args):
    method, dataset, names, grid = GRIDS[key]
    rows = []
    in_shape = tuple(x_val.shape[1:])
    for ti, task in enumerate(restoration.make_tasks(in_shape, x_val, args, dataset)):
        if not any(task.name.startswith(n) for n in names):
            continue
        noise = ivd.random.Generator(1000 + ti)
        y = task.op.apply(x_val)
        y = y + task.sigma_y * noise.normal(tuple(y.shape), like=x_val)
        x0 = ivd.random.Generator(3).normal(tuple(x_val.shape), like=x_val)
        for kw in grid:
            start = time.perf_counter()
            x = _run(method, model, task.op, y, task.sigma_y, kw, x0, args)
            rows.append(_score(key, method, dataset, task.name, kw, x, x_val, -1.0,
                               time.perf_counter() - start))
    return rows


def quantized_rows(key, model, x_val, args):
    method, _, names, grid = GRIDS[key]
    u_val = (x_val + 1) / 2
    qargs = argparse.Namespace(seed=0, kappa=1e3, kappa_as_cond=False, parts="1")
    rows = []
    for prob in quantized_cs.problems(qargs, u_val):
        if not any(n in prob.name for n in names):
            continue
        meas = quantized_cs.measure(prob.A, u_val, prob.sigma, prob.bits,
                                    ivd.random.Generator(5000 + prob.index))
        A_x, lower, upper = quantized_cs.in_x_coordinates(prob.A, meas["lower"], meas["upper"])
        for kw in grid:
            start = time.perf_counter()
            x = _run(method, model, A_x, (lower, upper), prob.sigma, kw, None, args,
                     in_shape=quantized_cs.SHAPE)
            rows.append(_score(key, method, "mnist", prob.name, kw, (x + 1) / 2, u_val, 0.0,
                               time.perf_counter() - start))
    return rows


def _score(key, method, dataset, task, kw, x_hat, x_true, low, seconds):
    s = _images.image_scores(x_hat, x_true, low, 1.0)
    m, sd = _images.mean_std(s["psnr"])
    setting = ", ".join(f"{k}={'exact' if v is None else f'{v:.3g}'}" for k, v in kw.items())
    print(f"  {key:20s} {dataset:7s} {task[:36]:36s} {setting or 'default':28s} PSNR {m:6.2f}",
          flush=True)
    return {"grid": key, "method": method, "dataset": dataset, "task": task,
            "setting": setting or "default", "psnr_mean": m, "psnr_std": sd,
            "n": int(x_true.shape[0]), "psnr": s["psnr"].tolist(), "seconds": seconds}


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 images, short schedules (CI)")
    p.add_argument("--n-val", type=int, default=None, help="MNIST validation digits (full: 8)")
    p.add_argument("--only", default=",".join(GRIDS), help="comma-separated grid keys: "
                   + ", ".join(GRIDS))
    p.add_argument("--weights-dir", default=None,
                   help="folder with NAME.safetensors + NAME.json; default: the bundled priors")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default $INVDIFF_MNIST_DIR "
                   "or ../shared/data/mnist)")
    p.add_argument("--blur-sigma", type=float, default=1.5)
    p.add_argument("--blur-size", type=int, default=5)
    add_run_arguments(p, "decoupled_choices")
    args = p.parse_args(argv)
    args.only = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = set(args.only) - set(GRIDS)
    if unknown:
        p.error(f"--only: unknown {sorted(unknown)}; expected a subset of {list(GRIDS)}")
    full = {"n_val": 8, "diffpir_steps": 100, "daps_levels": 200, "red_diff_steps": 1000}
    quick = {"n_val": 2, "diffpir_steps": 10, "daps_levels": 4, "red_diff_steps": 10}
    fill_defaults(args, quick, full)
    return args


def main(argv=None):
    args = parse(argv)
    torch = _images.setup_torch(args.threads)
    start = time.perf_counter()
    rows, skipped = [], []
    for dataset in ("mnist", "natural"):
        keys = [k for k in args.only if GRIDS[k][1] == dataset or
                (dataset == "mnist" and GRIDS[k][1] == "quantized")]
        if not keys:
            continue
        model, source = _images.load_prior(dataset, args.weights_dir, args.device)
        if model is None:
            skipped.append(f"{dataset}: {source}")
            continue
        if dataset == "mnist":
            data_dir = args.data_dir or _images.default_mnist_dir()
            if not _images.mnist_available(data_dir):
                skipped.append(f"mnist: no MNIST data in {data_dir}")
                continue
            x_val, _ = _images.mnist_split(data_dir, args.n_val, 1, dtype=torch.float32,
                                           device=args.device)
        else:
            split = _images.natural_split(dtype=torch.float32, device=args.device)
            if split is None:
                skipped.append("natural: no held-out crops")
                continue
            x_val = split[0]
        for key in keys:
            if GRIDS[key][1] == "quantized":  # float64 for the likelihood tails, as the benchmark
                rows += quantized_rows(key, model, x_val.double(), args)
            else:
                rows += restoration_rows(key, model, x_val, args)
    if not rows:
        raise SystemExit("nothing to run: " + "; ".join(skipped))
    header = ["grid", "dataset", "task", "setting", "validation PSNR (dB)", "n"]
    table = [[r["grid"], r["dataset"], r["task"], r["setting"],
              _images.fmt(r["psnr_mean"], r["psnr_std"], 2), r["n"]] for r in rows]
    notes = ("PSNR on validation images only (MNIST 9000.., the two natural validation "
             "crops); one shared start and random stream per candidate. The settings the "
             "benchmarks use are the best of each grid (DECOUPLED_SETTINGS in "
             "benchmarks/restoration.py, DAPS_SETTINGS in benchmarks/quantized_cs.py)."
             + (" Skipped: " + "; ".join(skipped) + "." if skipped else "")
             + (" QUICK MODE: 2 images and short schedules, a smoke test only."
                if args.quick else ""))
    stem = args.stem or "decoupled_choices" + ("-quick" if args.quick else "")
    write_results(stem, header, table, settings={k: getattr(args, k) for k in (
        "n_val", "diffpir_steps", "daps_levels", "red_diff_steps", "only")}, rows=rows,
        notes=notes, wall_seconds=time.perf_counter() - start,
        directory=results_dir(args.results_dir, args.quick))
    return rows


if __name__ == "__main__":
    main()
