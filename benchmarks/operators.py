"""Cost of the implicit SVD of every image operator, relative to a 3x3 convolution.

For each operator of :mod:`invdiff.operators` on a batch of 8 x 3 x 256 x 256 images
(float32), times ``Vt(x)``, ``U(w)``, the full ``U(s * Vt(x))`` round trip and
``apply(x)``, and divides each by the time of a depthwise 3x3 convolution of the same
batch on the same backend (``torch.nn.functional.conv2d``; ``scipy.ndimage.correlate``
for NumPy). A ratio near 1 means the SVD costs about as much as one tiny convolution;
a network forward pass costs hundreds of those.

Usage::

    python benchmarks/operators.py            # 8x3x256x256, writes results/operators.{md,json}
    python benchmarks/operators.py --quick    # 2x3x64x64, writes results/quick/operators-quick.*

Timings are medians over ``--repeats`` runs after one warm-up run (which also builds and
caches the operators' factors), with ``--threads`` CPU threads (default 1: the baseline and
the operators get the same budget).
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

import invdiff as ivd
from invdiff import operators as ops

HERE = pathlib.Path(__file__).resolve().parent


def image_operators(shape, like):
    """The image operators benchmarked, at the paper's settings where there is one."""
    C, H, W = shape
    mask = ivd.operators.Inpainting.random(shape, 0.5, rng=ivd.random.Generator(0), like=like)
    size = min(31, H - 1 if H % 2 == 0 else H)
    return {
        "Identity": ops.Identity(shape),
        "Inpainting (50% pixels)": mask,
        "SuperResolution x4 block": ops.SuperResolution(4, shape, kind="block"),
        "SuperResolution x4 bicubic": ops.SuperResolution(4, shape, kind="bicubic"),
        "SeparableBlur Gaussian s=3, 31 taps": ops.SeparableBlur.gaussian(shape, 3.0, size),
        "SeparableBlur uniform 9x9": ops.SeparableBlur.uniform(shape, 9),
        "CircularBlur Gaussian s=3, 31x31": ops.CircularBlur.gaussian(shape, 3.0, size),
        "Colorization": ops.Colorization(shape),
    }


def timed(fn, repeats, sync):
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_operator(op, x, repeats, sync):
    """Seconds for Vt, U, the U s Vt round trip and apply of ``op`` on ``x``."""
    s = op.singulars_like(x)
    w = op.Vt(x)
    return {
        "Vt": timed(lambda: op.Vt(x), repeats, sync),
        "U": timed(lambda: op.U(w), repeats, sync),
        "U s Vt": timed(lambda: op.U(s * op.Vt(x)), repeats, sync),
        "apply": timed(lambda: op.apply(x), repeats, sync),
    }


def backend(name, threads):
    """(make array from numpy, 3x3 depthwise conv of a batch, synchronize) for a backend."""
    if name == "torch":
        import torch

        torch.set_num_threads(threads)
        weight = {}

        def conv(x):
            c = x.shape[1]
            if c not in weight:
                weight[c] = torch.full((c, 1, 3, 3), 1 / 9, dtype=x.dtype, device=x.device)
            return torch.nn.functional.conv2d(x, weight[c], padding=1, groups=c)

        def sync():
            if torch.cuda.is_available():
                torch.cuda.synchronize()

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return (lambda a: torch.as_tensor(a, device=device)), conv, sync, device
    if name == "numpy":
        import scipy.ndimage

        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(threads)
        except ImportError:
            pass
        k = np.full((1, 1, 3, 3), 1 / 9, dtype=np.float32)
        return (lambda a: a), (lambda x: scipy.ndimage.correlate(x, k, mode="constant")), \
            (lambda: None), "cpu"
    raise ValueError(f"unknown backend {name!r}")


def run(args):
    shape = (3, args.size, args.size)
    batch = (args.batch, *shape)
    rows = []
    for name in args.backends:
        make, conv, sync, device = backend(name, args.threads)
        x = make(np.random.default_rng(0).standard_normal(batch).astype(np.float32))
        t_conv = timed(functools.partial(conv, x), args.repeats, sync)
        print(f"[{name}/{device}] 3x3 depthwise conv of {batch}: {t_conv * 1e3:.2f} ms", flush=True)
        for op_name, op in image_operators(shape, like=x).items():
            t = time_operator(op, x, args.repeats, sync)
            row = {"backend": name, "device": str(device), "operator": op_name, "rank": op.rank,
                   "conv_ms": t_conv * 1e3, **{f"{k}_ms": v * 1e3 for k, v in t.items()},
                   **{f"{k}_ratio": v / t_conv for k, v in t.items()}}
            rows.append(row)
            print(f"  {op_name:38s} rank {op.rank:7d}  " + "  ".join(
                f"{k} {row[f'{k}_ratio']:7.2f}x" for k in t), flush=True)
    return rows


def write(rows, args):
    out = HERE / "results" / ("quick" if args.quick else "")  # quick: gitignored scratch
    out.mkdir(parents=True, exist_ok=True)
    stem = "operators-quick" if args.quick else "operators"
    meta = {"batch": [args.batch, 3, args.size, args.size], "dtype": "float32",
            "threads": args.threads, "repeats": args.repeats, "python": sys.version.split()[0],
            "machine": platform.machine(), "processor": platform.processor() or "unknown"}
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Implicit SVD cost relative to a 3x3 convolution",
        "",
        f"Batch {tuple(meta['batch'])}, float32, {args.threads} thread(s), median of "
        f"{args.repeats} runs. Each ratio is the operation's time divided by a depthwise 3x3 "
        "convolution of the same batch on the same backend (time in ms in the last column).",
        "Written by `python benchmarks/operators.py" + (" --quick" if args.quick else "") + "`.",
        "",
        "| backend | operator | rank | Vt | U | U s Vt | apply | conv 3x3 (ms) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']}/{r['device']} | {r['operator']} | {r['rank']} | "
            f"{r['Vt_ratio']:.2f} | {r['U_ratio']:.2f} | {r['U s Vt_ratio']:.2f} | "
            f"{r['apply_ratio']:.2f} | {r['conv_ms']:.2f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / (stem + '.md')} and {out / (stem + '.json')}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2x3x64x64, 3 repeats (a smoke run)")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--size", type=int, default=None, help="image height = width")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--backends", nargs="+", default=["torch", "numpy"],
                   choices=["torch", "numpy"])
    args = p.parse_args(argv)
    args.batch = args.batch or (2 if args.quick else 8)
    args.size = args.size or (64 if args.quick else 256)
    args.repeats = args.repeats or (3 if args.quick else 5)
    write(run(args), args)


if __name__ == "__main__":
    main()
