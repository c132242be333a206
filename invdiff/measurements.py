r"""Measurement models: :math:`y = A x + n` and :math:`y = Q(A x + n)`.

* :class:`GaussianNoise`: :math:`n \sim \mathcal N(0, \sigma^2 I)`.
* :class:`Quantizer`: a scalar quantizer with sorted finite thresholds
  :math:`t_1 < \dots < t_{L-1}`; bin :math:`k` is :math:`[t_k, t_{k+1})` with
  :math:`t_0 = -\infty`, :math:`t_L = +\infty` (outer bins open). :meth:`Quantizer.sign`
  (1 bit, QCS-SGM), :meth:`Quantizer.uniform` (mid-rise, :math:`2^Q` levels) and
  :meth:`Quantizer.from_data` (the QCS-SGM reference's min–max step).
* :func:`measure`: simulate ``y`` (and its bins) for an operator, a noise and a quantizer.
* :func:`to_prior_units`: the matrix and measurement (or bin edges) a prior in another range
  sees, e.g. data measured from images in :math:`[0, 1]` for a prior trained on
  :math:`[-1, 1]`.

Quantized likelihoods (QCS-SGM, QCS-SGM+; ALGORITHMS.md §4–5) need only the bin edges
``(lower, upper)`` of each measurement: :meth:`Quantizer.bins`.
"""

from __future__ import annotations

import math

from ._array_api import (
    check_array,
    check_at_least,
    check_finite,
    check_floating,
    check_range,
    device_of,
    is_array,
    namespace,
)

__all__ = ["GaussianNoise", "Quantizer", "measure", "to_prior_units"]


class GaussianNoise:
    r"""Additive white Gaussian noise :math:`n \sim \mathcal N(0, \sigma^2 I)`.

    Parameters
    ----------
    sigma : float
        Standard deviation :math:`\sigma \ge 0` (``0`` adds nothing).

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> noise = ivd.measurements.GaussianNoise(0.05)
    >>> y = noise(np.zeros(10_000), rng=ivd.random.Generator(0))
    >>> round(float(y.std()), 2), round(noise.variance, 12)
    (0.05, 0.0025)
    """

    def __init__(self, sigma: float):
        self.sigma = check_at_least("sigma", sigma)

    @property
    def variance(self) -> float:
        r""":math:`\sigma^2`.

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.measurements.GaussianNoise(0.5).variance
        0.25
        """
        return self.sigma**2

    def __call__(self, y, rng):
        """``y + sigma * N(0, I)`` in ``y``'s namespace, device and dtype."""
        check_floating("y", y)
        if self.sigma == 0.0:
            return y
        return y + self.sigma * rng.normal(tuple(y.shape), like=y)

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma})"


