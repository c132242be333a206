"""Timing and operation counts shared by ``speed`` and ``gpu``: device-synchronised medians,
the torch profiler's operation count, and the QCS-SGM+ (EP) problem with its matrix floor.
"""

from __future__ import annotations

import math
import time

import invdiff as ivd
from invdiff._array_api import synchronize


def median_time(fn, repeats: int, sync=None, clock=time.perf_counter) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, waiting for ``sync``'s device
    (an array, or None on the host) after each call so that GPU work is timed, not queued.

    ``clock`` is wall time by default; ``time.process_time`` (CPU seconds of this process)
    measures single-threaded host work without the time other processes take from a shared
    machine.

    Examples
    --------
    >>> from benchmarks._timing import median_time
    >>> median_time(lambda: sum(range(10)), 3) >= 0.0
    True
    """
    times = []
    for _ in range(repeats):
        synchronize(sync)
        start = clock()
        fn()
        synchronize(sync)
        times.append(clock() - start)
    times.sort()
    return times[len(times) // 2]


def op_count(fn) -> int:
    """Array operations of one ``fn()`` call: the top-level ``aten::`` events of the torch
    profiler (each is one kernel launch or more on a GPU). ``fn`` runs once before, to warm
    caches.

    Examples
    --------
    >>> import torch
    >>> from benchmarks._timing import op_count
    >>> x = torch.ones(3)
    >>> op_count(lambda: (x + 1) * 2)
    2
    """
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(1 for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::"))


def ep_problem(M: int, batch: int, like, *, N: int = 784, bits: int = 1, seed: int = 1):
    """QCS-SGM+ likelihood at ``M`` measurements (i.i.d. Gaussian A, sigma = 0.1, 1-bit sign
    or ``bits``-bit reference quantizer) and a batch of states ``x_t``, in ``like``'s
    namespace, device and dtype; the eigendecomposition of A A^T is done (first call).

    Returns ``(ep, qcs, x_t, t)``; EP runs 5 iterations every call (tol = 1e-300).
    """
    rng = ivd.random.Generator(seed)
    xp = ivd._array_api.namespace(like)
    ve = ivd.processes.VE.geometric(50.0, 0.01, 232)
    A = ivd.operators.gaussian_matrix(M, N, rng, like=like)
    x0 = rng.uniform((N,), like=like)
    w = x0 @ A.T + 0.1 * rng.normal((M,), like=like)
    if bits == 1:
        lower = xp.where(w >= 0, 0.0, -math.inf)
        upper = xp.where(w >= 0, math.inf, 0.0)
    else:
        lo, hi = float(xp.min(w)), float(xp.max(w))
        step = (hi - lo) / 2**bits
        k = xp.clip(xp.floor((w - lo) / step), 0, 2**bits - 1)
        lower = xp.where(k == 0, -math.inf, lo + k * step)
        upper = xp.where(k == 2**bits - 1, math.inf, lo + (k + 1) * step)
    ep = ivd.likelihoods.QuantizedEP(A, lower, upper, 0.1, ve, iters=5, tol=1e-300)
    qcs = ivd.likelihoods.QuantizedDiagonal(A, lower, upper, 0.1, ve)
    x_t = x0 + rng.normal((batch, N), like=like)
    ep.score(x_t, 1.0)
    return ep, qcs, x_t, 1.0


def ep_floor(ep, x_t):
    """The matrix products of one EP call and nothing else: ``z = A x``, per iteration the two
    products with the eigenbasis W of A A^T, and ``A^T g``: what the call cannot go below."""
    xp = ivd._array_api.namespace(x_t)
    W = ep._gram.like(x_t, xp)["W"]
    A = ep._const.like(x_t, xp)["A"]
    Wt, At = W.T, A.T

    def floor():
        h = x_t @ At
        for _ in range(ep.iters):
            h = (h @ W) @ Wt
        return h @ A

    return floor
