"""Pieces every recipe shares: argument checks, the counted model, the operator, the start
state, one timed run.

Argument checks
---------------
Every recipe validates all its arguments with **one call** at its top, before any work::

    check_arguments(model=model, y=y, x_init=x_init, n=n, steps=steps, lam=lam, ...)

:func:`check_arguments` looks each keyword up in :data:`RULES` (argument name -> small
validator) and raises ``TypeError``/``ValueError`` naming the argument, the valid range and
the value received. A new recipe reuses the rules of the names it shares (``steps``, ``n``,
``eta``, ``x_init`` ...) and adds a rule here for a new hyperparameter, so that one name
means one range everywhere; a symbol that means something else in its paper gets a rule for
that call (``rules={"zeta": in_range(0.0, 1.0)}``). The validators are small
public-in-the-package functions (:func:`positive_int`, :func:`nonnegative`,
:func:`in_range` ...) for the same reuse. Passing ``op`` as well cross-checks the shapes of
``y`` and ``x_init`` against it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .._array_api import (
    check_floating,
    check_trailing_shape,
    is_array,
    namespace,
    synchronize,
)
from ..likelihoods._common import as_matrix, event_shape
from ..operators import DenseMatrix, LinearOperator
from ..processes import reexpress
from ..random import Generator
from ..samplers._common import check_model


# -- small validators: each takes (name, value) and returns the checked value ---------------
def real(name: str, value) -> float:
    """A finite real number (not a bool) as a Python float."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or (
            is_array(value) and math.prod(value.shape) == 1)):
        raise TypeError(f"{name} must be a real number; received {type(value).__name__} "
                        f"{value!r}")
    v = float(value if not is_array(value) else namespace(value).reshape(value, (-1,))[0])
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; received {value!r}")
    return v


def positive(name: str, value) -> float:
    """A finite real number ``> 0``."""
    v = real(name, value)
    if not v > 0:
        raise ValueError(f"{name} must be > 0; received {value!r}")
    return v


def nonnegative(name: str, value) -> float:
    """A finite real number ``>= 0``."""
    v = real(name, value)
    if not v >= 0:
        raise ValueError(f"{name} must be >= 0; received {value!r}")
    return v


def in_range(low: float, high: float, *, low_open: bool = False,
             high_open: bool = False) -> Callable:
    """A validator of a finite real number in ``[low, high]`` (open ends as asked)."""
    def check(name: str, value) -> float:
        v = real(name, value)
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        if not ok:
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise ValueError(f"{name} must lie in {interval}; received {value!r}")
        return v

    return check


def positive_int(name: str, value) -> int:
    """An integer ``>= 1`` (Python or NumPy int, or an integral float); never a bool."""
    if isinstance(value, bool) or not (isinstance(value, (int, float))
                                       or hasattr(value, "__index__")):
        raise TypeError(f"{name} must be a positive integer; received {type(value).__name__} "
                        f"{value!r}")
    if not (math.isfinite(float(value)) and float(value) == int(value) and value >= 1):
        raise ValueError(f"{name} must be a positive integer; received {value!r}")
    return int(value)


def optional(check: Callable) -> Callable:
    """``check`` that lets ``None`` through (an argument whose default is "not given")."""
    def maybe(name: str, value):
        return None if value is None else check(name, value)

    return maybe


def flag(name: str, value) -> bool:
    """A bool (Python or NumPy)."""
    if not (isinstance(value, bool) or type(value).__name__ == "bool_"):
        raise TypeError(f"{name} must be True or False; received {type(value).__name__} "
                        f"{value!r}")
    return bool(value)


def choice(*options) -> Callable:
    """A validator of one of ``options``."""
    def check(name: str, value):
        if not isinstance(value, str) or value not in options:
            raise ValueError(f"{name} must be one of {options}; received {value!r}")
        return value

    return check


def finite_array(name: str, value):
    """A real floating array without NaN or ±inf (one reduction: a measurement or start)."""
    check_floating(name, value)
    xp = namespace(**{name: value})
    if not bool(xp.all(xp.isfinite(value))):
        n_nan = int(xp.sum(xp.astype(xp.isnan(value), xp.int32)))
        n_inf = int(xp.sum(xp.astype(xp.isinf(value), xp.int32)))
        raise ValueError(f"{name} must be finite; received {n_nan} NaN and {n_inf} infinite "
                         f"entries")
    return value


