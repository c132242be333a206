"""Per-step overhead of each integrator with a cheap exact prior.

A Gaussian prior (d = 16, full covariance, batch 64) costs about as much as the
integrator's own arithmetic, so the time per step next to the time of one prior
evaluation shows what the integrator adds: conversions between prediction kinds,
noise draws, the update itself. With a real network the evaluation dominates and the
ratio tends to the number of evaluations per step (1, or 2 for Heun).

Run ``python -m benchmarks.sampler_overhead [--quick]`` from the repository root. Writes
``benchmarks/results/[quick/]sampler_overhead[-quick].md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np

import invdiff as ivd

from ._common import write_results

D, BATCH, SEED = 16, 64, 0


class Counted:
    """The prior with a counter of its evaluations (the samplers' NFE)."""

    def __init__(self, model):
        self.model, self.nfe = model, 0
        self.process, self.prediction = model.process, model.prediction

    def __call__(self, x, t):
        self.nfe += 1
        return self.model(x, t)


def _prior(xp, process):
    rng = np.random.default_rng(SEED)
    q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    cov = (q * rng.uniform(0.1, 1.0, D)) @ q.T
    mean = rng.normal(size=D)
    return ivd.priors.GaussianPrior(xp.asarray(mean, dtype=xp.float32),
                                    xp.asarray(cov, dtype=xp.float32), process=process)


def _cases(steps):
    vp, ve = ivd.processes.VP.linear(), ivd.processes.VE.geometric(20.0, 0.02, steps)
    flow = ivd.processes.Flow.rectified()
    s = ivd.samplers
    return [
        ("ancestral", vp, lambda m, x, r: s.ancestral(m, x, steps=steps, rng=r)),
        ("ddim (eta=0)", vp, lambda m, x, r: s.ddim(m, x, steps=steps)),
        ("ddim (eta=1)", vp, lambda m, x, r: s.ddim(m, x, steps=steps, eta=1.0, rng=r)),
        ("langevin (K=1)", ve, lambda m, x, r: s.langevin(m, x, steps_each=1, rng=r,
                                                          final_denoise=False)),
        ("sde (VP)", vp, lambda m, x, r: s.sde(m, x, steps=steps, rng=r)),
        ("sde (flow)", flow, lambda m, x, r: s.sde(m, x, steps=steps, rng=r)),
        ("ode euler (flow)", flow, lambda m, x, r: s.ode(m, x, steps=steps)),
        ("ode heun (flow)", flow, lambda m, x, r: s.ode(m, x, steps=steps, method="heun")),
    ]


def _backends():
    out = []
    for name, module in [("numpy", "array_api_compat.numpy"),
                         ("array_api_strict", "array_api_strict"),
                         ("torch", "array_api_compat.torch")]:
        try:
            xp = importlib.import_module(module)
        except ImportError:
            continue
        if name == "torch":
            import torch

            torch.set_num_threads(1)  # tiny tensors: threads only add synchronisation
        out.append((name, xp))
    return out


def _best_time(fn, repeats):
    """Best of ``repeats`` runs: on a shared machine the minimum is the least disturbed."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(xp, name, process, run, steps, repeats):
    prior = _prior(xp, process)
    rng = ivd.random.Generator(SEED)
    x_init = rng.normal((BATCH, D), like=prior.mean)
    t_mid = 0.5 * (process.t_min + process.t_max)
    evals = max(200, 4 * steps)
    per_eval = _best_time(lambda: [prior(x_init, t_mid) for _ in range(evals)], repeats) / evals
    model = Counted(prior)
    run(model, x_init, rng)  # warm-up (caches of the prior, the process tables)
    model.nfe = 0
    total = _best_time(lambda: run(model, x_init, ivd.random.Generator(SEED)), repeats)
    nfe_per_step = model.nfe / repeats / steps
    per_step = total / steps
    return {"sampler": name, "steps": steps, "nfe_per_step": nfe_per_step,
            "step_us": 1e6 * per_step, "eval_us": 1e6 * per_eval,
            "ratio": per_step / per_eval,
            "overhead_us": 1e6 * (per_step - nfe_per_step * per_eval)}


def run(quick: bool):
    steps, repeats = (50, 3) if quick else (500, 5)
    rows = []
    for backend, xp in _backends():
        for name, process, fn in _cases(steps):
            row = measure(xp, name, process, fn, steps, repeats)
            rows.append({"backend": backend, **row})
    settings = {"d": D, "batch": BATCH, "dtype": "float32", "steps": steps,
                "repeats (best of)": repeats, "seed": SEED, "torch_threads": 1}
    return rows, settings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 steps, 3 repeats (CI)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows, settings = run(args.quick)
    header = ["backend", "sampler", "NFE/step", "time/step (us)", "1 prior eval (us)",
              "step / eval", "overhead/step (us)"]
    table = [[r["backend"], r["sampler"], f"{r['nfe_per_step']:.2f}", f"{r['step_us']:.0f}",
              f"{r['eval_us']:.0f}", f"{r['ratio']:.2f}", f"{r['overhead_us']:.0f}"]
             for r in rows]
    notes = ("Time per integrator step with an exact Gaussian prior (d=16, full covariance, "
             "batch 64, float32, CPU), next to one direct evaluation of the prior at the same "
             "batch. 'step / eval' is their ratio; 'overhead/step' = time/step − NFE/step × "
             "eval: what the integrator adds (prediction-kind conversion, noise, update). "
             "Langevin runs K=1 step per level over `steps` levels without the final denoise. "
             "Best of the repeats.")
    write_results("sampler_overhead" + ("-quick" if args.quick else ""), header, table,
                  settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start,
                  title="Sampler overhead per step (cheap Gaussian prior)")
    return rows


if __name__ == "__main__":
    main()
