"""Pieces every recipe shares: the counted model, the start state, one timed run."""

from __future__ import annotations

import time

from .._array_api import check_floating, namespace, synchronize
from ..processes import reexpress
from ..random import Generator


class _Counted:
    """A ScoreModel that counts its network evaluations (forward and vjp passes)."""

    def __init__(self, model):
        self.model = model
        self.process = model.process
        self.prediction = model.prediction
        self.nfe = 0
        for name in ("vjp_accepts_callable", "data_range"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))
        if callable(getattr(model, "predict_with_log_variance", None)):
            self.predict_with_log_variance = self._predict_with_log_variance
        if callable(getattr(model, "vjp", None)):
            self.vjp = self._vjp

    def __call__(self, x_t, t):
        self.nfe += 1
        return self.model(x_t, t)

    def _predict_with_log_variance(self, x_t, t):
        self.nfe += 1
        return self.model.predict_with_log_variance(x_t, t)

    def _vjp(self, x_t, t, cotangent):
        self.nfe += 1
        return self.model.vjp(x_t, t, cotangent)


def _under(model, process_type, default) -> _Counted:
    """``model`` (re-expressed unless it lives in a ``process_type`` process), counted."""
    if not isinstance(model.process, process_type):
        model = reexpress(model, default())
    return _Counted(model)


def _as_rng(rng) -> Generator:
    if isinstance(rng, Generator):
        return rng
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return Generator(rng)
    raise TypeError(f"rng must be an invdiff.random.Generator, an int seed or None; "
                    f"received {type(rng).__name__}")


def _in_shape(op):
    shape = getattr(op, "in_shape", None)
    if shape is None:  # an (M, N) array
        return (int(op.shape[-1]),)
    return tuple(shape)


def _out_ndim(op) -> int:
    shape = getattr(op, "out_shape", None)
    return 1 if shape is None else len(tuple(shape))


def _x_init(x_init, y, op, rng, *, n, scale=1.0):
    """The start state: given, or ``scale * N(0, I)`` of ``y``'s batch and ``op``'s input."""
    if x_init is not None:
        check_floating("x_init", x_init)
        namespace(x_init=x_init, y=y)
        return x_init
    batch = tuple(y.shape[: y.ndim - _out_ndim(op)])
    if n is not None:
        batch = (int(n),) + batch
    return scale * rng.normal(batch + _in_shape(op), like=y)


def _run(sampler, model: _Counted, x_init, guidance, *, return_info, record_guidance, settings,
         **kwargs):
    norms = []

    def callback(i, t, x, info):
        if info.get("guidance_norm") is not None:
            norms.append(info["guidance_norm"])

    synchronize(x_init)  # on an accelerator: time the sampling, not work queued before it
    start = time.perf_counter()
    x = sampler(model, x_init, guidance=guidance,
                callback=callback if record_guidance else None, **kwargs)
    synchronize(x)  # ... and all of it, not only its queueing
    seconds = time.perf_counter() - start
    if not return_info:
        return x
    info = {"nfe": model.nfe, "seconds": seconds, **settings}
    if record_guidance:
        info["guidance_norm"] = norms
    return x, info
