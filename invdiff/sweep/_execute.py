r"""One unit: build the problem of an image batch, call the recipe, score it → one record.

The unit function :func:`execute` is what runs on a worker; it depends only on its payload
(the unit's spec), so serial runs, one worker and many workers give the same record. A unit
that raises is returned as a ``"failed"`` record with the error: the sweep goes on.

Random streams (see :mod:`invdiff.sweep._keys`), each a child of the sweep ``seed``:

============  ===========================================  ==================================
stream        spawn key                                     shared by
============  ===========================================  ==================================
operator      ``operator, data, operator table``            every method, batch, and every
                                                            task with that operator table
noise         ``noise, data, task, split, image id``        every method and batch size
start         ``start, data, kind, image id``               every method and task
sampler       ``sampler, data, task, first id, last id``    every method (same batch)
============  ===========================================  ==================================

Metrics per image: PSNR and SSIM on ``[0, 1]`` after clipping to the data range (NaN where
the sample has a non-finite pixel: diverged, left out of means); the data-consistency ratio
of the clipped sample, :math:`\|y - A\hat x\|/(\sigma_y\sqrt M)` (Gaussian tasks; about 1
for a sample that fits the measurement to the noise level) or, for quantized tasks, the
fraction of measurements whose bin contains :math:`A\hat u`; NFE, the recipe's settings and
the seconds of the recipe call.
"""

from __future__ import annotations

import math
import os
import platform
import time
import traceback

import numpy as np

from ._keys import canonical, seed_sequence

__all__ = ["execute", "Problem"]

_MEMO: dict[str, object] = {}  # operators and tuned parameters, per process
_DTYPES = ("float32", "float64")


def _generator(seed, *path):
    import invdiff as ivd

    return ivd.random.Generator(seed_sequence(seed, *path))


# -- the random draws (module functions: one place to read how every stream is keyed) --------
def operator_rng(spec):
    """The stream of a random mask or matrix: tasks that differ only in their measurement
    (noise level, bits) share the operator, e.g. one matrix for 1, 2 and 3 bits."""
    from ._tasks import operator_table

    return _generator(spec["seed"], "operator", spec["data"]["name"],
                      canonical(operator_table(spec["task"])))


def noise(spec, split, ids, shape, like):
    """``(len(ids), *shape)`` standard normal draws, one stream per image."""
    xp = _xp(like)
    data, task = spec["data"]["name"], spec["task"]["name"]
    draws = [_generator(spec["seed"], "noise", data, task, split, i).normal(shape, like=like)
             for i in ids]
    return xp.stack(draws)


def start(spec, kind, shape, like, low, high):
    """The shared start state of the batch: N(0, I) or U[low, high], one stream per image."""
    xp = _xp(like)
    data = spec["data"]["name"]
    out = []
    for i in spec["images"]:
        g = _generator(spec["seed"], "start", data, kind, i)
        out.append(g.normal(shape, like=like) if kind == "normal"
                   else g.uniform(shape, like=like, low=low, high=high))
    return xp.stack(out)


def sampler_rng(spec):
    ids = spec["images"]
    return _generator(spec["seed"], "sampler", spec["data"]["name"], spec["task"]["name"],
                      ids[0], ids[-1])


def _xp(x):
    from .._array_api import namespace

    return namespace(x)


