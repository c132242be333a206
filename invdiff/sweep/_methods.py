"""The method registry: how the sweep calls each recipe. Adding a method is one entry.

A ``[methods.LABEL]`` table names a ``recipe`` (a key of :data:`METHODS`; default the label
in lower case with ``-`` → ``_`` and ``+`` → ``_plus``, so ``DMPS-flow`` is ``dmps_flow``)
and the recipe's keyword arguments (``steps``, ``zeta`` ...; anything else is an error).
``tasks`` / ``data`` restrict it, ``by_task = {TASK = {zeta = 0.5}}`` overrides arguments
for one task.

* Posterior samplers on Gaussian tasks are called as ``recipe(model, op, y[, sigma_y],
  rng=, x_init=, return_info=True, **arguments)``; every method of a dataset/task/image
  starts from the same draw (``start``: N(0, I), or U over the data range for Langevin),
  unless it builds its own start (``start=None``, OT-ODE's noised pseudo-inverse).
* Quantized samplers (QCS-SGM family) get the reference's change of variables: the image
  in ``[0, 1]`` is measured, the sampler works in the prior's range ``x = low + s u``, so it
  sees the matrix ``A/s`` and bins shifted by ``(low/s) A 1`` (``A u = (A/s) x - (low/s) A
  1``; for ``[-1, 1]``: ``A/2`` and ``-A1/2``, an exact change of variables of the same
  likelihood); the signal-domain arguments
  ``eps``, ``sigma_max``, ``sigma_min`` are given in ``[0, 1]`` units (the reference's) and
  scaled by ``s²``, ``s``, ``s`` (``levels`` with them: ``VE.geometric(s σ_max, s σ_min,
  levels)``; without them the recipe's own process).
* Baselines (``kind="baseline"``) pick their parameter from ``grid`` by validation PSNR
  (:func:`invdiff.baselines.select_lambda`, once per process and task), then solve the
  test batch (only that solve is timed). On quantized tasks they work on ``u`` with the
  dequantized values, as the reference's baselines.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable

__all__ = ["Method", "METHODS", "recipe_function", "method_arguments"]


@dataclasses.dataclass(frozen=True)
class Method:
    """How the sweep calls one recipe.

    Attributes
    ----------
    recipe : str
        Function name in :mod:`invdiff.methods` (``kind="posterior"``) or
        :mod:`invdiff.baselines` (``kind="baseline"``).
    family : str
        Group in reports (``"DDPM"``, ``"flow"``, ``"SVD"``, ``"decoupled"``, ``"Langevin"``,
        ``"sparsity"``).
    kind : {"posterior", "baseline"}
    measurement : {"gaussian", "quantized", "any"}
        The tasks it takes.
    start : {"normal", "uniform"} or None
        The shared start draw passed as ``x_init``; ``None`` lets the recipe start itself.
    start_scale : str or None
        The recipe argument whose value scales the normal start (DAPS starts at
        ``sigma_max`` times N(0, I)).
    quantized_start : {"normal", "uniform", "same"} or None
        The start on quantized tasks: ``"same"`` as ``start``, ``None`` the recipe's own.
    sigma_y : bool
        Whether the recipe takes ``sigma_y`` after ``y`` (DPS does not).
    bins : {"edges", "pair"}
        Quantized tasks: ``recipe(model, A, lower, upper, sigma)`` or ``recipe(model, A,
        (lower, upper), sigma)``.
    reference_units : bool
        Quantized tasks: ``eps``, ``sigma_max``, ``sigma_min`` (with ``levels``) are given
        in ``[0, 1]`` units, as in the QCS-SGM reference, and converted to the prior's.
    tuned : str or None
        Baselines: the name of the parameter chosen on validation images.
    requires : callable or None
        ``requires(task) -> reason or None``: tasks it cannot take.

    Examples
    --------
    A new recipe ``ddrm(model, op, y, sigma_y, *, rng, x_init, ...)`` is one entry::

        METHODS["ddrm"] = Method("ddrm", "DDPM")

    >>> from invdiff.sweep import METHODS
    >>> METHODS["dps"].family, METHODS["dps"].sigma_y, METHODS["ot_ode"].start
    ('DDPM', False, None)
    """

    recipe: str
    family: str
    kind: str = "posterior"
    measurement: str = "gaussian"
    start: str | None = "normal"
    start_scale: str | None = None
    quantized_start: str | None = "same"
    sigma_y: bool = True
    bins: str = "edges"
    reference_units: bool = False
    tuned: str | None = None
    requires: Callable | None = None

    def run(self, problem, args: dict):
        """``(x_hat in the prior's units, info)`` for one batch; ``info``: nfe, seconds."""
        if self.kind == "baseline":
            return _baseline(self, problem, args)
        if problem.quantized:
            return _quantized(self, problem, args)
        return _gaussian(self, problem, args)


def _one_bit(task) -> str | None:
    return None if task.get("bits") == 1 else "BIHT needs 1-bit measurements"


#: The registry: recipe name → :class:`Method`. A spec's label defaults to its recipe
#: (``"PiGDM"`` → ``"pigdm"``).
METHODS: dict[str, Method] = {
    "dmps": Method("dmps", "DDPM"),
    "dps": Method("dps", "DDPM", sigma_y=False),
    "pigdm": Method("pigdm", "DDPM", start=None),  # its code's start: noised A⁺y
    "dmps_flow": Method("dmps_flow", "flow"),
    "dps_flow": Method("dps_flow", "flow", sigma_y=False),
    "ot_ode": Method("ot_ode", "flow", start=None),  # noised Tikhonov estimate
    "ddrm": Method("ddrm", "SVD"),
    "ddnm": Method("ddnm", "SVD"),
    "mcgdiff": Method("mcgdiff", "SVD", start=None),  # particles from its own potential
    "diffpir": Method("diffpir", "decoupled"),
    # DAPS: the shared N(0, I) draw times sigma_max (its first level) on Gaussian tasks; on
    # quantized tasks (exact likelihood, bin edges as a pair) it draws its own start
    "daps": Method("daps", "decoupled", measurement="any", start_scale="sigma_max",
                   quantized_start=None, bins="pair"),
    "red_diff": Method("red_diff", "decoupled", start=None, sigma_y=False),  # starts at A⁺y
    "qcs_sgm": Method("qcs_sgm", "Langevin", measurement="quantized", start="uniform",
                      reference_units=True),
    "qcs_sgm_plus": Method("qcs_sgm_plus", "Langevin", measurement="quantized",
                           start="uniform", reference_units=True),
    "lasso": Method("lasso", "sparsity", kind="baseline", measurement="any", tuned="lam"),
    "tv": Method("tv", "sparsity", kind="baseline", measurement="any", tuned="lam"),
    "biht": Method("biht", "sparsity", kind="baseline", measurement="quantized",
                   tuned="sparsity_k", requires=_one_bit),
}

# arguments the sweep supplies itself
_SUPPLIED = {"model", "op", "op_or_A", "A", "y", "y_sign", "sigma_y", "sigma", "lower", "upper",
             "rng", "x_init", "n", "return_info", "progress", "record_guidance", "in_shape",
             "process", "shape", "callback", "x0"}


def default_recipe(label: str) -> str:
    """``"DMPS-flow"`` → ``"dmps_flow"``, ``"QCS-SGM+"`` → ``"qcs_sgm_plus"``."""
    return label.lower().replace("+", "_plus").replace("-", "_").replace(" ", "_")


def recipe_function(entry: Method):
    import invdiff as ivd

    module = ivd.baselines if entry.kind == "baseline" else ivd.methods
    return getattr(module, entry.recipe)


def method_arguments(entry: Method) -> set[str]:
    """The keyword arguments a spec may give this method."""
    params = inspect.signature(recipe_function(entry)).parameters
    names = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    names -= _SUPPLIED
    if entry.reference_units:
        names |= {"sigma_max", "sigma_min", "levels"}
    if entry.kind == "baseline":
        names = (names - {entry.tuned}) | {"grid"}
    return names


# -- adapters ---------------------------------------------------------------------------------
def _info(info) -> dict:
    """NFE, seconds and the recipe's settings (its JSON-able scalars: steps, zeta ...)."""
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in info.items()
                if k not in ("nfe", "seconds", "method") and _plain(v)}
    return {"nfe": info.get("nfe"), "seconds": info.get("seconds"), "settings": settings}


