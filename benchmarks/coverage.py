"""Calibration of DMPS's pixel-wise 90 % credible intervals on held-out MNIST digits.

For each held-out test image (indices 9100 on) and each task, K posterior samples are
drawn with DMPS on the bundled MNIST prior; the empirical 5 % and 95 % quantiles of each
pixel form its 90 % credible interval. The coverage is the fraction of true pixels that
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
    return {
        "SR x4 (block), sigma_y=0.05": (
            ivd.operators.SuperResolution(4, in_shape=(1, 28, 28), kind="block"), 0.05),
        "inpainting (rows), sigma_y=0.05": (ivd.operators.Inpainting(mask), 0.05),
        "denoising, sigma_y=0.5": (ivd.operators.Identity((1, 28, 28)), 0.5),
    }


def run(args):
    torch = setup_torch(args.threads)
    model, source = load_prior("mnist", args.weights_dir)
    if model is None:
        raise SystemExit(f"MNIST prior not available: {source}")
    data_dir = args.data_dir or default_mnist_dir()
    if not mnist_available(data_dir):
        raise SystemExit(mnist_missing(args.data_dir))
    _, x_test = mnist_split(data_dir, 1, args.n_test, dtype=torch.float32)
    rng = ivd.random.Generator(args.seed)
    rows = []
    for name, (op, sigma_y) in tasks(torch).items():
        y = op.apply(x_test) + sigma_y * rng.normal(tuple(op.apply(x_test).shape), like=x_test)
        start = time.perf_counter()
        samples = ivd.methods.dmps(model, op, y, sigma_y, rng=rng, n=args.samples,
                                   steps=args.steps)
        seconds = time.perf_counter() - start
        s = summarize(samples, level=0.9)
        inside = (x_test >= s["lower"]) & (x_test <= s["upper"])
        foreground = x_test > -0.9
        cover = inside.float().mean(dim=(1, 2, 3)).numpy()
        cover_fg = ((inside & foreground).float().sum(dim=(1, 2, 3))
                    / foreground.float().sum(dim=(1, 2, 3)).clamp(min=1)).numpy()
        width = s["width"].mean(dim=(1, 2, 3)).numpy()
        rmse = ((s["mean"] - x_test) ** 2).mean(dim=(1, 2, 3)).sqrt().numpy()
        rows.append({"task": name, "coverage": float(cover.mean()),
                     "coverage_std": float(cover.std(ddof=1)) if len(cover) > 1 else 0.0,
                     "coverage_foreground": float(cover_fg.mean()),
                     "width": float(width.mean()), "rmse_of_mean": float(rmse.mean()),
                     "seconds": seconds})
    settings = {"n_test": args.n_test, "samples": args.samples, "steps": args.steps,
                "seed": args.seed, "prior": source, "method": "dmps (lambda=1.75)",
                "level": 0.9}
    return rows, settings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--weights-dir", default=None, help="folder with mnist.safetensors")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default ../shared)")
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--samples", type=int, default=16, help="posterior samples K (>= 16)")
    parser.add_argument("--steps", type=int, default=None, help="DMPS ancestral steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.n_test = args.n_test or (4 if args.quick else 32)
    args.steps = args.steps or (20 if args.quick else 250)
    start = time.perf_counter()
    rows, settings = run(args)
    header = ["task", "coverage of 90 % intervals", "coverage, foreground pixels",
              "mean width", "RMSE of mean", "seconds"]
    table = [[r["task"], f"{r['coverage']:.3f} ± {r['coverage_std']:.3f}",
              f"{r['coverage_foreground']:.3f}", f"{r['width']:.3f}",
              f"{r['rmse_of_mean']:.3f}", f"{r['seconds']:.0f}"] for r in rows]
    notes = (f"DMPS with K = {settings['samples']} posterior samples per image, "
             f"{settings['steps']} respaced ancestral steps, on {settings['n_test']} held-out "
             f"MNIST test images (indices 9100 on); prior: {settings['prior']}. Coverage is "
             "the fraction of true pixel values inside the empirical 5-95 % interval of the "
             "samples (0.90 when calibrated), mean ± std over images; 'foreground' counts "
             "only pixels where the digit is (truth > -0.9). Values in [-1, 1].")
    write_results("coverage" + ("-quick" if args.quick else ""), header, table,
                  settings=settings, rows=rows, notes=notes,
                  wall_seconds=time.perf_counter() - start)
    return rows


if __name__ == "__main__":
    main()
