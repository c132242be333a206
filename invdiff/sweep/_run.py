"""Run a sweep: serially, on a local Dask cluster, or on an existing scheduler.

Only the client writes: each finished unit's record (and samples) goes to ``DIR`` as it
arrives, so an interrupted client loses only the units in flight, and a rerun computes
exactly the units that have no record (plus the failed ones, unless ``retry_failed=False``).
A worker that dies takes its running unit with it; the scheduler gives the unit to another
worker (``distributed.scheduler.allowed-failures``, default 3, then the unit is recorded as
failed with ``KilledWorker``).
"""

from __future__ import annotations

import os
import sys
import time

from . import _store
from ._errors import SweepError
from ._execute import execute
from ._spec import load_spec

__all__ = ["run"]


def _check_scheduler(scheduler) -> str:
    if scheduler in ("serial", "local"):
        return scheduler
    if isinstance(scheduler, str) and "://" in scheduler:
        return scheduler
    raise SweepError(f"--scheduler must be 'local', 'serial' or an address such as "
                     f"tcp://HOST:8786; received {scheduler!r}")


def run(spec, out, *, scheduler="local", workers=None, threads=None, progress=True,
        retry_failed=True, on_record=None, base=None, timeout=10.0) -> dict:
    """Run every unit of ``spec`` that has no record in ``out`` yet.

    Parameters
    ----------
    spec : str, path-like, dict or Sweep
        The sweep (see :func:`invdiff.sweep.load_spec`).
    out : path-like
        Results folder (created); see :mod:`invdiff.sweep._store` for its layout.
    scheduler : {"local", "serial"} or str
        ``"local"``: a :class:`distributed.LocalCluster` of ``workers`` processes (default:
        one per CPU core, or one per GPU with ``device = "cuda"``); ``"serial"``: this
        process, no Dask; ``"tcp://HOST:PORT"``: an existing scheduler.
    workers : int, optional
        Worker processes of the local cluster.
    threads : int, optional
        Torch threads per worker (default: 1 for ``serial`` and ``local``; on an existing
        cluster, the host's cores divided by the worker threads on that host).
    progress : bool
        Progress bar (units done / total, ETA) and the dashboard link, on stderr.
    retry_failed : bool
        Run units whose record says ``"failed"`` again (default true).
    on_record : callable, optional
        Called with each new record after it is written (tests, custom logging).
    base : path-like, optional
        Folder of the spec's relative paths (for a dict spec).
    timeout : float
        Seconds to wait for an existing scheduler.

    Returns
    -------
    dict
        ``units``, ``done_before``, ``computed``, ``failed``, ``seconds``, ``out``.

    Raises
    ------
    SweepError
        A bad spec, data folder, prior, ``scheduler`` or an unreachable scheduler: before
        any unit runs or any file is written.
    KeyboardInterrupt
        Re-raised after the records that arrived are written and the cluster is closed.

    Examples
    --------
    >>> import tempfile
    >>> import invdiff.sweep as sw
    >>> spec = {"batch": 2, "priors": {"natural": {"bundled": "natural"}},
    ...         "data": {"tiles": {"source": "natural", "prior": "natural", "test": 2}},
    ...         "tasks": {"sr4": {"operator": "super_resolution", "sigma_y": 0.05}},
    ...         "methods": {"DMPS": {"steps": 2}, "DPS": {"steps": 2}}}
    >>> summary = sw.run(spec, tempfile.mkdtemp(), scheduler="serial", progress=False)
    >>> summary["units"], summary["computed"], summary["failed"]
    (2, 2, 0)
    """
    sweep = load_spec(spec, base=base)
    scheduler = _check_scheduler(scheduler)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise SweepError(f"--workers must be a positive integer; received {workers!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise SweepError(f"--threads must be a positive integer; received {threads!r}")
    units = sweep.units()
    unique = list({u.key: u for u in units}.values())
    client = cluster = None
    if scheduler != "serial":
        _dask = _import_dask_part()
        client, cluster = _dask.connect(sweep, scheduler, workers, threads, timeout)
    try:
        out = os.fspath(out)
        os.makedirs(out, exist_ok=True)
        _store.write_manifest(out, _manifest(sweep, units))
        todo = []
        for u in unique:
            rec = _store.read_record(out, u.key)
            if rec is None or (retry_failed and rec.get("status") != "ok"):
                todo.append(u)
        done_before = len(unique) - len(todo)
        if client is not None and progress:
            print(f"invdiff sweep: {_dask.dashboard(client)}", file=sys.stderr, flush=True)
        bar = _bar(len(unique), done_before, sweep.name) if progress else None
        stats = {"computed": 0, "failed": 0}

        def write(record, samples):
            _store.write_record(out, record, samples)
            stats["computed"] += 1
            stats["failed"] += record["status"] != "ok"
            if bar is not None:
                bar.update(1)
                if stats["failed"]:
                    bar.set_postfix(failed=stats["failed"])
            if on_record is not None:
                on_record(record)

        start = time.perf_counter()
        try:
            if client is None:
                _serial(sweep, todo, threads, write)
            else:
                _dask.run_units(client, sweep, todo, write)
        finally:
            if bar is not None:
                bar.close()
        return {"units": len(unique), "done_before": done_before, **stats,
                "seconds": time.perf_counter() - start, "out": out,
                "skipped": list(sweep.skipped)}
    finally:
        if client is not None:
            _dask.close(client, cluster)


def _manifest(sweep, units) -> dict:
    import invdiff

    return {"name": sweep.name, "version": invdiff.__version__, "spec": sweep.raw,
            "base": str(sweep.base), "report": sweep.report,
            "families": {label: sweep.family(label) for label in sweep.methods},
            "tasks": {n: t.get("title", n) for n, t in sweep.tasks.items()},
            "quantized_tasks": [n for n, t in sweep.tasks.items() if "bits" in t],
            "skipped": sweep.skipped, "units": [u.describe() for u in units]}


def _bar(total, initial, name):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"sweep {name}", unit="unit",
                file=sys.stderr, dynamic_ncols=True)


# -- serial -------------------------------------------------------------------------------------
def _serial(sweep, todo, threads, write):
    restore = _set_torch_threads(threads or 1) if uses_torch(sweep) else None
    try:
        for u in todo:
            write(*execute(sweep.payload(u)))
    finally:
        if restore is not None:
            _set_torch_threads(restore)


def _set_torch_threads(n):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return before




def _import_dask_part():
    try:
        import distributed  # noqa: F401
    except ImportError as e:
        raise SweepError(f"--scheduler local or an address needs Dask distributed "
                         f"(pip install 'invdiff[dask]'), or use --scheduler serial ({e})"
                         ) from None
    from . import _dask

    return _dask


def uses_torch(sweep) -> bool:
    from ._priors import backend_of

    return any(backend_of(p) == "torch" for p in sweep.priors.values())
