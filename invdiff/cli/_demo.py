r"""``invdiff demo``: restore held-out images with the bundled priors, figure + metrics.

Cases (the natural prior, always; the MNIST prior with ``--data-dir``):

==========  ============================================  ===================================
case        measurement (model units, images in [-1, 1])   methods
==========  ============================================  ===================================
sr4         bicubic x4 downsampling, sigma_y = 0.05        DMPS (K samples), TV
deblur      Gaussian blur (sigma 2 px), sigma_y = 0.05     DMPS, TV
inpaint     70 % of the pixels missing, sigma_y = 0.05     DMPS, TV
colorize    channel mean, sigma_y = 0.05                   DMPS, TV
denoise     identity, sigma_y = 0.2                        DMPS, TV
cs1bit      y = sign(A x + n), A Gaussian M = N/2,         QCS-SGM (K samples), BIHT (DCT)
            sigma = 0.05
==========  ============================================  ===================================

The natural images are crops of the photographs held out of the natural prior's training
(``invdiff/data/demo_images.npz``, see :mod:`invdiff_models.make_demo_images`); the MNIST
images are held-out test indices 9000.. (never trained on). TV's :math:`\lambda` was chosen on
crops of training photographs (:data:`invdiff._tasks.TASKS`; within 0.3 dB of the best on
MNIST training digits as well), BIHT is given the true norm (which 1-bit measurements do not
carry) and keeps ``N/64`` DCT coefficients (:data:`BIHT_KEEP`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import baselines, measurements, metrics, operators
from .._array_api import device_of, namespace
from .._posterior import summarize
from .._tasks import TASKS, build_operator, to_intensities
from ..io import write_image
from ..methods import qcs_sgm
from ..processes import VE
from ..random import Generator
from ._errors import CLIError
from ._io import (
    as_model_array,
    check_output_folder,
    demo_images,
    find_mnist,
    mnist_hint,
    runtime_info,
    to_numpy,
)
from ._priors import load_model
from ._restore import Progress, sample

__all__ = ["Settings", "FULL", "QUICK", "run_demo"]


@dataclass(frozen=True)
class Settings:
    """Sizes and step counts of one demo run.

    Examples
    --------
    >>> from invdiff.cli._demo import FULL, QUICK
    >>> FULL.dmps_steps > QUICK.dmps_steps
    True
    """

    size: int  # natural crops: 64 or 32 (keys "astronaut" / "astronaut_32")
    samples: int  # posterior samples per case (K)
    dmps_steps: int  # respaced DDPM steps of DMPS
    qcs_levels: int  # VE noise levels of QCS-SGM (geometric 50 -> 0.01)
    qcs_each: int  # Langevin steps per level
    biht_iters: int


#: The default demo: about a minute of CPU on two cores (measured, see the README).
FULL = Settings(size=64, samples=4, dmps_steps=100, qcs_levels=60, qcs_each=3, biht_iters=300)
#: ``--quick``: a smoke test of the whole pipeline in seconds; the images are NOT good
#: restorations (far too few steps).
QUICK = Settings(size=32, samples=2, dmps_steps=25, qcs_levels=60, qcs_each=3, biht_iters=50)

#: (case, image key, sigma_y on the [0, 1] scale) for the natural prior.
NATURAL_CASES = [("sr4", "astronaut", 0.025), ("deblur", "coffee", 0.025),
                 ("inpaint", "coffee", 0.025), ("colorize", "astronaut", 0.025),
                 ("denoise", "astronaut", 0.1), ("cs1bit", "coffee_32", 0.025)]
#: (case, held-out MNIST index, sigma_y on [0, 1]) for the MNIST prior.
MNIST_CASES = [("sr4", 9000, 0.025), ("inpaint", 9001, 0.025), ("denoise", 9002, 0.1),
               ("cs1bit", 9003, 0.025)]
BLUR_SIGMA = 2.0  # pixels; the crops are 1/4-1/6 scale photographs
MISSING = 0.7  # inpainting: fraction of missing pixels
CS_RATIO = 0.5  # 1-bit CS: M / N
#: BIHT keeps N / 64 DCT coefficients: the best of N/8 ... N/128 on 32x32 crops of training
#: photographs (17.6 dB) and on training digits 0-15 (within 0.1 dB of the best).
BIHT_KEEP = 64


def _model_image(u8, model):
    """uint8 ``(C, H, W)`` -> the model's array in its data range."""
    low, high = model.data_range
    return low + (high - low) * (as_model_array(u8, model) / 255.0)