# -- the problem of one unit ----------------------------------------------------------------
class Problem:
    """Everything a method adapter needs for one batch (see :mod:`._methods`)."""

    def __init__(self, spec, base, model, backend, device):
        from . import _data, _tasks

        self.spec, self.base, self.model = spec, base, model
        data = spec["data"]
        self.low, self.high = (float(v) for v in model.data_range)
        self.dtype_name = spec["dtype"]
        self._backend, self._device = backend, device
        raw, scale = _data.images(data["name"], data, base, spec["images"], "test")
        self.x = self._to_model(raw, scale)
        self.xp = _xp(self.x)
        self.shape = tuple(int(s) for s in self.x.shape[1:])
        task = spec["task"]
        self.task, self.quantized = task, _tasks.quantized(task)
        self.op = self.memo("operator", lambda: _tasks.build_operator(
            task, self.shape, operator_rng(spec), self.x), drop=("images", "method", "val"))
        if self.quantized:
            self.A, self.sigma, self.bits = self.op, float(task["sigma"]), int(task["bits"])
            m = self._quantize(self.x, "test", spec["images"])
            self.values, self.lower, self.upper = m
        else:
            self.sigma_y = float(task["sigma_y"])
            self.y = self._gaussian(self.x, "test", spec["images"])

    # arrays in the prior's namespace: raw / (scale / (high - low)) + low, as the benchmarks do
    def _to_model(self, raw, scale):
        x = raw.astype(np.float64) / (scale / (self.high - self.low)) + self.low
        if self._backend == "torch":
            import torch

            return torch.as_tensor(x, dtype=getattr(torch, self.dtype_name), device=self._device)
        return x.astype(self.dtype_name)

    def _gaussian(self, x, split, ids):
        y = self.op.apply(x)
        return y + self.sigma_y * noise(self.spec, split, ids, tuple(y.shape[1:]), x)

    def _quantize(self, x, split, ids):
        """Reference measurement of ``u = (x - low)/s``: values, lower and upper bin edges."""
        import invdiff as ivd

        xp = self.xp
        u = (x - self.low) / (self.high - self.low)
        z = xp.reshape(u, (u.shape[0], -1)) @ self.A.T
        z = z + self.sigma * noise(self.spec, split, ids, (int(self.A.shape[0]),), x)
        values, lower, upper = [], [], []
        for zi in z:
            q = ivd.measurements.Quantizer.from_data(zi, self.bits)
            codes = q.quantize(zi)
            lo, hi = q.bins(codes, like=zi)
            values.append(q.values(codes, like=zi))
            lower.append(lo)
            upper.append(hi)
        return xp.stack(values), xp.stack(lower), xp.stack(upper)

    def in_model_units(self):
        """The same likelihood for ``x = low + s u`` (the prior's units):
        :func:`invdiff.measurements.to_prior_units`, ``A/s`` and bins plus ``(low/s) A 1``."""
        import invdiff as ivd

        return ivd.measurements.to_prior_units(self.A, self.lower, self.upper,
                                               data_range=(0.0, 1.0),
                                               prior_range=(self.low, self.high))

    # shared draws
    def rng(self):
        return sampler_rng(self.spec)

    def start(self, kind):
        return start(self.spec, kind, self.shape, self.x, self.low, self.high)

    # validation images (tuned baselines)
    def x_val(self):
        return self.memo("x_val", self._load_val, drop=("images", "method", "task", "seed"))

    def _load_val(self):
        from . import _data

        data = self.spec["data"]
        raw, scale = _data.images(data["name"], data, self.base, self.spec["val"], "val")
        return self._to_model(raw, scale)

    def y_val(self):
        return self.memo("y_val", lambda: self._gaussian(self.x_val(), "val", self.spec["val"]),
                         drop=("images", "method"))

    def values_val(self):
        return self.memo("values_val", lambda: self._quantize(
            self.x_val(), "val", self.spec["val"])[0], drop=("images", "method"))

    def memo(self, name, fn, *, drop=("images",)):
        """``fn()`` once per process for this unit's spec without the entries ``drop``."""
        keep = {k: v for k, v in self.spec.items() if k not in drop}
        key = name + ":" + canonical([keep, str(self.base)])
        if key not in _MEMO:
            _MEMO[key] = fn()
        return _MEMO[key]


