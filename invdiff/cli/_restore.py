"""``invdiff restore``: posterior sampling for a user's degraded image, and the shared runner.

The runner (:func:`load_model`, :func:`sample`, :class:`Progress`) is also used by
``invdiff demo``. Arrays live in the model's namespace (torch tensors on ``--device`` for the
bundled priors) and the math here is Array API; decoding, encoding and moving arrays to the
model are the business of :mod:`invdiff.cli._io` (NumPy, Pillow, torch).
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
from ._io import (
    AtomicWriter,
    CLIError,
    as_model_array,
    check_device,
    check_output_path,
    encode_image,
    match_channels,
    observed_pixels,
    read_image,
    to_numpy,
    write_npz,
)

__all__ = ["METHODS", "Progress", "load_model", "sample", "run_restore"]

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

    Wraps ``model`` transparently (``process``, ``prediction``, ``data_range``, ``vjp``);
    ``bar`` is any object with ``update(n)`` (a tqdm bar) or ``None``.

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


def load_model(name: str, *, device: str = "cpu", weights_dir=None, option: str = "--model"):
    """Load bundled prior ``name`` (or from ``weights_dir``) with CLI-friendly errors.

    Examples
    --------
    >>> from invdiff.cli._restore import load_model
    >>> from invdiff.cli._io import CLIError
    >>> try:
    ...     load_model("no-such-prior")
    ... except CLIError as e:
    ...     print(str(e).split(":")[0])
    --model
    """
    try:
        import invdiff_models as ivm
    except ImportError as e:  # pragma: no cover - the [models] extra is missing
        raise CLIError(f"the bundled priors need torch and safetensors: pip install "
                       f"'invdiff[models]' ({e})") from None
    check_device(device)
    names = ivm.available(weights_dir)
    if name not in names:
        where = f"in {weights_dir}" if weights_dir else "bundled with this installation"
        hint = "" if names else (" (train one with `invdiff train NAME --bundle`, or point "
                                 "--weights-dir at a folder with NAME.safetensors + NAME.json)")
        raise CLIError(f"{option + ': ' if option else ''}no prior {name!r} {where}; available: "
                       f"{names or 'none'}{hint}")
    return ivm.load(name, device=device, folder=weights_dir)


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
        Integrator steps (method default if ``None``).
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
    rng = rng if rng is not None else Generator()
    start = time.perf_counter()
    if method == "tv":
        low, high = getattr(model, "data_range", (-1.0, 1.0))
        # TV's lambda scales with the data: tuned for [-1, 1] (width 2)
        x = baselines.tv(op, y, tv_lam * (high - low) / 2.0, iters=300)
        return namespace(x=x).stack([x]), {"seconds": time.perf_counter() - start, "nfe": 0,
                                   "steps": 300}
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
        raise CLIError(
            f"--input: task {task!r} with the {model.name!r} prior needs an input whose width "
            f"and height are multiples of {m} (the restored image, {factor}x the input, must "
            f"be a multiple of the network's downsampling {mult}); received {w}x{h}: crop or "
            f"pad it to {w - w % m}x{h - h % m} or {w + (-w) % m}x{h + (-h) % m}")


def _mask(args, v):
    """Observed pixels (bool ``(H, W)``) from --mask, or the non-black pixels of the input."""
    m = None if args.mask is None else read_image(args.mask, name="--mask")
    return observed_pixels(v, m)


def run_restore(args) -> int:
    """The ``restore`` command (``args`` from the CLI parser); returns the exit status.

    Examples
    --------
    >>> from invdiff.cli import main
    >>> main(["restore", "--help"])  # doctest: +SKIP
    """
    from ..random import Generator

    out = check_output_path(args.output)
    if args.samples < 1:
        raise CLIError(f"--samples must be >= 1; received {args.samples}")
    if args.steps is not None and args.steps < 1:
        raise CLIError(f"--steps must be >= 1; received {args.steps}")
    if args.sigma_y is not None and not (math.isfinite(args.sigma_y) and args.sigma_y > 0):
        raise CLIError(f"--sigma-y must be a number > 0; received {args.sigma_y}")
    if args.mask is not None and args.task != "inpaint":
        raise CLIError("--mask is only used by --task inpaint")
    if args.blur_sigma <= 0:
        raise CLIError(f"--blur-sigma must be > 0; received {args.blur_sigma}")
    v = read_image(args.input, name="--input")
    model = load_model(args.model, device=args.device, weights_dir=args.weights_dir)
    task = TASKS[args.task]
    if args.task == "colorize" and model.channels != 3:
        raise CLIError(f"--task colorize needs an RGB prior; {args.model!r} has "
                       f"{model.channels} channel(s)")
    v = match_channels(v, 1 if args.task == "colorize" else model.channels)
    shape = output_shape(args.task, v.shape, model.channels)
    _check_size(args.task, v.shape, shape, model)
    mask = _mask(args, v) if args.task == "inpaint" else None

    low, high = model.data_range
    s = high - low
    try:
        op = build_operator(args.task, shape, blur_sigma=args.blur_sigma,
                            mask=None if mask is None else as_model_array(mask, model, "bool"))
    except ValueError as e:  # e.g. a blur kernel wider than the image
        raise CLIError(f"--input: cannot build the {args.task!r} operator for a "
                       f"{shape[2]}x{shape[1]} image: {e}") from None
    y = to_model_units(as_model_array(v, model), op, model.data_range)
    sigma01 = task.sigma_y if args.sigma_y is None else float(args.sigma_y)
    if args.method == "tv" and args.samples > 1:
        print("invdiff restore: note: tv is a deterministic estimate; --samples is ignored",
              file=sys.stderr)
    bar = _bar(args, METHODS[args.method][1] if args.steps is None else args.steps)
    try:
        x, info = sample(args.method, model, op, y, s * sigma01, n=args.samples,
                         steps=args.steps, rng=Generator(args.seed),
                         batch_size=args.batch_size, bar=bar, tv_lam=task.tv_lam)
    finally:
        if bar is not None:
            bar.close()
    xp = namespace(x=x)
    if not bool(xp.all(xp.isfinite(x))):
        raise CLIError(f"--method {args.method} diverged (non-finite values); nothing written. "
                       f"Try more --steps or another --method.")
    u = (x - low) / s  # [0, 1] intensities
    summary = summarize(u, level=0.9)
    paths = _write(out, summary, u, u.shape[0], args.npz)
    _report(args, info, summary, paths, sigma01, u.shape[0])
    return 0


def _bar(args, steps):
    if args.no_progress or args.method == "tv":
        return None
    from tqdm.auto import tqdm

    chunks = math.ceil(args.samples / args.batch_size)
    return tqdm(total=chunks * steps, desc=f"{args.method} x{args.samples}", unit="nfe",
                file=sys.stderr)


def _write(out: Path, summary: dict, samples, K: int, npz: bool) -> list[Path]:
    """Mean (and with K > 1 the std and 90 % interval width) written all-or-nothing."""
    stem = out.with_suffix("")
    files = [(out, summary["mean"])]
    if K > 1:
        files += [(Path(f"{stem}_std.png"), summary["std"]),
                  (Path(f"{stem}_ci90.png"), summary["width"])]
    with AtomicWriter() as w:
        for path, value in files:
            host = to_numpy(value)
            w.add(path, lambda p, a=host, q=path: encode_image(a, p, _fmt(q)))
        if npz:
            w.add(Path(f"{stem}_posterior.npz"),
                  lambda p: write_npz(p, {**summary, "samples": samples}))
        return w.commit()


def _fmt(path: Path) -> str:
    from ._io import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES[path.suffix.lower()]


def _report(args, info, summary, paths, sigma01, K):
    std = to_numpy(summary["std"])
    width = to_numpy(summary["width"])
    print(f"restored {args.input} ({args.task}, sigma_y={sigma01:g} on [0,1]) with "
          f"{args.method}: {K} sample(s), {info['nfe']} network evaluations, "
          f"{info['seconds']:.1f} s")
    if K > 1:
        print(f"posterior std (intensity units, [0,1]): mean {std.mean():.4f}, "
              f"max {std.max():.4f}; 90% interval width: mean {width.mean():.4f}, "
              f"max {width.max():.4f}")
    for p in paths:
        print(f"wrote {p}")
