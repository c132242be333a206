"""Throughput of the sweep engine on 1 and 2 Dask workers, and its cost per unit.

* Workload: one sweep of identical-cost units, DMPS (``--steps``) on SR×4 (block) of
  ``--batch`` held-out MNIST digits per unit, ``--units`` units, the bundled MNIST prior;
  one torch thread per worker (and for the serial and direct runs).
* Units per second for ``--scheduler serial`` and for a ``LocalCluster`` of 1 and 2 worker
  processes (goal: ≥ 1.7× from 1 to 2 workers on 2 cores). Each cluster is warmed first
  (every worker loads the prior and the data once, as it does in any long sweep), so the
  rate is the steady state.
* Overhead per unit against the recipe (goal: ≤ 5 %): the wall time per unit on one worker
  (the serial run's, or the cluster's workers / rate) over the recipe's own seconds inside
  the units of the same run, minus 1 — measurement, metrics, record writing, and for Dask
  scheduling and transfers. Both numbers come from one run, so a busy machine slows both
  alike. The recipe is also called directly on the first ``--direct`` problems, to check
  that inside a unit it costs what it costs alone.
* The scheduler's own cost per task (a no-op task mapped ``--noop`` times over the 2-worker
  cluster), and the bytes per record written (JSON) and per unit of samples (``.npz``).

Run ``python -m benchmarks.sweep_scaling [--quick]``; writes
``benchmarks/results/[quick/]sweep_scaling[-quick].md`` and ``.json``. Timings are wall clock
on the machine it runs on: run it when nothing else does (the load average at the start is
recorded).
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import shutil
import statistics
import tempfile
import time

import invdiff as ivd
import invdiff.sweep as sw

from . import _images
from ._common import fill_defaults, results_dir, write_results


def spec(args, seed=0):
    return {
        "name": "scaling", "seed": seed, "batch": args.batch, "samples": True,
        "priors": {"mnist": {"bundled": "mnist"}},
        "data": {"mnist": {"prior": "mnist", "source": "mnist",
                           "test": args.units * args.batch, "val": 1,
                           **({"dir": args.data_dir} if args.data_dir else {})}},
        "tasks": {"sr4": {"operator": "super_resolution", "factor": 4, "kind": "block",
                          "sigma_y": 0.05}},
        "methods": {"DMPS": {"steps": args.steps}},
    }


def direct_seconds(args, n) -> list[float]:
    """Wall time of the recipe called alone on the problems of the first ``n`` units."""
    import torch

    from invdiff.sweep import _execute, _priors

    torch.set_num_threads(1)
    sweep = sw.load_spec(spec(args))
    times = []
    for unit in sweep.units()[:n]:
        s = unit.spec
        model = _priors.load_prior("mnist", s["prior"]["spec"], sweep.base, "cpu")
        p = _execute.Problem(s, sweep.base, model, "torch", "cpu")
        x_init, rng = p.start("normal"), p.rng()
        start = time.perf_counter()
        ivd.methods.dmps(model, p.op, p.y, p.sigma_y, x_init=x_init, rng=rng, steps=args.steps)
        times.append(time.perf_counter() - start)
    return times


def _warm(prior, base, data, ids):
    from invdiff.sweep import _data, _priors

    _priors.load_prior("mnist", prior, base, "cpu")
    _data.images("mnist", data, base, ids, "test")
    return os.getpid()


def cluster_rate(args, workers: int, out: pathlib.Path) -> dict:
    import dask
    import distributed

    from invdiff.sweep._dask import _worker_environ

    sweep = sw.load_spec(spec(args))
    unit = sweep.units()[0]
    # the workers of `--scheduler local` (without Dask's MALLOC_TRIM_THRESHOLD_)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                           processes=True, silence_logs=logging.ERROR,
                                           dashboard_address=None)
    with cluster as c:
        with distributed.Client(c) as client:
            client.run(_warm, unit.spec["prior"]["spec"], str(sweep.base),
                       unit.spec["data"], list(unit.images))
            summary = sw.run(sweep, out, scheduler=c.scheduler_address, progress=False,
                             threads=1)
            noop = None
            if workers == max(args.workers):
                start = time.perf_counter()
                futures = client.map(_noop, range(args.noop), pure=False)
                client.gather(futures)
                noop = (time.perf_counter() - start) / args.noop
    return {"seconds": summary["seconds"], "units": summary["computed"],
            "recipe_seconds": recipe_seconds(out), "noop_seconds_per_task": noop}


def _noop(i):
    return i


def recipe_seconds(out: pathlib.Path) -> list[float]:
    """The recipe's own seconds inside each unit of a run (``cost.seconds`` of the records)."""
    import json

    return [json.loads(p.read_text())["cost"]["seconds"]
            for p in (out / "records").glob("*.json")]


def record_sizes(out: pathlib.Path) -> dict:
    recs = [p.stat().st_size for p in (out / "records").glob("*.json")]
    samples = [p.stat().st_size for p in (out / "samples").glob("*.npz")]
    return {"record_bytes": statistics.mean(recs),
            "samples_bytes": statistics.mean(samples) if samples else 0}