# -- metrics -----------------------------------------------------------------------------------
def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def scores(x_hat, x_true, low, high) -> dict:
    """Per-image PSNR / SSIM on ``[0, 1]`` after clipping; NaN where the sample diverged.

    Examples
    --------
    >>> import numpy as np
    >>> from invdiff.sweep._execute import scores
    >>> x = np.zeros((2, 1, 16, 16)); x[1, 0, 0, 0] = np.nan
    >>> s = scores(x, np.zeros((2, 1, 16, 16)) + 0.1, 0.0, 1.0)
    >>> s["finite"], round(s["psnr"][0], 6), bool(np.isnan(s["psnr"][1]))
    ([True, False], 20.0, True)
    """
    import invdiff as ivd

    a, b = _numpy(x_hat), _numpy(x_true)
    finite = np.all(np.isfinite(a.reshape(len(a), -1)), axis=1)
    width = high - low
    a = (np.clip(np.where(np.isfinite(a), a, low), low, high) - low) / width
    b = (b - low) / width
    psnr = np.where(finite, np.asarray(ivd.metrics.psnr(a, b, 1.0)), np.nan)
    ssim = np.where(finite, np.asarray(ivd.metrics.ssim(a, b, 1.0)), np.nan)
    return {"finite": finite.tolist(), "psnr": psnr.tolist(), "ssim": ssim.tolist()}


def consistency(p: Problem, x_hat) -> list:
    """Per image, of the reconstruction clipped to the data range (NaN where it diverged).

    Gaussian tasks: ``||y - A x||/(sigma_y sqrt(M))`` (about 1 when the sample explains ``y``
    to the noise level); quantized tasks: the fraction of measurements whose bin holds
    ``A u``.
    """
    xp = p.xp
    n = x_hat.shape[0]
    finite = xp.all(xp.isfinite(xp.reshape(x_hat, (n, -1))), axis=1)
    x = xp.clip(xp.where(xp.isnan(x_hat), p.low, x_hat), p.low, p.high)
    if p.quantized:
        u = (x - p.low) / (p.high - p.low)
        z = xp.reshape(u, (n, -1)) @ xp.astype(p.A, u.dtype).T
        hit = (z >= xp.astype(p.lower, u.dtype)) & (z < xp.astype(p.upper, u.dtype))
        out = xp.mean(xp.astype(hit, xp.float64), axis=1)
    else:
        r = xp.reshape(p.y - p.op.apply(x), (n, -1))
        out = xp.linalg.vector_norm(r, axis=1) / (p.sigma_y * math.sqrt(r.shape[1]))
    return np.where(_numpy(finite) > 0, _numpy(out), np.nan).tolist()


# -- one unit ----------------------------------------------------------------------------------
def execute(payload: dict):
    """Run one unit: ``(record, samples or None)``; never raises for a failing recipe.

    ``payload``: ``{"key", "spec", "base", "samples"}`` (see :mod:`invdiff.sweep._spec`).
    """
    import invdiff

    from . import _priors
    from ._methods import METHODS

    spec, key = payload["spec"], payload["key"]
    wall = time.perf_counter()
    record = {"key": key, "version": invdiff.__version__, "spec": spec}
    samples = None
    try:
        device = _device(spec["device"])
        prior = spec["prior"]
        model = _priors.load_prior(prior["name"], prior["spec"], payload["base"], device)
        problem = Problem(spec, payload["base"], model, _priors.backend_of(prior["spec"]),
                          device)
        entry = METHODS[spec["method"]["recipe"]]
        x_hat, info = entry.run(problem, spec["method"]["args"])
        metrics = scores(x_hat, problem.x, problem.low, problem.high)
        metrics["consistency"] = consistency(problem, x_hat)
        metrics["nfe"] = info["nfe"]
        metrics["settings"] = info.get("settings", {})
        if "selected" in info:
            metrics["selected"] = info["selected"]
        record.update(status="ok", metrics=metrics, error=None)
        seconds = info["seconds"]
        if payload.get("samples"):
            samples = _numpy(x_hat).astype(np.float32)
    except Exception as e:  # noqa: BLE001 - a failing unit is a result, not a crash
        record.update(status="failed", metrics=None,
                      error={"type": type(e).__name__, "message": str(e),
                             "traceback": traceback.format_exc(limit=20)})
        seconds = None
    record["cost"] = {"seconds": seconds, "wall_seconds": time.perf_counter() - wall,
                      "host": platform.node(), "pid": os.getpid()}
    return record, samples


def _device(name):
    """``"cuda"`` means this process's current GPU (one worker per GPU sets it)."""
    return name
