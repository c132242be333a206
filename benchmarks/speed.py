"""Cost of each method and of each guidance step, on one network, as ratios in one run.

* Every method end to end at its paper's default schedule (DMPS and DPS 1000 DDPM steps,
  ΠGDM 100 DDIM steps, the flows 50 Euler steps, QCS-SGM and QCS-SGM+ 232 × 5 Langevin
  steps): NFE, wall seconds per image, and time relative to DMPS (same network, same batch,
  same measurements; SR×4 for the linear methods, 1-bit CS with M = 200 for the quantized).
* DMPS-step / unguided-step: the DMPS pseudo-likelihood adds only SVD applications and
  elementwise work to an ancestral step (goal: overhead <= 3 % on a real network).
* DPS-step / DMPS-step and PiGDM-step / DMPS-step at equal NFE: the Tweedie methods
  backpropagate through the network (goal: DPS/DMPS >= 2.5).
* QCS-SGM+ (EP) vs QCS-SGM per likelihood call at M = 400, 2000, 4000 (N = 784): EP is
  O(M^2) per iteration once A A^T is diagonalised (the fitted exponent is printed).

Run ``python -m benchmarks.speed [--quick] [--results-dir DIR]``; writes
``benchmarks/results/speed.md`` and ``.json``. The network is the bundled MNIST prior
(28x28, batch 8); absolute times on this shared CPU machine are noisy, the ratios within one
run are what to read.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import time

import numpy as np

import invdiff as ivd

from . import _images
from ._common import RESULTS, write_results


def _network(batch: int, weights_dir=None):
    import torch

    import invdiff_models as ivm

    torch.manual_seed(0)
    model = ivm.load("mnist", folder=weights_dir)  # timings do not depend on the weights
    x = torch.zeros(batch, 1, 28, 28)
    return model, x


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def guidance_costs(steps: int, repeats: int, batch: int = 8, weights_dir=None):
    """Seconds per ancestral step: unguided, DMPS, DPS, PiGDM (same network, batch, steps)."""
    model, x_like = _network(batch, weights_dir)
    import torch

    rng = ivd.random.Generator(0)
    x_true = torch.rand(batch, 1, 28, 28) * 2 - 1
    op = ivd.operators.SuperResolution(4, in_shape=(1, 28, 28), kind="block")
    y = op.apply(x_true) + 0.05 * rng.normal(op.apply(x_true).shape, like=x_true)
    guidances = {
        "unguided": None,
        "dmps": ivd.likelihoods.DMPS(op, y, 0.05, model.process),
        "dps": ivd.likelihoods.DPS(op, y, model, zeta=0.3),
        "pigdm": ivd.likelihoods.PiGDM(op, y, 0.05, model),
    }
    out = {}
    for name, g in guidances.items():
        def run(g=g, weighting="unit" if name == "dps" else "ddpm"):
            ivd.samplers.ancestral(model, rng.normal(x_like.shape, like=x_like), guidance=g,
                                   steps=steps, rng=rng, weighting=weighting)
        run()  # warm-up (allocations, caches)
        out[name] = _median_time(run, repeats) / steps
    return out


def decoupled_runs(model, op, y, A, lower, upper, quick):
    """DiffPIR (100 steps), DAPS (200 levels x 5 ODE + 100 Langevin steps; SR×4 and 1-bit CS)
    and RED-diff (1000 Adam steps) at their defaults."""
    m = ivd.methods
    diffpir, levels, langevin, red = (5, 3, 10, 10) if quick else (100, 200, 100, 1000)
    return {
        "DiffPIR": lambda r: m.diffpir(model, op, y, 0.05, rng=r, steps=diffpir,
                                       return_info=True),
        "DAPS": lambda r: m.daps(model, op, y, 0.05, rng=r, annealing_steps=levels,
                                 langevin_steps=langevin, return_info=True),
        "DAPS (1-bit, M = 200)": lambda r: m.daps(model, A, (lower, upper), 0.05, rng=r,
                                                  in_shape=(1, 28, 28), annealing_steps=levels,
                                                  langevin_steps=langevin, return_info=True),
        "RED-diff": lambda r: m.red_diff(model, op, y, rng=r, steps=red, return_info=True),
    }


def method_costs(batch: int = 8, weights_dir=None, quick: bool = False):
    """End-to-end wall time of every method at its default schedule: a list of rows."""
    import torch

    model, _ = _network(batch, weights_dir)
    rng = ivd.random.Generator(2)
    x_true = rng.uniform((batch, 1, 28, 28), like=torch.zeros(1), low=-1.0, high=1.0)
    op = ivd.operators.SuperResolution(4, in_shape=(1, 28, 28), kind="block")
    y = op.apply(x_true) + 0.05 * rng.normal(tuple(op.apply(x_true).shape), like=x_true)
    A = ivd.operators.gaussian_matrix(200, 784, rng, like=x_true)
    z = x_true.reshape(batch, -1) @ A.T
    lower = torch.where(z >= 0, 0.0, -math.inf)
    upper = torch.where(z >= 0, math.inf, 0.0)
    ddpm, ddim, flow, levels = (10, 5, 5, 10) if quick else (1000, 100, 50, 232)
    ve = ivd.processes.VE.geometric(100.0, 0.02, levels)  # the reference's, in [-1, 1] units
    m = ivd.methods
    linear = {
        "DMPS": lambda r: m.dmps(model, op, y, 0.05, rng=r, steps=ddpm, return_info=True),
        "DPS": lambda r: m.dps(model, op, y, rng=r, steps=ddpm, return_info=True),
        "PiGDM": lambda r: m.pigdm(model, op, y, 0.05, rng=r, steps=ddim, return_info=True),
        "DMPS-flow": lambda r: m.dmps_flow(model, op, y, 0.05, rng=r, steps=flow,
                                           return_info=True),
        "DPS-flow": lambda r: m.dps_flow(model, op, y, rng=r, steps=flow, return_info=True),
        "OT-ODE": lambda r: m.ot_ode(model, op, y, 0.05, rng=r, steps=flow, return_info=True),
        "QCS-SGM": lambda r: m.qcs_sgm(model, A, lower, upper, 0.05, rng=r, process=ve,
                                       in_shape=(1, 28, 28), return_info=True),
        "QCS-SGM+ (EP 5)": lambda r: m.qcs_sgm_plus(model, A, lower, upper, 0.05, rng=r,
                                                    process=ve, in_shape=(1, 28, 28),
                                                    return_info=True),
        **decoupled_runs(model, op, y, A, lower, upper, quick),
    }
    rows = []
    for name, run in linear.items():
        start = time.perf_counter()
        _, info = run(ivd.random.Generator(3))
        seconds = time.perf_counter() - start
        rows.append({"method": name, "nfe": info["nfe"], "seconds_per_image": seconds / batch})
    base = rows[0]
    for r in rows:
        r["time_vs_dmps"] = r["seconds_per_image"] / base["seconds_per_image"]
        r["per_nfe_vs_dmps"] = r["time_vs_dmps"] * base["nfe"] / r["nfe"]
    return rows


def ep_costs(Ms, repeats: int, N: int = 784, batch: int = 1):
    """Seconds per likelihood call of QCS-SGM and QCS-SGM+ (EP, 5 iterations) at each M."""
    rng = ivd.random.Generator(1)
    like = np.zeros(1)
    ve = ivd.processes.VE.geometric(50.0, 0.01, 232)
    rows = []
    for M in Ms:
        A = ivd.operators.gaussian_matrix(M, N, rng, like=like)
        x = rng.uniform((batch, N), like=like)
        z = x @ A.T + 0.1 * rng.normal((batch, M), like=like)
        lower = np.where(z >= 0, 0.0, -np.inf)[0]
        upper = np.where(z >= 0, np.inf, 0.0)[0]
        qcs = ivd.likelihoods.QuantizedDiagonal(A, lower, upper, 0.1, ve)
        start = time.perf_counter()
        ep = ivd.likelihoods.QuantizedEP(A, lower, upper, 0.1, ve, iters=5, tol=1e-300)
        ep.score(x, 1.0)  # the eigendecomposition of A A^T happens once per operator
        setup = time.perf_counter() - start
        x_t = x + rng.normal(x.shape, like=like)
        t_qcs = _median_time(lambda f=qcs.score, x=x_t: f(x, 1.0), repeats)
        t_ep = _median_time(lambda f=ep.score, x=x_t: f(x, 1.0), repeats)
        rows.append({"M": M, "qcs": t_qcs, "ep": t_ep, "ep_setup": setup})
    logM = np.log([r["M"] for r in rows])
    slope = float(np.polyfit(logM, np.log([r["ep"] for r in rows]), 1)[0])
    return rows, slope


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--weights-dir", default=None,
                        help="folder with mnist.safetensors + mnist.json (default: bundled)")
    parser.add_argument("--results-dir", default=None,
                        help="where to write the results (default benchmarks/results)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    _images.setup_torch(args.threads)
    start = time.perf_counter()
    steps, repeats = (3, 2) if args.quick else (20, 5)
    Ms = (100, 200, 400) if args.quick else (400, 2000, 4000)
    methods = method_costs(weights_dir=args.weights_dir, quick=args.quick)
    step = guidance_costs(steps, repeats, weights_dir=args.weights_dir)
    ep_rows, slope = ep_costs(Ms, repeats)

    header = ["measure", "value"]
    table = [[f"{r['method']}: NFE, s / image, time / DMPS (per NFE / DMPS)",
              f"{r['nfe']}, {r['seconds_per_image']:.2f} s, {r['time_vs_dmps']:.2f}x "
              f"({r['per_nfe_vs_dmps']:.2f}x)"] for r in methods]
    table += [
        ["unguided step (ms)", f"{1e3 * step['unguided']:.1f}"],
        ["DMPS step (ms)", f"{1e3 * step['dmps']:.1f}"],
        ["DMPS overhead (DMPS / unguided - 1)",
         f"{100 * (step['dmps'] / step['unguided'] - 1):.1f} %"],
        ["DPS / DMPS", f"{step['dps'] / step['dmps']:.2f}"],
        ["PiGDM / DMPS", f"{step['pigdm'] / step['dmps']:.2f}"],
    ]
    for r in ep_rows:
        table.append([f"M = {r['M']}: QCS / EP call (ms)",
                      f"{1e3 * r['qcs']:.2f} / {1e3 * r['ep']:.2f} "
                      f"(EP setup {r['ep_setup']:.2f} s)"])
    table.append(["EP cost exponent in M (fit)", f"{slope:.2f}"])
    notes = ("End to end: each method once at its default schedule on the same 8 images "
             "(SR x4 block, sigma_y = 0.05; 1-bit CS, M = 200, sigma = 0.05 for QCS-SGM(+) "
             "and the quantized DAPS row); DAPS's 100 Langevin steps per level need no "
             "network call (likelihood gradients only), so its time / NFE exceeds DMPS's; "
             "'per NFE' divides out the schedule length. Per step: ancestral steps on the "
             "bundled MNIST prior, batch 8, SR x4 (block) with sigma_y = "
             "0.05; medians over repeats. EP: 1-bit, N = 784, 5 iterations (tol = 1e-300: no "
             "early stop), one "
             "sample; the one-time eigendecomposition is listed separately. The EP exponent is "
             "the slope of log(time) against log(M); O(M^2) work shows as 2 once the "
             "matrix-vector products dominate the fixed per-call overhead.")
    settings = {"seed": 0, "steps": steps, "repeats": repeats, "Ms": list(Ms), "batch": 8,
                "torch_threads": _threads()}
    rows = {"methods": methods, "step_seconds": step, "ep": ep_rows, "ep_exponent": slope}
    stem = "speed" + ("-quick" if args.quick else "")
    directory = pathlib.Path(args.results_dir) if args.results_dir else RESULTS
    png = plot(methods, ep_rows, directory / f"{stem}.png")
    if png is not None:
        notes += f"\n\n![{stem}]({png.name})"
    write_results(stem, header, table, settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start, directory=directory)
    assert all(math.isfinite(v) for v in step.values())
    assert all(math.isfinite(r["seconds_per_image"]) for r in methods)
    return rows


def plot(methods, ep_rows, path):
    """Seconds per image of each method, and QCS vs EP cost per call against M; or None."""
    plt = _images.plt_module()
    if plt is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.8))
    names = [r["method"] for r in methods]
    ax.bar(range(len(names)), [r["seconds_per_image"] for r in methods], color="tab:blue")
    for i, r in enumerate(methods):
        ax.text(i, r["seconds_per_image"], f"{r['nfe']} NFE", ha="center", va="bottom",
                fontsize=7)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("seconds / image")
    ax.set_title("End to end, default schedules (same network, batch)")
    Ms = [r["M"] for r in ep_rows]
    bx.loglog(Ms, [1e3 * r["qcs"] for r in ep_rows], "o-", label="QCS-SGM likelihood")
    bx.loglog(Ms, [1e3 * r["ep"] for r in ep_rows], "s-", label="QCS-SGM+ (EP, 5 iterations)")
    bx.set_xlabel("M (measurements)")
    bx.set_ylabel("ms per call")
    bx.set_title("Likelihood cost against M (N = 784)")
    bx.legend(fontsize=8)
    return _images.save_figure(fig, path)


def _threads():
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
