"""Calibration of pixel-wise 90 % credible intervals on held-out MNIST digits: DMPS, DPS,
DDRM and MCGdiff side by side.

For each held-out test image (indices 9100 on) and each task, K posterior samples are
drawn with each method on the bundled MNIST prior; the empirical 5 % and 95 % quantiles of
each pixel form its 90 % credible interval. MCGdiff's K samples come from K independent
particle systems (one sample each, the MCGdiff paper's protocol), so that they are as
independent as the other methods' samples. The coverage is the fraction of true pixels that
fall inside their interval: a calibrated posterior gives 0.90. The interval width and the
coverage restricted to the pixels where the truth is not background are reported too,
since most MNIST pixels are background (-1) and are easy to cover.

Run ``python -m benchmarks.coverage [--quick] [--weights-dir DIR]``; writes
``benchmarks/results/[quick/]coverage[-quick].md`` and ``.json``. Whatever the numbers are, they are
reported: nothing is tuned to reach 0.90.
"""

from __future__ import annotations

import argparse
import time

import invdiff as ivd
from invdiff._posterior import summarize

from ._common import write_results
from ._images import (
    default_mnist_dir,
    load_prior,
    mnist_available,
    mnist_missing,
    mnist_split,
    setup_torch,
)


def tasks(torch):
    """The measurement operators (all on 1x28x28) and their noise levels (data in [-1, 1])."""
    mask = torch.zeros((1, 28, 28), dtype=torch.bool)
    mask[:, ::2, :] = True  # every other row observed
    return {  # operator, sigma_y, DPS's zeta (its configs: 0.3 SR, 0.5 inpainting)
        "SR x4 (block), sigma_y=0.05": (
            ivd.operators.SuperResolution(4, in_shape=(1, 28, 28), kind="block"), 0.05, 0.3),
        "inpainting (rows), sigma_y=0.05": (ivd.operators.Inpainting(mask), 0.05, 0.5),
        "denoising, sigma_y=0.5": (ivd.operators.Identity((1, 28, 28)), 0.5, 0.3),
    }


#: the methods compared (``--methods``)
METHODS = ("DMPS", "DPS", "DDRM", "MCGdiff")


def sample(method, model, op, y, sigma_y, zeta, rng, args):
    """``args.samples`` posterior samples ``(K, *y_batch, *op.in_shape)`` of ``method``."""
    K, m = args.samples, ivd.methods
    if method == "DMPS":
        return m.dmps(model, op, y, sigma_y, rng=rng, n=K, steps=args.steps)
    if method == "DPS":
        return m.dps(model, op, y, rng=rng, n=K, steps=args.steps, zeta=zeta)
    if method == "DDRM":
        return m.ddrm(model, op, y, sigma_y, rng=rng, n=K)
    if method == "MCGdiff":  # K independent particle systems: y repeated along a new axis
        ys = y[None, ...].repeat(K, *([1] * y.ndim))
        return m.mcgdiff(model, op, ys, sigma_y, n_particles=args.mcgdiff_particles,
                         steps=args.mcgdiff_steps, rng=rng)
    raise ValueError(f"method must be one of {METHODS}; received {method!r}")


def run(args):
    torch = setup_torch(args.threads)
    model, source = load_prior("mnist", args.weights_dir)
    if model is None:
        raise SystemExit(f"MNIST prior not available: {source}")
    data_dir = args.data_dir or default_mnist_dir()
    if not mnist_available(data_dir):
        raise SystemExit(mnist_missing(args.data_dir))
    _, x_test = mnist_split(data_dir, 1, args.n_test, dtype=torch.float32)
    rows = []
    for ti, (name, (op, sigma_y, zeta)) in enumerate(tasks(torch).items()):
        noise = ivd.random.Generator(args.seed + 101 * (ti + 1))  # one draw, every method
        y = op.apply(x_test)
        y = y + sigma_y * noise.normal(tuple(y.shape), like=x_test)
        for method in args.methods:
            rng = ivd.random.Generator(args.seed)
            start = time.perf_counter()
            # MCGdiff evaluates K systems x particles images per step: one test image a call
            step = 1 if method == "MCGdiff" else args.batch
            samples = torch.cat([sample(method, model, op, y[b:b + step], sigma_y, zeta, rng,
                                        args) for b in range(0, len(y), step)], dim=1)
            seconds = time.perf_counter() - start
            rows.append(_scores(name, method, samples, x_test, seconds, args))
            r = rows[-1]
            print(f"  {name:34s} {method:8s} coverage {r['coverage']:.3f} "
                  f"(foreground {r['coverage_foreground']:.3f})  {seconds:.0f} s", flush=True)
    settings = {"n_test": args.n_test, "samples": args.samples,
                "steps (DMPS, DPS)": args.steps, "mcgdiff_particles": args.mcgdiff_particles,
                "mcgdiff_steps": args.mcgdiff_steps,
                "batch": args.batch, "seed": args.seed, "prior": source,
                "methods": list(args.methods), "level": 0.9}
    return rows, settings