class Quantizer:
    r"""Scalar quantizer with sorted thresholds; bins :math:`[t_k, t_{k+1})`, outer bins open.

    Parameters
    ----------
    thresholds : sequence of float
        The :math:`L - 1` finite, strictly increasing interior edges; ``L`` levels.
    levels : sequence of float, optional
        The value reported for each bin (length ``L``, each inside its bin). By default
        the midpoint of interior bins, and for the two outer bins the edge shifted by
        half the neighbouring bin's width (``t ± 1`` with a single threshold, so a
        threshold at 0 reports ``±1``).

    Notes
    -----
    The code of :math:`z` is the number of thresholds :math:`\le z`, so every code
    ``k`` satisfies ``lower[k] <= z < upper[k]`` with :meth:`bins`. Quantization acts
    elementwise; thresholds are Python floats, so one quantizer serves every namespace.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> q = ivd.measurements.Quantizer([-1.0, 0.0, 2.0])
    >>> codes = q.quantize(np.array([-5.0, -1.0, 0.5, 2.0]))
    >>> codes.tolist()
    [0, 1, 2, 3]
    >>> lower, upper = q.bins(codes)
    >>> lower.tolist(), upper.tolist()
    ([-inf, -1.0, 0.0, 2.0], [-1.0, 0.0, 2.0, inf])
    >>> q.values(codes).tolist()
    [-1.5, -0.5, 1.0, 3.0]
    """

    def __init__(self, thresholds, levels=None):
        self.thresholds = _thresholds(thresholds)
        self.levels = _levels(self.thresholds, levels)
        L = len(self.levels)
        #: Bit depth when the number of levels is a power of 2 (else None).
        self.bits = L.bit_length() - 1 if L & (L - 1) == 0 else None
        #: Cell width of a uniform quantizer (None otherwise).
        self.step = None

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def sign(cls) -> Quantizer:
        r"""1-bit quantizer :math:`y = \mathrm{sign}(z)` (values ``±1``; ``z = 0`` maps to ``+1``).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> q = ivd.measurements.Quantizer.sign()
        >>> q.values(q.quantize(np.array([-0.3, 0.0, 2.0]))).tolist()
        [-1.0, 1.0, 1.0]
        """
        return cls((0.0,), (-1.0, 1.0))

    @classmethod
    def uniform(cls, bits: int, low: float | None = None, high: float | None = None, *,
                range=None) -> Quantizer:  # noqa: A002  (the issue's spelling)
        r"""Uniform mid-rise quantizer with :math:`2^{bits}` levels on ``[low, high]``.

        Parameters
        ----------
        bits : int
            Bit depth :math:`Q` in ``1..16``.
        low, high : float
            Range split into :math:`2^Q` cells of width :math:`\Delta = (high - low)/2^Q`;
            values beyond it fall in the open outer bins. ``range=(low, high)`` is an
            alternative spelling.

        Notes
        -----
        Thresholds :math:`low + j\Delta`, :math:`j = 1..2^Q-1`; values
        :math:`low + (j + \tfrac12)\Delta` (mid-rise: with ``low = -high`` they are
        :math:`\pm(k - \tfrac12)\Delta`, no zero level).

        Examples
        --------
        >>> import invdiff as ivd
        >>> q = ivd.measurements.Quantizer.uniform(bits=2, low=-1.0, high=1.0)
        >>> q.thresholds, q.levels
        ((-0.5, 0.0, 0.5), (-0.75, -0.25, 0.25, 0.75))
        """
        bits = _bits(bits)
        if range is not None:
            if low is not None or high is not None:
                raise TypeError("give either low and high or range=(low, high), not both")
            low, high = range
        if low is None or high is None:
            raise TypeError("uniform() needs low and high (or range=(low, high))")
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"low < high must be finite numbers; received low={low}, high={high}")
        L = 2**bits
        delta = (high - low) / L
        thresholds = tuple(low + j * delta for j in _range(1, L))
        levels = tuple(low + (j + 0.5) * delta for j in _range(L))
        q = cls(thresholds, levels)
        q.step = delta
        return q

    @classmethod
    def from_data(cls, z, bits: int) -> Quantizer:
        r"""The QCS-SGM reference quantizer for measurements ``z``.

        1 bit: :meth:`sign`. ``Q`` bits: step :math:`\Delta = (\max z - \min z)/2^Q` over
        all entries of ``z``, mid-rise thresholds :math:`j\Delta` symmetric about 0,
        :math:`j = -(2^{Q-1} - 1) .. 2^{Q-1} - 1`, values :math:`\pm(k - \tfrac12)\Delta`,
        outer bins open: ``uniform(bits, -2**(Q-1) * step, 2**(Q-1) * step)``.

        Notes
        -----
        The reference bins are :math:`((k-1)\Delta, k\Delta]` for positive values and
        left-closed for negative ones, and maps ``z = 0`` to the value 0; here every bin is
        :math:`[t_k, t_{k+1})`. The two differ only on the thresholds themselves.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> q = ivd.measurements.Quantizer.from_data(np.array([-3.0, 1.0]), bits=2)
        >>> q.step, q.thresholds
        (1.0, (-1.0, 0.0, 1.0))
        """
        bits = _bits(bits)
        check_floating("z", z)
        if bits == 1:
            return cls.sign()
        xp = namespace(z=z)
        check_finite("z", z, xp)
        lo, hi = float(xp.min(z)), float(xp.max(z))
        if not hi > lo:
            raise ValueError(f"z must not be constant to set a step; received min = max = {lo}")
        half = 2 ** (bits - 1) * (hi - lo) / 2**bits
        return cls.uniform(bits, -half, half)

    # -- use ------------------------------------------------------------------------------
    @property
    def n_levels(self) -> int:
        """Number of bins ``L``.

        Examples
        --------
        >>> import invdiff as ivd
        >>> ivd.measurements.Quantizer.uniform(3, -1.0, 1.0).n_levels
        8
        """
        return len(self.levels)

    def quantize(self, z):
        """Integer codes ``0..L-1`` (int64), the index of the bin holding each entry of ``z``.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> q = ivd.measurements.Quantizer.uniform(1, -1.0, 1.0)
        >>> q.quantize(np.array([-0.2, 0.2])).tolist()
        [0, 1]
        """
        check_floating("z", z)
        xp = namespace(z=z)
        check_finite("z", z, xp)
        t = xp.asarray(self.thresholds, dtype=z.dtype, device=device_of(z))
        # comparisons in z's own dtype, so bins(codes, like=z) is consistent with them
        return xp.astype(xp.searchsorted(t, z, side="right"), xp.int64)

    def bins(self, codes, *, like=None):
        """Bin edges ``(lower, upper)`` of each code, ``±inf`` for the outer bins.

        Parameters
        ----------
        codes : integer array
            From :meth:`quantize`.
        like : array, optional
            Floating dtype of the edges (e.g. the quantized ``z``); default the codes'
            namespace's default floating dtype.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> lower, upper = ivd.measurements.Quantizer.sign().bins(np.array([0, 1]))
        >>> lower.tolist(), upper.tolist()
        ([-inf, 0.0], [0.0, inf])
        """
        xp = self._check_codes(codes, like)
        edges = (-math.inf, *self.thresholds, math.inf)
        return (self._take(xp, edges[:-1], codes, like), self._take(xp, edges[1:], codes, like))

    def bins_from_values(self, y, *, like=None):
        """Bin edges ``(lower, upper)`` of measured values, e.g. signs ``±1`` from a sensor.

        Parameters
        ----------
        y : array
            The values the quantizer reports (:meth:`values`: ``±1`` for :meth:`sign`, the
            levels for :meth:`uniform`), integer or floating; or, for a 1-level threshold,
            booleans (``True`` = the upper bin). Every entry must equal one of the levels.
        like : array, optional
            Floating dtype of the edges; default ``y``'s when it is floating, else the
            namespace's default floating dtype.

        Returns
        -------
        lower, upper : arrays of ``y``'s shape
            What the quantized likelihoods (:func:`invdiff.methods.qcs_sgm`, ...) take.

        Raises
        ------
        ValueError
            An entry that is not one of the levels (a ``0`` among signs, say): the message
            gives the levels and the first such value.

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> signs = np.array([1, -1, -1, 1], dtype=np.int8)   # as a 1-bit ADC reports them
        >>> lower, upper = ivd.measurements.Quantizer.sign().bins_from_values(signs)
        >>> lower.tolist(), upper.tolist()
        ([0.0, -inf, -inf, 0.0], [inf, 0.0, 0.0, inf])
        """
        check_array("y", y)
        xp = namespace(y=y, like=like)
        if y.dtype == xp.bool:
            if self.n_levels != 2:
                raise TypeError(f"y: boolean values need a 2-level quantizer; this one has "
                                f"{self.n_levels} levels")
            codes = xp.astype(y, xp.int64)
        else:
            fdtype = y.dtype if xp.isdtype(y.dtype, "real floating") else \
                xp.__array_namespace_info__().default_dtypes(
                    device=device_of(y))["real floating"]
            v = xp.astype(y, fdtype)
            levels = xp.asarray(self.levels, dtype=fdtype, device=device_of(y))
            codes = xp.astype(xp.searchsorted(levels, v), xp.int64)
            matched = xp.take(levels, xp.reshape(xp.clip(codes, 0, self.n_levels - 1), (-1,)))
            bad = xp.reshape(matched, tuple(v.shape)) != v
            if math.prod(v.shape) and bool(xp.any(bad)):
                first = float(xp.reshape(v[bad], (-1,))[0])
                raise ValueError(f"y must hold only the quantizer's levels {self.levels}; "
                                 f"received {int(xp.sum(xp.astype(bad, xp.int64)))} other "
                                 f"values (first: {first})")
            codes = xp.clip(codes, 0, self.n_levels - 1)
            if like is None:
                like = v
        return self.bins(codes, like=like)

    def values(self, codes, *, like=None):
        """The level reported for each code (e.g. ``±1`` for :meth:`sign`).

        Examples
        --------
        >>> import numpy as np
        >>> import invdiff as ivd
        >>> ivd.measurements.Quantizer.uniform(2, 0.0, 4.0).values(np.array([0, 3])).tolist()
        [0.5, 3.5]
        """
        xp = self._check_codes(codes, like)
        return self._take(xp, self.levels, codes, like)

    def __call__(self, z):
        """``values(quantize(z))`` in ``z``'s dtype."""
        return self.values(self.quantize(z), like=z)

    def _check_codes(self, codes, like):
        check_array("codes", codes)
        xp = namespace(codes=codes, like=like)
        if not xp.isdtype(codes.dtype, "integral"):
            raise TypeError(f"codes must be an integer array; received dtype {codes.dtype}")
        if math.prod(codes.shape) and not bool(
                xp.all((codes >= 0) & (codes < self.n_levels))):
            raise ValueError(f"codes must lie in 0..{self.n_levels - 1}; received others")
        if like is not None:
            check_floating("like", like)
        return xp

    @staticmethod
    def _take(xp, table, codes, like):
        device = device_of(codes)
        dtype = like.dtype if like is not None else \
            xp.__array_namespace_info__().default_dtypes(device=device)["real floating"]
        t = xp.asarray(table, dtype=dtype, device=device)
        flat = xp.take(t, xp.reshape(xp.astype(codes, xp.int64), (-1,)), axis=0)
        return xp.reshape(flat, tuple(codes.shape))

    def __repr__(self) -> str:
        return f"Quantizer(levels={self.n_levels}, thresholds={self.thresholds})"


