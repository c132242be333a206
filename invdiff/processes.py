r"""Forward processes :math:`x_t = a_t x_0 + b_t \varepsilon` and prediction conversions.

One notation serves the three model families (ALGORITHMS.md §1):

======  ===========================  =============================  =============================
family  :math:`a_t`                  :math:`b_t`                    time ``t``
======  ===========================  =============================  =============================
VP      :math:`\sqrt{\bar\alpha_t}`  :math:`\sqrt{1-\bar\alpha_t}`  DDPM step in ``[0, T]``
VE      1                            :math:`\sigma`                 ``t = sigma``
Flow    :math:`1 - t`                :math:`t`                      ``[0, 1]``, ``t = 0`` is data
======  ===========================  =============================  =============================

Every method of a process accepts a Python float (and returns one) or an array of
any namespace (and returns one in that namespace, device and dtype).

The four prediction kinds of a network (``"eps"``, ``"x0"``, ``"score"``,
``"velocity"``) are all affine in :math:`(\hat\varepsilon, x_t)`, so every conversion
is ``dst = c_pred * pred + c_x * x_t`` with coefficients from :math:`a, b, \dot a, \dot b`.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from ._array_api import as_python_float, device_of, is_array, namespace

__all__ = [
    "ForwardProcess",
    "VP",
    "VE",
    "Flow",
    "PREDICTIONS",
    "convert",
    "to_eps",
    "to_x0",
    "to_score",
    "to_velocity",
    "predict",
    "reexpress",
    "pullback",
]

PREDICTIONS = ("eps", "x0", "score", "velocity")


def _ops(t):
    """``math`` for Python numbers, the array namespace for arrays."""
    return namespace(t=t) if is_array(t) else math


class ForwardProcess:
    r"""Base class: :math:`x_t = a(t) x_0 + b(t) \varepsilon`.

    Subclasses define ``a``, ``b``, ``da``, ``db`` (time derivatives), ``t_min``,
    ``t_max``, and :meth:`t_of_ratio`, the inverse of the noise-to-signal ratio
    :math:`b/a`, used to move a model between processes.

    Every method taking a time checks it with :meth:`check_time` first: a time outside
    the process's domain (``domain``: VP ``[0, T]``, VE ``[0, inf)``, Flow ``[0, 1]``), NaN,
    a bool or a non-real dtype is refused, never clamped; an integer-dtype time (``np.int64``,
    ``torch.long``) is exact (converted to float64, never the tables to integers).
    """

    t_min: float = 0.0
    t_max: float = 1.0

    @property
    def domain(self) -> tuple[float, float]:
        """Closed interval of the times :meth:`a`, :meth:`b` ... accept (default
        ``[t_min, t_max]``; VE: ``[0, inf)``, every noise level)."""
        return (float(self.t_min), float(self.t_max))

    def check_time(self, t, name: str = "t"):
        """``t`` as a Python float or a real floating array, checked against :attr:`domain`.

        Python numbers become Python floats; integer arrays become float64 arrays (float32
        on a device without float64) of their namespace and device; floating arrays pass
        unchanged. An array is checked with one reduction (one host synchronisation), so
        hot loops pass Python floats.

        Raises
        ------
        TypeError
            For a bool, a non-number, or an array of a bool/complex dtype.
        ValueError
            For NaN or a time outside :attr:`domain`, naming ``name``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> vp = ivd.processes.VP.linear(T=1000)
        >>> vp.check_time(np.int64(150)).dtype
        dtype('float64')
        >>> vp.check_time(1500)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: t must lie in [0, 1000] for VP(linear, T=1000, ...); received 1500
        """
        lo, hi = self.domain
        # rounding of a time grid (t0 + (t1 - t0) i / n) may step 1e-16 past an end: that is
        # the end, not an error
        tol = _TIME_TOL * (1.0 + (hi if math.isfinite(hi) else lo))
        if isinstance(t, (bool, str, bytes)):
            raise TypeError(f"{name} must be a real number or array of times, not a "
                            f"{type(t).__name__}; received {t!r}")
        if is_array(t):
            xp = namespace(**{name: t})
            if not xp.isdtype(t.dtype, ("integral", "real floating")):
                raise TypeError(f"{name} must have a real (integer or floating) dtype; "
                                f"received {t.dtype}")
            if xp.isdtype(t.dtype, "integral"):
                t = _exact_float(xp, t)
            if bool(xp.any(~((t >= lo - tol) & (t <= hi + tol)))):
                nan = " with NaN entries" if bool(xp.any(xp.isnan(t))) else ""
                raise ValueError(
                    f"{name} must lie in {_interval(lo, hi)} for {self!r}; received an array "
                    f"of times from {float(xp.min(t))} to {float(xp.max(t))}{nan}")
            return xp.clip(t, lo, hi if math.isfinite(hi) else None)
        try:
            v = float(t)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real number or an array of times; received "
                            f"{type(t).__name__}") from None
        if not lo - tol <= v <= hi + tol:
            raise ValueError(f"{name} must lie in {_interval(lo, hi)} for {self!r}; received "
                             f"{t!r}")
        return min(max(v, lo), hi)

    def a(self, t):
        raise NotImplementedError

    def b(self, t):
        raise NotImplementedError

    def da(self, t):
        raise NotImplementedError

    def db(self, t):
        raise NotImplementedError

    def ratio(self, t):
        """Noise-to-signal ratio :math:`b_t / a_t` (the VE sigma that matches ``t``).

        ``inf`` where :math:`a_t = 0` (the flow's ``t = 1``).
        """
        a, b = self.a(t), self.b(t)
        if not is_array(a) and a == 0:
            return math.inf
        return b / a

    def t_of_ratio(self, r: float) -> float:
        """Time at which :math:`b_t/a_t = r` (clipped to ``[t_min, t_max]``)."""
        raise NotImplementedError

    def time_grid(self, steps: int) -> list[float]:
        """``steps + 1`` decreasing times from ``t_max`` to ``t_min`` (uniform in t)."""
        steps = _check_steps(steps)
        return [self.t_max + (self.t_min - self.t_max) * i / steps for i in range(steps + 1)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._params()})"

    def _params(self) -> str:
        return ""


_TIME_TOL = 1e-12  # relative slack at the ends of a domain (rounding of time grids)


def _interval(lo: float, hi: float) -> str:
    def fmt(v):
        return f"{v:g}" if math.isfinite(v) else "inf"

    return f"[{fmt(lo)}, {fmt(hi)}" + (")" if math.isinf(hi) else "]")


def _exact_float(xp, t):
    """An integer array of times as float64 (exact for every DDPM step); float32 where the
    device has no float64 (Apple MPS)."""
    try:
        return xp.astype(t, xp.float64)
    except (TypeError, RuntimeError):  # pragma: no cover - devices without float64
        return xp.astype(t, xp.float32)


def _check_steps(steps, name: str = "steps") -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) and not hasattr(
            steps, "__index__"):
        raise TypeError(f"{name} must be a positive integer; received "
                        f"{type(steps).__name__} {steps!r}")
    if not (math.isfinite(float(steps)) and int(steps) == steps and steps >= 1):
        raise ValueError(f"{name} must be a positive integer; received {steps!r}")
    return int(steps)


def _check_unit(name: str, value) -> float:
    """A float in ``(0, 1)``, or an error naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number; received {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; received {type(value).__name__}") \
            from None
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must lie in (0, 1); received {value!r}")
    return v


class VP(ForwardProcess):
    r"""Variance-preserving (DDPM) process from a discrete :math:`\beta` schedule.

    Time is measured in DDPM steps: ``t = k`` (integer, ``1..T``) gives
    :math:`\bar\alpha_k = \prod_{s \le k} (1 - \beta_s)` exactly; ``t = 0`` is clean data;
    :math:`\log \bar\alpha_t` is piecewise linear in between, so any sampler may query
    fractional times. A network trained on the 0-indexed steps ``0..T-1`` receives
    ``t - 1`` (the adapter's business).

    Parameters
    ----------
    betas : sequence of float
        :math:`\beta_1, \ldots, \beta_T`, each in ``(0, 1)``.

    Examples
    --------
    >>> import invdiff as ivd
    >>> proc = ivd.processes.VP.linear(T=1000)
    >>> round(proc.alpha_bar(1), 6), round(proc.a(0.0), 6)
    (0.9999, 1.0)
    >>> round(proc.a(1000) ** 2 + proc.b(1000) ** 2, 12)
    1.0
    """

    def __init__(self, betas, name: str = "custom"):
        try:
            betas = [float(b) for b in betas]
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a sequence of numbers in (0, 1); received "
                            f"{type(betas).__name__} {betas!r:.60}") from None
        if not betas or not all(0.0 < b < 1.0 for b in betas):
            raise ValueError("betas must be a non-empty sequence of numbers in (0, 1)")
        self.name = name
        self.T = len(betas)
        self.t_max = float(self.T)
        self.t_min = 0.0
        self.betas = tuple(betas)
        self.alphas = tuple(1.0 - b for b in betas)
        self._log_alpha = [0.0] + [math.log1p(-b) for b in betas]  # index k: log alpha_k
        log_ab = [0.0]
        for la in self._log_alpha[1:]:
            log_ab.append(log_ab[-1] + la)
        self._log_alpha_bar = log_ab  # index k = 0..T
        self.alphas_cumprod = tuple(math.exp(v) for v in log_ab[1:])
        self._tables: dict[tuple, Any] = {}

    @classmethod
    def linear(cls, T: int = 1000, beta_min: float = 1e-4, beta_max: float = 0.02) -> VP:
        """DDPM's linear schedule (Ho et al. 2020): :math:`\\beta` from ``beta_min`` to
        ``beta_max``.

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.processes.VP.linear(T=10).T
        10
        """
        T = _check_steps(T, "T")
        beta_min = _check_unit("beta_min", beta_min)
        beta_max = _check_unit("beta_max", beta_max)
        if beta_max < beta_min:
            raise ValueError(f"beta_max must be >= beta_min; received beta_min={beta_min}, "
                             f"beta_max={beta_max}")
        if T == 1:
            return cls([beta_min], name="linear")
        step = (beta_max - beta_min) / (T - 1)
        vp = cls([beta_min + k * step for k in range(T)], name="linear")
        vp._args = (T, beta_min, beta_max)
        return vp

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> VP:
        """Nichol & Dhariwal (2021) cosine schedule, :math:`\\beta` clipped at ``max_beta``.

        Examples
        --------
        >>> import invdiff as ivd
        >>> proc = ivd.processes.VP.cosine(T=1000)
        >>> 0.99 < proc.alpha_bar(1) < 1.0
        True
        """
        T = _check_steps(T, "T")
        max_beta = _check_unit("max_beta", max_beta)
        if isinstance(s, bool) or not (isinstance(s, (int, float)) and 0 <= s < math.inf):
            raise ValueError(f"s must be a finite number >= 0; received {s!r}")

        def f(k):
            return math.cos((k / T + s) / (1 + s) * math.pi / 2) ** 2

        betas = [min(1 - f(k) / f(k - 1), max_beta) for k in range(1, T + 1)]
        return cls(betas, name="cosine")

    def _params(self) -> str:
        if self.name == "linear" and hasattr(self, "_args"):
            T, lo, hi = self._args
            return f"linear, T={T}, beta_min={lo}, beta_max={hi}"
        return f"{self.name}, T={self.T}"

    # -- discrete DDPM quantities (integer k in 1..T) ----------------------------------
    def _k(self, k, low: int = 1) -> int:
        ok = not isinstance(k, bool)
        try:
            ok = ok and math.isfinite(float(k)) and int(k) == k and low <= k <= self.T
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"step k must be an integer in {low}..{self.T}; received {k!r}")
        return int(k)

    def alpha_bar(self, k) -> float:
        r""":math:`\bar\alpha_k`; ``alpha_bar(0) == 1``."""
        k = self._k(k, low=0)
        return 1.0 if k == 0 else self.alphas_cumprod[k - 1]

    def alpha(self, k) -> float:
        r""":math:`\alpha_k = 1 - \beta_k`."""
        return self.alphas[self._k(k) - 1]

    def beta(self, k) -> float:
        r""":math:`\beta_k`."""
        return self.betas[self._k(k) - 1]

    def beta_tilde(self, k) -> float:
        r"""Posterior variance
        :math:`\tilde\beta_k = \beta_k (1-\bar\alpha_{k-1})/(1-\bar\alpha_k)`."""
        k = self._k(k)
        return self.beta(k) * (1 - self.alpha_bar(k - 1)) / (1 - self.alpha_bar(k))

    # -- continuous interpolation --------------------------------------------------------
    def _table(self, name: str, like):
        xp = namespace(t=like)
        key = (name, xp.__name__, str(device_of(like)), str(like.dtype))
        if key not in self._tables:
            values = self._log_alpha_bar if name == "log_ab" else self._log_alpha
            self._tables[key] = xp.asarray(values, dtype=like.dtype, device=device_of(like))
        return self._tables[key]

    def _log_ab_and_slope(self, t, check: bool = True):
        """:math:`\\log\\bar\\alpha_t` and its slope :math:`d\\log\\bar\\alpha/dt`.

        ``check=False`` (for callers inside a sampling loop whose times were checked once)
        skips the domain check of an array, its one host synchronisation, and clips instead.
        """
        if check or not is_array(t):
            t = self.check_time(t)
        else:
            xp = namespace(t=t)
            t = xp.clip(_exact_float(xp, t) if xp.isdtype(t.dtype, "integral") else t, 0.0,
                        self.t_max)
        if is_array(t):
            xp = namespace(t=t)
            k = xp.clip(xp.ceil(t), 1.0, float(self.T))  # interval (k-1, k]
            # xp.take wants a 1-D index (torch, array-api-strict): flatten, then restore
            idx = xp.reshape(xp.astype(k, xp.int64), (-1,))
            slope = xp.reshape(xp.take(self._table("log_a", t), idx), tuple(t.shape))
            left = xp.reshape(xp.take(self._table("log_ab", t), idx - 1), tuple(t.shape))
            return left + slope * (t - (k - 1.0)), slope
        k = min(max(math.ceil(t), 1), self.T)
        slope = self._log_alpha[k]
        return self._log_alpha_bar[k - 1] + slope * (t - (k - 1)), slope

    def a(self, t):
        log_ab, _ = self._log_ab_and_slope(t)
        return _ops(t).exp(0.5 * log_ab)

    def b(self, t):
        log_ab, _ = self._log_ab_and_slope(t)
        return _ops(t).sqrt(0.0 - _ops(t).expm1(log_ab))  # 0.0 - : +0 at t = 0, not -0

    def da(self, t):
        log_ab, slope = self._log_ab_and_slope(t)
        return 0.5 * slope * _ops(t).exp(0.5 * log_ab)

    def db(self, t):
        m = _ops(t)
        log_ab, slope = self._log_ab_and_slope(t)
        b = m.sqrt(0.0 - m.expm1(log_ab))
        # t = 0: b = sqrt(-slope t) has an infinite slope (+inf, without a division by 0)
        if m is math:
            return math.inf if b == 0.0 else -0.5 * slope * m.exp(log_ab) / b
        pos = b > 0.0
        safe = m.where(pos, b, m.ones_like(b))
        return m.where(pos, -0.5 * slope * m.exp(log_ab) / safe, math.inf)

    def _ab_unchecked(self, t):
        """``(a_t, b_t)`` for an array ``t`` already known to lie in ``[0, T]``: no host
        synchronisation (for network wrappers called once per sampler step)."""
        log_ab, _ = self._log_ab_and_slope(t, check=False)
        m = _ops(t)
        return m.exp(0.5 * log_ab), m.sqrt(0.0 - m.expm1(log_ab))

    def t_of_ratio(self, r: float) -> float:
        r = as_python_float(r)
        if r <= 0:
            return 0.0
        target = -math.log1p(r * r)  # log alphabar at ratio r
        neg = [-v for v in self._log_alpha_bar]  # increasing in k
        k = bisect.bisect_left(neg, -target)
        if k > self.T:
            return self.t_max
        k = max(k, 1)
        return (k - 1) + (target - self._log_alpha_bar[k - 1]) / self._log_alpha[k]