def plot(rows, path):
    """Units per second of each run, and the ideal linear scaling of the 1-worker rate."""
    plt = _images.plt_module()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r["run"].replace("engine, ", "").replace("LocalCluster ", "") for r in rows]
    ax.bar(range(len(rows)), [r["units_per_second"] for r in rows], color="tab:blue")
    one = next((r for r in rows if r["speedup"] == 1.0), None)
    for i, r in enumerate(rows):
        if r["speedup"] is not None and one is not None:
            ideal = one["units_per_second"] * r["workers"] / one["workers"]
            ax.plot([i - 0.4, i + 0.4], [ideal] * 2, color="k", linewidth=1)
            ax.text(i, r["units_per_second"], f"{r['speedup']:.2f}x", ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("units / s")
    ax.set_title("sweep throughput (black: 1-worker rate x workers)", fontsize=9)
    return _images.save_figure(fig, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="8 units of 2 digits, 10 steps (CI)")
    p.add_argument("--units", type=int, default=None, help="units (full: 16)")
    p.add_argument("--batch", type=int, default=None, help="digits per unit (full: 8)")
    p.add_argument("--steps", type=int, default=None, help="DMPS steps (full: 100)")
    p.add_argument("--workers", default="1,2", help="cluster sizes (default 1,2)")
    p.add_argument("--noop", type=int, default=None, help="no-op tasks (full: 2000)")
    p.add_argument("--direct", type=int, default=4,
                   help="units whose recipe is also called directly (default 4)")
    p.add_argument("--data-dir", default=None, help="MNIST folder (default $INVDIFF_MNIST_DIR)")
    p.add_argument("--stem", default=None)
    p.add_argument("--results-dir", default=None)
    args = p.parse_args(argv)
    full = {"units": 16, "batch": 8, "steps": 100, "noop": 2000}
    quick = {"units": 8, "batch": 2, "steps": 10, "noop": 300}
    fill_defaults(args, quick, full)
    args.workers = [int(w) for w in args.workers.split(",")]
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    start = time.perf_counter()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sweep_scaling_"))
    try:
        direct = direct_seconds(args, min(args.units, args.direct))
        serial = sw.run(spec(args), tmp / "serial", scheduler="serial", progress=False,
                        threads=1)
        serial["recipe_seconds"] = recipe_seconds(tmp / "serial")
        sizes = record_sizes(tmp / "serial")
        rates = {w: cluster_rate(args, w, tmp / f"dask{w}") for w in args.workers}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    recipe = statistics.mean(direct)
    rows = [{"run": "recipe called directly", "units_per_second": 1 / recipe,
             "seconds_per_unit": recipe, "recipe_seconds_per_unit": recipe, "overhead": None,
             "speedup": None}]

    def row(name, seconds_per_unit, workers, r):
        inside = statistics.mean(r["recipe_seconds"])
        return {"run": name, "units_per_second": workers / seconds_per_unit,
                "seconds_per_unit": seconds_per_unit, "recipe_seconds_per_unit": inside,
                "overhead": seconds_per_unit / inside - 1, "speedup": None}

    rows.append(row("engine, serial", serial["seconds"] / serial["computed"], 1, serial))
    base_rate = None
    for w, r in rates.items():
        rate = r["units"] / r["seconds"]
        base_rate = base_rate or rate
        rows.append({**row(f"engine, LocalCluster {w} worker(s)", w / rate, w, r),
                     "speedup": rate / base_rate, "workers": w})
    noop = next(r["noop_seconds_per_task"] for r in rates.values()
                if r["noop_seconds_per_task"] is not None)
    header = ["run", "units / s", "s / unit (per worker)", "recipe s / unit",
              "overhead vs recipe", "speedup"]
    table = [[r["run"], f"{r['units_per_second']:.3f}", f"{r['seconds_per_unit']:.3f}",
              f"{r['recipe_seconds_per_unit']:.3f}",
              "-" if r["overhead"] is None else f"{100 * r['overhead']:+.1f}%",
              "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"] for r in rows]
    settings = {"seed": 0, "units": args.units, "batch": args.batch, "steps": args.steps,
                "task": "SR x4 block, sigma_y = 0.05", "method": "DMPS",
                "prior": "bundled mnist", "torch_threads_per_worker": 1,
                "workers": args.workers, "cpu_count": os.cpu_count(),
                "load_average_at_start": load, "direct_units": len(direct),
                "scheduler_seconds_per_noop_task": noop, **sizes}
    two = [r for r in rows if r["speedup"] is not None]
    notes = (f"{args.units} units of DMPS ({args.steps} steps) on SR×4 of {args.batch} "
             "held-out MNIST digits each; one torch thread per worker. 'overhead' is the "
             "wall time per unit on one worker (the serial run's, or the cluster's workers / "
             "rate) against the recipe's own seconds inside the units of the same run "
             "(measurement, metrics, record writing, scheduling and transfers); 'recipe "
             f"called directly' times the recipe alone on the first {len(direct)} problems, "
             "a check that a unit's recipe costs what the recipe costs. The scheduler costs "
             f"{1e3 * noop:.2f} ms per (no-op) task; a record is "
             f"{sizes['record_bytes'] / 1e3:.1f} kB of JSON and the samples of a unit "
             f"{sizes['samples_bytes'] / 1e3:.1f} kB of npz. Goals: speedup >= 1.7x with 2 "
             f"workers on 2 cores, overhead <= 5 %. Load average at the start: {load}.")
    if len(two) > 1:
        notes += f" Measured speedup {two[-1]['speedup']:.2f}x."
    if args.quick:
        notes += (" QUICK MODE: units of a few tens of milliseconds, so fixed costs weigh "
                  "far more than in a real sweep; a smoke test of the script, not the numbers "
                  "to quote.")
    stem = args.stem or "sweep_scaling" + ("-quick" if args.quick else "")
    directory = results_dir(args.results_dir, args.quick)
    directory.mkdir(parents=True, exist_ok=True)
    figure = plot(rows, directory / f"{stem}.png")
    if figure is not None:
        notes += f"\n\n![{figure.stem}]({figure.name})"
    write_results(stem, header, table, settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start, directory=directory,
                  title=stem.replace("-quick", " (quick)"))
    return rows


if __name__ == "__main__":
    main()