def _np01(x, low, high):
    return to_numpy((x - low) / (high - low))


# ---------------------------------------------------------------------------- one case
def _metrics(est, truth, width):
    return (float(metrics.psnr(est[None], truth[None], width)[0]),
            float(metrics.ssim(est[None], truth[None], width)[0]))


def _restoration(model, task, x, sigma01, rng, st: Settings, bar):
    """DMPS posterior samples and the TV estimate for one linear task."""
    xp = namespace(x=x)
    low, high = model.data_range
    s = high - low
    C, H, W = x.shape
    mask = None
    if task == "inpaint":
        mask = rng.uniform((H, W), like=x) >= MISSING
    op = build_operator(task, (C, H, W), mask=mask, blur_sigma=BLUR_SIGMA)
    sigma = s * sigma01
    y = measurements.measure(op, x, sigma, rng=rng)
    dmps_x, dmps_info = sample("dmps", model, op, y, sigma, n=st.samples, steps=st.dmps_steps,
                               rng=rng, batch_size=st.samples, bar=bar)
    tv_x, tv_info = sample("tv", model, op, y, sigma, n=1, tv_lam=TASKS[task].tv_lam)
    shown = to_intensities(y, op, model.data_range)
    extra = {"mask": to_numpy(mask)} if mask is not None else {}
    return {"truth": x, "measurement": xp.clip(shown, 0.0, 1.0), "samples": dmps_x,
            "method": "DMPS", "info": dmps_info, "baseline": tv_x[0], "baseline_name": "TV",
            "baseline_info": tv_info, "y01": shown, **extra}


