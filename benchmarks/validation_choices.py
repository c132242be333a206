"""Defaults chosen on validation images: DPS-flow's ζ, ΠGDM's η, OT-ODE's start and γ_t.

None has a published value for our setting: no paper gives ζ for DPS in a 50-step flow
(DPS's 0.3 / 0.5 are per-step sizes for 1000 ancestral steps), ΠGDM's two sources
disagree on η (see :func:`invdiff.methods.pigdm`), and PnP-Flow's tuned scripts set
OT-ODE's start time and γ_t per task for 128×128 faces and cats, not for our images (see
:func:`invdiff.methods.ot_ode`). This script measures the candidates on the
*validation* images only, never on the test images of ``restoration``:

* MNIST digits 9000… (``--n-val``, default 16 of the validation block 9000–9099) and the
  two 32×32 validation crops of the held-out photographs (:mod:`benchmarks._images`);
* every restoration task of :func:`benchmarks.restoration.make_tasks` (same operators, same
  inpainting mask), with measurement noise drawn from a seed of its own;
* DPS-flow (``weighting="unit"``, 50 Euler steps) at ζ in ``--zetas``; ΠGDM (100 DDIM
  steps) at η in ``--etas``; OT-ODE (50 Euler steps) at every start time of ``--t-starts``
  (our time, 1 = noise) and γ of ``--gammas``; each from one shared start and random
  stream per dataset (ΠGDM and OT-ODE noise their own measurement-based start from it);
* for reference, TV (Chambolle–Pock, ``--tv-iters``) with λ chosen on these same
  validation images (so an upper bound on what the test run's λ gives here).

The pick is the value with the best PSNR averaged over tasks, then over the two datasets
(each dataset weighs the same, however many images it has); the best value per task and
dataset is reported too (OT-ODE's settings are chosen per task, as its sources do).

Run ``python -m benchmarks.validation_choices [--quick]``; writes
``benchmarks/results/[quick/]validation_choices[-quick].md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import invdiff as ivd

from . import _images, restoration
from ._common import (
    LAMBDA_GRID,
    add_run_arguments,
    fill_defaults,
    results_dir,
    write_results,
)


def _candidates(args):
    """``[(method, setting, run(model, task, y, x_start, rng, x_val))]``."""
    out = []
    if "DPS-flow" in args.methods:
        for z in args.zetas:
            out.append(("DPS-flow", f"zeta={z:g}", lambda m, task, y, x0, rng, xv, z=z:
                        ivd.methods.dps_flow(m, task.op, y, x_init=x0, zeta=z,
                                             steps=args.flow_steps, rng=rng)))
    if "PiGDM" in args.methods:
        for e in args.etas:
            out.append(("PiGDM", f"eta={e:g}", lambda m, task, y, x0, rng, xv, e=e:
                        ivd.methods.pigdm(m, task.op, y, task.sigma_y, eta=e,
                                          steps=args.pigdm_steps, rng=rng)))
    if "OT-ODE" in args.methods:
        for t0 in args.t_starts:
            for g in args.gammas:
                out.append(("OT-ODE", f"t0={t0:g},{g}",
                            lambda m, task, y, x0, rng, xv, t0=t0, g=g:
                            ivd.methods.ot_ode(m, task.op, y, task.sigma_y, t_start=t0,
                                               gamma=g, steps=args.flow_steps, rng=rng)))
    if "TV" in args.methods:
        out.append(("TV", "lam on val", lambda m, task, y, x0, rng, xv: _tv(task, y, xv, args)))
    return out


def _tv(task, y, x_val, args):
    """TV with λ chosen on the same images (a reference, not a pick)."""
    def solve(yy, lam):
        return ivd.baselines.tv(task.op, yy, lam, iters=args.tv_iters)

    return _images.tune_and_solve(solve, args.lambdas, x_val, y, y, data_range=2.0)[0]


def run_dataset(dataset, model, x_val, args):
    rows = []
    for ti, task in enumerate(restoration.make_tasks(tuple(x_val.shape[1:]), x_val, args,
                                                     dataset)):
        noise_rng = ivd.random.Generator(args.seed + 7001 + 101 * ti)
        y = task.op.apply(x_val)
        y = y + task.sigma_y * noise_rng.normal(tuple(y.shape), like=x_val)
        x_start = ivd.random.Generator(args.seed + 5).normal(tuple(x_val.shape), like=x_val)
        for method, setting, run in _candidates(args):
            start = time.perf_counter()
            x_hat = run(model, task, y, x_start, ivd.random.Generator(args.seed + 11), x_val)
            seconds = time.perf_counter() - start
            s = _images.image_scores(x_hat, x_val, -1.0, 1.0)
            m, sd = _images.mean_std(s["psnr"])
            rows.append({"dataset": dataset, "task": task.name, "method": method,
                         "setting": setting, "psnr_mean": m, "psnr_std": sd,
                         "n": int(x_val.shape[0]), "n_finite": int(s["finite"].sum()),
                         "psnr": s["psnr"].tolist(), "seconds": seconds})
            print(f"  {dataset:7s} {task.name:28s} {method:8s} {setting:16s} PSNR {m:6.2f}",
                  flush=True)
    return rows


def picks(rows):
    """Per method: mean PSNR over tasks for each dataset and setting, the best setting, and
    the best setting per dataset and task (``per_task``). TV is a reference, not a pick."""
    out = {}
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "TV"):
        sub = [r for r in rows if r["method"] == method]
        datasets = list(dict.fromkeys(r["dataset"] for r in sub))
        score = {}
        for setting in dict.fromkeys(r["setting"] for r in sub):
            per = {ds: float(np.mean([r["psnr_mean"] for r in sub
                                      if r["dataset"] == ds and r["setting"] == setting]))
                   for ds in datasets}
            score[setting] = {**per, "mean": float(np.mean(list(per.values())))}
        best = max(score, key=lambda k: np.nan_to_num(score[k]["mean"], nan=-np.inf))
        per_task = {}
        for ds, task in dict.fromkeys((r["dataset"], r["task"]) for r in sub):
            cand = [r for r in sub if (r["dataset"], r["task"]) == (ds, task)]
            top = max(cand, key=lambda r: np.nan_to_num(r["psnr_mean"], nan=-np.inf))
            per_task[f"{ds}: {task}"] = top["setting"]
        out[method] = {"scores": score, "best": best, "per_task": per_task}
    return out


def plot(rows, path):
    """Mean validation PSNR against the candidate value, one line per dataset and task."""
    plt = _images.plt_module()
    if plt is None:
        return None
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, len(methods), figsize=(5.5 * len(methods), 3.8), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        sub = [r for r in rows if r["method"] == method]
        settings = list(dict.fromkeys(r["setting"] for r in sub))
        tasks = list(dict.fromkeys(r["task"] for r in sub))
        colors = plt.get_cmap("tab10").colors
        for ds, style in (("mnist", "-"), ("natural", "--")):
            for task in dict.fromkeys(r["task"] for r in sub if r["dataset"] == ds):
                ys = [next(r["psnr_mean"] for r in sub if r["dataset"] == ds
                           and r["task"] == task and r["setting"] == v) for v in settings]
                ax.plot(range(len(settings)), ys, style, marker="o", label=f"{ds}: {task}",
                        color=colors[tasks.index(task) % 10])
        ax.set_xticks(range(len(settings)))
        ax.set_xticklabels(settings)
        ax.set_ylabel("validation PSNR (dB)")
        ax.set_title(method)
    axes[0, 0].legend(fontsize=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _images.save_figure(fig, path)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4 digits, few steps (CI)")
    p.add_argument("--datasets", default="mnist,natural")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n-val", type=int, default=None, help="MNIST validation digits (16)")
    p.add_argument("--zetas", default=None, help="DPS-flow ζ grid (1,3,5,10,20)")
    p.add_argument("--etas", default=None, help="ΠGDM η candidates (0,1)")
    p.add_argument("--methods", default="DPS-flow,PiGDM,OT-ODE,TV",
                   help="which of DPS-flow, PiGDM, OT-ODE, TV (reference) to run")
    p.add_argument("--t-starts", default=None, help="OT-ODE start times (0.9,0.8,0.7,0.6,0.5)")
    p.add_argument("--gammas", default=None, help="OT-ODE gamma (constant,gamma_t)")
    p.add_argument("--tv-iters", type=int, default=None, help="(300)")
    p.add_argument("--flow-steps", type=int, default=None, help="(50)")
    p.add_argument("--pigdm-steps", type=int, default=None, help="(100)")
    p.add_argument("--blur-sigma", type=float, default=1.5)
    p.add_argument("--blur-size", type=int, default=5)
    add_run_arguments(p, "validation_choices")
    args = p.parse_args(argv)
    full = {"n_val": 16, "zetas": "1,3,5,10,20", "etas": "0,1", "flow_steps": 50,
            "pigdm_steps": 100, "t_starts": "0.9,0.8,0.7,0.6,0.5", "gammas": "constant,gamma_t",
            "tv_iters": 300}
    quick = {"n_val": 4, "zetas": "1,3", "etas": "0,1", "flow_steps": 10, "pigdm_steps": 20,
             "t_starts": "0.8,0.6", "gammas": "constant,gamma_t", "tv_iters": 50}
    fill_defaults(args, quick, full)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - {"DPS-flow", "PiGDM", "OT-ODE", "TV"})
    if unknown:
        p.error(f"--methods: unknown {unknown}; expected DPS-flow, PiGDM, OT-ODE, TV")
    args.zetas = [float(v) for v in str(args.zetas).split(",")]
    args.etas = [float(v) for v in str(args.etas).split(",")]
    args.t_starts = [float(v) for v in str(args.t_starts).split(",")]
    args.gammas = [v.strip() for v in str(args.gammas).split(",")]
    args.lambdas = list(LAMBDA_GRID)  # restoration's TV grid
    return args


def main(argv=None):
    args = parse(argv)
    torch = _images.setup_torch(args.threads)
    start = time.perf_counter()
    data_dir = args.data_dir or _images.default_mnist_dir()
    rows, skipped = [], []
    for dataset in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        model, source = _images.load_prior(dataset, args.weights_dir, args.device)
        if model is None:
            skipped.append(f"{dataset}: {source}")
            continue
        if dataset == "mnist":
            if not _images.mnist_available(data_dir):
                skipped.append(f"mnist: {_images.mnist_missing(args.data_dir)}")
                continue
            x_val, _ = _images.mnist_split(data_dir, args.n_val, 1, dtype=torch.float32,
                                           device=args.device)
        else:
            split = _images.natural_split(dtype=torch.float32, device=args.device)
            if split is None:
                skipped.append("natural: no held-out crops")
                continue
            x_val = split[0]
        print(f"{dataset}: prior {source}; {len(x_val)} validation images", flush=True)
        rows += run_dataset(dataset, model, x_val, args)
    if not rows:
        raise SystemExit("nothing to run: " + "; ".join(skipped))
    chosen = picks(rows)
    header = ["dataset", "task", "method", "setting", "PSNR (dB)", "finite"]
    table = [[r["dataset"], r["task"], r["method"], r["setting"],
              _images.fmt(r["psnr_mean"], r["psnr_std"], 2), f"{r['n_finite']}/{r['n']}"]
             for r in rows]
    lines = []
    for method, c in chosen.items():
        parts = "; ".join(f"{k}: " + ", ".join(f"{ds} {v:.2f}" for ds, v in sc.items())
                          for k, sc in c["scores"].items())
        lines.append(f"{method}: best {c['best']} (mean PSNR over tasks: {parts}); best per "
                     "task: " + "; ".join(f"{k} {v}" for k, v in c["per_task"].items()) + ".")
    notes = ("Validation images only (MNIST 9000–" f"{9000 + args.n_val - 1}, the two natural "
             "validation crops); PSNR mean ± std over images per task. " + " ".join(lines)
             + (" Skipped: " + "; ".join(skipped) + "." if skipped else "")
             + (" QUICK MODE: a smoke test; these picks mean nothing." if args.quick else ""))
    settings = {"seed": args.seed, "n_val_mnist": args.n_val, "zetas": args.zetas,
                "etas": args.etas, "flow_steps": args.flow_steps,
                "pigdm_steps": args.pigdm_steps, "t_starts": args.t_starts,
                "gammas": args.gammas, "tv_iters": args.tv_iters, "methods": args.methods,
                "blur_sigma": args.blur_sigma, "blur_size": args.blur_size,
                "picks": {m: c["best"] for m, c in chosen.items()},
                "picks_per_task": {m: c["per_task"] for m, c in chosen.items()},
                "scores": {m: c["scores"] for m, c in chosen.items()}}
    stem = args.stem or "validation_choices" + ("-quick" if args.quick else "")
    directory = results_dir(args.results_dir, args.quick)
    png = plot(rows, directory / f"{stem}.png")
    if png is not None:
        notes += f"\n\n![{stem}]({png.name})"
    write_results(stem, header, table, settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start, directory=directory)
    return rows, chosen


if __name__ == "__main__":
    main()