def _plain(v) -> bool:
    if isinstance(v, tuple):
        return all(_plain(i) for i in v)
    return v is None or isinstance(v, (bool, int, float, str))


def _start(entry, p, args, kind=None):
    kind = kind or entry.start
    x = p.start(kind)
    if entry.start_scale is not None and kind == "normal":
        default = inspect.signature(recipe_function(entry)).parameters[entry.start_scale]
        x = float(args.get(entry.start_scale, default.default)) * x
    return x


def _gaussian(entry, p, args):
    fn = recipe_function(entry)
    head = (p.model, p.op, p.y) + ((p.sigma_y,) if entry.sigma_y else ())
    kw = {"rng": p.rng(), "return_info": True, **args}
    if entry.start is not None:
        kw["x_init"] = _start(entry, p, args)
    x, info = fn(*head, **kw)
    return x, _info(info)


def _quantized(entry, p, args):
    import invdiff as ivd

    fn = recipe_function(entry)
    params = inspect.signature(fn).parameters
    args = dict(args)
    kw = {"rng": p.rng(), "in_shape": p.shape, "return_info": True}
    if entry.reference_units:  # [0, 1] units, as the reference: scale to the prior's
        s = p.high - p.low
        levels = {k: args.pop(k) for k in ("sigma_max", "sigma_min", "levels") if k in args}
        if levels:
            if len(levels) != 3:
                raise ValueError("sigma_max, sigma_min and levels go together; received "
                                 f"{sorted(levels)}")
            kw["process"] = ivd.processes.VE.geometric(
                s * levels["sigma_max"], s * levels["sigma_min"], levels["levels"])
        kw["eps"] = s * s * args.pop("eps", params["eps"].default)
    start = entry.start if entry.quantized_start == "same" else entry.quantized_start
    if start is not None:
        kw["x_init"] = _start(entry, p, args, start)
    A_x, lower_x, upper_x = p.in_model_units()
    y = (lower_x, upper_x) if entry.bins == "pair" else None
    head = (p.model, A_x, y) if y is not None else (p.model, A_x, lower_x, upper_x)
    x, info = fn(*head, p.sigma, **kw, **args)
    return x, _info(info)


