"""The results folder of a sweep.

::

    DIR/sweep.json             the spec, the package version and every unit of the last run
                               (key, method, task, data, seed, images)
    DIR/records/KEY.json       one record per unit: its spec, status ("ok"/"failed"), metrics
                               per image, error, cost (seconds, host)
    DIR/samples/KEY.npz        the unit's samples (``samples = true``), float32, prior units

Every file is written to a temporary name in the same folder and renamed (atomic on POSIX
file systems), samples before their record: a record that exists is complete, and a unit
without one is simply run again.
"""

from __future__ import annotations

import io
import json
import os
import pathlib

import numpy as np

__all__ = ["write_record", "read_record", "write_manifest", "read_manifest", "record_path"]

MANIFEST = "sweep.json"


def _atomic_write(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def record_path(out, key: str) -> pathlib.Path:
    return pathlib.Path(out) / "records" / f"{key}.json"


def samples_path(out, key: str) -> pathlib.Path:
    return pathlib.Path(out) / "samples" / f"{key}.npz"


def write_record(out, record: dict, samples=None) -> pathlib.Path:
    """Write ``samples`` (if any) then ``record``, each atomically."""
    if samples is not None:
        buf = io.BytesIO()
        np.savez_compressed(buf, samples=samples)
        _atomic_write(samples_path(out, record["key"]), buf.getvalue())
    path = record_path(out, record["key"])
    _atomic_write(path, json.dumps(record, indent=1).encode())
    return path


def read_record(out, key: str) -> dict | None:
    """The record of ``key``, or ``None`` if there is none (or it cannot be read)."""
    try:
        return json.loads(record_path(out, key).read_text())
    except (OSError, ValueError):
        return None


def read_samples(out, key: str):
    """The samples of ``key`` (``(n, C, H, W)`` float32) or ``None``."""
    try:
        with np.load(samples_path(out, key), allow_pickle=False) as f:
            return f["samples"]
    except (OSError, KeyError, ValueError):
        return None


def write_manifest(out, manifest: dict) -> None:
    _atomic_write(pathlib.Path(out) / MANIFEST, json.dumps(manifest, indent=1).encode())


def read_manifest(out) -> dict:
    path = pathlib.Path(out) / MANIFEST
    return json.loads(path.read_text())