def _cs1bit(model, x, sigma01, rng, st: Settings, bar):
    """QCS-SGM posterior samples and BIHT for 1-bit compressed sensing of ``x``."""
    xp = namespace(x=x)
    low, high = model.data_range
    shape = tuple(x.shape)
    N = math.prod(shape)
    M = int(CS_RATIO * N)
    sigma = (high - low) * sigma01
    A = operators.gaussian_matrix(M, N, rng=rng, like=x)
    y, (lower, upper) = measurements.measure(A, xp.reshape(x, (N,)), sigma,
                                             measurements.Quantizer.sign(), rng=rng)
    process = VE.geometric(50.0, 0.01, st.qcs_levels)
    counted = Progress(model, bar)
    start = time.perf_counter()
    x0 = rng.uniform((st.samples, *shape), like=x, low=low, high=high)
    samples = qcs_sgm(counted, A, lower, upper, sigma, rng=rng, x_init=x0, in_shape=shape,
                      process=process, steps_each=st.qcs_each)
    info = {"seconds": time.perf_counter() - start, "nfe": counted.nfe,
            "steps": st.qcs_levels * st.qcs_each}
    start = time.perf_counter()
    biht = baselines.biht(A, y, max(1, N // BIHT_KEEP), basis="dct", shape=shape,
                          norm=float(xp.linalg.vector_norm(x)), iters=st.biht_iters)
    b_info = {"seconds": time.perf_counter() - start, "nfe": 0, "steps": st.biht_iters}
    side = math.ceil(math.sqrt(M))
    # the signs as a square picture, padded with grey
    bits = xp.concat([(y + 1.0) / 2.0, xp.full((side * side - M,), 0.5, dtype=y.dtype,
                                                  device=device_of(y))])
    return {"truth": x, "measurement": xp.reshape(bits, (1, side, side)), "samples": samples,
            "method": "QCS-SGM", "info": info, "baseline": xp.reshape(biht, shape),
            "baseline_name": "BIHT", "baseline_info": b_info, "M": M}


# ---------------------------------------------------------------------------- the run
def _cases(args, st: Settings):
    """(prior name, case, image label, uint8 image, sigma01) for this run."""
    images = demo_images()
    out = []
    for case, key, sigma01 in NATURAL_CASES:
        if st.size == 32 and not key.endswith("_32"):
            key = f"{key}_32"
        out.append(("natural", case, key, images[key], sigma01))
    if args.data_dir is not None:
        from invdiff_models.training import MNIST_HELDOUT_INDICES, load_mnist

        folder = find_mnist(args.data_dir)
        if folder is None:
            raise CLIError(mnist_hint(args.data_dir, "--data-dir"))
        for case, idx, sigma01 in MNIST_CASES:
            if idx not in MNIST_HELDOUT_INDICES:  # only held-out digits are ever shown
                raise CLIError(f"MNIST index {idx} is not held out")
            try:
                digit = load_mnist(folder, [idx])
            except Exception as e:  # noqa: BLE001 - a truncated or foreign file
                raise CLIError(f"--data-dir: cannot read MNIST from {str(folder)!r}: "
                               f"{type(e).__name__}: {e}") from None
            out.append(("mnist", case, f"mnist[{idx}]", digit, sigma01))
    return out


def _nfe(case, st: Settings) -> int:
    return st.qcs_levels * st.qcs_each + 1 if case == "cs1bit" else st.dmps_steps


def run_demo(args) -> int:
    """The ``demo`` command: returns the exit status.

    Examples
    --------
    >>> from invdiff.cli import main
    >>> main(["demo", "--quick", "--out", "/tmp/invdiff_demo"])  # doctest: +SKIP
    0
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    st = QUICK if args.quick else FULL
    if args.samples is not None:
        st = replace(st, samples=int(args.samples))
    out = check_output_folder(args.out, name="--out")  # before any work; created at the end
    cases = _cases(args, st)
    models = {name: load_model(name, device=args.device, weights_dir=args.weights_dir,
                               option="")
              for name in sorted({c[0] for c in cases})}
    rngs = Generator(args.seed).spawn(len(cases))
    bar = None if args.no_progress else tqdm(
        total=sum(_nfe(c[1], st) for c in cases), desc="invdiff demo", unit="nfe",
        file=sys.stderr)
    results = []
    try:
        for (prior, case, label, u8, sigma01), rng in zip(cases, rngs, strict=True):
            model = models[prior]
            x = _model_image(u8, model)
            if case == "cs1bit":
                r = _cs1bit(model, x, sigma01, rng, st, bar)
            else:
                r = _restoration(model, case, x, sigma01, rng, st, bar)
            r.update(prior=prior, case=case, image=label, sigma_y=sigma01)
            results.append(r)
    finally:
        if bar is not None:
            bar.close()
    total = time.perf_counter() - start
    rows = [_score(r, models[r["prior"]]) for r in results]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"--out: cannot create folder {str(out)!r}: {e.strerror or e}") from None
    _save_inputs(out, results, models)
    _figure(out / "demo.png", results, rows, models, st)
    report = _report(args, st, rows, models, total)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    _print_table(rows, total, out)
    return 0


def _score(r, model) -> dict:
    low, high = model.data_range
    width = high - low
    x, samples = r["truth"], r["samples"]
    mean = summarize(samples)["mean"]
    psnr_m, ssim_m = _metrics(mean, x, width)
    xp = namespace(x=x)
    psnr_s = float(xp.mean(metrics.psnr(samples, xp.broadcast_to(x, samples.shape), width)))
    psnr_b, ssim_b = _metrics(r["baseline"], x, width)
    return {
        "prior": r["prior"], "case": r["case"], "image": r["image"], "sigma_y": r["sigma_y"],
        "results": [
            {"method": r["method"], "estimate": "posterior mean", "psnr": psnr_m,
             "ssim": ssim_m, "psnr_single_sample": psnr_s, "samples": int(samples.shape[0]),
             "seconds": r["info"]["seconds"], "nfe": r["info"]["nfe"],
             "steps": r["info"]["steps"]},
            {"method": r["baseline_name"], "estimate": "point estimate", "psnr": psnr_b,
             "ssim": ssim_b, "psnr_single_sample": None, "samples": 1,
             "seconds": r["baseline_info"]["seconds"], "nfe": 0,
             "steps": r["baseline_info"]["steps"]},
        ],
    }


def _save_inputs(out: Path, results, models) -> None:
    """The measurement images, valid ``invdiff restore --input`` files (and the masks)."""
    folder = out / "inputs"
    folder.mkdir(exist_ok=True)
    for r in results:
        if r["case"] == "cs1bit":
            continue
        stem = f"{r['prior']}_{r['case']}_{r['image']}".replace("[", "").replace("]", "")
        write_image(folder / f"{stem}.png", r["y01"], data_range=(0.0, 1.0))
        if "mask" in r:
            write_image(folder / f"{stem}_mask.png", r["mask"][None].astype("float64"),
                        data_range=(0.0, 1.0))


def _figure(path: Path, results, rows, models, st: Settings) -> None:
    from ._figure import colormap, draw_grid, nice_ceiling

    grid = []
    for r, row in zip(results, rows, strict=True):
        low, high = models[r["prior"]].data_range
        summ = summarize(_np01(r["samples"], low, high))
        std = summ["std"].mean(axis=0)
        top = nice_ceiling(float(std.max()))
        main, base = row["results"]
        title = "1-bit CS" if r["case"] == "cs1bit" else TASKS[r["case"]].title
        label = f"{title}\n{r['image']}\nsigma_y={r['sigma_y']:g}"
        meas = to_numpy(r["measurement"])
        meas_caption = (f"{r['M']} sign bits" if r["case"] == "cs1bit"
                        else f"y, {meas.shape[2]}x{meas.shape[1]}")
        grid.append((label, [
            (_np01(r["truth"], low, high), ""),
            (meas, meas_caption),
            (_np01(r["samples"][0], low, high), f"{main['method']} sample"),
            (summ["mean"], f"{main['method']} {main['psnr']:.1f} dB"),
            (_np01(r["baseline"], low, high), f"{base['method']} {base['psnr']:.1f} dB"),
            (colormap(std / top), f"std, max {float(std.max()):.3f}", top),
        ]))
    columns = ["ground truth", "measurement", "posterior sample", "posterior mean",
               "baseline", "posterior std"]
    trained = ", ".join(f"{n} prior {m.metadata.get('training', {}).get('steps_done')} steps"
                        for n, m in models.items())
    draw_grid(grid, columns, path, tile=128,
              title=f"invdiff demo: {st.samples} posterior samples per case, PSNR of the "
                    f"posterior mean / baseline on held-out images ({trained})")


def _report(args, st, rows, models, total) -> dict:
    from .. import __version__

    runtime = runtime_info()

    return {
        "invdiff": __version__,
        "settings": {**asdict(st), "quick": bool(args.quick), "seed": args.seed,
                     "blur_sigma_px": BLUR_SIGMA, "inpaint_missing": MISSING,
                     "cs_ratio": CS_RATIO, "device": args.device,
                     "torch_threads": runtime["torch_threads"]},
        "priors": {name: {"source": m.source,
                          "training_steps": m.metadata.get("training", {}).get("steps_done")}
                   for name, m in models.items()},
        "metrics_scale": "PSNR/SSIM on images in [0, 1] (data_range = 1 after rescaling)",
        "cases": rows,
        "total_seconds": total,
        "machine": runtime,
        "figure": "demo.png",
    }


def _print_table(rows, total, out: Path) -> None:
    head = (f"{'prior':8s} {'case':9s} {'image':14s} {'method':8s} {'PSNR':>6s} {'SSIM':>6s} "
            f"{'PSNR/smp':>8s} {'time s':>7s} {'NFE':>5s}")
    print(head)
    print("-" * len(head))
    for row in rows:
        for res in row["results"]:
            single = res["psnr_single_sample"]
            print(f"{row['prior']:8s} {row['case']:9s} {row['image']:14s} "
                  f"{res['method']:8s} {res['psnr']:6.2f} {res['ssim']:6.3f} "
                  f"{'' if single is None else f'{single:.2f}':>8s} {res['seconds']:7.1f} "
                  f"{res['nfe']:5d}")
    print("PSNR (dB) / SSIM of the posterior mean (DMPS, QCS-SGM) and of the baseline; "
          "PSNR/smp: mean PSNR of single posterior samples.")
    print(f"total wall time {total:.1f} s; figure {out / 'demo.png'}, metrics "
          f"{out / 'metrics.json'}, measurement images {out / 'inputs'}")