def bin_edges(name: str, value):
    """Quantizer bin edges: a real floating array without NaN (``±inf`` marks open bins)."""
    check_floating(name, value)
    xp = namespace(**{name: value})
    if bool(xp.any(xp.isnan(value))):
        raise ValueError(f"{name} must not contain NaN (use -inf/+inf for open bins)")
    return value


def matrix(name: str, value):
    """An ``(M, N)`` real floating matrix with finite entries, or a ``DenseMatrix``."""
    from ..likelihoods._common import as_matrix

    as_matrix(value, name)
    return value


def operator(name: str, value):
    """A linear operator (``apply``, ``in_shape``, ``out_shape``) or an ``(M, N)`` matrix."""
    if is_array(value):
        return matrix(name, value)
    if not (callable(getattr(value, "apply", None)) and hasattr(value, "in_shape")
            and hasattr(value, "out_shape")):
        raise TypeError(f"{name} must be a linear operator of invdiff.operators (apply, "
                        f"in_shape, out_shape) or an (M, N) array; received "
                        f"{type(value).__name__}")
    return value


def interval_pair(name: str, value):
    """``None`` or a pair ``(low, high)`` of finite numbers with ``low < high``."""
    if value is None:
        return None
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be None or a pair (low, high); received "
                        f"{type(value).__name__} {value!r}") from None
    lo, hi = real(f"{name}[0]", lo), real(f"{name}[1]", hi)
    if not lo < hi:
        raise ValueError(f"{name} must have low < high; received {value!r}")
    return (lo, hi)


