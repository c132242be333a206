"""``invdiff restore``: posterior sampling for a user's degraded image, and the shared runner.

The runner (:func:`load_model`, :func:`sample`, :class:`Progress`) is also used by
``invdiff demo``. Arrays live in the model's namespace (torch tensors on ``--device`` for the
bundled priors) and the math here is Array API; decoding and encoding images are the business
of :mod:`invdiff.io`, moving arrays to the model that of :mod:`invdiff.cli._io` (NumPy, torch).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from .. import methods as _methods
from .._array_api import namespace
from .._posterior import summarize
from .._tasks import TASKS, build_operator, output_shape, to_model_units
from ..io import FORMATS, AtomicWriter, match_channels, read_image, to_uint8, write_image
from . import _budget
from ._errors import CLIError, one_line
from ._io import as_model_array, check_output_path, observed_pixels, to_numpy, write_npz
from ._priors import check_network_input, load_checkpoint_model, load_model

__all__ = ["METHODS", "Progress", "load_model", "sample", "run_restore"]

#: Iterations of the TV baseline (``--steps`` for ``--method tv``).
TV_ITERS = 300

#: Restoration methods of ``restore``: name -> (description, default steps or None).
METHODS: dict[str, tuple[str, int | None]] = {
    "dmps": ("DMPS, DDPM ancestral + closed-form pseudo-likelihood (Meng & Kabashima 2024), "
             "lambda = 1.75", 1000),
    "dps": ("DPS, DDPM ancestral + gradient step on ||y - A x0_hat|| (Chung et al. 2023), "
            "zeta = 0.3", 1000),
    "pigdm": ("PiGDM, DDIM eta = 1 + pseudoinverse guidance (Song et al. 2023)", 100),
    "dmps_flow": ("DMPS in the flow ODE (Euler), the DDPM prior re-expressed as a flow", 50),
    "dps_flow": ("DPS guidance in the flow ODE (Euler)", 50),
    "ot_ode": ("OT-ODE, PiGDM guidance in the flow ODE (Pokle et al. 2024)", 50),
    "tv": ("total-variation regularised least squares (Chambolle-Pock), a classic baseline: "
           "one deterministic estimate, no posterior", None),
}


class Progress:
    """A ScoreModel that advances a progress bar at every network evaluation.

    Wraps ``model`` transparently (``process``, ``prediction``, ``data_range``, ``vjp`` and a
    learned variance ``predict_with_log_variance``, which the ancestral sampler uses when
    present); ``bar`` is any object with ``update(n)`` (a tqdm bar) or ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> from invdiff.cli._restore import Progress
    >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.eye(2), process=ivd.processes.VP.linear())
    >>> counted = Progress(prior, None)
    >>> _ = counted(np.zeros((1, 2)), 10.0)
    >>> counted.nfe
    1
    """

    def __init__(self, model, bar):
        self.model, self.bar, self.nfe = model, bar, 0
        self.process, self.prediction = model.process, model.prediction
        for name in ("data_range", "vjp_accepts_callable"):
            if hasattr(model, name):
                setattr(self, name, getattr(model, name))
        if callable(getattr(model, "vjp", None)):
            self.vjp = self._vjp
        # a learned variance (ADM's learn_sigma) must stay visible to the ancestral sampler
        if callable(getattr(model, "predict_with_log_variance", None)):
            self.predict_with_log_variance = self._predict_with_log_variance

    def _tick(self):
        self.nfe += 1
        if self.bar is not None:
            self.bar.update(1)

    def __call__(self, x_t, t):
        self._tick()
        return self.model(x_t, t)

    def _vjp(self, x_t, t, cotangent):
        self._tick()
        return self.model.vjp(x_t, t, cotangent)

    def _predict_with_log_variance(self, x_t, t):
        self._tick()
        return self.model.predict_with_log_variance(x_t, t)


def sample(method: str, model, op, y, sigma_y: float, *, n: int, steps=None, rng=None,
           batch_size: int = 8, bar=None, tv_lam: float | None = None):
    """``n`` posterior samples ``(n, *op.in_shape)`` of ``method`` and run information.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    model : ScoreModel
        In model units; samples are clipped to nothing (the methods clip x0 themselves).
    op : SVDOperator
    y : array, shape ``op.out_shape``
        One measurement in model units.
    sigma_y : float
        Noise standard deviation in model units.
    n : int
        Number of samples; drawn in chunks of ``batch_size``.
    steps : int, optional
        Integrator steps (method default if ``None``); for ``tv`` the iterations (300).
    rng : invdiff.random.Generator
        One child generator per chunk is spawned from it.
    bar : tqdm-like, optional
        Advanced at every network evaluation.
    tv_lam : float, optional
        :math:`\\lambda` for ``tv`` (required then), for data in ``[-1, 1]``; rescaled to the
        model's ``data_range``.

    Returns
    -------
    samples : array
    info : dict
        ``seconds`` (wall), ``nfe`` (network evaluations), ``steps``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> from invdiff.cli._restore import sample
    >>> prior = ivd.priors.GaussianPrior(np.zeros(4), np.eye(4), process=ivd.processes.VP.linear())
    >>> op = ivd.operators.DenseMatrix(np.eye(2, 4))
    >>> x, info = sample("dmps", prior, op, np.array([0.5, -0.5]), 0.1, n=3, steps=20,
    ...                  rng=ivd.random.Generator(0))
    >>> x.shape, info["nfe"]  # one network evaluation per step for the whole batch
    ((3, 4), 20)
    """
    from .. import baselines
    from ..random import Generator

    if method not in METHODS:
        raise CLIError(f"--method must be one of {sorted(METHODS)}; received {method!r}")
    for name, value in (("n", n), ("batch_size", batch_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; received {value!r}")
    rng = rng if rng is not None else Generator()
    start = time.perf_counter()
    if method == "tv":
        low, high = getattr(model, "data_range", (-1.0, 1.0))
        # TV's lambda scales with the data: tuned for [-1, 1] (width 2)
        iters = TV_ITERS if steps is None else int(steps)
        x = baselines.tv(op, y, tv_lam * (high - low) / 2.0, iters=iters)
        return namespace(x=x).stack([x]), {"seconds": time.perf_counter() - start, "nfe": 0,
                                           "steps": iters}
    steps = METHODS[method][1] if steps is None else int(steps)
    counted = Progress(model, bar)
    chunks, parts = [], []
    left = int(n)
    while left > 0:
        chunks.append(min(left, int(batch_size)))
        left -= chunks[-1]
    clip = tuple(getattr(model, "data_range", (-1.0, 1.0)))
    for size, child in zip(chunks, rng.spawn(len(chunks)), strict=True):
        parts.append(_call(method, counted, op, y, sigma_y, size, steps, child, clip))
    x = parts[0] if len(parts) == 1 else namespace(x=parts[0]).concat(parts, axis=0)
    return x, {"seconds": time.perf_counter() - start, "nfe": counted.nfe, "steps": steps}


def _call(method, model, op, y, sigma_y, n, steps, rng, clip):
    f = getattr(_methods, method)
    if method == "dmps":
        return f(model, op, y, sigma_y, rng=rng, n=n, steps=steps, clip_x0=clip)
    if method == "dps":
        return f(model, op, y, rng=rng, n=n, steps=steps, clip_x0=clip)
    if method == "dps_flow":
        return f(model, op, y, rng=rng, n=n, steps=steps)
    return f(model, op, y, sigma_y, rng=rng, n=n, steps=steps)  # pigdm, dmps_flow, ot_ode


# ------------------------------------------------------------------------- restore command
def _check_size(task, v_shape, out, model):
    """Refuse shapes the prior cannot take, with the sizes that would work."""
    _, h, w = v_shape
    C, H, W = out
    size, mult = getattr(model, "image_size", None), getattr(model, "size_multiple", 1) or 1
    factor = 4 if task == "sr4" else 1
    if size:
        if (H, W) != (size, size):
            need = f"{size // factor}x{size // factor}" if size % factor == 0 else "none"
            raise CLIError(f"--input: the {model.name!r} prior restores {size}x{size} images "
                           f"only; task {task!r} then needs a {need} input (width x height); "
                           f"received {w}x{h}")
        return
    if H % mult or W % mult:
        m = mult // math.gcd(mult, factor)
        up = f"{w + (-w) % m}x{h + (-h) % m}"
        fix = f"crop or pad it to {w - w % m}x{h - h % m} or {up}" if min(w, h) >= m else \
            f"pad it to {up}"
        raise CLIError(
            f"--input: task {task!r} with the {model.name!r} prior needs an input whose width "
            f"and height are multiples of {m} (the restored image, {factor}x the input, must "
            f"be a multiple of the network's downsampling {mult}); received {w}x{h}: {fix}")


def _mask(args, v):
    """Observed pixels (bool ``(H, W)``) from --mask, or the non-black pixels of the input."""
    m = None if args.mask is None else _read01(args.mask, "--mask")
    return observed_pixels(v, m)


def _read01(path, option: str):
    """The image file of ``option`` as ``(C, H, W)`` float32 intensities in ``[0, 1]``."""
    return read_image(path, data_range=(0.0, 1.0), name=option)


def _check_options(args) -> None:
    """Combinations of options that cannot work, refused before anything is read."""
    if args.mask is not None and args.task != "inpaint":
        raise CLIError("--mask is only used by --task inpaint")
    if args.blur_sigma is not None and args.task != "deblur":
        raise CLIError("--blur-sigma is only used by --task deblur")
    if args.checkpoint is None:
        for option, value in (("--arch", args.arch), ("--config", args.config),
                              ("--class-label", args.class_label)):
            if value is not None:
                raise CLIError(f"{option} is only used with --checkpoint")
    elif args.model is not None or args.weights_dir is not None:
        raise CLIError("--checkpoint replaces the bundled priors: drop --model/--weights-dir")
    if args.method == "tv" and args.batch_size is not None:
        raise CLIError("--batch-size is not used by --method tv (no network)")


def _outputs(out: Path, K: int, npz: bool) -> list[Path]:
    stem = out.with_suffix("")
    extra = [Path(f"{stem}_std.png"), Path(f"{stem}_ci90.png")] if K > 1 else []
    return extra + ([Path(f"{stem}_posterior.npz")] if npz else [])


def _prior(args):
    if args.checkpoint is not None:
        return load_checkpoint_model(args.checkpoint, args.arch, args.config,
                                     device=args.device, class_label=args.class_label)
    return load_model(args.model or "natural", device=args.device,
                      weights_dir=args.weights_dir)


class _Stop(Exception):
    """Raised at the first network evaluation of an argument check."""


class _StopAtFirstEvaluation:
    def update(self, n):
        raise _Stop


#: Library argument names -> the option that sets them (for messages).
_OPTION_OF = {"steps": "--steps", "n": "--samples", "sigma_y": "--sigma-y",
              "sigma": "--sigma-y", "iters": "--steps"}


def _check_method(method, model, op, y, sigma, steps, tv_lam) -> None:
    """Run the method's own argument checks (they come before its first network evaluation)
    on one sample, so that e.g. ``--steps 5000`` on a 1000-step prior fails before any work."""
    from ..random import Generator

    if method == "tv":
        return
    try:
        sample(method, model, op, y, sigma, n=1, steps=steps, rng=Generator(0), batch_size=1,
               bar=_StopAtFirstEvaluation(), tv_lam=tv_lam)
    except _Stop:
        return
    except (ValueError, TypeError) as e:
        text = one_line(e)
        option = _OPTION_OF.get(text.split(" ", 1)[0], f"--method {method}")
        raise CLIError(f"{option}: {text} (method {method} with this prior)") from None


def run_restore(args) -> int:
    """The ``restore`` command (``args`` from the CLI parser); returns the exit status.

    Examples
    --------
    >>> from invdiff.cli import main
    >>> main(["restore", "--help"])  # doctest: +SKIP
    """
    from ..random import Generator

    _check_options(args)
    K = 1 if args.method == "tv" else args.samples
    out = check_output_path(args.output)
    check_output_path(out, extra=_outputs(out, K, args.npz))
    v = _read01(args.input, "--input")
    if args.mask is not None:
        _read01(args.mask, "--mask")  # fail on a bad mask before loading the model
    model = _prior(args)
    task = TASKS[args.task]
    if args.task == "colorize" and model.channels != 3:
        raise CLIError(f"--task colorize needs an RGB prior; {model.name!r} has "
                       f"{model.channels} channel(s)")
    v = match_channels(v, 1 if args.task == "colorize" else model.channels)
    shape = output_shape(args.task, v.shape, model.channels)
    _check_size(args.task, v.shape, shape, model)
    check_network_input(model, shape)
    _note_trained_size(model, shape)
    mask = _mask(args, v) if args.task == "inpaint" else None

    low, high = model.data_range
    s = high - low
    blur = 3.0 if args.blur_sigma is None else args.blur_sigma
    try:
        op = build_operator(args.task, shape, blur_sigma=blur,
                            mask=None if mask is None else as_model_array(mask, model, "bool"))
    except ValueError as e:  # e.g. a blur kernel wider than the image
        option = "--blur-sigma" if args.task == "deblur" else "--input"
        raise CLIError(f"{option}: cannot build the {args.task!r} operator for a "
                       f"{shape[2]}x{shape[1]} image: {one_line(e)}") from None
    y = to_model_units(as_model_array(v, model), op, model.data_range)
    sigma01 = task.sigma_y if args.sigma_y is None else float(args.sigma_y)
    if args.method == "tv" and args.samples > 1:
        print("invdiff restore: note: tv is a deterministic estimate; --samples is ignored",
              file=sys.stderr)
    steps = args.steps if args.steps is not None else METHODS[args.method][1]
    _check_method(args.method, model, op, y, s * sigma01, steps, task.tv_lam)
    plan = _plan(args, model, shape, K, steps, y)
    print(_describe(args, plan, shape, K, steps, model), flush=True)
    if args.dry_run:
        print("nothing sampled (--dry-run)")
        return 0
    bar = _bar(args, steps, plan.batches)
    try:
        x, info = sample(args.method, model, op, y, s * sigma01, n=K, steps=steps,
                         rng=Generator(args.seed), batch_size=plan.batch, bar=bar,
                         tv_lam=task.tv_lam)
    finally:
        if bar is not None:
            bar.close()
    xp = namespace(x=x)
    if not bool(xp.all(xp.isfinite(x))):
        raise CLIError(f"--method {args.method} diverged (non-finite values); nothing written. "
                       f"Try more --steps or another --method.")
    u = (x - low) / s  # [0, 1] intensities
    summary = summarize(u, level=0.9)
    paths, scales = _write(out, summary, u, u.shape[0], args.npz)
    _report(args, info, summary, paths, sigma01, u.shape[0], scales)
    return 0


def _note_trained_size(model, shape) -> None:
    size = getattr(model, "trained_size", None)
    if size and getattr(model, "image_size", None) is None and tuple(shape[1:]) != (size, size):
        print(f"invdiff restore: note: the network was trained on {size}x{size} images; at "
              f"{shape[2]}x{shape[1]} it may restore worse", file=sys.stderr)


# ------------------------------------------------------------------------- time and memory
def _plan(args, model, shape, K: int, steps: int, like) -> _budget.Plan:
    """Batch size, estimated peak memory and time; refuses what cannot fit (unless --force)."""
    if args.method == "tv":
        return _budget.Plan(1, 1, 0, None, None)
    grad = args.method in _budget.VJP_METHODS
    device = getattr(model, "device", None)
    available = _budget.available_memory(device) if device is not None else None

    peaks = {}

    def plan(b):
        if b not in peaks:  # each estimate runs the network once on the meta device
            net = _budget.network_peak(model, shape, b, grad=grad)
            peaks[b] = None if net is None else net + _budget.sample_bytes(shape, b, K)
        return _budget.Plan(b, math.ceil(K / b), steps, peaks[b], available)

    if args.batch_size is not None:
        chosen = plan(min(args.batch_size, K))
    else:  # the largest batch (up to 8) that fits
        b = min(K, 8)
        chosen = plan(b)
        while not chosen.fits() and b > 1:
            b = max(1, b // 2)
            chosen = plan(b)
    if not chosen.fits():
        if not args.force:
            raise CLIError(_too_big(args, chosen, plan, shape))
        print(f"invdiff restore: warning: --force: the estimated peak memory "
              f"{_budget.fmt_bytes(chosen.peak_bytes)} exceeds the "
              f"{_budget.fmt_bytes(chosen.available_bytes)} available", file=sys.stderr)
    chosen.seconds_per_evaluation = _time_evaluation(model, shape, chosen.batch, grad, like)
    return chosen


def _too_big(args, chosen, plan, shape) -> str:
    need, have = _budget.fmt_bytes(chosen.peak_bytes), _budget.fmt_bytes(chosen.available_bytes)
    size = f"{shape[2]}x{shape[1]}"
    if chosen.batch > 1:
        one = plan(1)
        if one.fits():
            b = chosen.batch
            while b > 1 and not plan(b).fits():
                b //= 2
            return (f"--batch-size: a batch of {chosen.batch} samples of a {size} image needs "
                    f"about {need} of memory, {have} are available: use --batch-size {b} "
                    f"(about {_budget.fmt_bytes(plan(b).peak_bytes)}), or --force to try "
                    f"anyway")
        chosen = one
        need = _budget.fmt_bytes(one.peak_bytes)
    storage = _budget.sample_bytes(shape, 0, args.samples)
    if args.samples > 1 and storage > _budget.HEADROOM * (chosen.available_bytes or 0):
        return (f"--samples: storing {args.samples} samples of a {size} image needs about "
                f"{_budget.fmt_bytes(storage)} of memory, {have} are available: use fewer "
                f"--samples, or --force to try anyway")
    task = " (for sr4 the restored image is 4x the input in each direction)" \
        if args.task == "sr4" else ""
    return (f"--input: restoring a {size} image{task} needs about {need} of memory even one "
            f"sample at a time, {have} are available on {args.device}: restore a smaller "
            f"image (crop it into tiles and restore them one by one), use a device with more "
            f"memory (--device cuda), or --force to try anyway")


def _time_evaluation(model, shape, batch: int, grad: bool, like) -> float | None:
    """One network evaluation at the real size, timed (a second one when the first was
    short: the first call pays for allocations and kernel selection)."""
    try:
        seconds = _budget.evaluation_seconds(model, shape, batch, grad=grad, like=like)
        if seconds < 1.0:
            seconds = _budget.evaluation_seconds(model, shape, batch, grad=grad, like=like)
    except (RuntimeError, ValueError, TypeError) as e:
        if _is_oom(e):
            raise
        raise CLIError(f"--input: the network cannot process a {shape[2]}x{shape[1]} image "
                       f"with {shape[0]} channel(s): {one_line(e)[:300]}") from None
    return seconds


def _is_oom(e) -> bool:
    return type(e).__name__ == "OutOfMemoryError" or "out of memory" in str(e).lower()


def _describe(args, plan: _budget.Plan, shape, K: int, steps: int, model) -> str:
    size = "x".join(map(str, shape))
    if args.method == "tv":
        return f"plan: tv on a {size} image, {steps} iterations (no network)"
    evals = plan.evaluations * plan.batches
    kind = "forward+backward passes" if args.method in _budget.VJP_METHODS else \
        "network evaluations"
    memory = (f"peak memory about {_budget.fmt_bytes(plan.peak_bytes)}"
              + (f" of {_budget.fmt_bytes(plan.available_bytes)} available"
                 if plan.available_bytes is not None else "")
              if plan.peak_bytes is not None else "peak memory not estimated")
    device = getattr(model, "device", "cpu")
    return (f"plan: {K} sample(s) of {size} with {args.method}, {steps} steps, in "
            f"{plan.batches} batch(es) of {plan.batch}: {evals} {kind} of about "
            f"{_budget.fmt_seconds(plan.seconds_per_evaluation)} each = about "
            f"{_budget.fmt_seconds(plan.seconds)}; {memory} ({device})")


def _bar(args, steps, batches):
    if args.no_progress or args.method == "tv":
        return None
    from tqdm.auto import tqdm

    return tqdm(total=batches * steps, desc=f"{args.method} x{args.samples}", unit="nfe",
                file=sys.stderr)


# ------------------------------------------------------------------------- outputs
def _write(out: Path, summary: dict, samples, K: int, npz: bool):
    """Mean (and with K > 1 the std and 90 % interval maps) written all-or-nothing.

    Returns the written paths and the colour-bar top of each map."""
    from ._figure import scale_bar_map

    stem = out.with_suffix("")
    scales = {}
    with AtomicWriter() as w:
        mean = to_numpy(summary["mean"])
        fmt = FORMATS[out.suffix.lower()]
        w.add(out, lambda p: write_image(p, mean, data_range=(0.0, 1.0), format=fmt))
        if K > 1:
            for key, suffix, label in (("std", "_std.png", "std"),
                                       ("width", "_ci90.png", "90% CI")):
                values = to_numpy(summary[key]).mean(axis=0)
                img, scales[key] = scale_bar_map(values, label=label)
                path = Path(f"{stem}{suffix}")
                w.add(path, lambda p, a=img, top=scales[key]: _encode_map(a, p, top))
        if npz:
            w.add(Path(f"{stem}_posterior.npz"),
                  lambda p: write_npz(p, {**summary, "samples": samples}))
        return w.commit(), scales


def _encode_map(img, path, vmax: float) -> None:
    """A colour-mapped PNG recording the top of its scale as text ``invdiff:vmax``."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("invdiff:vmax", repr(float(vmax)))
    info.add_text("invdiff:colormap", "magma, 0 (bottom of the bar) to vmax, [0, 1] intensity")
    Image.fromarray(to_uint8(img, data_range=(0.0, 1.0))).save(path, format="PNG",
                                                                pnginfo=info)


def _report(args, info, summary, paths, sigma01, K, scales):
    std = to_numpy(summary["std"])
    width = to_numpy(summary["width"])
    print(f"restored {args.input} ({args.task}, sigma_y={sigma01:g} on [0,1]) with "
          f"{args.method}: {K} sample(s), {info['nfe']} network evaluations, "
          f"{info['seconds']:.1f} s")
    if K > 1:
        print(f"posterior std (intensity units, [0,1]): mean {std.mean():.4f}, "
              f"max {std.max():.4f}; 90% interval width: mean {width.mean():.4f}, "
              f"max {width.max():.4f}; colour bars of the maps (mean over channels): 0 to "
              f"{scales['std']:g} (std), 0 to {scales['width']:g} (90% CI)")
    for p in paths:
        print(f"wrote {p}")
