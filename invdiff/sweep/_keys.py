"""Unit keys and random streams, both pure functions of the spec.

A unit's *key* hashes its full resolved specification and the package version, so the record
of a unit is found again by any rerun of any spec that contains the same unit. Its random
streams come from :class:`numpy.random.SeedSequence` children whose spawn key is made of the
names the stream is shared over (the sweep seed, then e.g. dataset, task, image), exactly what
``Generator.spawn`` would hand out at that position of the tree: the same numbers whichever
process, worker or machine runs the unit, and the same measurement for every method.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

__all__ = ["canonical", "unit_key", "seed_sequence"]


def canonical(obj) -> str:
    """Deterministic JSON text of ``obj`` (sorted keys, no spaces; tuples as lists).

    Examples
    --------
    >>> from invdiff.sweep._keys import canonical
    >>> canonical({"b": (1, 2.0), "a": "x"})
    '{"a":"x","b":[1,2.0]}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default,
                      allow_nan=True, ensure_ascii=False)


def _default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"spec values must be JSON-like (str, number, bool, list, table); "
                    f"received {type(v).__name__}")


def unit_key(spec: dict, version: str) -> str:
    """The 20-hex-digit name of a unit's record: SHA-256 of its spec and ``version``.

    Examples
    --------
    >>> from invdiff.sweep._keys import unit_key
    >>> unit_key({"method": "DMPS"}, "1.0") == unit_key({"method": "DMPS"}, "1.0")
    True
    >>> unit_key({"method": "DMPS"}, "1.0") == unit_key({"method": "DMPS"}, "1.1")
    False
    """
    text = canonical({"spec": spec, "version": version})
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _word(name) -> int:
    """A 32-bit word naming ``name`` (an int below 2**32 stands for itself)."""
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool) and 0 <= name < 2**32:
        return int(name)
    if isinstance(name, float) and math.isfinite(name) and name.is_integer() and 0 <= name < 2**32:
        return int(name)
    digest = hashlib.sha256(canonical(name).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def seed_sequence(seed: int, *path) -> np.random.SeedSequence:
    """The child of ``SeedSequence(seed)`` at spawn key ``path`` (names hashed to words).

    Parameters
    ----------
    seed : int
        The sweep's seed (a non-negative integer).
    *path : str or int
        What the stream is shared over, most general first, e.g. ``("noise", "mnist",
        "sr4", "test", 17)``.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.sweep._keys import seed_sequence
    >>> a = np.random.default_rng(seed_sequence(0, "noise", 3)).normal()
    >>> b = np.random.default_rng(seed_sequence(0, "noise", 3)).normal()
    >>> c = np.random.default_rng(seed_sequence(0, "noise", 4)).normal()
    >>> a == b, a == c
    (True, False)
    """
    return np.random.SeedSequence(int(seed), spawn_key=tuple(_word(p) for p in path))