def measure(op, x, noise=None, quantizer: Quantizer | None = None, rng=None):
    r"""Simulate :math:`y = A x + n` or :math:`y = Q(A x + n)`.

    Parameters
    ----------
    op : LinearOperator or array of shape (M, N)
        The forward operator (a matrix acts on ``(*batch, N)`` as ``x @ A.T``).
    x : array
        Clean signal, ``(*batch, *op.in_shape)``.
    noise : GaussianNoise or float, optional
        Noise added before quantization; a float is :math:`\sigma`. ``None``: no noise.
    quantizer : Quantizer, optional
    rng : invdiff.random.Generator or int, optional
        Source of the noise (an int is a seed); default a fresh ``Generator()`` (OS entropy).

    Returns
    -------
    y : array
        The measurement; with a quantizer, the reported level of each bin
        (:meth:`Quantizer.values`, e.g. ``±1`` for 1 bit).
    (lower, upper) : tuple of arrays
        Only with a quantizer: the bin edges of each entry (:meth:`Quantizer.bins`),
        in ``x``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> rng = ivd.random.Generator(0)
    >>> A = ivd.operators.gaussian_matrix(20, 50, rng=rng)
    >>> x = rng.normal((2, 50), like=A)
    >>> y = ivd.measurements.measure(A, x, noise=0.01, rng=rng)
    >>> y.shape
    (2, 20)
    >>> y, (lower, upper) = ivd.measurements.measure(
    ...     A, x, 0.01, ivd.measurements.Quantizer.sign(), rng=rng)
    >>> sorted(set(y.ravel().tolist())), bool(np.all(lower < upper))
    ([-1.0, 1.0], True)
    """
    check_floating("x", x)
    xp = namespace(x=x)
    if not bool(xp.all(xp.isfinite(x))):
        raise ValueError("x must be finite; received NaN or infinite entries")
    if rng is not None:
        from .random import Generator

        if isinstance(rng, bool) or not isinstance(rng, (int, Generator)):
            raise TypeError(f"rng must be None, an integer seed or an invdiff.random.Generator; "
                            f"received {type(rng).__name__} {rng!r}")
        rng = rng if isinstance(rng, Generator) else Generator(rng)
    if is_array(op):
        namespace(op=op, x=x)
        if op.ndim != 2:
            raise ValueError(f"op must be an operator or an (M, N) matrix; received shape "
                             f"{tuple(op.shape)}")
        if x.shape[-1:] != op.shape[1:]:
            raise ValueError(f"x must have shape (*batch, {op.shape[1]}); received shape "
                             f"{tuple(x.shape)}")
        y = x @ op.T
    elif hasattr(op, "apply"):
        y = op.apply(x)
    else:
        raise TypeError(f"op must be a LinearOperator or a matrix; received {type(op).__name__}")
    if noise is not None and not isinstance(noise, GaussianNoise):
        noise = GaussianNoise(check_at_least("noise", noise))
    if noise is not None and noise.sigma > 0:
        if rng is None:
            from .random import Generator

            rng = Generator()
        y = noise(y, rng)
    if quantizer is None:
        return y
    codes = quantizer.quantize(y)
    return quantizer.values(codes, like=y), quantizer.bins(codes, like=y)


