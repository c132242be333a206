"""The ``invdiff`` command: demo, restore, models, train.

::

    invdiff demo [--out DIR] [--data-dir [MNIST_DIR]] [--quick] [--seed S]
    invdiff restore --task sr4 --method dmps --input low.png --output high.png --samples 8
    invdiff restore ... --checkpoint ffhq_10m.pt --arch adm --config adm.json
    invdiff models
    invdiff train NAME [...]

Every subcommand has ``--help``. Every error (unreadable files, unknown tasks or methods,
image sizes the prior cannot take, a run that would not fit in memory, a broken checkpoint)
is reported on stderr as one line naming the option, with exit status 2, without a
traceback (``--debug`` shows it) and without writing any output file.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from ._errors import CLIError, one_line_warnings, report
from ._options import Parser, integer, real
from ._options import formatter as _formatter

__all__ = ["main", "build_parser"]

_EPILOG = """\
images: files hold intensities in [0, 1] (8-bit / 255); the bundled priors work in [-1, 1].
Noise levels (--sigma-y) are given on the [0, 1] intensity scale: 0.025 is the papers'
sigma_y = 0.05 for images in [-1, 1].
errors: one line on stderr naming the option, exit status 2, nothing written; --debug adds
the Python traceback."""

#: Largest --threads accepted (torch's own limit is far above any machine).
_MAX_THREADS = 1024


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
            mean | baseline | pixel-wise posterior std, colour-mapped with its scale),
            DIR/metrics.json, and the measurement images in DIR/inputs/ (valid `invdiff
            restore` inputs); prints the PSNR/SSIM/time table. About a minute on 2 CPU
            cores (see the README)."""),
        epilog="errors: one line on stderr naming the option, exit status 2, nothing written; "
               "--debug adds the Python traceback.")
    p.add_argument("--out", default="invdiff_demo", metavar="DIR",
                   help="output folder (created; default: ./invdiff_demo)")
    p.add_argument("--data-dir", default=None, nargs="?", const="auto", metavar="MNIST_DIR",
                   help="adds the MNIST experiments (held-out indices 9000-9999 only): the "
                        "folder with t10k-images-idx3-ubyte.gz; without a value it is found "
                        "from $INVDIFF_MNIST_DIR or ../shared/data/mnist next to the checkout")
    p.add_argument("--quick", action="store_true",
                   help="smoke test in seconds: 32x32 crops, 25 steps, 2 samples (the images "
                        "are NOT good restorations)")
    p.add_argument("--samples", type=integer(1, 64), default=None, metavar="K",
                   help="posterior samples per case, 1..64 (default 4, --quick 2); time "
                        "grows ~K")
    p.add_argument("--seed", type=integer(0), default=0, help="random seed >= 0 (default 0)")
    _common(p, threads=1)
    return p


