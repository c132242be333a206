"""Pieces every integrator shares: input checks, one-pass guidance evaluation, time grids,
progress bars and callbacks.

The guidance contract (TEAM notes): a guidance object has ``score(x_t, t)``, the gradient
of :math:`\\log \\tilde p(y \\mid x_t)` in the model's process time. One that needs the
network (DPS, PiGDM) sets ``needs_model = True`` and has ``score_and_eps(x_t, t) ->
(score, eps_hat)``, where ``eps_hat`` comes from the same forward pass as its vjp; the
integrator then uses that ``eps_hat`` instead of calling the model again.
"""

from __future__ import annotations

import math

from .._array_api import check_finite, check_floating, namespace
from ..processes import PREDICTIONS, VE, ForwardProcess, convert, predict
from ..random import Generator

__all__ = [
    "setup",
    "evaluate",
    "sample_norms",
    "guidance_info",
    "progress_bar",
    "finish",
    "vp_times",
    "start_time",
    "continuous_times",
    "as_generator",
    "check_model",
    "check_process_kind",
    "check_guidance",
    "check_real",
    "check_steps",
    "check_choice",
]


def check_model(model) -> None:
    """Raise unless ``model`` follows the ScoreModel protocol."""
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t); received {type(model).__name__}")
    process = getattr(model, "process", None)
    if not isinstance(process, ForwardProcess):
        raise TypeError("model.process must be an invdiff.processes.ForwardProcess; "
                        f"received {type(process).__name__}")
    prediction = getattr(model, "prediction", None)
    if prediction not in PREDICTIONS:
        raise ValueError(f"model.prediction must be one of {PREDICTIONS}; received {prediction!r}")


def check_process_kind(sampler: str, process, kind) -> None:
    """Raise ``TypeError`` unless ``process`` is a ``kind`` (``VP`` or ``VE``) process."""
    if not isinstance(process, kind):
        raise TypeError(f"{sampler} needs a model with a {kind.__name__} process; received "
                        f"{type(process).__name__} (wrap it with invdiff.processes.reexpress)")


def check_guidance(guidance) -> None:
    """Raise unless ``guidance`` is ``None`` or follows the Likelihood protocol."""
    if guidance is None:
        return
    if not callable(getattr(guidance, "score", None)):
        raise TypeError("guidance must be None or have a method score(x_t, t); "
                        f"received {type(guidance).__name__}")
    if getattr(guidance, "needs_model", False) and not callable(
            getattr(guidance, "score_and_eps", None)):
        raise TypeError("guidance with needs_model=True must have score_and_eps(x_t, t); "
                        f"{type(guidance).__name__} has none")


def check_real(name: str, value) -> float:
    """``value`` as a finite Python float, or ``TypeError``/``ValueError`` naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number; received {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; received {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; received {value!r}")
    return v


def check_steps(name: str, steps, upper: int | None = None) -> int:
    """A positive integer (at most ``upper``), or ``ValueError`` naming ``name``."""
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or int(steps) != steps \
            or steps < 1:
        raise ValueError(f"{name} must be a positive integer; received {steps!r}")
    if upper is not None and steps > upper:
        raise ValueError(f"{name} must be at most {upper}; received {steps!r}")
    return int(steps)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; received {value!r}")
    return value


def as_generator(rng) -> Generator:
    """``None`` (fresh OS entropy), an integer seed, or an :class:`invdiff.random.Generator`."""
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        return Generator(rng)
    if isinstance(rng, Generator):
        return rng
    raise TypeError("rng must be None, an integer seed or an invdiff.random.Generator; "
                    f"received {type(rng).__name__}")


def setup(model, x_init, guidance, scale, rng):
    """Check a sampler's common arguments; return ``(xp, scale, rng)``."""
    check_model(model)
    check_floating("x_init", x_init)
    xp = namespace(x_init=x_init)
    if x_init.ndim < 1:
        raise ValueError("x_init must have at least one axis (a batch of samples or one sample); "
                         "received a 0-d array")
    check_finite("x_init", x_init, xp)
    if not bool(xp.all(xp.isfinite(x_init))):
        raise ValueError("x_init must be finite; received infinite entries")
    check_guidance(guidance)
    return xp, check_real("scale", scale), as_generator(rng)


