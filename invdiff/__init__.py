"""invdiff: inverse problems with diffusion, score and flow priors on any Array API backend.

Submodules are imported on first use, so ``import invdiff`` stays cheap::

    import invdiff as ivd
    proc = ivd.processes.VP.linear(T=1000)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0.dev0"

_SUBMODULES = (
    "baselines",
    "io",
    "likelihoods",
    "measurements",
    "methods",
    "metrics",
    "operators",
    "priors",
    "processes",
    "random",
    "samplers",
    "special",
)

__all__ = [*_SUBMODULES, "__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'invdiff' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