def _baseline(entry, p, args):
    fn = recipe_function(entry)
    args = dict(args)
    if "grid" not in args:
        raise ValueError(f"{entry.recipe} needs grid = [...] (candidates of {entry.tuned} "
                         "chosen on the validation images)")
    grid = [float(v) for v in args.pop("grid")]
    xp = p.xp
    if p.quantized:  # the reference's baselines: u in [0, 1], dequantized values
        A, lo, hi, width = p.A, 0.0, 1.0, 1.0
        args.setdefault("shape", p.shape)
        y_test = p.values
        u_val = (p.x_val() - p.low) / (p.high - p.low)
        truth_val, y_val = u_val, p.values_val()
        if entry.recipe == "biht" and args.get("norm", "validation") == "validation":
            flat = xp.reshape(u_val, (u_val.shape[0], -1))
            args["norm"] = float(xp.mean(xp.linalg.vector_norm(flat, axis=1)))
    else:
        A, lo, hi, width = p.op, p.low, p.high, p.high - p.low
        y_test, truth_val, y_val = p.y, p.x_val(), p.y_val()
    integer = entry.tuned == "sparsity_k"

    def solve(y, value):
        value = int(round(value)) if integer else value
        return xp.clip(fn(A, y, value, **args), lo, hi)

    def tune():
        import invdiff as ivd

        return ivd.baselines.select_lambda(solve, grid, truth_val, y_val, data_range=width)[0]

    value = p.memo("tuned", tune)
    start = time.perf_counter()
    x = solve(y_test, value)
    seconds = time.perf_counter() - start
    if p.quantized:
        x = p.low + (p.high - p.low) * x
    chosen = int(round(value)) if integer else value
    return x, {"nfe": None, "seconds": seconds, "selected": {entry.tuned: chosen}}
