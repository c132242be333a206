"""The Dask side of :func:`invdiff.sweep.run` (imported only when Dask is used).

* ``--scheduler local``: a :class:`distributed.LocalCluster` of worker *processes* with one
  task thread each (the GIL-free parts of a recipe are torch's own threads): one worker per
  CPU core, or one per GPU with ``device = "cuda"`` (worker ``k`` on GPU ``k``, Dask
  resource ``GPU = 1`` each).
* An address: an existing scheduler; start workers with ``dask worker ADDRESS --nthreads 1
  [--nworkers K] [--resources GPU=1]`` (one per GPU, ``CUDA_VISIBLE_DEVICES`` set per
  worker, as ``dask-cuda`` does).
* :class:`WorkerSetup` sets each worker's torch threads (its share of the host's cores) and
  GPU once; each worker process loads each prior once and keeps it
  (:func:`invdiff.sweep._priors.load_prior`).
* At most :func:`window` units are in flight; the client writes each record as it arrives.
"""

from __future__ import annotations

import logging
import os

import dask
import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from ._errors import SweepError
from ._execute import execute

__all__ = ["connect", "run_units", "WorkerSetup", "dashboard", "close", "window"]


class WorkerSetup(WorkerPlugin):
    """Torch threads = the worker's share of the cores; on a local cluster, one GPU each.

    Parameters
    ----------
    threads : int or None
        Torch threads per worker; ``None``: the host's cores divided by the worker threads
        the scheduler knows on that host (``per_host``).
    local_gpus : int
        On a local cluster, the number of GPUs: worker ``k`` uses GPU ``k mod local_gpus``
        (an existing cluster gives each worker its GPU through ``CUDA_VISIBLE_DEVICES``).
    torch : bool
        Whether the sweep uses torch (else nothing is imported).
    per_host : dict or None
        Host → total worker threads, for ``threads=None``.

    Examples
    --------
    >>> from invdiff.sweep._dask import WorkerSetup
    >>> WorkerSetup(1, 0, False, None).threads
    1
    """

    idempotent = True
    name = "invdiff-sweep"

    def __init__(self, threads, local_gpus, torch, per_host):
        self.threads, self.local_gpus = threads, local_gpus
        self.torch, self.per_host = torch, dict(per_host or {})

    def setup(self, worker):
        if not self.torch:
            return
        import torch

        n = self.threads
        if n is None:
            share = self.per_host.get(_host(worker.address)) or worker.state.nthreads
            n = max(1, (os.cpu_count() or 1) // max(1, share))
        torch.set_num_threads(int(n))
        if self.local_gpus:
            try:
                index = int(worker.name)
            except (TypeError, ValueError):
                index = 0
            torch.cuda.set_device(index % self.local_gpus)


def _host(address: str) -> str:
    return address.split("://")[-1].rsplit(":", 1)[0]


def _worker_environ() -> dict:
    """Dask's pre-spawn environment of its workers, without ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it to 64 KiB to return memory to the OS early. Setting it at all turns off
    glibc's dynamic mmap threshold, so every large temporary array is mmap'ed and unmapped
    afresh: a recipe in such a worker spent ~45 % of its time in the kernel here (DPS
    steps 1.4x slower in wall time than with glibc's default).
    """
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {k: v for k, v in environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}


def connect(sweep, scheduler, workers, threads, timeout):
    """``(client, cluster or None)`` with :class:`WorkerSetup` registered."""
    from ._run import uses_torch

    cuda = sweep.device.startswith("cuda")
    torch_used = uses_torch(sweep)
    cluster = None
    if scheduler == "local":
        gpus = _gpu_count() if cuda else 0
        if cuda and gpus == 0:
            raise SweepError("device = 'cuda' but torch sees no GPU on this machine")
        n = workers or (gpus if cuda else (os.cpu_count() or 1))
        kw = {"resources": {"GPU": 1}} if cuda else {}
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environ()}):
                cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1,
                                                   processes=True, silence_logs=logging.ERROR,
                                                   **kw)
        except Exception as e:  # noqa: BLE001 - one line for the user, not a traceback
            raise SweepError(f"--scheduler local: could not start a local cluster: {e}"
                             ) from None
        client = distributed.Client(cluster)
        plugin = WorkerSetup(threads or 1, gpus, torch_used, None)
    else:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise SweepError(f"--scheduler: cannot reach {scheduler} within {timeout:g} s "
                             f"({type(e).__name__}: {e})") from None
        if not client.scheduler_info().get("workers"):
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                client.close()
                raise SweepError(f"--scheduler: {scheduler} has no workers (start some with "
                                 f"`dask worker {scheduler} --nthreads 1`)") from None
        per_host = {}
        for addr, w in client.scheduler_info()["workers"].items():
            host = w.get("host") or _host(addr)
            per_host[host] = per_host.get(host, 0) + int(w.get("nthreads", 1))
        plugin = WorkerSetup(threads, 0, torch_used, per_host)
    client.register_plugin(plugin, name="invdiff-sweep")
    return client, cluster


def _gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def dashboard(client) -> str:
    """One line: the scheduler address and the dashboard link (or why there is none)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return (f"scheduler {client.scheduler.address}; no dashboard (it needs bokeh: "
                "pip install 'invdiff[dask]')")
    return f"scheduler {client.scheduler.address}, dashboard {client.dashboard_link}"


def close(client, cluster):
    try:
        client.close()
    finally:
        if cluster is not None:
            cluster.close()


def window(client) -> int:
    """Units in flight: enough to keep every worker thread busy, few enough to cancel fast."""
    try:
        total = sum(client.nthreads().values())
    except Exception:  # noqa: BLE001 - a scheduler that does not answer: the minimum
        total = 1
    return max(64, 4 * total)


def run_units(client, sweep, todo, write):
    """Submit ``todo`` in a sliding window; ``write(record, samples)`` each as it finishes."""
    resources = {"GPU": 1} if sweep.device.startswith("cuda") else None
    pending = list(reversed(todo))  # pop() from the end keeps spec order
    running = {}
    size = window(client)

    def submit(n):
        batch = [pending.pop() for _ in range(min(n, len(pending)))]
        if not batch:
            return []
        futures = client.map(execute, [sweep.payload(u) for u in batch],
                             key=[f"invdiff-unit-{u.key}" for u in batch], pure=False,
                             resources=resources)
        for f, u in zip(futures, batch, strict=True):
            running[f.key] = (f, u)
        return futures

    queue = distributed.as_completed(submit(size))
    try:
        for future in queue:
            _, unit = running.pop(future.key)
            try:
                record, samples = future.result()
            except Exception as e:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths
                record, samples = _lost(unit, e), None
            future.release()
            write(record, samples)
            if pending and len(running) < size:
                queue.update(submit(size - len(running)))
    except BaseException:
        client.cancel([f for f, _ in running.values()])
        raise


def _lost(unit, error) -> dict:
    import invdiff

    return {"key": unit.key, "version": invdiff.__version__, "spec": unit.spec,
            "status": "failed", "metrics": None,
            "error": {"type": type(error).__name__, "message": str(error), "traceback": None},
            "cost": {"seconds": None, "wall_seconds": None, "host": None, "pid": None}}