def _restore_parser(sub):
    from .._tasks import TASKS
    from ._priors import ARCHS
    from ._restore import METHODS

    tasks = "\n".join(
        "  " + textwrap.fill(f"{t.name:9s} {t.input_help} (default --sigma-y {t.sigma_y:g})",
                             90, subsequent_indent=" " * 12)
        for t in TASKS.values())
    methods = "\n".join(
        "  " + textwrap.fill(f"{k:9s} {v[0]}" + ("" if v[1] is None else f" [{v[1]} steps]"),
                             90, subsequent_indent=" " * 12)
        for k, v in METHODS.items())
    archs = "\n".join("  " + textwrap.fill(f"{k:9s} {v}", 90, subsequent_indent=" " * 12)
                      for k, v in ARCHS.items())
    p = sub.add_parser(
        "restore", formatter_class=_formatter,
        help="restore your own degraded image (posterior mean, std, 90%% interval)",
        description=(
            textwrap.fill(
                "Sample the posterior p(x | y) of the clean image x given your measurement "
                "image y = A x + noise, with a bundled prior or your own checkpoint, and "
                "write the posterior mean. With --samples K > 1 also write OUTPUT_STEM_std.png "
                "(pixel-wise posterior standard deviation) and OUTPUT_STEM_ci90.png (width of "
                "the pixel-wise 90% credible interval, between the 5% and 95% empirical "
                "quantiles of the K samples): colour maps (magma; RGB images: mean over the "
                "channels) with a scale bar in intensity units ([0, 1] scale); --npz keeps the "
                "exact values. Before sampling, the estimated time (one network evaluation "
                "timed at the real size, times the number of evaluations) and peak memory "
                "are printed; a run that would not fit in memory is refused with what to "
                "change (--batch-size, the image size) unless --force. Output files are "
                "written only when everything succeeded; an error writes nothing.", 92)
            + "\n\nWhat --input must be, per task:\n" + tasks + "\n\nMethods:\n" + methods
            + "\n\nYour own network (--checkpoint PATH --arch ARCH [--config JSON]), ARCH:\n"
            + archs),
        epilog=_EPILOG + "\n\nexamples:\n  invdiff restore --task sr4 --method dmps --input "
               "low.png --output high.png --samples 8 --steps 200\n  invdiff restore --task "
               "inpaint --method dps --input face.png --mask mask.png --output out.png \\\n"
               "      --checkpoint ffhq_10m.pt --arch adm --config ffhq_adm.json --device cuda")
    p.add_argument("--task", required=True, choices=sorted(TASKS), help="the degradation")
    p.add_argument("--method", required=True, choices=list(METHODS), help="the sampler")
    p.add_argument("--input", required=True, metavar="IMG", help="measurement image (see above)")
    p.add_argument("--output", required=True, metavar="IMG",
                   help="posterior mean (.png, .jpg, .tif, ...); 8-bit")
    p.add_argument("--samples", type=integer(1), default=1, metavar="K",
                   help="posterior samples (default 1); K >= 16 for a meaningful 90%% interval")
    p.add_argument("--seed", type=integer(0), default=0, help="random seed >= 0 (default 0)")
    p.add_argument("--steps", type=integer(1), default=None, metavar="N",
                   help="integrator steps (default: the method's paper value, in brackets "
                        "above; tv: iterations, default 300); fewer steps are faster, e.g. "
                        "100-200 for DMPS")
    p.add_argument("--sigma-y", type=real(0.0, open_low=True), default=None, metavar="S",
                   help="measurement noise std > 0 on the [0, 1] scale (default: per task)")
    p.add_argument("--mask", default=None, metavar="IMG",
                   help="inpaint: observed-pixel mask, same size as --input (white = observed)")
    p.add_argument("--blur-sigma", type=real(0.0, 1000.0, open_low=True), default=None,
                   metavar="PX", help="deblur: Gaussian standard deviation in pixels "
                                      "(default 3.0)")
    p.add_argument("--model", default=None,
                   help="bundled prior: natural (RGB, sizes multiple of 8; the default) or "
                        "mnist (28x28)")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="your own network instead of a bundled prior: an original checkpoint "
                        "file (.pt/.pth/.safetensors, read without running code from it), or "
                        "a diffusers folder with --arch diffusers")
    p.add_argument("--arch", default=None, choices=list(ARCHS),
                   help="architecture of --checkpoint (see above)")
    p.add_argument("--config", default=None, metavar="JSON",
                   help="the network's original configuration as a JSON (or YAML) file, for "
                        "--arch adm, ncsnv2 and ncsnpp")
    p.add_argument("--class-label", type=integer(0), default=None, metavar="C",
                   help="class label for a class-conditional ADM network (ImageNet)")
    p.add_argument("--npz", action="store_true",
                   help="also write OUTPUT_STEM_posterior.npz: float32 arrays mean, std, lower, "
                        "upper (5%% / 95%% quantiles), width and samples (K, C, H, W), [0, 1] "
                        "scale")
    p.add_argument("--batch-size", type=integer(1), default=None, metavar="B",
                   help="samples drawn per network batch (default: up to 8, as many as fit "
                        "in memory)")
    p.add_argument("--force", action="store_true",
                   help="sample even when the estimated peak memory exceeds what is available")
    p.add_argument("--dry-run", action="store_true",
                   help="check the inputs, print the time and memory estimate, sample nothing")
    _common(p)
    return p


def _common(p, threads=None):
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    p.add_argument("--threads", type=integer(1, _MAX_THREADS), default=threads, metavar="N",
                   help="torch CPU threads (default: " + (
                       "1: the demo's small images gain little from more, and a busy machine "
                       "loses a lot)" if threads == 1 else
                       "torch's choice; use 1 on a busy machine)"))
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="load NAME.safetensors + NAME.json from DIR instead of the bundled "
                        "weights (e.g. the output of `invdiff train`)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _debug(p)


def _debug(p):
    # SUPPRESS: a subcommand's default must not overwrite `invdiff --debug COMMAND`
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on an error, also print the Python traceback")


