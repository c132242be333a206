"""How the command line reports errors: one line on stderr, exit status 2, no traceback.

Every failure of a command, whether the user's input was wrong (:class:`CLIError`, raised by
the commands' own checks), a library function refused an argument (``ValueError`` /
``TypeError``, whose messages name the argument), the system refused a file (``OSError``)
or memory ran out, ends as exactly one line ``invdiff COMMAND: error: MESSAGE`` on stderr
and exit status 2; nothing is written. ``--debug`` adds the Python traceback. Warnings are
printed as one line each, ``invdiff COMMAND: warning: MESSAGE``.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings

__all__ = ["CLIError", "EXIT_ERROR", "one_line", "message", "report", "one_line_warnings"]

#: Exit status of every error (argparse's usage errors use it too).
EXIT_ERROR = 2


class CLIError(Exception):
    """A user error the command line reports on stderr with a non-zero exit (no traceback).

    The message starts with the option it concerns (``--input: ...``).

    Examples
    --------
    >>> from invdiff.cli._errors import CLIError
    >>> str(CLIError("--input: file not found"))
    '--input: file not found'
    """


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of blanks collapsed to single spaces.

    Examples
    --------
    >>> from invdiff.cli._errors import one_line
    >>> one_line("a\\n  b\\tc ")
    'a b c'
    """
    return " ".join(str(text).split())


def _is_out_of_memory(exc: BaseException) -> bool:
    # torch.OutOfMemoryError (a RuntimeError) and CUDA's "out of memory" RuntimeErrors,
    # recognised without importing torch
    name = type(exc).__name__
    return isinstance(exc, MemoryError) or name == "OutOfMemoryError" or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def message(exc: BaseException) -> str:
    """The one-line message for ``exc`` (without the ``invdiff COMMAND: error:`` prefix).

    Examples
    --------
    >>> from invdiff.cli._errors import message
    >>> message(ValueError("steps must be at most 1000; received 5000"))
    'steps must be at most 1000; received 5000'
    >>> message(MemoryError())
    'out of memory: lower --batch-size or --samples, or restore a smaller image (MemoryError)'
    """
    if isinstance(exc, CLIError):
        return one_line(exc)
    if _is_out_of_memory(exc):
        detail = one_line(exc) or type(exc).__name__
        return ("out of memory: lower --batch-size or --samples, or restore a smaller image "
                f"({detail[:200]})")
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename!r}" if exc.filename else ""
        return one_line(f"{exc.strerror}{where}")
    if isinstance(exc, (ValueError, TypeError)):
        return one_line(exc) or type(exc).__name__
    return one_line(f"unexpected {type(exc).__name__}: {exc} (this is a bug: please report it "
                    f"with the output of the same command plus --debug)")


def report(command: str, exc: BaseException, *, debug: bool = False) -> int:
    """Print ``exc`` as one line on stderr (and the traceback with ``debug``); returns 2.

    Examples
    --------
    >>> import contextlib, io
    >>> from invdiff.cli._errors import CLIError, report
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     code = report("restore", CLIError("--steps: must be >= 1; received 0"))
    >>> code, err.getvalue()
    (2, 'invdiff restore: error: --steps: must be >= 1; received 0\\n')
    """
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(f"invdiff {command}: error: {message(exc)}", file=sys.stderr)
    return EXIT_ERROR


@contextlib.contextmanager
def one_line_warnings(command: str):
    """Show warnings raised inside the block as ``invdiff COMMAND: warning: MESSAGE``.

    Examples
    --------
    >>> import contextlib, io, warnings
    >>> from invdiff.cli._errors import one_line_warnings
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err), one_line_warnings("demo"):
    ...     warnings.warn("slow\\nmachine")
    >>> err.getvalue()
    'invdiff demo: warning: slow machine\\n'
    """
    def show(msg, category, filename, lineno, file=None, line=None):
        print(f"invdiff {command}: warning: {one_line(msg)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield
