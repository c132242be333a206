"""Option types of the command line, checked while parsing, and a parser that reports in one line.

A value outside its domain (``--steps 0``, ``--seed -1``, ``--sigma-y nan``) is refused by
argparse itself, so the message names the option: ``invdiff restore: error: argument
--steps: must be an integer >= 1; received '0'``.
"""

from __future__ import annotations

import argparse
import math
import sys

from ._errors import EXIT_ERROR, one_line

__all__ = ["Parser", "integer", "real", "formatter"]


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are one line on stderr, exit status 2.

    Examples
    --------
    >>> import contextlib, io
    >>> from invdiff.cli._options import Parser, integer
    >>> p = Parser(prog="invdiff restore")
    >>> _ = p.add_argument("--steps", type=integer(1))
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         p.parse_args(["--steps", "0"])
    ...     except SystemExit as e:
    ...         code = e.code
    >>> code, err.getvalue().count("\\n")
    (2, 1)
    """

    def error(self, message):
        print(f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)",
              file=sys.stderr)
        self.exit(EXIT_ERROR)


def formatter(prog):
    """The help layout of every subcommand (wide, descriptions kept as written)."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


def integer(low: int | None = None, high: int | None = None):
    """An argparse ``type``: an integer in ``[low, high]`` (either bound optional).

    Examples
    --------
    >>> from invdiff.cli._options import integer
    >>> integer(1)("12")
    12
    >>> integer(0, 5)("7")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer in [0, 5]; received '7'
    """
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except (TypeError, ValueError):
            value = None
        if value is None or (low is not None and value < low) or (
                high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_domain('an integer', low, high)}; "
                                             f"received {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def real(low: float | None = None, high: float | None = None, *, open_low: bool = False):
    """An argparse ``type``: a finite number in ``[low, high]`` (``(low, high]`` with
    ``open_low``).

    Examples
    --------
    >>> from invdiff.cli._options import real
    >>> real(0.0, open_low=True)("0.5")
    0.5
    >>> real(0.0, open_low=True)("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a finite number > 0; received 'nan'
    """
    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        bad = not math.isfinite(value)
        if not bad and low is not None:
            bad = value <= low if open_low else value < low
        if not bad and high is not None:
            bad = value > high
        if bad:
            raise argparse.ArgumentTypeError(
                f"must be {_domain('a finite number', low, high, open_low)}; received {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def _domain(kind: str, low, high, open_low: bool = False) -> str:
    low, high = (None if b is None else f"{b:g}" for b in (low, high))
    if low is not None and high is not None:
        return f"{kind} in {'(' if open_low else '['}{low}, {high}]"
    if low is not None:
        return f"{kind} {'>' if open_low else '>='} {low}"
    if high is not None:
        return f"{kind} <= {high}"
    return kind