def evaluate(model, guidance, x, t, kind: str):
    """The model's prediction as ``kind`` and the guidance score at ``(x, t)``: one network pass.

    Returns ``(prediction, g)`` with ``g = None`` without guidance.
    """
    if guidance is not None and getattr(guidance, "needs_model", False):
        g, eps = guidance.score_and_eps(x, t)
        return convert(eps, "eps", kind, x, t, model.process), g
    pred = predict(model, x, t, kind)
    return pred, (None if guidance is None else guidance.score(x, t))


def sample_norms(xp, v, keepdims: bool = True):
    """Euclidean norm of each sample: the first axis is the batch (a 1-D array is one sample).

    With ``keepdims`` the result broadcasts against ``v``; otherwise it has shape ``(n,)``.
    """
    if v.ndim == 1:
        n = xp.sqrt(xp.sum(v * v))
        return n if keepdims else xp.reshape(n, (1,))
    flat = xp.reshape(v, (v.shape[0], -1))
    n = xp.sqrt(xp.sum(flat * flat, axis=1))
    return xp.reshape(n, (v.shape[0],) + (1,) * (v.ndim - 1)) if keepdims else n


def guidance_info(xp, g, callback):
    """Per-sample guidance norms for the callback (computed only when someone listens)."""
    if callback is None or g is None:
        return None
    return sample_norms(xp, g, keepdims=False)


def progress_bar(iterable, enabled: bool, total: int, desc: str):
    """``iterable`` wrapped in a tqdm bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc)


def finish(xp, x, x_init):
    """The final sample in ``x_init``'s dtype (a model that promotes dtypes is not our output)."""
    return x if x.dtype == x_init.dtype else xp.astype(x, x_init.dtype)


def vp_times(process, steps: int) -> list[tuple[int, int]]:
    """Integer DDPM steps ``(t, t_prev)`` from ``T`` down to ``0``, evenly respaced.

    ``steps == T`` visits every step; fewer steps keep ``T`` and ``1`` and space the rest
    evenly (``space_timesteps`` of improved-diffusion, Nichol & Dhariwal 2021), so the
    sampler starts where ``x_init`` lives.
    """
    T = process.T
    steps = check_steps("steps", steps, upper=T)
    if steps == 1:
        ts = [T]
    else:
        ts = [int(round(1 + (T - 1) * i / (steps - 1))) for i in range(steps)][::-1]
    return list(zip(ts, ts[1:] + [0], strict=True))


def start_time(process, t_start) -> float:
    """The first time of a continuous integrator.

    Default ``process.t_max``, except where :math:`a_t = 0` there (the flow path at ``t = 1``):
    :math:`\\hat x_0`, the velocity and the SDE drift divide by :math:`a_t`, so the integration
    starts at ``t_max - 1e-3 (t_max - t_min)``, as RectifiedFlow's sampler does (``eps=1e-3``).
    """
    lo, hi = process.t_min, process.t_max
    if t_start is None:
        return hi if process.a(hi) > 0 else hi - 1e-3 * (hi - lo)
    t0 = check_real("t_start", t_start)
    if not lo < t0 <= hi:
        raise ValueError(f"t_start must lie in ({lo}, {hi}]; received {t_start!r}")
    if not process.a(t0) > 0:
        raise ValueError(f"t_start must be a time where a_t > 0; a({t0}) = {process.a(t0)}")
    return t0


def continuous_times(process, steps: int, t_start=None) -> list[float]:
    """``steps + 1`` decreasing times from the start time to ``t_min``.

    Uniform in ``t`` (VP steps, flow time); geometric for VE, where ``t`` is the noise level
    (``VE.time_grid``'s spacing).
    """
    steps = check_steps("steps", steps)
    t0, t1 = start_time(process, t_start), process.t_min
    if isinstance(process, VE):
        return [t0 * (t1 / t0) ** (i / steps) for i in range(steps + 1)]
    return [t0 + (t1 - t0) * i / steps for i in range(steps + 1)]