class VE(ForwardProcess):
    r"""Variance-exploding (NCSN) process: :math:`a_t = 1`, :math:`b_t = t = \sigma`.

    The time variable *is* the noise level. :meth:`geometric` adds the discrete
    levels of NCSN's annealing (``sigmas``, descending) used by annealed Langevin.

    Examples
    --------
    >>> import invdiff as ivd
    >>> ve = ivd.processes.VE.geometric(sigma_max=50.0, sigma_min=0.01, L=232)
    >>> len(ve.sigmas), ve.sigmas[0], round(ve.sigmas[-1], 6), ve.b(3.0)
    (232, 50.0, 0.01, 3.0)
    """

    domain = (0.0, math.inf)

    def __init__(self, sigma_max: float, sigma_min: float, sigmas=None):
        for name, v in (("sigma_max", sigma_max), ("sigma_min", sigma_min)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) and not is_array(v):
                raise TypeError(f"{name} must be a real number; received {type(v).__name__}")
        sigma_max, sigma_min = float(sigma_max), float(sigma_min)
        if not (math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
            raise ValueError(
                f"need 0 < sigma_min < sigma_max; received sigma_min={sigma_min}, "
                f"sigma_max={sigma_max}"
            )
        self.t_max = float(sigma_max)
        self.t_min = float(sigma_min)
        self.sigmas = tuple(float(s) for s in sigmas) if sigmas is not None else None
        if self.sigmas is not None and not (
                self.sigmas and all(0 < v < math.inf for v in self.sigmas)):
            raise ValueError("sigmas must be a non-empty sequence of finite noise levels > 0")

    @classmethod
    def geometric(cls, sigma_max: float = 50.0, sigma_min: float = 0.01, L: int = 232) -> VE:
        """NCSN's geometric levels
        :math:`\\sigma_i = \\sigma_{max} (\\sigma_{min}/\\sigma_{max})^{i/(L-1)}`.

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.processes.VE.geometric(1.0, 0.01, 3).sigmas
        (1.0, 0.1, 0.01)
        """
        L = _check_steps(L, "L")
        if L < 2:
            raise ValueError(f"L must be at least 2; received {L}")
        ratio = sigma_min / sigma_max
        sigmas = [sigma_max * ratio ** (i / (L - 1)) for i in range(L)]
        sigmas[-1] = float(sigma_min)
        return cls(sigma_max, sigma_min, sigmas)

    def _params(self) -> str:
        n = "" if self.sigmas is None else f", L={len(self.sigmas)}"
        return f"sigma_max={self.t_max}, sigma_min={self.t_min}{n}"

    def a(self, t):
        return self.check_time(t) * 0.0 + 1.0

    def b(self, t):
        return self.check_time(t) * 1.0

    def da(self, t):
        return self.check_time(t) * 0.0

    def db(self, t):
        return self.check_time(t) * 0.0 + 1.0

    def t_of_ratio(self, r: float) -> float:
        return min(max(as_python_float(r), self.t_min), self.t_max)

    def time_grid(self, steps: int) -> list[float]:
        """``steps + 1`` geometrically spaced noise levels from ``sigma_max`` to ``sigma_min``."""
        steps = _check_steps(steps)
        ratio = self.t_min / self.t_max
        return [self.t_max * ratio ** (i / steps) for i in range(steps + 1)]


class Flow(ForwardProcess):
    r"""Rectified-flow path :math:`a_t = 1 - t`, :math:`b_t = t` (``t = 0`` is data).

    Examples
    --------
    >>> import invdiff as ivd
    >>> f = ivd.processes.Flow.rectified()
    >>> f.a(0.25), f.b(0.25), f.t_of_ratio(1.0)
    (0.75, 0.25, 0.5)
    """

    t_min = 0.0
    t_max = 1.0

    @classmethod
    def rectified(cls) -> Flow:
        """The straight path of Liu et al. (2022)."""
        return cls()

    def a(self, t):
        return 1.0 - self.check_time(t)

    def b(self, t):
        return self.check_time(t) * 1.0

    def da(self, t):
        return self.check_time(t) * 0.0 - 1.0

    def db(self, t):
        return self.check_time(t) * 0.0 + 1.0

    def t_of_ratio(self, r: float) -> float:
        r = as_python_float(r)
        return 1.0 if math.isinf(r) else min(max(r / (1.0 + r), 0.0), 1.0)


# -- conversions between prediction kinds ---------------------------------------------
def _check_kind(name: str, kind: str) -> None:
    if not isinstance(kind, str) or kind not in PREDICTIONS:
        raise ValueError(f"{name} must be one of {PREDICTIONS}; received {kind!r}")


def _check_process(name: str, process) -> None:
    if not isinstance(process, ForwardProcess):
        raise TypeError(f"{name} must be an invdiff.processes.ForwardProcess (VP, VE, Flow); "
                        f"received {type(process).__name__}")


def _check_model(name: str, model) -> None:
    """A ScoreModel: callable with ``process`` and ``prediction``."""
    if not callable(model) or not hasattr(model, "process") or not hasattr(model, "prediction"):
        raise TypeError(f"{name} must be a ScoreModel (callable as {name}(x_t, t), with "
                        f"process and prediction); received {type(model).__name__}")
    _check_process(f"{name}.process", model.process)
    _check_kind(f"{name}.prediction", model.prediction)


def _eps_coefficients(kind: str, t, process: ForwardProcess):
    """``(c_pred, c_x)`` with ``eps = c_pred * pred + c_x * x_t``."""
    a, b = process.a(t), process.b(t)
    if kind == "eps":
        return 1.0, 0.0
    if kind == "x0":  # x = a x0 + b eps
        return -a / b, 1.0 / b
    if kind == "score":  # s = -eps / b
        return -b, 0.0
    da, db = process.da(t), process.db(t)  # v = da x0 + db eps
    det = a * db - b * da
    return a / det, -da / det


def _from_eps_coefficients(kind: str, t, process: ForwardProcess):
    """``(d_eps, d_x)`` with ``pred = d_eps * eps + d_x * x_t``."""
    a, b = process.a(t), process.b(t)
    if kind == "eps":
        return 1.0, 0.0
    if kind == "x0":
        return -b / a, 1.0 / a
    if kind == "score":
        return -1.0 / b, 0.0
    da, db = process.da(t), process.db(t)
    return (a * db - da * b) / a, da / a


def _affine(c_pred, pred, c_x, x_t):
    if isinstance(c_x, (int, float)) and c_x == 0:
        return c_pred * pred
    return c_pred * pred + c_x * x_t


def convert(pred, src: str, dst: str, x_t, t, process: ForwardProcess):
    r"""Convert a network output between ``"eps"``, ``"x0"``, ``"score"``, ``"velocity"``.

    Uses :math:`x_t = a_t \hat x_0 + b_t \hat\varepsilon`, :math:`s = -\hat\varepsilon/b_t`
    and :math:`v = \dot a_t \hat x_0 + \dot b_t \hat\varepsilon` (ALGORITHMS.md §1).

    Parameters
    ----------
    pred : array
        The prediction of kind ``src`` at ``(x_t, t)``.
    src, dst : {"eps", "x0", "score", "velocity"}
    x_t : array
        The noisy input the prediction was made at.
    t : float or array
        Time in ``process``'s own variable.
    process : ForwardProcess

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> proc = ivd.processes.Flow.rectified()
    >>> x0, eps = np.array([1.0]), np.array([0.5])
    >>> x_t = proc.a(0.3) * x0 + proc.b(0.3) * eps
    >>> ivd.processes.convert(eps, "eps", "velocity", x_t, 0.3, proc)  # eps - x0
    array([-0.5])
    """
    _check_kind("src", src)
    _check_kind("dst", dst)
    _check_process("process", process)
    if src == dst:
        return pred
    if dst == "eps":
        c_pred, c_x = _eps_coefficients(src, t, process)
        return _affine(c_pred, pred, c_x, x_t)
    if src == "eps":
        d_eps, d_x = _from_eps_coefficients(dst, t, process)
        return _affine(d_eps, pred, d_x, x_t)
    c_pred, c_x = _eps_coefficients(src, t, process)
    d_eps, d_x = _from_eps_coefficients(dst, t, process)
    return _affine(d_eps * c_pred, pred, d_eps * c_x + d_x, x_t)


def to_eps(pred, src, x_t, t, process):
    """Shorthand for ``convert(pred, src, "eps", x_t, t, process)``."""
    return convert(pred, src, "eps", x_t, t, process)


def to_x0(pred, src, x_t, t, process):
    """Shorthand for ``convert(pred, src, "x0", x_t, t, process)`` (Tweedie's estimate)."""
    return convert(pred, src, "x0", x_t, t, process)


def to_score(pred, src, x_t, t, process):
    """Shorthand for ``convert(pred, src, "score", x_t, t, process)``."""
    return convert(pred, src, "score", x_t, t, process)


def to_velocity(pred, src, x_t, t, process):
    """Shorthand for ``convert(pred, src, "velocity", x_t, t, process)``."""
    return convert(pred, src, "velocity", x_t, t, process)


def predict(model, x_t, t, kind: str):
    """Evaluate a ScoreModel at ``(x_t, t)`` and return its prediction as ``kind``.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> proc = ivd.processes.VP.linear()
    >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.eye(2), process=proc)
    >>> ivd.processes.predict(prior, np.ones((1, 2)), 10.0, "x0").shape
    (1, 2)
    """
    _check_model("model", model)
    _check_kind("kind", kind)
    return convert(model(x_t, t), model.prediction, kind, x_t, t, model.process)


def pullback(model, x_t, t, cotangent_of_prediction):
    """``(prediction, J^T v, v)`` with ``v = cotangent_of_prediction(prediction)``.

    One network pass when ``model.vjp`` accepts a callable cotangent
    (``vjp_accepts_callable``); otherwise a forward call, then ``vjp``.
    """
    seen = {}

    def cotangent(pred):
        seen["v"] = cotangent_of_prediction(pred)
        return seen["v"]

    if getattr(model, "vjp_accepts_callable", False):
        pred, pulled = model.vjp(x_t, t, cotangent)
    else:
        pred, pulled = model.vjp(x_t, t, cotangent(model(x_t, t)))
    return pred, pulled, seen["v"]


class reexpress:
    r"""A ScoreModel trained under one process, re-expressed under another.

    All three processes share their marginals up to scaling: :math:`x_t` under the
    target at time :math:`t` equals :math:`(a'_s / a_t) x_t` under the model's own
    process at the time :math:`s` with the same ratio :math:`b/a`. The wrapped model is
    evaluated there and its output returned as an ``"eps"`` prediction (the noise is
    the same in both parametrisations). Times beyond the model's own range are clipped
    to it.

    Parameters
    ----------
    model : ScoreModel
        Has ``__call__``, ``process``, ``prediction`` (and optionally ``vjp``).
    process : ForwardProcess
        The process the samplers will use.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> vp = ivd.processes.VP.linear()
    >>> prior = ivd.priors.GaussianPrior(np.zeros(2), np.eye(2), process=vp)
    >>> as_flow = ivd.processes.reexpress(prior, ivd.processes.Flow.rectified())
    >>> as_flow.prediction, as_flow.process
    ('eps', Flow())
    """

    prediction = "eps"

    def __init__(self, model, process: ForwardProcess):
        _check_model("model", model)
        _check_process("process", process)
        self.model = model
        self.process = process

    def _source_time(self, t):
        t = as_python_float(t)
        s = self.model.process.t_of_ratio(self.process.ratio(t))
        return s, self.model.process.a(s) / self.process.a(t)

    def __call__(self, x_t, t):
        s, c = self._source_time(t)
        x_s = c * x_t
        return to_eps(self.model(x_s, s), self.model.prediction, x_s, s, self.model.process)

    @property
    def vjp_accepts_callable(self) -> bool:
        """Whether :meth:`vjp` takes ``cotangent(eps) -> array`` (when the wrapped model does)."""
        return bool(getattr(self.model, "vjp_accepts_callable", False))

    def vjp(self, x_t, t, cotangent):
        """``(eps, J_eps^T cotangent)`` through the wrapped model's ``vjp``.

        ``cotangent`` may be a callable of the eps prediction (one forward pass when the
        wrapped model's ``vjp`` accepts callables).
        """
        s, c = self._source_time(t)
        x_s = c * x_t
        c_pred, c_x = _eps_coefficients(self.model.prediction, s, self.model.process)
        if callable(cotangent):
            eps_cotangent = cotangent
            pred, pulled, cotangent = pullback(
                self.model, x_s, s, lambda pred: eps_cotangent(_affine(c_pred, pred, c_x, x_s)))
        else:
            pred, pulled = self.model.vjp(x_s, s, cotangent)
        eps = _affine(c_pred, pred, c_x, x_s)
        return eps, c * _affine(c_pred, pulled, c_x, cotangent)

    def __repr__(self) -> str:
        return f"reexpress({self.model!r}, {self.process!r})"
