"""Pieces every recipe shares: the counted model, the operator, the start state, one timed run."""

from __future__ import annotations

import math
import time

from .._array_api import check_floating, check_trailing_shape, is_array, namespace
from ..likelihoods._common import as_matrix, event_shape
from ..operators import DenseMatrix, LinearOperator
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


def _operator(op, in_shape, *, svd: bool = False):
    """``op`` acting on ``(*batch, *in_shape)``.

    Without ``in_shape`` the operator (or plain matrix) is used as given (``svd=True``: a
    plain matrix becomes a DenseMatrix, for recipes that call its SVD methods). With it, a plain
    ``(M, N)`` matrix (checked as the likelihoods check it) becomes a
    :class:`~invdiff.operators.DenseMatrix`, and an operator on flat vectors is wrapped so
    that it reads images of shape ``in_shape`` (``prod(in_shape) = N``, row-major).
    """
    if in_shape is None and not (svd and is_array(op)):
        return op
    if is_array(op):
        A, _ = as_matrix(op, "op")
        op = DenseMatrix(A)
    in_shape = event_shape(in_shape, op, math.prod(_in_shape(op)), matrix="op")
    if in_shape == tuple(op.in_shape):
        return op
    return _Reshaped(op, in_shape)


class _Reshaped(LinearOperator):
    """An operator on ``(*batch, N)`` read as one on ``(*batch, *in_shape)``: its SVD
    methods flatten inputs and reshape outputs; singular values are the operator's."""

    def __init__(self, op, in_shape):
        self.op = op
        self.in_shape = tuple(in_shape)
        self.out_shape = tuple(op.out_shape)
        self._flat = tuple(op.in_shape)

    def _flatten(self, name, x):
        check_trailing_shape(name, x, self.in_shape)
        batch = tuple(x.shape[: x.ndim - len(self.in_shape)])
        return namespace(**{name: x}).reshape(x, batch + self._flat)

    def _unflatten(self, x):
        batch = tuple(x.shape[: x.ndim - len(self._flat)])
        return namespace(x).reshape(x, batch + self.in_shape)

    def apply(self, x):
        return self.op.apply(self._flatten("x", x))

    def adjoint(self, y):
        return self._unflatten(self.op.adjoint(y))

    def Vt(self, x):
        return self.op.Vt(self._flatten("x", x))

    def V(self, z):
        return self._unflatten(self.op.V(z))

    def Ut(self, y):
        return self.op.Ut(y)

    def U(self, w):
        return self.op.U(w)

    def pinv(self, y):
        return self._unflatten(self.op.pinv(y))

    def singulars_like(self, x):
        return self.op.singulars_like(x)

    @property
    def singulars(self):
        return self.op.singulars

    @property
    def rank(self):
        return self.op.rank

    def __repr__(self) -> str:
        return f"{self.op!r} on in_shape={self.in_shape}"


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

    start = time.perf_counter()
    x = sampler(model, x_init, guidance=guidance,
                callback=callback if record_guidance else None, **kwargs)
    seconds = time.perf_counter() - start
    if not return_info:
        return x
    info = {"nfe": model.nfe, "seconds": seconds, **settings}
    if record_guidance:
        info["guidance_norm"] = norms
    return x, info