def to_prior_units(A, lower, upper=None, *, data_range=(0.0, 1.0), prior_range=(-1.0, 1.0)):
    r"""The matrix and bins (or measurement) a prior sees when it models rescaled data.

    A measurement made of a signal :math:`u` in ``data_range`` (pixels in :math:`[0, 1]`,
    say) is, for a prior trained on ``prior_range`` (:math:`[-1, 1]`), a measurement of
    :math:`x = (u - d)/c` with :math:`u = c\,x + d\mathbf 1`,
    :math:`c = (u_{hi} - u_{lo})/(x_{hi} - x_{lo})`, :math:`d = u_{lo} - c\,x_{lo}`. So

    .. math:: A u + n = (cA)\,x + d\,A\mathbf 1 + n,

    and :math:`l \le A u + n < h` is :math:`l - dA\mathbf 1 \le (cA)\,x + n < h - dA\mathbf 1`:
    the prior must be given the matrix :math:`cA` and the bin edges (or the linear
    measurement) shifted by :math:`-d\,A\mathbf 1`; the noise is unchanged.

    Parameters
    ----------
    A : array of shape (M, N), or DenseMatrix
        The matrix the data were measured with, acting on the flattened signal in
        ``data_range`` units.
    lower, upper : arrays of shape (..., M)
        Bin edges of quantized measurements (:meth:`Quantizer.bins_from_values`), ``±inf``
        kept. For a linear measurement :math:`y = A u + n`, pass ``y`` as ``lower`` and
        leave ``upper`` out.
    data_range : (float, float), default (0.0, 1.0)
        Range of the measured signal.
    prior_range : (float, float), default (-1.0, 1.0)
        Range the prior was trained on (a model's ``data_range`` attribute).

    Returns
    -------
    (A', lower', upper'), or (A', y') without ``upper``
        ``A'`` of ``A``'s kind (array, or :class:`~invdiff.operators.DenseMatrix`), in its
        namespace and dtype; edges in the edges' namespace. The sample a method returns is
        then in ``prior_range``: :math:`u = c\,x + d`.

    Notes
    -----
    Passing the raw :math:`A` and bins to a :math:`[-1, 1]` prior asks it for the signal
    :math:`x` with :math:`A x \approx A u`, whose pixels are half as bright and biased;
    with the bundled MNIST prior and 300 signs of held-out digit 9000, QCS-SGM reaches 22.5 dB
    with the converted matrix and bins and 9.2 dB without (the paper's 232 × 5 schedule;
    19.6 against 10.5 dB with the gallery example's 100 × 2).
    The QCS-SGM reference code sidesteps the question by training its priors on
    :math:`[0, 1]`; ``benchmarks/quantized_cs.py`` runs it on :math:`[-1, 1]` priors with
    exactly this change of units.

    Examples
    --------
    >>> import numpy as np
    >>> import invdiff as ivd
    >>> A = np.array([[1.0, 2.0], [0.0, -1.0]])
    >>> u = np.array([0.25, 1.0])                      # a signal in [0, 1]
    >>> y = A @ u
    >>> A2, y2 = ivd.measurements.to_prior_units(A, y)
    >>> x = 2 * u - 1                                  # the same signal in [-1, 1]
    >>> bool(np.allclose(A2 @ x, y2))
    True
    >>> signs = np.sign(y)
    >>> lo, hi = ivd.measurements.Quantizer.sign().bins_from_values(signs)
    >>> A2, lo2, hi2 = ivd.measurements.to_prior_units(A, lo, hi)
    >>> bool(np.all((lo2 <= A2 @ x) & (A2 @ x < hi2)))
    True
    """
    from .operators import DenseMatrix

    dlo, dhi = check_range("data_range", data_range)
    plo, phi = check_range("prior_range", prior_range)
    c = (dhi - dlo) / (phi - plo)
    d = dlo - c * plo
    op = A if isinstance(A, DenseMatrix) else None
    M = A.A if op is not None else A
    check_floating("A", M)
    if M.ndim != 2:
        raise ValueError(f"A must be a 2-D matrix (M, N) or a DenseMatrix; received shape "
                         f"{tuple(M.shape)}")
    xp = namespace(A=M)
    shift = d * xp.sum(M, axis=1)
    edges = []
    for name, e in (("lower", lower), ("upper", upper)):
        if e is None:
            continue
        check_floating(name, e)
        if tuple(e.shape[-1:]) != (M.shape[0],):
            raise ValueError(f"{name} must have shape (..., {M.shape[0]}) (one entry per row "
                             f"of A); received shape {tuple(e.shape)}")
        namespace(A=M, **{name: e})
        edges.append(e - xp.astype(shift, e.dtype))  # inf - finite stays inf
    M2 = c * M
    return (DenseMatrix(M2) if op is not None else M2, *edges)


