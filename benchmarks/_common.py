"""Shared helpers of the benchmark scripts: the environment record and result writing.

Results go to ``benchmarks/results/`` (the committed record of the full runs); ``--quick``
runs go to ``benchmarks/results/quick/`` (ignored by git) unless ``--results-dir`` says
otherwise, so that a smoke test never overwrites a committed result.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import subprocess
import sys
from importlib import metadata

import numpy as np

from invdiff.sweep import _report

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
#: λ grid of the sparsity baselines (Lasso, TV, BIHT) in the full runs, chosen on validation
LAMBDA_GRID = [float(v) for v in np.logspace(-4, 1, 11)]
#: Where ``--quick`` runs write by default (gitignored scratch, never the committed results).
QUICK_RESULTS = RESULTS / "quick"

_PACKAGES = ("invdiff", "numpy", "scipy", "torch", "array-api-compat", "array-api-strict",
             "array-api-extra", "cupy-cuda12x")


def environment() -> dict:
    """Machine, Python, library versions, git commit and UTC date of this run.

    Examples
    --------
    >>> from benchmarks._common import environment
    >>> sorted(environment())[:3]
    ['command', 'cpu_count', 'date_utc']
    """
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": _git_commit(),
        "command": " ".join([pathlib.Path(sys.executable).name, *sys.argv]),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS.parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def results_dir(explicit=None, quick: bool = False) -> pathlib.Path:
    """The folder a run writes to: ``explicit`` (``--results-dir``) if given, else
    :data:`QUICK_RESULTS` for ``--quick`` and :data:`RESULTS` for a full run.

    Examples
    --------
    >>> from benchmarks._common import QUICK_RESULTS, RESULTS, results_dir
    >>> results_dir(quick=True) == QUICK_RESULTS, results_dir() == RESULTS
    (True, True)
    >>> str(results_dir("/tmp/out", quick=True))
    '/tmp/out'
    """
    if explicit:
        return pathlib.Path(explicit)
    return QUICK_RESULTS if quick else RESULTS


# one table writer for the benchmarks and `invdiff sweep report`
markdown_table = _report.markdown_table


def write_results(name: str, header, table, *, settings=None, rows=None, notes: str = "",
                  wall_seconds: float | None = None, title: str | None = None,
                  directory: pathlib.Path | None = None):
    """Write ``<name>.md`` and ``<name>.json`` and print the table.

    Parameters
    ----------
    name : str
        File stem (scripts append ``-quick`` for their quick mode).
    header, table : list, list of lists
        The Markdown table (already formatted cells).
    settings : dict, optional
        Problem sizes, seeds, step counts...
    rows : list of dict, optional
        The raw measurements (kept in full in the JSON).
    notes : str
        What the numbers mean; printed above the table.
    wall_seconds : float, optional
        Total run time of the script.
    title : str, optional
        Markdown title; default ``name``.
    directory : pathlib.Path, optional
        Default :data:`RESULTS`, or :data:`QUICK_RESULTS` when ``name`` ends with ``-quick``
        (a quick run never overwrites a committed result).

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The Markdown and JSON paths.
    """
    if directory is None:
        directory = results_dir(quick=name.endswith("-quick"))
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    env = environment()
    table_md = markdown_table(header, table)
    lines = [f"# {title or name}", ""]
    if notes:
        lines += [notes, ""]
    lines += [table_md, ""]
    if settings:
        lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()), ""]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    lines += [f"Run {env['date_utc']} on {env['machine']} ({env['cpu_count']} CPUs, "
              f"{env['platform']}), Python {env['python']}; {versions}; commit "
              f"{env['git_commit']}." + (f" Wall time {wall_seconds:.1f} s." if wall_seconds
                                         else ""),
              f"Command: `{env['command']}`", ""]
    md_path, json_path = directory / f"{name}.md", directory / f"{name}.json"
    md_path.write_text("\n".join(lines))
    payload = {"name": name, "notes": notes, "settings": settings or {}, "header": list(header),
               "table": [list(map(str, r)) for r in table], "rows": rows or [],
               "environment": env, "wall_seconds": wall_seconds}
    json_path.write_text(json.dumps(payload, indent=1, default=str))
    print(table_md)
    print(f"\nwrote {md_path} and {json_path}")
    return md_path, json_path


def add_sweep_arguments(parser):
    """Where a benchmark written as a sweep spec runs its units (:mod:`invdiff.sweep`)."""
    parser.add_argument("--scheduler", default="serial",
                        help="where the units run (invdiff.sweep): serial (default), local (a "
                             "Dask LocalCluster) or tcp://HOST:PORT (an existing Dask scheduler)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of --scheduler local (default: one per core)")
    parser.add_argument("--sweep-dir", default=None,
                        help="keep the sweep's records here (a rerun resumes; default: a "
                             "temporary folder, removed)")


def fill_defaults(args, quick: dict, full: dict):
    """Set each option left at ``None`` to its ``--quick`` or full-run value; returns ``args``."""
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def add_run_arguments(parser, stem: str):
    """The options every image benchmark shares: stem, seed, threads, device, results folder."""
    parser.add_argument("--stem", default=None,
                        help=f"results file stem (default {stem}[-quick])")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu; cuda untested)")
    parser.add_argument("--results-dir", default=None,
                        help="where to write the results (default benchmarks/results; with "
                             "--quick benchmarks/results/quick, which git ignores)")
