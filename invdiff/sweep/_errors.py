"""The one exception of the sweep engine."""

from __future__ import annotations

__all__ = ["SweepError"]


class SweepError(ValueError):
    """A spec, data folder, prior or scheduler that cannot work, found before anything runs.

    The message names the spec key (``methods.DPS.recipe``, ``data.mnist.dir`` ...) or the
    option, what was expected and what was received.

    Examples
    --------
    >>> from invdiff.sweep import SweepError
    >>> isinstance(SweepError("methods.X.recipe: unknown recipe 'x'"), ValueError)
    True
    """