def _scores(task, method, samples, x_test, seconds, args):
    """Coverage of the pixel-wise 90 % intervals of ``samples`` ``(K, n, 1, 28, 28)``."""
    s = summarize(samples, level=0.9)
    inside = (x_test >= s["lower"]) & (x_test <= s["upper"])
    foreground = x_test > -0.9
    cover = inside.float().mean(dim=(1, 2, 3)).numpy()
    cover_fg = ((inside & foreground).float().sum(dim=(1, 2, 3))
                / foreground.float().sum(dim=(1, 2, 3)).clamp(min=1)).numpy()
    width = s["width"].mean(dim=(1, 2, 3)).numpy()
    rmse = ((s["mean"] - x_test) ** 2).mean(dim=(1, 2, 3)).sqrt().numpy()
    return {"task": task, "method": method, "samples": args.samples,
            "particles": args.mcgdiff_particles if method == "MCGdiff" else None,
            "coverage": float(cover.mean()),
            "coverage_std": float(cover.std(ddof=1)) if len(cover) > 1 else 0.0,
            "coverage_foreground": float(cover_fg.mean()), "width": float(width.mean()),
            "rmse_of_mean": float(rmse.mean()), "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--weights-dir", default=None, help="folder with mnist.safetensors")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default ../shared)")
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--samples", type=int, default=16, help="posterior samples K (>= 16)")
    parser.add_argument("--steps", type=int, default=None,
                        help="DMPS and DPS ancestral steps (full: 250, respaced)")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated subset of " + ", ".join(METHODS))
    parser.add_argument("--mcgdiff-particles", type=int, default=None,
                        help="particles of each MCGdiff system (full: 16)")
    parser.add_argument("--batch", type=int, default=None,
                        help="test images per sampler call (full: 8)")
    parser.add_argument("--stem", default=None,
                        help="results file name (default coverage[-quick]); to split the "
                             "methods over several runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    if set(args.methods) - set(METHODS):
        parser.error(f"--methods: unknown {sorted(set(args.methods) - set(METHODS))}; "
                     f"expected a subset of {METHODS}")
    args.n_test = args.n_test or (2 if args.quick else 16)
    args.steps = args.steps or (20 if args.quick else 250)
    args.mcgdiff_particles = args.mcgdiff_particles or (2 if args.quick else 16)
    args.batch = args.batch or (2 if args.quick else 8)
    args.mcgdiff_steps = 20 if args.quick else 100
    start = time.perf_counter()
    rows, settings = run(args)
    header = ["task", "method", "samples", "coverage of 90 % intervals",
              "coverage, foreground pixels", "mean width", "RMSE of mean", "seconds"]
    table = [[r["task"], r["method"],
              r["samples"] if r["particles"] is None
              else f"{r['samples']} x {r['particles']} particles",
              f"{r['coverage']:.3f} ± {r['coverage_std']:.3f}",
              f"{r['coverage_foreground']:.3f}", f"{r['width']:.3f}",
              f"{r['rmse_of_mean']:.3f}", f"{r['seconds']:.0f}"] for r in rows]
    notes = (f"K = {settings['samples']} posterior samples per image and method, on "
             f"{settings['n_test']} held-out MNIST test images (indices 9100 on), the same "
             f"measurement (one noise draw) for every method; prior: {settings['prior']}. "
             f"DMPS (lambda = 1.75) and DPS (zeta = 0.3, 0.5 for inpainting) with "
             f"{settings['steps (DMPS, DPS)']} respaced ancestral steps (their papers use "
             f"1000); DDRM at its defaults (20 steps, eta = 0.85, eta_b = 1); MCGdiff "
             f"({settings['mcgdiff_steps']} DDIM steps, eta = 1, kappa = 1e-4) with K "
             f"independent particle systems of "
             f"{settings['mcgdiff_particles']} particles, one sample from each. Coverage is "
             "the fraction of true pixel values inside the empirical 5-95 % interval of the "
             "samples (0.90 when calibrated), mean ± std over images; 'foreground' counts "
             "only pixels where the digit is (truth > -0.9). Values in [-1, 1].")
    write_results(args.stem or "coverage" + ("-quick" if args.quick else ""), header, table,
                  settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start)
    return rows


if __name__ == "__main__":
    main()
