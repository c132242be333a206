r"""Tasks of a sweep: a ``[tasks.NAME]`` table fixes the operator and the measurement.

Gaussian tasks (``sigma_y``): :math:`y = A x + \sigma_y n` in the prior's units (``[-1, 1]`` for
the bundled priors; the DMPS/DPS papers' :math:`\sigma_y = 0.05`).

==========================  ======================================================================
``operator``                parameters (defaults)
==========================  ======================================================================
``super_resolution``        ``factor`` (4), ``kind`` (``"block"`` average or ``"bicubic"``)
``gaussian_blur``           ``sigma`` (3.0, pixels), ``size`` (2⌈5σ⌉+1 taps), zero padding
``uniform_blur``            ``size`` (9)
``inpainting``              ``observed`` fraction of pixels (random mask, one per task, drawn
                            from the seed), ``per_channel`` (false)
``colorization``            the mean of the color channels (RGB data only; other data skip it)
``identity``                denoising
``sr4``, ``deblur``,        the tasks of ``invdiff restore`` (:mod:`invdiff._tasks`):
``colorize``, ``denoise``   bicubic SR×4, Gaussian blur of ``blur_sigma`` (3.0) ...
==========================  ======================================================================

Quantized compressed-sensing tasks (``bits``, ``sigma``): the image in ``[0, 1]`` units
:math:`u` is measured as in the QCS-SGM reference, :math:`y = Q(A\,\mathrm{vec}(u) + \sigma n)`
with the per-image quantizer of :meth:`invdiff.measurements.Quantizer.from_data`, and the
matrix is one of ``gaussian_matrix`` (``M``), ``ill_conditioned_matrix`` (``M`` and
``kappa``, the QCS-SGM+ ratio of *squared* singular values, or ``cond`` = the ratio of
singular values) or ``correlated_matrix`` (``M``, ``rho``), drawn from the seed. Random
operators (masks, matrices) are shared by the tasks whose operator tables are equal: the
1-, 2- and 3-bit tasks of one matrix see the same matrix.

Every task may also say ``title`` (its name in tables), ``data`` (the data tables it runs on)
and ``max_images`` (only the first test images, e.g. for an expensive part of a sweep).
"""

from __future__ import annotations

import math

from ._errors import SweepError

__all__ = ["OPERATORS", "check_task", "applicable", "build_operator", "quantized"]

_IMAGE = {
    "super_resolution": {"factor": 4, "kind": "block"},
    "gaussian_blur": {"sigma": 3.0, "size": None},
    "uniform_blur": {"size": 9},
    "inpainting": {"observed": None, "per_channel": False},
    "colorization": {},
    "identity": {},
    "sr4": {}, "deblur": {"blur_sigma": 3.0}, "colorize": {}, "denoise": {},
}
_MATRIX = {
    "gaussian_matrix": {"M": None},
    "ill_conditioned_matrix": {"M": None, "kappa": None, "cond": None},
    "correlated_matrix": {"M": None, "rho": None},
}
OPERATORS = tuple(_IMAGE) + tuple(_MATRIX)
_COMMON = {"operator", "sigma_y", "bits", "sigma", "title", "data", "max_images"}


def quantized(task: dict) -> bool:
    """True for a quantized compressed-sensing task."""
    return "bits" in task


