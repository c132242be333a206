"""Cost of each method and of each guidance step, on one network, as ratios in one run.

* Every method end to end at its paper's default schedule (DMPS and DPS 1000 DDPM steps,
  ΠGDM 100 DDIM steps, the flows 50 Euler steps, QCS-SGM and QCS-SGM+ 232 × 5 Langevin
  steps): NFE, wall seconds per image, and time relative to DMPS (same network, same batch,
  same measurements; SR×4 for the linear methods, 1-bit CS with M = 200 for the quantized).
* DMPS-step / unguided-step: the DMPS pseudo-likelihood adds only SVD applications and
  elementwise work to an ancestral step (goal: overhead <= 3 % on a real network).
* DPS-step / DMPS-step and PiGDM-step / DMPS-step at equal NFE: the Tweedie methods
  backpropagate through the network (goal: DPS/DMPS >= 2.5).
* QCS-SGM+ (EP) per likelihood call at M = 400, 2000, 4000 (N = 784), batch 1 and 16, on
  torch and NumPy, next to the floor of its own matrix products (goal: <= 1.5x the floor)
  and to QCS-SGM; EP is O(M^2) per iteration once A A^T is diagonalised (the fitted exponent
  is printed).
* Array operations (torch profiler) per EP call and per DMPS step: each is a kernel launch on
  a GPU, so the count, not the CPU time, predicts the GPU overhead.

Run ``python -m benchmarks.speed [--quick] [--results-dir DIR] [--sections ep]``; writes
``benchmarks/results/speed.md`` and ``.json``. The network is the bundled MNIST prior
(28x28, batch 8); absolute times on this shared CPU machine are noisy, the ratios within one
run are what to read.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import invdiff as ivd

from . import _images
from ._common import results_dir, write_results
from ._timing import ep_floor, ep_problem, median_time, op_count


def _network(batch: int, weights_dir=None):
    import torch

    import invdiff_models as ivm

    torch.manual_seed(0)
    model = ivm.load("mnist", folder=weights_dir)  # timings do not depend on the weights
    x = torch.zeros(batch, 1, 28, 28)
    return model, x


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
        out[name] = median_time(run, repeats) / steps
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
    particles = 4 if quick else 64  # MCGdiff's default
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
        # the SVD methods at their defaults (MCGdiff's NFE counts every particle)
        "DDRM": lambda r: m.ddrm(model, op, y, 0.05, rng=r, steps=5 if quick else 20,
                                 return_info=True),
        "DDNM+": lambda r: m.ddnm(model, op, y, 0.05, rng=r, steps=ddim, return_info=True),
        f"MCGdiff ({particles} particles)": lambda r: m.mcgdiff(
            model, op, y, 0.05, rng=r, steps=ddim, n_particles=particles, return_info=True),
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


def ep_costs(Ms, batches, repeats: int, backends=("torch", "numpy")):
    """Seconds per QCS-SGM+ (EP, 5 iterations, 1-bit) likelihood call at each M and batch,
    next to the floor of its matrix products (``z = A x``, 2 products with the eigenbasis per
    iteration, ``A^T g``) and the QCS-SGM call; float64, one thread.

    Each number is the smallest of 3 medians over ``repeats`` calls, EP and floor measured in
    alternation, in CPU seconds of this process (``time.process_time``: one thread, so this
    is the call's own cost, not what other processes take from a shared machine).
    """
    import torch

    clock = time.process_time

    rows = []
    for backend in backends:
        like = torch.zeros(1, dtype=torch.float64) if backend == "torch" else np.zeros(1)
        for M in Ms:
            start = time.perf_counter()
            ep, qcs, x_all, t = ep_problem(M, max(batches), like)
            setup = time.perf_counter() - start  # the eigendecomposition of A A^T, once
            for batch in batches:
                x_t = x_all[:batch, ...]
                floor = ep_floor(ep, x_t)
                t_ep, t_floor, t_qcs = math.inf, math.inf, math.inf
                for _ in range(3):
                    t_ep = min(t_ep, median_time(lambda f=ep.score, x=x_t, s=t: f(x, s),
                                                 repeats, clock=clock))
                    t_floor = min(t_floor, median_time(floor, repeats, clock=clock))
                    t_qcs = min(t_qcs, median_time(lambda f=qcs.score, x=x_t, s=t: f(x, s),
                                                   repeats, clock=clock))
                rows.append({"backend": backend, "M": M, "batch": batch, "ep": t_ep,
                             "floor": t_floor, "ep_over_floor": t_ep / t_floor, "qcs": t_qcs,
                             "ep_setup": setup})
    ones = [r for r in rows if r["backend"] == backends[0] and r["batch"] == batches[0]]
    slope = float(np.polyfit(np.log([r["M"] for r in ones]), np.log([r["ep"] for r in ones]),
                             1)[0]) if len(ones) > 1 else math.nan
    return rows, slope


# measured with op_counts() at the commit before the EP/special-function rewrite (issue 17)
OPS_BEFORE = {"commit": "057a3ac", "ep_call_1bit": 4532, "ep_call_3bit": 4532, "dmps_step": 28}
# and after its first part (vectorised special functions, device-side convergence masks),
# before the EP loop was trimmed (first iteration specialised, damping and freezing folded)
OPS_INTERMEDIATE = {"commit": "5af99b8", "ep_call_1bit": 525, "ep_call_3bit": 1045}


class _ZeroEps:
    """A ScoreModel predicting eps = 0 in one operation: what a sampler step costs without
    its network."""

    prediction = "eps"

    def __init__(self, process):
        self.process = process

    def __call__(self, x_t, t):
        return 0.0 * x_t


def op_counts(M: int = 400):
    """Array operations (torch profiler, top-level aten ops) per EP call (1-bit and 3-bit,
    M measurements, batch 1, 5 iterations) and per DMPS step (SR x4 on 28x28, batch 8,
    network excluded: a one-operation eps = 0 model)."""
    import torch

    like = torch.zeros(1, dtype=torch.float64)
    out = {}
    for bits in (1, 3):
        ep, _, x_t, t = ep_problem(M, 1, like, bits=bits)
        out[f"ep_call_{bits}bit"] = op_count(lambda ep=ep, x_t=x_t, t=t: ep.score(x_t, t))
    proc = ivd.processes.VP.linear(1000)
    rng = ivd.random.Generator(0)
    op = ivd.operators.SuperResolution(4, in_shape=(1, 28, 28), kind="block")
    x_true = rng.uniform((8, 1, 28, 28), like=like, low=-1.0, high=1.0)
    y = op.apply(x_true)
    guidance = ivd.likelihoods.DMPS(op, y, 0.05, proc)
    model = _ZeroEps(proc)
    x_T = rng.normal(x_true.shape, like=like)

    def run(steps):
        return lambda: ivd.samplers.ancestral(model, x_T, guidance=guidance, scale=1.75,
                                              steps=steps, rng=0, clip_x0=(-1.0, 1.0))

    out["dmps_step"] = (op_count(run(20)) - op_count(run(10))) / 10
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--weights-dir", default=None,
                        help="folder with mnist.safetensors + mnist.json (default: bundled)")
    parser.add_argument("--results-dir", default=None,
                        help="where to write the results (default benchmarks/results)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--sections", default="methods,steps,ep",
                        help="comma-separated parts to run: methods, steps, ep (default all)")
    args = parser.parse_args(argv)
    sections = set(args.sections.split(","))
    if not sections <= {"methods", "steps", "ep"}:
        parser.error(f"--sections: choose among methods, steps, ep; received {args.sections}")
    _images.setup_torch(args.threads)
    start = time.perf_counter()
    steps, repeats = (3, 2) if args.quick else (20, 5)
    Ms = (100, 200, 400) if args.quick else (400, 2000, 4000)
    batches = (1, 16)
    methods = method_costs(weights_dir=args.weights_dir, quick=args.quick) \
        if "methods" in sections else []
    step = guidance_costs(steps, repeats, weights_dir=args.weights_dir) \
        if "steps" in sections else {}
    ep_rows, slope = ep_costs(Ms, batches, repeats) if "ep" in sections else ([], math.nan)
    ops = op_counts(Ms[-1] if args.quick else 400) if "ep" in sections else {}

    header = ["measure", "value"]
    table = [[f"{r['method']}: NFE, s / image, time / DMPS (per NFE / DMPS)",
              f"{r['nfe']}, {r['seconds_per_image']:.2f} s, {r['time_vs_dmps']:.2f}x "
              f"({r['per_nfe_vs_dmps']:.2f}x)"] for r in methods]
    if step:
        table += [
            ["unguided step (ms)", f"{1e3 * step['unguided']:.1f}"],
            ["DMPS step (ms)", f"{1e3 * step['dmps']:.1f}"],
            ["DMPS overhead (DMPS / unguided - 1)",
             f"{100 * (step['dmps'] / step['unguided'] - 1):.1f} %"],
            ["DPS / DMPS", f"{step['dps'] / step['dmps']:.2f}"],
            ["PiGDM / DMPS", f"{step['pigdm'] / step['dmps']:.2f}"],
        ]
    for r in ep_rows:
        table.append([f"{r['backend']}, M = {r['M']}, batch {r['batch']}: EP call / floor "
                      "(ms); QCS call (ms)",
                      f"{1e3 * r['ep']:.2f} / {1e3 * r['floor']:.2f} = "
                      f"{r['ep_over_floor']:.2f}x; {1e3 * r['qcs']:.2f} "
                      f"(EP setup {r['ep_setup']:.2f} s)"])
    if ep_rows:
        table.append(["EP cost exponent in M (fit, torch, batch 1)", f"{slope:.2f}"])
    for key, label in (("ep_call_1bit", "array operations per EP call, 1 bit"),
                       ("ep_call_3bit", "array operations per EP call, 3 bits"),
                       ("dmps_step", "array operations per DMPS step (network excluded)")):
        if key in ops:
            before = f"before: {OPS_BEFORE[key]}"
            if key in OPS_INTERMEDIATE:
                before += f" at {OPS_BEFORE['commit']}, {OPS_INTERMEDIATE[key]} at " \
                          f"{OPS_INTERMEDIATE['commit']}"
            table.append([f"{label} ({before})", f"{ops[key]:g}"])
    notes = ("End to end: each method once at its default schedule on the same 8 images "
             "(SR x4 block, sigma_y = 0.05; 1-bit CS, M = 200, sigma = 0.05 for QCS-SGM(+) "
             "and the quantized DAPS row); DAPS's 100 Langevin steps per level need no "
             "network call (likelihood gradients only), so its time / NFE exceeds DMPS's; "
             "'per NFE' divides out the schedule length. Per step: ancestral steps on the "
             "bundled MNIST prior, batch 8, SR x4 (block) with sigma_y = "
             "0.05; medians over repeats. EP: 1-bit, N = 784, 5 iterations (tol = 1e-300: no "
             "early stop), float64, one thread, CPU seconds of the process (not wall time: "
             "the machine is shared), on torch and NumPy; the floor is the same "
             "call's matrix products alone (z = A x, two products with the eigenbasis of "
             "A A^T per iteration, A^T g): goal EP <= 1.5x floor. The one-time "
             "eigendecomposition is listed separately. The EP exponent is the slope of "
             "log(time) against log(M); O(M^2) work shows as 2 once the matrix-vector "
             "products dominate the fixed per-call overhead. Array operations: top-level "
             "aten ops in the torch profiler (kernel launches on a GPU), M = 400, batch 1; "
             f"'before' is the same count at commit {OPS_BEFORE['commit']}, before the "
             "truncated-normal moments were vectorised, and at "
             f"{OPS_INTERMEDIATE['commit']}, before the EP loop was trimmed.")
    settings = {"seed": 0, "steps": steps, "repeats": repeats, "Ms": list(Ms), "batch": 8,
                "ep_batches": list(batches), "sections": sorted(sections),
                "torch_threads": _threads()}
    rows = {"methods": methods, "step_seconds": step, "ep": ep_rows, "ep_exponent": slope,
            "op_counts": ops}
    partial = sorted(sections) != ["ep", "methods", "steps"]
    stem = "speed" + ("-" + "-".join(sorted(sections)) if partial else "") \
        + ("-quick" if args.quick else "")
    directory = results_dir(args.results_dir, args.quick)
    png = plot(methods, ep_rows, directory / f"{stem}.png")
    if png is not None:
        notes += f"\n\n![{stem}]({png.name})"
    write_results(stem, header, table, settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start, directory=directory)
    assert all(math.isfinite(v) for v in step.values())
    assert all(math.isfinite(r["seconds_per_image"]) for r in methods)
    assert all(math.isfinite(r["ep"]) and r["floor"] > 0 for r in ep_rows)
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
    if methods:
        ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("seconds / image")
    ax.set_title("End to end, default schedules (same network, batch)")
    for (backend, batch), style in zip(sorted({(r["backend"], r["batch"]) for r in ep_rows}),
                                        ("o", "s", "^", "v", "D", "x"), strict=False):
        sel = [r for r in ep_rows if r["backend"] == backend and r["batch"] == batch]
        Ms = [r["M"] for r in sel]
        line, = bx.loglog(Ms, [1e3 * r["ep"] for r in sel], style + "-",
                          label=f"EP, {backend}, batch {batch}")
        bx.loglog(Ms, [1e3 * r["floor"] for r in sel], style + ":", color=line.get_color(),
                  label=f"its matrix products ({backend}, batch {batch})")
    bx.set_xlabel("M (measurements)")
    bx.set_ylabel("ms per call")
    bx.set_title("QCS-SGM+ likelihood (5 EP iterations) against M (N = 784)")
    if ep_rows:
        bx.legend(fontsize=6)
    return _images.save_figure(fig, path)


def _threads():
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