def build_parser() -> argparse.ArgumentParser:
    """The ``invdiff`` argument parser (subcommands demo, restore, models, train).

    Examples
    --------
    >>> from invdiff.cli import build_parser
    >>> args = build_parser().parse_args(["demo", "--quick"])
    >>> args.command, args.quick
    ('demo', True)
    """
    p = Parser(
        prog="invdiff", formatter_class=_formatter,
        description="Solve imaging inverse problems (super-resolution, deblurring, inpainting, "
                    "colorization, denoising, 1-bit compressed sensing) by posterior sampling "
                    "with diffusion priors: DMPS, DPS, PiGDM, QCS-SGM and classic baselines.",
        epilog="run `invdiff COMMAND --help` for the options of each command")
    from .. import __version__

    p.add_argument("--version", action="version", version=f"invdiff {__version__}")
    p.add_argument("--debug", action="store_true", default=False,
                   help="on an error, also print the Python traceback")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
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
    _debug(m)
    t = sub.add_parser("train", formatter_class=_formatter, add_help=False,
                       help="retrain a bundled prior with its recorded recipe",
                       description="Runs invdiff_models.training: `invdiff train NAME [options]` "
                                   "(see `invdiff train --help`).")
    t.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _models(args) -> int:
    import json

    from ._priors import _models_module

    registry = _models_module().registry
    if args.weights_dir is not None and not os.path.isdir(args.weights_dir):
        raise CLIError(f"--weights-dir: no such folder: {args.weights_dir!r}")
    try:
        cards = registry.cards(args.weights_dir)
    except Exception as e:  # noqa: BLE001 - a broken sidecar in the folder
        where = args.weights_dir or "the bundled priors"
        raise CLIError(f"--weights-dir: cannot read the model cards in {where!r}: "
                       f"{type(e).__name__}: {e}") from None
    if args.json:
        print(json.dumps({"bundled": cards, "loaders": registry.LOADERS}, indent=2))
        return 0
    print("Bundled priors (invdiff_models.load(NAME)):" if cards else
          "No bundled prior weights found in this installation.")
    for c in cards:
        _print_card(c)
    print("\nCheckpoint formats that load from their original files "
          "(invdiff restore --checkpoint PATH --arch NAME):")
    for name, text in registry.LOADERS.items():
        print(f"  {name:10s} {text}")
    return 0


def _print_card(c) -> None:
    tr = c["training"]
    minutes = (tr["wall_seconds"] or 0) / 60
    print(f"\n  {c['name']}")
    print(f"    data        {c['data']}")
    print(f"    held out    {c['heldout']}")
    print(f"    size        {c['size']}; data range {list(c['data_range'])}")
    params = c["parameters"]
    print(f"    network     {params:,} parameters, " if isinstance(params, int) else
          "    network     ? parameters, ", end="")
    print(f"{c['prediction']}-prediction, {c['file_mb']} MB fp16")
    print(f"    process     {c['process']}")
    loss = tr["final_loss_ema"]
    print(f"    training    {tr['steps_done']}/{tr['steps_planned']} steps, batch "
          f"{tr['batch_size']}, lr {tr['lr']}, seed {tr['seed']}, {minutes:.0f} min, "
          f"final EMA loss {'?' if loss is None else f'{loss:.4f}'}"
          f"{'' if not tr['stopped_by'] else ', stopped by ' + str(tr['stopped_by'])}")
    if os.path.isfile(c["card"]):
        print(f"    card        {c['card']}")


def _train(rest) -> int:
    """``invdiff train NAME [...]`` = ``python -m invdiff_models.training train NAME [...]``,
    with the options checked first (one-line errors)."""
    from ._training import run_train

    return run_train(list(rest))


def main(argv=None) -> int:
    """Run the ``invdiff`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success (and for ``--help``), 2 for any error: one line on stderr naming the
        option (``--debug`` adds the traceback), nothing written.

    Examples
    --------
    >>> from invdiff.cli import main
    >>> main(["restore", "--task", "sr4", "--method", "dmps", "--input", "missing.png",
    ...       "--output", "out.png"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    debug = "--debug" in argv
    if command == "train":  # the training script parses its own options (and --help)
        rest = argv[argv.index("train") + 1:]
        with one_line_warnings("train"):
            try:
                return _train([a for a in rest if a != "--debug"])
            except SystemExit as e:
                return _exit_code(e)
            except KeyboardInterrupt:  # pragma: no cover - interactive
                print("invdiff train: interrupted", file=sys.stderr)
                return 130
            except BaseException as e:  # noqa: BLE001 - the CLI's error policy
                return report("train", e, debug=debug)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # usage errors (one line, printed by Parser) and --help
        return _exit_code(e)
    with one_line_warnings(args.command):
        try:
            return _run(args)
        except KeyboardInterrupt:  # pragma: no cover - interactive
            print(f"invdiff {args.command}: interrupted; nothing written", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `invdiff models | head`: the reader left, nothing to say
            _silence_stdout()
            return 0
        except Exception as e:  # noqa: BLE001 - the CLI's error policy
            return report(args.command, e, debug=getattr(args, "debug", False))


def _run(args) -> int:
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


def _exit_code(e: SystemExit) -> int:
    code = e.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 2


def _silence_stdout() -> None:
    # Python flushes stdout at exit; a closed pipe would raise again there
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - no real file descriptor
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
