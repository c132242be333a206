"""``invdiff train``: :mod:`invdiff_models.training` with its options checked first.

The training script parses its own options; this wrapper parses them with the same parser
(its usage errors made one line), checks what the script would only find out later (the
MNIST folder, writable output folders, the deadline's format) and then runs
``invdiff_models.training.main``. Without ``--data-dir`` the MNIST folder is found as for
the benchmarks (:func:`invdiff.cli._io.find_mnist`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._errors import EXIT_ERROR, CLIError, one_line
from ._io import check_output_folder, find_mnist, mnist_hint

__all__ = ["run_train"]

_PROG = "invdiff train"


def _one_line_errors(parser) -> None:
    """Make the usage errors of ``parser`` and its subcommands one line, exit status 2."""
    def error(message):
        print(f"{_PROG}: error: {one_line(message)} (see `{_PROG} --help`)", file=sys.stderr)
        sys.exit(EXIT_ERROR)

    parser.error = error
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _one_line_errors(sub)


def run_train(argv: list[str]) -> int:
    """Check the options of ``invdiff train ...`` and run the training script.

    Examples
    --------
    >>> import contextlib, io
    >>> from invdiff.cli._training import run_train
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         run_train(["mnist", "--steps", "0"])
    ...     except Exception as e:
    ...         print(str(e))
    --steps: must be an integer >= 1; received 0
    """
    from invdiff_models import training

    if not argv or argv[0] in ("-h", "--help"):
        return int(training.main(["train", "--help"]) or 0)
    argv = list(argv) if argv[0] in ("train", "export") else ["train", *argv]
    parser = training._parser()
    _one_line_errors(parser)
    args = parser.parse_args(argv)
    if args.cmd == "train":
        argv = _check_train(args, argv, training)
    else:
        _check_export(args)
    return int(training.main(argv) or 0)


def _check_train(args, argv: list[str], training) -> list[str]:
    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps: must be an integer >= 1; received {args.steps}")
    if not 1 <= args.threads <= 1024:
        raise CLIError(f"--threads: must be an integer in [1, 1024]; received {args.threads}")
    if args.deadline is not None:
        try:
            training._parse_deadline(args.deadline)
        except (ValueError, TypeError) as e:
            raise CLIError(f"--deadline: {args.deadline!r} is not an ISO date-time such as "
                           f"2026-11-29T09:10Z ({e})") from None
    if training.RECIPES[args.name]["data"] == "mnist":
        found = find_mnist(args.data_dir)
        if found is None:
            raise CLIError(mnist_hint(args.data_dir, "--data-dir"))
        if args.data_dir is None:
            argv = [*argv, "--data-dir", str(found)]
    out = args.out_dir or str(Path("train_out") / args.name)
    check_output_folder(out, name="--out-dir")
    if Path(out, "ckpt.pt").is_dir():
        raise CLIError(f"--out-dir: {str(Path(out, 'ckpt.pt'))!r} is a folder")
    if args.log is not None:
        log = Path(args.log)
        if log.is_dir():
            raise CLIError(f"--log: {args.log!r} is a folder, not a file")
        check_output_folder(log.parent if str(log.parent) else ".", name="--log")
    if args.bundle:
        check_output_folder(training.BUNDLED_DIR, name="--bundle")
    return argv


def _check_export(args) -> None:
    ckpt = Path(args.out_dir) / "ckpt.pt"
    if not ckpt.is_file():
        raise CLIError(f"--out-dir: no checkpoint {str(ckpt)!r} (the folder `invdiff train "
                       f"{args.name} --out-dir DIR` writes)")
    check_output_folder(args.out_dir, name="--out-dir")
    check_output_folder(args.bundle_dir, name="--bundle-dir")