def check_task(name: str, task: dict) -> dict:
    """Validate ``tasks.NAME`` and return it with the operator's defaults filled in."""
    where = f"tasks.{name}"
    if not isinstance(task, dict):
        raise SweepError(f"{where} must be a table; received {type(task).__name__}")
    op = task.get("operator")
    if op not in OPERATORS:
        raise SweepError(f"{where}.operator must be one of {OPERATORS}; received {op!r}")
    params = {**_IMAGE, **_MATRIX}[op]
    unknown = set(task) - _COMMON - set(params)
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {sorted(unknown)} for operator {op!r}; "
                         f"allowed: {sorted(_COMMON | set(params))}")
    out = {**{k: v for k, v in params.items() if v is not None}, **task}
    if op in _MATRIX:
        if "bits" not in task or "sigma" not in task:
            raise SweepError(f"{where}: the matrix operator {op!r} is a quantized "
                             "compressed-sensing task and needs bits and sigma")
        _positive_int(where, "M", task.get("M"))
        if op == "ill_conditioned_matrix" and ("kappa" in task) == ("cond" in task):
            raise SweepError(f"{where}: give exactly one of kappa (ratio of squared singular "
                             "values, the QCS-SGM+ paper's) or cond")
        if op == "correlated_matrix" and not isinstance(task.get("rho"), (int, float)):
            raise SweepError(f"{where}.rho must be a number; received {task.get('rho')!r}")
    if "bits" in task:
        if op not in _MATRIX:
            raise SweepError(f"{where}: bits (quantized measurements) needs a matrix operator "
                             f"({', '.join(_MATRIX)}); received {op!r}")
        _positive_int(where, "bits", task["bits"])
        _nonnegative(where, "sigma", task["sigma"])
        if "sigma_y" in task:
            raise SweepError(f"{where}: a quantized task takes sigma (noise before "
                             "quantization), not sigma_y")
    else:
        if "sigma_y" not in task:
            raise SweepError(f"{where}.sigma_y is required (Gaussian noise std in the prior's "
                             "units, e.g. 0.05 for [-1, 1] images)")
        _nonnegative(where, "sigma_y", task["sigma_y"])
        if op == "inpainting":
            obs = task.get("observed")
            if not isinstance(obs, (int, float)) or not 0 < obs <= 1:
                raise SweepError(f"{where}.observed must be a fraction in (0, 1]; received "
                                 f"{obs!r}")
    if "max_images" in task:
        _positive_int(where, "max_images", task["max_images"])
    return out


def _positive_int(where, key, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SweepError(f"{where}.{key} must be a positive integer; received {v!r}")


def _nonnegative(where, key, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v)
                                                                      and v >= 0):
        raise SweepError(f"{where}.{key} must be a finite number >= 0; received {v!r}")


def operator_table(task: dict) -> dict:
    """The entries of ``task`` that define its operator (not its noise, bits or labels).

    Examples
    --------
    >>> from invdiff.sweep._tasks import operator_table
    >>> operator_table({"operator": "gaussian_matrix", "M": 200, "bits": 2, "sigma": 0.05})
    {'operator': 'gaussian_matrix', 'M': 200}
    """
    return {k: v for k, v in task.items()
            if (k not in _COMMON and k != "name") or k == "operator"}


def applicable(task: dict, shape) -> str | None:
    """Why ``task`` cannot run on images of ``shape`` (``None`` when it can)."""
    if task["operator"] in ("colorization", "colorize") and shape[0] != 3:
        return "colorization needs RGB images"
    if task["operator"] in ("super_resolution", "sr4"):
        f = task.get("factor", 4)
        if shape[1] % f or shape[2] % f:
            return f"super-resolution x{f} needs sizes divisible by {f}"
    return None


def build_operator(task: dict, shape, rng, like):
    """The operator (image tasks) or ``(M, N)`` matrix (quantized tasks) of ``task``.

    ``rng`` (an :class:`invdiff.random.Generator`) draws the random mask or matrix; ``like``
    fixes namespace, device and dtype.
    """
    import invdiff as ivd
    from invdiff import _tasks as cli_tasks

    ops = ivd.operators
    op = task["operator"]
    shape = tuple(shape)
    if op == "super_resolution":
        return ops.SuperResolution(task["factor"], shape, task["kind"], like=like)
    if op == "gaussian_blur":
        return ops.SeparableBlur.gaussian(shape, sigma=task["sigma"], size=task.get("size"),
                                          like=like)
    if op == "uniform_blur":
        return ops.SeparableBlur.uniform(shape, size=task["size"], like=like)
    if op == "inpainting":
        return ops.Inpainting.random(shape, task["observed"], rng=rng,
                                     per_channel=task["per_channel"], like=like)
    if op == "colorization":
        return ops.Colorization(shape, like=like)
    if op == "identity":
        return ops.Identity(shape, like=like)
    if op in ("sr4", "deblur", "colorize", "denoise"):
        return cli_tasks.build_operator(op, shape, blur_sigma=task.get("blur_sigma", 3.0))
    N = math.prod(shape)
    M = task["M"]
    if op == "gaussian_matrix":
        return ops.gaussian_matrix(M, N, rng, like=like)
    if op == "ill_conditioned_matrix":
        cond = task["cond"] if "cond" in task else task["kappa"] ** ((M - 1) / (2 * M))
        return ops.ill_conditioned_matrix(M, N, cond, rng, like=like)
    return ops.correlated_matrix(M, N, task["rho"], rng, like=like)
