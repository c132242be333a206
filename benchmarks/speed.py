"""Cost per step of each guidance, on one network, measured as ratios in one run.

* DMPS-step / unguided-step: the DMPS pseudo-likelihood adds only SVD applications and
  elementwise work to an ancestral step (goal: overhead <= 3 % on a real network).
* DPS-step / DMPS-step and PiGDM-step / DMPS-step at equal NFE: the Tweedie methods
  backpropagate through the network (goal: DPS/DMPS >= 2.5).
* QCS-SGM+ (EP) vs QCS-SGM per likelihood call at M = 400, 2000, 4000 (N = 784): EP is
  O(M^2) per iteration once A A^T is diagonalised (the fitted exponent is printed).

Run ``python -m benchmarks.speed [--quick]``; writes ``benchmarks/results/speed.md`` and
``.json``. The network is the bundled MNIST prior (28x28, batch 8); absolute times on this
shared CPU machine are noisy, the ratios within one run are what to read.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import invdiff as ivd

from ._common import write_results


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
    args = parser.parse_args(argv)
    start = time.perf_counter()
    steps, repeats = (3, 2) if args.quick else (20, 5)
    Ms = (100, 200, 400) if args.quick else (400, 2000, 4000)
    step = guidance_costs(steps, repeats, weights_dir=args.weights_dir)
    ep_rows, slope = ep_costs(Ms, repeats)

    header = ["measure", "value"]
    table = [
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
    notes = ("Ancestral steps on the bundled MNIST prior, batch 8, SR x4 (block) with sigma_y = "
             "0.05; medians over repeats. EP: 1-bit, N = 784, 5 iterations (tol = 1e-300: no "
             "early stop), one "
             "sample; the one-time eigendecomposition is listed separately. The EP exponent is "
             "the slope of log(time) against log(M); O(M^2) work shows as 2 once the "
             "matrix-vector products dominate the fixed per-call overhead.")
    settings = {"steps": steps, "repeats": repeats, "Ms": list(Ms), "batch": 8,
                "torch_threads": _threads()}
    rows = {"step_seconds": step, "ep": ep_rows, "ep_exponent": slope}
    write_results("speed" + ("-quick" if args.quick else ""), header, table, settings=settings,
                  rows=rows, notes=notes, wall_seconds=time.perf_counter() - start)
    assert all(math.isfinite(v) for v in step.values())
    return rows


def _threads():
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