def shape_tuple(name: str, value):
    """``None`` or a tuple of positive integers (an image shape)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be None or a tuple of positive integers; received "
                        f"{type(value).__name__} {value!r}")
    return tuple(positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


def model_protocol(name: str, value):
    """A ScoreModel: callable, with ``process`` and ``prediction`` (see samplers)."""
    if value is None or not callable(value):
        raise TypeError(f"{name} must be a ScoreModel (callable as {name}(x_t, t), with "
                        f"process and prediction); received {type(value).__name__}")
    check_model(value)
    return value


#: Validator of each recipe argument, by name. One name means one valid range in every
#: recipe; the comment says why the range is what it is.
RULES: dict[str, Callable] = {
    "model": model_protocol,
    "op": operator,
    "y": finite_array,                      # a measurement: NaN/inf would poison every step
    "A": matrix,
    "lower": bin_edges,                     # ±inf are the open outer bins, NaN is an error
    "upper": bin_edges,
    "x_init": optional(finite_array),
    "n": optional(positive_int),            # samples per measurement (a batch axis)
    "steps": positive_int,
    "steps_each": positive_int,             # Langevin steps per level (K)
    "iters": positive_int,                  # EP iterations
    "sigma_y": positive,                    # measurement noise std
    "sigma": positive,
    "lam": nonnegative,                     # DMPS weight λ (0: unguided)
    "zeta": positive,                       # DPS step ζ (ζ <= 0 walks away from y)
    "gamma": nonnegative,                   # Langevin likelihood weight γ (0: unguided)
    "eps": positive,                        # Langevin step size ε
    "eta": in_range(0.0, 1.0),              # DDIM noise: 0 deterministic .. 1 DDPM-like;
                                            # > 1 makes the DDIM variance negative
    "damping": in_range(0.0, 1.0, high_open=True),   # EP damping (1 would never update)
    "t_start": optional(in_range(0.0, 1.0, low_open=True, high_open=True)),  # flow time;
                                            # t = 1 has a_t = 0 (x0-hat undefined)
    "clip_x0": interval_pair,
    "guidance_at": choice("x_t", "x_prev"),
    # DAPS (Zhang et al. 2025) and RED-diff (Mardani et al. 2024)
    "annealing_steps": positive_int,        # DAPS noise levels
    "ode_steps": positive_int,              # DAPS Euler steps per level
    "langevin_steps": positive_int,         # DAPS Langevin steps per level
    "sigma_max": positive,                  # DAPS first level (VE sigma)
    "sigma_min": positive,
    "ode_sigma_min": positive,              # where DAPS's ODE stops (> 0: x0-hat at sigma=0
                                            # needs the network at sigma = 0)
    "lr": positive,                         # Langevin / Adam step size
    "lr_min_ratio": positive,               # DAPS: final Langevin step / first
    "tau": optional(positive),              # DAPS likelihood noise level (None: sigma_y)
    "schedule": choice("descending", "random"),   # RED-diff's order of the time grid
    "in_shape": shape_tuple,
    "progress": flag,
    "return_info": flag,
    "record_guidance": flag,
    "final_denoise": flag,
    "eta_b": in_range(0.0, 1.0),            # DDRM: share of y in the coordinates noisier than y
    "kappa": in_range(0.0, 1.0, low_open=True, high_open=True),  # MCGdiff: potential's
                                            # variance at tau_i (0 would be a Dirac)
    "n_particles": positive_int,
    "travel_length": positive_int,          # DDNM time travel (1, 1: none)
    "travel_repeat": positive_int,
}


def check_arguments(*, required=(), rules=None, **named) -> dict:
    r"""Check each keyword argument with its rule in :data:`RULES`; return the checked values.

    Raises ``TypeError``/``ValueError`` naming the first bad argument. A name without a rule
    is a programming error (``KeyError``): add the rule, so that every recipe shares it.
    Names in ``required`` must not be ``None`` (for a recipe where an optional-elsewhere
    argument has a number as default). ``rules`` maps a name to a validator for this call
    only: for a paper whose symbol means something else than in :data:`RULES` (DiffPIR's
    :math:`\zeta \in [0, 1]` is not DPS's step size), e.g.
    ``check_arguments(rules={"zeta": in_range(0.0, 1.0)}, zeta=zeta, ...)``. Across
    arguments: ``y`` must end with ``op``'s output shape, ``x_init`` with its input shape, and
    ``x_init`` lives with ``y`` (one backend and device).

    Examples
    --------
    >>> from invdiff.methods._common import check_arguments
    >>> check_arguments(steps=10, lam=1.75)
    {'steps': 10, 'lam': 1.75}
    >>> check_arguments(n=2.5)
    Traceback (most recent call last):
    ...
    ValueError: n must be a positive integer; received 2.5
    >>> check_arguments(lam=-1)
    Traceback (most recent call last):
    ...
    ValueError: lam must be >= 0; received -1
    >>> check_arguments(rules={"zeta": in_range(0.0, 1.0)}, zeta=0.0)
    {'zeta': 0.0}
    """
    for name in required:
        if named.get(name) is None:
            raise TypeError(f"{name} must be given (a number); received None")
    table = RULES if rules is None else {**RULES, **rules}
    checked = {name: table[name](name, value) for name, value in named.items()}
    op, y, x_init = named.get("op"), named.get("y"), named.get("x_init")
    if op is not None and not is_array(op):
        if y is not None:
            check_trailing_shape("y", y, tuple(op.out_shape))
        if x_init is not None:
            check_trailing_shape("x_init", x_init, tuple(op.in_shape))
    if y is not None and x_init is not None:
        namespace(x_init=x_init, y=y)
    return checked


def _flow_start(steps: int, t_start):
    """The start of the flow recipes: ``t_start``, else :math:`t_0 = 1 - 1/K` (K = steps).

    ``K = 1`` would start at ``t = 0`` (the data): nothing to integrate.
    """
    if t_start is not None:
        return t_start
    if steps < 2:
        raise ValueError(f"steps must be >= 2 when t_start is not given (the default start "
                         f"t0 = 1 - 1/steps is 0 for steps={steps}); received steps={steps}")
    return 1.0 - 1.0 / steps


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
    in_shape = shape_tuple("in_shape", in_shape)
    if (in_shape is None and not (svd and is_array(op))) or not (
            is_array(op) or hasattr(op, "in_shape")):
        return op  # as given: check_arguments says what is wrong with a bad op
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
        check_trailing_shape("x_init", x_init, _in_shape(op))
        return x_init
    check_floating("y", y)
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
