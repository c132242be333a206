"""Turn the many shapes an original configuration comes in into plain nested dicts.

The research codes keep their configurations as YAML read into ``argparse.Namespace``
(NCSNv2), ``ml_collections.ConfigDict`` (score-SDE / RectifiedFlow) or keyword arguments
(guided-diffusion). The builders accept any of these, or the JSON the conformance data
stores, and read them through :func:`as_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["as_dict", "section", "require"]


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