# -- validation ------------------------------------------------------------------------------
_range = range  # the builtin, shadowed by Quantizer.uniform's keyword


def _bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, float)) or int(bits) != bits \
            or not 1 <= bits <= 16:
        raise ValueError(f"bits must be an integer in 1..16; received {bits!r}")
    return int(bits)


def _thresholds(thresholds) -> tuple[float, ...]:
    if is_array(thresholds):
        flat = namespace(thresholds=thresholds).reshape(thresholds, (-1,))
        thresholds = [flat[i] for i in _range(flat.shape[0])]
    try:
        t = tuple(float(v) for v in thresholds)
    except (TypeError, ValueError):
        raise TypeError("thresholds must be a sequence of numbers; "
                        f"received {type(thresholds).__name__}") from None
    if not t:
        raise ValueError("thresholds must hold at least one value; received none")
    if not all(math.isfinite(v) for v in t):
        raise ValueError(f"thresholds must be finite (the outer edges are implicit); received {t}")
    if any(b <= a for a, b in zip(t, t[1:], strict=False)):
        raise ValueError(f"thresholds must be strictly increasing; received {t}")
    return t


def _levels(t: tuple[float, ...], levels) -> tuple[float, ...]:
    if levels is None:
        if len(t) == 1:
            return (t[0] - 1.0, t[0] + 1.0)
        mids = [(a + b) / 2 for a, b in zip(t, t[1:], strict=False)]
        return (t[0] - (t[1] - t[0]) / 2, *mids, t[-1] + (t[-1] - t[-2]) / 2)
    try:
        lv = tuple(float(v) for v in levels)
    except (TypeError, ValueError):
        raise TypeError(f"levels must be a sequence of numbers or None; received "
                        f"{type(levels).__name__} {levels!r:.60}") from None
    if len(lv) != len(t) + 1:
        raise ValueError(f"levels must have len(thresholds) + 1 = {len(t) + 1} values; "
                         f"received {len(lv)}")
    edges = (-math.inf, *t, math.inf)
    bad = [k for k, v in enumerate(lv) if not edges[k] <= v < edges[k + 1]]
    if bad:
        raise ValueError(f"each level must lie in its bin [t_k, t_k+1); levels {bad} do not")
    return lv
