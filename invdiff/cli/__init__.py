"""The ``invdiff`` command: demo, restore, models, train.

::

    invdiff demo [--out DIR] [--data-dir MNIST_DIR] [--quick] [--seed S]
    invdiff restore --task sr4 --method dmps --input low.png --output high.png --samples 8
    invdiff models
    invdiff train NAME [...]

Every subcommand has ``--help``. Errors in the user's input (unreadable files, unknown
tasks or methods, image sizes the prior cannot take) are reported on stderr as one line,
with exit status 2 and without writing any output file.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from ._io import CLIError

__all__ = ["main", "build_parser"]

_EPILOG = """\
images: files hold intensities in [0, 1] (8-bit / 255); the bundled priors work in [-1, 1].
Noise levels (--sigma-y) are given on the [0, 1] intensity scale: 0.025 is the papers'
sigma_y = 0.05 for images in [-1, 1]."""


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


def _demo_parser(sub):
    p = sub.add_parser(
        "demo", formatter_class=_formatter,
        help="restore held-out images with the bundled priors: figure + metrics",
        description=textwrap.dedent("""\
            Restore images the priors never saw in training, with posterior sampling and a
            classic baseline, and write a figure and a metrics table.

            Natural prior (always): crops of the held-out photographs astronaut and coffee
            (scikit-image) for super-resolution x4 (bicubic), Gaussian deblurring,
            inpainting (70% of pixels missing), colorization and denoising, each with DMPS
            (K posterior samples) and total variation (TV), plus 1-bit compressed sensing
            (y = sign(A x + n), M = N/2 Gaussian measurements) with QCS-SGM and BIHT.
            With --data-dir: the same on held-out MNIST digits (indices 9000-9999).

            Writes DIR/demo.png (ground truth | measurement | posterior sample | posterior
            mean | baseline | pixel-wise posterior std), DIR/metrics.json, and the
            measurement images in DIR/inputs/ (valid `invdiff restore` inputs); prints the
            PSNR/SSIM/time table. About a minute on 2 CPU cores (see the README)."""))
    p.add_argument("--out", default="invdiff_demo", metavar="DIR",
                   help="output folder (created; default: ./invdiff_demo)")
    p.add_argument("--data-dir", default=None, metavar="MNIST_DIR",
                   help="folder with t10k-images-idx3-ubyte.gz: adds the MNIST experiments "
                        "(held-out indices 9000-9999 only)")
    p.add_argument("--quick", action="store_true",
                   help="smoke test in seconds: 32x32 crops, 8 steps, 2 samples (the images "
                        "are NOT good restorations)")
    p.add_argument("--samples", type=int, default=None, metavar="K",
                   help="posterior samples per case (default 4, --quick 2); time grows ~K")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _common(p, threads=1)
    return p


def _restore_parser(sub):
    from .._tasks import TASKS
    from ._restore import METHODS

    tasks = "\n".join(
        "  " + textwrap.fill(f"{t.name:9s} {t.input_help} (default --sigma-y {t.sigma_y:g})",
                             90, subsequent_indent=" " * 12)
        for t in TASKS.values())
    methods = "\n".join(
        "  " + textwrap.fill(f"{k:9s} {v[0]}" + ("" if v[1] is None else f" [{v[1]} steps]"),
                             90, subsequent_indent=" " * 12)
        for k, v in METHODS.items())
    p = sub.add_parser(
        "restore", formatter_class=_formatter,
        help="restore your own degraded image (posterior mean, std, 90%% interval)",
        description=(
            textwrap.fill(
                "Sample the posterior p(x | y) of the clean image x given your measurement "
                "image y = A x + noise, with a bundled prior, and write the posterior mean. "
                "With --samples K > 1 also write OUTPUT_STEM_std.png (pixel-wise posterior "
                "standard deviation) and OUTPUT_STEM_ci90.png (width of the pixel-wise 90% "
                "credible interval, between the 5% and 95% empirical quantiles of the K "
                "samples); both maps are in intensity units (pixel value / 255 = std on the "
                "[0, 1] scale). Output files are written only when everything succeeded; an "
                "error writes nothing.", 92)
            + "\n\nWhat --input must be, per task:\n" + tasks + "\n\nMethods:\n" + methods),
        epilog=_EPILOG + "\n\nexample:\n  invdiff restore --task sr4 --method dmps --input "
               "low.png --output high.png --samples 8 --steps 200")
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="the degradation")
    p.add_argument("--method", required=True, choices=list(METHODS), help="the sampler")
    p.add_argument("--input", required=True, metavar="IMG", help="measurement image (see above)")
    p.add_argument("--output", required=True, metavar="IMG",
                   help="posterior mean (.png, .jpg, .tif, ...); 8-bit")
    p.add_argument("--samples", type=int, default=1, metavar="K",
                   help="posterior samples (default 1); K >= 16 for a meaningful 90%% interval")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="integrator steps (default: the method's paper value, in brackets "
                        "above); fewer steps are faster, e.g. 100-200 for DMPS")
    p.add_argument("--sigma-y", type=float, default=None, metavar="S",
                   help="measurement noise std on the [0, 1] scale (default: per task)")
    p.add_argument("--mask", default=None, metavar="IMG",
                   help="inpaint: observed-pixel mask, same size as --input (white = observed)")
    p.add_argument("--blur-sigma", type=float, default=3.0, metavar="PX",
                   help="deblur: Gaussian standard deviation in pixels (default 3.0)")
    p.add_argument("--model", default="natural",
                   help="bundled prior: natural (RGB, sizes multiple of 8) or mnist (28x28)")
    p.add_argument("--npz", action="store_true",
                   help="also write OUTPUT_STEM_posterior.npz: float32 arrays mean, std, lower, "
                        "upper (5%% / 95%% quantiles), width and samples (K, C, H, W), [0, 1] "
                        "scale")
    p.add_argument("--batch-size", type=int, default=8, metavar="B",
                   help="samples drawn per network batch (default 8; lower it for big images)")
    _common(p)
    return p


def _common(p, threads=None):
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--threads", type=int, default=threads, metavar="N",
                   help="torch CPU threads (default: " + (
                       "1: the demo's small images gain little from more, and a busy machine "
                       "loses a lot)" if threads == 1 else
                       "torch's choice; use 1 on a busy machine)"))
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="load NAME.safetensors + NAME.json from DIR instead of the bundled "
                        "weights (e.g. the output of `invdiff train`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``invdiff`` argument parser (subcommands demo, restore, models, train).

    Examples
    --------
    >>> from invdiff.cli import build_parser
    >>> args = build_parser().parse_args(["demo", "--quick"])
    >>> args.command, args.quick
    ('demo', True)
    """
    p = argparse.ArgumentParser(
        prog="invdiff", formatter_class=_formatter,
        description="Solve imaging inverse problems (super-resolution, deblurring, inpainting, "
                    "colorization, denoising, 1-bit compressed sensing) by posterior sampling "
                    "with diffusion priors: DMPS, DPS, PiGDM, QCS-SGM and classic baselines.",
        epilog="run `invdiff COMMAND --help` for the options of each command")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"invdiff {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _demo_parser(sub)
    _restore_parser(sub)
    from ..sweep._cli import add_parser as _sweep_parser  # the sweep engine's subcommand

    _sweep_parser(sub, _formatter)
    m = sub.add_parser("models", formatter_class=_formatter,
                       help="list the bundled priors and the checkpoint formats that load",
                       description="List the bundled priors with their model cards (data, "
                                   "size, process, data range, training) and the original "
                                   "checkpoint formats invdiff_models loads.")
    m.add_argument("--json", action="store_true", help="machine-readable output")
    m.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="list the priors in DIR instead of the bundled ones")
    t = sub.add_parser("train", formatter_class=_formatter, add_help=False,
                       help="retrain a bundled prior with its recorded recipe",
                       description="Runs invdiff_models.training: `invdiff train NAME [options]` "
                                   "(see `invdiff train --help`).")
    t.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _models(args) -> int:
    import json

    try:
        from invdiff_models import registry
    except ImportError as e:  # pragma: no cover - the [models] extra is missing
        raise CLIError(f"listing models needs torch and safetensors: pip install "
                       f"'invdiff[models]' ({e})") from None
    cards = registry.cards(args.weights_dir)
    if args.json:
        print(json.dumps({"bundled": cards, "loaders": registry.LOADERS}, indent=2))
        return 0
    print("Bundled priors (invdiff_models.load(NAME)):" if cards else
          "No bundled prior weights found in this installation.")
    for c in cards:
        tr = c["training"]
        minutes = (tr["wall_seconds"] or 0) / 60
        print(f"\n  {c['name']}")
        print(f"    data        {c['data']}")
        print(f"    held out    {c['heldout']}")
        print(f"    size        {c['size']}; data range {list(c['data_range'])}")
        print(f"    network     {c['parameters']:,} parameters, {c['prediction']}-prediction, "
              f"{c['file_mb']} MB fp16")
        print(f"    process     {c['process']}")
        loss = tr["final_loss_ema"]
        print(f"    training    {tr['steps_done']}/{tr['steps_planned']} steps, batch "
              f"{tr['batch_size']}, lr {tr['lr']}, seed {tr['seed']}, {minutes:.0f} min, "
              f"final EMA loss {'?' if loss is None else f'{loss:.4f}'}"
              f"{'' if not tr['stopped_by'] else ', stopped by ' + str(tr['stopped_by'])}")
        if os.path.isfile(c["card"]):
            print(f"    card        {c['card']}")
    print("\nCheckpoint formats that load from their original files:")
    for name, text in registry.LOADERS.items():
        print(f"  {name:10s} {text}")
    return 0


def _train(rest) -> int:
    """``invdiff train NAME [...]`` = ``python -m invdiff_models.training train NAME [...]``."""
    from invdiff_models import training

    rest = list(rest)
    if not rest or rest[0] in ("-h", "--help"):
        return int(training.main(["train", "--help"]) or 0)
    argv = rest if rest[0] in ("train", "export") else ["train", *rest]
    return int(training.main(argv) or 0)


def main(argv=None) -> int:
    """Run the ``invdiff`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for a usage or input error (message on stderr, nothing written).

    Examples
    --------
    >>> from invdiff.cli import main
    >>> main(["restore", "--task", "sr4", "--method", "dmps", "--input", "missing.png",
    ...       "--output", "out.png"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:  # the training script parses its own options (and --help)
        return _train(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "threads", None) is not None:
            from ._io import set_threads

            set_threads(args.threads)
        if args.command == "demo":
            from ._demo import run_demo

            return run_demo(args)
        if args.command == "restore":
            from ._restore import run_restore

            return run_restore(args)
        if args.command == "sweep":
            from ..sweep._cli import run_command

            return run_command(args)
        return _models(args)
    except CLIError as e:
        print(f"invdiff {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print(f"invdiff {args.command}: interrupted; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
