"""Turn the many shapes an original configuration comes in into plain nested dicts.

The research codes keep their configurations as YAML read into ``argparse.Namespace``
(NCSNv2), ``ml_collections.ConfigDict`` (score-SDE / RectifiedFlow) or keyword arguments
(guided-diffusion). The builders accept any of these, or the JSON the conformance data
stores, and read them through :func:`as_dict`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["as_dict", "section", "require", "as_int", "as_float"]


def as_dict(config: Any) -> dict:
    """A nested plain ``dict`` copy of a mapping, namespace or ``ConfigDict``.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from invdiff_models._config import as_dict
    >>> as_dict(SimpleNamespace(model=SimpleNamespace(ngf=16)))
    {'model': {'ngf': 16}}
    """
    if hasattr(config, "to_dict") and callable(config.to_dict):  # ml_collections.ConfigDict
        config = config.to_dict()
    if isinstance(config, Mapping):
        return {str(k): _value(v) for k, v in config.items()}
    if hasattr(config, "__dict__"):  # argparse.Namespace / SimpleNamespace
        return {k: _value(v) for k, v in vars(config).items() if not k.startswith("_")}
    raise TypeError(
        "config must be a dict, a namespace or an ml_collections.ConfigDict; "
        f"received {type(config).__name__}"
    )


def _value(v: Any) -> Any:
    if isinstance(v, Mapping) or hasattr(v, "to_dict") or (
        hasattr(v, "__dict__") and type(v).__module__ in ("argparse", "types")
    ):
        return as_dict(v)
    return v


def section(config: dict, name: str, *, arch: str) -> dict:
    """``config[name]`` as a dict, with an error naming the architecture when absent."""
    if name not in config or not isinstance(config[name], dict):
        raise ValueError(
            f"{arch} config must have a '{name}' section; received sections "
            f"{sorted(k for k, v in config.items() if isinstance(v, dict))}"
        )
    return config[name]


def require(cfg: dict, key: str, *, where: str) -> Any:
    """``cfg[key]`` with a ``ValueError`` naming the missing option."""
    if key not in cfg:
        raise ValueError(f"{where} is missing the option '{key}'; received {sorted(cfg)}")
    return cfg[key]


def as_int(value: Any, key: str, *, where: str, low: int | None = None) -> int:
    """``value`` as an ``int``, refusing what ``int()`` would silently truncate or accept.

    A float with a fractional part (``1.5``), a bool, a non-numeric string or a value below
    ``low`` is a ``ValueError``/``TypeError`` naming ``key`` (a network built from a truncated
    option would load the wrong architecture without a word).

    Examples
    --------
    >>> from invdiff_models._config import as_int
    >>> as_int(2.0, "num_res_blocks", where="ADM config")
    2
    >>> as_int(1.5, "num_res_blocks", where="ADM config")
    Traceback (most recent call last):
    ...
    ValueError: ADM config option 'num_res_blocks' must be an integer; received 1.5
    """
    if isinstance(value, bool):
        raise TypeError(f"{where} option '{key}' must be an integer, not a bool; "
                        f"received {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("+-").isdigit():
            raise ValueError(f"{where} option '{key}' must be an integer; received {value!r}")
        value = int(text)
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{where} option '{key}' must be an integer; received "
                        f"{type(value).__name__} {value!r}")
    if not (math.isfinite(float(value)) and float(value) == int(value)):
        raise ValueError(f"{where} option '{key}' must be an integer; received {value!r}")
    if low is not None and int(value) < low:
        raise ValueError(f"{where} option '{key}' must be >= {low}; received {value!r}")
    return int(value)


def as_float(value: Any, key: str, *, where: str, low: float | None = None,
             positive: bool = False) -> float:
    """``value`` as a finite ``float`` (``> 0`` with ``positive``, ``>= low`` with ``low``).

    Examples
    --------
    >>> from invdiff_models._config import as_float
    >>> as_float("0.1", "dropout", where="ADM config", low=0.0)
    0.1
    """
    if isinstance(value, bool):
        raise TypeError(f"{where} option '{key}' must be a number, not a bool; "
                        f"received {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where} option '{key}' must be a number; received "
                        f"{type(value).__name__} {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{where} option '{key}' must be finite; received {value!r}")
    if positive and not v > 0:
        raise ValueError(f"{where} option '{key}' must be > 0; received {value!r}")
    if low is not None and v < low:
        raise ValueError(f"{where} option '{key}' must be >= {low}; received {value!r}")
    return v
